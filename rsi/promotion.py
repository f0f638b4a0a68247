"""Successor promotion for bootstrapping targets: an accepted student becomes the next teacher.

When a generation of a target with a `[teacher]` table is accepted, the first seed's trained
artifact (kept by the trusted evaluator in the run's teacher store) is mounted as the teacher of
every later sandbox, and a `promotion` event records both hashes and both metrics, scored by the
harness on the held-out set. A resumed run mounts the teacher its last promotion names.

    start_teacher(run_dir, target, spec, evaluator)     # gen-0, or the last promoted one
    promote(candidate, evaluator)                        # at accept (after core.accept): one call
    judge_successors(policy, run_dir, spec)              # the policy, with the succession check
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from core.contracts import VERDICT_ORDER, Candidate, Evaluation, Policy, Proposal, Verdict
from core.diff import PatchedTree
from core.errors import ConfigError
from core.events import PromotionRecorded
from core.fold import live_events
from core.succession import SuccessionLimits, candidate_compounding
from core.target import TargetSpec
from core.trajectory import TRAJECTORY_FILE, TrajectoryReader
from sandbox.evaluate import TrustedEvaluator
from sandbox.teacher import TeacherStore

TEACHERS_DIR = "teachers"


def start_teacher(run_dir: Path, target: Path, spec: TargetSpec, evaluator: TrustedEvaluator) -> str | None:
    """Mount the run's current teacher: the last promoted one, else the target's gen-0 teacher."""
    if spec.teacher is None:
        return None
    initial = initial_teacher(target, spec.teacher.initial)
    store = evaluator.teachers = TeacherStore(run_dir / TEACHERS_DIR)
    sha = store.put(initial.read_bytes(), where=str(initial))
    sha = last_promoted(run_dir) or sha
    evaluator.use_teacher(sha)
    return sha


def initial_teacher(target: Path, initial: str) -> Path:
    """The generation-0 teacher's file: a file of the target's own tree (a link out of it is refused)."""
    path = target / initial
    where = f"{target / 'rsi.toml'}: [teacher].initial = {initial!r}"
    if not path.is_file():
        raise ConfigError(
            f"{where}: no such file in the target; it names the generation-0 teacher (a data-only "
            ".npz) the first students learn from."
        )
    if not path.resolve().is_relative_to(target.resolve()):
        raise ConfigError(
            f"{where} leads outside the target (to {path.resolve()}): the generation-0 teacher must "
            "be a file of the target's own tree, not a link out of it. Copy the .npz into the target "
            "and name that copy."
        )
    return path


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


@dataclass
class SuccessionJudge:
    """The run's policy, and one more check for a bootstrapping target: a candidate whose promotion
    would complete a streak of successors gaining on the selection set but not on the lockbox
    (`succession.compounding`, core.succession) goes to a human (`review`), whatever the policy says
    short of `deny`. Its name and hash are the policy's: the check is the harness's, not a rule."""

    policy: Policy
    trajectory: Path
    """The run's trajectory: the lineage of successors so far."""
    limits: SuccessionLimits = field(default_factory=SuccessionLimits)
    name: str = field(init=False)
    content_hash: str = field(init=False)
    confidence: float = field(init=False)

    def __post_init__(self) -> None:
        self.name, self.content_hash = self.policy.name, self.policy.content_hash
        self.confidence = self.policy.confidence

    def check(
        self,
        proposal: Proposal,
        evaluation: Evaluation | None,
        parent: Evaluation | None,
        tree: Path | None = None,
        patched: PatchedTree | None = None,
    ) -> Verdict:
        verdict = self.policy.check(proposal, evaluation, parent, tree=tree, patched=patched)
        if evaluation is None or evaluation.teacher_sha256 is None or not self.trajectory.is_file():
            return verdict
        found = candidate_compounding(
            list(TrajectoryReader(self.trajectory).events()), evaluation, self.limits
        )
        if found is None:
            return verdict
        strictest = max(verdict.verdict, found.verdict, key=VERDICT_ORDER.__getitem__)
        return verdict.model_copy(update={"verdict": strictest, "findings": [*verdict.findings, found]})


def judge_successors(policy: Policy, run_dir: Path, spec: TargetSpec) -> Policy:
    """The policy a run judges by: for a bootstrapping target, with the succession check."""
    return SuccessionJudge(policy, run_dir / TRAJECTORY_FILE) if spec.teacher is not None else policy
