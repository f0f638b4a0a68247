"""kill -9 a real `rsi run` at several points, `rsi resume` it, and check nothing was lost or doubled.

Proposal, decision and commit are hit exactly through the documented fault hook RSI_FAULT_PAUSE
(the process blocks there and is then SIGKILLed); evaluation is hit by a plain SIGKILL the moment
the candidate's sandbox container exists, which leaves a real orphan container behind.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from core.fold import live_events
from core.trajectory import Event, TrajectoryReader
from review.queue import decide
from rsi.progress import read_status
from sandbox.lineage import Lineage
from sandbox.scratch import OWNED
from tests.conftest import IMAGE, ROOT, TARGET
from tests.sandbox import hostile

pytestmark = pytest.mark.docker

RSI = [sys.executable, "-m", "rsi"]


def rsi_run(run_dir: Path, *extra: str) -> list[str]:
    return [
        *RSI,
        "run",
        "--target",
        str(TARGET),
        "--run-dir",
        str(run_dir),
        "--seeds",
        "1",
        "--headless",
        "--proposer",
        "offline",
        "--image",
        IMAGE,
        *extra,
    ]


def start(argv: list[str], pause_at: str | None = None) -> subprocess.Popen[str]:
    env = dict(os.environ)
    env.pop("RSI_FAULT_PAUSE", None)
    if pause_at:
        env["RSI_FAULT_PAUSE"] = pause_at
    return subprocess.Popen(
        argv, cwd=ROOT, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )


def wait_until(condition: Callable[[], bool], process: subprocess.Popen[str], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            raise AssertionError(f"rsi exited ({process.returncode}) early:\n{process.stdout.read()}")  # type: ignore[union-attr]
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError("timed out waiting for the crash point")
        time.sleep(0.1)


def kill_at(argv: list[str], run_dir: Path, point: str) -> None:
    marker = run_dir / ".fault-paused"
    marker.unlink(missing_ok=True)
    process = start(argv, pause_at=point)
    wait_until(lambda: marker.is_file(), process)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    marker.unlink()


def kill_in_evaluation(argv: list[str], run_dir: Path, docker_client, label: str) -> None:  # type: ignore[no-untyped-def]
    process = start(argv)

    def sandbox_running() -> bool:
        if not (run_dir / "run.json").is_file():
            return False
        run_id = json.loads((run_dir / "run.json").read_text())["run_id"]
        found = docker_client.containers.list(
            sparse=True, filters={"label": [f"rsi.run_id={run_id}", f"rsi.candidate={label}"]}
        )
        return bool(found)

    wait_until(sandbox_running, process)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()


def finish(argv: list[str], exit_code: int = 0) -> str:
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == exit_code, done.stdout + done.stderr
    return done.stdout + done.stderr


def events_of(run_dir: Path) -> list[Event]:
    reader = TrajectoryReader(run_dir / "trajectory.jsonl")
    reader.verify()
    return list(reader.events())


def test_kill_9_at_every_step_then_resume_loses_and_doubles_nothing(  # type: ignore[no-untyped-def]
    docker_client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_dir, scratch = tmp_path / "run", tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))  # where every `rsi` below keeps its scratch directories
    resume = [*RSI, "resume", str(run_dir)]
    kill_at(rsi_run(run_dir, "--generations", "2"), run_dir, "proposal_started:1")  # while proposing
    kill_in_evaluation(resume, run_dir, docker_client, "gen-0001")  # a sandbox is running
    run_id = json.loads((run_dir / "run.json").read_text())["run_id"]
    assert hostile.labelled_containers(docker_client, f"rsi.run_id={run_id}"), "no orphan to reap"
    # The killed evaluation's candidate tree and stage are left behind, named by their dead owner.
    kinds = {OWNED.fullmatch(p.name)["kind"] for p in scratch.iterdir() if OWNED.fullmatch(p.name)}  # type: ignore[index]
    assert {"candidate", "stage"} <= kinds, sorted(p.name for p in scratch.iterdir())
    kill_at(resume, run_dir, "decision:1")  # accepted, not yet committed
    kill_at(resume, run_dir, "lineage_committed:1")  # committed, its event not yet written
    finish(resume)
    assert not [p.name for p in scratch.iterdir() if OWNED.fullmatch(p.name)]  # the resumes removed them

    events = events_of(run_dir)
    assert [e.seq for e in events] == list(range(len(events)))
    resumed = [e.data for e in events if e.kind == "run_resumed"]
    assert len(resumed) == 4 and all(r["previous_session_end"] == "crashed" for r in resumed)
    # 1: killed while proposing: the half generation is superseded and proposed again.
    assert resumed[0]["superseded_generation"] == 1 and not resumed[0]["reuses_recorded_proposal"]
    # 2: killed in evaluation: the recorded proposal is evaluated again. The orphan sandbox is gone
    # (checked at the end): each sandbox's driver ends when the dead owner's stream closes and the
    # engine removes it, or, if it still runs when the resume starts, the resume removes it. Which
    # of the two comes first is a race with the resume's start-up, and the count also takes in any
    # other dead owner's sandboxes on this engine (a parallel test's), so only the outcome is
    # asserted here; the reaper itself is tested in tests/sandbox/test_docker_hostile.py.
    assert resumed[1]["superseded_generation"] == 1 and resumed[1]["reuses_recorded_proposal"]
    assert isinstance(resumed[1]["orphans_removed"], int) and resumed[1]["orphans_removed"] >= 0
    # 3: killed after the decision: nothing superseded, the commit is made on resume.
    assert resumed[2]["superseded_generation"] is None and resumed[2]["commits_to_make"] == [1]
    # 4: killed after the lineage commit: the commit is recovered, its event recorded once.
    assert [c["generation"] for c in resumed[3]["recovered_commits"]] == [1]

    live = live_events(events)
    per_generation = {g: [e.kind for e in live if e.generation == g] for g in (1, 2)}
    assert per_generation[1] == [
        "proposal_started",
        "proposal",
        "race",  # a gain on one seed is a close call: it earns a second seed, with its parent
        "evaluation",
        "verdict",
        "decision",
        "commit",
    ]
    assert per_generation[2] == [
        "parent_evaluation",
        "proposal_started",
        "proposal",
        "evaluation",
        "verdict",
        "decision",
    ]
    assert sum(e.kind == "baseline" for e in events) == 1
    proposals = {e.generation: e.data["rationale"] for e in live if e.kind == "proposal"}
    assert "input_range from 0.5 to 1.0" in proposals[1] and "input_range from 1.0 to 2.0" in proposals[2]
    decisions = [(e.generation, e.data["decision"]) for e in live if e.kind == "decision"]
    assert decisions == [(1, "accept"), (2, "reject")]
    (commit,) = [e.data for e in events if e.kind == "commit"]
    assert commit["recovered"]

    lineage = Lineage(run_dir / "lineage")
    assert [message.splitlines()[0][:13] for _, message in lineage.log()] == [
        "generation 1:",
        "generation 0:",
    ]
    assert lineage.head() == commit["commit"] == lineage.repo.commit("gen-1").hexsha
    assert not lineage.repo.is_dirty(untracked_files=True)
    assert read_status(run_dir)["state"] == "completed"  # type: ignore[index]
    assert hostile.sandboxes_of(docker_client, run_id) == []

    # The resumed run is the run an uninterrupted one would have been: re-executing it reproduces.
    verified = subprocess.run(
        [*RSI, "replay", str(run_dir), "--verify"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "reproduced" in verified.stdout and "DIVERGED" not in verified.stdout


def test_queue_mode_accepts_nothing_alone_and_resumes_from_what_a_human_accepted(
    docker_client, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    run_dir = tmp_path / "run"
    finish(rsi_run(run_dir, "--generations", "1", "--review", "queue"))
    events = events_of(run_dir)
    baseline_commit = next(e.data["commit"] for e in events if e.kind == "baseline")
    verdicts = [e.data["verdict"] for e in events if e.kind == "verdict"]
    decisions = [(e.generation, e.data["decision"], e.data["by"]) for e in events if e.kind == "decision"]
    assert verdicts == ["allow"] and decisions == [(1, "queue", "policy")]
    assert Lineage(run_dir / "lineage").head() == baseline_commit

    # A human accepts it (as `rsi review` does); the resumed run explores from it.
    decide(run_dir, 1, "accept", reason="a real improvement", by="human:test")
    accepted_head = Lineage(run_dir / "lineage").head()
    assert accepted_head != baseline_commit
    finish([*RSI, "resume", str(run_dir), "--generations", "2"])
    events = events_of(run_dir)
    parents = {e.generation: e.data["parent"] for e in events if e.kind == "proposal_started"}
    assert parents == {1: baseline_commit, 2: accepted_head}
    assert [e.generation for e in events if e.kind == "parent_evaluation"] == [2]
    assert events[-1].kind == "run_finished" and events[-1].data["status"] == "completed"


def test_a_metric_jump_checkpoint_pauses_the_run_for_a_human(docker_client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run_dir = tmp_path / "run"
    out = finish(rsi_run(run_dir, "--generations", "2", "--pause-on-jump", "5"), exit_code=3)  # paused
    events = events_of(run_dir)
    assert "PAUSED" in out and f"rsi resume {run_dir}" in " ".join(out.split())
    (checkpoint,) = [e for e in events if e.kind == "checkpoint"]
    assert checkpoint.generation == 1 and checkpoint.data["kind"] == "metric_jump"
    assert [(e.generation, e.data["decision"], e.data["by"]) for e in events if e.kind == "decision"] == [
        (1, "queue", "checkpoint")
    ]
    assert [e.data["status"] for e in events if e.kind == "run_finished"] == ["paused"]
    assert read_status(run_dir)["state"] == "paused"  # type: ignore[index]
    assert not any(e.generation == 2 for e in events)
