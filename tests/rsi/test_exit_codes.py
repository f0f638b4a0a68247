"""Each documented exit code of `rsi`, from a real process (bwrap backend, offline proposer).
Interruptions (128+N) are covered in test_interrupt.py, a failed integrity check (13) in
tests/core/test_trajectory_signature.py."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from core.trajectory import TrajectoryReader, TrajectoryWriter
from tests.conftest import ROOT, TARGET, make_diff
from tests.rsi.test_interrupt import RSI


def rsi(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*RSI, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def run_args(run_dir: Path, *extra: str, target: Path = TARGET) -> list[str]:
    return [
        *("run", "--headless", "--target", str(target), "--run-dir", str(run_dir), "--backend", "bwrap"),
        *("--proposer", "offline", "--seeds", "1", *extra),
    ]


@pytest.mark.parametrize(
    "args",
    [["run", "--generations", "-1"], ["run", "--no-such-option"], ["--log-level", "loud", "doctor"]],
)
def test_usage_errors_exit_2(args: list[str]) -> None:
    result = rsi(*args)
    assert result.returncode == 2, result.stdout + result.stderr


def test_help_documents_the_exit_codes() -> None:
    for command in (["run"], ["resume"], ["replay"], ["policy", "check"], ["evaluate"]):
        shown = " ".join(rsi(*command, "--help").stdout.split())
        assert "Exit codes:" in shown, command


def test_a_run_error_exits_1(tmp_path: Path, target_copy: Path) -> None:
    train = target_copy / "train.py"
    train.write_text("raise SystemExit('training is broken')\n")
    result = rsi(*run_args(tmp_path / "run", "--generations", "1", target=target_copy))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "fails its evaluation" in " ".join(result.stderr.split() + result.stdout.split())


def test_a_run_paused_for_a_human_exits_3(tmp_path: Path) -> None:
    result = rsi(*run_args(tmp_path / "run", "--generations", "1", "--pause-on-jump", "0.5"))
    assert result.returncode == 3, result.stdout + result.stderr
    assert "rsi resume" in " ".join(result.stdout.split())


def test_policy_check_verdicts_exit_0_10_11(tmp_path: Path) -> None:
    def patch(name: str, relative: str, old: str, new: str) -> str:
        path = tmp_path / name
        path.write_text(make_diff(TARGET, relative, old, new))
        return str(path)

    allowed = patch("ok.diff", "config.py", "= 0.02", "= 0.04")
    review = patch("review.diff", "config.py", "log_every: int = 500", "log_every: int = 999999")
    denied = patch("deny.diff", "train.py", "import time\n", "import time\nimport socket\n")
    codes = [rsi("policy", "check", diff).returncode for diff in (allowed, review, denied)]
    assert codes == [0, 10, 11]


def test_evaluate_exits_14_for_a_failing_candidate(tmp_path: Path) -> None:
    breaking = tmp_path / "break.diff"
    breaking.write_text(make_diff(TARGET, "train.py", "import time\n", "import time\nraise SystemExit(3)\n"))
    args = ["evaluate", str(breaking), "--target", str(TARGET), "--backend", "bwrap", "--seeds", "1"]
    result = rsi(*args, "--log-dir", str(tmp_path / "logs"))
    assert result.returncode == 14, result.stdout + result.stderr


def test_replay_verify_exits_12_when_the_record_does_not_reproduce(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    assert rsi(*run_args(run_dir, "--generations", "1")).returncode == 0
    # The record is rewritten by its own writer (validly signed): only what it claims is wrong.
    path = run_dir / "trajectory.jsonl"
    events = list(TrajectoryReader(path).events())
    path.unlink()
    (run_dir / "trajectory.head").unlink()
    with TrajectoryWriter.open(path, run_id=events[0].run_id) as writer:
        for event in events:
            data = json.loads(json.dumps(event.data))
            if event.kind == "evaluation" and event.generation == 1:
                data["metric"]["per_seed"] = {
                    seed: value + 0.3 for seed, value in data["metric"]["per_seed"].items()
                }
            writer.append(event.kind, data, event.generation)
    result = rsi("replay", "--verify", str(run_dir))
    assert result.returncode == 12, result.stdout + result.stderr
    assert "DIVERGED" in result.stdout
