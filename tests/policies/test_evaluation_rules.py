"""Evaluation rules: tests, metric beyond noise, suspicious jumps, resources, integrity findings."""

from __future__ import annotations

import pytest

from core.contracts import Evaluation, Finding, MetricResult, Proposal, Resources, TestResult
from core.errors import ConfigError
from policies.engine import parse_policy
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


def test_a_positive_gain_within_the_spread_goes_to_review_with_its_interval() -> None:
    policy = one_rule("metric_improves", {"min_spreads": 1.0, "min_delta": 0.002})
    parent = evaluation([0.50, 0.53, 0.47])
    verdict = policy.check(NO_DIFF, evaluation([0.55, 0.51, 0.49]), parent)
    assert verdict.verdict == "review" and verdict.paired is not None
    finding = verdict.findings[0]
    assert "positive but not significant" in finding.message and "at 95%" in finding.message
    assert finding.evidence["confidence"] == 0.95 and finding.evidence["seeds"] == [0, 1, 2]
    assert finding.evidence["low"] < 0 < finding.evidence["gain"] < finding.evidence["high"]
    # No gain, or a gain below min_delta, is still denied; so is the unclear gain when the policy says so.
    assert policy.check(NO_DIFF, evaluation([0.50, 0.53, 0.47]), parent).verdict == "deny"
    assert policy.check(NO_DIFF, evaluation([0.501, 0.531, 0.471]), parent).verdict == "deny"
    strict = one_rule("metric_improves", {"min_delta": 0.002, "unclear_gain": "deny"})
    assert strict.check(NO_DIFF, evaluation([0.55, 0.51, 0.49]), parent).verdict == "deny"


def test_a_single_seed_has_no_interval_and_keeps_the_spread_rule() -> None:
    policy = one_rule("metric_improves", {"min_delta": 0.002})
    verdict = policy.check(NO_DIFF, evaluation([0.501]), evaluation([0.5]))
    assert verdict.verdict == "deny" and verdict.paired is None


def test_the_confidence_level_is_a_policy_setting_recorded_with_the_verdict() -> None:
    text = (
        "name: t\nconfidence: 0.8\n"
        "rules: [{id: r, type: metric_improves, verdict: deny, params: {min_delta: 0.002}}]\n"
    )
    verdict = parse_policy(text, "t.yaml").check(
        NO_DIFF, evaluation([0.55, 0.51, 0.49]), evaluation([0.50, 0.53, 0.47])
    )
    assert verdict.paired is not None and verdict.paired.confidence == 0.8
    assert "at 80%" in verdict.findings[0].message
    with pytest.raises(ConfigError, match="confidence"):
        parse_policy(text.replace("0.8", "1.5"), "t.yaml")
