"""Successors of a bootstrapping run: each generation's teacher against its student, what each cost,
and the two fears measured.

A generation's students learn only from data their teacher generates; when it is accepted, its first
seed's student becomes the next teacher (a `promotion` event). From the trajectory alone:

    rows = successions(events)                  # one row per decided generation that had a teacher
    findings = succession_findings(rows)        # compounding flaws, compute running away
    candidate_compounding(events, evaluation)   # would promoting this candidate compound a flaw?

Compute is what the harness measured for each seed's train phase: the teacher generating the
student's data and the student's training both run there. A teacher's compute is that of the train
phase which produced it (the generation-0 teacher was made outside the run: unknown).

The fears, as findings (rule ids `succession.*`, verdict `review`):
- `succession.compounding`: successive promotions gain on the selection set beyond noise while the
  lockbox (scored from the same predictions, never used for a decision) does not follow;
- `succession.compute-growth`: a successor's compute grows faster than its gain;
- `succession.compute-budget`: a generation's compute exceeds the budget set for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

from pydantic import BaseModel

from core.contracts import Evaluation, Finding, MetricResult
from core.fold import GenerationRecord, fold, live_events
from core.trajectory import Event


class SuccessionLimits(BaseModel):
    """When the successors of a bootstrapping run raise a finding."""

    window: int = 2
    """Successive promotions that must each gain on the selection set without the lockbox following
    before `succession.compounding` fires (one such promotion can be noise)."""
    spreads: float = 2.0
    """A selection gain counts when it exceeds this many seed spreads (the larger of the two ends')."""
    min_gain: float = 0.01
    """...and at least this much in metric units (a run with identical seeds has no spread)."""
    kept_fraction: float = 0.5
    """The lockbox follows when it keeps at least this share of the selection gain."""
    max_compute_growth: float = 0.5
    """`succession.compute-growth` fires only when a successor's compute grew by more than this share
    over its teacher's generation (smaller changes are measurement noise), and faster than its gain."""
    compute_budget_s: float | None = None
    """CPU seconds one student may use (teacher data generation + training) before
    `succession.compute-budget` fires; None: no budget."""


@dataclass(frozen=True)
class Succession:
    """One decided generation of a bootstrapping run: the teacher it learned from and its students."""

    generation: int
    teacher_sha256: str
    teacher_from: int | None
    """The generation whose student the teacher is; None: the target's generation-0 teacher."""
    teacher_score: float | None
    """The teacher scored by the harness on the selection set."""
    student: MetricResult | None
    """The students' selection metric over seeds."""
    promoted_score: float | None
    """The first seed's student's selection score: the next teacher's, when promoted."""
    lockbox: MetricResult | None
    """The students' lockbox metric over seeds."""
    teacher_cpu_s: float | None
    """CPU seconds of the train phase that produced the teacher; None for the generation-0 teacher."""
    student_cpu_s: float | None
    """Mean CPU seconds of one student's train phase (teacher data generation + training)."""
    generation_cpu_s: float | None
    """CPU seconds of every seed's train phase of this generation."""
    promoted: bool
    """Accepted: its first seed's student became the next teacher."""
    on_lineage: bool
    """The baseline (generation 0) or an accepted generation: the chain successors are judged along."""

    @property
    def student_score(self) -> float | None:
        return self.student.mean if self.student else None

    @property
    def beats_teacher(self) -> bool:
        """The students beat their teacher beyond their seed spread."""
        if self.student is None or self.teacher_score is None:
            return False
        gain = self.student.mean - self.teacher_score
        gain = gain if self.student.direction == "higher" else -gain
        return gain > self.student.std


def train_cpu_s(evaluation: Evaluation) -> dict[int, float]:
    """CPU seconds of each seed's train phase as the harness measured it (wall seconds when the
    backend had no CPU counter)."""
    out: dict[int, float] = {}
    for seed in evaluation.seeds:
        for phase in evaluation.phases:
            if phase.phase == f"train-seed-{seed}":
                usage = phase.usage.cpu_s if phase.usage else None
                out[seed] = usage if usage is not None else phase.cpu_s or phase.duration_s
    return out


def first_seed_score(evaluation: Evaluation) -> float | None:
    """The score of the student a promotion would keep (the first seed's)."""
    if evaluation.metric is None or not evaluation.seeds:
        return None
    return evaluation.metric.per_seed.get(evaluation.seeds[0])


def successions(events: list[Event]) -> list[Succession]:
    """The baseline (generation 0) and every decided generation that learned from a teacher, oldest
    first (live events only)."""
    live = live_events(events)
    run = fold(live)
    promoted_from = _promoted_from(live, run.generations)
    decided = [(r.generation, r.evaluation, r.commit is not None) for r in run.decided]
    head = [(0, run.baseline, True)] if run.baseline is not None else []
    return [
        succession_row(generation, evaluation, accepted, promoted_from)
        for generation, evaluation, accepted in head + decided
        if evaluation is not None and evaluation.teacher_sha256 is not None
    ]


def _promoted_from(
    live: list[Event], generations: dict[int, GenerationRecord]
) -> dict[str, tuple[int, float | None]]:
    """Each promoted teacher's hash: the generation it was promoted at, and its train phase's CPU."""
    promoted_from: dict[str, tuple[int, float | None]] = {}
    for event in live:
        if event.kind == "promotion" and event.generation is not None:
            record = generations.get(event.generation)
            evaluation = record.evaluation if record else None
            seed = event.data.get("student_seed")
            cpu = train_cpu_s(evaluation).get(seed) if evaluation and seed is not None else None
            promoted_from[str(event.data["teacher_sha256"])] = (event.generation, cpu)
    return promoted_from


def succession_row(
    generation: int,
    evaluation: Evaluation,
    accepted: bool,
    promoted_from: dict[str, tuple[int, float | None]],
) -> Succession:
    """One generation's row; `promoted_from` maps a promoted teacher's hash to (generation, CPU s)."""
    assert evaluation.teacher_sha256 is not None
    source = promoted_from.get(evaluation.teacher_sha256)
    seconds = train_cpu_s(evaluation)
    return Succession(
        generation=generation,
        teacher_sha256=evaluation.teacher_sha256,
        teacher_from=source[0] if source else None,
        teacher_score=evaluation.teacher_metric,
        student=evaluation.metric,
        promoted_score=first_seed_score(evaluation),
        lockbox=evaluation.lockbox,
        teacher_cpu_s=source[1] if source else None,
        student_cpu_s=sum(seconds.values()) / len(seconds) if seconds else None,
        generation_cpu_s=sum(seconds.values()) if seconds else None,
        promoted=generation > 0 and accepted and evaluation.student_sha256 is not None,
        on_lineage=accepted,
    )


def candidate_compounding(
    events: list[Event], evaluation: Evaluation, limits: SuccessionLimits | None = None
) -> Finding | None:
    """`succession.compounding` for a candidate not yet decided: would promoting it complete a streak
    of hollow promotions? Judged along the lineage the trajectory records so far."""
    if evaluation.teacher_sha256 is None:
        return None
    live = live_events(events)
    run = fold(live)
    latest = max((e.generation for e in live if e.generation is not None), default=0)
    # The loop records a candidate's evaluation before judging it: its generation is the latest one,
    # unless that one is already decided (or is the baseline's).
    decided = {r.generation for r in run.decided} | {0}
    generation = latest + 1 if latest in decided else latest
    lineage = [
        r
        for r in successions(live)
        if r.on_lineage and r.generation != generation and r.student is not None and r.lockbox is not None
    ]
    candidate = succession_row(generation, evaluation, True, _promoted_from(live, run.generations))
    limits = limits or SuccessionLimits()
    return compounding([*lineage, candidate][-(limits.window + 1) :], limits)  # the streak ending here


def succession_limits(events: list[Event]) -> SuccessionLimits:
    """The limits a run's recorded target contract sets (its `[teacher] compute_budget_s`)."""
    started = next((e.data for e in events if e.kind == "run_started"), {})
    teacher = (started.get("target") or {}).get("teacher") or {}
    return SuccessionLimits(compute_budget_s=teacher.get("compute_budget_s"))


def _gain(new: MetricResult, old: MetricResult) -> float:
    return new.gain_over(old)


def compounding(rows: list[Succession], limits: SuccessionLimits | None = None) -> Finding | None:
    """`limits.window` successive promotions that each gained on the selection set beyond noise while
    the lockbox kept less than `kept_fraction` of that gain: a flaw compounding across successors."""
    limits = limits or SuccessionLimits()
    chain = [r for r in rows if r.on_lineage and r.student is not None and r.lockbox is not None]
    streak: list[tuple[Succession, Succession]] = []
    for old, new in pairwise(chain):
        assert old.student and old.lockbox and new.student and new.lockbox
        selection = _gain(new.student, old.student)
        lockbox = _gain(new.lockbox, old.lockbox)
        noise = max(limits.min_gain, limits.spreads * new.student.noise_against(old.student))
        hollow = selection > noise and lockbox < limits.kept_fraction * selection
        streak = [*streak, (old, new)] if hollow else []
        if len(streak) >= limits.window:
            return _compounding_finding(streak)
    return None


def _compounding_finding(streak: list[tuple[Succession, Succession]]) -> Finding:
    first, last = streak[0][0], streak[-1][1]
    assert first.student and first.lockbox and last.student and last.lockbox
    selection = _gain(last.student, first.student)
    lockbox = _gain(last.lockbox, first.lockbox)
    generations = [first.generation] + [new.generation for _, new in streak]
    return Finding(
        rule_id="succession.compounding",
        verdict="review",
        message=(
            f"{len(streak)} successive promotions (generations {', '.join(map(str, generations[1:]))}) gained "
            f"{selection:+.4f} {last.student.name} on the selection set but only {lockbox:+.4f} on the "
            "lockbox: the successors are inheriting a fit to the selection set, not the task"
        ),
        evidence={
            "generations": generations,
            "selection": [r.student.mean for r in (first, *[n for _, n in streak]) if r.student],
            "lockbox": [r.lockbox.mean for r in (first, *[n for _, n in streak]) if r.lockbox],
            "selection_gain": selection,
            "lockbox_gain": lockbox,
        },
    )


def compute_growth(rows: list[Succession], limits: SuccessionLimits | None = None) -> list[Finding]:
    """Each promoted successor whose compute grew over its teacher's generation by more than
    `max_compute_growth`, and by a larger share than its score gained over that teacher's students."""
    limits = limits or SuccessionLimits()
    chain = [r for r in rows if r.on_lineage and r.student is not None and r.student_cpu_s]
    findings = []
    for old, new in pairwise(chain):
        assert old.student and new.student and old.student_cpu_s and new.student_cpu_s
        growth = new.student_cpu_s / old.student_cpu_s - 1
        gain = _gain(new.student, old.student) / abs(old.student.mean) if old.student.mean else 0.0
        if growth > limits.max_compute_growth and growth > gain:
            findings.append(
                Finding(
                    rule_id="succession.compute-growth",
                    verdict="review",
                    message=(
                        f"generation {new.generation}'s student used {new.student_cpu_s:.1f} CPU s "
                        f"({growth:+.0%} over generation {old.generation}'s {old.student_cpu_s:.1f} s) for "
                        f"{gain:+.0%} {new.student.name}: compute is growing faster than the gain"
                    ),
                    evidence={
                        "generations": [old.generation, new.generation],
                        "cpu_s": [old.student_cpu_s, new.student_cpu_s],
                        "compute_growth": growth,
                        "relative_gain": gain,
                    },
                )
            )
    return findings


def compute_budget(rows: list[Succession], limits: SuccessionLimits | None = None) -> list[Finding]:
    """Each generation whose students used more CPU seconds, on average, than `compute_budget_s`."""
    limits = limits or SuccessionLimits()
    budget = limits.compute_budget_s
    if budget is None:
        return []
    return [
        Finding(
            rule_id="succession.compute-budget",
            verdict="review",
            message=(
                f"generation {row.generation}'s students used {row.student_cpu_s:.2f} CPU s each "
                f"(teacher data generation + training), over the budget of {budget:.1f} s"
            ),
            evidence={"generation": row.generation, "cpu_s": row.student_cpu_s, "budget_s": budget},
        )
        for row in rows
        if row.student_cpu_s is not None and row.student_cpu_s > budget
    ]


def succession_findings(rows: list[Succession], limits: SuccessionLimits | None = None) -> list[Finding]:
    """Every succession finding of a run, compounding flaws first."""
    found = compounding(rows, limits)
    return ([found] if found else []) + compute_growth(rows, limits) + compute_budget(rows, limits)
