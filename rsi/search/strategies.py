"""Parent selection: which archive nodes the next generation's K candidates are proposed from.

Strategies are chosen by name in one place (`make_strategy`) and recorded with the run:

- `greedy`: today's linear hill-climb: every candidate from the most recently accepted node.
- `best-first`: a beam: the `beam` best expandable nodes by score, candidates dealt round-robin.
- `archive`: in the spirit of DGM/HGM: every expandable node may be chosen, with probability
  proportional to sigmoid(sharpness × (score − mean of the top 3)) × 1 / (1 + children), so good
  nodes are explored more and a node that already has many children gives way to others.
  Deterministic for a seed and a generation.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from core.errors import ConfigError
from rsi.search.archive import Archive, Node


class StrategyConfig(BaseModel):
    """How parents are chosen; recorded in the run's configuration."""

    model_config = ConfigDict(extra="forbid")

    name: str = "greedy"
    """One of the registered strategies: greedy, best-first, archive."""
    seed: int = 0
    """Seed of a randomised strategy: the same seed chooses the same parents."""
    beam: int = Field(default=2, ge=1)
    """best-first: how many of the best nodes are expanded each generation."""
    sharpness: float = Field(default=20.0, gt=0)
    """archive: how strongly a higher score raises a node's chance (the sigmoid's slope)."""


class SearchStrategy(Protocol):
    """Chooses the parents of one generation's candidates from the archive."""

    name: str

    def select(self, archive: Archive, k: int, generation: int) -> list[str]:
        """K node ids (repeats allowed) of expandable nodes to propose from."""
        ...


class Greedy:
    name = "greedy"

    def __init__(self, config: StrategyConfig) -> None:
        self.config = config

    def select(self, archive: Archive, k: int, generation: int) -> list[str]:
        latest = max(archive.expandable(), key=lambda n: (n.generation, int(n.id[1:])))
        return [latest.id] * k


class BestFirst:
    name = "best-first"

    def __init__(self, config: StrategyConfig) -> None:
        self.config = config

    def select(self, archive: Archive, k: int, generation: int) -> list[str]:
        ranked = sorted(archive.expandable(), key=lambda n: (-(n.score or 0.0), int(n.id[1:])))
        beam = ranked[: self.config.beam]
        return [beam[i % len(beam)].id for i in range(k)]


class ArchiveSampling:
    name = "archive"

    def __init__(self, config: StrategyConfig) -> None:
        self.config = config

    def weights(self, archive: Archive) -> dict[str, float]:
        """Each expandable node's selection weight (performance × few children)."""
        nodes = archive.expandable()
        top = sorted((n.score or 0.0 for n in nodes), reverse=True)[:3]
        anchor = sum(top) / len(top)
        return {
            n.id: _sigmoid(self.config.sharpness * ((n.score or 0.0) - anchor)) * _novelty(archive, n)
            for n in nodes
        }

    def select(self, archive: Archive, k: int, generation: int) -> list[str]:
        weights = self.weights(archive)
        rng = random.Random(f"{self.config.seed}:{generation}")
        ids = list(weights)
        return rng.choices(ids, weights=[weights[i] for i in ids], k=k)


def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-max(-60.0, min(60.0, x))))


def _novelty(archive: Archive, node: Node) -> float:
    return 1 / (1 + len(archive.children(node.id)))


STRATEGIES: dict[str, Callable[[StrategyConfig], SearchStrategy]] = {
    "greedy": Greedy,
    "best-first": BestFirst,
    "archive": ArchiveSampling,
}


def make_strategy(config: StrategyConfig) -> SearchStrategy:
    try:
        factory = STRATEGIES[config.name]
    except KeyError:
        raise ConfigError(
            f"unknown search strategy {config.name!r}; choose one of: {', '.join(STRATEGIES)}"
        ) from None
    return factory(config)
