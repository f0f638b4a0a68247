"""Write a bootstrapping run's trajectory without running anything: the events a run records (the
promotion through core.accept), with chosen scores, lockbox scores and train-phase compute."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from core.accept import record_promotion
from core.contracts import (
    Candidate,
    Decision,
    Evaluation,
    MetricResult,
    PhaseLog,
    PhaseUsage,
    Proposal,
    TestResult,
    Verdict,
)
from core.trajectory import Event, TrajectoryWriter

GEN0_TEACHER = hashlib.sha256(b"gen-0 teacher").hexdigest()


@dataclass
class Generation:
    """One generation as measured: per-seed selection and lockbox scores, train CPU per seed."""

    scores: tuple[float, float]
    lockbox: tuple[float, float]
    cpu_s: float = 2.0
    accepted: bool = True
    paused: bool = False
    """Queued by a `--pause-on-promotion` checkpoint (the run stops there, as the loop does)."""


def _evaluation(gen: Generation, parent: str, teacher: str, teacher_score: float, number: int) -> Evaluation:
    metric = MetricResult(name="accuracy", direction="higher", per_seed=dict(enumerate(gen.scores)))
    lockbox = MetricResult(name="accuracy", direction="higher", per_seed=dict(enumerate(gen.lockbox)))
    phases = [
        PhaseLog(
            phase=f"train-seed-{seed}",
            command="python train.py",
            exit_code=0,
            duration_s=gen.cpu_s,
            output_tail="",
            usage=PhaseUsage(cpu_s=gen.cpu_s + 0.1 * seed, wall_s=gen.cpu_s),
        )
        for seed in (0, 1)
    ]
    return Evaluation(
        parent_commit=parent,
        diff_sha256=hashlib.sha256(str(number).encode()).hexdigest(),
        backend="bwrap",
        ok=True,
        tests=TestResult(exit_code=0, passed=10),
        metric=metric,
        lockbox=lockbox,
        seeds=[0, 1],
        phases=phases,
        teacher_sha256=teacher,
        teacher_metric=teacher_score,
        student_sha256=hashlib.sha256(f"student {number}".encode()).hexdigest(),
    )


AT = "2026-11-29T21:00:00+00:00"
"""Every decision's time: a screen that shows it looks the same on every run."""


def _diff(number: int) -> str:
    """A generation's change: more teacher votes per answer."""
    return (
        "--- a/config.py\n+++ b/config.py\n@@ -10,3 +10,3 @@\n     min_agreement: float = 0.5\n"
        f"-    teacher_votes: int = {number}\n+    teacher_votes: int = {number + 1}\n     window: int = 2\n"
    )


def evaluation_of(gen: Generation, number: int) -> Evaluation:
    """Generation `number`'s evaluation as write_bootstrap_run records it, for a chain of promotions
    from the generation-0 teacher (each generation learned from the previous one's student)."""
    teacher = GEN0_TEACHER if number <= 1 else hashlib.sha256(f"student {number - 1}".encode()).hexdigest()
    return _evaluation(gen, f"c{number - 1}" * 20, teacher, 0.05, number)


def _pause(writer: TrajectoryWriter, number: int, evaluation: Evaluation) -> None:
    message = (
        f"generation {number}: accepting it promotes its student {(evaluation.student_sha256 or '')[:12]}"
    )
    decision = Decision(decision="queue", by="checkpoint", reason=f"needs a human: {message}", at=AT)
    writer.append("decision", decision.model_dump(mode="json"), number)
    checkpoint = {"key": f"promotion:{number}", "kind": "promotion", "message": message}
    writer.append("checkpoint", checkpoint, number)
    writer.append("run_finished", {"status": "paused"})


def write_bootstrap_run(
    run_dir: Path, baseline: Generation, generations: list[Generation], compute_budget_s: float | None = None
) -> Path:
    """The trajectory of a bootstrapping run: the baseline, then each generation decided as given;
    every accepted one promotes its first seed's student. Returns the trajectory's path."""
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "trajectory.jsonl"
    with TrajectoryWriter.open(path, run_id="bootstrap") as writer:

        def record(kind: str, data: dict[str, object], generation: int | None) -> Event:
            return writer.append(kind, data, generation)

        teacher = {"initial": "teacher0.npz", "compute_budget_s": compute_budget_s}
        started = {
            "config": {"proposer": "offline"},
            "policy": {"name": "default"},
            "target": {"teacher": teacher},
        }
        writer.append("run_started", started)
        parent, teacher, teacher_score = "c0" * 20, GEN0_TEACHER, 0.05
        parent_eval = _evaluation(baseline, "", teacher, teacher_score, 0)
        writer.append("baseline", {"commit": parent, "evaluation": parent_eval.model_dump(mode="json")}, 0)
        for number, gen in enumerate(generations, start=1):
            proposal = Proposal(
                diff=_diff(number), rationale=f"teacher_votes {number} → {number + 1}", proposer="offline"
            )
            writer.append("proposal_started", {"parent": parent, "proposer": "offline"}, number)
            writer.append("proposal", proposal.model_dump(mode="json"), number)
            evaluation = _evaluation(gen, parent, teacher, teacher_score, number)
            writer.append("evaluation", evaluation.model_dump(mode="json"), number)
            verdict = Verdict(verdict="allow", policy_name="default", policy_hash="h")
            writer.append("verdict", verdict.model_dump(mode="json"), number)
            if gen.paused:
                _pause(writer, number, evaluation)
                return path
            decision = Decision(decision="accept" if gen.accepted else "reject", by="policy", at=AT)
            writer.append("decision", decision.model_dump(mode="json"), number)
            if not gen.accepted:
                continue
            parent = f"c{number}" * 20
            writer.append("commit", {"commit": parent, "tag": f"gen-{number}"}, number)
            candidate = Candidate(
                generation=number,
                parent_commit=evaluation.parent_commit,
                proposal=proposal,
                evaluation=evaluation,
                parent_evaluation=parent_eval,
                verdict=verdict,
            )
            record_promotion(candidate, record)
            assert evaluation.student_sha256 is not None
            parent_eval, teacher, teacher_score = evaluation, evaluation.student_sha256, gen.scores[0]
        writer.append("run_finished", {"status": "completed"})
    return path


BASELINE_GENERATION = Generation(scores=(0.06, 0.07), lockbox=(0.06, 0.07))
"""A baseline whose students score about as well as the generation-0 teacher (0.05)."""
