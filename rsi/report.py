"""`rsi report`: a markdown report with a plot for one run, or an overlay of several runs.

    write_report(Path("runs/a"))                                # runs/a/report.md + metric.png
    write_comparison([Path("runs/a"), Path("runs/b")], Path("compare"))

Everything comes from the trajectory (live events only: superseded ones of a crashed session are
left out), so a report can be written for a finished, paused or crashed run.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on a server, and no window in tests
import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator

from rsi.errors import ConfigError
from rsi.loop import diff_stat
from rsi.resume import fold, live_events
from rsi.trajectory import Event, TrajectoryReader

REPORT_FILE = "report.md"
PLOT_FILE = "metric.png"


@dataclass
class Row:
    generation: int
    diff_stat: str
    metric: float | None
    spread: float | None
    tests: str
    verdict: str
    rules: list[str]
    decision: str
    decided_by: str
    dollars: float
    seconds: float
    accepted: bool


@dataclass
class RunData:
    run_dir: Path
    name: str
    proposer: str
    metric_name: str
    direction: str
    baseline: float | None
    rows: list[Row]
    findings: list[tuple[int, str, str, str]] = field(default_factory=list)
    """(generation, rule id, verdict, message) of every finding in a live verdict."""
    notes: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    status: str = "running or crashed"

    def best_so_far(self) -> list[float | None]:
        best, out = self.baseline, []
        for row in self.rows:
            if row.accepted and row.metric is not None:
                better = best is None or (
                    row.metric > best if self.direction == "higher" else row.metric < best
                )
                best = row.metric if better else best
            out.append(best)
        return out

    @property
    def dollars(self) -> float:
        return sum(row.dollars for row in self.rows)

    @property
    def accepted(self) -> int:
        return sum(row.accepted for row in self.rows)


def _generation_seconds(events: list[Event]) -> dict[int, float]:
    first: dict[int, datetime] = {}
    last: dict[int, datetime] = {}
    for event in events:
        if event.generation is None or event.generation < 1:
            continue
        stamp = datetime.fromisoformat(event.ts)
        first.setdefault(event.generation, stamp)
        last[event.generation] = stamp
    return {g: (last[g] - first[g]).total_seconds() for g in first}


def load_run(run_dir: Path) -> RunData:
    path = run_dir / "trajectory.jsonl"
    if not path.is_file():
        raise ConfigError(f"{run_dir}: no trajectory.jsonl here; pass the directory of an `rsi run`.")
    reader = TrajectoryReader(path)
    reader.verify()
    all_events = list(reader.events())
    events = live_events(all_events)
    run = fold(events)
    started = next((e.data for e in events if e.kind == "run_started"), {})
    config = started.get("config", {})
    baseline_metric = run.baseline.metric if run.baseline else None
    seconds = _generation_seconds(events)
    rows: list[Row] = []
    findings: list[tuple[int, str, str, str]] = []
    for state in run.decided:
        metric = state.evaluation.metric if state.evaluation else None
        tests = state.evaluation.tests if state.evaluation else None
        verdict = state.verdict
        rules = sorted({f.rule_id for f in verdict.findings}) if verdict else []
        findings += [
            (state.generation, f.rule_id, f.verdict, f.message) for f in (verdict.findings if verdict else [])
        ]
        assert state.decision is not None
        rows.append(
            Row(
                generation=state.generation,
                diff_stat=diff_stat(state.proposal.diff) if state.proposal else "—",
                metric=metric.mean if metric else None,
                spread=metric.std if metric else None,
                tests=f"{tests.passed}/{tests.passed + tests.failed + tests.errors}" if tests else "not run",
                verdict=verdict.verdict if verdict else "—",
                rules=rules,
                decision=state.decision.decision,
                decided_by=state.decision.by,
                dollars=state.proposal.usage.dollars if state.proposal else 0.0,
                seconds=seconds.get(state.generation, 0.0),
                accepted=state.commit is not None,
            )
        )
    notes = [f"checkpoint: {e.data.get('message')}" for e in events if e.kind == "checkpoint"]
    notes += [
        f"resumed at generation {e.data.get('next_generation')} after a {e.data.get('previous_session_end')} session"
        + (
            f"; generation {e.data['superseded_generation']} re-run"
            if e.data.get("superseded_generation")
            else ""
        )
        for e in all_events
        if e.kind == "run_resumed"
    ]
    finished = [e for e in events if e.kind == "run_finished"]
    return RunData(
        run_dir=run_dir,
        name=run_dir.name,
        proposer=str(config.get("proposer", "?")),
        metric_name=baseline_metric.name if baseline_metric else "metric",
        direction=baseline_metric.direction if baseline_metric else "higher",
        baseline=baseline_metric.mean if baseline_metric else None,
        rows=rows,
        findings=findings,
        notes=notes,
        wall_s=run.elapsed_s,
        status=str(finished[-1].data.get("status"))
        if finished and events[-1].kind == "run_finished"
        else "running or crashed",
    )


def nan_for_none(values: list[float | None]) -> list[float]:
    """matplotlib leaves a gap at NaN (no metric yet)."""
    return [float("nan") if value is None else value for value in values]


# -- one run ----------------------------------------------------------------------------------


def plot_run(data: RunData, out: Path) -> Path:
    figure, axes = plt.subplots(figsize=(8, 4.5))
    for accepted, color, marker, label in (
        (True, "tab:green", "o", "accepted"),
        (False, "tab:red", "x", "not accepted"),
    ):
        points = [r for r in data.rows if r.accepted == accepted and r.metric is not None]
        axes.errorbar(
            [r.generation for r in points],
            [r.metric or 0.0 for r in points],  # points have a metric
            yerr=[r.spread or 0.0 for r in points],
            fmt=marker,
            color=color,
            label=label,
            capsize=3,
        )
    best = data.best_so_far()
    if data.baseline is not None:
        axes.step(
            [0] + [r.generation for r in data.rows],
            nan_for_none([data.baseline, *best]),
            where="post",
            color="tab:blue",
            label="best so far",
        )
        axes.axhline(data.baseline, color="grey", linestyle=":", label="baseline")
    axes.set_xlabel("generation")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_ylabel(f"{data.metric_name} ({data.direction} is better)")
    axes.set_title(f"{data.name}: {data.metric_name} over generations")
    axes.legend(loc="best")
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(out, dpi=110)
    plt.close(figure)
    return out


def _num(value: float | None, digits: int = 4) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def render_run(data: RunData, plot_name: str) -> str:
    best = data.best_so_far()
    final = best[-1] if best else data.baseline
    gain = final - data.baseline if final is not None and data.baseline is not None else None
    lines = [
        f"# Run report: {data.name}",
        "",
        f"Proposer **{data.proposer}**, status **{data.status}**. {data.metric_name}: baseline {_num(data.baseline)} "
        f"→ best {_num(final)} ({'+' if gain and gain >= 0 else ''}{_num(gain)}).",
        "",
        f"![{data.metric_name} over generations]({plot_name})",
        "",
        "## Generations",
        "",
        "| gen | diff | tests | metric | verdict | findings | decision | cost ($) | time (s) |",
        "|---:|---|---|---|---|---|---|---:|---:|",
    ]
    for row in data.rows:
        metric = (
            f"{row.metric:.4f} ± {row.spread:.4f}"
            if row.metric is not None and row.spread is not None
            else "—"
        )
        decision = f"**{row.decision}**" if row.accepted else row.decision
        lines.append(
            f"| {row.generation} | {row.diff_stat} | {row.tests} | {metric} | {row.verdict} | "
            f"{', '.join(row.rules) or '—'} | {decision} ({row.decided_by}) | {row.dollars:.3f} | {row.seconds:.1f} |"
        )
    decisions = Counter(row.decision for row in data.rows)
    lines += [
        "",
        "## Totals",
        "",
        f"- generations decided: {len(data.rows)} (accepted {data.accepted}, rejected {decisions['reject']}, "
        f"queued {decisions['queue']})",
        f"- model spend: ${data.dollars:.3f}; wall time: {data.wall_s / 60:.1f} min",
        "",
        "## Findings that fired",
        "",
    ]
    lines += _findings_table(data)
    if data.notes:
        lines += ["", "## Pauses and resumes", "", *[f"- {note}" for note in data.notes]]
    return "\n".join(lines) + "\n"


def _findings_table(data: RunData) -> list[str]:
    if not data.findings:
        return ["No policy rule fired."]
    by_rule: dict[tuple[str, str], list[tuple[int, str]]] = {}
    for generation, rule, verdict, message in data.findings:
        by_rule.setdefault((rule, verdict), []).append((generation, message))
    lines = ["| rule | verdict | times | generations | first message |", "|---|---|---:|---|---|"]
    for (rule, verdict), hits in sorted(by_rule.items()):
        generations = ", ".join(str(g) for g, _ in hits)
        message = hits[0][1].replace("|", "\\|")[:140]
        lines.append(f"| {rule} | {verdict} | {len(hits)} | {generations} | {message} |")
    return lines


def write_report(run_dir: Path, out: Path | None = None) -> Path:
    """Write report.md (and metric.png beside it) for one run; return the report's path."""
    data = load_run(run_dir)
    target = out or run_dir / REPORT_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    plot = plot_run(data, target.with_name(PLOT_FILE))
    target.write_text(render_run(data, plot.name), encoding="utf-8")
    return target


# -- several runs -----------------------------------------------------------------------------


def plot_comparison(runs: list[RunData], out: Path) -> Path:
    figure, axes = plt.subplots(1, 3, figsize=(15, 4.5), sharey=True)
    for data in runs:
        best = data.best_so_far()
        label = f"{data.name} ({data.proposer})"
        generations = [0] + [r.generation for r in data.rows]
        dollars, hours, spent, elapsed = [0.0], [0.0], 0.0, 0.0
        for row in data.rows:
            spent += row.dollars
            elapsed += row.seconds / 3600
            dollars.append(spent)
            hours.append(elapsed)
        series = nan_for_none([data.baseline, *best])
        for axis, xs in zip(axes, (generations, dollars, hours), strict=True):
            axis.step(xs, series, where="post", label=label)
    for axis, xlabel in zip(axes, ("generation", "model spend ($)", "hours"), strict=True):
        axis.set_xlabel(xlabel)
        axis.grid(alpha=0.3)
    axes[0].set_ylabel(f"best {runs[0].metric_name} so far")
    axes[0].legend(loc="best")
    figure.suptitle("best metric per generation, per dollar, per hour")
    figure.tight_layout()
    figure.savefig(out, dpi=110)
    plt.close(figure)
    return out


def render_comparison(runs: list[RunData], plot_name: str) -> str:
    lines = [
        "# Comparison of runs",
        "",
        f"![best metric per generation, dollar and hour]({plot_name})",
        "",
        "| run | proposer | generations | accepted | acceptance rate | policy-finding rate | baseline | best | gain | $ | hours | gain per $ | gain per hour |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for data in runs:
        count = len(data.rows) or 1
        best = (data.best_so_far() or [data.baseline])[-1]
        gain = best - data.baseline if best is not None and data.baseline is not None else None
        hours = sum(r.seconds for r in data.rows) / 3600
        with_findings = sum(1 for r in data.rows if r.rules)
        per_dollar = _num(gain / data.dollars) if gain is not None and data.dollars > 0 else "—"
        per_hour = _num(gain / hours) if gain is not None and hours > 0 else "—"
        lines.append(
            f"| {data.name} | {data.proposer} | {len(data.rows)} | {data.accepted} | {data.accepted / count:.0%} | "
            f"{with_findings / count:.0%} | {_num(data.baseline)} | {_num(best)} | {_num(gain)} | {data.dollars:.3f} | "
            f"{hours:.2f} | {per_dollar} | {per_hour} |"
        )
    return "\n".join(lines) + "\n"


def write_comparison(run_dirs: list[Path], out_dir: Path) -> Path:
    """Write out_dir/report.md and out_dir/compare.png overlaying the runs; return the report path."""
    if len(run_dirs) < 2:
        raise ConfigError("--compare needs at least two run directories.")
    runs = [load_run(run_dir) for run_dir in run_dirs]
    names = Counter(run.name for run in runs)
    for run in runs:
        if names[run.name] > 1:  # two runs named alike (a/run, b/run): tell them apart
            run.name = f"{run.run_dir.parent.name}/{run.name}"
    out_dir.mkdir(parents=True, exist_ok=True)
    plot = plot_comparison(runs, out_dir / "compare.png")
    target = out_dir / REPORT_FILE
    target.write_text(render_comparison(runs, plot.name), encoding="utf-8")
    return target
