"""Racing on paired comparisons: a close call earns more seeds instead of a verdict.

The statistics themselves (the paired interval, Student's t) live in core.paired, where the
policy uses them too.
"""

from __future__ import annotations

from typing import Literal

from core.paired import Direction, PairedComparison, paired_comparison, t_cdf, t_quantile

__all__ = [
    "Direction",
    "PairedComparison",
    "RaceOutcome",
    "paired_comparison",
    "race_decision",
    "t_cdf",
    "t_quantile",
]

RaceOutcome = Literal["better", "worse", "more_seeds", "inconclusive"]


def race_decision(comparison: PairedComparison, max_seeds: int) -> RaceOutcome:
    """better / worse beyond noise; more_seeds while a promising close call (a positive mean gain)
    has seeds left; inconclusive when it has none left (a human looks); worse for the rest."""
    if comparison.significant:
        return "better"
    if comparison.significantly_worse:
        return "worse"
    if len(comparison.seeds) < max_seeds and comparison.gain > 0:
        return "more_seeds"  # successive halving: only a promising candidate earns more seeds
    return "worse" if comparison.gain <= 0 else "inconclusive"
