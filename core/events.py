"""Typed payloads of the trajectory events that the fold and its readers rely on.

An `Event` carries its payload as a plain mapping (`event.data`), so a trajectory stays readable
by any JSON tool. These models are how code reads and writes the payloads it depends on:

    started = ProposalStarted.model_validate(event.data)
    writer.append("commit", CommitRecorded(commit=sha, parent=p, tag="gen-3").data(), 3)

Unknown keys are kept (older and newer writers add fields a reader does not need).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from core.contracts import Evaluation, Proposal
from core.paired import PairedComparison


class Payload(BaseModel):
    model_config = ConfigDict(extra="allow")

    def data(self) -> dict[str, Any]:
        """The payload as written to the trajectory: fields left unset (None) are left out."""
        return self.model_dump(mode="json", exclude_none=True)


class EvaluationRecorded(Payload):
    """`baseline` and `parent_evaluation`: a parent commit measured on its own."""

    commit: str
    """The commit measured."""
    evaluation: Evaluation
    """What the harness measured for it."""

    def data(self) -> dict[str, Any]:
        return self.model_dump(mode="json")  # the evaluation as measured, its None fields included


class RaceRecorded(Payload):
    """`race`: a close call (a positive paired gain within the noise) measured, with its parent, on
    extra seeds before it is judged. The generation's `evaluation` event that follows holds the
    candidate merged over every seed; the parent's extra seeds are here."""

    parent: str
    """The parent commit, measured on the same extra seeds."""
    seeds: list[int]
    """The extra seeds of this round."""
    before: PairedComparison
    """The paired comparison that earned the extra seeds."""
    parent_evaluation: Evaluation
    """The parent on the extra seeds alone."""
    evaluation: Evaluation
    """The candidate on the extra seeds alone."""

    def data(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class EliteChecked(Payload):
    """`elite_check`: an accepted candidate re-measured, with its parent, on fresh seeds before it
    first becomes a parent. Not confirmed: a lucky score, never chosen as a parent."""

    generation: int
    """The accepted candidate's number (node gen-N)."""
    commit: str
    """Its lineage commit."""
    parent: str
    """Its parent's commit."""
    seeds: list[int]
    """The fresh seeds (none of them measured it before)."""
    evaluation: Evaluation
    """The candidate's commit on the fresh seeds."""
    parent_evaluation: Evaluation
    """Its parent on the same seeds."""
    paired: PairedComparison | None
    """The candidate against its parent on the fresh seeds (None when either has no metric)."""
    confirmed: bool
    """Still better than its parent on the fresh seeds (a positive paired gain)."""

    def data(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class ProposalStarted(Payload):
    """`proposal_started`: which parent a generation starts from, and who proposes."""

    parent: str = ""
    """The parent commit the candidate is proposed against."""
    parent_tree: str | None = None
    """The git tree of the parent (identical trees are identical parents)."""
    proposer: str = ""
    """The proposer's name."""
    reused_recorded_proposal: bool = False
    """A resumed run evaluates the proposal it recorded before the crash instead of asking anew."""
    strategy: str | None = None
    """The search strategy that chose the parent (None: a run from before strategies, greedy)."""
    parent_node: str | None = None
    """The parent's place in the search tree: `gen-N` (an accepted candidate) or `gen-0` (baseline)."""


class ProposalRecorded(Proposal):
    """`proposal`: the proposal, where its diff is kept, and a one-line summary of the diff."""

    model_config = ConfigDict(extra="allow")

    diff_file: str | None = None
    """The file in the run directory that keeps the diff, whatever its fate."""
    diff_stat: str = ""
    """Files, lines added and removed (see sandbox.patch.diff_stat)."""


class CommitRecorded(Payload):
    """`commit`: an accepted candidate is on the lineage."""

    commit: str
    """The lineage commit."""
    parent: str = ""
    """The parent the candidate was evaluated against."""
    tag: str = ""
    """The `gen-N` tag on the commit."""
    tree: str | None = None
    """The git tree of the commit."""
    recovered: str | None = None
    """Set when the commit was made before a crash and its event is recorded on resume."""
    from_queue: bool | None = None
    """Set when a human accepted the candidate from the review queue."""


class PromotionRecorded(Payload):
    """`promotion`: an accepted bootstrapping generation's student becomes the next teacher."""

    previous_teacher_sha256: str
    """The teacher the generation's students learned from."""
    teacher_sha256: str
    """The promoted student's trained artifact: the teacher of every later sandbox."""
    teacher_metric: float | None = None
    """The previous teacher scored by the harness on the held-out selection set."""
    student_metric: float | None = None
    """The promoted student (the first seed's) scored by the harness on the same set."""
    student_seed: int | None = None
    """The seed whose trained artifact was promoted."""


class CheckpointRecorded(Payload):
    """`checkpoint`: a threshold paused the run until a human has looked."""

    key: str
    """What fired (each checkpoint fires once per run)."""
    kind: str
    """The kind of threshold (budget, metric, strict_review, ...)."""
    message: str
    """What a human reads."""


class RunResumed(Payload):
    """`run_resumed`: a new session of a run; the in-flight generation's events are superseded."""

    superseded_seqs: list[int] = []
    """Events that no longer count: those of the generation that was in flight when the run stopped."""
    superseded_generation: int | None = None
    """The generation those events belonged to (it runs again)."""
    session: int | None = None
    """The number of this session of the run (the first is 1)."""
    previous_session_end: str | None = None
    """How the session before ended: `finished` (a run_finished event) or `crashed`."""
    next_generation: int | None = None
    """The first generation this session runs."""
    generations: int | None = None
    """The generations the run plans in all."""


class RunFinished(Payload):
    """`run_finished`: how a session of the run ended."""

    status: str
    """completed, stopped, paused, interrupted or error."""
    reason: str = ""
    """Why it ended so (a budget, a checkpoint, a signal, an error)."""
    accepted: int = 0
    """Candidates accepted so far in the run."""
    head: str | None = None
    """The lineage head when it ended."""
    best_metric: float | None = None
    """The best metric mean among the baseline and the accepted candidates."""
    signal: str | None = None
    """The signal that interrupted it (SIGINT, SIGTERM, SIGHUP), if one did."""


class ErrorRecorded(Payload):
    """`error`: a run error the run recorded before it ended."""

    message: str = ""
    """What went wrong, as the user reads it."""
    type: str = ""
    """The error's class name."""
