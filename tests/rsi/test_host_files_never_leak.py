"""A diff that tries to copy a host file into the candidate, through the real loop (bwrap backend):
the secret reaches no candidate tree, log, trajectory, lineage commit or proposal context."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from core.contracts import Proposal, ProposalContext
from core.trajectory import TrajectoryReader
from rsi.compose import build_run
from rsi.config import RunConfig
from sandbox.base import SandboxConfig
from sandbox.lineage import Lineage
from tests.conftest import IN_CI, TARGET, make_diff

pytestmark = pytest.mark.bwrap

SECRET = "host-only-secret-4be1d09c"


class ScriptedProposer:
    """Returns the given diffs in order and keeps every context it was shown."""

    name = "scripted"

    def __init__(self, diffs: list[str]) -> None:
        self.diffs = list(diffs)
        self.contexts: list[ProposalContext] = []

    def propose(self, context: ProposalContext, parent_tree: Path) -> Proposal:
        self.contexts.append(context)
        return Proposal(diff=self.diffs.pop(0), rationale="scripted", proposer=self.name)


def _steal(kind: str, source: str, markers: bool) -> str:
    """A git diff that copies (or renames) `source` into the tree as stolen.txt."""
    text = f"diff --git a/{source} b/stolen.txt\nsimilarity index 90%\n{kind} from {source}\n{kind} to stolen.txt\n"
    if markers:
        text += f"--- a/{source}\n+++ b/stolen.txt\n@@ -1 +1,2 @@\n guessed first line\n+more\n"
    return text


def _all_text(root: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in root.rglob("*") if p.is_file())


def test_a_host_file_never_reaches_the_run(tmp_path: Path) -> None:
    if shutil.which("bwrap") is None:
        if IN_CI:
            pytest.fail("bwrap is not installed (CI=true: bwrap tests must run)")
        pytest.skip("bwrap is not installed")
    secret = tmp_path / "outside" / "secret.txt"
    secret.parent.mkdir()
    secret.write_text(f"{SECRET}\n")
    climb = "../" * 24 + str(secret).lstrip("/")  # escapes any stage, wherever it is
    stolen = [
        _steal("copy", str(secret), markers=False),
        _steal("rename", climb, markers=True),
        _steal("copy", "/etc/hostname", markers=False),
        f"diff --git a/config.py b/stolen.txt\ncopy from {secret}\ncopy to stolen.txt\n",
    ]
    honest = make_diff(TARGET, "config.py", "input_range: float = 0.5", "input_range: float = 1.0")
    proposer = ScriptedProposer([*stolen, honest])
    config = RunConfig(
        target=TARGET,
        run_dir=tmp_path / "run",
        generations=len(stolen) + 1,
        seeds=[0],
        heldout_size=300,
        backend="bwrap",
        sandbox=SandboxConfig(memory_mb=512, workspace_mb=32, tmp_mb=64, pids_limit=64),
    )
    loop, parts = build_run(config)
    parts.proposer = proposer
    summary = loop.run()
    parts.trajectory.close()

    assert summary.status == "completed", summary.reason
    events = list(TrajectoryReader(config.run_dir / "trajectory.jsonl").events())
    evaluations = {e.generation: e.data for e in events if e.kind == "evaluation"}
    for generation in range(1, len(stolen) + 1):
        assert evaluations[generation]["failure"] == "patch_rejected", evaluations[generation]
    assert summary.accepted == 1  # the honest change still goes through the same applier
    # Nowhere in the run: trajectory, logs, candidates, status, the lineage's files and history.
    assert SECRET not in _all_text(config.run_dir)
    lineage = Lineage(config.run_dir / "lineage")
    history = subprocess.run(
        ["git", "log", "-p", "--all"], cwd=lineage.path, capture_output=True, text=True, check=True
    ).stdout
    assert SECRET not in history and "stolen.txt" not in history
    assert not (lineage.path / "stolen.txt").exists()
    # Nor in what the proposer was shown (rejection reasons included).
    assert proposer.contexts and all(SECRET not in context.model_dump_json() for context in proposer.contexts)
