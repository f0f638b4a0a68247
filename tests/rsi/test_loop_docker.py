"""The whole loop on the bundled target, in real Docker: deny, reject, accept, commit, record."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from core.contracts import Proposal, ProposalContext
from core.trajectory import TrajectoryReader
from rsi.compose import build_run
from rsi.config import RunConfig
from sandbox.base import SandboxConfig
from sandbox.lineage import Lineage
from tests.conftest import IMAGE, ROOT, TARGET, make_diff
from tests.sandbox import hostile

pytestmark = pytest.mark.docker


class ScriptedProposer:
    """A deterministic proposer for tests: returns the given diffs in order."""

    name = "scripted"

    def __init__(self, diffs: list[tuple[str, str]]) -> None:
        self.diffs = list(diffs)
        self.contexts: list[ProposalContext] = []

    def propose(self, context: ProposalContext, parent_tree: Path) -> Proposal:
        self.contexts.append(context)
        assert (parent_tree / "rsi.toml").is_file()
        rationale, diff = self.diffs.pop(0)
        return Proposal(diff=diff, rationale=rationale, proposer=self.name)


def test_loop_denies_rejects_accepts_and_records_everything(docker_client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    protected = make_diff(TARGET, "rsi.toml", "steps = 3000", "steps = 30000")
    failing = make_diff(TARGET, "data.py", "+ 0.5 * x[:, 4] ** 2", "+ 0.6 * x[:, 4] ** 2")
    better = make_diff(TARGET, "config.py", "input_range: float = 0.5", "input_range: float = 1.0")
    proposer = ScriptedProposer(
        [("touch the budget", protected), ("break the teacher", failing), ("widen the input range", better)]
    )
    config = RunConfig(
        target=TARGET,
        run_dir=tmp_path / "run",
        generations=3,
        seeds=[0, 1],
        heldout_size=500,
        sandbox=SandboxConfig(image=IMAGE),
    )
    loop, parts = build_run(config)
    parts.proposer = proposer
    summary = loop.run()
    parts.trajectory.close()

    assert summary.status == "completed", summary.reason
    assert summary.accepted == 1 and summary.best_metric > summary.baseline_metric + 0.2  # type: ignore[operator]
    events = list(TrajectoryReader(config.run_dir / "trajectory.jsonl").events())
    TrajectoryReader(config.run_dir / "trajectory.jsonl").verify()
    decisions = [(e.generation, e.data["decision"]) for e in events if e.kind == "decision"]
    assert decisions == [(1, "reject"), (2, "reject"), (3, "accept")]
    verdicts = {e.generation: e.data for e in events if e.kind == "verdict"}
    assert verdicts[1]["verdict"] == "deny" and verdicts[1]["findings"][0]["rule_id"] == "protected-paths"
    assert any(f["rule_id"] == "tests-pass" for f in verdicts[2]["findings"])
    assert verdicts[3]["verdict"] == "allow" and verdicts[3]["policy_hash"] == parts.policy.content_hash
    kinds = [e.kind for e in events]
    assert kinds[0] == "run_started" and kinds[1] == "baseline" and kinds[-1] == "run_finished"
    # Every diff is kept, rejected or not; the lineage holds the accepted one.
    for generation, diff in ((1, protected), (2, failing), (3, better)):
        assert (config.run_dir / "candidates" / f"gen-{generation:04d}.diff").read_text() == diff
    log = Lineage(config.run_dir / "lineage").log()
    assert len(log) == 2 and log[0][1].startswith("generation 3: widen the input range")
    assert "metric: r2" in log[0][1] and "decision: accept by policy" in log[0][1]
    assert "input_range: float = 1.0" in (config.run_dir / "lineage" / "config.py").read_text()
    # The proposer heard why it was rejected.
    assert "protected-paths" in proposer.contexts[1].history[0].reason
    assert proposer.contexts[2].history[1].reason.startswith("tests_failed")
    assert json.loads((config.run_dir / "run.json").read_text())["run_id"] == config.run_id
    assert hostile.sandboxes_of(docker_client, config.run_id) == []


def test_rsi_run_command_end_to_end(docker_client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run_dir = tmp_path / "run"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "rsi",
            "run",
            "--target",
            str(TARGET),
            "--run-dir",
            str(run_dir),
            "--generations",
            "2",
            "--seeds",
            "2",
            "--headless",
            "--proposer",
            "offline",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for expected in (
        "baseline",
        "generation 1",
        "generation 2",
        "verdict",
        "decision",
        "run finished",
        str(run_dir),
    ):
        assert expected in done.stdout, done.stdout
    assert (run_dir / "trajectory.jsonl").is_file() and (run_dir / "lineage" / ".git").is_dir()


def test_rsi_run_refuses_an_existing_run_dir(docker_client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "trajectory.jsonl").write_text("")
    done = subprocess.run(
        [sys.executable, "-m", "rsi", "run", "--run-dir", str(run_dir), "--generations", "1", "--headless"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2 and "rsi resume" in done.stderr
