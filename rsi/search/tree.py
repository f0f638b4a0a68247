"""A search tree as text: which node came from which, what became of each, the best path marked.

    print(render_tree([TreeNode("n0", None, "baseline", "root", 0.15), ...], direction="higher"))

    n0 baseline — root 0.1480  ★
    ├── n1 input_range 0.5 → 1.0 — accepted 0.6590  ★
    │   └── n3 label_noise 0.2 → 0.1 — rejected 0.6500
    └── n2 init_scale 1.0 → 2.0 — denied 0.0900

★ marks the path from the root to the best accepted node. Used by `rsi report` and the search bench.
"""

from __future__ import annotations

from dataclasses import dataclass

BEST = "★"


@dataclass(frozen=True)
class TreeNode:
    id: str
    parent: str | None
    label: str
    """What the node changed, in a few words."""
    status: str
    """root, accepted, rejected, denied, failed, queued, …"""
    score: float | None
    """The node's metric mean (in the metric's own direction); None when it has none."""


def best_path(nodes: list[TreeNode], direction: str = "higher") -> set[str]:
    """Ids from the root to the best accepted node (or the root alone)."""
    sign = 1.0 if direction == "higher" else -1.0
    kept = [n for n in nodes if n.status in ("root", "accepted") and n.score is not None]
    if not kept:
        return set()
    best = max(kept, key=lambda n: sign * (n.score or 0.0))
    by_id = {n.id: n for n in nodes}
    path, node = set(), best
    while node is not None:
        path.add(node.id)
        node = by_id.get(node.parent) if node.parent else None  # type: ignore[assignment]
    return path


def render_tree(nodes: list[TreeNode], direction: str = "higher") -> str:
    marked = best_path(nodes, direction)
    children: dict[str | None, list[TreeNode]] = {}
    for node in nodes:
        children.setdefault(node.parent, []).append(node)
    lines: list[str] = []

    def walk(node: TreeNode, prefix: str, branch: str, last: bool) -> None:
        score = "—" if node.score is None else f"{node.score:.4f}"
        star = f"  {BEST}" if node.id in marked else ""
        lines.append(f"{prefix}{branch}{node.id} {node.label} — {node.status} {score}{star}")
        kids = children.get(node.id, [])
        below = prefix + ("" if not branch else ("    " if last else "│   "))
        for index, kid in enumerate(kids):
            end = index == len(kids) - 1
            walk(kid, below, "└── " if end else "├── ", end)

    ids = {n.id for n in nodes}
    for root in [n for n in nodes if n.parent is None or n.parent not in ids]:
        walk(root, "", "", True)
    return "\n".join(lines)
