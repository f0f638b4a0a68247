"""Comparing runs from their trajectories: improvement per generation, dollar and hour; rates."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from core.contracts import Decision, Evaluation, Finding, MetricResult, Proposal, Usage, Verdict
from core.errors import ConfigError
from core.trajectory import TrajectoryWriter
from rsi.compare import compare_runs, comparison_table, metric_table


def evaluation(*seeds: float) -> Evaluation:
    metric = MetricResult(name="r2", direction="higher", per_seed=dict(enumerate(seeds)))
    return Evaluation(parent_commit="p", diff_sha256="d", backend="docker", ok=True, metric=metric)


def write_run(
    run_dir: Path,
    proposer: str,
    generations: list[tuple[float, str, str, float]],
    target: str = "t",
    heldout_seed: int = 7,
) -> Path:
    """generations: (metric, verdict, decision, dollars) each."""
    with TrajectoryWriter.open(run_dir / "trajectory.jsonl", run_id=proposer) as writer:
        writer.append(
            "run_started",
            {
                "config": {"run_id": proposer, "proposer": proposer, "seeds": [0, 1]},
                "target": {"target": {"name": target}, "metric": {"direction": "higher"}},
                "heldout": {"name": "sine", "seed": heldout_seed, "size": 2000},
                "policy": {"name": "default", "hash": "h"},
            },
        )
        writer.append(
            "baseline", {"commit": "p", "evaluation": evaluation(0.15, 0.15).model_dump(mode="json")}, 0
        )
        for number, (metric, verdict, decision, dollars) in enumerate(generations, start=1):
            writer.append("proposal_started", {"parent": "p", "proposer": proposer}, number)
            proposal = Proposal(diff="", rationale="r", proposer=proposer, usage=Usage(dollars=dollars))
            writer.append("proposal", proposal.model_dump(mode="json"), number)
            writer.append("evaluation", evaluation(metric).model_dump(mode="json"), number)
            findings = [] if verdict == "allow" else [Finding(rule_id="x", verdict=verdict, message="m")]  # type: ignore[arg-type]
            writer.append(
                "verdict",
                Verdict(verdict=verdict, findings=findings, policy_name="d", policy_hash="h").model_dump(),
                number,  # type: ignore[arg-type]
            )
            writer.append("decision", Decision(decision=decision, by="policy").model_dump(), number)  # type: ignore[arg-type]
        writer.append("run_finished", {"status": "completed"})
    return run_dir


def test_compare_two_runs(tmp_path: Path) -> None:
    agent = write_run(
        tmp_path / "a", "claude", [(0.66, "allow", "accept", 0.5), (0.60, "deny", "reject", 0.5)]
    )
    baseline = write_run(
        tmp_path / "b",
        "offline",
        [(0.10, "deny", "reject", 0.0), (0.20, "allow", "accept", 0.0), (0.18, "deny", "reject", 0)],
    )
    claude, offline = compare_runs([agent, baseline])
    assert claude.improvement == pytest.approx(0.51) and claude.per(claude.generations) == pytest.approx(
        0.255
    )
    assert claude.per(claude.dollars) == pytest.approx(0.51) and claude.acceptance_rate == 0.5
    assert claude.policy_finding_rate == 0.5 and [p.decision for p in claude.points] == ["accept", "reject"]
    assert offline.improvement == pytest.approx(0.05) and offline.per(offline.dollars) is None
    assert offline.acceptance_rate == pytest.approx(1 / 3) and offline.policy_finding_rate == pytest.approx(
        2 / 3
    )
    console = Console(record=True, width=120)
    console.print(comparison_table([claude, offline]))
    console.print(metric_table([claude, offline]))
    text = console.export_text()
    assert "improvement / dollar" in text and "0.6600 a" in text and "0.1800 r" in text


def test_runs_on_different_targets_are_refused(tmp_path: Path) -> None:
    one = write_run(tmp_path / "a", "claude", [], target="one")
    two = write_run(tmp_path / "b", "offline", [], target="two")
    with pytest.raises(ConfigError, match="different targets"):
        compare_runs([one, two])


def report_compare(tmp_path: Path, *run_dirs: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "rsi",
            "report",
            "--compare",
            *map(str, run_dirs),
            "--out",
            str(tmp_path / "cmp"),
        ],
        capture_output=True,
        text=True,
    )


def test_report_compare_warns_when_the_runs_were_scored_on_different_heldout_sets(tmp_path: Path) -> None:
    first = write_run(tmp_path / "a", "claude", [(0.66, "allow", "accept", 0.5)], heldout_seed=1)
    same = write_run(tmp_path / "b", "offline", [(0.2, "allow", "accept", 0.0)], heldout_seed=1)
    other = write_run(tmp_path / "c", "offline", [(0.2, "allow", "accept", 0.0)], heldout_seed=2)
    alike = report_compare(tmp_path, first, same)
    assert alike.returncode == 0 and "warning" not in alike.stderr, alike.stderr
    differing = report_compare(tmp_path, first, other)
    message = " ".join(differing.stderr.split())
    assert differing.returncode == 0 and "differ in held-out set" in message, message
    assert "seed 1" in message and "seed 2" in message
    written = (tmp_path / "cmp" / "report.md").read_text()
    assert "not measured alike" in written and "differ in held-out set" in " ".join(written.split())
