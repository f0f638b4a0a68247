"""Paired comparison of a child with its parent on the same seeds.

A child and its parent trained on the same seed share the seed's data, initialisation and batch
order, so the per-seed difference cancels most of the noise both share: a gain is judged on the
differences d_s = child_s - parent_s (signed so that positive is better), with a Student-t
confidence interval on their mean.

    comparison = paired_comparison({0: 0.50, 1: 0.60}, {0: 0.52, 1: 0.63}, confidence=0.95)
    comparison.significant  # the whole interval lies above zero
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ValidationInfo, field_validator

Direction = Literal["higher", "lower"]


class PairedComparison(BaseModel):
    """A child against its parent on the seeds both were measured on."""

    seeds: list[int]
    """The shared seeds the differences are taken on."""
    gain: float
    """Mean per-seed improvement (positive = better, whatever the metric's direction)."""
    low: float
    """Lower end of the confidence interval of the gain."""
    high: float
    """Upper end of the confidence interval of the gain."""
    confidence: float
    """The two-sided confidence level of the interval (a policy setting, recorded with it)."""

    @field_validator("low", "high", mode="before")
    @classmethod
    def _unbounded(cls, value: float | None, info: ValidationInfo) -> float:
        """JSON has no infinity: an unbounded end (one seed, no interval) is recorded as null."""
        if value is None:
            return -math.inf if info.field_name == "low" else math.inf
        return value

    @property
    def significant(self) -> bool:
        """Better beyond noise: the whole interval lies above zero."""
        return self.low > 0

    @property
    def significantly_worse(self) -> bool:
        return self.high < 0

    def summary(self) -> str:
        return (
            f"gain {self.gain:+.4f} [{self.low:+.4f}, {self.high:+.4f}] at {self.confidence:.0%} "
            f"on {len(self.seeds)} paired seed(s)"
        )


def paired_comparison(
    parent: Mapping[int, float],
    child: Mapping[int, float],
    direction: Direction = "higher",
    confidence: float = 0.9,
) -> PairedComparison:
    """Compare on the seeds both have; raises ValueError when they share none."""
    seeds = sorted(set(parent) & set(child))
    if not seeds:
        raise ValueError(
            f"no shared seed to compare on: parent has {sorted(parent)}, child has {sorted(child)}; "
            "measure both on the same seeds"
        )
    sign = 1.0 if direction == "higher" else -1.0
    diffs = [sign * (child[s] - parent[s]) for s in seeds]
    gain = statistics.fmean(diffs)
    if len(diffs) < 2:
        return PairedComparison(seeds=seeds, gain=gain, low=-math.inf, high=math.inf, confidence=confidence)
    half = t_quantile(0.5 + confidence / 2, len(diffs) - 1) * statistics.stdev(diffs) / math.sqrt(len(diffs))
    return PairedComparison(seeds=seeds, gain=gain, low=gain - half, high=gain + half, confidence=confidence)


def t_quantile(p: float, df: int) -> float:
    """The p-quantile of Student's t with df degrees of freedom (bisection on the CDF)."""
    if not 0.5 <= p < 1 or df < 1:
        raise ValueError(f"t_quantile needs 0.5 <= p < 1 and df >= 1, got p={p}, df={df}")
    low, high = 0.0, 1.0
    while t_cdf(high, df) < p:
        high *= 2
    for _ in range(80):
        middle = (low + high) / 2
        low, high = (middle, high) if t_cdf(middle, df) < p else (low, middle)
    return (low + high) / 2


def t_cdf(t: float, df: int) -> float:
    x = df / (df + t * t)
    tail = 0.5 * _incomplete_beta(df / 2, 0.5, x)
    return 1 - tail if t >= 0 else tail


def _incomplete_beta(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b) (continued fraction, Lentz's method)."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x > (a + 1) / (a + b + 2):
        return 1 - _incomplete_beta(b, a, 1 - x)
    return math.exp(log_front) * _beta_fraction(a, b, x) / a


def _beta_fraction(a: float, b: float, x: float) -> float:
    tiny = 1e-300
    c, d = 1.0, 1 - (a + b) * x / (a + 1)
    d = 1 / (d if abs(d) > tiny else tiny)
    result = d
    for m in range(1, 300):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1 + numerator * d
            d = 1 / (d if abs(d) > tiny else tiny)
            c = 1 + numerator / c
            c = c if abs(c) > tiny else tiny
            result *= d * c
        if abs(d * c - 1) < 1e-15:
            break
    return result
