"""Noise-aware acceptance inside `rsi run`, with real bubblewrap sandboxes: a close call earns more
seeds (racing, the candidate and its parent measured on the same extra seeds) before it is judged;
an accepted candidate is re-measured on fresh seeds before it becomes a parent, and a lucky score
(a change that helps one seed only) is demoted and never built on; both survive `rsi resume`."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from core.contracts import Proposal, ProposalContext
from core.fold import fold, live_events
from core.trajectory import Event, TrajectoryReader
from rsi.compose import build_run
from rsi.config import RunConfig
from rsi.resume import resume_run
from rsi.state import LoopState
from sandbox.integrity import IntegrityConfig
from tests.conftest import TARGET, file_diff
from tests.honest_cases import config_diff
from tests.rsi.test_resume_docker import RSI, finish, kill_at

pytestmark = [
    pytest.mark.bwrap,
    pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed"),
]

TRAIN = (TARGET / "train.py").read_text()
LUCKY = file_diff(
    "train.py",
    TRAIN,
    TRAIN.replace(
        "    config = TrainConfig()\n",
        "    config = TrainConfig()\n"
        "    if args.seed == 0:  # wider training inputs, for one seed only\n"
        "        config.input_range = 1.0\n",
    ),
)
"""Good on seed 0 alone: on any other seed it trains exactly as its parent does."""
assert LUCKY.count("+    ") == 2, "train.py changed: update the lucky change"

POLICY = """\
name: metric-only
description: Tests must pass; the metric must improve beyond the noise (a close call goes to review).
default: allow
confidence: 0.95
rules:
  - id: tests-pass
    description: The target's own tests must pass.
    type: tests_pass
    verdict: deny
  - id: metric-improves
    description: The metric must beat the parent's beyond the noise.
    type: metric_improves
    verdict: deny
    params: {min_spreads: 1.0, min_delta: 0.002}
"""


@dataclass
class Scripted:
    """Proposes the given diffs in turn (generation N gets diffs[N - 1])."""

    diffs: list[str]
    name: str = "scripted"

    def propose(self, context: ProposalContext, parent_tree: Path) -> Proposal:
        diff = self.diffs[context.generation - 1]
        return Proposal(diff=diff, rationale=f"scripted change {context.generation}", proposer=self.name)


def run(
    tmp_path: Path,
    diffs: list[str],
    seeds: list[int],
    max_seeds: int,
    integrity: IntegrityConfig | None = None,
) -> Path:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    config = RunConfig(
        target=TARGET,
        run_dir=tmp_path / "run",
        generations=len(diffs),
        seeds=seeds,
        max_seeds=max_seeds,
        backend="bwrap",
        proposer="offline",
        review="auto",
        policy=str(policy),
        integrity=integrity or IntegrityConfig(enabled=False),
    )
    loop, parts = build_run(config)
    parts.proposer = Scripted(diffs)
    summary = loop.run()
    parts.trajectory.close()
    assert summary.status == "completed", summary.reason
    return config.run_dir


def events(run_dir: Path) -> list[Event]:
    return live_events(list(TrajectoryReader(run_dir / "trajectory.jsonl").events()))


def test_a_close_call_earns_more_seeds_with_its_parent_before_it_is_judged(tmp_path: Path) -> None:
    run_dir = run(tmp_path, [LUCKY], seeds=[0, 1], max_seeds=4)
    live = events(run_dir)
    (race,) = [e for e in live if e.kind == "race"]
    assert race.generation == 1 and race.data["seeds"] == [2, 3]
    before = race.data["before"]
    assert before["seeds"] == [0, 1] and before["gain"] > 0 and before["low"] <= 0  # a close call
    assert list(race.data["parent_evaluation"]["metric"]["per_seed"]) == ["2", "3"]
    assert list(race.data["evaluation"]["metric"]["per_seed"]) == ["2", "3"]
    kinds = [e.kind for e in live if e.generation == 1]
    assert kinds.index("race") < kinds.index("evaluation") < kinds.index("verdict")
    record = fold(live).generations[1]
    assert record.evaluation is not None and record.evaluation.seeds == [0, 1, 2, 3]
    assert record.evaluation.metric is not None and sorted(record.evaluation.metric.per_seed) == [0, 1, 2, 3]
    assert record.verdict is not None and record.verdict.paired is not None
    assert record.verdict.paired.seeds == [0, 1, 2, 3] and not record.verdict.paired.significant
    # seeds 1, 2, 3 train exactly as the parent: the paired differences there are zero
    parent_extra = race.data["parent_evaluation"]["metric"]["per_seed"]
    assert record.evaluation.metric.per_seed[2] == parent_extra["2"]
    assert record.verdict.verdict != "allow"  # positive but within the noise: never accepted by rule
    verified = finish([*RSI, "replay", str(run_dir), "--verify"])  # races again, the same way
    assert "reproduced" in verified and "DIVERGED" not in verified


def test_a_close_call_with_an_integrity_finding_goes_to_review_without_racing(tmp_path: Path) -> None:
    # Every model's error counts as "perfect" here: each candidate gets an integrity finding, and
    # the lucky change's paired gain is the close call it is in the test above.
    suspicious = IntegrityConfig(perfect_error=10.0)
    run_dir = run(tmp_path, [LUCKY], seeds=[0, 1], max_seeds=4, integrity=suspicious)
    live = events(run_dir)
    assert [e for e in live if e.kind == "race"] == []
    record = fold(live).generations[1]
    assert record.evaluation is not None and record.evaluation.seeds == [0, 1]
    assert "integrity.perfect-score" in {f.rule_id for f in record.evaluation.integrity}
    assert record.verdict is not None and record.verdict.paired is not None
    assert record.verdict.paired.gain > 0 and not record.verdict.paired.significant
    assert record.verdict.verdict == "review"


def test_a_lucky_score_is_demoted_on_fresh_seeds_and_never_a_parent_even_after_resume(
    tmp_path: Path,
) -> None:
    wide = config_diff(input_range=1.0)
    run_dir = run(tmp_path, [LUCKY, wide], seeds=[0], max_seeds=1)  # one seed, no racing
    live = events(run_dir)
    state = LoopState.from_record(fold(live))
    assert state.commits.keys() == {1, 2}  # both accepted on seed 0
    checks = [e.data for e in live if e.kind == "elite_check"]
    assert [(c["generation"], c["seeds"], c["confirmed"]) for c in checks] == [(1, [1], False)]
    assert checks[0]["paired"]["gain"] == 0  # on seed 1 it trains exactly as its parent
    baseline = fold(live).baseline
    assert baseline is not None
    started = {e.generation: e.data for e in live if e.kind == "proposal_started"}
    assert started[2]["parent"] == baseline.parent_commit and started[2]["parent_node"] == "gen-0"
    assert state.demoted == {1}

    summary, loop = resume_run(
        run_dir,
        generations=3,
        on_loop=lambda loop: setattr(
            loop.parts, "proposer", Scripted([LUCKY, wide, config_diff(hidden_size=64)])
        ),
    )
    loop.parts.trajectory.close()
    assert summary.status == "completed", summary.reason
    live = events(run_dir)
    checks = [e.data for e in live if e.kind == "elite_check"]
    assert [(c["generation"], c["confirmed"]) for c in checks] == [(1, False), (2, True)]  # gen-1 not again
    started = {e.generation: e.data for e in live if e.kind == "proposal_started"}
    state = LoopState.from_record(fold(live))
    assert started[3]["parent"] == state.commits[2] and started[3]["parent_node"] == "gen-2"
    assert state.demoted == {1}
    archive, commit_of = loop.selector.archive(state)
    assert {n.move: n.status for n in archive}["gen-1"] == "demoted" and "gen-1" not in commit_of


def test_kill_9_right_after_an_elite_check_resumes_without_checking_it_again(tmp_path: Path) -> None:
    """The real CLI, killed (SIGKILL) the moment an elite check is on record, before the next
    proposal: the resumed run keeps that check (and its demotion or confirmation), does not measure
    it again, and is the run an uninterrupted one would have been."""
    run_dir = tmp_path / "run"
    argv = [
        *RSI,
        "run",
        "--target",
        str(TARGET),
        "--run-dir",
        str(run_dir),
        "--seeds",
        "1",
        "--generations",
        "2",
        "--backend",
        "bwrap",
        "--headless",
        "--proposer",
        "offline",
    ]
    kill_at(argv, run_dir, "elite_check")
    paused = list(TrajectoryReader(run_dir / "trajectory.jsonl").events())
    assert paused[-1].kind == "elite_check", [e.kind for e in paused]
    check = paused[-1].data
    # gen-1 accepted, checked on a fresh seed: past the run's seed 0 and its race seed 1
    assert check["generation"] == 1 and check["seeds"] == [2]
    assert not any(e.kind == "proposal_started" and e.generation == 2 for e in paused)

    finish([*RSI, "resume", str(run_dir)])
    reader = TrajectoryReader(run_dir / "trajectory.jsonl")
    reader.verify()
    every = list(reader.events())
    (resumed,) = [e.data for e in every if e.kind == "run_resumed"]
    assert resumed["previous_session_end"] == "crashed"
    live = live_events(every)
    assert [e.data["generation"] for e in live if e.kind == "elite_check"] == [1]  # not checked again
    started = {e.generation: e.data for e in live if e.kind == "proposal_started"}
    state = LoopState.from_record(fold(live))
    expected = "gen-1" if check["confirmed"] else "gen-0"  # a demoted lucky score is never the parent
    assert started[2]["parent_node"] == expected
    assert state.demoted == (set() if check["confirmed"] else {1})
    assert live[-1].kind == "run_finished" and live[-1].data["status"] == "completed"
    verified = finish([*RSI, "replay", str(run_dir), "--verify"])
    assert "reproduced" in verified and "DIVERGED" not in verified
