"""`rsi report` on a bootstrapping run: the successors section (teacher vs students, the compute each
used, a plot) and the succession findings; no such section for a run without a teacher."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from rsi.report import write_report
from tests.core.bootstrap_trajectory import BASELINE_GENERATION, Generation, write_bootstrap_run
from tests.rsi.synthetic_run import write_run

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_the_report_shows_teacher_and_student_per_generation(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    write_bootstrap_run(
        run_dir,
        BASELINE_GENERATION,
        [
            Generation(scores=(0.15, 0.14), lockbox=(0.15, 0.14), cpu_s=2.0),
            Generation(scores=(0.10, 0.11), lockbox=(0.10, 0.11), accepted=False),
            Generation(scores=(0.40, 0.39), lockbox=(0.40, 0.39), cpu_s=3.0),
        ],
    )
    text = write_report(run_dir).read_text()
    section = text.split("## Successors", 1)[1]
    assert (run_dir / "succession.png").read_bytes().startswith(PNG_MAGIC)
    assert "![teacher and student over generations](succession.png)" in section
    assert "2 promotion(s), 2 of them a student beating its teacher" in section
    assert "0.0500 → 0.1500 → 0.4000" in section  # the gen-0 teacher, then each promoted student
    rows = [line for line in section.splitlines() if line.startswith("| 3 |")]
    assert rows == [
        "| 3 | `" + rows[0].split("`")[1] + "` (student of gen 1) | 0.1500 | 0.3950 ± 0.0071 | "
        "0.3950 ± 0.0071 | 2.00 | 3.05 | 6.10 | **promoted**: beats its teacher |"
    ]
    assert "| 2 |" in section and "not promoted" in section
    assert "No succession finding" in section


def test_the_report_carries_the_succession_findings(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    write_bootstrap_run(
        run_dir,
        BASELINE_GENERATION,
        [
            Generation(scores=(0.30, 0.31), lockbox=(0.06, 0.07), cpu_s=2.0),
            Generation(scores=(0.45, 0.46), lockbox=(0.07, 0.06), cpu_s=2.0),
        ],
    )
    section = write_report(run_dir).read_text().split("## Successors", 1)[1]
    assert "**Warning [succession.compounding]** 2 successive promotions (generations 1, 2)" in section


def test_a_run_without_a_teacher_has_no_successors_section(tmp_path: Path) -> None:
    write_run(tmp_path / "run", [(0.6, "accept")])
    assert "## Successors" not in write_report(tmp_path / "run").read_text()
    assert not (tmp_path / "run" / "succession.png").exists()


def test_the_targets_compute_budget_is_shown_and_enforced(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    generations = [Generation(scores=(0.15, 0.14), lockbox=(0.15, 0.14), cpu_s=5.0)]
    write_bootstrap_run(run_dir, BASELINE_GENERATION, generations, compute_budget_s=4.0)
    section = write_report(run_dir).read_text().split("## Successors", 1)[1]
    assert "Compute budget: 4.0 CPU s per student" in section
    assert "**Warning [succession.compute-budget]** generation 1's students used 5.05 CPU s each" in section


def test_rsi_report_prints_the_successors_headline(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    generations = [
        Generation(scores=(0.15, 0.14), lockbox=(0.15, 0.14)),
        Generation(scores=(0.40, 0.39), lockbox=(0.40, 0.39)),
    ]
    write_bootstrap_run(run_dir, BASELINE_GENERATION, generations)
    rsi = str(Path(sys.executable).with_name("rsi"))
    done = subprocess.run(
        [rsi, "report", str(run_dir)], capture_output=True, text=True, env={"COLUMNS": "200"}, check=False
    )
    assert done.returncode == 0, done.stderr
    assert (
        "successors: 2 promotion(s), 2 of them a student beating its teacher beyond its seed spread; "
        in done.stdout
    )
    assert "0.0500 → 0.1500 → 0.4000" in done.stdout
    plain = tmp_path / "plain"
    write_run(plain, [(0.6, "accept")])
    done = subprocess.run([rsi, "report", str(plain)], capture_output=True, text=True, check=False)
    assert done.returncode == 0 and "successors" not in done.stdout
