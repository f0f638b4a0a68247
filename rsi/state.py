"""What a generation loop carries from one generation to the next, and from one session to the next.

A new run starts from an empty `LoopState`; a resumed run starts from the state its trajectory
records (`LoopState.from_record(fold(events))`), so the loop never needs to know which it is.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from core.contracts import Candidate, Decision, Evaluation, HistoryEntry, Proposal, Usage, best_of
from core.fold import RunRecord
from sandbox.patch import diff_stat


@dataclass
class LoopState:
    baseline: Evaluation | None = None
    """The lineage's first commit as measured (None until the baseline is evaluated)."""
    best: float | None = None
    """The best metric mean among the baseline and accepted candidates."""
    accepted: int = 0
    usage: Usage = field(default_factory=Usage)
    """What proposals have cost so far (every session of the run)."""
    history: list[HistoryEntry] = field(default_factory=list)
    """Every decided generation, as the proposer sees it."""
    elapsed_before_s: float = 0.0
    """Wall time of earlier sessions of this run (a resumed run's budget counts them)."""
    fired_checkpoints: set[str] = field(default_factory=set)
    parent_evaluated: set[str] = field(default_factory=set)
    """Parents whose evaluation is recorded (each is recorded once)."""
    recorded_proposals: dict[int, Proposal] = field(default_factory=dict)
    """Proposals recorded before a crash, evaluated again instead of asking the proposer anew."""
    recorded_parents: dict[int, str] = field(default_factory=dict)
    """The parent each recorded proposal was made against (reused only from that same parent)."""
    commits: dict[int, str] = field(default_factory=dict)
    """The lineage commit of each accepted candidate, by number."""
    chosen_nodes: dict[int, str] = field(default_factory=dict)
    """Parents already chosen for candidates not decided yet (`gen-N` nodes): kept on resume."""
    elite_checked: dict[int, bool] = field(default_factory=dict)
    """Accepted candidates re-measured on fresh seeds, by number: confirmed (True) or a lucky
    score (False: never chosen as a parent)."""

    @property
    def demoted(self) -> set[int]:
        """Accepted candidates whose score did not hold on fresh seeds."""
        return {number for number, confirmed in self.elite_checked.items() if not confirmed}

    @property
    def baseline_metric(self) -> float | None:
        return self.baseline.metric.mean if self.baseline and self.baseline.metric else None

    def set_baseline(self, evaluation: Evaluation) -> None:
        self.baseline = evaluation
        self.best = evaluation.metric.mean if evaluation.metric else None

    def count_accept(self, candidate: Candidate, commit: str) -> None:
        """An accepted candidate is on the lineage as `commit`: count it, and raise the best metric."""
        self.accepted += 1
        self.commits[candidate.generation] = commit
        metric = candidate.evaluation.metric
        if metric is not None:
            self.best = best_of(self.best, metric.mean, metric.direction)

    def add_decided(self, candidate: Candidate, decision: Decision, stat: str | None = None) -> None:
        """`stat`: the diff's one-line summary when the caller has it (else computed from the diff)."""
        self.history.append(history_entry(candidate, decision, stat))
        self.chosen_nodes.pop(candidate.generation, None)

    @classmethod
    def from_record(cls, run: RunRecord) -> LoopState:
        """The state a run's trajectory records: baseline, parents, history, counts, budgets."""
        state = cls(
            usage=run.usage,
            elapsed_before_s=run.elapsed_s,
            fired_checkpoints=set(run.fired_checkpoints),
            parent_evaluated=set(run.parent_evaluations),
            elite_checked={number: check.confirmed for number, check in run.elite_checks.items()},
        )
        if run.baseline is not None:
            state.set_baseline(run.baseline)
        for record in run.decided:
            assert record.decision is not None
            candidate = run.candidate(record.generation)
            state.add_decided(candidate, record.decision)
            if record.commit:
                state.count_accept(candidate, record.commit)
        node_of = {commit: f"gen-{generation}" for generation, commit in state.commits.items()}
        if run.baseline is not None:
            node_of[run.baseline.parent_commit] = "gen-0"
        for record in run.undecided:  # a generation of K candidates leaves up to K in flight
            if record.parent_commit in node_of:
                state.chosen_nodes[record.generation] = node_of[record.parent_commit]
            if record.proposal is not None:
                state.recorded_proposals[record.generation] = record.proposal
                state.recorded_parents[record.generation] = record.parent_commit
        return state


def history_entry(candidate: Candidate, decision: Decision, stat: str | None = None) -> HistoryEntry:
    metric = candidate.evaluation.metric
    reason = decision.reason
    if candidate.evaluation.failure:
        reason = f"{candidate.evaluation.failure}: {candidate.evaluation.failure_detail[:300]} | {reason}"
    return HistoryEntry(
        generation=candidate.generation,
        parent_commit=candidate.parent_commit,
        rationale=(candidate.proposal.rationale.splitlines() or [""])[0],
        diff_stat=diff_stat(candidate.proposal.diff) if stat is None else stat,
        metric_mean=metric.mean if metric else None,
        metric_std=metric.std if metric else None,
        decision=decision.decision,
        reason=reason,
        paired=candidate.verdict.paired,
    )
