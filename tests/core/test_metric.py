"""Which way is better: the one answer every comparison of metric values uses."""

from __future__ import annotations

import pytest

from core.contracts import MetricResult, best_of, signed_gain


@pytest.mark.parametrize(
    ("direction", "value", "reference", "gain"),
    [
        ("higher", 0.7, 0.5, 0.2),
        ("higher", 0.5, 0.7, -0.2),
        ("lower", 0.3, 0.5, 0.2),
        ("lower", 0.5, 0.3, -0.2),
    ],
)
def test_the_gain_is_positive_when_better_in_the_metrics_direction(
    direction: str, value: float, reference: float, gain: float
) -> None:
    assert signed_gain(value, reference, direction) == pytest.approx(gain)
    expected_best = value if gain > 0 else reference
    assert best_of(reference, value, direction) == expected_best
    assert best_of(None, value, direction) == value


def test_a_gain_within_the_seed_noise_is_told_apart_from_one_beyond_it() -> None:
    parent = MetricResult(name="r2", direction="higher", per_seed={0: 0.50, 1: 0.54})
    close = MetricResult(name="r2", direction="higher", per_seed={0: 0.52, 1: 0.54})
    far = MetricResult(name="r2", direction="higher", per_seed={0: 0.70, 1: 0.71})
    assert close.better_than(parent) and close.gain_over(parent) <= close.noise_against(parent)
    assert far.gain_over(parent) > far.noise_against(parent)
    assert far.noise_against(parent, floor=1.0) == 1.0
