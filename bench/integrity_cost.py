"""What the integrity checks cost per honest candidate, as a share of an evaluation's wall time:
the same honest patches evaluated side by side in one run, with the checks off and then on (real
sandboxes, the bundled target, its real tests, seeds 0 1 2, 500 held-out + 500 lockbox examples).

    python bench/integrity_cost.py [--backends bwrap docker] [--cases input-range width hand-made] [--repeats 5]

Target: the checks add at most 30% to an honest candidate's evaluation wall time ('on vs off').
Each patch is evaluated off, then on, right after each other, so a busy machine slows both alike.
The extra runs per candidate: the scrambled-artifact predict and the 1-step and midway controls in
the evaluation's own sandbox after the seeds; the relabelled control and the disguised re-train +
re-predict in fresh sandboxes of their own, started with the tests and run beside them on the core
the tests leave idle (the disguise's terminal pauses are off the CPU); and reading the artifacts
out. The check phases' sum counts those concurrent sandboxes in full, so it overstates the wall
time they add; their CPU share is what they cost a machine whose cores are all busy (several
candidates in parallel).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sandbox.integrity import IntegrityConfig  # noqa: E402
from tests.honest_cases import HONEST, make_evaluator  # noqa: E402

CONTROL_PHASES = ("control-", "artifact-", "disguise-", "-disguised", "-repeat")


def measure(
    backend: str, case_ids: list[str], repeats: int = 1
) -> list[tuple[str, float, float, float, float]]:
    """Per case: wall s with checks off and on, s of the check phases, and the check phases' CPU
    seconds as a share of the evaluation's own (CPU moves far less than wall time on a busy host);
    each the median of `repeats` off-then-on pairs (one evaluation of five seconds moves by a
    second between runs)."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="rsi-bench-integrity-") as work:
        evaluators = {
            name: make_evaluator(backend, Path(work) / name, [0, 1, 2], integrity=config)
            for name, config in (("off", None), ("on", IntegrityConfig()))
        }
        for evaluator in evaluators.values():
            evaluator.evaluate(evaluator.lineage.head(), "", label="baseline")
        for case in (c for c in HONEST if c.id in case_ids):
            samples: list[tuple[float, float, float, float]] = []
            for repeat in range(repeats):
                walls, extra, cpu_share = {}, 0.0, 0.0
                for name, evaluator in evaluators.items():
                    label = f"{case.id}-{name}-{repeat}"
                    # A fresh measurement each time (evaluate() would answer a repeat from its cache).
                    result = evaluator.measure_again(evaluator.lineage.head(), case.diff, label=label)
                    if not result.ok:
                        raise SystemExit(f"{case.id} ({name}) did not evaluate: {result.failure_detail}")
                    walls[name] = result.resources.wall_s or 0.0
                    if name == "on":
                        checks = [p for p in result.phases if any(m in p.phase for m in CONTROL_PHASES)]
                        extra = sum(p.duration_s for p in checks)
                        own = sum(p.cpu_s or 0.0 for p in result.phases if p not in checks)
                        cpu_share = sum(p.cpu_s or 0.0 for p in checks) / own if own else float("nan")
                samples.append((walls["off"], walls["on"], extra, cpu_share))
            off, on, extra, cpu_share = (statistics.median(column) for column in zip(*samples, strict=True))
            rows.append((case.id, off, on, extra, cpu_share))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backends", nargs="+", default=["bwrap", "docker"], choices=["bwrap", "docker"])
    parser.add_argument("--cases", nargs="+", default=["input-range", "width", "hand-made"])
    parser.add_argument("--repeats", type=int, default=5, help="off-then-on pairs per case (medians)")
    args = parser.parse_args()
    print(
        "| backend | honest patch | wall s, checks off | wall s, checks on | on vs off "
        "| check phases s | check phases / wall off | check CPU / evaluation CPU |"
    )
    print("|---|---|---|---|---|---|---|---|")
    added, cpu = [], []
    for backend in args.backends:
        for case, off, on, extra, cpu_share in measure(backend, args.cases, args.repeats):
            share = extra / off if off else float("nan")
            added.append((on - off) / off if off else float("nan"))
            cpu.append(cpu_share)
            print(
                f"| {backend} | {case} | {off:.2f} | {on:.2f} | {added[-1]:+.0%} | {extra:.2f} "
                f"| {share:.0%} | {cpu_share:.0%} |"
            )
    worst, worst_cpu = max(added, default=float("nan")), max(cpu, default=float("nan"))
    print(
        f"\nthe checks add at most {worst:+.0%} to an honest candidate's evaluation wall time "
        f"(target ≤ 30%) {'✔' if worst <= 0.30 else '✘'}; their CPU is at most {worst_cpu:.0%} of the "
        f"evaluation's {'✔' if worst_cpu <= 0.30 else '✘'}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
