"""The succession check at the policy boundary of a bootstrapping run: a candidate whose promotion
would complete a streak of successors gaining on the selection set but not on the lockbox goes to a
human, with the finding in its verdict; an honest successor is judged by the policy alone."""

from __future__ import annotations

from pathlib import Path

from core.contracts import Proposal
from core.target import TargetSpec
from policies.engine import load_policy, resolve_policy_path
from rsi.promotion import SuccessionJudge, judge_successors
from tests.conftest import ROOT, TARGET
from tests.core.bootstrap_trajectory import (
    BASELINE_GENERATION,
    Generation,
    evaluation_of,
    write_bootstrap_run,
)

BOOTSTRAP = ROOT / "examples" / "bootstrap"
HOLLOW = Generation(scores=(0.30, 0.31), lockbox=(0.06, 0.07))


def judge(tmp_path: Path) -> SuccessionJudge:
    spec = TargetSpec.load(BOOTSTRAP)
    policy = load_policy(resolve_policy_path("default"), target=spec)
    trajectory = write_bootstrap_run(tmp_path / "run", BASELINE_GENERATION, [HOLLOW])
    judged = judge_successors(policy, tmp_path / "run", spec)
    assert isinstance(judged, SuccessionJudge) and judged.trajectory == trajectory
    assert judged.name == policy.name and judged.content_hash == policy.content_hash
    return judged


def test_a_second_hollow_promotion_goes_to_a_human(tmp_path: Path) -> None:
    judged = judge(tmp_path)
    parent = evaluation_of(HOLLOW, 1)
    candidate = evaluation_of(Generation(scores=(0.45, 0.46), lockbox=(0.07, 0.06)), 2)
    verdict = judged.check(Proposal(diff="", rationale="more votes", proposer="offline"), candidate, parent)
    (found,) = [f for f in verdict.findings if f.rule_id == "succession.compounding"]
    assert verdict.verdict in ("review", "deny") and found.verdict == "review"
    assert found.evidence["generations"] == [0, 1, 2]


def test_an_honest_successor_gets_the_policys_verdict_alone(tmp_path: Path) -> None:
    judged = judge(tmp_path)
    parent = evaluation_of(HOLLOW, 1)
    candidate = evaluation_of(Generation(scores=(0.45, 0.46), lockbox=(0.45, 0.44)), 2)
    proposal = Proposal(diff="", rationale="more votes", proposer="offline")
    assert judged.check(proposal, candidate, parent) == judged.policy.check(proposal, candidate, parent)


def test_a_target_without_a_teacher_is_judged_by_its_policy_only(tmp_path: Path) -> None:
    spec = TargetSpec.load(TARGET)
    policy = load_policy(resolve_policy_path("default"), target=spec)
    assert judge_successors(policy, tmp_path, spec) is policy
