"""Trusted evaluation: the harness, not the candidate, runs and scores every tree.

For one candidate (a parent commit plus a diff): export the parent from the lineage, check and
apply the diff, open a fresh sandbox, run the target's tests, train once per seed under the step
budget, predict on the held-out *inputs*, read the predictions out and score them on the host
against labels that never leave this process. Failures are classified, logs kept in full on disk
and as a tail in the result.

    evaluator = TrustedEvaluator(spec, lineage, backend, heldout, seeds=[0, 1, 2], log_dir=...)
    evaluation = evaluator.evaluate(parent_commit, diff, label="gen-3")
    several = evaluator.evaluate_many(parent_commit, [diff_a, diff_b])   # in parallel, input order

A caller that holds the candidate's patched tree already (the loop: sandbox.patched) passes it as
`patched`: the sandbox is then staged from those files, and the diff is not parsed or applied again.

Identical trees are measured once: results are cached by the git tree id of the candidate's files
and the seeds measured, so the parent of the next generation (the tree just accepted) is never
re-measured. An evaluation on other seeds (`seeds=`: racing, elite confirmation) is measured on
those seeds alone and cached under them; the caller merges it seed by seed
(`Evaluation.with_extra_seeds`).

Phases are isolated: every phase after the first starts from the staged tree, an empty /tmp and
empty shared memory (`Session.reset`: the driver kills every process and wipes what was written,
inside the same sandbox — a few ms, where a fresh sandbox per phase costs 40 ms with bubblewrap
and 340 ms with Docker; see bench/bench_sandbox.py). Only a seed's output directory passes from its
train to its predict. So nothing the tests compute reaches a training run, and nothing of seed s
reaches seed s+1. Each phase's own usage (CPU, wall, peak memory, output, disk, artifact) is
recorded in `PhaseLog.usage`, and compared with the parent's same phase (sandbox/phase_budget.py).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from core.contracts import (
    READING_MARK,
    Evaluation,
    FailureKind,
    Finding,
    MetricResult,
    PhaseLog,
    PhaseUsage,
    ProgressCallback,
)
from core.diff import PatchedTree
from core.errors import ConfigError, SandboxError
from core.target import TEACHER_FILE, TEACHER_MOUNT, TargetSpec
from sandbox.base import Backend, ExecResult, SandboxLost, Session, UsageSample, tail
from sandbox.cgroups import OffCpuSampler
from sandbox.heldout import HeldoutSet, StagedInputs, derive_seed, load_predictions, score, stage_inputs
from sandbox.integrity import Audit, IntegrityChecker, IntegrityConfig, settled
from sandbox.lineage import Lineage
from sandbox.patch import diff_sha256
from sandbox.patched import build_patched_tree
from sandbox.phase_budget import LOAD_SENSITIVE, PhaseBudgetConfig, phase_budget_findings
from sandbox.runtime_audit import audit_bytes, parent_digests, read_audit, runtime_check, runtime_findings
from sandbox.scratch import scratch_dir
from sandbox.teacher import TeacherError, TeacherStore
from sandbox.testgate import GateRun, TestGate

OUT_DIR = "/tmp/rsi-out"
INPUTS_PATH = "/heldout/inputs.npy"
DISK_FULL_MARKERS = ("No space left on device", "Disk quota exceeded")
PIDS_MARKERS = ("Resource temporarily unavailable", "can't start new thread", "fork: retry")
MEMORY_MARKERS = ("MemoryError", "Cannot allocate memory")
NODE_LOSSES_TOLERATED = 2
"""How many times one evaluation is run again after the machine under its sandbox was lost."""


class _Phase:
    """One command run in the sandbox with its own usage and failure class."""

    def __init__(
        self,
        name: str,
        command: str,
        result: ExecResult,
        before: UsageSample,
        after: UsageSample,
        artifact_bytes: int | None = None,
        off_cpu_s: float | None = None,
        peak_threads: int | None = None,
    ):
        self.name = name
        self.command = command
        self.result = result
        self.oom = _rose(before.oom_kills, after.oom_kills)
        self.pids = _rose(before.pids_limit_hits, after.pids_limit_hits)
        self.usage = PhaseUsage(
            accounting=after.accounting,
            cpu_s=_delta(before.cpu_s, after.cpu_s),
            wall_s=round(result.duration_s, 3),
            off_cpu_s=off_cpu_s,
            peak_memory_mb=after.peak_memory_mb if after.phase_peak else None,
            log_bytes=result.log_bytes,
            audit_bytes=audit_bytes(result.audit),
            disk_bytes=result.disk_bytes,
            artifact_bytes=artifact_bytes,
            oom_kills=_count(before.oom_kills, after.oom_kills),
            pids_limit_hits=_count(before.pids_limit_hits, after.pids_limit_hits),
            peak_threads=peak_threads,
        )
        self.cpu_s = self.usage.cpu_s

    def failure(self, crash_kind: FailureKind) -> FailureKind | None:
        """The cause of a failed command; the sandbox's own counters win over the command's output."""
        if self.result.exit_code == 0:
            return None
        output = self.result.output
        # A fork bomb also exhausts memory on its way; the pid limit is its root cause.
        if self.pids or any(m in output for m in PIDS_MARKERS):
            return "pids_exhausted"
        if self.oom or (self.oom is None and self._looks_out_of_memory()):
            return "out_of_memory"
        if self.result.disk_full or any(m in output for m in DISK_FULL_MARKERS):
            return "disk_full"
        if self.result.timed_out:
            return "timeout"
        return crash_kind

    def _looks_out_of_memory(self) -> bool:
        """Without an OOM counter: a SIGKILL nobody else sent (not the timeout), or the allocator's
        own error under an address-space rlimit."""
        killed = self.result.exit_code in (137, -9) and not self.result.timed_out
        return killed or any(m in self.result.output for m in MEMORY_MARKERS)


def _rose(before: int | None, after: int | None) -> bool | None:
    """Whether a counter went up during the phase; None when it cannot be read."""
    return None if before is None or after is None else after > before


def _count(before: int | None, after: int | None) -> int | None:
    return None if before is None or after is None else after - before


def _delta(before: float | None, after: float | None) -> float | None:
    if before is None or after is None:
        return None
    return round(after - before, 3)


class TrustedEvaluator:
    def __init__(
        self,
        spec: TargetSpec,
        lineage: Lineage,
        backend: Backend,
        heldout: HeldoutSet,
        seeds: list[int],
        log_dir: Path,
        test_timeout_s: float = 120.0,
        predict_timeout_s: float = 60.0,
        progress: ProgressCallback | None = None,
        parallel: int | None = None,
        lockbox: HeldoutSet | None = None,
        integrity: IntegrityConfig | None = None,
        phase_budget: PhaseBudgetConfig | None = None,
        teachers: TeacherStore | None = None,
    ) -> None:
        self.spec = spec
        self.lineage = lineage
        self.backend = backend
        self.heldout = heldout
        self.seeds = seeds
        self.log_dir = log_dir
        self.test_timeout_s = test_timeout_s
        self.predict_timeout_s = predict_timeout_s
        self.progress = progress or (lambda phase, details: None)
        self.parallel = max(1, parallel or os.cpu_count() or 1)
        """How many candidates evaluate_many measures at once."""
        self._by_request: dict[tuple[str, str, tuple[int, ...]], Evaluation] = {}
        self._by_tree: dict[tuple[str, tuple[int, ...]], Evaluation] = {}
        self._tree_locks: dict[str, threading.Lock] = {}
        self._excused: dict[str, frozenset[str]] = {}
        """Per evaluation (its log label): the runtime events its parent raised too."""
        self._lock = threading.Lock()
        self._open_sessions: set[Session] = set()
        self._stopping = threading.Event()
        """Set while an interrupted evaluate_many winds down: no sandbox may start or stay open."""
        self.lockbox = lockbox
        self.test_gate = TestGate.from_command(spec.commands.test, spec.protected.paths)
        self.integrity = (
            IntegrityChecker(integrity, spec, heldout) if integrity and integrity.enabled else None
        )
        self.phase_budget = phase_budget or PhaseBudgetConfig()
        """Per-phase budgets against the parent; checked with the integrity checks, as their kin."""
        # Selection, lockbox and probe rows shuffled into one file: the candidate cannot tell them apart.
        parts = {"selection": heldout.inputs}
        if lockbox is not None:
            parts["lockbox"] = lockbox.inputs
        if self.integrity is not None:
            parts |= self.integrity.probe_parts()
        self.staged: StagedInputs = stage_inputs(parts, seed=derive_seed(heldout.seed, "shuffle"))
        self.teachers = teachers
        """A bootstrapping target's teacher store: the first seed's student is kept there."""
        self.teacher_sha: str | None = None
        """The teacher every sandbox gets at /teacher (set by use_teacher)."""
        self.recorded_secrets: dict[tuple[str, tuple[int, ...]], str] = {}
        """A replay's: the secret each (tree, sorted seeds) was audited with when recorded, so that the
        re-execution draws the same controls (seed, budgets, relabelling) and measures the same runs."""
        self.audit_draws = {"recorded": 0, "fresh": 0}
        """How many audits drew their controls as recorded (a replay's) and how many afresh."""

    def use_teacher(self, sha: str) -> None:
        """Mount this stored teacher in every later sandbox; what was measured with another is stale."""
        if self.teachers is None:
            raise ConfigError("this evaluator has no teacher store: the target has no [teacher] table")
        self.backend.config.teacher_dir = self.teachers.mount_dir(sha)
        with self._lock:
            self.teacher_sha = sha
            self._by_request.clear()
            self._by_tree.clear()

    def evaluate(
        self,
        parent_commit: str,
        diff: str,
        label: str = "candidate",
        patched: PatchedTree | None = None,
        seeds: Sequence[int] | None = None,
    ) -> Evaluation:
        """Measure the parent plus the diff (cached by request and by the resulting git tree, each
        with the seeds); `patched`: that tree, built already; `seeds`: train on these instead of the
        evaluator's own."""
        if patched is not None and not patched.matches(parent_commit, diff):
            raise ValueError(f"{label}: the patched tree given was built from another parent or diff")
        measured = self._seeds(seeds)
        key = (parent_commit, diff_sha256(diff), measured)
        if self.teachers is not None and self.teacher_sha is not None:
            self.teachers.verify(self.teacher_sha)  # a teacher changed on disk is never mounted
        with self._lock:
            known = self._by_request.get(key)
        if known is not None:
            return known
        evaluation = self._evaluate(parent_commit, diff, label, patched, seeds=measured)
        if evaluation.failure != "sandbox_error":
            with self._lock:
                self._by_request[key] = evaluation
        return evaluation

    def evaluate_many(
        self,
        parent_commit: str,
        diffs: Sequence[str],
        labels: Sequence[str] | None = None,
        patched: Sequence[PatchedTree] | None = None,
    ) -> list[Evaluation]:
        """Measure several candidates at once (at most `parallel`); results in the input order."""
        names = list(labels) if labels is not None else [f"candidate-{i}" for i in range(len(diffs))]
        trees: list[PatchedTree | None] = list(patched) if patched is not None else [None] * len(diffs)
        if not len(names) == len(trees) == len(diffs):
            raise ValueError(f"{len(diffs)} diffs but {len(names)} labels and {len(trees)} patched trees")
        pool = ThreadPoolExecutor(max_workers=min(self.parallel, max(1, len(diffs))))
        futures = [
            pool.submit(self.evaluate, parent_commit, d, n, t)
            for d, n, t in zip(diffs, names, trees, strict=True)
        ]
        try:
            return [future.result() for future in futures]
        except BaseException:
            # Ctrl-C (or a harness bug): start nothing new and stop every running sandbox now,
            # including one whose engine was still creating it (it closes as soon as it is known).
            self._stopping.set()
            for future in futures:
                future.cancel()
            self.close_open_sessions()
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            self._stopping.clear()

    def close_open_sessions(self) -> None:
        self._close_all(self._open_sessions)

    def _close_all(self, sessions: set[Session]) -> None:
        with self._lock:
            snapshot = list(sessions)
        for session in snapshot:
            with contextlib.suppress(SandboxError):  # else reaped at the start of the next run
                session.close()

    def measure_again(self, parent_commit: str, diff: str, label: str) -> Evaluation:
        """A fresh measurement of what may be cached already (a re-measurement: CPU timings and
        secret controls are drawn anew); the cache keeps the first."""
        return self._evaluate(parent_commit, diff, label, None, fresh=True)

    def remember(self, evaluation: Evaluation) -> None:
        """Seed the cache with an evaluation recorded earlier (a resumed run's parent), under the
        seeds it was measured on."""
        seeds = self._seeds(evaluation.seeds)
        with self._lock:
            self._by_request[(evaluation.parent_commit, evaluation.diff_sha256, seeds)] = evaluation
            if evaluation.tree and evaluation.failure != "sandbox_error":
                self._by_tree[(evaluation.tree, seeds)] = evaluation

    def _seeds(self, seeds: Sequence[int] | None) -> tuple[int, ...]:
        """The seeds an evaluation trains on, as its cache keys hold them (the evaluator's own by default)."""
        chosen = tuple(seeds) if seeds else tuple(self.seeds)
        if len(set(chosen)) != len(chosen):
            raise ValueError(f"seeds {list(chosen)} repeat a seed: each seed is measured once per tree")
        return chosen

    def _evaluate(
        self,
        parent_commit: str,
        diff: str,
        label: str,
        patched: PatchedTree | None,
        fresh: bool = False,
        seeds: tuple[int, ...] | None = None,
    ) -> Evaluation:
        started = time.monotonic()
        measured = seeds or self._seeds(None)
        result = Evaluation(
            parent_commit=parent_commit,
            diff_sha256=diff_sha256(diff),
            backend=self.backend.name,
            ok=False,
            seeds=list(measured),
        )
        with scratch_dir("stage") as stage_dir:
            stage = Path(stage_dir)
            if patched is None:
                with self._lock:
                    patched = build_patched_tree(self.lineage, parent_commit, diff, stage / "workspace")
            if patched.path is None or patched.tree is None:
                result.failure, result.failure_detail = "patch_rejected", patched.error or ""
                return result
            workspace, result.tree = patched.path, patched.tree
            with self._tree_lock(result.tree):
                with self._lock:
                    same_tree = self._by_tree.get((result.tree, measured))
                if same_tree is not None and not fresh:
                    return same_tree.model_copy(
                        update={"parent_commit": parent_commit, "diff_sha256": result.diff_sha256}
                    )
                self._measure(result, stage, workspace, label, started, parent_commit, diff)
                if result.failure != "sandbox_error" and same_tree is None:
                    with self._lock:
                        self._by_tree[(result.tree, measured)] = result
        return result

    def _tree_lock(self, tree: str) -> threading.Lock:
        with self._lock:
            return self._tree_locks.setdefault(tree, threading.Lock())

    def _measure(
        self,
        result: Evaluation,
        stage: Path,
        workspace: Path,
        label: str,
        started: float,
        parent: str,
        diff: str,
    ) -> None:
        heldout_dir = stage / "heldout"
        heldout_dir.mkdir()  # stays empty but while predict runs: training never sees the inputs
        audit = None
        with self._lock:
            key = (parent, diff_sha256(""), tuple(result.seeds))
            parent_eval = self._by_request.get(key) if diff.strip() else None
            self._excused[label] = parent_digests(parent_eval)
        if self.integrity is not None:
            secret = self.recorded_secrets.get((result.tree or "", tuple(sorted(result.seeds))), "")
            with self._lock:
                self.audit_draws["recorded" if secret else "fresh"] += 1
            audit = self.integrity.audit(workspace, parent_eval, self.staged, secret)
        again: list[Finding] = []
        try:
            result.image = self.backend.image_id()
            self._run_placed(result, workspace, heldout_dir, label, started, audit)
            if audit is not None:
                again = self._confirm_timings(result, workspace, heldout_dir, label, audit, parent_eval)
        except SandboxError as exc:
            result.ok, result.failure, result.failure_detail = False, "sandbox_error", str(exc)
            self._log_text(label, "sandbox-error", str(exc))
        if audit is not None and result.failure != "sandbox_error":
            result.integrity = audit.findings(result) + again
            result.checks = audit.checks
            verdict = audit.config.verdict
            result.integrity += phase_budget_findings(result, parent_eval, self.phase_budget, verdict)
            rewritten = frozenset(
                (str(r.evidence.get("file")), str(r.evidence.get("text_sha256"))) for r in audit.relabelled
            )
            runtime = runtime_findings(result, rewritten)
            result.integrity += runtime
            result.checks = [*result.checks, runtime_check(result, runtime)]
        with self._lock:
            self._excused.pop(label, None)
        result.resources.wall_s = round(time.monotonic() - started, 3)

    def _timing_suspect(self, result: Evaluation, audit: Audit, parent: Evaluation | None) -> bool:
        """Does a check that compares CPU or wall time find something in what was measured so far?"""
        budget = phase_budget_findings(result, parent, self.phase_budget, audit.config.verdict)
        if any(f.evidence.get("quantity") in LOAD_SENSITIVE and f.evidence.get("ratio") for f in budget):
            return True
        return bool(audit.timing_findings(result))

    def _confirm_timings(
        self,
        result: Evaluation,
        workspace: Path,
        heldout_dir: Path,
        label: str,
        audit: Audit,
        parent: Evaluation | None,
    ) -> list[Finding]:
        """A timing finding is only as good as the machine was quiet: measure the whole evaluation
        again (same tree, same secret draws, fresh sandboxes) while one still stands, up to
        `PhaseBudgetConfig.timing_readings` readings in all. Every timing check then reads each
        phase's least CPU and wall time (`timed_phases`): load only ever adds to them, while work the
        candidate does is in every reading. Each reading must score every seed as the first did:
        a candidate that trains differently when measured again gets a finding, so work it does
        only now and then cannot hide behind the least reading."""
        found: list[Finding] = []
        for reading in range(2, self.phase_budget.timing_readings + 1):
            if not result.ok or not self._timing_suspect(result, audit, parent):
                break
            self.progress("sandbox", {"label": label, "step": f"timings measured again ({reading})"})
            again = Evaluation(
                parent_commit=result.parent_commit,
                diff_sha256=result.diff_sha256,
                backend=result.backend,
                ok=False,
                seeds=list(result.seeds),
            )
            repeat = audit.checker.audit(workspace, parent, self.staged, audit.rerun_secret)
            self._run_placed(
                again, workspace, heldout_dir, f"{label}{READING_MARK}{reading}", time.monotonic(), repeat
            )
            for phase in again.phases:
                result.phases.append(
                    phase.model_copy(update={"phase": f"{phase.phase}{READING_MARK}{reading}"})
                )
            differs = self._reading_differs(result, again, audit.config.metric_tolerance)
            if differs:
                found.append(
                    Finding(
                        rule_id="integrity.timing-reading",
                        verdict=audit.config.verdict,
                        message=(
                            f"measured again for its timings (reading {reading}), the candidate {differs}: "
                            "it does not train the same way twice, so no reading of its cost can be trusted"
                        ),
                        evidence={
                            "reading": reading,
                            "first": result.metric.per_seed if result.metric else None,
                            "again": again.metric.per_seed if again.metric else None,
                            "failure": again.failure,
                        },
                    )
                )
                break
        return found

    @staticmethod
    def _reading_differs(first: Evaluation, again: Evaluation, tolerance: float) -> str:
        """How a re-measurement's outcome differs from the first reading's ("" when it does not)."""
        if not again.ok:
            return f"failed ({again.failure}: {again.failure_detail[:200]})"
        mine = first.metric.per_seed if first.metric else {}
        theirs = again.metric.per_seed if again.metric else {}
        for seed, value in mine.items():
            other = theirs.get(seed)
            if other is None or abs(other - value) > tolerance:
                return f"scored seed {seed} {other} where the first reading scored {value}"
        return ""

    def _run_placed(
        self,
        result: Evaluation,
        workspace: Path,
        heldout_dir: Path,
        label: str,
        started: float,
        audit: Audit | None,
    ) -> None:
        """Run the sandbox phases; when the machine under the sandbox is lost (a Ray node), discard
        what that attempt measured and run the evaluation again from the start, recording the loss."""
        blank = result.model_copy(deep=True)
        lost: list[str] = []
        while True:
            try:
                self._run_in_sandbox(result, workspace, heldout_dir, label, started, audit)
                break
            except SandboxLost as exc:
                if len(lost) >= NODE_LOSSES_TOLERATED:
                    raise
                lost.append(str(exc))
                self.progress("sandbox", {"label": label, "step": f"re-run: {exc}"})
                fresh = blank.model_copy(deep=True)
                for name in type(result).model_fields:
                    setattr(result, name, getattr(fresh, name))
        if lost and result.placement is not None:
            result.placement.lost = lost

    @contextlib.contextmanager
    def _inputs_visible(self, heldout_dir: Path) -> Iterator[None]:
        """The staged inputs exist (through the read-only mount) only while a predict command runs."""
        path = heldout_dir / "inputs.npy"
        np.save(path, self.staged.inputs)
        path.chmod(0o644)
        try:
            yield
        finally:
            path.unlink(missing_ok=True)

    def _run_in_sandbox(
        self,
        result: Evaluation,
        workspace: Path,
        heldout_dir: Path,
        label: str,
        started: float,
        audit: Audit | None = None,
    ) -> None:
        command_time = 0.0
        self.progress("sandbox", {"label": label, "step": "starting"})
        with self.backend.open(workspace, heldout_dir, label) as session, self._tracked(session):
            result.placement = getattr(session, "placement", None)
            phases: list[_Phase] = []
            last_usage = session.usage()

            def run(
                name: str,
                command: str,
                timeout_s: float,
                keep: str | None = None,
                artifact: str | None = None,
                fresh: bool = True,
            ) -> _Phase:
                """One phase. `fresh`: first return the sandbox to its staged state (every phase
                but the very first has to), carrying over only `keep`: a seed's output directory
                from its train to its predict. `artifact`: a directory to size afterwards."""
                nonlocal command_time, last_usage
                if fresh and phases:
                    session.reset(keep)
                session.begin_phase()
                before = session.usage()
                with OffCpuSampler(session.task_pids) as sampler:
                    exec_result = session.exec(command, timeout_s)
                command_time += exec_result.duration_s
                last_usage = session.usage()
                artifact_bytes = session.size_of(artifact) if artifact else None
                off_cpu = sampler.off_cpu_s(exec_result.duration_s)
                phase = _Phase(
                    name, command, exec_result, before, last_usage, artifact_bytes, off_cpu, sampler.threads()
                )
                phases.append(phase)
                result.phases.append(self._log(label, phase))
                result.accounting = result.accounting or phase.usage.accounting
                return phase

            reveal = lambda: self._inputs_visible(heldout_dir)  # noqa: E731
            fresh, close_fresh, release_fresh = self._fresh_sessions(result, workspace, label)
            runner = _Runner(run, session, reveal, fresh, self.predict_timeout_s, self.backend.serves_labels)
            try:
                if audit is not None:
                    # The fresh sandboxes' controls need nothing of the evaluation until they are
                    # compared with it: on the second core while the tests run, they add no wall time.
                    audit.start_fresh_runs(runner, result.seeds)
                self.progress("tests", {"label": label})
                gate = self.test_gate.start(workspace)
                if gate.key_path is not None:
                    session.write_file(gate.key_path, gate.key)
                tests = run("tests", gate.command(self.backend.trusted_pythons()), self.test_timeout_s)
                result.tests = gate.result(tests.result, self._gate_report(session, gate))
                failure = tests.failure("tests_failed") or (None if result.tests.ok else "tests_failed")
                if failure is None:
                    release_fresh(True)
                    failure = self._train_and_score(result, session, run, label, reveal, audit, runner)
            finally:
                if audit is not None:
                    audit.abandon_fresh_runs(close_fresh)
                release_fresh(False)
            result.resources.cpu_s = last_usage.cpu_s
            peaks = [p.usage.peak_memory_mb for p in phases if p.usage.peak_memory_mb is not None]
            result.resources.peak_memory_mb = max(peaks) if peaks else last_usage.peak_memory_mb
        result.resources.overhead_s = round(time.monotonic() - started - command_time, 3)
        if failure is not None and not result.failure_detail:
            result.failure = failure
            failed = phases[-1]
            result.failure_detail = f"{failed.name} exited {failed.result.exit_code}: " + tail(
                failed.result.output, 600
            )
        result.failure = failure
        result.ok = failure is None

    def _train_and_score(
        self,
        result: Evaluation,
        session: Session,
        run: Callable[..., _Phase],
        label: str,
        reveal: Callable[[], contextlib.AbstractContextManager[None]],
        audit: Audit | None,
        runner: _Runner | None = None,
    ) -> FailureKind | None:
        per_seed: dict[int, float] = {}
        lockbox: dict[int, float] = {}
        commands = self.spec.commands
        for index, seed in enumerate(result.seeds, start=1):
            out = f"{OUT_DIR}/seed-{seed}"
            predictions = f"{out}/predictions.npy"
            self.progress("train", {"label": label, "seed": seed, "index": index, "of": len(result.seeds)})
            train = run(
                f"train-seed-{seed}",
                f"mkdir -p {out} && "
                + self.spec.train_command(seed=seed, out=out, steps=self.spec.budget.steps),
                self.spec.budget.train_seconds,
                artifact=out,
            )
            if (failure := train.failure("train_crashed")) is not None:
                return failure
            # The artifact is what training left, read before any predict runs: code of the tree
            # that predict loads can change or remove it (a lookup table deleted as the model loads
            # once passed the artifact's size check unread, red team round eleven).
            if index == 1 and self.teachers is not None:
                self._keep_student(result, session, f"{out}/{TEACHER_FILE}", label)
            if audit is not None:
                audit.capture(seed, out, _Commands(session, None))
            self.progress("predict", {"label": label, "seed": seed, "index": index, "of": len(result.seeds)})
            with reveal():
                predict = run(
                    f"predict-seed-{seed}",
                    settled(out)
                    + commands.predict.format(out=out, inputs=INPUTS_PATH, predictions=predictions),
                    self.predict_timeout_s,
                    keep=out,
                )
            if (failure := predict.failure("predict_crashed")) is not None:
                return failure
            try:
                raw = session.read_file(predictions)
                parts = self.staged.split(load_predictions(raw))
                per_seed[seed] = score(self.spec.metric.name, parts["selection"], self.heldout.labels)
                if self.lockbox is not None:
                    lockbox[seed] = score(self.spec.metric.name, parts["lockbox"], self.lockbox.labels)
            except (SandboxError, ValueError, TypeError, OSError, EOFError) as exc:
                result.failure_detail = f"seed {seed}: predictions unusable: {exc}"
                result.metric = self._metric(per_seed) if per_seed else None
                return "bad_predictions"
            if audit is not None:
                audit.record(seed, parts)
                audit.after_predict(seed, out, _Commands(session, None))
        result.metric = self._metric(per_seed)
        result.lockbox = self._metric(lockbox) if lockbox else None
        if self.teachers is not None and self.teacher_sha is not None:
            self._score_teacher(result, session, run, reveal)
        if audit is not None and runner is not None:
            self.progress("integrity", {"label": label})
            audit.run_controls(runner)
        return None

    def _keep_student(self, result: Evaluation, session: Session, path: str, label: str) -> None:
        """The first seed's trained artifact into the teacher store: promoted if accepted."""
        assert self.teachers is not None
        try:
            result.student_sha256 = self.teachers.put(session.read_file(path), where=f"{label}: {path}")
        except (SandboxError, TeacherError) as exc:
            self._log_text(label, "student-not-kept", str(exc))
        result.teacher_sha256 = self.teacher_sha

    def _score_teacher(
        self,
        result: Evaluation,
        session: Session,
        run: Callable[..., _Phase],
        reveal: Callable[[], contextlib.AbstractContextManager[None]],
    ) -> None:
        """The mounted teacher scored on the held-out set through this tree's predict command."""
        predictions = f"{OUT_DIR}/teacher-predictions.npy"
        command = self.spec.commands.predict.format(
            out=TEACHER_MOUNT, inputs=INPUTS_PATH, predictions=predictions
        )
        with reveal():
            phase = run("predict-teacher", f"mkdir -p {OUT_DIR} && {command}", self.predict_timeout_s)
        if phase.result.exit_code != 0:
            return
        try:
            parts = self.staged.split(load_predictions(session.read_file(predictions)))
        except (SandboxError, ValueError, TypeError, OSError, EOFError):
            return
        result.teacher_metric = score(self.spec.metric.name, parts["selection"], self.heldout.labels)

    def _gate_report(self, session: Session, gate: GateRun) -> bytes | None:
        if gate.key_path is None:
            return None
        try:
            return session.read_file(gate.report_path, max_bytes=16 * 1024 * 1024)
        except SandboxError:
            return None  # no report: the gate counts it as an error

    def _metric(self, per_seed: dict[int, float]) -> MetricResult:
        return MetricResult(
            name=self.spec.metric.name, direction=self.spec.metric.direction, per_seed=per_seed
        )

    def _fresh_sessions(
        self, result: Evaluation, workspace: Path, label: str
    ) -> tuple[
        Callable[..., contextlib.AbstractContextManager[_Commands]],
        Callable[[], None],
        Callable[[bool], None],
    ]:
        """Opens a FRESH sandbox of the same backend on the same tree (no /heldout, another uid) for
        the integrity checks; its commands are logged as phases of the evaluation. The second
        callable closes every one of them still open (the evaluation ended first). The fresh
        sandboxes start with the tests, so their phases are held back until the third is called:
        with True once the tests phase is logged (the evaluation's phases stay in its order, tests
        first), with False when the evaluation fails there (the controls are abandoned; their logs
        stay on disk)."""
        open_now: set[Session] = set()
        held: list[PhaseLog] | None = []
        guard = threading.Lock()

        def log(phase: _Phase) -> None:
            entry = self._log(label, phase)
            with guard:
                if held is None:
                    result.phases.append(entry)
                else:
                    held.append(entry)

        def release(keep: bool) -> None:
            nonlocal held
            with guard:
                if held is not None and keep:
                    result.phases.extend(held)
                held = None

        @contextlib.contextmanager
        def fresh(user: str, labels: Path | None = None) -> Iterator[_Commands]:
            opened = self.backend.open(workspace, None, f"{label}-disguise", user=user, labels=labels)
            with opened as session, self._tracked(session, open_now):
                yield _Commands(session, log)

        return fresh, lambda: self._close_all(open_now), release

    @contextlib.contextmanager
    def _tracked(self, session: Session, group: set[Session] | None = None) -> Iterator[None]:
        """The session is open: in the evaluator's set (Ctrl-C closes them all) and in `group`."""
        groups = [self._open_sessions] if group is None else [self._open_sessions, group]
        with self._lock:
            for members in groups:
                members.add(session)
        try:
            if self._stopping.is_set():
                session.close()
                raise SandboxError("the evaluation was interrupted before its sandbox started")
            yield
        finally:
            with self._lock:
                for members in groups:
                    members.discard(session)

    def _log_text(self, label: str, name: str, text: str) -> Path:
        directory = self.log_dir / label
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{name}.log"
        path.write_text(text, encoding="utf-8")
        return path

    def _log(self, label: str, phase: _Phase) -> PhaseLog:
        directory = self.log_dir / label
        directory.mkdir(parents=True, exist_ok=True)
        log_file = directory / f"{phase.name}.log"
        log_file.write_text(f"$ {phase.command}\n{phase.result.output}", encoding="utf-8")
        if phase.result.audit:
            # The runtime audit as the sandbox's hooks wrote it, beside the phase's output.
            (directory / f"{phase.name}.audit.jsonl").write_text(phase.result.audit, encoding="ascii")
        return PhaseLog(
            phase=phase.name,
            command=phase.command,
            exit_code=phase.result.exit_code,
            duration_s=round(phase.result.duration_s, 3),
            output_tail=tail(phase.result.output, 1500),
            log_file=str(log_file),
            cpu_s=phase.cpu_s,
            usage=phase.usage,
            audit=read_audit(phase.result.audit, self._excused.get(label, frozenset())),
        )


class _Commands:
    """A fresh sandbox as the integrity checks see it: each command logged as a phase."""

    def __init__(self, session: Session, log: Callable[[_Phase], None] | None) -> None:
        self._session, self._log = session, log

    def run(self, name: str, command: str, timeout_s: float) -> ExecResult:
        """One command, without resetting the sandbox; logged as a phase when there is a log."""
        if self._log is None:
            return self._session.exec(command, timeout_s)
        self._session.begin_phase()
        before = self._session.usage()
        with OffCpuSampler(self._session.task_pids) as sampler:
            result = self._session.exec(command, timeout_s)
        off_cpu = sampler.off_cpu_s(result.duration_s)
        self._log(
            _Phase(name, command, result, before, self._session.usage(), None, off_cpu, sampler.threads())
        )
        return result

    def read_file(self, path: str) -> bytes:
        return self._session.read_file(path)

    def write_file(self, path: str, data: bytes) -> None:
        self._session.write_file(path, data)

    def reset(self, keep: str | None = None) -> None:
        self._session.reset(keep)


class _Runner:
    """The candidate's open sandbox (and fresh ones on demand) as the integrity checks see it."""

    out_dir = OUT_DIR
    inputs_path = INPUTS_PATH

    def __init__(
        self,
        run: Callable[..., _Phase],
        session: Session,
        reveal: Callable[[], contextlib.AbstractContextManager[None]],
        fresh: Callable[..., contextlib.AbstractContextManager[_Commands]],
        predict_timeout_s: float,
        serves_labels: bool = False,
    ) -> None:
        self._run, self._session, self._reveal = run, session, reveal
        self.fresh, self.predict_timeout_s = fresh, predict_timeout_s
        self.serves_labels = serves_labels
        self._predicting = False

    @contextlib.contextmanager
    def inputs_visible(self) -> Iterator[None]:
        with self._reveal():
            self._predicting = True
            try:
                yield
            finally:
                self._predicting = False

    def run(self, name: str, command: str, timeout_s: float) -> ExecResult:
        return self._run(name, command, timeout_s, fresh=not self._predicting).result

    def read_file(self, path: str) -> bytes:
        return self._session.read_file(path)

    def write_file(self, path: str, data: bytes) -> None:
        self._session.write_file(path, data)
