"""The Run screen: the generations with their status, the metric plot, the budget, what runs now,
and a warning when the lineage's lockbox score stops following its selection metric.

In replay mode it also holds the replay cursor: the screen shows the run as it was after the
event under the cursor, and h/l, [/], g/G and : move it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from core.change_summary import describe_change, shorten
from core.visible import shown
from review.gcpause import collector_paused
from review.host import ReviewHost
from review.screens.tree import TreeScreen
from review.state import ReplayStates, RunState, event_summary, mean_of, spread_of
from review.widgets.generation_table import GenerationTable
from review.widgets.header import RsiHeader
from review.widgets.plot import MetricPlot

STATUS_COLOR = {
    "running": "cyan",
    "deciding": "cyan",
    "awaiting review": "bold yellow",
    "accepted": "bold green",
    "rejected": "magenta",
    "denied": "red",
    "failed": "red",
}
VERDICT_COLOR = {"allow": "green", "review": "yellow", "deny": "red"}
COLUMNS = (
    ("gen", "gen"),
    ("status", "status"),
    ("delta", "Δ parent"),
    ("metric", "metric"),
    ("verdict", "verdict"),
    ("change", "change"),
)


NARROW = 100
"""Below this width the metric column shows the mean alone, leaving the room to the change."""
FIXED_METRIC_WIDTH = 16
FIXED_WIDTHS = {"gen": 4, "status": 15, "delta": 8, "verdict": 7}
"""Every column but the change has a known width: the table never measures 2,000 rows to size
them, and the change column gets exactly what is left."""


def column_widths(screen_width: int) -> dict[str, int]:
    widths = {**FIXED_WIDTHS, "metric": 6 if screen_width < NARROW else FIXED_METRIC_WIDTH}
    cell_padding, scrollbar = 2, 2
    used = sum(widths.values()) + cell_padding * len(COLUMNS) + scrollbar
    return {key: widths.get(key, max(12, screen_width - used)) for key, _ in COLUMNS}


def generation_cells(
    state: RunState, generation: int, narrow: bool = False, change_width: int = 90
) -> tuple[object, ...]:
    record = state.records[generation]
    status = state.status(generation)
    metric = record.evaluation.metric if record.evaluation else None
    delta = state.delta(generation)
    verdict = record.verdict.verdict if record.verdict else "—"
    rationale = (
        describe_change(record.proposal.diff, record.proposal.rationale) if record.proposal else "proposing…"
    )
    if record.evaluation is not None and record.evaluation.failure:
        rationale = f"[{record.evaluation.failure}] {rationale}"
    return (
        Text(str(generation), justify="right"),
        Text(status, style=STATUS_COLOR.get(status, "")),
        Text(f"{delta:+.4f}" if delta is not None else "—", style="green" if delta and delta > 0 else ""),
        (f"{mean_of(metric):.4f}" if narrow else f"{mean_of(metric):.4f} ± {spread_of(metric):.4f}")
        if metric
        else "—",
        Text(verdict, style=VERDICT_COLOR.get(verdict, "")),
        Text(shorten(rationale, change_width)),  # Text, not str: a proposer's words are not markup
    )


class RunScreen(Screen[None]):
    ready = False
    """Set once mounted: refreshes before that have nothing to update."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "open_change", "Open change", show=True, priority=False),
        Binding("u", "queue", "Queue"),
        Binding("t", "tree", "Tree", show=False),
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
        Binding("l,right", "step(1)", "Next event"),
        Binding("h,left", "step(-1)", "Prev event"),
        Binding("right_square_bracket", "generation(1)", "Next gen", key_display="]"),
        Binding("left_square_bracket", "generation(-1)", "Prev gen", key_display="["),
        Binding("g,home", "first", "First", show=False),
        Binding("G,end", "last", "Last", show=False),
        Binding("colon", "jump", "Jump to event", key_display=":"),
    ]
    REPLAY_ACTIONS = frozenset({"step", "generation", "first", "last", "jump"})

    def __init__(self) -> None:
        super().__init__()
        self.cursor: int = -1
        self.view_state: RunState | None = None
        self._shown: dict[int, tuple[str, ...]] = {}
        self._widths: dict[str, int] = {}
        self._replay: ReplayStates | None = None

    @property
    def rsi(self) -> ReviewHost:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield RsiHeader()
        yield Static(id="now")
        yield Static(id="budget")
        yield Static(id="lockbox-flag")
        succession = Static(id="succession-flag")
        succession.display = False  # shown only when a succession finding fires
        yield succession
        yield MetricPlot(id="plot")
        table = GenerationTable(id="generations", cursor_type="row", zebra_stripes=True)
        self._add_columns(table, self.app.size.width)
        yield table
        yield Static(id="replay-bar")
        yield Footer(show_command_palette=False)

    def _add_columns(self, table: DataTable[object], screen_width: int) -> None:
        self._widths = column_widths(screen_width)
        for key, label in COLUMNS:
            table.add_column(label, key=key, width=self._widths[key])

    def on_resize(self) -> None:
        if not self.ready or column_widths(self.size.width) == self._widths:
            return
        # Rare (a terminal resize): rebuild with the new widths rather than re-measure every cell,
        # and keep the generation the cursor was on (a rebuilt table starts at its top).
        selected = self.selected_generation()
        table = self.query_one("#generations", GenerationTable)
        table.clear(columns=True)
        self._add_columns(table, self.size.width)
        self._shown.clear()
        self._refresh_table(self.shown_state, None)
        if selected is not None:
            self._select(selected)

    def on_mount(self) -> None:
        self.ready = True
        self.query_one("#replay-bar").display = self.rsi.mode == "replay"
        self.refresh_from_state(full=True)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in self.REPLAY_ACTIONS:
            return self.rsi.mode == "replay"
        if action == "queue":
            return self.rsi.mode == "review"
        return True

    # -- the state shown -----------------------------------------------------------------

    @property
    def shown_state(self) -> RunState:
        if self.rsi.mode == "replay" and self.view_state is not None:
            return self.view_state
        return self.rsi.state

    def refresh_from_state(
        self, generation: int | None = None, full: bool = False, status_only: bool = False
    ) -> None:
        if not self.ready:
            return
        if self.rsi.mode == "replay" and full:
            self.cursor = len(self.rsi.all_events) - 1
            self.view_state = self.rsi.state
        state = self.shown_state
        self._refresh_status(state)
        if status_only:
            return
        plot = self.query_one(MetricPlot)
        plot.metric_name = state.metric_name
        baseline = state.baseline.metric if state.baseline else None
        plot.direction = baseline.direction if baseline else ""
        plot.points = state.series()
        self._refresh_table(state, None if full else generation)

    def _refresh_status(self, state: RunState) -> None:
        now = self.rsi.now
        if self.rsi.mode == "replay" and 0 <= self.cursor < len(self.rsi.all_events):
            event = self.rsi.all_events[self.cursor]
            now = (
                f"event {event.seq}/{len(self.rsi.all_events) - 1} · {event.ts[:19]} · {event_summary(event)}"
            )
            self.query_one("#replay-bar", Static).update(
                "h/l event · [ ] generation · g/G first/last · : jump · enter open"
            )
        self.query_one("#now", Static).update(Text.assemble(("now  ", "bold"), now))
        info = state.info
        target = info.get("target", {}).get("target", {}).get("name", "")
        config = info.get("config", {})
        when = datetime.now(UTC) if self.rsi.running else None
        budget = state.budget_text(when)
        accepted = state.accepted()
        self.query_one("#budget", Static).update(
            Text.assemble(
                ("budget  ", "bold"),
                budget,
                f" · {accepted} accepted",
                f" · target {target} · proposer {config.get('proposer', '?')} · policy "
                f"{info.get('policy', {}).get('name', '?')}",
            )
        )
        self.title = f"rsi · run {config.get('run_id', '…')}"
        self._refresh_lockbox_flag(state)
        self._refresh_succession_flag(state)

    def _refresh_succession_flag(self, state: RunState) -> None:
        """A bootstrapping run's successors compounding a flaw or running away with compute."""
        flag = self.query_one("#succession-flag", Static)
        findings = state.succession_findings()
        flag.display = bool(findings)
        if findings:
            more = f" (+{len(findings) - 1} more in the report)" if len(findings) > 1 else ""
            flag.update(
                Text.assemble((f"⚠ {findings[0].rule_id}  ", "bold"), shown(findings[0].message), more)
            )

    def _refresh_lockbox_flag(self, state: RunState) -> None:
        flag = self.query_one("#lockbox-flag", Static)
        gap = state.lockbox_gap()
        flag.display = gap is not None
        if gap is not None:
            evidence = gap.evidence
            flag.update(
                Text.assemble(
                    ("⚠ lockbox gap  ", "bold"),
                    f"selection {evidence['selection_gain']:+.4f} but lockbox {evidence['lockbox_gain']:+.4f} "
                    f"over {len(evidence['selection']) - 1} accepted generation(s): ",
                    ("adaptive overfitting of the lineage", "bold"),
                )
            )

    def _refresh_table(
        self, state: RunState, generation: int | None, changed: set[int] | None = None
    ) -> None:
        """Show the state's generations; only `generation` (or the `changed` ones) if given."""
        table = self.query_one("#generations", GenerationTable)
        if changed is not None:
            for g in set(self._shown) - set(state.records):
                table.remove_row(str(g))
                del self._shown[g]
            wanted = sorted(changed)
        else:
            wanted = sorted(state.records) if generation is None else [generation]
        if generation is None and changed is None:
            stale = set(self._shown) - set(state.records)
            if len(stale) > 200 or (len(wanted) > 200 and not self._shown):
                # Many rows change at once (loading, a replay jump): rebuilding beats diffing.
                table.clear()
                self._shown.clear()
            else:
                for g in stale:
                    table.remove_row(str(g))
                    del self._shown[g]
        new_rows: list[tuple[str, tuple[object, ...]]] = []
        with collector_paused():
            self._compute_rows(state, wanted, table, new_rows)
        table.add_keyed_rows(new_rows)
        # An empty table's cursor sits on row -1, the header's: DataTable would paint the header as
        # the cursor row whenever it renders afresh (a resize, a theme change), not from its cache.
        table.show_cursor = table.row_count > 0

    def _compute_rows(
        self,
        state: RunState,
        wanted: list[int],
        table: GenerationTable,
        new_rows: list[tuple[str, tuple[object, ...]]],
    ) -> None:
        for g in wanted:
            if g not in state.records:
                continue
            cells = generation_cells(
                state,
                g,
                narrow=self._widths["metric"] < FIXED_METRIC_WIDTH,
                change_width=self._widths["change"],
            )
            plain = tuple(str(c) for c in cells)
            if g not in self._shown:
                new_rows.append((str(g), cells))
            elif self._shown[g] != plain:
                for (column, _), value in zip(COLUMNS, cells, strict=True):
                    table.update_cell(str(g), column, value)  # fixed widths: nothing to re-measure
            self._shown[g] = plain

    # -- actions ---------------------------------------------------------------------------

    def selected_generation(self) -> int | None:
        table = self.query_one("#generations", DataTable)
        if table.row_count == 0:
            return None
        row_key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
        return int(row_key.value) if row_key.value is not None else None

    @on(DataTable.RowSelected, "#generations")
    def row_selected(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value is not None:
            self.rsi.open_change(int(event.row_key.value))

    def action_open_change(self) -> None:
        generation = self.selected_generation()
        if generation is not None:
            self.rsi.open_change(generation)

    def action_queue(self) -> None:
        self.rsi.open_queue()

    def action_tree(self) -> None:
        self.app.push_screen(TreeScreen())

    def action_cursor_down(self) -> None:
        self.query_one("#generations", DataTable).action_cursor_down()

    def action_cursor_up(self) -> None:
        self.query_one("#generations", DataTable).action_cursor_up()

    # -- replay navigation ----------------------------------------------------------------

    def move_to(self, cursor: int) -> None:
        events = self.rsi.all_events
        if not events:
            return
        cursor = max(0, min(cursor, len(events) - 1))
        if cursor == self.cursor:
            return
        if self.view_state is not None and cursor == self.cursor + 1:
            self.view_state.apply(events[cursor])
        else:
            if self._replay is None or self._replay.events is not events:
                self._replay = ReplayStates(events, self.rsi.parsed)
            self.view_state = self._replay.at(cursor)
        low, high = sorted((self.cursor, cursor))
        touched = {e.generation for e in events[max(low, 0) : high + 1] if e.generation}
        self.cursor = cursor
        state = self.shown_state
        self._refresh_status(state)
        self.query_one(MetricPlot).points = state.series()
        # A step touches a generation or two; a long jump redraws the list.
        self._refresh_table(state, None, changed=touched if len(touched) <= 50 else None)
        generation = events[cursor].generation
        if generation:
            self._select(generation)

    def _select(self, generation: int) -> None:
        table = self.query_one("#generations", DataTable)
        if str(generation) in table.rows:
            table.move_cursor(row=table.get_row_index(str(generation)))

    def action_step(self, delta: int) -> None:
        self.move_to(self.cursor + delta)

    def action_first(self) -> None:
        self.move_to(0)

    def action_last(self) -> None:
        self.move_to(len(self.rsi.all_events) - 1)

    def action_generation(self, delta: int) -> None:
        """Move to the last event of the next (or previous) generation."""
        events = self.rsi.all_events
        last_of: dict[int, int] = {}
        for index, event in enumerate(events):
            if event.generation:  # generation 0 is the baseline
                last_of[event.generation] = index
        ends = sorted(last_of.values())
        if delta > 0:
            later = [i for i in ends if i > self.cursor]
            self.move_to(later[0] if later else len(events) - 1)
        else:
            earlier = [i for i in ends if i < self.cursor]
            self.move_to(earlier[-1] if earlier else 0)

    def action_jump(self) -> None:
        from review.screens.modals import JumpScreen

        def jump(seq: int | None) -> None:
            if seq is not None:
                self.move_to(seq)

        self.app.push_screen(JumpScreen(len(self.rsi.all_events) - 1), jump)
