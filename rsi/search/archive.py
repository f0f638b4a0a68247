"""The archive: every evaluated node of a search, each with a pointer to its parent.

The root is the target as given. A node is `accepted` once it is committed to the lineage (it may
then become a parent), `rejected` or `denied` when it is not, `failed` when its evaluation failed,
`duplicate` when its tree is one the archive already holds (reached by another path: not
counted as an evaluation, never expanded twice), `review` when its gain was positive but not
significant (a human decides), and `demoted` when an elite re-measured on fresh seeds no longer beat its parent (a lucky score
must not seed a branch). Scores are oriented so that higher is always better.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

from pydantic import BaseModel, Field

NodeStatus = Literal[
    "root", "pending", "accepted", "rejected", "denied", "failed", "demoted", "duplicate", "review"
]
EXPANDABLE: frozenset[str] = frozenset({"root", "accepted"})


class Node(BaseModel):
    """One evaluated candidate (or the root) of the search tree."""

    id: str
    """Stable node id: `n0` is the root, then `n1`, `n2`, … in the order nodes are created."""
    parent: str | None
    """The id of the node it was proposed from; None for the root."""
    generation: int = 0
    """The generation that proposed it (0 for the root)."""
    status: NodeStatus = "pending"
    """Where the node stands (see the module docstring)."""
    score: float | None = None
    """Mean of per_seed, signed so that higher is better; None when the evaluation failed."""
    per_seed: dict[int, float] = Field(default_factory=dict)
    """The metric per training seed (signed like score), every seed ever measured."""
    move: str = ""
    """What the proposer changed, in one line (its rationale's first line)."""
    commit: str | None = None
    """The lineage commit of an accepted node (and of the root)."""
    tree: str | None = None
    """Identity of the node's files (a git tree id in a run): equal trees are the same node."""
    confirmed: bool = False
    """Re-measured on fresh seeds and still better than its parent: safe to build on."""


class Archive:
    """Every node of a search, in creation order; selection strategies read it, the engine writes."""

    def __init__(self, nodes: list[Node] | None = None) -> None:
        self._nodes: dict[str, Node] = {}
        for node in nodes or []:
            self._nodes[node.id] = node

    @classmethod
    def rooted(cls, per_seed: dict[int, float], commit: str | None = None) -> Archive:
        root = Node(
            id="n0", parent=None, status="root", per_seed=dict(per_seed), commit=commit, confirmed=True
        )
        root.score = _mean(root.per_seed)
        return cls([root])

    def __iter__(self) -> Iterator[Node]:
        return iter(self._nodes.values())

    def __len__(self) -> int:
        return len(self._nodes)

    def __getitem__(self, node_id: str) -> Node:
        try:
            return self._nodes[node_id]
        except KeyError:
            raise KeyError(f"no node {node_id!r} in the archive (it has {len(self._nodes)} nodes)") from None

    @property
    def root(self) -> Node:
        return next(iter(self._nodes.values()))

    def add(self, parent: str, generation: int, move: str) -> Node:
        _ = self[parent]  # a clear error for an unknown parent
        node = Node(id=f"n{len(self._nodes)}", parent=parent, generation=generation, move=move)
        self._nodes[node.id] = node
        return node

    def record_scores(self, node_id: str, per_seed: dict[int, float]) -> Node:
        node = self[node_id]
        node.per_seed.update(per_seed)
        node.score = _mean(node.per_seed)
        return node

    def children(self, node_id: str) -> list[Node]:
        return [n for n in self._nodes.values() if n.parent == node_id]

    def expandable(self) -> list[Node]:
        """Nodes a new candidate may be proposed from: the root and accepted nodes."""
        return [n for n in self._nodes.values() if n.status in EXPANDABLE and n.score is not None]

    def best(self) -> Node:
        return max(self.expandable(), key=lambda n: (n.score or 0.0, -int(n.id[1:])))

    def ancestry(self, node_id: str) -> list[Node]:
        """The node's ancestors, root first, the node itself last."""
        chain = [self[node_id]]
        while chain[-1].parent is not None:
            chain.append(self[chain[-1].parent])
        return chain[::-1]

    def best_path(self) -> set[str]:
        return {n.id for n in self.ancestry(self.best().id)}

    def evaluated(self) -> list[Node]:
        """Candidate nodes evaluated so far, in the order they were proposed (the root is not a
        candidate; a duplicate is the node it repeats, not an evaluation)."""
        return [
            n
            for n in self._nodes.values()
            if n.parent is not None and n.status not in ("pending", "duplicate")
        ]

    def evaluations(self) -> int:
        return len(self.evaluated())

    def holder_of(self, tree: str, besides: str) -> Node | None:
        """A node created before `besides` with these files (a duplicate itself excepted), if any."""
        for node in self._nodes.values():
            if node.id == besides:
                return None
            if node.tree == tree and node.status != "duplicate":
                return node
        return None


def _mean(per_seed: dict[int, float]) -> float | None:
    return sum(per_seed.values()) / len(per_seed) if per_seed else None
