"""The paired interval of a child's gain over its parent, checked against numbers worked by hand."""

from __future__ import annotations

import math

import pytest

from core.paired import paired_comparison, t_quantile


def test_three_seeds_give_the_student_t_interval_worked_by_hand() -> None:
    # Differences +0.02, +0.03, +0.04: mean 0.03, sd 0.01, standard error 0.01/sqrt(3) = 0.0057735.
    # t(0.975, df=2) = 4.302653 -> half-width 0.0248414; t(0.95, df=2) = 2.919986 -> 0.0168586.
    parent = {0: 0.50, 1: 0.60, 2: 0.55}
    child = {0: 0.52, 1: 0.63, 2: 0.59}
    at95 = paired_comparison(parent, child, confidence=0.95)
    assert at95.seeds == [0, 1, 2] and at95.gain == pytest.approx(0.03)
    assert (at95.low, at95.high) == pytest.approx((0.0051586, 0.0548414), abs=1e-6)
    at90 = paired_comparison(parent, child, confidence=0.90)
    assert (at90.low, at90.high) == pytest.approx((0.0131414, 0.0468586), abs=1e-6)
    assert at95.significant and at90.significant and at95.confidence == 0.95
    assert "at 95% on 3 paired seed(s)" in at95.summary()


def test_a_lower_is_better_metric_gains_when_it_falls() -> None:
    # Differences (parent - child) +0.2, +0.3: mean 0.25, sd 0.0707107, se 0.05; t(0.975, 1) = 12.706205.
    comparison = paired_comparison({0: 0.5, 1: 0.6}, {0: 0.3, 1: 0.3}, direction="lower", confidence=0.95)
    assert comparison.gain == pytest.approx(0.25)
    assert (comparison.low, comparison.high) == pytest.approx((-0.3853102, 0.8853102), abs=1e-6)
    assert not comparison.significant and not comparison.significantly_worse


def test_a_positive_gain_whose_interval_reaches_zero_is_not_significant() -> None:
    # Differences +0.05, -0.02, +0.02: mean 0.0166667, sd 0.0351188, se 0.0202759 -> half 0.0872401.
    comparison = paired_comparison({0: 0.50, 1: 0.53, 2: 0.47}, {0: 0.55, 1: 0.51, 2: 0.49}, confidence=0.95)
    assert comparison.gain == pytest.approx(0.0166667, abs=1e-6)
    assert (comparison.low, comparison.high) == pytest.approx((-0.0705734, 0.1039067), abs=1e-6)
    assert not comparison.significant


def test_only_shared_seeds_are_paired_and_none_shared_is_an_error() -> None:
    comparison = paired_comparison({0: 0.5, 1: 0.5, 7: 0.9}, {0: 0.6, 1: 0.7, 8: 0.1})
    assert comparison.seeds == [0, 1] and comparison.gain == pytest.approx(0.15)
    with pytest.raises(ValueError, match="no shared seed"):
        paired_comparison({0: 1.0}, {1: 1.0})


def test_t_quantiles_match_the_tables() -> None:
    assert t_quantile(0.975, 2) == pytest.approx(4.302653, abs=1e-5)
    assert t_quantile(0.975, 30) == pytest.approx(2.042272, abs=1e-5)
    assert math.isclose(t_quantile(0.95, 1), 6.313752, abs_tol=1e-5)


def test_an_unbounded_interval_survives_a_json_round_trip() -> None:
    import json
    import math

    from core.paired import PairedComparison, paired_comparison

    one_seed = paired_comparison({0: 0.5}, {0: 0.6})
    recorded = json.loads(one_seed.model_dump_json())  # as a trajectory line holds it
    assert recorded["low"] is None and recorded["high"] is None
    again = PairedComparison.model_validate(recorded)
    assert again.low == -math.inf and again.high == math.inf and not again.significant
