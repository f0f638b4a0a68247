"""`rsi run --candidates K` for real: K proposals from one parent in parallel bubblewrap sandboxes,
at most one accepted, the budget in evaluations, and a kill -9 in the middle of a generation that
`rsi resume` finishes by running the unfinished candidates only."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from core.fold import fold, live_events
from tests.rsi.test_resume_docker import RSI, events_of, finish, kill_at

pytestmark = [
    pytest.mark.bwrap,
    pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed"),
]


def run_argv(run_dir: Path, *extra: str) -> list[str]:
    from tests.conftest import TARGET

    return [
        *RSI, "run", "--target", str(TARGET), "--run-dir", str(run_dir), "--seeds", "1", "--headless",
        "--proposer", "offline", "--backend", "bwrap", "--generations", "10", *extra,
    ]  # fmt: skip


def test_k_candidates_per_generation_in_parallel_sandboxes_within_an_evaluation_budget(
    tmp_path: Path,
) -> None:
    run_dir = tmp_path / "run"
    output = finish(run_argv(run_dir, "--candidates", "3", "--max-evaluations", "5", "--parallel", "3"))
    assert "status completed" in output
    live = live_events(events_of(run_dir))
    proposals = {e.generation: e.data["rationale"].split(" — ")[0] for e in live if e.kind == "proposal"}
    assert sorted(proposals) == [1, 2, 3, 4, 5]  # 5 evaluations: a generation of 3, then one of 2
    assert len({proposals[g] for g in (1, 2, 3)}) == 3  # siblings never propose the same move
    run = fold(live)
    assert [g.generation for g in run.decided] == [1, 2, 3, 4, 5] and run.undecided == []
    first = [run.generations[g] for g in (1, 2, 3)]
    assert len({g.parent_commit for g in first}) == 1
    accepted = [g for g in first if g.decision is not None and g.decision.decision == "accept"]
    assert len(accepted) <= 1
    by_search = [g for g in first if g.decision is not None and g.decision.by == "search"]
    assert all("was accepted" in g.decision.reason for g in by_search if g.decision)
    config = json.loads((run_dir / "run.json").read_text())
    assert config["candidates"] == 3 and config["max_evaluations"] == 5 and config["parallel"] == 3
    verified = finish([*RSI, "replay", str(run_dir), "--verify"])  # re-executes exactly the 5 recorded
    assert "reproduced" in verified and "DIVERGED" not in verified
    # Every audit of the re-execution drew its integrity controls as recorded (races included).
    drawn = re.search(r"integrity controls: (\d+) audits drawn as recorded, 0 afresh", verified)
    assert drawn is not None and int(drawn[1]) >= 3, verified


def test_kill_9_in_the_middle_of_a_generation_resumes_the_unfinished_candidates_only(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    argv = run_argv(run_dir, "--candidates", "3", "--max-evaluations", "3")
    kill_at(argv, run_dir, "evaluation:2")  # all three measured; two evaluations recorded, nothing decided
    events = events_of(run_dir)
    assert sum(e.kind == "evaluation" for e in events) == 2 and not any(e.kind == "decision" for e in events)
    finish([*RSI, "resume", str(run_dir)])

    events = events_of(run_dir)
    (resumed,) = [e.data for e in events if e.kind == "run_resumed"]
    assert resumed["superseded_generations"] == [1, 2, 3] and resumed["next_generation"] == 1
    live = live_events(events)
    for generation in (1, 2, 3):
        kinds = [e.kind for e in live if e.generation == generation and e.kind != "commit"]
        assert kinds.count("proposal") == kinds.count("evaluation") == kinds.count("decision") == 1, kinds
    before = {
        e.generation: e.data["rationale"]
        for e in events[: events.index(next(e for e in events if e.kind == "run_resumed"))]
        if e.kind == "proposal"
    }
    after = {e.generation: e.data["rationale"] for e in live if e.kind == "proposal"}
    assert before == after  # the recorded proposals are evaluated again, not proposed anew
    assert sum(e.kind == "baseline" for e in events) == 1
