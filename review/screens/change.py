"""The Change screen: one candidate's diff next to everything that decides whether to keep it.

Left (or below, on a narrow terminal): the diff. Right: the rationale and claimed effect next to
the measured effect per seed (and the lockbox score, which no decision uses), the tests, the policy findings (select one to jump to its line in
the diff), the resources. Bottom: the decision bar — a accept, r reject (with a reason), s skip.
"""

from __future__ import annotations

from typing import ClassVar

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, OptionList, Static
from textual.widgets.option_list import Option

from core.contracts import Finding, MetricResult, signed_gain
from core.fold import GenerationRecord
from core.visible import shown
from review.host import ReviewHost
from review.screens.run import STATUS_COLOR, VERDICT_COLOR, RunScreen
from review.state import RunState
from review.widgets.diffview import DiffView
from review.widgets.header import RsiHeader
from review.widgets.numbers import number, signed
from review.widgets.promotion import promotion_view

VERDICT_MARK = {"allow": "✓", "review": "!", "deny": "✖"}


def effect_table(
    record: GenerationRecord, parent: MetricResult | None, parent_lockbox: MetricResult | None = None
) -> Table:
    """Claimed effect next to the measured one: candidate vs parent, per seed and mean ± spread, and
    the lockbox mean ± spread of both."""
    metric = record.evaluation.metric if record.evaluation else None
    table = Table(box=None, pad_edge=False, show_edge=False, expand=False, padding=(0, 1))
    table.add_column("seed", justify="right", style="dim")
    table.add_column("parent", justify="right")
    table.add_column("cand.", justify="right")
    table.add_column("Δ", justify="right")
    seeds = sorted(set(metric.per_seed if metric else {}) | set(parent.per_seed if parent else {}))
    for seed in seeds:
        p = parent.per_seed.get(seed) if parent else None
        c = metric.per_seed.get(seed) if metric else None
        delta = (
            signed_gain(c, p, metric.direction if metric else "higher")
            if c is not None and p is not None
            else None
        )
        table.add_row(str(seed), number(p), number(c), signed(delta))
    if metric or parent:
        gain = metric.gain_over(parent) if metric and parent else None
        table.add_row(
            "mean",
            f"{parent.mean:.4f}±{parent.std:.4f}" if parent else "—",
            f"{metric.mean:.4f}±{metric.std:.4f}" if metric else "—",
            signed(gain),
            style="bold",
        )
    lockbox = record.evaluation.lockbox if record.evaluation else None
    if lockbox or parent_lockbox:
        table.add_row(
            "lockbox",
            _mean_spread(parent_lockbox),
            _mean_spread(lockbox),
            signed(lockbox.gain_over(parent_lockbox) if lockbox and parent_lockbox else None),
        )
    return table


def _mean_spread(metric: MetricResult | None) -> str:
    return f"{metric.mean:.4f}±{metric.std:.4f}" if metric else "—"


LOCKBOX_NOTE = Text("lockbox: scored, never used for decisions", style="dim italic")


def finding_label(finding: Finding) -> Text:
    where = (
        f" {finding.file}:{finding.line}"
        if finding.file and finding.line
        else f" {finding.file}"
        if finding.file
        else ""
    )
    return Text.assemble(
        (
            f"{VERDICT_MARK.get(finding.verdict, '?')} {finding.verdict} ",
            VERDICT_COLOR.get(finding.verdict, ""),
        ),
        (f"[{finding.rule_id}]", "bold"),
        shown(where, "underline" if where else ""),
        shown(f" {finding.message}"),
    )


class ChangeScreen(Screen[None]):
    ready = False
    """Set once mounted: refreshes before that have nothing to update."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "accept", "Accept"),
        # Where accept is not allowed (a policy deny), `a` still answers: it points at the reason.
        Binding("a", "explain_denied", "Accept", show=False),
        Binding("r", "reject", "Reject"),
        Binding("s", "skip", "Skip"),
        Binding("escape", "back", "Back"),
        Binding("f", "findings", "Findings"),
        Binding("d", "focus_diff", "Diff", show=False),
        Binding("v", "toggle_view", "Side-by-side"),
        Binding("L", "logs", "Logs"),
        Binding("m", "maximize_focused", "Maximize", show=False),
    ]

    def __init__(self, generation: int) -> None:
        super().__init__()
        self.generation = generation
        self.findings_seen = False

    @property
    def rsi(self) -> ReviewHost:
        return self.app  # type: ignore[return-value]

    @property
    def record(self) -> GenerationRecord:
        return self.state.records[self.generation]

    @property
    def state(self) -> RunState:
        if self.rsi.mode == "replay":
            for screen in self.rsi.screen_stack:
                if isinstance(screen, RunScreen) and screen.view_state is not None:
                    return screen.view_state
        return self.rsi.state

    def compose(self) -> ComposeResult:
        yield RsiHeader()
        yield Static(id="change-title")
        with Horizontal(id="change-body"):
            yield DiffView(id="diff")
            with VerticalScroll(id="sidebar"):
                promotion = Static(id="promotion", classes="panel")
                promotion.display = False  # a bootstrapping generation's teacher vs students
                yield promotion
                yield Static(id="effect", classes="panel")
                yield OptionList(id="findings")
                yield Static(id="tests", classes="panel")
                yield Static(id="resources", classes="panel")
        yield Static(id="decision-bar")
        yield Footer(show_command_palette=False)

    def on_mount(self) -> None:
        self.ready = True
        record = self.record
        self.query_one(DiffView).load(record.proposal.diff if record.proposal else "")
        self.query_one("#findings", OptionList).border_title = "policy findings (f, enter jumps)"
        self.query_one("#effect").border_title = "rationale · claimed vs measured"
        self.query_one("#promotion").border_title = "promotion · teacher vs students"
        self.query_one("#tests").border_title = "tests"
        self.query_one("#resources").border_title = "resources"
        self.refresh_from_state()
        self.query_one(DiffView).focus()

    # -- content ---------------------------------------------------------------------------

    def refresh_from_state(
        self, generation: int | None = None, full: bool = False, status_only: bool = False
    ) -> None:
        if not self.ready or self.generation not in self.state.records:
            return
        if generation not in (None, self.generation) and not full:
            return
        record, state = self.record, self.state
        status = state.status(self.generation)
        verdict = record.verdict.verdict if record.verdict else "pending"
        self.title = f"rsi · generation {self.generation}"
        self.query_one("#change-title", Static).update(
            Text.assemble(
                (f"generation {self.generation}", "bold"),
                " · ",
                (status, STATUS_COLOR.get(status, "")),
                " · verdict ",
                (verdict, VERDICT_COLOR.get(verdict, "")),
                f" · {record.proposal.proposer if record.proposal else ''}",
                f" · parent {record.parent_commit[:10]}",
            )
        )
        proposal = record.proposal
        self.query_one("#effect", Static).update(
            Group(
                shown(proposal.rationale) if proposal else Text("the proposer is still working…"),
                Text.assemble(
                    ("claimed:  ", "bold"), shown((proposal.claimed_effect if proposal else None) or "—")
                ),
                Text("measured:", style="bold"),
                effect_table(
                    record, state.parent_metric(self.generation), state.parent_lockbox(self.generation)
                ),
                *self._lockbox_note(record, state),
            )
        )
        promotion = promotion_view(record, state.events)
        self.query_one("#promotion", Static).display = promotion is not None
        if promotion is not None:
            self.query_one("#promotion", Static).update(promotion)
        self.query_one("#tests", Static).update(self._tests_text(record))
        self._fill_findings(record)
        self.query_one("#resources", Static).update(self._resources_text(record))
        self._refresh_decision_bar()
        self.refresh_bindings()

    def _lockbox_note(self, record: GenerationRecord, state: RunState) -> list[Text]:
        scored = (record.evaluation and record.evaluation.lockbox) or state.parent_lockbox(self.generation)
        return [LOCKBOX_NOTE] if scored else []

    def _tests_text(self, record: GenerationRecord) -> Text:
        evaluation = record.evaluation
        if evaluation is None:
            return Text("not measured yet", style="dim")
        tests = evaluation.tests
        text = Text()
        if tests is None:
            text.append("not run", style="dim")
        else:
            style = "green" if tests.ok else "bold red"
            text.append(
                f"{tests.passed} passed, {tests.failed} failed, {tests.errors} errors, {tests.skipped} skipped "
                f"({tests.duration_s:.1f}s)",
                style=style,
            )
            if not tests.ok and tests.output_tail:
                tail = "\n".join(tests.output_tail.strip().split("\n")[-12:])
                text.append(shown("\n" + tail, style="red"))
        if evaluation.failure:
            text.append(f"\nfailure: {evaluation.failure}", style="bold red")
            if evaluation.failure_detail:
                text.append(shown(f"\n{evaluation.failure_detail[:400]}", style="red"))
        return text

    def _resources_text(self, record: GenerationRecord) -> Text:
        evaluation = record.evaluation
        if evaluation is None:
            return Text("—", style="dim")
        r = evaluation.resources
        usage = record.proposal.usage if record.proposal else None
        parts = [
            f"wall {r.wall_s:.1f}s",
            f"cpu {r.cpu_s:.1f}s" if r.cpu_s is not None else "cpu —",
            f"peak {r.peak_memory_mb:.0f} MB" if r.peak_memory_mb is not None else "peak —",
            f"sandbox overhead {r.overhead_s:.1f}s" if r.overhead_s is not None else "",
        ]
        text = Text(" · ".join(p for p in parts if p))
        if usage is not None and usage.model_calls:
            text.append(
                f"\nmodel: {usage.model_calls} calls, {usage.input_tokens + usage.output_tokens} tokens, ${usage.dollars:.3f}"
            )
        text.append(f"\n{evaluation.backend} · seeds {evaluation.seeds} · L for logs", style="dim")
        return text

    def _fill_findings(self, record: GenerationRecord) -> None:
        findings = self.query_one("#findings", OptionList)
        verdict = record.verdict
        highlighted = findings.highlighted
        findings.clear_options()
        if verdict is None:
            findings.add_option(Option(Text("not judged yet", style="dim"), disabled=True))
            return
        if not verdict.findings:
            findings.add_option(
                Option(Text(f"no rule matched: {verdict.verdict}", style="dim"), disabled=True)
            )
        for index, finding in enumerate(verdict.findings):
            findings.add_option(Option(finding_label(finding), id=str(index)))
        if highlighted is not None and highlighted < findings.option_count:
            findings.highlighted = highlighted

    def _refresh_decision_bar(self) -> None:
        bar = self.query_one("#decision-bar", Static)
        record = self.record
        decidable = self.rsi.can_decide(self.generation)
        verdict = record.verdict
        bar.set_class(decidable, "-decidable")
        if decidable and verdict is not None and verdict.verdict == "deny":
            bar.update(
                Text.assemble(  # the keys first: a long reason may be cut, they may not
                    ("Denied by policy, cannot be accepted: ", "bold red"),
                    ("r reject · s skip", "bold"),
                    "  " + verdict.reasons()[:300],
                )
            )
        elif decidable and verdict is not None and verdict.verdict == "review" and not self.findings_seen:
            bar.update(
                Text.assemble(
                    ("Review asked: ", "bold yellow"),
                    "see the findings (f) first.  ",
                    ("a accept · r reject · s skip", "bold"),
                )
            )
        elif decidable:
            bar.update(
                Text.assemble(
                    ("Your decision:  ", "bold"),
                    ("a accept · r reject (with a reason) · s skip for later", "bold"),
                )
            )
        elif record.decision is not None:
            d = record.decision
            bar.update(
                Text.assemble(
                    ("Decided: ", "bold"),
                    (d.decision, "bold"),
                    f" by {d.by} at {d.at[:19].replace('T', ' ')}"
                    + (f": {d.reason[:200]}" if d.reason else ""),
                )
            )
        else:
            bar.update(
                Text(
                    "Not waiting for a decision."
                    + ("  (replay: read-only)" if self.rsi.mode == "replay" else "")
                )
            )

    # -- findings and diff -------------------------------------------------------------

    @on(OptionList.OptionHighlighted, "#findings")
    def finding_highlighted(self) -> None:
        self._mark_findings_seen()

    @on(OptionList.OptionSelected, "#findings")
    def finding_selected(self, event: OptionList.OptionSelected) -> None:
        self._mark_findings_seen()
        verdict = self.record.verdict
        if verdict is None or event.option.id is None:
            return
        finding = verdict.findings[int(event.option.id)]
        diff = self.query_one(DiffView)
        if diff.jump_to(finding.file, finding.line):
            diff.focus()
        else:
            self.notify(f"[{finding.rule_id}] points at no line of the diff", timeout=4, markup=False)

    def _mark_findings_seen(self) -> None:
        if not self.findings_seen:
            self.findings_seen = True
            self._refresh_decision_bar()

    def action_findings(self) -> None:
        findings = self.query_one("#findings", OptionList)
        if findings.highlighted is None and findings.option_count:
            findings.highlighted = 0
        findings.focus()
        self._mark_findings_seen()

    def action_focus_diff(self) -> None:
        self.query_one(DiffView).focus()

    def action_toggle_view(self) -> None:
        self.query_one(DiffView).action_toggle_view()

    def action_maximize_focused(self) -> None:
        if self.maximized is not None:
            self.minimize()
        elif self.focused is not None:
            self.maximize(self.focused)

    def action_logs(self) -> None:
        from review.screens.modals import LogsScreen

        if self.record.evaluation is not None:
            self.app.push_screen(LogsScreen(self.generation, self.record.evaluation))
        else:
            self.notify("no evaluation yet: nothing has run", timeout=4)

    def action_back(self) -> None:
        self.app.pop_screen()

    # -- deciding ------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("accept", "reject", "skip"):
            if not self.rsi.can_decide(self.generation):
                return False
            if action == "accept" and self._denied():
                return False  # not offered in the footer; `a` falls through to explain_denied
        if action == "explain_denied":
            return self.rsi.can_decide(self.generation) and self._denied()
        return True

    def _denied(self) -> bool:
        verdict = self.record.verdict
        return verdict is not None and verdict.verdict == "deny"

    def action_explain_denied(self) -> None:
        """`a` on a denied change: ring and mark the decision bar, which already says why. No toast:
        it would cover that very line."""
        self.app.bell()
        bar = self.query_one("#decision-bar", Static)
        bar.add_class("-attention")
        self.set_timer(1.5, lambda: bar.remove_class("-attention"))

    def action_accept(self) -> None:
        verdict = self.record.verdict
        if verdict is not None and verdict.verdict == "deny":
            self.notify(
                f"denied by policy, cannot be accepted: {verdict.reasons()}", severity="error", markup=False
            )
            return
        if verdict is not None and verdict.verdict == "review" and not self.findings_seen:
            self.notify("the policy asks for a review: look at the findings first", severity="warning")
            self.action_findings()
            return
        self.rsi.decide(self.generation, "accept")

    def action_reject(self) -> None:
        from review.screens.modals import RejectScreen

        def rejected(reason: str | None) -> None:
            if reason is not None:
                self.rsi.decide(self.generation, "reject", reason)

        self.app.push_screen(RejectScreen(self.generation), rejected)

    def action_skip(self) -> None:
        self.rsi.decide(self.generation, "skip")
