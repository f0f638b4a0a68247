"""Modal screens: the reject reason, a yes/no confirmation, jump to event, logs, the help overlay."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, RichLog, Static

from core.contracts import Evaluation
from core.visible import shown

KEYS: tuple[tuple[str, str, str], ...] = (
    ("everywhere", "?", "this help"),
    ("everywhere", "q", "quit (a live run is stopped after its current step)"),
    ("everywhere", "ctrl+t", "switch dark / light theme"),
    ("everywhere", "ctrl+p", "command palette"),
    ("run", "↑/↓ j/k", "move in the generations"),
    ("run", "enter", "open the change of the selected generation"),
    ("run", "u", "review queue (rsi review)"),
    ("run", "t", "the search tree: which candidate came from which, the best path ★"),
    ("tree", "enter", "open the change of the selected candidate"),
    ("replay", "h/l ←/→", "previous / next event"),
    ("replay", "[ / ]", "previous / next generation"),
    ("replay", "g/G home/end", "first / last event"),
    ("replay", ":", "jump to an event by number"),
    ("change", "a", "accept (not for a policy deny; a review verdict needs its findings seen)"),
    ("change", "r", "reject, with a reason the agent will read"),
    ("change", "s", "skip: leave it in the review queue for later"),
    ("change", "f", "policy findings; enter on one jumps to its line in the diff"),
    ("change", "d", "focus the diff; j/k ↑/↓ pgup/pgdn scroll"),
    ("change", "v", "unified / side-by-side diff"),
    ("change", "L", "logs of every phase (tests, train, predict)"),
    ("change", "m", "maximize the focused pane (again to restore)"),
    ("change", "escape", "back to the run"),
    ("queue", "enter", "open the selected queued change"),
    (
        "queue",
        "g",
        "it and its waiting siblings side by side: space marks, a accepts the marked, r rejects all",
    ),
    ("queue", "escape", "the whole run"),
)


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark,q", "close", "Close", key_display="esc"),
    ]

    def compose(self) -> ComposeResult:
        table = Table(box=None, padding=(0, 1), show_header=True, header_style="bold")
        table.add_column("where", style="dim")
        table.add_column("key", style="bold")
        table.add_column("what it does")
        for where, key, what in KEYS:
            table.add_row(where, key, what)
        with Vertical(id="help-box", classes="dialog"):
            yield Label("Keys (the footer shows those that apply now; the mouse works too)", classes="title")
            yield Static(table, id="help-table")
            yield Label("escape closes", classes="hint")

    def action_close(self) -> None:
        self.dismiss(None)


class ConfirmScreen(ModalScreen[bool]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            # Static, not Label: it wraps to the dialog's width, so no word of the question is cut.
            yield Static(Text(self.question), classes="question")
            with Horizontal(classes="buttons"):
                yield Button("Yes (y)", id="yes", variant="error")
                yield Button("No (n)", id="no", variant="primary")

    @on(Button.Pressed)
    def pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)


class RejectScreen(ModalScreen[str | None]):
    """Ask why: the reason is recorded and goes back to the agent with the next proposal."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, generation: int, question: str | None = None) -> None:
        super().__init__()
        self.generation = generation
        self.question = question or f"Reject generation {generation}: why? (the agent reads this)"

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.question)
            yield Input(placeholder="e.g. the gain is within the noise; touches the data loader", id="reason")
            yield Label("enter rejects · escape cancels", classes="hint")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @on(Input.Submitted)
    def submitted(self, event: Input.Submitted) -> None:
        reason = event.value.strip()
        if not reason:
            self.notify("type a reason: it is recorded and sent back to the agent", severity="warning")
            return
        self.dismiss(reason)

    def action_cancel(self) -> None:
        self.dismiss(None)


class JumpScreen(ModalScreen[int | None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, last: int) -> None:
        super().__init__()
        self.last = last

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(f"Jump to event number (0…{self.last})")
            yield Input(type="integer", id="seq")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @on(Input.Submitted)
    def submitted(self, event: Input.Submitted) -> None:
        try:
            seq = int(event.value)
        except ValueError:
            self.notify(
                f"{event.value!r} is not an event number (0…{self.last})", severity="warning", markup=False
            )
            return
        self.dismiss(max(0, min(seq, self.last)))

    def action_cancel(self) -> None:
        self.dismiss(None)


class LogsScreen(ModalScreen[None]):
    """Every phase's full log, read from the run's logs/ in a worker (tails when a file is gone)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,L,q", "close", "Close", key_display="esc")]

    def __init__(self, generation: int, evaluation: Evaluation) -> None:
        super().__init__()
        self.generation = generation
        self.evaluation = evaluation

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            yield Label(f"Logs of generation {self.generation} (escape closes)", classes="title")
            yield RichLog(id="logs", wrap=False, highlight=False, markup=False, max_lines=20000)

    def on_mount(self) -> None:
        self.query_one(RichLog).focus()
        self.read_logs()

    @work(thread=True, exclusive=True)
    def read_logs(self) -> None:
        chunks: list[tuple[str, str]] = []
        if self.evaluation.failure_detail:
            chunks.append((f"failure: {self.evaluation.failure}", self.evaluation.failure_detail))
        for phase in self.evaluation.phases:
            body = phase.output_tail
            if phase.log_file and Path(phase.log_file).is_file():
                body = Path(phase.log_file).read_text(encoding="utf-8", errors="replace")
            chunks.append((f"{phase.phase} · exit {phase.exit_code} · {phase.duration_s:.1f}s", body))
        if not chunks:
            chunks.append(("no phases ran", ""))
        self.app.call_from_thread(self._show, chunks)

    def _show(self, chunks: list[tuple[str, str]]) -> None:
        log = self.query_one(RichLog)
        for title, body in chunks:
            log.write(shown(f"── {title} ", style="bold"))
            log.write(shown(body.rstrip()))

    def action_close(self) -> None:
        self.dismiss(None)
