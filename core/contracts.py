"""The contracts between the parts of a run: what each part hands to the next.

One generation flows through them in order:

    Proposer.propose(context)                 -> Proposal
    Sandbox.evaluate(parent, diff)            -> Evaluation
    Policy.check(proposal, evaluation, ...)   -> Verdict
    Reviewer.decide(candidate)                -> Decision

Every model here is a pydantic model so that it can be written to the trajectory as it is and read
back unchanged; every interface is a small Protocol so that concrete classes are chosen in one
place (the run config) and passed in.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, Field

from core.diff import PatchedTree
from core.paired import PairedComparison
from core.visible import visible


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


# ---------------------------------------------------------------------------------------------
# Proposals


class Usage(BaseModel):
    """What one proposal cost: model tokens and dollars (zero for offline proposers)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    dollars: float = 0.0
    model_calls: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cache_read_tokens=self.cache_read_tokens + other.cache_read_tokens,
            cache_write_tokens=self.cache_write_tokens + other.cache_write_tokens,
            dollars=self.dollars + other.dollars,
            model_calls=self.model_calls + other.model_calls,
        )


class Proposal(BaseModel):
    """A candidate change to the parent: a unified diff and what the proposer says about it."""

    diff: str
    """Unified diff against the parent commit, paths relative to the target root (a/, b/ prefixes)."""
    rationale: str
    """One or more sentences: why this change should help."""
    claimed_effect: str | None = None
    """What the proposer expects to measure (recorded next to what the harness measures)."""
    proposer: str
    """Name of the proposer that produced it (offline, claude, replay)."""
    transcript: list[dict[str, Any]] = Field(default_factory=list)
    """Exact model inputs/outputs and tool calls, enough to replay the proposal with no network."""
    usage: Usage = Field(default_factory=Usage)
    stop_reason: str = "submitted"
    """Why the proposer stopped: submitted, or the limit it hit (steps, tokens, dollars, time)."""


class HistoryEntry(BaseModel):
    """One earlier generation as the proposer sees it: compact, no held-out data."""

    generation: int
    parent_commit: str
    rationale: str
    """The proposal's rationale (its first line)."""
    diff_stat: str = ""
    metric_mean: float | None = None
    metric_std: float | None = None
    decision: str
    """accept, reject or queue."""
    reason: str = ""
    """Why: the policy's findings, the failing tests, or the human's words."""
    paired: PairedComparison | None = None
    """The candidate against its parent on the same seeds (none when it was not measured): how
    much the change moved the metric, beyond noise or not."""


class ProposalContext(BaseModel):
    """Everything a proposer gets for one generation."""

    generation: int
    objective: str
    metric_name: str
    direction: Literal["higher", "lower"]
    parent_commit: str
    parent_metric_mean: float | None
    parent_metric_std: float | None
    history: list[HistoryEntry] = Field(default_factory=list)
    ancestry: list[HistoryEntry] = Field(default_factory=list)
    """The accepted candidates that made the parent, oldest first (empty for the baseline)."""
    siblings: list[HistoryEntry] = Field(default_factory=list)
    """Other candidates proposed from the same parent: decided ones with their outcome, and this
    generation's still pending."""


# ---------------------------------------------------------------------------------------------
# Evaluations

FailureKind = Literal[
    "patch_rejected",
    "tests_failed",
    "train_crashed",
    "predict_crashed",
    "bad_predictions",
    "timeout",
    "out_of_memory",
    "pids_exhausted",
    "disk_full",
    "sandbox_error",
]


class TestResult(BaseModel):
    __test__ = False  # not a pytest test class

    exit_code: int | None = None
    passed: int = 0
    failed: int = 0
    errors: int = 0
    skipped: int = 0
    duration_s: float = 0.0
    output_tail: str = ""
    counts_from: Literal["gate_report", "exit_code", "output"] = "output"
    """Where the counts come from: the test gate's own pytest report, the exit code alone (a test
    command that is not pytest: the counts stay 0), or the printed output (older records)."""
    not_passed: dict[str, str] = Field(default_factory=dict)
    """Node id → outcome (failed, error, skipped, xfailed, xpassed) of every test that did not pass."""
    value_faces: list[str] = Field(default_factory=list)
    """Types of the tree, alive while the tests ran, that change how a value reads or compares (a
    dict subclass with its own `__getitem__`, an ndarray subclass with `__array_function__`, a duck
    array with `__array__`...), as the test gate found them: what the tests assert may not be what
    training uses. Not a failure; the integrity check `test-values` sends it to a human. At most 20."""

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and self.failed == 0 and self.errors == 0


class MetricResult(BaseModel):
    name: str
    direction: Literal["higher", "lower"]
    per_seed: dict[int, float]

    @property
    def mean(self) -> float:
        return statistics.fmean(self.per_seed.values())

    @property
    def std(self) -> float:
        values = list(self.per_seed.values())
        return statistics.stdev(values) if len(values) > 1 else 0.0

    def summary(self) -> str:
        return f"{self.name} {self.mean:.4f} ± {self.std:.4f} (n={len(self.per_seed)})"

    def gain_over(self, parent: MetricResult) -> float:
        """By how much: the signed gain over the parent's mean in the metric's direction (positive = better)."""
        return signed_gain(self.mean, parent.mean, self.direction)

    def noise_against(self, parent: MetricResult, floor: float = 0.0) -> float:
        """Beyond what noise: a gain counts only above the larger seed spread of the two (or `floor`)."""
        return max(self.std, parent.std, floor)

    def better_than(self, parent: MetricResult) -> bool:
        """Better at all (its mean, in the metric's direction), however small the gain."""
        return self.gain_over(parent) > 0


def signed_gain(value: float, reference: float, direction: str) -> float:
    """How much better `value` is than `reference`; `direction` ("higher" or "lower") says which way
    is better. The one place that knows: every comparison of metric values goes through here."""
    return value - reference if direction == "higher" else reference - value


def best_of(best: float | None, value: float, direction: str) -> float:
    """The better of the best so far (None: nothing yet) and a new value."""
    return value if best is None or signed_gain(value, best, direction) > 0 else best


class Resources(BaseModel):
    wall_s: float = 0.0
    cpu_s: float | None = None
    peak_memory_mb: float | None = None
    overhead_s: float | None = None
    """Sandbox time not spent in the candidate's commands (create, copy, teardown)."""


RuntimeKind = Literal["dynamic-code", "process", "native", "steering", "unpickled", "tampered"]


class RuntimeEvent(BaseModel):
    """One event of a phase's runtime audit that a reviewer must see."""

    kind: RuntimeKind
    event: str
    detail: str
    """What happened, in one line (shown as the candidate's text: hidden characters made visible)."""
    where: list[str] = Field(default_factory=list)
    """The innermost frames that raised it, as `file:line function`."""
    staged: str | None = None
    """For code compiled under the name of a file of the tree: that file's path in the staged tree."""
    text_sha256: str | None = None
    """For compiled text: the digest of the whole text (as the hook sent it), which `detail` shows
    the start of."""
    library: bool = False
    """Text compiled by the environment's own code (the frame that compiled it is a library's): the
    library's own text, or text handed to it, which the record cannot tell apart."""


class PhaseAudit(BaseModel):
    """A phase's runtime audit as the host read it."""

    answered: bool = True
    """The sandbox's init answered for the phase (False: no record could be had)."""
    processes: int = 0
    """Python processes that installed the audit hook."""
    events: list[RuntimeEvent] = Field(default_factory=list)
    total: int = 0
    """Events found, of which `events` keeps the first 20 (sandbox.runtime_audit.MAX_EVENTS)."""
    by_libraries: int = 0
    """Of `total`, texts the environment's libraries compiled (RuntimeEvent.library)."""
    excused: int = 0
    """Events the parent's code raised too, word for word (not counted in `total`)."""
    digests: list[str] = Field(default_factory=list)
    """Every distinct event's digest, excused or not: what this tree's code does, for its children
    to be measured against (sandbox.runtime_audit.event_digest)."""
    bytes_written: int = 0
    """Bytes the phase's audit hooks wrote, kept or not (the phase budget's `audit_bytes`)."""
    dropped_bytes: int = 0
    """Of them, what the sandbox's init read past its cap and did not keep (sandbox.init
    .AUDIT_RECORD_CAP_BYTES): events there were not seen."""
    dropped_lines: int = 0
    """The records (lines) among the dropped bytes."""


class PhaseLog(BaseModel):
    phase: str
    command: str
    exit_code: int | None
    duration_s: float
    output_tail: str
    log_file: str | None = None
    cpu_s: float | None = None
    """CPU seconds the sandbox measured for this command (from its cgroup, not from the candidate)."""
    usage: PhaseUsage | None = None
    """Everything the harness measured about this phase alone; None in evaluations recorded before
    per-phase accounting existed."""
    audit: PhaseAudit | None = None
    """What the phase's Python processes did, as the runtime audit saw it (sandbox/runtime_audit.py);
    None in evaluations recorded before it existed."""


READING_MARK = "~"
"""Separates a phase's name from the reading number of a timing re-measurement ("train-seed-0~2")."""


def phase_reading(name: str) -> tuple[str, int]:
    """("train-seed-0", 2) for "train-seed-0~2"; (name, 1) for a first reading."""
    base, mark, number = name.rpartition(READING_MARK)
    return (base, int(number)) if mark and number.isdigit() else (name, 1)


def timed_phases(phases: list[PhaseLog]) -> list[PhaseLog]:
    """Each phase's first reading, with the least CPU and wall time any reading of it measured.

    Load on the machine only ever adds CPU and wall time to a phase (cache and core contention,
    preemption), so the least of several readings of the same command is the best estimate of what
    the command itself costs; every check that compares timings reads them through this."""
    firsts: dict[str, PhaseLog] = {}
    later: dict[str, list[PhaseLog]] = {}
    for phase in phases:
        base, reading = phase_reading(phase.phase)
        if reading == 1:
            firsts.setdefault(base, phase)
        else:
            later.setdefault(base, []).append(phase)
    out = []
    for base, first in firsts.items():
        again = later.get(base, [])
        if not again:
            out.append(first)
            continue
        readings = [first, *again]
        usage = first.usage.model_copy() if first.usage is not None else None
        if usage is not None:
            usage.cpu_s = _least([p.usage.cpu_s if p.usage else None for p in readings], usage.cpu_s)
            usage.wall_s = _least([p.usage.wall_s if p.usage else None for p in readings], usage.wall_s)
        out.append(
            first.model_copy(
                update={"cpu_s": _least([p.cpu_s for p in readings], first.cpu_s), "usage": usage}
            )
        )
    return out


def _least(values: list[float | None], first: float | None) -> float | None:
    """The least measured value; None when the first reading was unmeasured (never compared as 0)."""
    if first is None:
        return None
    return min(v for v in values if v is not None)


Accounting = Literal["cgroup-v1", "cgroup-v2", "docker-stats", "rlimit-only"]
"""Where a sandbox's counters come from: the kernel's cgroups (v1 or v2, read on the host), the
Docker engine's stats API (no per-phase peak memory, no OOM or pid-limit counters), or nothing but
rlimits (no CPU, memory, OOM or pid counters at all)."""


class PhaseUsage(BaseModel):
    """What one phase (tests, one seed's train or predict, an integrity re-run) cost, as the harness
    measured it. None means unmeasured: this backend and host could not tell, which is never 0."""

    accounting: Accounting | None = None
    """Which accounting was in force for the CPU, memory, OOM and pid figures."""
    cpu_s: float | None = None
    """CPU seconds of every process of the phase (the cgroup's counter over the phase)."""
    wall_s: float | None = None
    """Wall seconds from the command's start to the end of its last process, timed inside the sandbox."""
    off_cpu_s: float | None = None
    """Wall seconds during which no process of the phase was running, runnable or in disk wait: a
    wait of its own choosing (sleep, blocking read, lock), which load does not lengthen (sampled)."""
    peak_memory_mb: float | None = None
    """Peak memory of the sandbox during this phase alone (the counter is reset when it starts)."""
    log_bytes: int | None = None
    """Size of the command's combined output, before the harness truncates what it keeps."""
    audit_bytes: int | None = None
    """Bytes the command's runtime audit hooks wrote (sandbox/audit), kept or not: each is sent to
    the host, judged and stored like the output; None when the sandbox gave no record."""
    disk_bytes: int | None = None
    """Bytes in use on the sandbox's writable filesystems (/workspace, /tmp and /dev/shm) when the
    phase ended; every phase starts from the staged tree and an empty /tmp and /dev/shm."""
    artifact_bytes: int | None = None
    """Size of the seed's output directory after a train phase; None for other phases."""
    oom_kills: int | None = None
    """Processes the kernel killed for memory during the phase; None when no counter is readable."""
    pids_limit_hits: int | None = None
    """Times a fork hit the pid limit during the phase; None when no counter is readable."""
    peak_threads: int | None = None
    """The most threads the sandbox's processes had at once during the phase (sampled with the
    off-CPU time; None when not measured or the phase was shorter than one sample)."""


class IntegrityCheck(BaseModel):
    """One behavioural integrity check as the harness ran it on a tree, clean or not."""

    check: str
    """The check's name; its findings carry the rule id ``integrity.<check>``."""
    status: Literal["clean", "finding", "not_run"]
    """clean: ran and found nothing; finding: ran and reported; not_run: could not be measured."""
    detail: str = ""
    """Why it did not run, or what it measured, in one line."""
    measured: dict[str, Any] = Field(default_factory=dict)
    """The numbers it measured (e.g. a control's metric), kept so a child can be judged against them."""


class PlacementRecord(BaseModel):
    """Where an evaluation's sandbox ran, when not on the machine that ran the harness."""

    placement: Literal["ray"] = "ray"
    node_id: str
    address: str
    """The node's address in its cluster."""
    kind: str = ""
    """The node's hardware kind: budgets compare a candidate with a parent measured on this kind."""
    lost: list[str] = Field(default_factory=list)
    """Nodes lost mid-evaluation, each time the evaluation was run again from the start elsewhere."""


class Evaluation(BaseModel):
    """What the trusted harness measured for one tree (a parent, or a parent plus a diff)."""

    parent_commit: str
    diff_sha256: str
    tree: str | None = None
    """Git tree id of the evaluated files: identical trees are measured once."""
    backend: str
    image: str | None = None
    ok: bool
    failure: FailureKind | None = None
    failure_detail: str = ""
    tests: TestResult | None = None
    metric: MetricResult | None = None
    """The selection set's metric: the one decisions use."""
    lockbox: MetricResult | None = None
    """The lockbox set's metric, from the same predictions: recorded, never used for a decision."""
    seeds: list[int] = Field(default_factory=list)
    resources: Resources = Field(default_factory=Resources)
    phases: list[PhaseLog] = Field(default_factory=list)
    integrity: list[Finding] = Field(default_factory=list)
    """Findings of the harness's own integrity checks, judged by the policy."""
    accounting: Accounting | None = None
    """Which resource accounting was in force for this evaluation (also on every phase's usage);
    None in evaluations recorded before it was recorded."""
    checks: list[IntegrityCheck] = Field(default_factory=list)
    """Every behavioural integrity check and whether it ran clean: a size rule trusts a large gain
    only when all of them did."""
    teacher_sha256: str | None = None
    """Bootstrapping targets: the teacher mounted at /teacher while this tree trained."""
    teacher_metric: float | None = None
    """That teacher scored on the selection set through this tree's predict command."""
    student_sha256: str | None = None
    """The first seed's trained artifact, kept in the run's teacher store: the next teacher if accepted."""
    placement: PlacementRecord | None = None
    """Where the sandbox ran (a Ray node); None: on the harness's own machine."""

    def with_extra_seeds(self, extra: Evaluation) -> Evaluation:
        """This evaluation and one of the same tree on other seeds, merged seed by seed: the metric
        and lockbox per seed, the phases, the integrity findings; a failure on the extra seeds
        fails the whole (the tree does not train on every seed)."""
        overlap = set(self.seeds) & set(extra.seeds)
        if overlap:
            raise ValueError(f"seeds {sorted(overlap)} were measured already; extra seeds must be new")
        merged = self.model_copy(deep=True)
        merged.seeds = [*self.seeds, *extra.seeds]
        merged.metric = _merged_metric(self.metric, extra.metric)
        merged.lockbox = _merged_metric(self.lockbox, extra.lockbox)
        merged.phases = [*self.phases, *extra.phases]
        merged.integrity = [*self.integrity, *extra.integrity]
        if not extra.ok and merged.ok:
            merged.ok, merged.failure = False, extra.failure
            merged.failure_detail = f"on seeds {extra.seeds}: {extra.failure_detail}"
        return merged


def _merged_metric(first: MetricResult | None, extra: MetricResult | None) -> MetricResult | None:
    if first is None or extra is None:
        return first or extra
    return first.model_copy(update={"per_seed": {**first.per_seed, **extra.per_seed}})


# ---------------------------------------------------------------------------------------------
# Verdicts and decisions

VerdictKind = Literal["allow", "review", "deny"]
VERDICT_ORDER: dict[str, int] = {"allow": 0, "review": 1, "deny": 2}


class Finding(BaseModel):
    rule_id: str
    verdict: VerdictKind
    message: str
    file: str | None = None
    line: int | None = None
    evidence: dict[str, Any] = Field(default_factory=dict)


class Verdict(BaseModel):
    verdict: VerdictKind
    findings: list[Finding] = Field(default_factory=list)
    policy_name: str
    policy_hash: str
    paired: PairedComparison | None = None
    """The candidate against its parent on the seeds both were measured on: the paired gain and its
    interval at the policy's confidence level. None without a parent metric or with fewer than two
    shared seeds (no interval)."""

    def reasons(self) -> str:
        hits = [f for f in self.findings if f.verdict == self.verdict] or self.findings
        # Shown to people (the decision bar, the console, a rejection's reason): hidden characters
        # of the candidate's text are written as code points (core.visible).
        return "; ".join(f"[{f.rule_id}] {visible(f.message)}" for f in hits) or "no rule matched"


DecisionKind = Literal["accept", "reject", "queue"]


class Decision(BaseModel):
    decision: DecisionKind
    by: str
    """Who decided: "policy" (headless), "human:<user>", or "replay"."""
    reason: str = ""
    at: str = Field(default_factory=utc_now)


class Candidate(BaseModel):
    """One generation's candidate with everything measured about it, as a reviewer sees it."""

    generation: int
    parent_commit: str
    proposal: Proposal
    evaluation: Evaluation
    parent_evaluation: Evaluation | None
    verdict: Verdict


# ---------------------------------------------------------------------------------------------
# Interfaces

ProgressCallback = Callable[[str, dict[str, Any]], None]
"""(phase, details) reported while a part works: the TUI and the headless log show it live."""


@runtime_checkable
class Proposer(Protocol):
    name: str

    def propose(self, context: ProposalContext, parent_tree: Path) -> Proposal:
        """Propose a change to the parent; parent_tree is a fresh host copy of the parent's files."""
        ...


@runtime_checkable
class Sandbox(Protocol):
    """The trusted evaluation: a parent commit plus a diff, measured in a fresh sandbox."""

    recorded_secrets: dict[tuple[str, tuple[int, ...]], str]
    """A replay's: the integrity secret each (tree, seeds) was audited with when recorded."""
    audit_draws: dict[str, int]
    """How many audits drew their controls as recorded and how many afresh."""

    def evaluate(
        self,
        parent_commit: str,
        diff: str,
        label: str = "candidate",
        patched: PatchedTree | None = None,
        seeds: Sequence[int] | None = None,
    ) -> Evaluation:
        """Measure the parent plus the diff; `label` names its logs; `patched`: that tree, built
        already; `seeds`: train on these seeds instead of the run's (racing, elite confirmation)."""
        ...

    def remember(self, evaluation: Evaluation) -> None:
        """Take an evaluation recorded earlier as measured (a resumed run's parents)."""
        ...

    def evaluate_many(
        self,
        parent_commit: str,
        diffs: Sequence[str],
        labels: Sequence[str] | None = None,
        patched: Sequence[PatchedTree] | None = None,
    ) -> list[Evaluation]:
        """Measure several candidates of one parent at once; results in the input order."""
        ...


@runtime_checkable
class Policy(Protocol):
    name: str
    content_hash: str
    confidence: float
    """Two-sided level of the paired interval of a candidate's gain over its parent."""

    def check(
        self,
        proposal: Proposal,
        evaluation: Evaluation | None,
        parent: Evaluation | None,
        tree: Path | None = None,
        patched: PatchedTree | None = None,
    ) -> Verdict:
        """Judge a candidate; `tree` (or `patched`, the candidate's tree with its diff parsed) is the
        patched tree, so code rules can parse whole files."""
        ...


@runtime_checkable
class Reviewer(Protocol):
    def decide(self, candidate: Candidate) -> Decision: ...


@runtime_checkable
class LineageStore(Protocol):
    """The lineage: accepted generations as commits on top of the parent each was proposed from."""

    def head(self) -> str:
        """The newest accepted commit (the baseline before any)."""
        ...

    def export(self, commit: str, into: Path) -> Path:
        """Write the files of `commit` into a fresh directory, and return it."""
        ...

    def commit_candidate(
        self, diff: str, generation: int, message: str, patched: PatchedTree | None = None
    ) -> str:
        """Apply an accepted diff on the head and commit it (tagged `gen-N`), all or nothing;
        `patched`: the candidate's files built from the head, committed as they are."""
        ...

    def tree_of(self, commit: str) -> str:
        """The git tree id of a commit (identical trees are identical files)."""
        ...

    def grow_from(self, parent: str, generation: int) -> None:
        """Make `parent` the commit the next accepted diff is applied to: the lineage is a tree
        (a branch is started when `parent` is not the tip of one; a line never needs one)."""
        ...


PhaseLog.model_rebuild()
Evaluation.model_rebuild()
