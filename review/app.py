"""The review app: watch a run live, inspect each change, accept or reject it; replay; the queue.

    app = make_app("live", live=live_run(config))    # rsi run in a terminal (rsi.live builds the run)
    app = make_app("replay", trajectory=path)        # rsi replay TRAJ
    app = make_app("review", run_dir=run_dir)        # rsi review RUN_DIR
    app.run()

The same screens serve every mode. The loop and all file reading run in worker threads; the loop
talks to the app only through messages, and waits on the HumanReviewer for decisions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

from rich.cells import cell_len
from rich.segment import Segment
from textual import on, work
from textual.app import App
from textual.binding import Binding, BindingType
from textual.color import Color
from textual.filter import LineFilter

from core.contracts import Candidate, Reviewer
from core.errors import RsiError
from core.run import Observer, RunSummary
from core.trajectory import TRAJECTORY_FILE, Event, TrajectoryReader
from core.visible import is_hidden, is_plain
from review.gcpause import collector_paused
from review.host import Mode
from review.human import HumanChoice, HumanReviewer, human_name
from review.messages import CandidateWaiting, EventsLoaded, RunEnded, RunEventPosted, RunProgress
from review.state import RunState, progress_text


class AppObserver:
    """The loop's Observer: forwards events and progress from the loop thread to the app."""

    def __init__(self, app: ReviewApp) -> None:
        self.app = app

    def on_event(self, event: Event) -> None:
        self.app.post_message(RunEventPosted(event))

    def on_progress(self, phase: str, details: dict[str, Any]) -> None:
        self.app.post_message(RunProgress(phase, dict(details)))


class Stoppable(Protocol):
    """A running loop, as the app sees it: something to stop after its current step."""

    def request_stop(self, reason: str) -> None: ...


@dataclass
class RunHooks:
    """What the app hands a live run's `start`, so that the run reports to the app."""

    observer: Observer
    """Sees every event and live progress (posted to the app from the loop thread)."""
    ask_human: Callable[[Candidate], None]
    """Called from the loop thread when a candidate waits for the human at the keyboard."""
    by: str
    """Who decides at the keyboard, as recorded."""
    on_reviewer: Callable[[Reviewer], None]
    """Told the reviewer the run uses (the app answers a human reviewer, and closes it)."""
    on_loop: Callable[[Stoppable], None]
    """Told the loop before it runs (the app stops it when asked, or when it closes)."""


@dataclass
class LiveRun:
    """A run the app starts and shows as it goes; the composition root builds it (rsi.live)."""

    run_id: str
    run_dir: Path
    start: Callable[[RunHooks], RunSummary]
    """Builds the run (its reviewer included), runs it to its end and returns how it ended."""


@dataclass
class AppSettings:
    mode: Mode
    live: LiveRun | None = None
    """The run to start or continue (live)."""
    trajectory: Path | None = None
    """The recorded run to open (replay, review)."""
    run_dir: Path | None = None
    """The run whose queue to decide (review)."""
    by: str | None = None
    """Who decides, as recorded ("human:<user>" by default)."""


QUIT_QUESTION = (
    "The run is still going. Stop it after the current step and quit?\n"
    "A candidate waiting for you stays in the review queue (rsi review RUN_DIR)."
)


class HiddenCharacters(LineFilter):
    """The last guard between a candidate's text and the terminal: a character that renders as
    something else or as nothing (core.visible) never reaches it, from any widget. The screens draw
    such characters as their code points themselves; one that slips past them is dropped here (a
    zero-width one) or drawn as U+FFFD in as many cells as it takes (a line keeps its width)."""

    def apply(self, segments: list[Segment], background: Color) -> list[Segment]:
        if all(is_plain(segment.text) for segment in segments):
            return segments
        return [
            Segment(
                "".join("\ufffd" * cell_len(c) if is_hidden(c) else c for c in s.text), s.style, s.control
            )
            if not is_plain(s.text)
            else s
            for s in segments
        ]


class ReviewApp(App[RunSummary | None]):
    CSS_PATH = "app.tcss"
    TITLE = "rsi"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (110, "-wide")]  # noqa: RUF012  (declared by App)
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("q", "quit", "Quit"),
        Binding("ctrl+t", "toggle_theme", "Theme", show=False),
    ]

    def __init__(self, settings: AppSettings) -> None:
        super().__init__()
        self.settings = settings
        self.mode: Mode = settings.mode
        self.by = settings.by or human_name()
        self.all_events: list[Event] = []
        self.parsed: dict[int, Any] = {}
        self.state = RunState(parsed=self.parsed)
        self.now = "starting…" if self.mode == "live" else "reading the trajectory…"
        self.summary: RunSummary | None = None
        self.run_error: str | None = None
        self.loop: Stoppable | None = None
        self.reviewer: Reviewer | None = None
        self.running = False
        self._quit_when_done = False
        self.hidden_characters = HiddenCharacters()

    def get_line_filters(self) -> list[LineFilter]:
        return [*super().get_line_filters(), self.hidden_characters]

    # -- start ---------------------------------------------------------------------------

    def on_mount(self) -> None:
        from review.screens.run import RunScreen

        self.push_screen(RunScreen())
        if self.mode == "live":
            live = self.settings.live
            assert live is not None
            self.sub_title = f"live run {live.run_id}"
            self.running = True
            self.run_loop()
        else:
            self.sub_title = "replay (read-only)" if self.mode == "replay" else "review queue"
            self.load_events()

    @property
    def trajectory_path(self) -> Path:
        if self.settings.trajectory is not None:
            return self.settings.trajectory
        if self.settings.run_dir is not None:
            return self.settings.run_dir / TRAJECTORY_FILE
        assert self.settings.live is not None
        return self.settings.live.run_dir / TRAJECTORY_FILE

    @work(thread=True, exclusive=True, group="run", exit_on_error=False)
    def run_loop(self) -> None:
        live = self.settings.live
        assert live is not None
        hooks = RunHooks(
            AppObserver(self), self._candidate_waiting, self.by, self._use_reviewer, self._use_loop
        )
        try:
            summary = live.start(hooks)
        except RsiError as exc:
            self.post_message(RunEnded(None, error=str(exc)))
            return
        except Exception as exc:  # an unexpected crash must still reach the screen
            self.post_message(RunEnded(None, error=f"{type(exc).__name__}: {exc}"))
            return
        self.post_message(RunEnded(summary))

    def _use_reviewer(self, reviewer: Reviewer) -> None:
        self.reviewer = reviewer

    def _use_loop(self, loop: Stoppable) -> None:
        self.loop = loop

    def _candidate_waiting(self, candidate: Candidate) -> None:
        self.post_message(CandidateWaiting(candidate))

    @work(thread=True, exclusive=True, group="load", exit_on_error=False)
    def load_events(self) -> None:
        try:
            reader = TrajectoryReader(self.trajectory_path)
            with collector_paused(freeze_after=True):
                events = list(reader.events())
                state = RunState.from_events(events, self.parsed)
        except RsiError as exc:
            self.post_message(EventsLoaded([], error=str(exc)))
            return
        self.post_message(EventsLoaded(events, state=state))

    # -- messages from the workers ---------------------------------------------------------

    @on(EventsLoaded)
    def events_loaded(self, message: EventsLoaded) -> None:
        if message.error:
            self.run_error = message.error
            self.now = "could not read the trajectory"
            self.notify(message.error, severity="error", timeout=30, markup=False)
        self._show_events(message.events, message.state)
        if self.mode == "review" and not message.error:
            self.open_queue()

    def _show_events(self, events: list[Event], state: RunState | None = None) -> None:
        self.all_events = events
        self.state = state or RunState.from_events(events, self.parsed)
        if self.mode == "replay":
            self.now = "replay: step with h/l (event), [/] (generation), g/G (first/last)"
        elif self.mode == "review":
            waiting = sum(1 for g in self.state.records if self.state.is_decidable(g))
            self.now = f"{waiting} change(s) wait for your review"
        self._refresh_screens(full=True)

    @on(RunEventPosted)
    def run_event(self, message: RunEventPosted) -> None:
        self.all_events.append(message.event)
        self.state.apply(message.event)
        self._refresh_screens(generation=message.event.generation)

    @on(RunProgress)
    def run_progress(self, message: RunProgress) -> None:
        self.now = progress_text(message.phase, message.details)
        self._refresh_screens(status_only=True)

    @on(CandidateWaiting)
    def candidate_waiting(self, message: CandidateWaiting) -> None:
        generation = message.candidate.generation
        self.state.awaiting = generation
        self.now = f"generation {generation}: waiting for your decision (a accept · r reject · s skip)"
        self._refresh_screens(generation=generation)
        self.bell()
        from review.screens.change import ChangeScreen
        from review.screens.run import RunScreen

        if isinstance(self.screen, RunScreen):
            self.push_screen(ChangeScreen(generation))
        elif isinstance(self.screen, ChangeScreen) and not self.can_decide(self.screen.generation):
            self.switch_screen(ChangeScreen(generation))
        else:
            self.notify(f"generation {generation} waits for your decision", timeout=8)

    @on(RunEnded)
    def run_ended(self, message: RunEnded) -> None:
        self.running = False
        self.summary = message.summary
        self.run_error = message.error
        if message.error:
            self.now = f"the run could not continue: {message.error}"
            self.notify(message.error, title="run error", severity="error", timeout=60, markup=False)
        elif message.summary is not None:
            s = message.summary
            moved = (
                f"{s.baseline_metric:.4f} → {s.best_metric:.4f}"
                if s.baseline_metric is not None and s.best_metric is not None
                else "n/a"
            )
            self.now = (
                f"run {s.status}: {s.generations} generation(s), {s.accepted} accepted, "
                f"{self.state.metric_name} {moved}. Press q to quit."
            )
            if s.reason:
                self.now += f" ({s.reason})"
        self._refresh_screens(status_only=True)
        if self._quit_when_done:
            self.exit(self.summary)

    def _refresh_screens(
        self, generation: int | None = None, full: bool = False, status_only: bool = False
    ) -> None:
        for screen in self.screen_stack:
            refresh = getattr(screen, "refresh_from_state", None)
            if refresh is not None:
                refresh(generation=generation, full=full, status_only=status_only)

    # -- deciding --------------------------------------------------------------------------

    def can_decide(self, generation: int) -> bool:
        if self.mode == "live":
            return isinstance(self.reviewer, HumanReviewer) and self.state.awaiting == generation
        if self.mode == "review":
            return self.state.is_decidable(generation)
        return False

    def decide(self, generation: int, choice: HumanChoice, reason: str = "") -> None:
        if self.mode == "live":
            assert isinstance(self.reviewer, HumanReviewer)
            try:
                self.reviewer.answer(choice, reason)
            except RsiError as exc:
                self.notify(str(exc), severity="error", markup=False)
                return
            self.state.awaiting = None
            self.now = f"generation {generation}: {choice} recorded; the run continues"
            self.notify(f"generation {generation}: {choice}")
            self._after_decision(generation)
        elif self.mode == "review":
            if choice == "skip":
                self.notify(f"generation {generation} stays in the queue")
                self._after_decision(generation)
                return
            self.record_queue_decision(generation, choice, reason)

    @work(thread=True, exclusive=True, group="decide", exit_on_error=False)
    def record_queue_decision(self, generation: int, choice: HumanChoice, reason: str) -> None:
        from review.queue import decide

        assert self.settings.run_dir is not None and choice != "skip"
        try:
            decide(self.settings.run_dir, generation, choice, reason=reason, by=self.by)
        except RsiError as exc:
            self.call_from_thread(self.notify, str(exc), severity="error", timeout=20, markup=False)
            return
        events = list(TrajectoryReader(self.trajectory_path).events())
        state = RunState.from_events(events, self.parsed)
        self.call_from_thread(self._queue_decided, generation, choice, events, state)

    @work(thread=True, exclusive=True, group="decide", exit_on_error=False)
    def decide_many(self, accept: list[int], reject: list[int], reason: str) -> None:
        """Queued candidates decided together (review mode): the accepted first, in order."""
        from review.queue import decide

        assert self.settings.run_dir is not None
        done: list[str] = []
        choices: list[tuple[int, HumanChoice]] = [(g, "accept") for g in accept] + [
            (g, "reject") for g in reject
        ]
        for generation, choice in choices:
            try:
                decide(self.settings.run_dir, generation, choice, reason=reason, by=self.by)  # type: ignore[arg-type]
            except RsiError as exc:
                self.call_from_thread(self.notify, str(exc), severity="error", timeout=20, markup=False)
                break
            done.append(f"{generation} {choice}")
        events = list(TrajectoryReader(self.trajectory_path).events())
        state = RunState.from_events(events, self.parsed)
        self.call_from_thread(self._many_decided, done, events, state)

    def _many_decided(self, done: list[str], events: list[Event], state: RunState) -> None:
        self.notify(f"recorded: {', '.join(done) or 'nothing'}")
        self._show_events(events, state)

    def _queue_decided(self, generation: int, choice: str, events: list[Event], state: RunState) -> None:
        self.notify(f"generation {generation}: {choice} recorded")
        self._after_decision(generation)
        self._show_events(events, state)

    def _after_decision(self, generation: int) -> None:
        # After the modal that asked for a reason is gone, close the decided change.
        self.call_later(self._close_change, generation)

    def _close_change(self, generation: int) -> None:
        from review.screens.change import ChangeScreen

        if isinstance(self.screen, ChangeScreen) and self.screen.generation == generation:
            self.pop_screen()

    # -- navigation and app actions --------------------------------------------------------

    def open_queue(self) -> None:
        from review.screens.queue import QueueScreen

        if not isinstance(self.screen, QueueScreen):
            self.push_screen(QueueScreen())

    def open_change(self, generation: int) -> None:
        from review.screens.change import ChangeScreen

        if generation in self.state.records:
            self.push_screen(ChangeScreen(generation))

    def action_help(self) -> None:
        from review.screens.modals import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_toggle_theme(self) -> None:
        self.theme = "textual-light" if self.current_theme.dark else "textual-dark"

    async def action_quit(self) -> None:
        if not self.running:
            self.exit(self.summary)
            return
        from review.screens.modals import ConfirmScreen

        def confirmed(stop: bool | None) -> None:
            if stop:
                self.stop_run(quit_after=True)

        self.push_screen(
            ConfirmScreen(QUIT_QUESTION),
            confirmed,
        )

    def on_unmount(self) -> None:
        # However the app ends (quit, crash), never leave the loop thread waiting for a human.
        self.release_loop()

    def release_loop(self) -> None:
        if self.loop is not None:
            self.loop.request_stop("the TUI closed")
        if isinstance(self.reviewer, HumanReviewer):
            self.reviewer.close()

    def stop_run(self, quit_after: bool) -> None:
        self._quit_when_done = quit_after
        if self.loop is not None:
            self.loop.request_stop("stopped from the TUI")
        if isinstance(self.reviewer, HumanReviewer):
            self.reviewer.close()
        self.now = "stopping after the current step…"
        self._refresh_screens(status_only=True)
        if self.loop is None and not self.running:
            self.exit(self.summary)


def make_app(
    mode: Mode,
    *,
    live: LiveRun | None = None,
    trajectory: Path | None = None,
    run_dir: Path | None = None,
    by: str | None = None,
) -> ReviewApp:
    """The app for one mode; shared by the CLI, the tests and the benchmarks."""
    if mode == "live" and live is None:
        raise ValueError("a live app needs the run to start (rsi.live.live_run)")
    if mode == "replay" and trajectory is None:
        raise ValueError("a replay app needs a trajectory")
    if mode == "review":
        if run_dir is None:
            raise ValueError("a review app needs a run directory")
        trajectory = run_dir / TRAJECTORY_FILE
    return ReviewApp(AppSettings(mode, live=live, trajectory=trajectory, run_dir=run_dir, by=by))
