"""Per-phase budgets against the parent: a candidate's phase may not cost far more than the same
phase of its parent, whatever the absolute sandbox limits allow.

The absolute limits (memory, pids, time, disk) stop runaway code; they do not notice a candidate
that trains during its tests, fine-tunes while it predicts, or logs a hundred times more than its
parent while staying under them. Each phase (tests, each seed's train and predict, the integrity
re-runs) is measured on its own (sandbox/evaluate.py) and compared here with the parent's dearest
phase of the same role (the name with its seed left out: the integrity controls' seeds are drawn in
secret per evaluation), quantity by quantity; a control the parent did not run is held to the
parent's plain phase (`train-seed-*-relabelled-2` to `train-seed-*-relabelled`, then `train-seed-*`):

    findings = phase_budget_findings(candidate, parent, PhaseBudgetConfig(), verdict="review")

A quantity trips when the candidate's value exceeds `factor` × the parent's AND exceeds the
parent's by at least `floor` (so tiny phases do not trip on noise). Each hit is one
`integrity.phase-budget` finding with evidence {phase, quantity, candidate, parent, ratio,
threshold, floor}.

Unmeasured quantities (None: the backend or host could not read them) are never compared as 0.
When the parent's value was measured and the candidate's was not, the candidate escaped the
measurement: a finding that says "unmeasured". When neither was measured (a host without that
accounting, e.g. rlimit-only bwrap), there is nothing to compare and no finding: flagging every
honest candidate on such a host would teach reviewers to ignore the rule; `rsi doctor` and
`Evaluation.accounting` say what was not measured. A phase the parent has and the candidate lacks
(it failed earlier) is not compared.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from core.contracts import Evaluation, Finding, PhaseUsage, VerdictKind, timed_phases

RULE_ID = "integrity.phase-budget"
SEED = re.compile(r"seed-\d+")
LOAD_SENSITIVE = frozenset({"cpu_s", "wall_s"})
"""Quantities a loaded machine inflates: a finding on one is confirmed by measuring again."""
SAMPLED = frozenset({"peak_threads"})
"""Quantities read by sampling the phase's threads (`sandbox.cgroups.OffCpuSampler`, every 0.04 s):
a phase that ends before the first sample has none, though it was measured."""


class QuantityBudget(BaseModel):
    """How much more than the parent's same phase a candidate's phase may use of one quantity."""

    model_config = ConfigDict(extra="forbid")

    factor: float = Field(gt=1)
    """The candidate's value must exceed this multiple of the parent's to trip..."""
    floor: float = Field(ge=0)
    """...and exceed the parent's by at least this much (in the quantity's unit)."""


class PhaseBudgetConfig(BaseModel):
    """Thresholds of the per-phase budget check, calibrated on the bundled target: honest changes
    (wider network, Adam, cosine schedule, 4× the training pool, wider inputs, the hand-made
    configuration of target_repo/README.md) stay under all of them on both backends; logging 100×,
    allocating 4× the memory, training during the tests and fine-tuning at predict trip them."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    """Compare each phase with the parent's at all (it costs nothing: no extra runs)."""
    timing_readings: int = Field(default=2, ge=1)
    """How many times, at most, an evaluation is measured while a finding that compares CPU or wall
    time (this budget's, or the integrity checks' per-step and per-seed CPU) stands: each phase is
    then judged by its least reading. A loaded machine inflates a phase's CPU time (an honest
    training read 2.4x its usual CPU once on a busy 2-core CI machine); the candidate's own work is
    in every reading. 2 by default: one more reading of the whole evaluation, paid only while a
    timing finding stands (an honest candidate on a quiet machine never pays it; a hostile one whose
    work shows in both readings pays it once). 1: judge the first reading alone."""
    cpu_s: QuantityBudget = QuantityBudget(factor=2.0, floor=2.0)
    """CPU seconds. The floor covers what a wider network legitimately costs more per step (the
    hand-made configuration trains at 2.6-3.7x the parent's CPU, +0.85-1.2 s on a loaded machine)
    plus startup noise; so work moved to another phase is found once it exceeds 2 CPU-s (some
    thirty budgets of the bundled target's default training) and doubles that phase."""
    wall_s: QuantityBudget = QuantityBudget(factor=5.0, floor=20.0)
    """Wall seconds: loose, as a shared machine's load moves wall time far more than CPU time
    (an honest training measured at 4x its parent's wall time under load); it catches stalls.
    Judged only where off-CPU time is unmeasured (see `wall_beside_off_cpu`)."""
    wall_beside_off_cpu: bool = False
    """Also judge wall time when both sides' off-CPU time is measured. Off: there, off-CPU time
    judges waiting and CPU time judges work, so what wall time adds is the machine's load (honest
    trainings measured at 6-11x their parent's wall time under a load average of 11 on 2 cores)."""
    off_cpu_s: QuantityBudget = QuantityBudget(factor=3.0, floor=0.6)
    """Wall seconds no process of the phase was running, runnable or in disk wait (sampled): time
    spent waiting by choice, which a loaded machine does not lengthen (runnable counts as busy), so
    it can be held far tighter than wall time: the bundled target's phases wait under 0.1 s."""
    peak_memory_mb: QuantityBudget = QuantityBudget(factor=2.5, floor=40.0)
    """Peak memory of the phase in MiB: training the bundled target peaks near 20 MiB (37 for the
    hand-made configuration), its tests near 50-65 MiB."""
    log_bytes: QuantityBudget = QuantityBudget(factor=10.0, floor=16384)
    """Bytes of output the command printed (all of it is stored on the host)."""
    audit_bytes: QuantityBudget = QuantityBudget(factor=10.0, floor=524288)
    """Bytes the command's runtime audit hooks wrote (sandbox/audit), kept or not: like its output,
    every byte is sent to the host, judged and stored, and an accepted record (a named tuple's or data
    class's generated text, some 400 bytes each) is no finding of its own, so a flood of them is held
    here (red team: 1,100 named tuples built in train and every predict, 33x the parent's record
    per phase, `allow`). Importing NumPy writes 19 KB (NumPy 2) to 213 KB (NumPy 1.24, the image's);
    the floor is some 1,300 named tuples more than the parent's, above what importing pydantic
    writes (0.57 MB, which the runtime audit reviews anyway)."""
    artifact_bytes: QuantityBudget = QuantityBudget(factor=10.0, floor=1048576)
    """Bytes in the seed's output directory after training."""
    peak_threads: QuantityBudget = QuantityBudget(factor=4.0, floor=16)
    """The most threads at once (sampled): the bundled target's phases run the harness's shell and
    one single-threaded Python (numpy's threads are pinned to one); a hundred threads parked
    under the pid limit are held to the parent's few."""
    disk_bytes: QuantityBudget = QuantityBudget(factor=10.0, floor=8388608)
    """Bytes in use on /workspace and /tmp at the end of the phase."""

    def budgets(self) -> dict[str, QuantityBudget]:
        return {
            "cpu_s": self.cpu_s,
            "wall_s": self.wall_s,
            "off_cpu_s": self.off_cpu_s,
            "peak_memory_mb": self.peak_memory_mb,
            "log_bytes": self.log_bytes,
            "audit_bytes": self.audit_bytes,
            "artifact_bytes": self.artifact_bytes,
            "disk_bytes": self.disk_bytes,
            "peak_threads": self.peak_threads,
        }


def phase_budget_findings(
    candidate: Evaluation,
    parent: Evaluation | None,
    config: PhaseBudgetConfig,
    verdict: VerdictKind = "review",
) -> list[Finding]:
    """One finding per (phase, quantity) over budget or escaping measurement; [] without a parent."""
    if not config.enabled or parent is None or parent is candidate:
        return []
    by_role: dict[str, list[PhaseUsage]] = {}
    for done in timed_phases(parent.phases):
        if done.usage is not None:
            by_role.setdefault(phase_role(done.phase), []).append(done.usage)
    found: list[Finding] = []
    for phase in timed_phases(candidate.phases):
        roles = [role for role in _fallback_roles(phase.phase) if role in by_role]
        if phase.usage is None or not roles:
            continue
        usages, own_role = by_role[roles[0]], roles[0] == phase_role(phase.phase)
        for quantity, budget in config.budgets().items():
            # The parent's dearest phase of the same role: the controls' seeds are drawn in secret
            # for each evaluation, so the parent's may be others than the candidate's.
            theirs = max(usages, key=lambda usage: _value(usage, quantity))
            if quantity == "wall_s" and not config.wall_beside_off_cpu and _both_off_cpu(phase.usage, theirs):
                continue
            if not own_role and getattr(phase.usage, quantity) is None:
                continue  # a control measures less than the plain phase it is held to
            finding = _compare(phase.phase, quantity, phase.usage, theirs, budget, verdict)
            if finding is not None:
                found.append(finding)
    return found


def phase_role(phase: str) -> str:
    """A phase's role, whatever seed it ran: `train-seed-2-relabelled` → `train-seed-*-relabelled`."""
    return SEED.sub("seed-*", phase)


def _fallback_roles(phase: str) -> list[str]:
    """The roles a phase is compared with, nearest first: its own, then with its trailing qualifiers
    dropped while it still names a seed (`train-seed-*-relabelled-2`, `train-seed-*-relabelled`,
    `train-seed-*`): a control the parent did not run is held to the parent's plain phase."""
    role = phase_role(phase)
    roles = [role]
    while "seed-*-" in role:
        role = role.rpartition("-")[0]
        roles.append(role)
    return roles


def _value(usage: PhaseUsage, quantity: str) -> float:
    value = getattr(usage, quantity)
    return float("-inf") if value is None else float(value)


def _both_off_cpu(mine: PhaseUsage, theirs: PhaseUsage) -> bool:
    return mine.off_cpu_s is not None and theirs.off_cpu_s is not None


def _compare(
    phase: str,
    quantity: str,
    mine: PhaseUsage,
    theirs: PhaseUsage,
    budget: QuantityBudget,
    verdict: VerdictKind,
) -> Finding | None:
    value: float | None = getattr(mine, quantity)
    reference: float | None = getattr(theirs, quantity)
    evidence: dict[str, Any] = {
        "phase": phase,
        "quantity": quantity,
        "candidate": value,
        "parent": reference,
        "threshold": budget.factor,
        "floor": budget.floor,
        "accounting": mine.accounting,
        "parent_accounting": theirs.accounting,
    }
    if reference is None:
        return None  # nothing to compare with: see the module docstring
    if value is None and quantity in SAMPLED and mine.off_cpu_s is not None:
        # The thread sampler ran (the off-CPU time is its reading too) and the phase ended before
        # its first sample: too short to count threads in, which is no escape. A harness phase of
        # a hundredth of a second (the relabelled control's restore) was sampled once in a parent
        # on a loaded machine, and every candidate after it was "unmeasured".
        return None
    if value is None:
        return Finding(
            rule_id=RULE_ID,
            verdict=verdict,
            message=(
                f"{phase}: {quantity} unmeasured for the candidate ({mine.accounting}) but "
                f"{reference:g} for the parent ({theirs.accounting}): the phase escaped its measurement"
            ),
            evidence={**evidence, "ratio": None, "unmeasured": True},
        )
    ratio = value / reference if reference > 0 else float("inf")
    if value <= budget.factor * reference or value - reference < budget.floor:
        return None
    return Finding(
        rule_id=RULE_ID,
        verdict=verdict,
        message=(
            f"{phase}: {quantity} {value:g} is {ratio:.1f}x the parent's {reference:g} for the same phase "
            f"(allowed {budget.factor:g}x, and at least {budget.floor:g} more): work or data moved "
            "where the budget does not look?"
        ),
        evidence={**evidence, "ratio": ratio if ratio != float("inf") else None},
    )
