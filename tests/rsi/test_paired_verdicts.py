"""Every verdict of a real run carries the paired comparison with its parent: the same seeds, the
gain, its interval and the policy's confidence level."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from core.fold import live_events
from tests.rsi.test_resume_docker import RSI, events_of, finish

pytestmark = [
    pytest.mark.bwrap,
    pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed"),
]


def test_verdicts_record_the_paired_interval_on_the_runs_seeds(tmp_path: Path) -> None:
    from tests.conftest import TARGET

    run_dir = tmp_path / "run"
    finish([
        *RSI, "run", "--target", str(TARGET), "--run-dir", str(run_dir), "--seeds", "3", "--headless",
        "--proposer", "offline", "--backend", "bwrap", "--generations", "2",
    ])  # fmt: skip
    live = live_events(events_of(run_dir))
    evaluations = {e.generation: e.data for e in live if e.kind == "evaluation"}
    verdicts = {e.generation: e.data for e in live if e.kind == "verdict"}
    assert sorted(verdicts) == [1, 2]
    measured = [g for g in verdicts if evaluations[g].get("metric")]
    assert measured, "neither candidate produced a metric to compare"
    for generation in measured:
        paired = verdicts[generation]["paired"]
        assert evaluations[generation]["seeds"] == [0, 1, 2]
        assert paired["seeds"] == [0, 1, 2] and paired["confidence"] == 0.95
        assert paired["low"] <= paired["gain"] <= paired["high"]
        metric_findings = [f for f in verdicts[generation]["findings"] if f["rule_id"] == "metric-improves"]
        if paired["gain"] > 0.002 and paired["low"] <= 0 and metric_findings:  # above min_delta
            assert metric_findings[0]["verdict"] == "review" and "at 95%" in metric_findings[0]["message"]
