"""The Queue screen: changes the policy sent to a human, oldest first (`rsi review RUN_DIR`)."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from core.change_summary import describe_change, shorten
from review.host import ReviewHost
from review.screens.run import VERDICT_COLOR
from review.screens.siblings import SiblingsScreen
from review.widgets.header import RsiHeader


class QueueScreen(Screen[None]):
    ready = False
    """Set once mounted: refreshes before that have nothing to update."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "open", "Open change"),
        Binding("g", "siblings", "Side by side", show=False),
        Binding("escape", "back", "Whole run"),
        Binding("j", "down", "Down", show=False),
        Binding("k", "up", "Up", show=False),
    ]

    @property
    def rsi(self) -> ReviewHost:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield RsiHeader()
        yield Static(id="queue-title")
        table: DataTable[object] = DataTable(id="queue", cursor_type="row", zebra_stripes=True)
        table.add_column("gen", key="gen")
        table.add_column("verdict", key="verdict")
        table.add_column("Δ parent", key="delta")
        # What the change does comes before why it waits: on a narrow terminal the end is cut.
        table.add_column("change", key="change")
        table.add_column("why it waits", key="why")
        yield table
        yield Footer(show_command_palette=False)

    def on_mount(self) -> None:
        self.ready = True
        self.title = "rsi · review queue"
        self.refresh_from_state(full=True)
        self.query_one(DataTable).focus()

    def refresh_from_state(
        self, generation: int | None = None, full: bool = False, status_only: bool = False
    ) -> None:
        if not self.ready or status_only:
            return
        state = self.rsi.state
        waiting = [g for g in sorted(state.records) if state.is_decidable(g)]
        table = self.query_one("#queue", DataTable)
        table.clear()
        for g in waiting:
            record = state.records[g]
            verdict = record.verdict.verdict if record.verdict else "—"
            delta = state.delta(g)
            why = record.decision.reason if record.decision else ""
            rationale = (
                describe_change(record.proposal.diff, record.proposal.rationale) if record.proposal else ""
            )
            table.add_row(
                Text(str(g), justify="right"),
                Text(verdict, style=VERDICT_COLOR.get(verdict, "")),
                f"{delta:+.4f}" if delta is not None else "—",
                Text(shorten(rationale, 36)),  # Text, not str: recorded words are not markup
                Text(shorten(why, 80)),
                key=str(g),
            )
        title = (
            f"{len(waiting)} change(s) wait for your decision — enter opens one; a/r/s decide it there"
            if waiting
            else "Nothing waits for review. escape shows the whole run, q quits."
        )
        self.query_one("#queue-title", Static).update(Text(title, style="bold"))

    @on(DataTable.RowSelected, "#queue")
    def selected(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value is not None:
            self.rsi.open_change(int(event.row_key.value))

    def action_open(self) -> None:
        table = self.query_one("#queue", DataTable)
        if table.row_count:
            key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
            if key.value is not None:
                self.rsi.open_change(int(key.value))

    def action_siblings(self) -> None:
        """The selected candidate and its waiting siblings (same parent), side by side."""
        table = self.query_one("#queue", DataTable)
        if table.row_count:
            key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
            if key.value is not None:
                self.app.push_screen(SiblingsScreen(int(key.value)))

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_down(self) -> None:
        self.query_one("#queue", DataTable).action_cursor_down()

    def action_up(self) -> None:
        self.query_one("#queue", DataTable).action_cursor_up()
