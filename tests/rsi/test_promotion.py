"""Successor promotion, end to end through the real CLI on bubblewrap: an accepted generation of the
bootstrapping target promotes its student to teacher; the next generation learns from it; the
teachers are content-addressed and read-only; a teacher changed on disk stops the run; and
--pause-on-promotion waits for a human."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from core.contracts import Evaluation
from core.trajectory import TrajectoryReader
from rsi.verify import teacher_checks
from tests.conftest import IN_CI, ROOT

pytestmark = [pytest.mark.bwrap, pytest.mark.slow]

BOOTSTRAP = ROOT / "examples" / "bootstrap"
PROVIDER = ROOT / "examples" / "bootstrap-heldout.py"
RSI = str(Path(sys.executable).with_name("rsi"))

# Only the contract is protected: every candidate that passes its tests is accepted, so each
# generation promotes whatever its student is.
POLICY = """\
name: promote-everything
description: Protect the contract; accept everything else, so that every generation promotes.
default: allow
rules:
  - id: protected-paths
    description: The target's contract may not be touched.
    type: paths
    verdict: deny
    params: {patterns: ["rsi.toml"], include_target_protected: true}
"""


@pytest.fixture
def target(tmp_path: Path) -> Path:
    if shutil.which("bwrap") is None:
        if IN_CI:
            pytest.fail("bwrap is not installed (CI=true: bwrap tests must run)")
        pytest.skip("bwrap is not installed")
    copy = tmp_path / "bootstrap"
    shutil.copytree(BOOTSTRAP, copy, ignore=shutil.ignore_patterns("runs", "__pycache__"))
    contract = copy / "rsi.toml"
    contract.write_text(contract.read_text().replace("steps = 1500", "steps = 200"))
    (tmp_path / "policy.yaml").write_text(POLICY)
    return copy


def rsi(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([RSI, *args], capture_output=True, text=True, timeout=1200, check=False)


def run_args(target: Path, run_dir: Path, generations: int, *extra: str) -> list[str]:
    return [
        "run", "--headless", "--backend", "bwrap", "--target", str(target), "--heldout", str(PROVIDER),
        "--run-dir", str(run_dir), "--generations", str(generations), "--seeds", "1",
        "--proposer-seed", "3", "--policy", str(target.parent / "policy.yaml"), *extra,
    ]  # fmt: skip


def events(run_dir: Path, kind: str) -> list[Any]:
    return [e for e in TrajectoryReader(run_dir / "trajectory.jsonl").events() if e.kind == kind]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_each_accepted_generation_promotes_its_student(target: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    done = rsi(*run_args(target, run_dir, 2))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    promotions = [e.data for e in events(run_dir, "promotion")]
    assert len(promotions) == 2, done.stdout[-3000:]
    assert done.stdout.count("promotion student") == 2  # the headless report shows each one
    gen0 = sha256(BOOTSTRAP / "teacher0.npz")
    assert promotions[0]["previous_teacher_sha256"] == gen0
    assert promotions[1]["previous_teacher_sha256"] == promotions[0]["teacher_sha256"]
    for promotion in promotions:
        assert isinstance(promotion["teacher_metric"], float) and isinstance(
            promotion["student_metric"], float
        )
        stored = run_dir / "teachers" / promotion["teacher_sha256"] / "model.npz"
        assert sha256(stored) == promotion["teacher_sha256"]
        assert stored.stat().st_mode & 0o222 == 0
        assert run_dir / "lineage" not in stored.parents
    evaluations = {e.generation: e.data for e in events(run_dir, "evaluation")}
    assert evaluations[1]["teacher_sha256"] == gen0
    assert evaluations[2]["teacher_sha256"] == promotions[0]["teacher_sha256"]  # learned from the successor
    log = subprocess.run(
        ["git", "-C", str(run_dir / "lineage"), "log", "--format=%B", "lineage"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    for promotion in promotions:
        assert f"promoted student: {promotion['teacher_sha256']}" in log
        assert f"teacher: {promotion['previous_teacher_sha256']}" in log

    # Re-executed, the run re-derives every teacher: the same hashes, generation by generation.
    verified = rsi("replay", str(run_dir / "trajectory.jsonl"), "--verify", "--headless")
    assert verified.returncode == 0, verified.stdout[-3000:] + verified.stderr[-3000:]

    # A promoted teacher changed on disk: the resumed run refuses it and says why.
    stored = run_dir / "teachers" / promotions[-1]["teacher_sha256"] / "model.npz"
    stored.parent.chmod(0o755)
    stored.chmod(0o644)
    stored.write_bytes(stored.read_bytes()[:-8] + b"\0" * 8)
    resumed = rsi("resume", str(run_dir), "--headless", "--generations", "3")
    assert resumed.returncode != 0
    assert "changed after it was stored" in resumed.stdout + resumed.stderr


def test_pause_on_promotion_waits_for_a_human(target: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    paused = rsi(*run_args(target, run_dir, 2, "--pause-on-promotion"))
    assert paused.returncode == 3, paused.stdout[-3000:] + paused.stderr[-3000:]
    (checkpoint,) = events(run_dir, "checkpoint")
    assert checkpoint.data["kind"] == "promotion" and "promotes its student" in checkpoint.data["message"]
    assert events(run_dir, "promotion") == []
    accepted = rsi("review", str(run_dir), "--accept", "1", "--reason", "looked at the successor")
    assert accepted.returncode == 0, accepted.stdout[-2000:] + accepted.stderr[-2000:]
    (promotion,) = [e.data for e in events(run_dir, "promotion")]
    resumed = rsi("resume", str(run_dir), "--headless")
    assert resumed.returncode in (0, 3), resumed.stdout[-3000:] + resumed.stderr[-3000:]
    evaluations = [e for e in events(run_dir, "evaluation") if e.generation == 2]
    assert evaluations and evaluations[-1].data["teacher_sha256"] == promotion["teacher_sha256"]
    assert json.loads((run_dir / "status.json").read_text())


def test_verify_compares_the_teacher_and_the_student_of_each_generation() -> None:
    recorded = Evaluation(
        parent_commit="p",
        diff_sha256="d",
        backend="bwrap",
        ok=True,
        teacher_sha256="a" * 64,
        student_sha256="b" * 64,
    )
    same = recorded.model_copy()
    other_student = recorded.model_copy(update={"student_sha256": "c" * 64})
    assert all(check.ok for check in teacher_checks(recorded, same))
    assert [check.name for check in teacher_checks(recorded, same)] == ["teacher", "student"]
    assert not all(check.ok for check in teacher_checks(recorded, other_student))
    assert not all(check.ok for check in teacher_checks(recorded, None))
    assert teacher_checks(recorded.model_copy(update={"teacher_sha256": None}), same) == []
