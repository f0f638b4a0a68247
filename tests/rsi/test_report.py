"""Reports: report.md with a PNG plot, a table of generations, totals and findings; --compare."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from rsi.report import load_run, write_comparison, write_report
from tests.conftest import ROOT
from tests.rsi.synthetic_run import write_run

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_report_of_one_run(tmp_path: Path) -> None:
    run_dir = tmp_path / "night"
    write_run(run_dir, [(0.60, "accept"), (0.40, "reject"), (0.70, "queue")])
    report = write_report(run_dir)
    text = report.read_text()
    assert report == run_dir / "report.md"
    assert (run_dir / "metric.png").read_bytes().startswith(PNG_MAGIC)
    assert "![r2 over generations](metric.png)" in text
    assert (
        "| 1 | x 1 → 2 | 1 file(s) +1 -1: config.py | 42/42 | 0.6000 ± 0.0141 | — | allow | — | **accept** (policy)"
        in text
    )
    assert "| 2 |" in text and "metric-improves" in text and "reject (policy)" in text
    assert "accepted 1, rejected 1, queued 1" in text
    assert "baseline 0.1500 → best 0.6000" in text  # a queued candidate is not on the lineage
    assert "| metric-improves | deny | 1 | 2 | no gain |" in text
    tree = text.split("## Tree", 1)[1]
    assert "gen-0 baseline — root 0.1500  ★" in tree
    assert "└── gen-1 x 1 → 2 — accepted 0.6000  ★" in tree  # gen 2 and 3 were proposed from gen 1
    assert "    ├── gen-2 x 2 → 3 — denied 0.4000" in tree and "    └── gen-3 x 3 → 4 — queued 0.7000" in tree


def test_best_so_far_follows_accepted_generations_only(tmp_path: Path) -> None:
    write_run(tmp_path / "r", [(0.5, "accept"), (0.9, "queue"), (0.7, "accept")])
    assert load_run(tmp_path / "r").best_so_far() == [0.5, 0.5, 0.7]


def test_compare_overlays_runs_by_generation_dollar_and_hour(tmp_path: Path) -> None:
    write_run(tmp_path / "claude", [(0.6, "accept"), (0.9, "accept")], proposer="claude", dollars=0.5)
    write_run(tmp_path / "offline", [(0.4, "accept"), (0.3, "reject")])
    report = write_comparison([tmp_path / "claude", tmp_path / "offline"], tmp_path / "cmp")
    text = report.read_text()
    assert (tmp_path / "cmp" / "compare.png").read_bytes().startswith(PNG_MAGIC)
    assert "| claude | claude | 2 | 2 | 100% | 0% | 0.1500 | 0.9000 | 0.7500 | 1.000 |" in text
    assert "| offline | offline | 2 | 1 | 50% | 50% | 0.1500 | 0.4000 | 0.2500 | 0.000 |" in text
    assert "| 0.7500 |" in text  # gain per dollar of the claude run


def test_rsi_report_command(tmp_path: Path) -> None:
    write_run(tmp_path / "a", [(0.6, "accept")])
    write_run(tmp_path / "b", [(0.5, "reject")])
    one = subprocess.run(
        [sys.executable, "-m", "rsi", "report", str(tmp_path / "a")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert one.returncode == 0 and "report.md" in one.stdout, one.stderr
    both = subprocess.run(
        [
            sys.executable,
            "-m",
            "rsi",
            "report",
            "--compare",
            str(tmp_path / "a"),
            str(tmp_path / "b"),
            "--out",
            str(tmp_path / "c"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert both.returncode == 0 and (tmp_path / "c" / "report.md").is_file(), both.stderr
    missing = subprocess.run(
        [sys.executable, "-m", "rsi", "report", str(tmp_path / "none")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert missing.returncode == 2 and "trajectory.jsonl here" in " ".join(missing.stderr.split())


OVERFIT = [(0.40, "accept"), (0.30, "reject"), (0.60, "accept"), (0.80, "accept")]


def test_report_flags_a_lineage_whose_lockbox_stays_flat(tmp_path: Path) -> None:
    write_run(tmp_path / "r", OVERFIT, lockbox=[0.15, 0.30, 0.50, 0.15, 0.16])
    data = load_run(tmp_path / "r")
    assert [g for g, _ in data.lineage] == [0, 1, 3, 4]
    assert data.lockbox_gap is not None and data.first_flagged() == 3
    text = write_report(tmp_path / "r").read_text()
    assert "> **Warning: adaptive overfitting of the lineage.** over 3 accepted generation(s)" in text
    assert "| 2 | x 2 → 3 | 1 file(s) +1 -1: config.py | 42/42 | 0.3000 ± 0.0141 | 0.5000 ± 0.0071 |" in text
    assert "## Lockbox" in text
    assert "| 4 | 0.8000 ± 0.0141 | 0.1600 ± 0.0071 | +0.6500 | +0.0100 | +0.6400 |" in text
    assert "**Warning [integrity.lockbox-gap]: adaptive overfitting of the lineage.**" in text
    assert "(first flagged at generation 3)" in text
    assert "- lockbox means: 0.1500, 0.3000, 0.1500, 0.1600" in text
    assert (tmp_path / "r" / "metric.png").read_bytes().startswith(PNG_MAGIC)


def test_report_does_not_flag_a_lockbox_that_rises_with_the_selection(tmp_path: Path) -> None:
    write_run(tmp_path / "r", OVERFIT, lockbox=[0.15, 0.38, 0.20, 0.57, 0.76])
    assert load_run(tmp_path / "r").lockbox_gap is None
    text = write_report(tmp_path / "r").read_text()
    assert "Warning" not in text
    assert "| 4 | 0.8000 ± 0.0141 | 0.7600 ± 0.0071 | +0.6500 | +0.6100 | +0.0400 |" in text
    assert "No adaptive overfitting flagged: the lockbox follows the selection set." in text


def test_report_of_a_run_without_lockbox_scores(tmp_path: Path) -> None:
    write_run(tmp_path / "r", [(0.6, "accept")])
    text = write_report(tmp_path / "r").read_text()
    assert "No lockbox scores were recorded for this run." in text and "Warning" not in text


def test_compare_states_each_runs_final_lockbox_and_flag(tmp_path: Path) -> None:
    write_run(tmp_path / "overfit", OVERFIT, lockbox=[0.15, 0.30, 0.50, 0.15, 0.16])
    write_run(tmp_path / "honest", OVERFIT, lockbox=[0.15, 0.38, 0.20, 0.57, 0.76])
    text = write_comparison([tmp_path / "overfit", tmp_path / "honest"], tmp_path / "cmp").read_text()
    assert "| 0.1500 | 0.1600 | **flagged** |" in text
    assert "| 0.1500 | 0.7600 | — |" in text
    assert "- overfit: over 3 accepted generation(s) the selection r2 gained +0.6500" in text
    assert "- honest" not in text
