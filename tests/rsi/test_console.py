"""The plain-terminal observer: the lockbox on each metric line, its movement and flag at the end."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from core.contracts import Usage
from core.run import RunSummary
from core.trajectory import TrajectoryReader
from rsi.console import ConsoleObserver
from tests.rsi.synthetic_run import write_run

OUTCOMES = [(0.40, "accept"), (0.30, "reject"), (0.60, "accept"), (0.80, "accept")]


def console_output(run_dir: Path) -> str:
    console = Console(record=True, width=200, highlight=False)
    observer = ConsoleObserver(console, progress=False)
    for event in TrajectoryReader(run_dir / "trajectory.jsonl").events():
        observer.on_event(event)
    summary = RunSummary("completed", 4, 3, 0.15, 0.80, "c" * 40, Usage())
    observer.summary(summary, str(run_dir))
    return console.export_text()


def test_console_prints_the_lockbox_and_flags_a_flat_one(tmp_path: Path) -> None:
    write_run(tmp_path / "r", OUTCOMES, lockbox=[0.15, 0.30, 0.50, 0.15, 0.16])
    text = console_output(tmp_path / "r")
    assert "lockbox 0.5000 ± 0.0071 (never used for decisions)" in text  # the rejected generation 2
    assert "lockbox 0.1500 → 0.1600 over 3 accepted generation(s)" in text
    assert "warning [integrity.lockbox-gap]: adaptive overfitting of the lineage: over 3 accepted" in text


def test_console_does_not_flag_a_lockbox_that_rises_too(tmp_path: Path) -> None:
    write_run(tmp_path / "r", OUTCOMES, lockbox=[0.15, 0.38, 0.20, 0.57, 0.76])
    text = console_output(tmp_path / "r")
    assert "lockbox 0.1500 → 0.7600 over 3 accepted generation(s)" in text
    assert "warning" not in text


def test_console_without_lockbox_scores_says_nothing_about_them(tmp_path: Path) -> None:
    write_run(tmp_path / "plain", OUTCOMES)
    text = console_output(tmp_path / "plain").replace(str(tmp_path), "")
    assert "lockbox" not in text
