"""The replay proposer: feeds a recorded run back, in order, with no network.

Used by `rsi replay --verify` to re-execute a run. For each generation:
- a proposal recorded by the Claude agent is re-executed at model level when a sandbox backend is
  given: the agent loop runs again with the recorded model responses in place of the API, its tool
  calls run again in a fresh exploration sandbox, and every tool result is compared with the
  recorded one (then the resulting diff with the recorded diff);
- any other proposal (offline, scripted) is fed back as it was recorded.
Every difference between the recorded run and the re-executed one is listed in `divergences`, with
the generation, step and tool where it happened.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent.config import ClaudeConfig, ReplayConfig
from core.contracts import ProgressCallback, Proposal, ProposalContext, Usage
from core.errors import ConfigError, TrajectoryError
from core.events import ProposalStarted
from core.trajectory import TrajectoryReader
from sandbox.base import Backend

_DURATION = re.compile(r"\d+(\.\d+)?\s*(s|ms|sec|seconds)\b")
_CONTAINER_ID = re.compile(r"\b[0-9a-f]{12}\b")
"""Timings and the sandbox's container id (its hostname) differ from run to run without anything
having diverged."""


def normalized(text: str) -> str:
    return _CONTAINER_ID.sub("<container>", _DURATION.sub("<duration>", text))


def first_difference(recorded: str, replayed: str) -> str:
    old, new = normalized(recorded).splitlines(), normalized(replayed).splitlines()
    for number, (a, b) in enumerate(zip(old, new, strict=False), start=1):
        if a != b:
            return f"line {number}: recorded {a[:120]!r}, now {b[:120]!r}"
    return f"recorded {len(old)} lines, now {len(new)}"


class RecordedModel:
    """Answers each step with the response recorded for it; no network."""

    def __init__(self, transcript: list[dict[str, Any]], generation: int, source: Path) -> None:
        self.responses = {entry["step"]: entry for entry in transcript if entry.get("kind") == "response"}
        self.generation = generation
        self.source = source

    def __call__(self, request: dict[str, Any], step: int) -> dict[str, Any]:
        entry = self.responses.get(step)
        if entry is None:
            raise TrajectoryError(
                f"{self.source}: generation {self.generation} has no recorded model response for step "
                f"{step}; the re-executed agent went further than the recorded one."
            )
        return {key: entry.get(key) for key in ("id", "content", "stop_reason", "usage")}


class ReplayProposer:
    name = "replay"
    config_class = ReplayConfig

    @classmethod
    def from_config(
        cls, config: ReplayConfig, backend: Backend | None = None, progress: ProgressCallback | None = None
    ) -> ReplayProposer:
        if config.trajectory is None:
            raise ConfigError("the replay proposer needs a trajectory to replay (--replay-from TRAJ).")
        return cls(config.trajectory, backend=backend, progress=progress)

    def __init__(
        self, trajectory: Path, backend: Backend | None = None, progress: ProgressCallback | None = None
    ) -> None:
        self.trajectory = trajectory
        self.backend = backend
        self.progress = progress
        self.recorded: dict[int, Proposal] = {}
        self.recorded_parents: dict[int, str] = {}
        self.recorded_parent_trees: dict[int, str] = {}
        self.tree_of: Callable[[str], str] | None = None
        """Maps a commit of the re-executed lineage to its git tree hash (set by `replay --verify`)."""
        for event in TrajectoryReader(trajectory).events():
            if event.generation is None:
                continue
            if event.kind == "proposal":
                self.recorded[event.generation] = Proposal.model_validate(event.data)
            elif event.kind == "proposal_started":
                started = ProposalStarted.model_validate(event.data)
                self.recorded_parents[event.generation] = started.parent
                self.recorded_parent_trees[event.generation] = started.parent_tree or ""
        self.divergences: list[str] = []

    def propose(self, context: ProposalContext, parent_tree: Path) -> Proposal:
        recorded = self.recorded.get(context.generation)
        if recorded is None:
            raise TrajectoryError(
                f"{self.trajectory}: no proposal recorded for generation {context.generation}; the "
                "recorded run ended earlier."
            )
        # Commit hashes differ between runs (they hold timestamps): compare the parents' trees.
        recorded_tree = self.recorded_parent_trees.get(context.generation)
        if recorded_tree and self.tree_of is not None:
            tree = self.tree_of(context.parent_commit)
            if tree != recorded_tree:
                self.divergences.append(
                    f"generation {context.generation}: parent tree {tree[:10]} differs from the recorded "
                    f"parent tree {recorded_tree[:10]} (an earlier decision went another way)"
                )
        setup = next((e for e in recorded.transcript if e.get("kind") == "setup"), None)
        if setup is None or self.backend is None:
            return recorded.model_copy(update={"proposer": f"replay:{recorded.proposer}"})
        return self._reexecute(context, parent_tree, recorded, setup)

    def _reexecute(
        self, context: ProposalContext, parent_tree: Path, recorded: Proposal, setup: dict[str, Any]
    ) -> Proposal:
        from agent.claude import AgentRun  # the agent's loop, imported only when a model-level replay runs

        assert self.backend is not None
        responses = [e for e in recorded.transcript if e.get("kind") == "response"]
        limits = setup.get("limits", {})
        config = ClaudeConfig(
            model=setup["model"],
            max_tokens=setup["max_tokens"],
            max_steps=max(1, len(responses)),
            max_generation_tokens=limits.get("max_generation_tokens", ClaudeConfig().max_generation_tokens),
            max_generation_dollars=limits.get(
                "max_generation_dollars", ClaudeConfig().max_generation_dollars
            ),
            # Wall time is not reproducible: the recorded responses bound the replay instead.
            max_generation_seconds=1e9,
        )
        model = RecordedModel(recorded.transcript, context.generation, self.trajectory)
        replayed = AgentRun(
            config, self.backend, model, f"replay:{recorded.proposer}", self.progress
        ).propose(context, parent_tree)
        found = self._compare(context.generation, recorded, replayed)
        self.divergences.extend(found)
        stop = recorded.stop_reason if replayed.stop_reason == "steps" else replayed.stop_reason
        return replayed.model_copy(
            update={
                "stop_reason": stop,
                "usage": Usage(),
                "transcript": [*replayed.transcript, {"kind": "replay", "divergences": found}],
            }
        )

    @staticmethod
    def _compare(generation: int, recorded: Proposal, replayed: Proposal) -> list[str]:
        found: list[str] = []
        first_user = [[e for e in p.transcript if e.get("kind") == "user"][:1] for p in (recorded, replayed)]
        if first_user[0] != first_user[1]:
            found.append(f"generation {generation}: the agent's context (objective, parent, history) differs")
        old_tools = [e for e in recorded.transcript if e.get("kind") == "tool"]
        new_tools = [e for e in replayed.transcript if e.get("kind") == "tool"]
        for old, new in zip(old_tools, new_tools, strict=False):
            where = f"generation {generation} step {old['step']} tool {old['name']}"
            if old.get("is_error") != new.get("is_error"):
                found.append(
                    f"{where}: recorded {'an error' if old.get('is_error') else 'success'}, now the opposite"
                )
            elif normalized(str(old.get("result"))) != normalized(str(new.get("result"))):
                found.append(
                    f"{where}: result differs ({first_difference(str(old['result']), str(new['result']))})"
                )
        if len(old_tools) != len(new_tools):
            found.append(
                f"generation {generation}: {len(old_tools)} tool calls recorded, {len(new_tools)} re-executed"
            )
        if recorded.diff != replayed.diff:
            found.append(f"generation {generation}: the re-executed diff differs from the recorded diff")
        return found
