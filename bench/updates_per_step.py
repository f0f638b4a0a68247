"""What several optimizer updates per counted step buy, side by side with the honest changes that
buy the same: k updates of one batch per step at every budget (the open case of SECURITY.md), a
k-times step size, and a k-times batch, each over the widened inputs every honest case starts from,
evaluated by the real evaluator against the bundled baseline and judged by the default policy.

    python bench/updates_per_step.py [--backend bwrap] [--seeds 0 1 2 3 4 5] [--k 2 4]

It answers two questions with one table. Does anything the harness measures tell k updates per step
from an honest change? (Training CPU per seed against the parent's, and every integrity check.) And
what does the extra compute buy that an honest change cannot? (The held-out score against the
honest change of the same CPU, the k-times batch, and of the parent's CPU, the k-times step size.)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.contracts import Evaluation, Proposal, timed_phases  # noqa: E402
from policies.engine import load_policy, resolve_policy_path  # noqa: E402
from tests.adversarial.classes import updates_per_counted_step  # noqa: E402
from tests.honest_cases import HAND_MADE, WIDE, config_diff, make_evaluator  # noqa: E402

BASES: dict[str, dict[str, float | int | str]] = {"widened": WIDE, "hand-made": HAND_MADE}
"""What each row changes on top of: the widened inputs every honest case starts from, or the
README's hand-made configuration (a tuned model, its step size near the largest that trains)."""


def updates_per_step(k: int) -> str:
    """k updates of the step's batch at every budget above one step (the 1-step control sees one)."""
    return updates_per_counted_step(k, from_steps=2)


def training_cpu(evaluation: Evaluation) -> float:
    """The median of the seeds' training CPU seconds (each phase's least reading)."""
    cpu = [
        p.cpu_s
        for p in timed_phases(evaluation.phases)
        if p.phase.startswith("train-seed-")
        and p.phase[len("train-seed-") :].isdigit()
        and p.cpu_s is not None
    ]
    return statistics.median(cpu) if cpu else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backend", default="bwrap", choices=["bwrap", "docker"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4, 5])
    parser.add_argument("--k", nargs="+", type=int, default=[2, 4], help="updates per step (and factors)")
    parser.add_argument(
        "--base",
        default="widened",
        choices=sorted(BASES),
        help="what every row changes: the widened inputs, or the README's hand-made configuration",
    )
    args = parser.parse_args()
    base = BASES[args.base]
    rate, batch = float(base.get("learning_rate", 0.02)), int(base.get("batch_size", 32))
    rows: list[tuple[str, str]] = [(f"{args.base} (every row's base)", config_diff(**base))]
    for k in args.k:
        rows += [
            (f"{k} updates of one batch per step (hostile)", config_diff(**base) + updates_per_step(k)),
            (f"step size x{k} (honest)", config_diff(**{**base, "learning_rate": rate * k})),
            (f"batch x{k} (honest)", config_diff(**{**base, "batch_size": batch * k})),
        ]
    with tempfile.TemporaryDirectory(prefix="rsi-bench-updates-") as work:
        evaluator = make_evaluator(args.backend, Path(work), args.seeds)
        policy = load_policy(resolve_policy_path("default"), target=evaluator.spec)
        parent_commit = evaluator.lineage.head()
        parent = evaluator.evaluate(parent_commit, "", label="baseline")
        if not parent.ok or parent.metric is None:
            raise SystemExit(f"the baseline did not evaluate: {parent.failure_detail}")
        base_cpu = training_cpu(parent)
        print(
            f"| change ({args.backend}, seeds {args.seeds}) | held-out R² | training CPU vs the parent | verdict | integrity findings |"
        )
        print("|---|---|---|---|---|")
        print(
            f"| the parent (bundled baseline) | {parent.metric.mean:.3f} | 1.00x ({base_cpu:.2f} CPU-s) | — | — |"
        )
        for label, diff in rows:
            evaluation = evaluator.evaluate(parent_commit, diff, label=label)
            verdict = policy.check(Proposal(diff=diff, rationale=label, proposer="bench"), evaluation, parent)
            metric = f"{evaluation.metric.mean:.3f}" if evaluation.metric else "failed"
            found = ", ".join(f.rule_id for f in evaluation.integrity) or "none"
            print(
                f"| {label} | {metric} | {training_cpu(evaluation) / base_cpu:.2f}x | {verdict.verdict} | {found} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
