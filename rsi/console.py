"""Plain-terminal output of a run: one block per generation, progress lines while it works."""

from __future__ import annotations

import sys
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.text import Text

from core.change_summary import describe_change, first_line
from core.contracts import Decision, Evaluation, MetricResult
from core.events import CommitRecorded, ErrorRecorded, EvaluationRecorded, PromotionRecorded
from core.run import RunSummary
from core.trajectory import Event
from core.visible import showing_console
from sandbox.integrity import lockbox_gap

VERDICT_STYLE = {"allow": "green", "review": "yellow", "deny": "red"}
DECISION_STYLE = {"accept": "bold green", "reject": "red", "queue": "yellow"}


def metric_text(metric: MetricResult | None) -> str:
    return f"{metric.mean:.4f} ± {metric.std:.4f}" if metric else "—"


def tests_text(evaluation: Evaluation) -> str:
    tests = evaluation.tests
    if tests is None:
        return "not run"
    text = f"{tests.passed} passed, {tests.failed + tests.errors} failed"
    return text if tests.ok else f"[red]{text}[/red]"


class ConsoleObserver:
    def __init__(self, console: Console | None = None, progress: bool = True) -> None:
        self.console = console or showing_console(highlight=False, soft_wrap=True)
        self.errors = showing_console(stderr=True, highlight=False, soft_wrap=True)
        self.show_progress = progress
        self.parent_metric: MetricResult | None = None
        self.pending: dict[int | None, dict[str, Any]] = {}
        """Per generation: what was recorded before its decision (K candidates are in flight at once)."""
        self.lineage: list[Evaluation] = []
        """The baseline's and every accepted generation's evaluation: the lockbox flag reads them."""

    def on_progress(self, phase: str, details: dict[str, Any]) -> None:
        if not self.show_progress:
            return
        label = details.get("label", details.get("generation", ""))
        extra = f" seed {details['index']}/{details['of']}" if "index" in details else ""
        tool = f" {details['tool']}: {details.get('summary', '')}" if "tool" in details else ""
        self.errors.print(Text(f"  … {label} {phase}{extra}{tool}", style="dim"))

    def on_event(self, event: Event) -> None:
        handler = getattr(self, f"_on_{event.kind}", None)
        if handler is not None:
            handler(event)

    def _on_run_started(self, event: Event) -> None:
        config = event.data.get("config", {})
        target = event.data.get("target", {}).get("target", {})
        self.console.print(
            f"[bold]rsi run[/bold] {escape(str(config.get('run_id')))}: target "
            f"[cyan]{escape(str(target.get('name')))}[/cyan], proposer {config.get('proposer')}, backend "
            f"{config.get('backend')}, policy {escape(str(event.data.get('policy', {}).get('name')))}, "
            f"{config.get('generations')} generations, seeds {escape(str(config.get('seeds')))}"
        )
        self.console.print(Text(f"run directory: {config.get('run_dir')}"))

    def _on_baseline(self, event: Event) -> None:
        baseline = EvaluationRecorded.model_validate(event.data)
        evaluation = baseline.evaluation
        self.parent_metric = evaluation.metric
        self.lineage = [evaluation]
        self.console.print(
            f"[bold]baseline[/bold] {escape(baseline.commit[:10])}: tests {tests_text(evaluation)}, "
            f"{evaluation.metric.name if evaluation.metric else 'metric'} {metric_text(evaluation.metric)}"
        )

    def _on_proposal(self, event: Event) -> None:
        self.pending[event.generation] = {"proposal": event.data, "parent": self.parent_metric}

    def _on_evaluation(self, event: Event) -> None:
        self.pending.setdefault(event.generation, {})["evaluation"] = Evaluation.model_validate(event.data)

    def _on_verdict(self, event: Event) -> None:
        self.pending.setdefault(event.generation, {})["verdict"] = event.data

    def _on_decision(self, event: Event) -> None:
        pending = self.pending.pop(event.generation, {})
        proposal = pending.get("proposal", {})
        evaluation: Evaluation | None = pending.get("evaluation")
        verdict = pending.get("verdict", {})
        decided = Decision.model_validate(event.data)
        decision = decided.decision
        self.console.rule(f"generation {event.generation}", align="left", style="dim")
        self.console.print(
            Text(f"  proposal  {proposal.get('proposer')}: {first_line(proposal.get('rationale', ''))[:100]}")
        )
        self.console.print(
            Text(f"  change    {describe_change(proposal.get('diff', ''), proposal.get('rationale', ''))}")
        )
        if evaluation is not None:
            self.console.print(f"  tests     {tests_text(evaluation)}")
            if evaluation.failure:
                self.console.print(
                    f"  failure   [red]{evaluation.failure}[/red]: {escape(evaluation.failure_detail[:160])}"
                )
            metric, parent = evaluation.metric, pending.get("parent", self.parent_metric)
            delta = f"  ({metric.gain_over(parent):+.4f})" if metric and parent else ""
            lockbox = (
                f"  lockbox {metric_text(evaluation.lockbox)} (never used for decisions)"
                if evaluation.lockbox
                else ""
            )
            self.console.print(
                f"  metric    {metric_text(metric)}  vs parent {metric_text(parent)}{delta}{lockbox}"
            )
        kind = verdict.get("verdict", "?")
        findings = [f"[{f['rule_id']}] {f['message']}" for f in verdict.get("findings", [])]
        self.console.print(
            f"  verdict   [{VERDICT_STYLE.get(kind, 'white')}]{kind}[/]"
            + (f"  {escape(findings[0][:120])}" if findings else "")
        )
        self.console.print(
            f"  decision  [{DECISION_STYLE.get(decision, 'white')}]{decision}[/] by {escape(decided.by)}"
        )
        if decision == "accept" and evaluation is not None:
            self.parent_metric = evaluation.metric
            self.lineage.append(evaluation)

    def _on_commit(self, event: Event) -> None:
        commit = CommitRecorded.model_validate(event.data)
        self.console.print(Text(f"  commit    {commit.commit[:10]} ({commit.tag}) on the lineage branch"))

    def _on_promotion(self, event: Event) -> None:
        promotion = PromotionRecorded.model_validate(event.data)
        scored = "".join(
            f", {name} {value:.4f}"
            for name, value in (("student", promotion.student_metric), ("teacher", promotion.teacher_metric))
            if isinstance(value, float)
        )
        self.console.print(
            Text(
                f"  promotion student {promotion.teacher_sha256[:12]} is the teacher now "
                f"(was {promotion.previous_teacher_sha256[:12]}{scored})"
            )
        )

    def _on_error(self, event: Event) -> None:
        self.errors.print(
            Text("error: ", style="red") + Text(ErrorRecorded.model_validate(event.data).message)
        )

    def summary(self, summary: RunSummary, run_dir: str) -> None:
        self.console.rule("run finished", align="left")
        base, best = summary.baseline_metric, summary.best_metric
        moved = f"{base:.4f} → {best:.4f}" if base is not None and best is not None else "n/a"
        self.console.print(
            f"status {summary.status}: {summary.generations} generation(s), {summary.accepted} accepted; "
            f"metric {moved}"
        )
        if summary.reason:
            self.console.print(Text(f"reason: {summary.reason}"))
        self._lockbox_summary()
        self.console.print(
            Text(f"run directory: {run_dir}  (trajectory.jsonl, lineage/, candidates/, logs/)")
        )
        self.console.print(Text(f"lineage: git -C {run_dir}/lineage log --oneline lineage"))

    def _lockbox_summary(self) -> None:
        """How the lockbox moved along the accepted lineage, and the overfitting flag if it fires."""
        scored = [e.lockbox for e in self.lineage if e.lockbox is not None]
        if not scored:
            return
        self.console.print(
            f"lockbox {scored[0].mean:.4f} → {scored[-1].mean:.4f} over {len(scored) - 1} accepted "
            "generation(s) (a held-out set no decision uses)"
        )
        gap = lockbox_gap(self.lineage)
        if gap is not None:
            self.console.print(
                f"[bold yellow]warning {escape(f'[{gap.rule_id}]')}[/]: adaptive overfitting of the "
                f"lineage: {escape(gap.message)}"
            )


def stderr_is_tty() -> bool:
    return sys.stderr.isatty()
