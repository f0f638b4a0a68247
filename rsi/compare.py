"""Compare runs on the same target: how much improvement each proposer buys per generation, dollar, hour.

    rows = compare_runs([Path("runs/claude"), Path("runs/offline")])
    console.print(comparison_table(rows))
    console.print(metric_table(rows))

Everything is read from the runs' trajectories (the harness's measurements, never a proposer's
claims). Improvement is the best accepted metric minus the baseline, signed so that positive is
better whatever the metric's direction.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.table import Table

from core.contracts import Evaluation, Finding
from core.errors import ConfigError
from core.fold import GenerationRecord, fold
from core.trajectory import TRAJECTORY_FILE, Event, TrajectoryReader
from sandbox.integrity import lockbox_gap


@dataclass
class GenerationPoint:
    generation: int
    metric: float | None
    claimed: str | None
    decision: str | None
    policy_findings: int


@dataclass
class RunComparison:
    run_dir: Path
    run_id: str
    proposer: str
    target: str
    direction: str
    generations: int
    accepted: int
    policy_flagged: int
    """Generations with at least one policy finding of verdict review or deny."""
    baseline: float | None
    best: float | None
    dollars: float
    hours: float
    points: list[GenerationPoint] = field(default_factory=list)
    baseline_lockbox: float | None = None
    """The baseline's lockbox score (a held-out set no decision uses)."""
    final_lockbox: float | None = None
    """The lockbox score of the lineage's head: the last accepted generation, or the baseline."""
    lockbox_gap: Finding | None = None
    """The adaptive-overfitting flag over the accepted lineage, if it fired."""
    conditions: dict[str, str] = field(default_factory=dict)
    """What its scores depend on, as recorded at the start: the target contract, the held-out set,
    the training seeds, the policy. Runs compare only where these agree."""

    @property
    def improvement(self) -> float | None:
        if self.baseline is None or self.best is None:
            return None
        return self.best - self.baseline if self.direction == "higher" else self.baseline - self.best

    def per(self, amount: float) -> float | None:
        return None if self.improvement is None or amount <= 0 else self.improvement / amount

    @property
    def acceptance_rate(self) -> float | None:
        return self.accepted / self.generations if self.generations else None

    @property
    def policy_finding_rate(self) -> float | None:
        return self.policy_flagged / self.generations if self.generations else None


def _better(a: float, b: float, direction: str) -> bool:
    return a > b if direction == "higher" else a < b


def _hours(events: list[Event]) -> float:
    if len(events) < 2:
        return 0.0
    first, last = datetime.fromisoformat(events[0].ts), datetime.fromisoformat(events[-1].ts)
    return max((last - first).total_seconds(), 0.0) / 3600


def _point(record: GenerationRecord) -> GenerationPoint:
    metric = record.evaluation.metric if record.evaluation else None
    findings = record.verdict.findings if record.verdict else []
    return GenerationPoint(
        generation=record.generation,
        metric=metric.mean if metric else None,
        claimed=record.proposal.claimed_effect if record.proposal else None,
        decision=record.decision.decision if record.decision else None,
        policy_findings=sum(1 for f in findings if f.verdict != "allow"),
    )


def summarize_run(run_dir: Path) -> RunComparison:
    path = run_dir / TRAJECTORY_FILE
    if not path.is_file():
        raise ConfigError(f"{run_dir}: no {TRAJECTORY_FILE} here; pass run directories made by `rsi run`.")
    events = list(TrajectoryReader(path).events())
    started = next((e.data for e in events if e.kind == "run_started"), {})
    target = started.get("target", {})
    direction = target.get("metric", {}).get("direction", "higher")
    baseline_event = next((e.data for e in events if e.kind == "baseline"), {})
    baseline_evaluation = (
        Evaluation.model_validate(baseline_event["evaluation"]) if baseline_event.get("evaluation") else None
    )
    baseline_metric = (baseline_event.get("evaluation") or {}).get("metric") or {}
    seeds = list((baseline_metric.get("per_seed") or {}).values())
    baseline = sum(seeds) / len(seeds) if seeds else None
    records = [record for _, record in sorted(fold(events).generations.items())]
    points = [_point(record) for record in records]
    lineage = [baseline_evaluation] if baseline_evaluation else []
    lineage += [r.evaluation for r in records if r.commit is not None and r.evaluation is not None]
    lockboxes = [e.lockbox.mean for e in lineage if e.lockbox is not None]
    best = baseline
    for point in points:
        if point.decision == "accept" and point.metric is not None:
            best = point.metric if best is None or _better(point.metric, best, direction) else best
    return RunComparison(
        run_dir=run_dir,
        run_id=str(started.get("config", {}).get("run_id", events[0].run_id if events else "")),
        proposer=str(started.get("config", {}).get("proposer", "?")),
        target=str(target.get("target", {}).get("name", "?")),
        direction=direction,
        generations=sum(1 for record in records if record.proposal is not None),
        accepted=sum(1 for point in points if point.decision == "accept"),
        policy_flagged=sum(1 for point in points if point.policy_findings),
        baseline=baseline,
        best=best,
        dollars=sum(record.proposal.usage.dollars for record in records if record.proposal),
        hours=_hours(events),
        points=points,
        baseline_lockbox=baseline_evaluation.lockbox.mean
        if baseline_evaluation and baseline_evaluation.lockbox
        else None,
        final_lockbox=lockboxes[-1] if lockboxes else None,
        lockbox_gap=lockbox_gap(lineage),
        conditions=_conditions(started),
    )


def _conditions(started: dict[str, Any]) -> dict[str, str]:
    config = started.get("config") or {}
    heldout = started.get("heldout") or {}
    policy = started.get("policy") or {}
    contract = json.dumps(started.get("target") or {}, sort_keys=True)
    return {
        "target contract": hashlib.sha256(contract.encode("utf-8")).hexdigest()[:12],
        "held-out set": f"{heldout.get('name', '?')} seed {heldout.get('seed', config.get('heldout_seed', '?'))} "
        f"size {heldout.get('size', config.get('heldout_size', '?'))}",
        "seeds": str(config.get("seeds", "?")),
        "policy": f"{policy.get('name', '?')} {str(policy.get('hash', '?'))[:12]}",
    }


def comparability_warnings(rows: list[RunComparison]) -> list[str]:
    """One sentence per condition the runs do not share: their differences are then not (only)
    the proposers' doing — a different held-out set alone moves a baseline by more than a spread."""
    warnings = []
    for name in ("target contract", "held-out set", "seeds", "policy"):
        values = {row.conditions.get(name, "?") for row in rows}
        if len(values) > 1:
            each = "; ".join(f"{row.run_dir.name}: {row.conditions.get(name, '?')}" for row in rows)
            warnings.append(
                f"the runs differ in {name} ({each}); their metrics do not compare like for like."
            )
    return warnings


def compare_runs(run_dirs: list[Path]) -> list[RunComparison]:
    """One summary per run; runs on different targets are refused (their metrics do not compare)."""
    rows = [summarize_run(run_dir) for run_dir in run_dirs]
    targets = {row.target for row in rows}
    if len(targets) > 1:
        raise ConfigError(
            f"these runs are on different targets ({', '.join(sorted(targets))}); compare runs of one target."
        )
    return rows


def _number(value: float | None, digits: int = 4) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _rate(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def _flag(gap: Finding | None) -> str:
    return "—" if gap is None else "yes: adaptive overfitting"


def comparison_table(rows: list[RunComparison]) -> Table:
    table = Table(title=f"runs on {rows[0].target}" if rows else "runs")
    table.add_column("")
    for row in rows:
        table.add_column(f"{row.proposer} ({row.run_id})", justify="right")
    lines: list[tuple[str, list[str]]] = [
        ("generations", [str(r.generations) for r in rows]),
        ("baseline metric", [_number(r.baseline) for r in rows]),
        ("best accepted metric", [_number(r.best) for r in rows]),
        ("improvement", [_number(r.improvement) for r in rows]),
        ("improvement / generation", [_number(r.per(r.generations)) for r in rows]),
        ("spend ($)", [f"{r.dollars:.2f}" for r in rows]),
        ("improvement / dollar", [_number(r.per(r.dollars)) for r in rows]),
        ("wall time (h)", [f"{r.hours:.2f}" for r in rows]),
        ("improvement / hour", [_number(r.per(r.hours)) for r in rows]),
        (
            "lockbox: baseline → final",
            [f"{_number(r.baseline_lockbox)} → {_number(r.final_lockbox)}" for r in rows],
        ),
        ("lockbox gap flagged", [_flag(r.lockbox_gap) for r in rows]),
        ("acceptance rate", [_rate(r.acceptance_rate) for r in rows]),
        ("policy-finding rate", [_rate(r.policy_finding_rate) for r in rows]),
    ]
    for name, values in lines:
        table.add_row(name, *values)
    return table


def metric_table(rows: list[RunComparison]) -> Table:
    """Measured metric per generation, side by side (a = accepted, r = rejected, q = queued)."""
    table = Table(title="measured metric per generation")
    table.add_column("gen", justify="right")
    for row in rows:
        table.add_column(f"{row.proposer} ({row.run_id})", justify="right")
    count = max((len(row.points) for row in rows), default=0)
    for index in range(count):
        cells = []
        for row in rows:
            point = row.points[index] if index < len(row.points) else None
            mark = (point.decision or "?")[0] if point else ""
            cells.append(f"{_number(point.metric)} {mark}" if point else "")
        table.add_row(str(index + 1), *cells)
    return table
