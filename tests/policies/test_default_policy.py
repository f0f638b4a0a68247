"""The shipped default policy: protected paths denied, failing tests denied, noise is not progress."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.contracts import Evaluation, MetricResult, Proposal, TestResult
from core.errors import ConfigError
from core.target import TargetSpec
from policies.engine import load_policy, parse_policy, resolve_policy_path
from tests.conftest import TARGET, file_diff


@pytest.fixture
def policy():  # type: ignore[no-untyped-def]
    return load_policy(resolve_policy_path("default"), target=TargetSpec.load(TARGET))


def evaluation(values: list[float], failed: int = 0) -> Evaluation:
    return Evaluation(
        parent_commit="p" * 40,
        diff_sha256="d",
        backend="docker",
        ok=True,
        tests=TestResult(exit_code=1 if failed else 0, passed=10, failed=failed),
        metric=MetricResult(name="r2", direction="higher", per_seed=dict(enumerate(values))),
    )


def proposal(diff: str) -> Proposal:
    return Proposal(diff=diff, rationale="test", proposer="test")


@pytest.mark.parametrize("path", ["rsi.toml", "tests/test_model.py", "predict.py"])
def test_protected_paths_are_denied(policy, path: str) -> None:  # type: ignore[no-untyped-def]
    verdict = policy.check(proposal(file_diff(path, "x = 1\n", "x = 2\n")), None, None)
    assert verdict.verdict == "deny"
    assert verdict.findings[0].rule_id == "protected-paths"
    assert verdict.findings[0].file == path


def test_deleting_a_test_is_denied(policy) -> None:  # type: ignore[no-untyped-def]
    verdict = policy.check(proposal(file_diff("tests/test_data.py", "def test(): pass\n", None)), None, None)
    assert verdict.verdict == "deny"


def test_failing_tests_are_denied(policy) -> None:  # type: ignore[no-untyped-def]
    diff = file_diff("config.py", "a = 1\n", "a = 2\n")
    verdict = policy.check(proposal(diff), evaluation([0.9, 0.9, 0.9], failed=2), evaluation([0.5, 0.5, 0.5]))
    assert verdict.verdict == "deny"
    assert any(f.rule_id == "tests-pass" for f in verdict.findings)


def test_no_gain_is_denied_a_gain_within_noise_reviewed_and_a_real_gain_allowed(policy) -> None:  # type: ignore[no-untyped-def]
    diff = file_diff("config.py", "a = 1\n", "a = 2\n")
    parent = evaluation([0.50, 0.53, 0.47])
    none = policy.check(proposal(diff), evaluation([0.51, 0.52, 0.47]), parent)
    noisy = policy.check(proposal(diff), evaluation([0.55, 0.51, 0.49]), parent)
    real = policy.check(proposal(diff), evaluation([0.70, 0.71, 0.69]), parent)
    assert none.verdict == "deny" and none.findings[0].rule_id == "metric-improves"
    # +0.05, -0.02, +0.02: mean +0.0167 within the seed spread 0.03, the 95% interval reaches below 0.
    assert noisy.verdict == "review" and noisy.findings[0].rule_id == "metric-improves"
    assert "not significant" in noisy.findings[0].message and "95%" in noisy.findings[0].message
    assert noisy.paired is not None and noisy.paired.confidence == 0.95 and noisy.paired.low < 0
    assert real.verdict == "allow" and real.findings == []
    assert real.paired is not None and real.paired.significant
    assert real.policy_hash == policy.content_hash and len(real.policy_hash) == 64


def test_lower_is_better_metrics_are_judged_in_their_direction() -> None:
    parent = MetricResult(name="mse", direction="lower", per_seed={0: 0.5, 1: 0.6})
    better = MetricResult(name="mse", direction="lower", per_seed={0: 0.3, 1: 0.3})
    assert better.gain_over(parent) == pytest.approx(0.25) and better.better_than(parent)
    assert parent.gain_over(better) == pytest.approx(-0.25) and not parent.better_than(better)
    assert (
        better.noise_against(parent) == pytest.approx(parent.std) and better.noise_against(parent, 1.0) == 1.0
    )


def test_broken_example_fails_loudly_with_file_line_and_rule() -> None:
    text = """name: broken
rules:
  - id: protect-config
    type: paths
    verdict: deny
    params: {patterns: ["config.py"]}
    examples:
      not_match:
        - |
          --- a/config.py
          +++ b/config.py
          @@ -1 +1 @@
          -a = 1
          +a = 2
"""
    with pytest.raises(
        ConfigError, match=r"broken.yaml:9: rule protect-config: not_match example 1 should not fire"
    ):
        parse_policy(text, "broken.yaml")


def test_missing_policy_lists_the_shipped_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"default\.yaml"):
        load_policy(tmp_path / "nope.yaml")


@pytest.mark.parametrize(
    "candidate, parent",
    [
        ([0.6418, 0.68, 0.60], [0.1441, 0.1455, 0.1427]),  # input_range 0.5 -> 1.0, as measured in a demo
        ([0.64, 0.641, 0.639], [0.144, 0.145, 0.143]),  # the same gain with very little seed noise
    ],
)
def test_the_demos_first_improvement_is_allowed(policy, candidate, parent) -> None:  # type: ignore[no-untyped-def]
    diff = file_diff("config.py", "    input_range: float = 0.5\n", "    input_range: float = 1.0\n")
    verdict = policy.check(proposal(diff), evaluation(candidate), evaluation(parent))
    assert verdict.verdict == "allow", verdict.findings


def test_a_jump_to_near_perfect_in_one_change_goes_to_a_human(policy) -> None:  # type: ignore[no-untyped-def]
    diff = file_diff("config.py", "    input_range: float = 0.5\n", "    input_range: float = 1.0\n")
    verdict = policy.check(
        proposal(diff), evaluation([0.996, 0.997, 0.995]), evaluation([0.144, 0.145, 0.143])
    )
    assert verdict.verdict == "review" and verdict.findings[0].rule_id == "metric-jump"
