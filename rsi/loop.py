"""The generation loop: propose → evaluate → judge → decide → commit, every step recorded.

    loop = GenerationLoop(parts)          # parts are built in one place: rsi.compose
    summary = loop.run()

With `RunConfig.candidates` K > 1, a generation is K candidates from the same parent, one number
(gen-N) each: proposed in turn, evaluated in parallel, judged, and decided best gain first — the
first accepted wins and its siblings are rejected by the search (`step_many`).
`RunConfig.max_evaluations` caps the candidates in all.

Noise-aware acceptance: a candidate whose paired gain over its parent is positive but not
significant at the policy's confidence is measured again, with its parent, on extra seeds (racing,
up to `RunConfig.max_seeds`; a `race` event each round) before it is judged on all of them. An
accepted candidate is re-measured with its parent on fresh seeds before it first becomes a parent
(an `elite_check` event); one that no longer beats its parent there is a lucky score, demoted: no
strategy chooses it again.

Each step is appended (and fsynced) to the trajectory before the next starts; every diff is kept
as a file whatever its fate; the run ends with a `run_finished` event even on an error or Ctrl-C.
After every event `status.json` in the run directory is replaced atomically with where the run is
(rsi.status).

A run stops cleanly (before the next generation) on the stop file run_dir/STOP or a budget. An
interruption (rsi.interrupts) abandons the step in flight at once — never in the middle of writing
an event or a lineage commit: those finish first — records `run_finished` with status
`interrupted` and the signal, and leaves the in-flight generation for `rsi resume` to run again.
Child processes (git helpers, sandboxes) may die of the same signal; nothing after the signal
depends on them.

A run pauses (status `paused`, a `checkpoint` event, the candidate queued) when a checkpoint
threshold of `RunConfig.checkpoints` is crossed or, with `--review strict`, at the first `review`
verdict. `rsi resume RUN_DIR` continues any of these, and a crashed run: it hands the loop the
`LoopState` its trajectory records (rsi.resume). Crash tests pause the loop at exact points
(rsi.faults).
"""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from core.accept import accept, record_commit
from core.contracts import (
    Candidate,
    Decision,
    Evaluation,
    HistoryEntry,
    LineageStore,
    Policy,
    Proposal,
    ProposalContext,
    Proposer,
    Reviewer,
    Sandbox,
)
from core.diff import PatchedTree
from core.errors import ModelUnavailable, RsiError, RunInterrupted
from core.events import CheckpointRecorded, EliteChecked, EvaluationRecorded, ProposalStarted, RaceRecorded
from core.paired import PairedComparison, paired_comparison
from core.run import NullObserver, Observer, RunSummary
from core.target import TargetSpec
from core.trajectory import Event, TrajectoryWriter
from rsi.checkpoints import Checkpoint, budget_checkpoint, candidate_checkpoint
from rsi.config import RunConfig
from rsi.faults import fault_point
from rsi.interrupts import Interrupts
from rsi.search.paired import fresh_seeds, race_decision, racing_seeds
from rsi.search.parallel import evaluate_across
from rsi.search.selector import Choice, ParentSelector, ancestry, siblings
from rsi.state import LoopState
from rsi.status import RunStatus
from sandbox.patched import patched_tree
from sandbox.scratch import scratch_dir

STOP_FILE = "STOP"


class CheckpointReached(RunInterrupted):
    """A checkpoint threshold (or a strict review) paused the run until a human has looked."""


@dataclass
class RunParts:
    config: RunConfig
    spec: TargetSpec
    lineage: LineageStore
    evaluator: Sandbox
    proposer: Proposer
    policy: Policy
    reviewer: Reviewer
    trajectory: TrajectoryWriter
    observer: Observer = field(default_factory=NullObserver)
    run_info: dict[str, Any] = field(default_factory=dict)
    contract_differences: list[str] = field(default_factory=list)
    """Where the live target, policy, image or settings differ from the contract the run started
    with (a resumed or re-executed run uses the recorded one)."""
    remove_sandboxes: Callable[[], int] = lambda: 0
    """Remove every sandbox of this run the engine still holds (after an interruption)."""
    leftover_sandboxes: int = 0
    """Sandboxes of this run the engine still held when a resumed run was built (a crashed session's)."""
    promote_successor: Callable[[Candidate], None] = lambda candidate: None
    """Called once a candidate is accepted: for a bootstrapping target, its student becomes the
    teacher of every later sandbox (rsi.promotion); nothing for any other target."""


class GenerationLoop:
    def __init__(self, parts: RunParts, state: LoopState | None = None) -> None:
        self.parts = parts
        self.config = parts.config
        self.state = state or LoopState()
        """What the run has done so far; a resumed run's comes from its trajectory (LoopState.from_record)."""
        self.generation = 0
        self.run_state = "running"
        self.interrupts = Interrupts()
        self._status = RunStatus(parts.config)
        self._stop_reason: str | None = None
        self._started = time.monotonic()
        self.selector = ParentSelector(parts.config.strategy, parts.spec.metric.direction)
        """Chooses every candidate's parent (--strategy); greedy builds on the lineage head."""

    # -- recording -----------------------------------------------------------------------

    def record(self, kind: str, data: dict[str, Any], generation: int | None = None) -> Event:
        with self.interrupts.atomic():
            event = self.parts.trajectory.append(kind, data, generation)
            self._status.write(
                event,
                self.state,
                run_state=self.run_state,
                generation=self.generation,
                wall_used_s=self.wall_used_s(),
                last_hash=self.parts.trajectory.last_hash,
            )
        with contextlib.suppress(OSError):  # a closed terminal (SIGHUP) must not take the record down
            self.parts.observer.on_event(event)
        fault_point(self.config.run_dir, kind, generation)
        return event

    def wall_used_s(self) -> float:
        return self.state.elapsed_before_s + time.monotonic() - self._started

    def progress(self, phase: str, details: dict[str, Any]) -> None:
        self.parts.observer.on_progress(phase, details)

    # -- the run -------------------------------------------------------------------------

    def run(self, first_generation: int = 1, record_start: bool = True) -> RunSummary:
        """Run generations first_generation…config.generations (record_start=False: a resumed run)."""
        status, reason = "completed", ""
        with self.interrupts.installed():
            try:
                status, reason = self._generations(first_generation, record_start)
            except BaseException as exc:
                self.interrupts.finishing = True
                status, reason = self._outcome(exc)
                if status == "error" and not isinstance(exc, RsiError):
                    raise  # a bug: recorded as an error by the `finally` below, then shown in full
            finally:
                self.interrupts.finishing = True
                summary = self._finish(status, reason)
        return summary

    def _generations(self, first_generation: int, record_start: bool) -> tuple[str, str]:
        if record_start:
            self.record("run_started", self.parts.run_info)
        if self.state.baseline is None:
            self._evaluate_baseline()
        decided = {entry.generation for entry in self.state.history}
        todo = [n for n in range(first_generation, self.last_number() + 1) if n not in decided]
        while todo:
            if (stop := self._should_stop()) is not None:
                return "stopped", stop
            self._check_budget_checkpoint(todo[0])
            numbers, todo = todo[: self.config.candidates], todo[self.config.candidates :]
            self._step_generation(numbers)
        return "completed", ""

    def _step_generation(self, numbers: list[int]) -> None:
        """One generation: the strategy chooses each candidate's parent; all are proposed, then
        evaluated in parallel, and decided per parent (at most one accepted per parent)."""
        choices = self._confirmed_choices(numbers)
        for choice in choices:
            self.state.chosen_nodes[choice.number] = choice.node
        if len(choices) == 1:
            self.step(choices[0].number, choices[0].commit)
        else:
            self.step_many(numbers, [choice.commit for choice in choices])

    @property
    def max_seeds(self) -> int:
        """The racing cap: seeds a close call may be measured on in all."""
        return self.config.max_seeds or 2 * len(self.config.seeds)

    def _confirmed_choices(self, numbers: list[int]) -> list[Choice]:
        """The strategy's parents, each accepted node among them confirmed on fresh seeds first; a
        node that fails its check is demoted and the strategy chooses again."""
        while True:
            choices = self.selector.choose(self.state, numbers, self.parts.lineage.head())
            fresh = [c.node for c in choices if c.number not in self.state.chosen_nodes]
            unchecked = [
                number
                for number in dict.fromkeys(_node_number(node) for node in fresh)
                if number and number not in self.state.elite_checked
            ]
            if not self.config.confirm_elites or not unchecked:
                return choices
            for number in unchecked:
                self._confirm_elite(number)

    def _confirm_elite(self, number: int) -> None:
        """Re-measure accepted candidate `number` and its parent on fresh seeds and record whether
        it still beats its parent there (paired); if not, it is a lucky score and never a parent."""
        entry = next(e for e in self.state.history if e.generation == number)
        commit, parent, seeds = self.state.commits[number], entry.parent_commit, self._fresh_seeds()
        self.progress("confirm", {"generation": number, "seeds": seeds})
        evaluator = self.parts.evaluator
        parent_eval = evaluator.evaluate(parent, "", label=f"confirm-{parent[:8]}", seeds=seeds)
        evaluation = evaluator.evaluate(commit, "", label=f"confirm-gen-{number:04d}", seeds=seeds)
        for measured in (parent_eval, evaluation):
            if measured.failure == "sandbox_error":  # the harness's trouble, not the candidate's
                raise RsiError(
                    f"confirming gen-{number} on fresh seeds {seeds}: the sandbox failed "
                    f"({measured.failure_detail[:300]}); fix the sandbox, then `rsi resume` the run."
                )
        paired = self._paired(parent_eval, evaluation)
        confirmed = paired is not None and paired.gain > 0
        check = EliteChecked(
            generation=number,
            commit=commit,
            parent=parent,
            seeds=seeds,
            evaluation=evaluation,
            parent_evaluation=parent_eval,
            paired=paired,
            confirmed=confirmed,
        )
        self.record("elite_check", check.data())
        self.state.elite_checked[number] = confirmed

    def _fresh_seeds(self) -> list[int]:
        return fresh_seeds(self.config.seeds, self.max_seeds)

    def _paired(self, parent: Evaluation, child: Evaluation) -> PairedComparison | None:
        """The child against its parent on the seeds both were measured on (None without metrics)."""
        if not (parent.ok and child.ok and parent.metric and child.metric):
            return None
        if not set(parent.metric.per_seed) & set(child.metric.per_seed):
            return None
        return paired_comparison(
            parent.metric.per_seed,
            child.metric.per_seed,
            self.parts.spec.metric.direction,
            self.parts.policy.confidence,
        )

    def _race(
        self,
        number: int,
        parent: str,
        diff: str,
        evaluation: Evaluation,
        parent_eval: Evaluation,
        patched: PatchedTree,
    ) -> tuple[Evaluation, Evaluation]:
        """Racing: while the paired gain is positive but not significant and seeds are left, measure
        the candidate and its parent on the next extra seeds (a `race` event each round); both
        merged over every seed measured. A candidate with an integrity finding does not race: a
        human judges it whatever more seeds would say, and code under suspicion runs no more than
        its evaluation needed."""
        extra = racing_seeds(self.config.seeds, self.max_seeds)
        step = len(self.config.seeds)
        while extra and not evaluation.integrity:
            paired = self._paired(parent_eval, evaluation)
            if paired is None or race_decision(paired, self.max_seeds) != "more_seeds":
                break
            seeds, extra = extra[:step], extra[step:]
            self.progress("race", {"generation": number, "seeds": seeds, "gain": paired.gain})
            evaluator = self.parts.evaluator
            label = f"seeds-{seeds[0]}-{seeds[-1]}"
            parent_extra = evaluator.evaluate(parent, "", label=f"parent-{parent[:8]}-{label}", seeds=seeds)
            extra_eval = evaluator.evaluate(
                parent, diff, label=f"gen-{number:04d}-{label}", patched=patched, seeds=seeds
            )
            race = RaceRecorded(
                parent=parent,
                seeds=seeds,
                before=paired,
                parent_evaluation=parent_extra,
                evaluation=extra_eval,
            )
            self.record("race", race.data(), number)
            if not parent_extra.ok:  # the parent cannot be compared there: judged on what is known
                break
            evaluation = evaluation.with_extra_seeds(extra_eval)
            parent_eval = parent_eval.with_extra_seeds(parent_extra)
        return evaluation, parent_eval

    def last_number(self) -> int:
        """The last candidate number the run plans: K per generation, within --max-evaluations."""
        planned = self.config.generations * self.config.candidates
        return min(planned, self.config.max_evaluations or planned)

    def _outcome(self, exc: BaseException) -> tuple[str, str]:
        """How the run ended, from the exception that ended it; records an `error` event if due."""
        interrupt = self.interrupts.signal
        if interrupt is not None and isinstance(exc, Exception | KeyboardInterrupt):
            # After an interruption, a failing step is the signal's doing (its git helper or
            # sandbox died of it too), not the candidate's or the harness's.
            name = signal.Signals(interrupt).name
            return (
                "interrupted",
                f"{name} received: the step in flight was abandoned; nothing recorded is lost",
            )
        if isinstance(exc, KeyboardInterrupt):
            return "interrupted", "Ctrl-C: the step in flight was abandoned; nothing recorded is lost"
        if isinstance(exc, CheckpointReached):
            return "paused", str(exc)
        if isinstance(exc, RunInterrupted):
            return "stopped", str(exc)
        if isinstance(exc, ModelUnavailable):
            self.record("error", {"message": str(exc), "type": type(exc).__name__})
            return "paused", str(exc)
        if isinstance(exc, RsiError):
            self.record("error", {"message": str(exc), "type": type(exc).__name__})
            return "error", str(exc)
        return "error", f"unexpected {type(exc).__name__}: {exc}"

    def _finish(self, status: str, reason: str) -> RunSummary:
        if status == "interrupted":
            # Every session has closed by now; a container whose creation the signal cut short
            # is not one of them. Failing to reach the engine must not lose the record.
            with contextlib.suppress(Exception):
                self.parts.remove_sandboxes()
        self.run_state = status
        summary = self._summary(status, reason)
        data: dict[str, Any] = {
            "status": status,
            "reason": reason,
            "accepted": self.state.accepted,
            "head": summary.head,
            "best_metric": self.state.best,
            "usage": self.state.usage.model_dump(),
        }
        if summary.signal is not None:
            data["signal"] = signal.Signals(summary.signal).name
        self.record("run_finished", data)
        return summary

    def _summary(self, status: str, reason: str) -> RunSummary:
        return RunSummary(
            status=status,
            generations=len(self.state.history),
            accepted=self.state.accepted,
            baseline_metric=self.state.baseline_metric,
            best_metric=self.state.best,
            head=self.parts.lineage.head(),
            usage=self.state.usage,
            reason=reason,
            signal=self.interrupts.signal if status == "interrupted" else None,
        )

    def _should_stop(self) -> str | None:
        config = self.config
        if self._stop_reason:
            return self._stop_reason
        if (config.run_dir / STOP_FILE).exists():
            return f"stop file {config.run_dir / STOP_FILE} found"
        if config.max_wall_s is not None and self.wall_used_s() > config.max_wall_s:
            return f"wall-time budget of {config.max_wall_s:.0f}s used"
        if config.max_dollars is not None and self.state.usage.dollars >= config.max_dollars:
            return f"dollar budget of ${config.max_dollars:.2f} used"
        return None

    def request_stop(self, reason: str) -> None:
        self._stop_reason = reason

    def _evaluate_baseline(self) -> None:
        head = self.parts.lineage.head()
        self.progress("baseline", {"commit": head})
        evaluation = self.parts.evaluator.evaluate(head, "", label="baseline")
        self.record("baseline", EvaluationRecorded(commit=head, evaluation=evaluation).data(), 0)
        if not evaluation.ok or evaluation.metric is None:
            raise RsiError(
                f"the parent {head[:10]} itself fails its evaluation ({evaluation.failure}: "
                f"{evaluation.failure_detail[:400]}). Fix the target (or the sandbox) before running; "
                f"try `rsi evaluate --target {self.config.target} /dev/null` to see the logs."
            )
        self.state.set_baseline(evaluation)

    # -- checkpoints ---------------------------------------------------------------------

    def _check_budget_checkpoint(self, generation: int) -> None:
        used = {
            "generations": (float(generation - 1), float(self.config.generations)),
            "wall time": (round(self.wall_used_s(), 1), self.config.max_wall_s),
            "dollars": (round(self.state.usage.dollars, 4), self.config.max_dollars),
        }
        checkpoint = budget_checkpoint(self.config.checkpoints, used, self.state.fired_checkpoints)
        if checkpoint is not None:
            self._pause(checkpoint, None)

    def _pause(self, checkpoint: Checkpoint, generation: int | None) -> NoReturn:
        """Record the checkpoint and stop the run: a human looks before it goes on."""
        self.state.fired_checkpoints.add(checkpoint.key)
        run_dir = self.config.run_dir
        recorded = CheckpointRecorded(key=checkpoint.key, kind=checkpoint.kind, message=checkpoint.message)
        self.record("checkpoint", recorded.data(), generation)
        raise CheckpointReached(
            f"checkpoint: {checkpoint.message}. The run is paused for a human: look at it with "
            f"`rsi review {run_dir}` (decide what is queued), then continue with `rsi resume {run_dir}`."
        )

    def _queue_and_pause(self, candidate: Candidate, checkpoint: Checkpoint, stat: str) -> NoReturn:
        decision = Decision(decision="queue", by="checkpoint", reason=f"needs a human: {checkpoint.message}")
        self.record("decision", decision.model_dump(mode="json"), candidate.generation)
        self.state.add_decided(candidate, decision, stat)
        self._pause(checkpoint, candidate.generation)

    # -- one generation ------------------------------------------------------------------

    def step(self, generation: int, parent: str | None = None) -> None:
        parts = self.parts
        self.generation = generation
        parent = parent or parts.lineage.head()
        parent_eval = self._parent_evaluation(generation, parent)
        with contextlib.ExitStack() as trees:
            proposal, patched = self._propose(generation, parent, parent_eval, trees)
            evaluation = parts.evaluator.evaluate(
                parent, proposal.diff, label=f"gen-{generation:04d}", patched=patched
            )
            candidate = self._judged(generation, parent, proposal, evaluation, parent_eval, patched)
            self._decide(candidate, patched)

    def step_many(self, numbers: list[int], parents: list[str] | None = None) -> None:
        """One generation of K candidates (one number each; parents: each one's parent, by
        default all the lineage head): proposed in turn (each proposer call sees the siblings
        from its parent as pending), evaluated in parallel, judged, then decided per parent best
        first — once one is accepted, the rest from that parent are rejected (each was measured
        against the parent, not against its sibling)."""
        self.generation = numbers[0]
        parents = parents or [self.parts.lineage.head()] * len(numbers)
        parent_evals = {p: self._parent_evaluation(numbers[0], p) for p in dict.fromkeys(parents)}
        with contextlib.ExitStack() as trees:
            self._step_many(numbers, parents, parent_evals, trees)

    def _step_many(
        self,
        numbers: list[int],
        parents: list[str],
        parent_evals: dict[str, Evaluation],
        trees: contextlib.ExitStack,
    ) -> None:
        pending: list[HistoryEntry] = []
        proposals, patched = [], {}
        for number, parent in zip(numbers, parents, strict=True):
            proposal, patched[number] = self._propose(number, parent, parent_evals[parent], trees, pending)
            proposals.append(proposal)
            pending.append(_pending_entry(number, parent, proposal, patched[number].stat))
        self.progress("evaluate", {"generations": numbers})
        evaluations = evaluate_across(
            self.parts.evaluator,
            parents,
            [p.diff for p in proposals],
            [f"gen-{n:04d}" for n in numbers],
            [patched[n] for n in numbers],
        )
        by_parent: dict[str, list[Candidate]] = {}
        for number, parent, proposal, evaluation in zip(
            numbers, parents, proposals, evaluations, strict=True
        ):
            self.generation = number
            candidate = self._judged(
                number, parent, proposal, evaluation, parent_evals[parent], patched[number]
            )
            by_parent.setdefault(parent, []).append(candidate)
        for siblings_of_one_parent in by_parent.values():
            self._decide_many(siblings_of_one_parent, patched)

    def _judged(
        self,
        number: int,
        parent: str,
        proposal: Proposal,
        evaluation: Evaluation,
        parent_eval: Evaluation,
        patched: PatchedTree,
    ) -> Candidate:
        """Race a close call on more seeds, record the candidate's evaluation (over every seed),
        judge it by the policy against its parent on the same seeds, record the verdict."""
        evaluation, parent_eval = self._race(number, parent, proposal.diff, evaluation, parent_eval, patched)
        self.record("evaluation", evaluation.model_dump(mode="json"), number)
        verdict = self.parts.policy.check(proposal, evaluation, parent_eval, patched=patched)
        self.record("verdict", verdict.model_dump(mode="json"), number)
        return Candidate(
            generation=number,
            parent_commit=parent,
            proposal=proposal,
            evaluation=evaluation,
            parent_evaluation=parent_eval,
            verdict=verdict,
        )

    def _decide_many(self, candidates: list[Candidate], patched: dict[int, PatchedTree]) -> None:
        """Best gain first; the first accepted wins, its siblings are rejected by the search."""
        winner: Candidate | None = None
        for candidate in sorted(candidates, key=_gain, reverse=True):
            self.generation = candidate.generation
            if winner is not None:
                decision = Decision(
                    decision="reject",
                    by="search",
                    reason=f"a sibling from the same parent (gen-{winner.generation}) was accepted",
                )
                self.record("decision", decision.model_dump(mode="json"), candidate.generation)
                self.state.add_decided(candidate, decision, patched[candidate.generation].stat)
                continue
            self._decide(candidate, patched[candidate.generation])
            if self.state.history[-1].decision == "accept":
                winner = candidate

    def _decide(self, candidate: Candidate, patched: PatchedTree) -> None:
        generation = candidate.generation
        self.progress("review", {"generation": generation, "verdict": candidate.verdict.verdict})
        checkpoint = candidate_checkpoint(self.config.checkpoints, candidate)
        if checkpoint is not None and checkpoint.key not in self.state.fired_checkpoints:
            self._queue_and_pause(candidate, checkpoint, patched.stat)
        try:
            decision = self.parts.reviewer.decide(candidate)
        except RunInterrupted as exc:  # --review strict: the first `review` verdict waits for a human
            strict = Checkpoint(f"strict:{generation}", "strict_review", str(exc))
            self._queue_and_pause(candidate, strict, patched.stat)
        self.record("decision", decision.model_dump(mode="json"), generation)
        if decision.decision == "accept":
            self.accept(candidate, decision, patched)
        self.state.add_decided(candidate, decision, patched.stat)

    def _parent_evaluation(self, generation: int, parent: str) -> Evaluation:
        """The parent's own evaluation, recorded once per parent (the baseline is already recorded)."""
        evaluation = self.parts.evaluator.evaluate(parent, "", label=f"parent-{parent[:8]}")
        baseline = self.state.baseline
        if (
            parent != (baseline.parent_commit if baseline else None)
            and parent not in self.state.parent_evaluated
        ):
            self.record(
                "parent_evaluation",
                EvaluationRecorded(commit=parent, evaluation=evaluation).data(),
                generation,
            )
            self.state.parent_evaluated.add(parent)
        return evaluation

    def _propose(
        self,
        generation: int,
        parent: str,
        parent_eval: Evaluation,
        trees: contextlib.ExitStack,
        pending: list[HistoryEntry] | None = None,
    ) -> tuple[Proposal, PatchedTree]:
        """The proposal and its patched tree (built once, kept until `trees` closes)."""
        parts = self.parts
        recorded = self.state.recorded_proposals.pop(generation, None)
        if self.state.recorded_parents.pop(generation, parent) != parent:
            recorded = None  # proposed against a parent that is no longer the one to build on
        started = ProposalStarted(
            parent=parent,
            parent_tree=parts.lineage.tree_of(parent),
            proposer=parts.proposer.name,
            reused_recorded_proposal=recorded is not None,
            strategy=self.selector.name,
            parent_node=self.state.chosen_nodes.get(generation),
        )
        self.record("proposal_started", started.data(), generation)
        if recorded is not None:  # a resumed run evaluates the proposal it recorded before the crash
            proposal = recorded
        else:
            self.progress("propose", {"generation": generation, "proposer": parts.proposer.name})
            with scratch_dir("parent") as tmp:
                tree = parts.lineage.export(parent, Path(tmp) / "tree")
                context = self._context(generation, parent, parent_eval, pending or [])
                proposal = parts.proposer.propose(context, tree)
            self.state.usage = self.state.usage + proposal.usage
        diff_file = self.config.run_dir / "candidates" / f"gen-{generation:04d}.diff"
        diff_file.parent.mkdir(parents=True, exist_ok=True)
        diff_file.write_text(proposal.diff, encoding="utf-8")
        patched = trees.enter_context(patched_tree(parts.lineage, parent, proposal.diff))
        self.record(
            "proposal",
            {**proposal.model_dump(mode="json"), "diff_file": str(diff_file), "diff_stat": patched.stat},
            generation,
        )
        return proposal, patched

    def _context(
        self, generation: int, parent: str, parent_eval: Evaluation, pending: list[HistoryEntry]
    ) -> ProposalContext:
        spec, metric = self.parts.spec, parent_eval.metric
        return ProposalContext(
            generation=generation,
            objective=spec.target.description or spec.target.name,
            metric_name=spec.metric.name,
            direction=spec.metric.direction,
            parent_commit=parent,
            parent_metric_mean=metric.mean if metric else None,
            parent_metric_std=metric.std if metric else None,
            history=[*self.state.history, *pending],
            ancestry=ancestry(self.state, parent),
            siblings=siblings([*self.state.history, *pending], parent),
        )

    # -- accepting -----------------------------------------------------------------------

    def accept(self, candidate: Candidate, decision: Decision, patched: PatchedTree | None = None) -> None:
        """Commit an accepted candidate on the lineage and record it: both, or neither (an
        interruption waits; a crash between the two is reconciled by `rsi resume`)."""

        def committed(sha: str) -> None:
            fault_point(self.config.run_dir, "lineage_committed", candidate.generation)
            self.state.count_accept(candidate, sha)

        with self.interrupts.atomic():
            accept(candidate, decision, self.parts.lineage, self.record, committed=committed, patched=patched)
            self.parts.promote_successor(candidate)

    def record_recovered_commit(self, candidate: Candidate, sha: str) -> None:
        """Record the `commit` event of a lineage commit a crash left without one."""
        self.state.count_accept(candidate, sha)
        record_commit(candidate, sha, self.parts.lineage, self.record, recovered=True)


def _gain(candidate: Candidate) -> float:
    """The candidate's gain over its parent (better is larger, whatever the direction); a failed
    evaluation ranks last."""
    metric, parent = candidate.evaluation.metric, candidate.parent_evaluation
    if metric is None or parent is None or parent.metric is None:
        return float("-inf")
    return metric.gain_over(parent.metric)


def _node_number(node: str) -> int:
    """The candidate number of a node name (`gen-N`; 0 for the baseline)."""
    return int(node.removeprefix("gen-"))


def _pending_entry(generation: int, parent: str, proposal: Proposal, stat: str) -> HistoryEntry:
    """A sibling proposed in this generation and not yet decided, as the next proposer call sees it."""
    return HistoryEntry(
        generation=generation,
        parent_commit=parent,
        rationale=(proposal.rationale.splitlines() or [""])[0],
        diff_stat=stat,
        decision="pending",
        reason="proposed from the same parent in this generation; not decided yet",
    )
