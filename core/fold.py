"""The one fold of a trajectory into what a run has done: per-generation records and run totals.

    run = fold(list(TrajectoryReader(run_dir / TRAJECTORY_FILE).events()))
    run.decided           # generations with a decision, oldest first (the latest decision holds)
    run.in_flight         # the generation a stopped run was in the middle of, if any

Events a later `run_resumed` marked superseded (the in-flight generation of a crashed session,
which runs again) never count: `fold` skips them, and a view that folds events one at a time
(`fold_event`) drops the superseded generation's record when the `run_resumed` arrives.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from core.contracts import Candidate, Decision, Evaluation, Proposal, Usage, Verdict
from core.errors import ConfigError
from core.events import (
    CheckpointRecorded,
    CommitRecorded,
    EliteChecked,
    EvaluationRecorded,
    ProposalStarted,
    RunResumed,
)
from core.trajectory import Event

SESSION_STARTS = ("run_started", "run_resumed")


def live_events(events: list[Event]) -> list[Event]:
    """The events that count: every event but those a later `run_resumed` marked superseded."""
    superseded: set[int] = set()
    for event in events:
        if event.kind == "run_resumed":
            superseded.update(RunResumed.model_validate(event.data).superseded_seqs)
    return [event for event in events if event.seq not in superseded]


@dataclass
class GenerationRecord:
    """Everything the live events hold about one generation; its latest decision is the one that holds.

    Its lists are replaced, never changed in place, so a shallow copy is an independent record."""

    generation: int
    parent_commit: str = ""
    proposal: Proposal | None = None
    evaluation: Evaluation | None = None
    verdict: Verdict | None = None
    decisions: list[Decision] = field(default_factory=list)
    commit: str | None = None
    seqs: list[int] = field(default_factory=list)
    """Sequence numbers of its events (what a resumed run supersedes when it runs it again)."""

    @property
    def decision(self) -> Decision | None:
        return self.decisions[-1] if self.decisions else None

    def candidate(self, parent_evaluation: Evaluation | None) -> Candidate:
        if self.proposal is None or self.evaluation is None or self.verdict is None:
            raise ConfigError(
                f"generation {self.generation} has no complete record (proposal, evaluation and verdict); "
                "its trajectory is incomplete, so it cannot be decided or committed."
            )
        return Candidate(
            generation=self.generation,
            parent_commit=self.parent_commit,
            proposal=self.proposal,
            evaluation=self.evaluation,
            parent_evaluation=parent_evaluation,
            verdict=self.verdict,
        )


@dataclass
class RunRecord:
    """What a run's trajectory says so far: the state a resumed loop starts from, what reports show."""

    started: bool = False
    sessions: int = 0
    baseline: Evaluation | None = None
    parent_evaluations: dict[str, Evaluation] = field(default_factory=dict)
    generations: dict[int, GenerationRecord] = field(default_factory=dict)
    usage: Usage = field(default_factory=Usage)
    elapsed_s: float = 0.0
    fired_checkpoints: set[str] = field(default_factory=set)
    elite_checks: dict[int, EliteChecked] = field(default_factory=dict)
    """Accepted candidates re-measured on fresh seeds before becoming parents, by number."""
    last_kind: str | None = None

    @property
    def in_flight(self) -> GenerationRecord | None:
        undecided = [g for g in self.generations.values() if g.decision is None]
        return max(undecided, key=lambda g: g.generation) if undecided else None

    @property
    def undecided(self) -> list[GenerationRecord]:
        """Every generation started and not decided (K candidates of one generation may be)."""
        return [g for _, g in sorted(self.generations.items()) if g.decision is None]

    @property
    def decided(self) -> list[GenerationRecord]:
        return [g for _, g in sorted(self.generations.items()) if g.decision is not None]

    def parent_evaluation(self, commit: str) -> Evaluation | None:
        if self.baseline is not None and self.baseline.parent_commit == commit:
            return self.baseline
        return self.parent_evaluations.get(commit)

    def candidate(self, generation: int) -> Candidate:
        """A recorded generation as the reviewer saw it, its parent's evaluation included."""
        record = self.generations[generation]
        return record.candidate(self.parent_evaluation(record.parent_commit))


def fold(events: list[Event]) -> RunRecord:
    """Fold a run's events (superseded ones skipped) into the state of the run."""
    live = live_events(events)
    run = RunRecord()
    for event in live:
        _fold_run_event(run, event)
        fold_event(run.generations, event)
    run.elapsed_s = session_seconds(live)
    run.last_kind = live[-1].kind if live else None
    return run


def _fold_run_event(run: RunRecord, event: Event) -> None:
    data = event.data
    if event.kind in SESSION_STARTS:
        run.started = True
        run.sessions += 1
    elif event.kind == "baseline":
        run.baseline = EvaluationRecorded.model_validate(data).evaluation
    elif event.kind == "parent_evaluation":
        recorded = EvaluationRecorded.model_validate(data)
        run.parent_evaluations[recorded.commit] = recorded.evaluation
    elif event.kind == "proposal":
        run.usage = run.usage + Usage.model_validate(data.get("usage", {}))
    elif event.kind == "checkpoint":
        run.fired_checkpoints.add(CheckpointRecorded.model_validate(data).key)
    elif event.kind == "elite_check":
        check = EliteChecked.model_validate(data)
        run.elite_checks[check.generation] = check


MODELS: dict[str, type[BaseModel]] = {
    "proposal": Proposal,
    "evaluation": Evaluation,
    "verdict": Verdict,
    "decision": Decision,
}


def fold_event(
    records: dict[int, GenerationRecord], event: Event, parsed: dict[int, Any] | None = None
) -> GenerationRecord | None:
    """Fold one event into the per-generation records (live views add events one at a time).

    A `run_resumed` drops the record of the generation it supersedes (it runs again). `parsed`
    caches the validated model of each event by sequence number, so that re-folding a long
    trajectory (replay stepping back) does not validate every event again.
    """
    if event.kind == "run_resumed":
        _supersede(records, RunResumed.model_validate(event.data))
        return None
    if event.generation is None or event.generation < 1 or event.kind == "checkpoint":
        return None
    record = records.setdefault(event.generation, GenerationRecord(event.generation))
    record.seqs = [*record.seqs, event.seq]
    model = _model(event, parsed)
    if event.kind == "proposal_started":
        record.parent_commit = ProposalStarted.model_validate(event.data).parent
    elif isinstance(model, Proposal):
        record.proposal = model
    elif isinstance(model, Evaluation):
        record.evaluation = model
    elif isinstance(model, Verdict):
        record.verdict = model
    elif isinstance(model, Decision):
        record.decisions = [*record.decisions, model]
    elif event.kind == "commit":
        record.commit = CommitRecorded.model_validate(event.data).commit
    return record


def _model(event: Event, parsed: dict[int, Any] | None) -> BaseModel | None:
    if event.kind not in MODELS:
        return None
    model = parsed.get(event.seq) if parsed is not None else None
    if model is None:
        model = MODELS[event.kind].model_validate(event.data)
        if parsed is not None:
            parsed[event.seq] = model
    return model


def _supersede(records: dict[int, GenerationRecord], resumed: RunResumed) -> None:
    superseded = set(resumed.superseded_seqs)
    if not superseded:
        return
    for generation, record in list(records.items()):
        if record.seqs and set(record.seqs) <= superseded:
            del records[generation]


def session_seconds(events: list[Event]) -> float:
    """Wall time the run has used: each session from its start event to its last event."""
    total, start, last = 0.0, None, None
    for event in events:
        stamp = datetime.fromisoformat(event.ts)
        if event.kind in SESSION_STARTS:
            if start is not None and last is not None:
                total += (last - start).total_seconds()
            start = stamp
        last = stamp
    if start is not None and last is not None:
        total += (last - start).total_seconds()
    return total
