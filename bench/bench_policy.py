"""How long the shipped policies take to load (self-test included) and to judge a diff.

    .venv/bin/python bench/bench_policy.py [--repeat N]

Prints one row per case: the median and worst time against the target. The loop loads the
policy once per run and checks it once per generation, next to minutes of sandboxed training, so
the targets are generous: load (with every example) under 1 s, a check under 0.5 s.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.contracts import Evaluation, MetricResult, Proposal, TestResult  # noqa: E402
from core.target import TargetSpec  # noqa: E402
from policies.engine import load_policy, resolve_policy_path  # noqa: E402
from tests.conftest import TARGET, make_diff  # noqa: E402

LOAD_TARGET_S = 1.0
CHECK_TARGET_S = 0.5


def timed(action: Callable[[], object], repeat: int) -> tuple[float, float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times), max(times)


def evaluation(values: list[float]) -> Evaluation:
    return Evaluation(
        parent_commit="p" * 40,
        diff_sha256="d",
        backend="bench",
        ok=True,
        tests=TestResult(exit_code=0, passed=40),
        metric=MetricResult(name="r2", direction="higher", per_seed=dict(enumerate(values))),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    spec = TargetSpec.load(TARGET)
    config_diff = make_diff(TARGET, "config.py", "input_range: float = 0.5", "input_range: float = 1.0")
    train = (TARGET / "train.py").read_text()
    big_body = "".join(f"    total += step * {i}  # line {i}\n" for i in range(200))
    big_diff = make_diff(
        TARGET, "train.py", train, train + "\n\ndef extra(step):\n    total = 0\n" + big_body
    )
    parent, candidate = evaluation([0.13, 0.15, 0.14]), evaluation([0.63, 0.66, 0.61])

    rows = []
    for name in ("default", "strict"):
        path = resolve_policy_path(name)
        median, worst = timed(lambda path=path: load_policy(path, target=spec), args.repeat)
        rows.append((f"load {name} (+ every example)", median, worst, LOAD_TARGET_S))
        policy = load_policy(path, target=spec)
        cases = [
            ("config.py one-line diff", config_diff, None, None),
            ("config.py diff + evaluation", config_diff, candidate, parent),
            ("train.py +204 lines", big_diff, None, None),
        ]
        for label, diff, measured, before in cases:
            proposal = Proposal(diff=diff, rationale="", proposer="bench")
            median, worst = timed(
                lambda p=proposal, m=measured, b=before, pol=policy: pol.check(p, m, b), args.repeat
            )
            rows.append((f"check {name}: {label}", median, worst, CHECK_TARGET_S))

    print(f"{'case':<48} {'median ms':>10} {'worst ms':>10} {'target ms':>10}  ok")
    for label, median, worst, target in rows:
        ok = "yes" if median <= target else "NO"
        print(f"{label:<48} {median * 1000:>10.1f} {worst * 1000:>10.1f} {target * 1000:>10.0f}  {ok}")


if __name__ == "__main__":
    main()
