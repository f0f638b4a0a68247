"""The Tree screen: the run's search tree — which candidate came from which node, what became of
each (accepted, rejected, denied, failed, awaiting review), the path to the best node marked ★.

Opened with `t` from the Run screen; `enter` on a candidate opens its change, `escape` goes back.
A run with one parent per generation (greedy) is a single line down the tree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Footer, Static, Tree
from textual.widgets.tree import TreeNode

from core.change_summary import describe_change, shorten
from review.host import ReviewHost
from review.state import RunState, mean_of
from review.widgets.header import RsiHeader

BEST = "★"
STATUS_STYLE = {
    "accepted": "bold green",
    "rejected": "magenta",
    "denied": "red",
    "failed": "red",
    "awaiting review": "bold yellow",
}


@dataclass(frozen=True)
class TreeRow:
    generation: int
    """0 for the baseline."""
    parent: int | None
    """The generation it was proposed from (0: the baseline); None for the baseline itself."""
    change: str
    status: str
    metric: float | None


def tree_rows(state: RunState) -> list[TreeRow]:
    """The baseline, then every candidate under the accepted node (or baseline) it came from."""
    generation_of = {state.baseline_commit: 0}
    generation_of |= {r.commit: g for g, r in state.records.items() if r.commit}
    baseline = state.baseline.metric if state.baseline else None
    rows = [TreeRow(0, None, "baseline", "root", mean_of(baseline) if baseline else None)]
    for generation, record in sorted(state.records.items()):
        metric = record.evaluation.metric if record.evaluation else None
        change = (
            describe_change(record.proposal.diff, record.proposal.rationale)
            if record.proposal
            else "proposing…"
        )
        rows.append(
            TreeRow(
                generation,
                generation_of.get(record.parent_commit, 0),
                change,
                state.status(generation),
                mean_of(metric) if metric else None,
            )
        )
    return rows


def best_path(rows: list[TreeRow], direction: str) -> set[int]:
    """Generations from the baseline to the best accepted node (the baseline alone if none is better)."""
    sign = -1.0 if direction == "lower" else 1.0
    kept = [r for r in rows if r.status in ("root", "accepted") and r.metric is not None]
    if not kept:
        return set()
    by_generation = {r.generation: r for r in rows}
    node: TreeRow | None = max(kept, key=lambda r: (sign * (r.metric or 0.0), -r.generation))
    path: set[int] = set()
    while node is not None:
        path.add(node.generation)
        node = by_generation.get(node.parent) if node.parent is not None else None
    return path


def row_label(row: TreeRow, marked: bool, width: int) -> Text:
    name = "baseline" if row.generation == 0 else f"gen {row.generation}"
    metric = "—" if row.metric is None else f"{row.metric:.4f}"
    status = "" if row.generation == 0 else row.status
    label = Text.assemble(
        (f"{name} ", "bold" if marked else ""),
        (f"{metric} ", "bold" if marked else ""),
        (status, STATUS_STYLE.get(row.status, "")),
        (f" {BEST}" if marked else "", "bold yellow"),
    )
    if row.generation:
        label.append(f"  {shorten(row.change, max(10, width - len(label.plain) - 2))}")
    return label


class TreeScreen(Screen[None]):
    """Every node of the run under its parent; the best path marked."""

    ready = False
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
    ]

    @property
    def rsi(self) -> ReviewHost:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield RsiHeader()
        yield Static(id="tree-legend")
        tree: Tree[int] = Tree("search tree", id="search-tree")
        tree.show_root = False
        tree.guide_depth = 3
        yield tree
        yield Footer(show_command_palette=False)

    def on_mount(self) -> None:
        self.refresh_tree()
        self.ready = True

    def refresh_tree(self) -> None:
        state = self.rsi.state
        rows = tree_rows(state)
        baseline = state.baseline.metric if state.baseline else None
        marked = best_path(rows, baseline.direction if baseline else "higher")
        accepted = sum(1 for r in rows if r.status == "accepted")
        self.query_one("#tree-legend", Static).update(
            f"{len(rows) - 1} candidates, {accepted} accepted · {BEST} the path to the best · "
            "enter opens a change"
        )
        tree = self.query_one("#search-tree", Tree)
        tree.clear()
        width = max(40, self.app.size.width - 8)
        children: dict[int | None, list[TreeRow]] = {}
        for row in rows:
            children.setdefault(row.parent, []).append(row)

        def add(parent_node: TreeNode[int], row: TreeRow, depth: int) -> None:
            kids = children.get(row.generation, []) if row.status in ("root", "accepted") else []
            label = row_label(row, row.generation in marked, width - 4 * depth)
            if not kids:
                parent_node.add_leaf(label, data=row.generation)
                return
            node = parent_node.add(label, data=row.generation, expand=True)
            for kid in kids:
                add(node, kid, depth + 1)

        for root in children.get(None, []):
            add(tree.root, root, 0)
        tree.root.expand()

    def action_cursor_down(self) -> None:
        self.query_one("#search-tree", Tree).action_cursor_down()

    def action_cursor_up(self) -> None:
        self.query_one("#search-tree", Tree).action_cursor_up()

    @on(Tree.NodeSelected)
    def _open(self, event: Tree.NodeSelected[int]) -> None:
        generation = event.node.data
        if generation:
            self.rsi.open_change(generation)
