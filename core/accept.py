"""Accepting a candidate: its lineage commit and the trajectory event that records it.

The loop, the review queue and a resumed run all accept through `accept`, so every lineage commit
has the same message and every `commit` event the same payload:

    sha = accept(candidate, decision, lineage, record=writer.append)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from core.contracts import Candidate, Decision, LineageStore
from core.diff import PatchedTree
from core.events import CommitRecorded, PromotionRecorded
from core.trajectory import Event

Record = Callable[[str, dict[str, Any], int | None], Event]
"""Appends one event (kind, payload, generation) to the run's trajectory."""


def commit_message(candidate: Candidate, decision: Decision) -> str:
    """The lineage commit message: what changed, what it measured, who judged and decided it.

    Its first line starts with `generation N:` (a resumed run recognises a commit made before a crash
    by it)."""
    metric = candidate.evaluation.metric
    parent = candidate.parent_evaluation.metric if candidate.parent_evaluation else None
    summary = metric.summary() if metric else "no metric"
    delta = f" ({metric.gain_over(parent):+.4f} vs parent)" if metric and parent else ""
    verdict = candidate.verdict
    headline = (candidate.proposal.rationale.splitlines() or [""])[0][:120]
    return (
        f"generation {candidate.generation}: {headline}\n\n"
        f"metric: {summary}{delta}\n"
        f"verdict: {verdict.verdict} ({verdict.policy_name} {verdict.policy_hash[:12]})\n"
        f"decision: {decision.decision} by {decision.by}: {decision.reason}\n"
        f"proposer: {candidate.proposal.proposer}\n"
        f"evaluated against parent: {candidate.parent_commit}\n" + teacher_lines(candidate)
    )


def teacher_lines(candidate: Candidate) -> str:
    """For a bootstrapping target: the teacher this generation learned from, the student promoted."""
    evaluation = candidate.evaluation
    if evaluation.teacher_sha256 is None:
        return ""
    promoted = f"promoted student: {evaluation.student_sha256}\n" if evaluation.student_sha256 else ""
    return f"teacher: {evaluation.teacher_sha256}\n{promoted}"


def record_commit(
    candidate: Candidate,
    sha: str,
    lineage: LineageStore,
    record: Record,
    *,
    recovered: bool = False,
    from_queue: bool = False,
) -> Event:
    """Record the `commit` event of a candidate that is on the lineage as `sha`."""
    payload = CommitRecorded(
        commit=sha,
        parent=candidate.parent_commit,
        tag=f"gen-{candidate.generation}",
        tree=lineage.tree_of(sha),
        recovered="the lineage commit was made before a crash; its event is recorded on resume"
        if recovered
        else None,
        from_queue=True if from_queue else None,
    )
    return record("commit", payload.data(), candidate.generation)


def accept(
    candidate: Candidate,
    decision: Decision,
    lineage: LineageStore,
    record: Record,
    *,
    committed: Callable[[str], None] | None = None,
    from_queue: bool = False,
    patched: PatchedTree | None = None,
) -> str:
    """Commit an accepted candidate on the lineage, then record its `commit` event.

    committed: called with the new commit between the two (the loop counts the accept there).
    patched: the candidate's tree as evaluated, committed as it is (else its diff is applied).
    A lineage that is a tree commits the candidate on its own parent's branch."""
    lineage.grow_from(candidate.parent_commit, candidate.generation)
    sha = lineage.commit_candidate(
        candidate.proposal.diff, candidate.generation, commit_message(candidate, decision), patched=patched
    )
    if committed is not None:
        committed(sha)
    record_commit(candidate, sha, lineage, record, from_queue=from_queue)
    record_promotion(candidate, record)
    return sha


def record_promotion(candidate: Candidate, record: Record) -> Event | None:
    """For a bootstrapping target, the `promotion` event of an accepted candidate: its first seed's
    student becomes the teacher (the harness mounts the last one recorded)."""
    evaluation = candidate.evaluation
    if evaluation.student_sha256 is None or evaluation.teacher_sha256 is None:
        return None
    parent = candidate.parent_evaluation
    teacher_metric = parent.teacher_metric if parent is not None else None
    seed = evaluation.seeds[0] if evaluation.seeds else None
    metric = evaluation.metric
    payload = PromotionRecorded(
        previous_teacher_sha256=evaluation.teacher_sha256,
        teacher_sha256=evaluation.student_sha256,
        teacher_metric=evaluation.teacher_metric if teacher_metric is None else teacher_metric,
        student_metric=metric.per_seed.get(seed) if metric is not None and seed is not None else None,
        student_seed=seed,
    )
    return record("promotion", payload.data(), candidate.generation)
