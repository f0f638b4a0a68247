"""The review queue: candidates a policy sent to a human, decided later (`rsi review RUN_DIR`).

A candidate is queued when its latest decision event says `queue`. Deciding it appends a new
decision event (by `human:<name>`) to the run's trajectory and, on accept, commits its diff on the
lineage branch — continuing the lineage from wherever the run has got to.

    for item in pending(run_dir):
        decide(run_dir, item.generation, "accept", by="human:alice", reason="looks right")
"""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Literal

from core.accept import accept
from core.contracts import Decision
from core.errors import ConfigError
from core.fold import GenerationRecord, RunRecord, fold
from core.trajectory import TRAJECTORY_FILE, TrajectoryReader, TrajectoryWriter
from rsi.config import RunConfig
from sandbox.lineage import Lineage


def _recorded(run_dir: Path) -> RunRecord:
    return fold(list(TrajectoryReader(run_dir / TRAJECTORY_FILE).events()))


def _queued(run: RunRecord) -> list[GenerationRecord]:
    return [
        record
        for _, record in sorted(run.generations.items())
        if record.decision is not None and record.decision.decision == "queue"
    ]


def pending(run_dir: Path) -> list[GenerationRecord]:
    """Queued generations still waiting for a human, oldest first."""
    return _queued(_recorded(run_dir))


def decide(
    run_dir: Path,
    generation: int,
    decision: Literal["accept", "reject"],
    reason: str = "",
    by: str | None = None,
) -> Decision:
    """Record a human's decision on a queued candidate; on accept, commit it to the lineage."""
    run = _recorded(run_dir)
    waiting = {record.generation: record for record in _queued(run)}
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
    with TrajectoryWriter.open(run_dir / TRAJECTORY_FILE, run_id=config.run_id) as writer:
        writer.append("decision", made.model_dump(mode="json"), generation)
        if decision == "accept":
            lineage = Lineage(run_dir / "lineage")
            accept(run.candidate(generation), made, lineage, writer.append, from_queue=True)
    return made
