"""Starting and continuing runs with real `rsi` processes (bwrap, offline proposer): the run
directory is new or a run, a failed start leaves nothing behind, the held-out seed is the
target's, and a resumed run keeps the contract it started with."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from core.target import TargetSpec
from core.trajectory import TrajectoryReader
from rsi.compose import target_heldout_seed
from rsi.resume import resume_run
from tests.conftest import ROOT, TARGET
from tests.rsi.test_interrupt import RSI


def rsi_run(run_dir: Path, *extra: str, target: Path = TARGET) -> subprocess.CompletedProcess[str]:
    command = [*RSI, "run", "--headless", "--target", str(target), "--run-dir", str(run_dir)]
    command += ["--backend", "bwrap", "--proposer", "offline", "--seeds", "1", "--generations", "0", *extra]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)


def run_started(run_dir: Path) -> dict:  # type: ignore[type-arg]
    events = TrajectoryReader(run_dir / "trajectory.jsonl").events()
    return next(e.data for e in events if e.kind == "run_started")


def test_a_non_empty_directory_that_is_no_run_is_refused(tmp_path: Path) -> None:
    run_dir = tmp_path / "notes"
    run_dir.mkdir()
    (run_dir / "mine.txt").write_text("keep me")
    result = rsi_run(run_dir)
    assert result.returncode == 2, result.stderr
    assert "not empty and not a run directory" in " ".join(result.stderr.split())
    assert sorted(p.name for p in run_dir.iterdir()) == ["mine.txt"]


def test_a_failed_start_leaves_nothing_and_the_next_run_starts(tmp_path: Path, target_copy: Path) -> None:
    toml = target_copy / "rsi.toml"
    original = toml.read_text()
    toml.write_text(original.replace('heldout = "teacher-regression"', 'heldout = "no-such-set"'))
    run_dir = tmp_path / "run"
    failed = rsi_run(run_dir, target=target_copy)
    assert failed.returncode == 2 and "no-such-set" in failed.stderr, failed.stderr
    assert not run_dir.exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert rsi_run(empty, target=target_copy).returncode == 2
    assert empty.is_dir() and not list(empty.iterdir())  # an empty directory given stays, empty
    toml.write_text(original)
    assert rsi_run(run_dir, target=target_copy).returncode == 0


def test_the_heldout_seed_is_the_targets_unless_asked(tmp_path: Path) -> None:
    first, second, chosen = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    assert rsi_run(first).returncode == 0 and rsi_run(second).returncode == 0
    expected = target_heldout_seed(TargetSpec.load(TARGET))
    assert run_started(first)["heldout"]["seed"] == run_started(second)["heldout"]["seed"] == expected
    assert json.loads((first / "run.json").read_text())["heldout_seed"] == expected
    assert rsi_run(chosen, "--heldout-seed", "5").returncode == 0
    assert run_started(chosen)["heldout"]["seed"] == 5


def test_resume_keeps_the_recorded_contract_and_says_what_changed(tmp_path: Path, target_copy: Path) -> None:
    run_dir = tmp_path / "run"
    assert rsi_run(run_dir, "--heldout-seed", "11", target=target_copy).returncode == 0
    toml = target_copy / "rsi.toml"
    toml.write_text(toml.read_text().replace("steps = 3000", "steps = 100"))
    config = json.loads((run_dir / "run.json").read_text())
    (run_dir / "run.json").write_text(json.dumps({**config, "heldout_seed": 99}))

    summary, loop = resume_run(run_dir, generations=1)
    assert summary.status == "completed", summary.reason
    assert loop.parts.spec.budget.steps == 3000
    assert loop.parts.evaluator.heldout.seed == 11
    differences = " ".join(loop.parts.contract_differences)
    assert "[budget]" in differences and "heldout_seed" in differences, differences
    resumed = next(
        e for e in TrajectoryReader(run_dir / "trajectory.jsonl").events() if e.kind == "run_resumed"
    )
    assert resumed.data["contract_differences"] == loop.parts.contract_differences

    again = subprocess.run(
        [*RSI, "resume", str(run_dir), "--headless", "--generations", "2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert again.returncode == 0, again.stderr
    assert "warning" in again.stderr and "[budget]" in " ".join(again.stderr.split()), again.stderr
