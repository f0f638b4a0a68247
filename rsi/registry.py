"""The names a user can choose, each mapped to the class that implements it (core.registry).

The composition root (rsi.compose) builds every component through these registries, each from its
own config; the CLI reads the names to offer them as choices in `--help` and in its usage errors.
The classes are imported only when chosen, so that `rsi --help` stays instant.

    proposer = PROPOSERS.build(config.proposer, config.proposer_config(), backend=backend)
"""

from __future__ import annotations

from typing import Literal, get_args

from core.registry import Registry
from sandbox.backends import BACKENDS

__all__ = [
    "BACKENDS",
    "INTERNAL_PROPOSERS",
    "PROPOSERS",
    "REVIEWERS",
    "REVIEW_MODES",
    "ReviewMode",
    "user_proposers",
]

PROPOSERS = Registry(
    "proposer",
    {
        "offline": "agent.offline.OfflineProposer",
        "claude": "agent.claude.ClaudeProposer",
        "replay": "agent.replay.ReplayProposer",
    },
    where="--proposer (run config `proposer`)",
)
"""Built with a backend (for exploration sandboxes) and a progress callback."""
REVIEWERS = Registry(
    "reviewer",
    {"policy": "review.headless.PolicyReviewer", "human": "review.human.HumanReviewer"},
    where="--review (run config `review`)",
)
"""Chosen by the review mode, in one place: rsi.compose.make_reviewer."""
INTERNAL_PROPOSERS = frozenset({"replay"})
"""Proposers the harness drives itself (`rsi replay --verify`), not chosen with --proposer."""
ReviewMode = Literal["auto", "queue", "strict", "human"]
"""Who decides: the policy (auto), nobody until morning (queue), stop at the first review verdict
(strict), a person in the TUI (human)."""
REVIEW_MODES: tuple[str, ...] = get_args(ReviewMode)


def user_proposers() -> list[str]:
    return [name for name in PROPOSERS if name not in INTERNAL_PROPOSERS]
