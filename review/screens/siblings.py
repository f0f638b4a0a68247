"""The Siblings screen: a generation's waiting candidates side by side — every queued candidate
proposed from the same parent — to decide them together (`g` on a row of the review queue).

Each row shows the metric with its 95% confidence interval over the seeds, the gain over the
parent compared paired (seed by seed) with its 95% interval, the policy's verdict and how many findings it has. `space` marks a candidate; `a` accepts
the marked ones (or the one under the cursor) and rejects every other one shown, with one reason
asked once; `r` rejects them all with one reason; `enter` opens a candidate's change.
"""

from __future__ import annotations

import math
import statistics
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from core.change_summary import describe_change, shorten
from core.contracts import MetricResult
from review.host import ReviewHost
from review.screens.modals import RejectScreen
from review.screens.run import VERDICT_COLOR
from review.state import RunState
from review.widgets.header import RsiHeader

T_95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}
"""Two-sided 95% Student-t quantiles by degrees of freedom (1.96 beyond)."""
MARK = "●"


def interval(metric: MetricResult | None) -> str:
    """`mean ± half-width` of the 95% confidence interval over the seeds (one seed: the mean alone)."""
    if metric is None:
        return "—"
    values = list(metric.per_seed.values())
    if len(values) < 2:
        return f"{metric.mean:.3f}"
    half = T_95.get(len(values) - 1, 1.96) * statistics.stdev(values) / math.sqrt(len(values))
    return f"{metric.mean:.3f}±{half:.3f}"


def paired_gain(child: MetricResult | None, parent: MetricResult | None) -> str:
    """The gain over the parent on the seeds both were trained on, `gain ± half-width` of its 95%
    interval: the per-seed differences cancel the noise the two share (same data, same init)."""
    if child is None or parent is None:
        return "—"
    sign = 1.0 if child.direction == "higher" else -1.0
    gains = [sign * (child.per_seed[s] - parent.per_seed[s]) for s in child.per_seed if s in parent.per_seed]
    if len(gains) < 2:
        return f"{child.gain_over(parent):+.3f}"
    half = T_95.get(len(gains) - 1, 1.96) * statistics.stdev(gains) / math.sqrt(len(gains))
    return f"{statistics.fmean(gains):+.3f}±{half:.3f}"


def siblings_waiting(state: RunState, generation: int) -> list[int]:
    """The candidates waiting for a human that were proposed from the same parent as `generation`."""
    parent = state.records[generation].parent_commit
    return [
        g for g in sorted(state.records) if state.is_decidable(g) and state.records[g].parent_commit == parent
    ]


class SiblingsScreen(Screen[None]):
    """One parent's waiting candidates, decided together."""

    ready = False
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("space", "mark", "Mark"),
        Binding("a", "accept", "Accept marked, reject rest"),
        Binding("r", "reject_all", "Reject all"),
        Binding("enter", "open", "Open change"),
        Binding("escape", "app.pop_screen", "Back"),
        Binding("j", "down", "Down", show=False),
        Binding("k", "up", "Up", show=False),
    ]

    def __init__(self, generation: int) -> None:
        super().__init__()
        self.generation = generation
        self.shown: list[int] = []
        self.marked: set[int] = set()

    @property
    def rsi(self) -> ReviewHost:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield RsiHeader()
        yield Static(id="siblings-title")
        table: DataTable[object] = DataTable(id="siblings", cursor_type="row", zebra_stripes=True)
        for key, label in (
            ("mark", " "),
            ("gen", "gen"),
            ("metric", "metric ±95%"),
            ("delta", "paired Δ ±95%"),
            ("verdict", "verdict"),
            ("findings", "findings"),
            ("change", "change"),
        ):
            table.add_column(label, key=key)
        yield table
        yield Footer(show_command_palette=False)

    def on_mount(self) -> None:
        self.refresh_from_state(full=True)
        self.query_one(DataTable).focus()
        self.ready = True

    def refresh_from_state(
        self, generation: int | None = None, full: bool = False, status_only: bool = False
    ) -> None:
        if status_only:
            return
        state = self.rsi.state
        known = self.generation in state.records
        self.shown = siblings_waiting(state, self.generation) if known else []
        self.marked &= set(self.shown)
        table = self.query_one("#siblings", DataTable)
        row = table.cursor_row
        table.clear()
        for g in self.shown:
            table.add_row(*self._cells(state, g), key=str(g))
        if self.shown:
            table.move_cursor(row=min(row, len(self.shown) - 1))
        parent = state.records[self.generation].parent_commit[:10] if known else "?"
        title = (
            f"{len(self.shown)} candidate(s) from parent {parent} wait — space marks, a accepts the "
            "marked and rejects the rest (one reason), r rejects all"
            if self.shown
            else "Nothing from this parent waits any more. escape goes back."
        )
        self.query_one("#siblings-title", Static).update(Text(title, style="bold"))

    def _cells(self, state: RunState, g: int) -> tuple[object, ...]:
        record = state.records[g]
        metric = record.evaluation.metric if record.evaluation else None
        delta = state.delta(g)
        gain = paired_gain(metric, state.parent_metric(g))
        verdict = record.verdict.verdict if record.verdict else "—"
        findings = len(record.verdict.findings) if record.verdict else 0
        change = describe_change(record.proposal.diff, record.proposal.rationale) if record.proposal else ""
        return (
            Text(MARK if g in self.marked else " ", style="bold cyan"),
            Text(str(g), justify="right"),
            interval(metric),
            Text(gain, style="green" if delta and delta > 0 else ""),
            Text(verdict, style=VERDICT_COLOR.get(verdict, "")),
            Text(str(findings), justify="right"),
            Text(shorten(change, 48)),  # Text, not str: recorded words are not markup
        )

    def cursor_generation(self) -> int | None:
        table = self.query_one("#siblings", DataTable)
        if not table.row_count:
            return None
        key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
        return int(key.value) if key.value is not None else None

    def action_mark(self) -> None:
        generation = self.cursor_generation()
        if generation is None:
            return
        self.marked ^= {generation}
        table = self.query_one("#siblings", DataTable)
        table.update_cell(
            str(generation), "mark", Text(MARK if generation in self.marked else " ", style="bold cyan")
        )
        table.action_cursor_down()

    def action_accept(self) -> None:
        cursor = self.cursor_generation()
        chosen = sorted(self.marked) or ([cursor] if cursor is not None else [])
        if not chosen:
            return
        denied = [g for g in chosen if self._verdict(g) == "deny"]
        if denied:
            self.notify(
                f"generation(s) {', '.join(map(str, denied))} were denied by the policy and cannot be "
                "accepted; unmark them (space) first.",
                severity="error",
            )
            return
        rest = [g for g in self.shown if g not in chosen]
        self._ask_and_decide(chosen, rest)

    def action_reject_all(self) -> None:
        if self.shown:
            self._ask_and_decide([], list(self.shown))

    def _ask_and_decide(self, accept: list[int], reject: list[int]) -> None:
        if not reject:
            self.rsi.decide_many(accept, [], "")
            return
        names = ", ".join(map(str, reject))
        question = f"Reject generation(s) {names}: why? (one reason for all; the agent reads it)"

        def answered(reason: str | None) -> None:
            if reason is not None:
                self.rsi.decide_many(accept, reject, reason)

        self.app.push_screen(RejectScreen(reject[0], question), answered)

    def _verdict(self, generation: int) -> str | None:
        verdict = self.rsi.state.records[generation].verdict
        return verdict.verdict if verdict else None

    def action_open(self) -> None:
        generation = self.cursor_generation()
        if generation is not None:
            self.rsi.open_change(generation)

    def action_down(self) -> None:
        self.query_one("#siblings", DataTable).action_cursor_down()

    def action_up(self) -> None:
        self.query_one("#siblings", DataTable).action_cursor_up()
