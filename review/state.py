"""What the review app shows, folded from trajectory events: no Textual here, so it is easy to test.

    state = RunState()
    for event in events:
        state.apply(event)
    state.status(3)          # "accepted", "awaiting review", ...
    state.series()           # metric per generation for the plot

The same state serves a live run (events arrive one by one from the loop), a replay (events up to
the cursor) and the review queue (a finished run's events).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from core.contracts import Evaluation, Finding, MetricResult, Usage, best_of
from core.events import CommitRecorded, ErrorRecorded, EvaluationRecorded
from core.fold import GenerationRecord, fold_event
from core.succession import succession_findings, succession_limits, successions
from core.trajectory import Event
from core.visible import visible
from sandbox.integrity import lockbox_gap

STATUSES = ("running", "deciding", "awaiting review", "accepted", "rejected", "denied", "failed")
STATUS_STYLE = {
    "running": "bold $accent",
    "deciding": "bold $accent",
    "awaiting review": "bold $warning",
    "accepted": "bold $success",
    "rejected": "$text-muted",
    "denied": "$error",
    "failed": "$error",
}


_SUMMARIES: dict[tuple[int, str], tuple[MetricResult, float]] = {}


def _summary(metric: MetricResult, which: str) -> float:
    """`metric.mean` or `metric.std`, computed once per result: the plot and the table ask for every
    generation's (and its parent's) on each replay step. Keyed by identity; the entry holds the
    result, so its id cannot be reused while the entry lives."""
    key = (id(metric), which)
    hit = _SUMMARIES.get(key)
    if hit is not None and hit[0] is metric:
        return hit[1]
    if len(_SUMMARIES) > 100_000:
        _SUMMARIES.clear()
    value = _sample_std(list(metric.per_seed.values())) if which == "std" else float(metric.mean)
    _SUMMARIES[key] = (metric, value)
    return value


def _sample_std(values: list[float]) -> float:
    """`MetricResult.std` (the sample standard deviation) in floats. `statistics.stdev` computes it
    exactly with fractions, which made it the costliest cell of a 2,000-row table; floats agree to
    far more digits than the four the app shows."""
    if len(values) < 2 or min(values) == max(values):
        return 0.0  # exactly, as stdev says, where rounding the mean would leave a speck
    mean = math.fsum(values) / len(values)
    return math.sqrt(math.fsum((value - mean) ** 2 for value in values) / (len(values) - 1))


def mean_of(metric: MetricResult) -> float:
    return _summary(metric, "mean")


def spread_of(metric: MetricResult) -> float:
    return _summary(metric, "std")


@dataclass
class SeriesPoint:
    generation: int
    candidate: float | None
    parent: float | None
    best: float | None
    lockbox: float | None = None
    """The lockbox score of the lineage's head after this generation (it moves only on an accept)."""
    status: str = "baseline"
    """The candidate's status (accepted, rejected, denied, failed, awaiting review, running)."""


@dataclass
class RunState:
    """The run as the events so far tell it."""

    events: list[Event] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)
    baseline: Evaluation | None = None
    baseline_commit: str = ""
    records: dict[int, GenerationRecord] = field(default_factory=dict)
    finished: dict[str, Any] | None = None
    error: str | None = None
    awaiting: int | None = None
    """The generation a live run is blocked on, waiting for the human at the keyboard."""
    parsed: dict[int, Any] = field(default_factory=dict)
    """Validated models by event seq, shared between states of one trajectory (replay)."""
    _evaluation_by_commit: dict[str, Evaluation] = field(default_factory=dict)
    _shared_records: set[int] = field(default_factory=set)
    """Generations whose record object another state (a copy) holds too: replaced before a write."""

    @classmethod
    def from_events(cls, events: list[Event], parsed: dict[int, Any] | None = None) -> RunState:
        state = cls(parsed=parsed if parsed is not None else {})
        for event in events:
            state.apply(event)
        return state

    def copy(self) -> RunState:
        """An independent copy for replay checkpoints. Records are copied on write: both states
        share them until one applies an event to a generation, which then gets its own record (a
        replay step touches one generation; copying 2,000 records per step was most of its time)."""
        twin = replace(self, events=list(self.events), records=dict(self.records))
        twin._evaluation_by_commit = dict(self._evaluation_by_commit)
        self._shared_records = set(self.records)
        twin._shared_records = set(self.records)
        return twin

    def apply(self, event: Event) -> None:
        self.events.append(event)
        if event.kind == "run_started":
            self.info = event.data
        elif event.kind == "baseline":
            baseline = EvaluationRecorded.model_validate(event.data)
            self.baseline, self.baseline_commit = baseline.evaluation, baseline.commit
            self._evaluation_by_commit[self.baseline_commit] = self.baseline
        elif event.kind == "run_finished":
            self.finished = event.data
        elif event.kind == "error":
            self.error = ErrorRecorded.model_validate(event.data).message
        if event.generation in self._shared_records:
            # fold_event changes a record in place: give this state its own first. Its lists are
            # never changed in place (a decision makes a new list), so a shallow copy suffices.
            self.records[event.generation] = replace(self.records[event.generation])
            self._shared_records.discard(event.generation)
        record = fold_event(self.records, event, self.parsed)
        if record is not None and event.kind == "commit" and record.evaluation is not None:
            self._evaluation_by_commit[CommitRecorded.model_validate(event.data).commit] = record.evaluation
        if event.kind == "decision" and event.generation == self.awaiting:
            self.awaiting = None

    # -- per generation -----------------------------------------------------------------

    def status(self, generation: int) -> str:
        record = self.records[generation]
        decision = record.decision
        if decision is None:
            if generation == self.awaiting:
                return "awaiting review"
            # Judged but not decided yet (in a replay, the step between the two events).
            return "deciding" if record.verdict is not None else "running"
        if decision.decision == "accept":
            return "accepted"
        if decision.decision == "queue":
            return "awaiting review"
        if record.evaluation is not None and record.evaluation.failure:
            return "failed"
        if record.verdict is not None and record.verdict.verdict == "deny":
            return "denied"
        return "rejected"

    def parent_metric(self, generation: int) -> MetricResult | None:
        """The metric of the commit this generation was measured against (the baseline at first)."""
        record = self.records.get(generation)
        parent = self._evaluation_by_commit.get(record.parent_commit) if record else None
        parent = parent or self.baseline
        return parent.metric if parent else None

    def parent_lockbox(self, generation: int) -> MetricResult | None:
        """The parent's lockbox score, beside `parent_metric`."""
        record = self.records.get(generation)
        parent = self._evaluation_by_commit.get(record.parent_commit) if record else None
        parent = parent or self.baseline
        return parent.lockbox if parent else None

    def delta(self, generation: int) -> float | None:
        record = self.records[generation]
        metric = record.evaluation.metric if record.evaluation else None
        parent = self.parent_metric(generation)
        return metric.gain_over(parent) if metric and parent else None

    def is_decidable(self, generation: int) -> bool:
        """Waiting for a human: the live run's current candidate, or a queued one."""
        return self.status(generation) == "awaiting review" and self.records[generation].proposal is not None

    # -- whole run ----------------------------------------------------------------------

    @property
    def metric_name(self) -> str:
        if self.baseline and self.baseline.metric:
            return self.baseline.metric.name
        return str(self.info.get("target", {}).get("metric", {}).get("name", "metric"))

    @property
    def planned_generations(self) -> int:
        return int(self.info.get("config", {}).get("generations", len(self.records)))

    def series(self) -> list[SeriesPoint]:
        """Per generation: the candidate's mean, its parent's mean, the best accepted so far, and the
        lineage head's lockbox score."""
        base = self.baseline.metric if self.baseline else None
        best = base.mean if base else None
        lockbox = self.baseline.lockbox.mean if self.baseline and self.baseline.lockbox else None
        points = [SeriesPoint(0, best, best, best, lockbox)]
        for generation in sorted(self.records):
            record = self.records[generation]
            metric = record.evaluation.metric if record.evaluation else None
            mean = mean_of(metric) if metric else None
            parent = self.parent_metric(generation)
            if record.commit and mean is not None:
                best = best_of(best, mean, metric.direction if metric else "higher")
            if record.commit and record.evaluation is not None and record.evaluation.lockbox is not None:
                lockbox = mean_of(record.evaluation.lockbox)
            points.append(
                SeriesPoint(
                    generation,
                    mean,
                    mean_of(parent) if parent else None,
                    best,
                    lockbox,
                    self.status(generation),
                )
            )
        return points

    def lineage(self) -> list[Evaluation]:
        """The baseline's and each accepted generation's evaluation, in order."""
        accepted = [self.records[g].evaluation for g in sorted(self.records) if self.records[g].commit]
        head = [self.baseline] if self.baseline else []
        return head + [e for e in accepted if e is not None]

    def lockbox_gap(self) -> Finding | None:
        """The adaptive-overfitting flag: the selection metric rose along the lineage, the lockbox did not."""
        return lockbox_gap(self.lineage())

    def succession_findings(self) -> list[Finding]:
        """For a bootstrapping run: the fears measured across its successors (core.succession)."""
        if not (self.info.get("target") or {}).get("teacher"):
            return []
        return succession_findings(successions(self.events), succession_limits(self.events))

    def usage(self) -> Usage:
        total = Usage()
        for record in self.records.values():
            if record.proposal is not None:
                total = total + record.proposal.usage
        return total

    def decided(self) -> int:
        return sum(
            1 for g in self.records if self.status(g) not in ("running", "deciding", "awaiting review")
        )

    def accepted(self) -> int:
        return sum(1 for r in self.records.values() if r.commit)

    def elapsed_s(self, now: datetime | None = None) -> float:
        if not self.events:
            return 0.0
        start = datetime.fromisoformat(self.events[0].ts)
        end = now if now is not None and self.finished is None else datetime.fromisoformat(self.events[-1].ts)
        return max(0.0, (end - start).total_seconds())

    def budget_text(self, now: datetime | None = None) -> str:
        config = self.info.get("config", {})
        wall = config.get("max_wall_s")
        dollars = config.get("max_dollars")
        spent = self.usage().dollars
        elapsed = self.elapsed_s(now)
        parts = [
            f"generations {len(self.records)}/{self.planned_generations}",
            f"time {format_duration(elapsed)}" + (f"/{format_duration(wall)}" if wall else ""),
            f"${spent:.2f}" + (f"/${dollars:.2f}" if dollars else ""),
        ]
        return " · ".join(parts)


def format_duration(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def progress_text(phase: str, details: dict[str, Any]) -> str:
    """One line saying what the run is doing now, from a loop or evaluator progress report."""
    label = details.get("label") or (f"generation {details['generation']}" if "generation" in details else "")
    label = {"baseline": "baseline"}.get(str(label), str(label))
    if "tool" in details:
        return f"{label}: agent calls {details['tool']} {details.get('summary', '')}".strip()
    if phase in ("train", "predict") and "index" in details:
        verb = "training" if phase == "train" else "predicting"
        return f"{label}: {verb} seed {details['index']} of {details['of']}"
    described = {
        "baseline": "measuring the baseline",
        "propose": f"the {details.get('proposer', 'agent')} proposer is writing a change",
        "sandbox": "starting a sandbox",
        "tests": "tests running",
        "review": "waiting for a decision",
    }
    return f"{label}: {described.get(phase, phase)}" if label else described.get(phase, phase)


def event_summary(event: Event) -> str:
    """One line describing a trajectory event (the replay cursor, the event log)."""
    data = event.data
    where = f"gen {event.generation} " if event.generation else ""
    match event.kind:
        case "proposal":
            text = visible((str(data.get("rationale", "")).split("\n") or [""])[0])
            return f"{where}proposal by {visible(str(data.get('proposer')))}: {text[:80]}"
        case "evaluation":
            failure = data.get("failure")
            metric = data.get("metric") or {}
            values = list((metric.get("per_seed") or {}).values())
            mean = f"{sum(values) / len(values):.4f}" if values else "—"
            return f"{where}evaluation: " + (
                f"failed ({failure})" if failure else f"{metric.get('name')} {mean}"
            )
        case "verdict":
            return f"{where}verdict {data.get('verdict')} ({len(data.get('findings', []))} finding(s))"
        case "decision":
            return (
                f"{where}decision {data.get('decision')} by {data.get('by')}: {data.get('reason', '')[:60]}"
            )
        case "commit":
            return f"{where}commit {str(data.get('commit'))[:10]} ({data.get('tag')})"
        case "run_finished":
            return f"run finished: {data.get('status')}, {data.get('accepted')} accepted"
        case "baseline":
            return f"baseline {str(data.get('commit'))[:10]}"
        case "race":
            gain = (data.get("before") or {}).get("gain") or 0.0
            return f"{where}race: a close call (gain {gain:+.4f}) measured on seeds {data.get('seeds')}"
        case "elite_check":
            held = "confirmed" if data.get("confirmed") else "a lucky score, never a parent"
            return f"gen-{data.get('generation')} re-measured on fresh seeds {data.get('seeds')}: {held}"
        case _:
            return f"{where}{event.kind}"


class ReplayStates:
    """The run's state after any event, fast in both directions: folds from the nearest checkpoint."""

    EVERY = 1000

    def __init__(self, events: list[Event], parsed: dict[int, Any]) -> None:
        self.events = events
        self.parsed = parsed
        self._checkpoints: dict[int, RunState] = {}

    def at(self, cursor: int) -> RunState:
        start = max((c for c in self._checkpoints if c <= cursor), default=-1)
        state = self._checkpoints[start].copy() if start >= 0 else RunState(parsed=self.parsed)
        for index in range(start + 1, cursor + 1):
            state.apply(self.events[index])
            if index % self.EVERY == self.EVERY - 1 and index not in self._checkpoints:
                self._checkpoints[index] = state.copy()
        return state
