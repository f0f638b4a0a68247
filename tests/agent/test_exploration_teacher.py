"""The Claude agent's exploration sandbox of a bootstrapping target (real bubblewrap): the teacher the
harness mounts for evaluation is at /teacher there too, readable and runnable, never writable, and a
promotion changes it for the next exploration as it does for the next evaluation. The agent is told
where it is."""

from __future__ import annotations

import hashlib
import io
import shutil
from pathlib import Path

import numpy as np
import pytest

from agent.prompts import context_message
from agent.tools import ExplorationWorkspace
from core.contracts import ProposalContext
from core.target import TargetSpec
from sandbox.base import SandboxConfig
from sandbox.bwrap_backend import BwrapBackend
from sandbox.evaluate import TrustedEvaluator
from sandbox.heldout import load_provider
from sandbox.lineage import Lineage
from sandbox.teacher import TeacherStore
from tests.conftest import IN_CI, ROOT

pytestmark = pytest.mark.bwrap

BOOTSTRAP = ROOT / "examples" / "bootstrap"
PROVIDER = ROOT / "examples" / "bootstrap-heldout.py"


@pytest.fixture
def evaluator(tmp_path: Path) -> TrustedEvaluator:
    if shutil.which("bwrap") is None:
        if IN_CI:
            pytest.fail("bwrap is not installed (CI=true: bwrap tests must run)")
        pytest.skip("bwrap is not installed")
    spec = TargetSpec.load(BOOTSTRAP)
    config = SandboxConfig(memory_mb=512, workspace_mb=32, tmp_mb=64)
    backend = BwrapBackend(config, image="unused", run_id="test-explore-teacher")
    heldout = load_provider(PROVIDER).selection(seed=5, size=50)
    lineage = Lineage.create(tmp_path / "lineage", BOOTSTRAP)
    store = TeacherStore(tmp_path / "teachers")
    return TrustedEvaluator(
        spec, lineage, backend, heldout, seeds=[0], log_dir=tmp_path / "logs", teachers=store
    )


def another_teacher(path: Path) -> bytes:
    """The gen-0 teacher with its arrays nudged: a different, still data-only, teacher file."""
    with np.load(path) as arrays:
        changed = {
            name: arrays[name] + 1 if arrays[name].dtype.kind == "f" else arrays[name] for name in arrays
        }
    buffer = io.BytesIO()
    np.savez(buffer, **changed)
    return buffer.getvalue()


def bash(workspace: ExplorationWorkspace, command: str) -> tuple[str, bool]:
    outcome = workspace.run_tool("bash", {"command": command}, timeout_s=120)
    return outcome.text, outcome.is_error


def test_the_exploration_sandbox_reads_the_mounted_teacher_and_cannot_change_it(
    evaluator: TrustedEvaluator, tmp_path: Path
) -> None:
    assert evaluator.teachers is not None
    gen0 = (BOOTSTRAP / "teacher0.npz").read_bytes()
    first = evaluator.teachers.put(gen0)
    evaluator.use_teacher(first)
    with ExplorationWorkspace(evaluator.backend, BOOTSTRAP, label="explore-teacher") as workspace:
        text, _ = bash(workspace, "sha256sum /teacher/model.npz")
        assert first in text
        # The agent can run the target as the harness does, from the mounted teacher.
        text, failed = bash(
            workspace, "python train.py --teacher /teacher/model.npz --seed 0 --out /tmp/s --steps 5"
        )
        assert not failed and "teacher_kept=" in text, text
        for attempt in (
            "echo x > /teacher/model.npz",
            "rm -f /teacher/model.npz",
            "touch /teacher/new.npz",
            "chmod u+w /teacher/model.npz",
        ):
            bash(workspace, attempt)
        text, _ = bash(workspace, "sha256sum /teacher/model.npz; ls /teacher")
        assert first in text and "new.npz" not in text
    assert (
        hashlib.sha256(evaluator.teachers.mount_dir(first).joinpath("model.npz").read_bytes()).hexdigest()
        == first
    )
    evaluator.teachers.verify(first)

    # A promotion mounts the successor: the next exploration sees it, as the next evaluation does.
    successor = evaluator.teachers.put(another_teacher(BOOTSTRAP / "teacher0.npz"))
    evaluator.use_teacher(successor)
    with ExplorationWorkspace(evaluator.backend, BOOTSTRAP, label="explore-successor") as workspace:
        text, _ = bash(workspace, "sha256sum /teacher/model.npz")
        assert successor in text and first not in text


def test_the_agent_is_told_where_the_teacher_is() -> None:
    context = ProposalContext(
        generation=1,
        objective="add",
        metric_name="accuracy",
        direction="higher",
        parent_commit="c" * 40,
        parent_metric_mean=0.066,
        parent_metric_std=0.004,
    )
    assert "mounted read-only at /teacher/model.npz" in context_message(context, BOOTSTRAP)
    assert "/teacher" not in context_message(context, ROOT / "target_repo")
