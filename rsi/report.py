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

from core.change_summary import describe_change
from core.contracts import Evaluation, Finding, best_of, signed_gain
from core.errors import ConfigError
from core.events import CheckpointRecorded, RunFinished, RunResumed
from core.fold import fold, live_events
from core.trajectory import TRAJECTORY_FILE, Event, TrajectoryReader
from core.visible import visible
from rsi.compare import RunComparison, comparability_warnings, compare_runs
from rsi.search.tree import BEST, TreeNode, render_tree
from rsi.succession_report import succession_section
from sandbox.integrity import lockbox_gap
from sandbox.patch import diff_stat

REPORT_FILE = "report.md"
PLOT_FILE = "metric.png"


@dataclass
class Row:
    generation: int
    diff_stat: str
    change: str
    """What the change does in a few words (`input_range 0.5 → 1.0`, or the rationale's first line)."""
    metric: float | None
    spread: float | None
    lockbox: float | None
    lockbox_spread: float | None
    tests: str
    verdict: str
    rules: list[str]
    decision: str
    decided_by: str
    dollars: float
    seconds: float
    accepted: bool
    parent_commit: str = ""
    """The lineage commit it was proposed from and measured against."""
    commit: str | None = None
    """Its own lineage commit, when accepted."""


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
    lineage: list[tuple[int, Evaluation]] = field(default_factory=list)
    """(generation, evaluation) of the baseline (generation 0) and each accepted generation, in order."""
    notes: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    status: str = "running or crashed"
    baseline_commit: str = ""

    def best_so_far(self) -> list[float | None]:
        best, out = self.baseline, []
        for row in self.rows:
            if row.accepted and row.metric is not None:
                best = best_of(best, row.metric, self.direction)
            out.append(best)
        return out

    @property
    def dollars(self) -> float:
        return sum(row.dollars for row in self.rows)

    @property
    def lockbox_gap(self) -> Finding | None:
        """The adaptive-overfitting flag over the whole lineage (None: selection and lockbox agree)."""
        return lockbox_gap([evaluation for _, evaluation in self.lineage])

    def first_flagged(self) -> int | None:
        """The first accepted generation at which the lineage so far is flagged."""
        for end in range(2, len(self.lineage) + 1):
            if lockbox_gap([evaluation for _, evaluation in self.lineage[:end]]) is not None:
                return self.lineage[end - 1][0]
        return None

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
    path = run_dir / TRAJECTORY_FILE
    if not path.is_file():
        raise ConfigError(f"{run_dir}: no {TRAJECTORY_FILE} here; pass the directory of an `rsi run`.")
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
    lineage: list[tuple[int, Evaluation]] = [(0, run.baseline)] if run.baseline else []
    for state in run.decided:
        metric = state.evaluation.metric if state.evaluation else None
        lockbox = state.evaluation.lockbox if state.evaluation else None
        if state.commit is not None and state.evaluation is not None:
            lineage.append((state.generation, state.evaluation))
        tests = state.evaluation.tests if state.evaluation else None
        verdict = state.verdict
        rules = sorted({f.rule_id for f in verdict.findings}) if verdict else []
        findings += [
            (state.generation, f.rule_id, f.verdict, visible(f.message))
            for f in (verdict.findings if verdict else [])
        ]
        assert state.decision is not None
        rows.append(
            Row(
                generation=state.generation,
                diff_stat=diff_stat(state.proposal.diff) if state.proposal else "—",
                change=describe_change(state.proposal.diff, state.proposal.rationale)
                if state.proposal
                else "—",
                metric=metric.mean if metric else None,
                spread=metric.std if metric else None,
                lockbox=lockbox.mean if lockbox else None,
                lockbox_spread=lockbox.std if lockbox else None,
                tests=f"{tests.passed}/{tests.passed + tests.failed + tests.errors}" if tests else "not run",
                verdict=verdict.verdict if verdict else "—",
                rules=rules,
                decision=state.decision.decision,
                decided_by=state.decision.by,
                dollars=state.proposal.usage.dollars if state.proposal else 0.0,
                seconds=seconds.get(state.generation, 0.0),
                accepted=state.commit is not None,
                parent_commit=state.parent_commit,
                commit=state.commit,
            )
        )
    notes = [
        f"checkpoint: {CheckpointRecorded.model_validate(e.data).message}"
        for e in events
        if e.kind == "checkpoint"
    ]
    notes += [resumed_note(RunResumed.model_validate(e.data)) for e in all_events if e.kind == "run_resumed"]
    finished = [e for e in events if e.kind == "run_finished"]
    return RunData(
        run_dir=run_dir,
        name=run_dir.name,
        proposer=str(config.get("proposer", "?")),
        metric_name=baseline_metric.name if baseline_metric else "metric",
        direction=baseline_metric.direction if baseline_metric else "higher",
        baseline=baseline_metric.mean if baseline_metric else None,
        baseline_commit=run.baseline.parent_commit if run.baseline else "",
        rows=rows,
        findings=findings,
        lineage=lineage,
        notes=notes,
        wall_s=run.elapsed_s,
        status=RunFinished.model_validate(finished[-1].data).status
        if finished and events[-1].kind == "run_finished"
        else "running or crashed",
    )


def resumed_note(resumed: RunResumed) -> str:
    """One line about a resumed session: where it went on, and the generation it ran again."""
    rerun = f"; generation {resumed.superseded_generation} re-run" if resumed.superseded_generation else ""
    return f"resumed at generation {resumed.next_generation} after a {resumed.previous_session_end} session{rerun}"


def nan_for_none(values: list[float | None]) -> list[float]:
    """matplotlib leaves a gap at NaN (no metric yet)."""
    return [float("nan") if value is None else value for value in values]


# -- one run ----------------------------------------------------------------------------------


def rejected_within_noise(data: RunData) -> list[bool]:
    """For each row: not accepted although its mean beat the lineage head by no more than the
    seed noise — the "better but not provably better" candidates a reader would otherwise puzzle over."""
    flags = []
    head, head_spread = data.baseline, 0.0
    for row in data.rows:
        within = False
        if not row.accepted and row.metric is not None and head is not None:
            gain = signed_gain(row.metric, head, data.direction)
            within = 0 < gain <= max(row.spread or 0.0, head_spread)
        flags.append(within)
        if row.accepted and row.metric is not None:
            head, head_spread = row.metric, row.spread or 0.0
    return flags


def plot_run(data: RunData, out: Path) -> Path:
    figure, axes = plt.subplots(figsize=(8, 4.5))
    noise = rejected_within_noise(data)
    groups = (
        ("accepted", "tab:green", "o", 5, [r for r in data.rows if r.accepted]),
        (
            "rejected: within noise",
            "tab:olive",
            "D",
            4,
            [r for r, n in zip(data.rows, noise, strict=True) if n],
        ),
        (
            "rejected",
            "tab:red",
            "x",
            3,
            [r for r, n in zip(data.rows, noise, strict=True) if not r.accepted and not n],
        ),
    )
    for label, color, marker, zorder, rows in groups:
        points = [r for r in rows if r.metric is not None]
        if not points:
            continue
        axes.errorbar(
            [r.generation for r in points],
            [r.metric or 0.0 for r in points],  # points have a metric
            yerr=[r.spread or 0.0 for r in points],
            fmt=marker,
            color=color,
            label=label,
            capsize=3,
            markersize=7 if label == "accepted" else 6,
            zorder=zorder,  # an accepted candidate is drawn over the lockbox line, never under it
        )
    best = data.best_so_far()
    if data.baseline is not None:
        axes.step(
            [0] + [r.generation for r in data.rows],
            nan_for_none([data.baseline, *best]),
            where="post",
            color="tab:blue",
            label="best so far",
            zorder=2,
        )
        axes.axhline(data.baseline, color="grey", linestyle=":", label="baseline", zorder=1)
    _plot_lockbox(axes, data)
    axes.set_xlabel("generation")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_ylabel(f"{data.metric_name} ({data.direction} is better)")
    axes.set_title(f"{data.name}: {data.metric_name} over generations")
    axes.legend(loc="best", fontsize="small")
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(out, dpi=110)
    plt.close(figure)
    return out


def _plot_lockbox(axes: plt.Axes, data: RunData) -> None:
    """The lineage's lockbox score beside the selection curve: the two should rise together. Drawn
    as a step like best-so-far, since it only changes when a generation is accepted."""
    points = [(g, e.lockbox) for g, e in data.lineage if e.lockbox is not None]
    if not points:
        return
    flagged = data.lockbox_gap is not None
    color = "tab:orange" if flagged else "tab:purple"
    last = max([r.generation for r in data.rows] + [g for g, _ in points])
    xs = [g for g, _ in points] + [last]
    ys = [m.mean for _, m in points] + [points[-1][1].mean]
    axes.step(
        xs,
        ys,
        where="post",
        linestyle="--",
        color=color,
        label="lockbox of the lineage" + (": gap flagged" if flagged else ""),
        zorder=1.5,
    )
    axes.errorbar(
        [g for g, _ in points],
        [m.mean for _, m in points],
        yerr=[m.std for _, m in points],
        fmt="s",
        markersize=3,
        color=color,
        capsize=2,
        zorder=1.5,
    )


def markdown_cell(text: str) -> str:
    """Proposer text inside a table cell: a `|` would end the cell, a newline the row."""
    return visible(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


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
    ]
    gap = data.lockbox_gap
    if gap is not None:
        lines += [
            f"> **Warning: adaptive overfitting of the lineage.** {gap.message}. See [Lockbox](#lockbox).",
            "",
        ]
    lines += [
        "## Generations",
        "",
        "| gen | change | diff | tests | metric | lockbox | verdict | findings | decision | cost ($) | time (s) |",
        "|---:|---|---|---|---|---|---|---|---|---:|---:|",
    ]
    for row in data.rows:
        metric = _mean_spread(row.metric, row.spread)
        lockbox = _mean_spread(row.lockbox, row.lockbox_spread)
        decision = f"**{row.decision}**" if row.accepted else row.decision
        lines.append(
            f"| {row.generation} | {markdown_cell(row.change)} | {row.diff_stat} | {row.tests} | {metric} | {lockbox} | {row.verdict} | "
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
    lines += ["", *_lockbox_section(data)]
    lines += ["", *_tree_section(data)]
    if data.notes:
        lines += ["", "## Pauses and resumes", "", *[f"- {note}" for note in data.notes]]
    return "\n".join(lines) + "\n"


def tree_nodes(data: RunData) -> list[TreeNode]:
    """Every decided candidate under the node it was proposed from (gen-0 is the baseline)."""
    node_of = {data.baseline_commit: "gen-0"}
    node_of |= {row.commit: f"gen-{row.generation}" for row in data.rows if row.commit}
    nodes = [TreeNode("gen-0", None, "baseline", "root", data.baseline)]
    for row in data.rows:
        status = "accepted" if row.accepted else "denied" if row.verdict == "deny" else row.decision
        status = {"reject": "rejected", "queue": "queued"}.get(status, status)
        parent = node_of.get(row.parent_commit, "gen-0")
        nodes.append(TreeNode(f"gen-{row.generation}", parent, row.change[:60], status, row.metric))
    return nodes


def _tree_section(data: RunData) -> list[str]:
    tree = render_tree(tree_nodes(data), data.direction)
    return [
        "## Tree",
        "",
        f"Which candidate came from which; {BEST} marks the path to the best.",
        "",
        "```text",
        tree,
        "```",
    ]


def _mean_spread(mean: float | None, spread: float | None) -> str:
    return f"{mean:.4f} ± {spread:.4f}" if mean is not None and spread is not None else "—"


def _lockbox_section(data: RunData) -> list[str]:
    """Selection against lockbox gain per accepted generation, and the overfitting flag."""
    lines = [
        "## Lockbox",
        "",
        "The lockbox is a second held-out set the harness scores from the same predictions; no "
        "decision ever uses it. Gains are from the baseline, positive = better; the gap is the "
        "selection gain the lockbox does not share.",
        "",
    ]
    lineage = [(g, e) for g, e in data.lineage if e.metric is not None and e.lockbox is not None]
    if not lineage:
        return [*lines, "No lockbox scores were recorded for this run."]
    _, first = lineage[0]
    assert first.metric is not None and first.lockbox is not None
    lines += [
        "| gen | selection | lockbox | selection gain | lockbox gain | gap |",
        "|---:|---|---|---:|---:|---:|",
    ]
    for generation, evaluation in lineage:
        assert evaluation.metric is not None and evaluation.lockbox is not None
        selection_gain = evaluation.metric.gain_over(first.metric)
        lockbox_gain = evaluation.lockbox.gain_over(first.lockbox)
        lines.append(
            f"| {generation} | {evaluation.metric.mean:.4f} ± {evaluation.metric.std:.4f} | "
            f"{evaluation.lockbox.mean:.4f} ± {evaluation.lockbox.std:.4f} | {selection_gain:+.4f} | "
            f"{lockbox_gain:+.4f} | {selection_gain - lockbox_gain:+.4f} |"
        )
    gap = data.lockbox_gap
    lines.append("")
    if gap is None:
        return [*lines, "No adaptive overfitting flagged: the lockbox follows the selection set."]
    evidence = gap.evidence
    return [
        *lines,
        f"**Warning [{gap.rule_id}]: adaptive overfitting of the lineage.** {gap.message} "
        f"(first flagged at generation {data.first_flagged()}).",
        "",
        f"- selection gain {evidence['selection_gain']:+.4f}, lockbox gain {evidence['lockbox_gain']:+.4f}, "
        f"largest seed spread {evidence['noise']:.4f}",
        "- selection means: " + ", ".join(f"{v:.4f}" for v in evidence["selection"]),
        "- lockbox means: " + ", ".join(f"{v:.4f}" for v in evidence["lockbox"]),
        "- what to do: treat the accepted gains as suspect, read what the accepted changes fit, and "
        "give the next run a fresh selection set (another `heldout_seed` in its run config).",
    ]


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
    events = list(TrajectoryReader(run_dir / TRAJECTORY_FILE).events())
    successors = succession_section(events, target.parent)  # bootstrapping runs only
    text = render_run(data, plot.name) + ("\n" + "\n".join(successors) + "\n" if successors else "")
    target.write_text(text, encoding="utf-8")
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


def render_comparison(rows: list[RunComparison], plot_name: str) -> str:
    """The markdown comparison; the figures come from rsi.compare (one place computes them)."""
    lines = [
        "# Comparison of runs",
        "",
    ]
    warnings = comparability_warnings(rows)
    if warnings:
        lines += ["**These runs are not measured alike:**", ""]
        lines += [f"- {warning}" for warning in warnings]
        lines.append("")
    lines += [
        f"![best metric per generation, dollar and hour]({plot_name})",
        "",
        "| run | proposer | generations | accepted | acceptance rate | policy-finding rate | baseline | best | gain | $ | hours | gain per $ | gain per hour | lockbox baseline | lockbox final | lockbox gap |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row.run_dir.name} | {row.proposer} | {row.generations} | {row.accepted} | "
            f"{_rate(row.acceptance_rate)} | {_rate(row.policy_finding_rate)} | {_num(row.baseline)} | "
            f"{_num(row.best)} | {_num(row.improvement)} | {row.dollars:.3f} | {row.hours:.2f} | "
            f"{_num(row.per(row.dollars))} | {_num(row.per(row.hours))} | {_num(row.baseline_lockbox)} | "
            f"{_num(row.final_lockbox)} | {'**flagged**' if row.lockbox_gap else '—'} |"
        )
    flagged = [row for row in rows if row.lockbox_gap is not None]
    if flagged:
        lines += ["", "**Adaptive overfitting of the lineage** (selection up, lockbox not following):", ""]
        lines += [f"- {row.run_dir.name}: {row.lockbox_gap.message}" for row in flagged if row.lockbox_gap]
    return "\n".join(lines) + "\n"


def _rate(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


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
    target.write_text(render_comparison(compare_runs(run_dirs), plot.name), encoding="utf-8")
    return target
