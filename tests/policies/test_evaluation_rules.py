"""Evaluation rules: tests, metric beyond noise, suspicious jumps, resources, integrity findings."""

from __future__ import annotations

from core.contracts import Evaluation, Finding, MetricResult, Proposal, Resources, TestResult
from tests.policies.helpers import one_rule

NO_DIFF = Proposal(diff="", rationale="", proposer="test")


def evaluation(
    values: list[float], wall: float = 10.0, integrity: list[Finding] | None = None, direction: str = "higher"
) -> Evaluation:
    return Evaluation(
        parent_commit="p" * 40,
        diff_sha256="d",
        backend="docker",
        ok=True,
        tests=TestResult(exit_code=0, passed=3),
        metric=MetricResult(name="r2", direction=direction, per_seed=dict(enumerate(values))),  # type: ignore[arg-type]
        resources=Resources(wall_s=wall, cpu_s=wall, peak_memory_mb=100),
        integrity=integrity or [],
    )


def test_metric_jump_flags_suspiciously_good_gains_only() -> None:
    policy = one_rule("metric_jump", {"max_spreads": 10, "min_noise": 0.01}, "review")
    parent = evaluation([0.50, 0.51, 0.49])
    assert policy.check(NO_DIFF, evaluation([0.99, 0.99, 0.99]), parent).verdict == "review"
    assert policy.check(NO_DIFF, evaluation([0.55, 0.56, 0.54]), parent).findings == []
    assert policy.check(NO_DIFF, evaluation([0.10, 0.11, 0.09]), parent).findings == []  # a drop is no jump


def test_metric_jump_in_a_lower_is_better_metric() -> None:
    policy = one_rule("metric_jump", {"max_spreads": 5, "min_noise": 0.01}, "review")
    parent = evaluation([1.0, 1.0, 1.0], direction="lower")
    assert policy.check(NO_DIFF, evaluation([0.1, 0.1, 0.1], direction="lower"), parent).findings
    assert not policy.check(NO_DIFF, evaluation([2.0, 2.0, 2.0], direction="lower"), parent).findings


def test_resources_absolute_and_relative_limits() -> None:
    policy = one_rule("resources_within", {"max_wall_s": 100, "max_ratio_to_parent": 2.0}, "review")
    parent = evaluation([0.5], wall=10)
    assert policy.check(NO_DIFF, evaluation([0.5], wall=15), parent).findings == []
    slow = policy.check(NO_DIFF, evaluation([0.5], wall=150), parent).findings
    assert {f.evidence["resource"] for f in slow} == {"wall_s", "cpu_s"}
    assert any("exceeds the limit 100" in f.message for f in slow)


def test_integrity_findings_are_mapped_by_rule_id() -> None:
    policy = one_rule("integrity", {"rule_ids": ["integrity.input-*"], "verdict_from": "stricter"}, "review")
    harness = [
        Finding(rule_id="integrity.input-sensitivity", verdict="deny", message="predictions ignore inputs"),
        Finding(rule_id="integrity.timing", verdict="allow", message="slow"),
    ]
    verdict = policy.check(NO_DIFF, evaluation([0.5], integrity=harness), evaluation([0.5]))
    assert verdict.verdict == "deny"
    assert [f.evidence["integrity_rule"] for f in verdict.findings] == ["integrity.input-sensitivity"]
    assert policy.check(NO_DIFF, evaluation([0.5]), None).findings == []


def test_evaluation_rules_wait_for_an_evaluation() -> None:
    policy = one_rule("tests_pass")
    assert policy.check(NO_DIFF, None, None).verdict == "allow"
