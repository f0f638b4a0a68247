"""The review queue: candidates a policy sent to a human, decided later (`rsi review RUN_DIR`).

A candidate is queued when its latest decision event says `queue`. Deciding it appends a new
decision event (by `human:<name>`) to the run's trajectory and, on accept, commits its diff on the
lineage branch — continuing the lineage from wherever the run has got to.

    for item in pending(run_dir):
        decide(run_dir, item.generation, "accept", by="human:alice", reason="looks right")
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from core.contracts import Decision, Evaluation, Proposal, Verdict
from core.errors import ConfigError
from core.trajectory import Event, TrajectoryReader, TrajectoryWriter
from rsi.config import RunConfig
from sandbox.lineage import Lineage

TRAJECTORY = "trajectory.jsonl"


@dataclass
class GenerationRecord:
    """Everything the trajectory holds about one generation, latest decision last."""

    generation: int
    parent_commit: str = ""
    proposal: Proposal | None = None
    evaluation: Evaluation | None = None
    verdict: Verdict | None = None
    decisions: list[Decision] | None = None
    commit: str | None = None

    @property
    def decision(self) -> Decision | None:
        return self.decisions[-1] if self.decisions else None


def generations(events: list[Event]) -> dict[int, GenerationRecord]:
    """Fold a run's events into one record per generation."""
    records: dict[int, GenerationRecord] = {}
    for event in events:
        fold_event(records, event)
    return records


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

    `parsed` caches the validated model of each event by sequence number, so that re-folding a
    long trajectory (replay stepping back) does not validate every event again.
    """
    if event.generation is None or event.generation < 1:
        return None
    record = records.setdefault(event.generation, GenerationRecord(event.generation))
    model: Any = None
    if event.kind in MODELS:
        model = parsed.get(event.seq) if parsed is not None else None
        if model is None:
            model = MODELS[event.kind].model_validate(event.data)
            if parsed is not None:
                parsed[event.seq] = model
    if event.kind == "proposal_started":
        record.parent_commit = str(event.data.get("parent", ""))
    elif event.kind == "proposal":
        record.proposal = model
    elif event.kind == "evaluation":
        record.evaluation = model
    elif event.kind == "verdict":
        record.verdict = model
    elif event.kind == "decision":
        record.decisions = [*(record.decisions or []), model]
    elif event.kind == "commit":
        record.commit = str(event.data.get("commit"))
    return record


def pending(run_dir: Path) -> list[GenerationRecord]:
    """Queued generations still waiting for a human, oldest first."""
    events = list(TrajectoryReader(run_dir / TRAJECTORY).events())
    return [
        record
        for _, record in sorted(generations(events).items())
        if record.decision is not None and record.decision.decision == "queue"
    ]


def decide(
    run_dir: Path,
    generation: int,
    decision: Literal["accept", "reject"],
    reason: str = "",
    by: str | None = None,
) -> Decision:
    """Record a human's decision on a queued candidate; on accept, commit it to the lineage."""
    waiting = {record.generation: record for record in pending(run_dir)}
    record = waiting.get(generation)
    if record is None or record.proposal is None:
        queued = ", ".join(str(g) for g in waiting) or "none"
        raise ConfigError(
            f"generation {generation} of {run_dir} is not waiting for review (queued: {queued})."
        )
    verdict = record.verdict
    if decision == "accept" and verdict is not None and verdict.verdict == "deny":
        raise ConfigError(
            f"generation {generation} was denied by policy ({verdict.reasons()}); it cannot be accepted."
        )
    made = Decision(decision=decision, by=by or f"human:{getpass.getuser()}", reason=reason)
    config = RunConfig.load(run_dir)
    with TrajectoryWriter.open(run_dir / TRAJECTORY, run_id=config.run_id) as writer:
        writer.append("decision", made.model_dump(mode="json"), generation)
        if decision == "accept":
            lineage = Lineage(run_dir / "lineage")
            metric = record.evaluation.metric if record.evaluation else None
            message = (
                f"generation {generation}: {record.proposal.rationale.splitlines()[0][:120]}\n\n"
                f"metric: {metric.summary() if metric else 'no metric'}\n"
                f"decision: accept by {made.by} (from the review queue): {reason}\n"
                f"evaluated against parent: {record.parent_commit}\n"
            )
            sha = lineage.commit_candidate(record.proposal.diff, generation, message)
            writer.append(
                "commit",
                {
                    "commit": sha,
                    "parent": record.parent_commit,
                    "tag": f"gen-{generation}",
                    "from_queue": True,
                },
                generation,
            )
    return made
