"""The replay proposer: feeds a recorded run's proposals back, in order, with no network.

Used by `rsi replay --verify` to re-execute a run: each generation gets exactly the proposal that
was recorded for it, and any difference between the recorded situation and the re-executed one
(another parent tree, a proposal that is missing) is noted as a divergence, with where it happened.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from rsi.contracts import Proposal, ProposalContext
from rsi.errors import TrajectoryError
from rsi.trajectory import TrajectoryReader


class ReplayProposer:
    name = "replay"

    def __init__(self, trajectory: Path) -> None:
        self.trajectory = trajectory
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
                self.recorded_parents[event.generation] = str(event.data.get("parent", ""))
                self.recorded_parent_trees[event.generation] = str(event.data.get("parent_tree", ""))
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
        return recorded.model_copy(update={"proposer": f"replay:{recorded.proposer}"})
