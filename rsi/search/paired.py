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
    "fresh_seeds",
    "paired_comparison",
    "race_decision",
    "racing_seeds",
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


def racing_seeds(seeds: list[int], max_seeds: int) -> list[int]:
    """The extra seeds a close call may earn, in order: new seeds after the run's, up to
    `max_seeds` in all (none when the run already measures that many)."""
    first = max(seeds) + 1
    return list(range(first, first + max(0, max_seeds - len(seeds))))


def fresh_seeds(seeds: list[int], max_seeds: int) -> list[int]:
    """Seeds no candidate was measured on (neither the run's nor any racing seed), as many as the
    run's: an accepted candidate is confirmed on them before it becomes a parent."""
    first = max(seeds) + 1 + max(0, max_seeds - len(seeds))
    return list(range(first, first + len(seeds)))
