"""The generation loop: propose → evaluate → judge → decide → commit, every step recorded.

    loop = GenerationLoop(parts)          # parts are built in one place: rsi.compose
    summary = loop.run()

Each step is appended (and fsynced) to the trajectory before the next starts; every diff is kept
as a file whatever its fate; the run ends with a `run_finished` event even on an error or Ctrl-C.
After every event `status.json` in the run directory is replaced atomically with where the run is.

A run stops cleanly (before the next generation) on the stop file run_dir/STOP or a budget. An
interruption — Ctrl-C, SIGINT/SIGTERM to the process or its process group, SIGHUP when the
terminal closes — abandons the step in flight at once (never in the middle of writing an event or
a lineage commit: those finish first), records `run_finished` with status `interrupted` and the
signal, and leaves the in-flight generation for `rsi resume` to run again. Child processes (git
helpers, sandboxes) may die of the same signal; nothing after the signal depends on them.

A run pauses (status `paused`, a `checkpoint` event, the candidate queued) when a checkpoint
threshold of `RunConfig.checkpoints` is crossed or, with `--review strict`, at the first `review`
verdict. `rsi resume RUN_DIR` continues any of these, and a crashed run (see rsi.resume).

Fault injection, for the crash tests only: with the environment variable
`RSI_FAULT_PAUSE=<point>:<generation>` the process blocks forever at that point (after the event
of that kind was written, or at `lineage_committed`: after the lineage commit, before its `commit`
event), writing run_dir/.fault-paused first, so a test can `kill -9` it at an exact moment.
"""

from __future__ import annotations

import contextlib
import os
import signal
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn, Protocol

from core.contracts import (
    Candidate,
    Decision,
    Evaluation,
    HistoryEntry,
    Proposal,
    ProposalContext,
    Proposer,
    Reviewer,
    Usage,
    Verdict,
    utc_now,
)
from core.errors import ModelUnavailable, PatchError, RsiError, RunInterrupted
from core.target import TargetSpec
from core.trajectory import Event, TrajectoryWriter
from policies.engine import LoadedPolicy, improvement
from rsi.checkpoints import Checkpoint, budget_checkpoint, candidate_checkpoint
from rsi.config import RunConfig
from rsi.progress import write_status
from sandbox.evaluate import TrustedEvaluator
from sandbox.lineage import Lineage
from sandbox.patch import apply_diff, parse_diff

STOP_FILE = "STOP"
FAULT_PAUSE_ENV = "RSI_FAULT_PAUSE"
FAULT_MARKER = ".fault-paused"


INTERRUPT_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
"""Signals that end a run cleanly: the exit code is 128 + the signal's number (130, 143, 129)."""


class CheckpointReached(RunInterrupted):
    """A checkpoint threshold (or a strict review) paused the run until a human has looked."""


class SignalInterrupt(KeyboardInterrupt):
    """An interruption signal arrived: abandon the step in flight (a BaseException, like Ctrl-C,
    so no `except Exception` on the way up mistakes it for a failure of the step)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def fault_point(run_dir: Path, point: str, generation: int | None) -> None:
    """Block forever here if RSI_FAULT_PAUSE names this point (crash tests kill -9 the process)."""
    wanted = os.environ.get(FAULT_PAUSE_ENV)
    if not wanted or wanted != f"{point}:{generation}":
        return
    (run_dir / FAULT_MARKER).write_text(wanted, encoding="utf-8")
    while True:
        time.sleep(60)


class Observer(Protocol):
    """Sees every trajectory event as it is written, and live progress that is not recorded."""

    def on_event(self, event: Event) -> None: ...

    def on_progress(self, phase: str, details: dict[str, Any]) -> None: ...


class NullObserver:
    def on_event(self, event: Event) -> None:
        pass

    def on_progress(self, phase: str, details: dict[str, Any]) -> None:
        pass


@dataclass
class RunParts:
    config: RunConfig
    spec: TargetSpec
    lineage: Lineage
    evaluator: TrustedEvaluator
    proposer: Proposer
    policy: LoadedPolicy
    reviewer: Reviewer
    trajectory: TrajectoryWriter
    observer: Observer = field(default_factory=NullObserver)
    run_info: dict[str, Any] = field(default_factory=dict)
    contract_differences: list[str] = field(default_factory=list)
    """Where the live target, policy, image or settings differ from the contract the run started
    with (a resumed or re-executed run uses the recorded one)."""
    remove_sandboxes: Callable[[], int] = lambda: 0
    """Remove every sandbox of this run the engine still holds (after an interruption)."""


@dataclass
class RunSummary:
    status: str
    generations: int
    accepted: int
    baseline_metric: float | None
    best_metric: float | None
    head: str
    usage: Usage
    reason: str = ""
    signal: int | None = None
    """The interruption signal that ended the run, if one did."""


def diff_stat(diff: str) -> str:
    try:
        changes = parse_diff(diff)
    except RsiError:
        return "unparseable diff"
    if not changes:
        return "empty diff"
    added = sum(len(c.added) for c in changes)
    removed = sum(len(c.removed) for c in changes)
    names = ", ".join(c.path for c in changes[:3]) + (" …" if len(changes) > 3 else "")
    return f"{len(changes)} file(s) +{added} -{removed}: {names}"


class GenerationLoop:
    def __init__(self, parts: RunParts) -> None:
        self.parts = parts
        self.config = parts.config
        self.history: list[HistoryEntry] = []
        self.usage = Usage()
        self.accepted = 0
        self.baseline: Evaluation | None = None
        self.best: float | None = None
        self._stop_reason: str | None = None
        self._started = time.monotonic()
        self.elapsed_before_s = 0.0
        """Wall time of earlier sessions of this run (a resumed run's budget counts them)."""
        self.fired_checkpoints: set[str] = set()
        self.recorded_proposals: dict[int, Proposal] = {}
        """Proposals recorded before a crash, evaluated again instead of asking the proposer anew."""
        self.parent_evaluated: set[str] = set()
        self.generation = 0
        self.state = "running"
        self._last: dict[str, str | None] = {}
        self.interrupt_signal: int | None = None
        """The first interruption signal received (see INTERRUPT_SIGNALS)."""
        self._atomic_depth = 0
        self._finishing = False

    # -- recording -----------------------------------------------------------------------

    def record(self, kind: str, data: dict[str, Any], generation: int | None = None) -> Event:
        with self.atomic():
            event = self.parts.trajectory.append(kind, data, generation)
            self._write_status(event)
        with contextlib.suppress(OSError):  # a closed terminal (SIGHUP) must not take the record down
            self.parts.observer.on_event(event)
        fault_point(self.config.run_dir, kind, generation)
        return event

    @contextlib.contextmanager
    def atomic(self) -> Iterator[None]:
        """A step an interruption must not cut in two (an event and its status, a lineage commit):
        a signal arriving inside takes effect when the outermost such step is done."""
        self._atomic_depth += 1
        try:
            yield
        finally:
            self._atomic_depth -= 1
        if self._atomic_depth == 0 and self.interrupt_signal is not None and not self._finishing:
            raise SignalInterrupt(self.interrupt_signal)

    def wall_used_s(self) -> float:
        return self.elapsed_before_s + time.monotonic() - self._started

    def _write_status(self, event: Event) -> None:
        config = self.config
        data = event.data
        if event.kind in ("verdict", "decision"):
            self._last[event.kind] = f"generation {event.generation}: {data.get(event.kind)}"
        write_status(
            config.run_dir,
            {
                "run_id": config.run_id,
                "state": data.get("status", self.state) if event.kind == "run_finished" else self.state,
                "pid": os.getpid(),
                "updated_at": utc_now(),
                "generation": event.generation if event.generation is not None else self.generation,
                "generations_planned": config.generations,
                "generations_decided": len(self.history),
                "phase": event.kind,
                "accepted": self.accepted,
                "baseline_metric": self.baseline.metric.mean
                if self.baseline and self.baseline.metric
                else None,
                "best_metric": self.best,
                "last_verdict": self._last.setdefault("verdict", None),
                "last_decision": self._last.setdefault("decision", None),
                "budgets": {
                    "wall_s": {"used": round(self.wall_used_s(), 1), "limit": config.max_wall_s},
                    "dollars": {"used": round(self.usage.dollars, 4), "limit": config.max_dollars},
                },
                "usage": self.usage.model_dump(),
                "trajectory": {
                    "events": event.seq + 1,
                    "last_seq": event.seq,
                    "last_hash": self.parts.trajectory.last_hash,
                },
                "message": data.get("reason") or data.get("message") or "",
            },
        )

    def progress(self, phase: str, details: dict[str, Any]) -> None:
        self.parts.observer.on_progress(phase, details)

    # -- the run -------------------------------------------------------------------------

    def run(self, first_generation: int = 1, record_start: bool = True) -> RunSummary:
        """Run generations first_generation…config.generations (record_start=False: a resumed run)."""
        status, reason = "completed", ""
        with self._signals():
            try:
                status, reason = self._generations(first_generation, record_start)
            except BaseException as exc:
                self._finishing = True
                status, reason = self._outcome(exc)
                if status == "error" and not isinstance(exc, RsiError):
                    raise  # a bug: recorded as an error by the `finally` below, then shown in full
            finally:
                self._finishing = True
                summary = self._finish(status, reason)
        return summary

    def _generations(self, first_generation: int, record_start: bool) -> tuple[str, str]:
        if record_start:
            self.record("run_started", self.parts.run_info)
        if self.baseline is None:
            self._evaluate_baseline()
        for generation in range(first_generation, self.config.generations + 1):
            if (stop := self._should_stop()) is not None:
                return "stopped", stop
            self._check_budget_checkpoint(generation)
            self.step(generation)
        return "completed", ""

    def _outcome(self, exc: BaseException) -> tuple[str, str]:
        """How the run ended, from the exception that ended it; records an `error` event if due."""
        if self.interrupt_signal is not None and isinstance(exc, Exception | KeyboardInterrupt):
            # After an interruption, a failing step is the signal's doing (its git helper or
            # sandbox died of it too), not the candidate's or the harness's.
            name = signal.Signals(self.interrupt_signal).name
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
        self.state = status
        summary = self._summary(status, reason)
        data: dict[str, Any] = {
            "status": status,
            "reason": reason,
            "accepted": self.accepted,
            "head": summary.head,
            "best_metric": self.best,
            "usage": self.usage.model_dump(),
        }
        if summary.signal is not None:
            data["signal"] = signal.Signals(summary.signal).name
        self.record("run_finished", data)
        return summary

    def _summary(self, status: str, reason: str) -> RunSummary:
        base = self.baseline.metric.mean if self.baseline and self.baseline.metric else None
        return RunSummary(
            status=status,
            generations=len(self.history),
            accepted=self.accepted,
            baseline_metric=base,
            best_metric=self.best,
            head=self._lineage_head(),
            usage=self.usage,
            reason=reason,
            signal=self.interrupt_signal if status == "interrupted" else None,
        )

    def _lineage_head(self) -> str:
        """The lineage head, even when the signal that ended the run killed GitPython's persistent
        `git cat-file` helpers (they share the process group): those are restarted."""
        lineage = self.parts.lineage
        try:
            return lineage.head()
        except Exception:
            lineage.repo.git.clear_cache()
            return lineage.head()

    @contextlib.contextmanager
    def _signals(self) -> Iterator[None]:
        """SIGINT, SIGTERM and SIGHUP abandon the step in flight (see the module docstring)."""

        def on_signal(signum: int, frame: object) -> None:
            if self.interrupt_signal is None:
                self.interrupt_signal = signum
            if self._atomic_depth == 0 and not self._finishing:
                raise SignalInterrupt(signum)

        previous: dict[int, Any] = {}
        try:
            for interrupt in INTERRUPT_SIGNALS:
                previous[interrupt] = signal.signal(interrupt, on_signal)
        except ValueError:  # not the main thread (the TUI runs the loop in a worker)
            yield
            return
        try:
            yield
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _should_stop(self) -> str | None:
        if self._stop_reason:
            return self._stop_reason
        if (self.config.run_dir / STOP_FILE).exists():
            return f"stop file {self.config.run_dir / STOP_FILE} found"
        if self.config.max_wall_s is not None and self.wall_used_s() > self.config.max_wall_s:
            return f"wall-time budget of {self.config.max_wall_s:.0f}s used"
        if self.config.max_dollars is not None and self.usage.dollars >= self.config.max_dollars:
            return f"dollar budget of ${self.config.max_dollars:.2f} used"
        return None

    def request_stop(self, reason: str) -> None:
        self._stop_reason = reason

    def _evaluate_baseline(self) -> None:
        head = self.parts.lineage.head()
        self.progress("baseline", {"commit": head})
        evaluation = self.parts.evaluator.evaluate(head, "", label="baseline")
        self.record("baseline", {"commit": head, "evaluation": evaluation.model_dump(mode="json")}, 0)
        if not evaluation.ok or evaluation.metric is None:
            raise RsiError(
                f"the parent {head[:10]} itself fails its evaluation ({evaluation.failure}: "
                f"{evaluation.failure_detail[:400]}). Fix the target (or the sandbox) before running; "
                f"try `rsi evaluate --target {self.config.target} /dev/null` to see the logs."
            )
        self.baseline = evaluation
        self.best = evaluation.metric.mean

    # -- one generation ------------------------------------------------------------------

    def _check_budget_checkpoint(self, generation: int) -> None:
        used = {
            "generations": (float(generation - 1), float(self.config.generations)),
            "wall time": (round(self.wall_used_s(), 1), self.config.max_wall_s),
            "dollars": (round(self.usage.dollars, 4), self.config.max_dollars),
        }
        checkpoint = budget_checkpoint(self.config.checkpoints, used, self.fired_checkpoints)
        if checkpoint is not None:
            self._pause(checkpoint, None)

    def _pause(self, checkpoint: Checkpoint, generation: int | None) -> NoReturn:
        """Record the checkpoint and stop the run: a human looks before it goes on."""
        self.fired_checkpoints.add(checkpoint.key)
        run_dir = self.config.run_dir
        self.record(
            "checkpoint",
            {"key": checkpoint.key, "kind": checkpoint.kind, "message": checkpoint.message},
            generation,
        )
        raise CheckpointReached(
            f"checkpoint: {checkpoint.message}. The run is paused for a human: look at it with "
            f"`rsi review {run_dir}` (decide what is queued), then continue with `rsi resume {run_dir}`."
        )

    def _parent_evaluation(self, generation: int, parent: str) -> Evaluation:
        """The parent's own evaluation, recorded once per parent (the baseline is already recorded)."""
        evaluation = self.parts.evaluator.evaluate(parent, "", label=f"parent-{parent[:8]}")
        baseline_commit = self.baseline.parent_commit if self.baseline else None
        if parent != baseline_commit and parent not in self.parent_evaluated:
            self.record(
                "parent_evaluation",
                {"commit": parent, "evaluation": evaluation.model_dump(mode="json")},
                generation,
            )
            self.parent_evaluated.add(parent)
        return evaluation

    def step(self, generation: int) -> None:
        parts = self.parts
        self.generation = generation
        parent = parts.lineage.head()
        parent_eval = self._parent_evaluation(generation, parent)
        proposal = self._propose(generation, parent, parent_eval)
        evaluation = parts.evaluator.evaluate(parent, proposal.diff, label=f"gen-{generation:04d}")
        self.record("evaluation", evaluation.model_dump(mode="json"), generation)
        verdict = self._judge(parent, proposal, evaluation, parent_eval)
        self.record("verdict", verdict.model_dump(mode="json"), generation)
        candidate = Candidate(
            generation=generation,
            parent_commit=parent,
            proposal=proposal,
            evaluation=evaluation,
            parent_evaluation=parent_eval,
            verdict=verdict,
        )
        self.progress("review", {"generation": generation, "verdict": verdict.verdict})
        checkpoint = candidate_checkpoint(self.config.checkpoints, candidate)
        if checkpoint is not None and checkpoint.key not in self.fired_checkpoints:
            self._queue_and_pause(candidate, checkpoint)
        try:
            decision = parts.reviewer.decide(candidate)
        except RunInterrupted as exc:  # --review strict: the first `review` verdict waits for a human
            self._queue_and_pause(candidate, Checkpoint(f"strict:{generation}", "strict_review", str(exc)))
        self.record("decision", decision.model_dump(mode="json"), generation)
        if decision.decision == "accept":
            self._commit(candidate, decision)
        self.history.append(self._history_entry(candidate, decision))

    def _judge(
        self, parent: str, proposal: Proposal, evaluation: Evaluation, parent_eval: Evaluation
    ) -> Verdict:
        """The policy's verdict, with the patched tree so code rules parse whole files, not fragments."""
        with tempfile.TemporaryDirectory(prefix="rsi-judge-") as tmp:
            tree: Path | None = self.parts.lineage.export(parent, Path(tmp) / "tree")
            try:
                apply_diff(proposal.diff, Path(tmp) / "tree")
            except PatchError:
                tree = None  # the policy reports the unusable patch itself
            return self.parts.policy.check(proposal, evaluation, parent_eval, tree=tree)

    def _queue_and_pause(self, candidate: Candidate, checkpoint: Checkpoint) -> NoReturn:
        decision = Decision(decision="queue", by="checkpoint", reason=f"needs a human: {checkpoint.message}")
        self.record("decision", decision.model_dump(mode="json"), candidate.generation)
        self.history.append(self._history_entry(candidate, decision))
        self._pause(checkpoint, candidate.generation)

    def _propose(self, generation: int, parent: str, parent_eval: Evaluation) -> Proposal:
        spec = self.parts.spec
        metric = parent_eval.metric
        context = ProposalContext(
            generation=generation,
            objective=spec.target.description or spec.target.name,
            metric_name=spec.metric.name,
            direction=spec.metric.direction,
            parent_commit=parent,
            parent_metric_mean=metric.mean if metric else None,
            parent_metric_std=metric.std if metric else None,
            history=list(self.history),
        )
        recorded = self.recorded_proposals.pop(generation, None)
        self.record(
            "proposal_started",
            {
                "parent": parent,
                "parent_tree": self.parts.lineage.repo.commit(parent).tree.hexsha,
                "proposer": self.parts.proposer.name,
                "reused_recorded_proposal": recorded is not None,
            },
            generation,
        )
        if recorded is not None:  # a resumed run evaluates the proposal it recorded before the crash
            proposal = recorded
        else:
            self.progress("propose", {"generation": generation, "proposer": self.parts.proposer.name})
            with tempfile.TemporaryDirectory(prefix="rsi-parent-") as tmp:
                tree = self.parts.lineage.export(parent, Path(tmp) / "tree")
                proposal = self.parts.proposer.propose(context, tree)
            self.usage = self.usage + proposal.usage
        diff_file = self.config.run_dir / "candidates" / f"gen-{generation:04d}.diff"
        diff_file.parent.mkdir(parents=True, exist_ok=True)
        diff_file.write_text(proposal.diff, encoding="utf-8")
        self.record(
            "proposal",
            {
                **proposal.model_dump(mode="json"),
                "diff_file": str(diff_file),
                "diff_stat": diff_stat(proposal.diff),
            },
            generation,
        )
        return proposal

    def _commit(self, candidate: Candidate, decision: Decision) -> None:
        metric = candidate.evaluation.metric
        parent_metric = candidate.parent_evaluation.metric if candidate.parent_evaluation else None
        summary = metric.summary() if metric else "no metric"
        delta = f" ({improvement(metric, parent_metric):+.4f} vs parent)" if metric and parent_metric else ""
        message = (
            f"generation {candidate.generation}: {candidate.proposal.rationale.splitlines()[0][:120]}\n\n"
            f"metric: {summary}{delta}\nverdict: {candidate.verdict.verdict} ({candidate.verdict.policy_name} "
            f"{candidate.verdict.policy_hash[:12]})\ndecision: {decision.decision} by {decision.by}: "
            f"{decision.reason}\nproposer: {candidate.proposal.proposer}\n"
        )
        with self.atomic():  # the commit and its event, or neither: resume reconciles the rest
            sha = self.parts.lineage.commit_candidate(candidate.proposal.diff, candidate.generation, message)
            fault_point(self.config.run_dir, "lineage_committed", candidate.generation)
            self.record_commit(candidate, sha)

    def record_commit(self, candidate: Candidate, sha: str, recovered: bool = False) -> None:
        """Count an accepted candidate (now on the lineage) and record its `commit` event."""
        metric = candidate.evaluation.metric
        self.accepted += 1
        if metric is not None:
            self.best = (
                metric.mean
                if self.best is None
                else (
                    max(self.best, metric.mean)
                    if metric.direction == "higher"
                    else min(self.best, metric.mean)
                )
            )
        data: dict[str, Any] = {
            "commit": sha,
            "parent": candidate.parent_commit,
            "tag": f"gen-{candidate.generation}",
        }
        data["tree"] = self.parts.lineage.repo.commit(sha).tree.hexsha
        if recovered:
            data["recovered"] = "the lineage commit was made before a crash; its event is recorded on resume"
        self.record("commit", data, candidate.generation)

    @staticmethod
    def _history_entry(candidate: Candidate, decision: Decision) -> HistoryEntry:
        metric = candidate.evaluation.metric
        reason = decision.reason
        if candidate.evaluation.failure:
            reason = f"{candidate.evaluation.failure}: {candidate.evaluation.failure_detail[:300]} | {reason}"
        return HistoryEntry(
            generation=candidate.generation,
            parent_commit=candidate.parent_commit,
            rationale=(candidate.proposal.rationale.splitlines() or [""])[0],
            diff_stat=diff_stat(candidate.proposal.diff),
            metric_mean=metric.mean if metric else None,
            metric_std=metric.std if metric else None,
            decision=decision.decision,
            reason=reason,
        )
