"""What the agent is told: a stable system prompt and one context message per generation.

The system prompt never changes within a run, so it (with the tool definitions before it) is the
cached prefix every call reuses; the generation's context — objective, the parent's measured
results, the lineage history — is the second cached block, reused by every step of a generation.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from core.contracts import HistoryEntry, ProposalContext
from core.errors import RsiError
from core.target import TEACHER_FILE, TEACHER_MOUNT, TargetSpec

HISTORY_LIMIT = 25
"""Most recent generations shown in full; older ones are counted, not listed."""

SYSTEM_PROMPT = """\
You are a research engineer improving a small machine-learning training codebase. Each generation \
you propose one change to the current parent version; a trusted harness you cannot see or modify \
then runs the project's tests, trains with several seeds under a fixed step budget and scores the \
model on held-out data. A policy and a human reviewer decide whether your change is accepted.

Your environment:
- /workspace holds a copy of the parent. Edit it with the str_replace_based_edit_tool; run commands \
with bash. Every bash command runs in a fresh shell starting in /workspace, with a time limit, as an \
unprivileged user, with no network.
- Held-out data and the evaluator are not available to you; do not look for them. Measure ideas \
yourself on the training data (for example a quick training run with fewer steps, writing its \
outputs under /tmp), and run the tests before submitting.
- Keep the change focused and explain it. Do not touch protected paths (listed below): changes there \
are denied. Binary files, caches and files under /tmp are never part of the proposal.
- When you are done, call `submit` with your rationale and the effect you expect. The proposal is the \
difference between /workspace and the parent, computed for you. Steps, tokens, money and time are \
limited; a generation that runs out ends with whatever change /workspace holds.
"""

NUDGE = (
    "Continue with the tools. When your change is ready in /workspace, call `submit` with your "
    "rationale and expected effect; this generation ends then."
)


def _metric(mean: float | None, std: float | None) -> str:
    return "not measured" if mean is None else f"{mean:.4f} ± {(std or 0.0):.4f}"


def history_lines(history: list[HistoryEntry]) -> list[str]:
    if not history:
        return ["(none yet: this is the first generation)"]
    shown = history[-HISTORY_LIMIT:]
    lines = (
        [f"({len(history) - len(shown)} earlier generations not shown)"] if len(history) > len(shown) else []
    )
    for entry in shown:
        line = (
            f"- gen {entry.generation} [{entry.decision}] metric {_metric(entry.metric_mean, entry.metric_std)}"
            f" — {entry.rationale[:160]} — {entry.diff_stat}"
        )
        if entry.reason:
            line += f"\n  why: {entry.reason[:400]}"
        lines.append(line)
    return lines


def tree_lines(context: ProposalContext) -> list[str]:
    """Where the parent stands in the search tree: the accepted changes that made it, and what was
    already proposed from it (do not repeat a sibling; build on what won)."""
    made = [f"- gen {e.generation}: {e.rationale[:160]}" for e in context.ancestry]
    lines = [
        "The parent was made by these accepted changes, oldest first:",
        *(made or ["- (it is the baseline)"]),
    ]
    tried = [
        f"- gen {e.generation} [{e.decision}] metric {_metric(e.metric_mean, e.metric_std)} — {e.rationale[:160]}"
        for e in context.siblings
    ]
    lines += [
        "Already proposed from this same parent (its siblings' outcomes):",
        *(tried or ["- (none yet)"]),
    ]
    return lines


def context_message(context: ProposalContext, parent_tree: Path) -> str:
    """The generation's context: objective, the parent's results, the contract, the lineage history."""
    spec = None
    with contextlib.suppress(RsiError):
        spec = TargetSpec.load(parent_tree)
    parts = [
        f"Generation {context.generation}.",
        f"Objective: {context.objective}",
        f"Metric: {context.metric_name} on held-out data ({context.direction} is better).",
        f"Parent {context.parent_commit[:10]}: {context.metric_name} "
        f"{_metric(context.parent_metric_mean, context.parent_metric_std)} (mean ± spread over seeds).",
    ]
    if spec is not None:
        parts += [
            "How the harness runs the project (from rsi.toml):",
            f"- tests: {spec.commands.test}",
            f"- train: {spec.commands.train} (steps = {spec.budget.steps}, at most {spec.budget.train_seconds:.0f}s)",
            f"- predict: {spec.commands.predict}",
            f"Protected paths (never change them): {', '.join(spec.protected.paths) or 'none'}; also tests and rsi.toml.",
        ]
        if spec.teacher is not None:
            parts.append(
                f"- teacher: the current teacher is mounted read-only at {TEACHER_MOUNT}/{TEACHER_FILE} in your "
                "sandbox, as in the harness's (the train command's {teacher}); read and run it, it cannot be changed."
            )
    parts += ["Lineage history (what was tried, what was measured, what was decided and why):"]
    parts += history_lines(context.history)
    parts += tree_lines(context)
    parts += [
        "Propose one change that you expect to beat the parent beyond the seed noise. Explore first, "
        "then edit /workspace and call submit."
    ]
    return "\n".join(parts)
