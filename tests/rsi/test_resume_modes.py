"""`rsi resume` continues every run, whatever started it: a run a human reviews in the TUI reopens
the TUI in a terminal (driven here through tmux), and continues headless with --headless, where
nothing is accepted without a human (its changes queue for `rsi review`)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from core.trajectory import Event, TrajectoryReader
from review.headless import PolicyReviewer
from rsi.compose import build_run
from rsi.config import RunConfig
from tests.conftest import ROOT, TARGET
from tests.rsi.test_interrupt import RSI, run_in_terminal, tmux, wait_for_file

__all__ = ["tmux"]  # the fixture, shared with the interruption tests


def human_review_run(run_dir: Path) -> None:
    """A run started for review in the TUI that stopped after its baseline (no terminal needed:
    the reviewer is given; the run directory records review mode `human`)."""
    config = RunConfig(
        target=TARGET,
        run_dir=run_dir,
        generations=0,
        backend="bwrap",
        proposer="offline",
        seeds=[0],
        review="human",
    )
    loop, parts = build_run(config, reviewer=PolicyReviewer("auto"))
    try:
        assert loop.run().status == "completed"
    finally:
        parts.trajectory.close()


def events(run_dir: Path) -> list[Event]:
    return list(TrajectoryReader(run_dir / "trajectory.jsonl").events())


def decision_of(run_dir: Path, generation: int) -> Event | None:
    found = [e for e in events(run_dir) if e.kind == "decision" and e.generation == generation]
    return found[-1] if found else None


def test_headless_resume_of_a_tui_run_queues_for_a_human(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    human_review_run(run_dir)
    resumed = subprocess.run(
        [*RSI, "resume", str(run_dir), "--headless", "--generations", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    decision = decision_of(run_dir, 1)
    assert decision is not None and decision.data["decision"] == "queue", decision
    assert not [e for e in events(run_dir) if e.kind == "commit"]
    resumed_event = next(e for e in events(run_dir) if e.kind == "run_resumed")
    assert resumed_event.data["reviewer"] == "queue"


def wait_until(predicate, what: str, timeout_s: float = 300) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def test_resume_in_a_terminal_reopens_the_tui_for_the_human(tmux, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run_dir, rc_file = tmp_path / "run", tmp_path / "rc"
    human_review_run(run_dir)
    run_in_terminal(tmux, rc_file, "resume", str(run_dir), "--generations", "1")
    wait_until(lambda: any(e.kind == "verdict" for e in events(run_dir)), "the candidate's verdict")

    def screen() -> str:
        return str(tmux("capture-pane", "-p", "-t", "run").stdout)

    wait_until(lambda: "Accept" in screen(), f"the change waiting in the TUI:\n{screen()}", 60)
    tmux("send-keys", "-t", "run", "a")
    wait_until(lambda: decision_of(run_dir, 1) is not None or "Yes" in screen(), "the accept", 60)
    if decision_of(run_dir, 1) is None:  # a confirmation asked first
        tmux("send-keys", "-t", "run", "y")
    wait_until(lambda: any(e.kind == "run_finished" for e in events(run_dir)[-1:]), "the run's end", 120)
    tmux("send-keys", "-t", "run", "q")
    assert wait_for_file(rc_file, 60) == "0", screen()
    decision = decision_of(run_dir, 1)
    assert decision is not None and decision.data["decision"] == "accept", decision
    assert decision.data["by"].startswith("human"), decision.data
    assert [e.data["status"] for e in events(run_dir) if e.kind == "run_finished"] == [
        "completed",
        "completed",
    ]


@pytest.mark.parametrize("extra", [[], ["--headless"]])
def test_resume_says_what_to_pass_for_a_directory_that_is_no_run(tmp_path: Path, extra: list[str]) -> None:
    result = subprocess.run([*RSI, "resume", str(tmp_path), *extra], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 2 and "not a run directory" in " ".join(result.stderr.split())
