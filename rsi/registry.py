"""The names a user can choose on the command line, each mapped to the class that implements it.

The composition root (rsi.compose) imports these classes lazily from here; the CLI reads the names
to offer them as choices in `--help` and in its usage errors. Kept free of heavy imports so that
`rsi --help` stays instant.
"""

from __future__ import annotations

from typing import Literal, get_args

BACKENDS = {
    "docker": "sandbox.docker_backend.DockerBackend",
    "bwrap": "sandbox.bwrap_backend.BwrapBackend",
}
PROPOSERS = {
    "offline": "agent.offline.OfflineProposer",
    "claude": "agent.claude.ClaudeProposer",
    "replay": "agent.replay.ReplayProposer",
}
INTERNAL_PROPOSERS = frozenset({"replay"})
"""Proposers the harness drives itself (`rsi replay --verify`), not chosen with --proposer."""
ReviewMode = Literal["auto", "queue", "strict", "human"]
"""Who decides: the policy (auto), nobody until morning (queue), stop at the first review verdict
(strict), a person in the TUI (human)."""
REVIEW_MODES: tuple[str, ...] = get_args(ReviewMode)


def user_proposers() -> list[str]:
    return [name for name in PROPOSERS if name not in INTERNAL_PROPOSERS]
