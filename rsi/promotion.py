"""Successor promotion for bootstrapping targets: an accepted student becomes the next teacher.

When a generation of a target with a `[teacher]` table is accepted, the first seed's trained
artifact (kept by the trusted evaluator in the run's teacher store) is mounted as the teacher of
every later sandbox, and a `promotion` event records both hashes and both metrics, scored by the
harness on the held-out set. A resumed run mounts the teacher its last promotion names.

    start_teacher(run_dir, target, spec, evaluator)     # gen-0, or the last promoted one
    promote(candidate, evaluator)                        # at accept (after core.accept): one call
"""

from __future__ import annotations

from pathlib import Path

from core.contracts import Candidate
from core.errors import ConfigError
from core.events import PromotionRecorded
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
    return PromotionRecorded.model_validate(promotions[-1].data).teacher_sha256 if promotions else None


def promote(candidate: Candidate, evaluator: TrustedEvaluator) -> None:
    """Mount the accepted candidate's student as the teacher of every later sandbox (its
    `promotion` event is recorded with the commit, by core.accept)."""
    if evaluator.teachers is not None and candidate.evaluation.student_sha256 is not None:
        evaluator.use_teacher(candidate.evaluation.student_sha256)
