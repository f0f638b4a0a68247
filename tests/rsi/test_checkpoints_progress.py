"""Checkpoint thresholds, the headless progress lines and status.json (no Docker)."""

from __future__ import annotations

import io
import json
from pathlib import Path

from core.contracts import Candidate, Finding, Proposal, Verdict
from core.trajectory import TrajectoryReader
from rsi.checkpoints import budget_checkpoint, candidate_checkpoint
from rsi.config import CheckpointConfig
from rsi.progress import HeadlessProgress, event_line, read_status, write_status
from tests.rsi.synthetic_run import evaluation, write_run


def candidate(mean: float, parent: float, findings: list[Finding] | None = None) -> Candidate:
    return Candidate(
        generation=3,
        parent_commit="p",
        proposal=Proposal(diff="", rationale="r", proposer="offline"),
        evaluation=evaluation("p", mean),
        parent_evaluation=evaluation("", parent),
        verdict=Verdict(verdict="allow", findings=findings or [], policy_name="d", policy_hash="h"),
    )


def test_metric_jump_counts_spreads_of_improvement_only() -> None:
    config = CheckpointConfig(metric_jump_spreads=3)
    # spread of the synthetic metric is 0.0141: +0.1 is ~7 spreads, +0.03 is ~2
    jump = candidate_checkpoint(config, candidate(0.6, 0.5))
    assert jump is not None and jump.kind == "metric_jump" and "improved by +0.1000" in jump.message
    assert candidate_checkpoint(config, candidate(0.53, 0.5)) is None
    assert candidate_checkpoint(config, candidate(0.1, 0.5)) is None  # a collapse is the policy's job
    assert candidate_checkpoint(CheckpointConfig(), candidate(0.9, 0.1)) is None


def test_a_named_rule_finding_pauses() -> None:
    finding = Finding(rule_id="diff-size", verdict="review", message="too big")
    config = CheckpointConfig(finding_rules=["diff-size"])
    hit = candidate_checkpoint(config, candidate(0.5, 0.5, [finding]))
    assert hit is not None and hit.key == "finding:diff-size:3" and "too big" in hit.message
    assert (
        candidate_checkpoint(CheckpointConfig(finding_rules=["other"]), candidate(0.5, 0.5, [finding]))
        is None
    )


def test_budget_fraction_fires_once_per_budget() -> None:
    config = CheckpointConfig(budget_fraction=0.5)
    used = {"generations": (2.0, 10.0), "dollars": (3.0, 5.0), "wall time": (100.0, None)}
    hit = budget_checkpoint(config, used, set())
    assert hit is not None and hit.key == "budget:dollars:0.5" and "60% of the dollars budget" in hit.message
    assert budget_checkpoint(config, used, {hit.key}) is None
    assert budget_checkpoint(CheckpointConfig(), used, set()) is None


def test_one_line_per_event_for_a_human_tailing_the_log(tmp_path: Path) -> None:
    write_run(tmp_path / "r", [(0.6, "accept"), (0.1, "reject")])
    stream = io.StringIO()
    progress = HeadlessProgress(stream=stream)
    for event in TrajectoryReader(tmp_path / "r" / "trajectory.jsonl").events():
        progress.on_event(event)
        progress.on_progress("train", {"label": "gen-0001", "index": 1, "of": 2})  # no bar off a TTY
    lines = stream.getvalue().splitlines()
    assert len(lines) == len(list(TrajectoryReader(tmp_path / "r" / "trajectory.jsonl").events()))
    assert any("gen 1  evaluation" in line and "r2 0.6000 ± 0.0141  tests 42/42" in line for line in lines)
    assert any("gen 2  verdict" in line and "deny  [metric-improves]" in line for line in lines)
    assert any("gen 2  decision" in line and "reject by policy" in line for line in lines)


def test_event_line_skips_unrecorded_kinds(tmp_path: Path) -> None:
    write_run(tmp_path / "r", [(0.6, "accept")])
    first = next(TrajectoryReader(tmp_path / "r" / "trajectory.jsonl").events())
    assert "started: 1 generation(s)" in (event_line(first) or "")
    assert event_line(first.model_copy(update={"kind": "progress"})) is None


def test_status_json_is_replaced_atomically(tmp_path: Path) -> None:
    write_status(tmp_path, {"state": "running", "generation": 1})
    write_status(tmp_path, {"state": "paused", "generation": 2})
    assert read_status(tmp_path) == {"state": "paused", "generation": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["status.json"]  # no temp file left behind
    assert json.loads((tmp_path / "status.json").read_text())["generation"] == 2
