"""Successor promotion for bootstrapping targets: an accepted student becomes the next teacher.

When a generation of a target with a `[teacher]` table is accepted, the first seed's trained
artifact (kept by the trusted evaluator in the run's teacher store) is mounted as the teacher of
every later sandbox, and a `promotion` event records both hashes and both metrics, scored by the
harness on the held-out set. A resumed run mounts the teacher its last promotion names.

    teacher = start_teacher(config, spec, evaluator)          # gen-0, or the last promoted one
    promote(candidate, evaluator, record)                     # at accept: one call
"""

from __future__ import annotations

from pathlib import Path

from core.accept import Record
from core.contracts import Candidate
from core.errors import ConfigError
from core.fold import live_events
from core.target import TargetSpec
from core.trajectory import TRAJECTORY_FILE, TrajectoryReader
from sandbox.evaluate import TrustedEvaluator
from sandbox.teacher import TeacherStore

TEACHERS_DIR = "teachers"


def start_teacher(run_dir: Path, target: Path, spec: TargetSpec, evaluator: TrustedEvaluator) -> str | None:
    """Mount the run's current teacher: the last promoted one, else the target's gen-0 teacher."""
    if spec.teacher is None:
        return None
    store = evaluator.teachers = TeacherStore(run_dir / TEACHERS_DIR)
    initial = target / spec.teacher.initial
    if not initial.is_file():
        raise ConfigError(
            f"{target / 'rsi.toml'}: [teacher].initial = {spec.teacher.initial!r}: no such file in the "
            "target; it names the generation-0 teacher (a data-only .npz) the first students learn from."
        )
    sha = store.put(initial.read_bytes(), where=str(initial))
    sha = last_promoted(run_dir) or sha
    evaluator.use_teacher(sha)
    return sha


def last_promoted(run_dir: Path) -> str | None:
    path = run_dir / TRAJECTORY_FILE
    if not path.is_file():
        return None
    promotions = [e for e in live_events(list(TrajectoryReader(path).events())) if e.kind == "promotion"]
    return str(promotions[-1].data["teacher_sha256"]) if promotions else None


def promote(candidate: Candidate, evaluator: TrustedEvaluator, record: Record) -> None:
    """Make the accepted candidate's student the teacher of every later sandbox, and record it."""
    evaluation = candidate.evaluation
    if evaluator.teachers is None or evaluation.student_sha256 is None:
        return
    parent = candidate.parent_evaluation
    teacher_metric = parent.teacher_metric if parent and parent.teacher_metric is not None else None
    metric = evaluation.metric
    first_seed = evaluation.seeds[0] if evaluation.seeds else None
    student_metric = metric.per_seed.get(first_seed) if metric and first_seed is not None else None
    previous = evaluator.teacher_sha
    evaluator.use_teacher(evaluation.student_sha256)
    record(
        "promotion",
        {
            "previous_teacher_sha256": previous,
            "teacher_sha256": evaluation.student_sha256,
            "teacher_metric": teacher_metric if teacher_metric is not None else evaluation.teacher_metric,
            "student_metric": student_metric,
            "student_seed": first_seed,
        },
        candidate.generation,
    )
