"""Checkpoint thresholds: the moments a headless run stops and waits for a human.

Three kinds, each configured in `RunConfig.checkpoints` and each firing at most once per key:
- the metric of a candidate improves on its parent's by more than N spreads (a jump worth a look
  before it becomes the parent of everything after it: a breakthrough, or a harness being gamed),
- a fraction of a budget (generations, wall time, dollars) is used,
- a finding of a named policy rule appears;
and, for a bootstrapping target, a candidate that would promote its student to teacher.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.contracts import Candidate
from rsi.config import CheckpointConfig


@dataclass(frozen=True)
class Checkpoint:
    key: str
    """Identifies the checkpoint so that it fires once (e.g. `budget:wall:0.5`, `metric_jump:3`)."""
    kind: str
    message: str


def candidate_checkpoint(config: CheckpointConfig, candidate: Candidate) -> Checkpoint | None:
    """A checkpoint this candidate triggers, if any (checked after its verdict, before deciding)."""
    rules = set(config.finding_rules)
    for finding in candidate.verdict.findings:
        if finding.rule_id in rules:
            return Checkpoint(
                key=f"finding:{finding.rule_id}:{candidate.generation}",
                kind="finding",
                message=f"generation {candidate.generation}: finding of rule {finding.rule_id}: {finding.message}",
            )
    promotion = promotion_checkpoint(config, candidate)
    if promotion is not None:
        return promotion
    metric = candidate.evaluation.metric
    parent = candidate.parent_evaluation.metric if candidate.parent_evaluation else None
    if config.metric_jump_spreads is None or metric is None or parent is None:
        return None
    gain, spread = metric.gain_over(parent), metric.noise_against(parent, config.min_spread)
    jump = gain / spread
    if jump <= config.metric_jump_spreads:
        return None
    return Checkpoint(
        key=f"metric_jump:{candidate.generation}",
        kind="metric_jump",
        message=(
            f"generation {candidate.generation}: {metric.name} improved by {gain:+.4f} "
            f"({jump:.1f} spreads of {spread:.4f}; threshold {config.metric_jump_spreads:g})"
        ),
    )


def promotion_checkpoint(config: CheckpointConfig, candidate: Candidate) -> Checkpoint | None:
    """With `promotion`: a candidate the policy does not deny, whose student would become the teacher."""
    evaluation = candidate.evaluation
    if not config.promotion or evaluation.student_sha256 is None or candidate.verdict.verdict == "deny":
        return None
    metric = evaluation.metric
    teacher = evaluation.teacher_metric
    measured = (
        f" ({metric.name} {metric.mean:.4f}; its teacher {teacher:.4f})"
        if metric and teacher is not None
        else ""
    )
    return Checkpoint(
        key=f"promotion:{candidate.generation}",
        kind="promotion",
        message=(
            f"generation {candidate.generation}: accepting it promotes its student "
            f"{evaluation.student_sha256[:12]} to teacher in place of "
            f"{(evaluation.teacher_sha256 or 'none')[:12]}{measured}"
        ),
    )


def budget_checkpoint(
    config: CheckpointConfig, used: dict[str, tuple[float, float | None]], fired: set[str]
) -> Checkpoint | None:
    """A budget checkpoint not yet fired; `used` maps a budget name to (used, limit or None)."""
    if config.budget_fraction is None:
        return None
    for name, (amount, limit) in used.items():
        key = f"budget:{name}:{config.budget_fraction:g}"
        if limit is None or limit <= 0 or key in fired:
            continue
        if amount / limit >= config.budget_fraction:
            return Checkpoint(
                key=key,
                kind="budget",
                message=(
                    f"{amount / limit:.0%} of the {name} budget used ({amount:g} of {limit:g}); "
                    f"the checkpoint is at {config.budget_fraction:.0%}"
                ),
            )
    return None
