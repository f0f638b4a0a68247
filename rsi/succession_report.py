"""The successors section of `rsi report`, for a bootstrapping run (a target with a `[teacher]`):
per generation the teacher's and the students' scores and the compute each used, a plot of both,
and the succession findings (core.succession).

    lines = succession_section(events, out_dir)    # [] for a run without a teacher
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on a server, and no window in tests
import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator

from core.succession import (
    Succession,
    SuccessionLimits,
    succession_findings,
    succession_limits,
    successions,
)
from core.trajectory import Event

SUCCESSION_PLOT = "succession.png"


def _cpu(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def _score(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


def _teacher_name(row: Succession) -> str:
    origin = "gen-0 teacher" if row.teacher_from is None else f"student of gen {row.teacher_from}"
    return f"`{row.teacher_sha256[:10]}` ({origin})"


def _status(row: Succession) -> str:
    if row.generation == 0:
        return "baseline"
    if not row.promoted:
        return "not promoted"
    return "**promoted**" + (": beats its teacher" if row.beats_teacher else "")


def succession_table(rows: list[Succession]) -> list[str]:
    lines = [
        "| gen | teacher | teacher score | student score | student lockbox | teacher compute (CPU s) "
        "| student compute (CPU s) | generation compute (CPU s) | |",
        "|---:|---|---:|---|---|---:|---:|---:|---|",
    ]
    for row in rows:
        student = f"{row.student.mean:.4f} ± {row.student.std:.4f}" if row.student else "—"
        lockbox = f"{row.lockbox.mean:.4f} ± {row.lockbox.std:.4f}" if row.lockbox else "—"
        lines.append(
            f"| {row.generation} | {_teacher_name(row)} | {_score(row.teacher_score)} | {student} | {lockbox} | "
            f"{_cpu(row.teacher_cpu_s)} | {_cpu(row.student_cpu_s)} | {_cpu(row.generation_cpu_s)} | "
            f"{_status(row)} |"
        )
    return lines


def headline(rows: list[Succession]) -> str:
    """The chain of promoted teachers' scores, from the generation-0 teacher to the last successor."""
    promoted = [r for r in rows if r.promoted]
    if not promoted:
        return "No student has been promoted yet."
    chain = [promoted[0].teacher_score, *[r.promoted_score for r in promoted]]
    beats = sum(r.beats_teacher for r in promoted)
    return (
        f"{len(promoted)} promotion(s), {beats} of them a student beating its teacher beyond its seed "
        "spread; the teacher's score along the chain: " + " → ".join(_score(v) for v in chain) + "."
    )


def succession_section(
    events: list[Event], out_dir: Path, limits: SuccessionLimits | None = None
) -> list[str]:
    """The markdown section (and its plot, written into out_dir); [] for a run without a teacher."""
    rows = successions(events)
    if not rows:
        return []
    limits = limits or succession_limits(events)
    budget = limits.compute_budget_s
    plot = plot_succession(rows, out_dir / SUCCESSION_PLOT)
    lines = [
        "## Successors",
        "",
        "Each generation's students learn only from data their teacher generates; an accepted "
        "generation's first student becomes the next teacher. Scores are the harness's, on its held-out "
        "problems (the teacher through the same predict command); compute is the CPU time the harness "
        "measured in each train phase (the teacher generating the data + the student's training), the "
        "teacher's being that of the train phase that produced it.",
        "",
        headline(rows),
        "",
        f"Compute budget: {budget:.1f} CPU s per student (the target's `[teacher] compute_budget_s`)."
        if budget is not None
        else "No compute budget is set (`[teacher] compute_budget_s` in the target's rsi.toml).",
        "",
        f"![teacher and student over generations]({plot.name})",
        "",
        *succession_table(rows),
        "",
    ]
    findings = succession_findings(rows, limits)
    if not findings:
        return [
            *lines,
            "No succession finding: the lockbox follows the successors and compute grows no faster "
            "than the gain.",
        ]
    return [*lines, *[f"- **Warning [{f.rule_id}]** {f.message}." for f in findings]]


def plot_succession(rows: list[Succession], out: Path) -> Path:
    figure, (scores, compute) = plt.subplots(2, 1, figsize=(8, 6), sharex=True, height_ratios=[2, 1])
    generations = [r.generation for r in rows]
    scores.plot(generations, [r.teacher_score for r in rows], "s--", color="tab:grey", label="teacher")
    scores.errorbar(
        generations,
        [r.student_score for r in rows],
        yerr=[r.student.std if r.student else 0.0 for r in rows],
        fmt="o",
        color="tab:blue",
        capsize=3,
        label="students",
    )
    lockbox = [(r.generation, r.lockbox.mean) for r in rows if r.lockbox]
    if lockbox:
        scores.plot(*zip(*lockbox, strict=True), "^", color="tab:purple", label="students' lockbox")
    for row in rows:
        if row.promoted:
            scores.axvline(row.generation, color="tab:green", alpha=0.25)
    scores.set_ylabel(rows[0].student.name if rows[0].student else "metric")
    scores.set_title("teacher vs students (green: promoted)")
    scores.legend(loc="best", fontsize="small")
    scores.grid(alpha=0.3)
    compute.bar(generations, [r.generation_cpu_s or 0.0 for r in rows], color="tab:orange")
    compute.set_ylabel("train CPU s")
    compute.set_xlabel("generation")
    compute.xaxis.set_major_locator(MaxNLocator(integer=True))
    compute.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(out, dpi=110)
    plt.close(figure)
    return out


def succession_headline(events: list[Event]) -> str | None:
    """The successors' headline for the terminal (`rsi report` prints it); None without a teacher."""
    rows = successions(events)
    return f"successors: {headline(rows)}" if rows else None
