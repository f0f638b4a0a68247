"""The recursion, without the harness: teacher -> student -> promoted teacher, scored on true sums.

Usage (from examples/bootstrap, outside any sandbox):
    python scripts/recursion.py --heldout ../bootstrap-heldout.py
    python scripts/recursion.py --heldout ../bootstrap-heldout.py --set teacher_votes=1 --set window=1

Each generation trains one student per seed on data its teacher generates (train.train, the same
code the sandbox runs), scores the teacher and the students on the provider's held-out sums, and
promotes the first seed's student to be the next teacher when the students beat their teacher
beyond noise (mean gain > 2 standard deviations of the students and every seed above the teacher).
The only true answers used are the held-out ones, for scoring; training reads none.
"""

import argparse
import os
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from config import TrainConfig  # noqa: E402
from data import validate_problems  # noqa: E402
from make_gen0 import load_provider  # noqa: E402
from model import DigitMLP  # noqa: E402
from train import train  # noqa: E402

IMPROVED = {"teacher_votes": "3", "window": "2"}  # two offline-proposer moves from the defaults
HELDOUT_SEED = 1234


def parse_overrides(pairs: list[str]) -> TrainConfig:
    """TrainConfig with `name=value` overrides, each cast to the field's type."""
    config = TrainConfig()
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not hasattr(config, name):
            known = ", ".join(vars(config))
            raise SystemExit(
                f"recursion.py: error: --set {pair!r}: expected NAME=VALUE with NAME one of {known}"
            )
        setattr(config, name, type(getattr(config, name))(value))
    return config


def beyond_noise(teacher: float, students: list[float]) -> bool:
    gain = float(np.mean(students)) - teacher
    return min(students) > teacher and gain > 2 * float(np.std(students))


def run(
    config: TrainConfig, teacher: DigitMLP, provider, generations: int, seeds: int, size: int
) -> list[dict]:
    inputs, labels = provider.generate(HELDOUT_SEED, size)
    problems = validate_problems(np.asarray(inputs))

    def accuracy(model: DigitMLP) -> float:
        return float(provider.score(model.predict(problems).astype(np.float64), labels))

    rows = []
    for generation in range(1, generations + 1):
        start = time.perf_counter()
        teacher_score = accuracy(teacher)
        students = [train(config, teacher, seed=1000 * generation + s, log=False)[0] for s in range(seeds)]
        scores = [accuracy(student) for student in students]
        promoted = beyond_noise(teacher_score, scores)
        rows.append(
            {"generation": generation, "teacher": teacher_score, "students": scores, "promoted": promoted}
        )
        print(
            f"| {generation} | {teacher_score:.4f} | {np.mean(scores):.4f} ± {np.std(scores):.4f} "
            f"| {np.mean(scores) - teacher_score:+.4f} | {'yes' if promoted else 'no'} "
            f"| {time.perf_counter() - start:.1f}s |",
            flush=True,
        )
        if not promoted:
            break
        teacher = students[0]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--heldout", required=True, help="the harness-side provider (generate, score)")
    parser.add_argument("--teacher", default=os.path.join(ROOT, "teacher0.npz"), help="the gen-0 teacher")
    parser.add_argument("--generations", type=int, default=5, help="promotions to attempt")
    parser.add_argument("--seeds", type=int, default=3, help="students trained per generation")
    parser.add_argument("--size", type=int, default=2000, help="held-out problems scored")
    parser.add_argument(
        "--set", action="append", default=None, metavar="NAME=VALUE", help="a TrainConfig knob"
    )
    args = parser.parse_args()
    overrides = args.set if args.set is not None else [f"{k}={v}" for k, v in IMPROVED.items()]
    config = parse_overrides(overrides)
    print(f"config: {', '.join(overrides)}; {args.seeds} seeds; {args.size} held-out sums")
    print("| generation | teacher accuracy | student accuracy (mean ± std) | gain | promoted | time |")
    print("|---|---|---|---|---|---|")
    rows = run(
        config,
        DigitMLP.load(args.teacher),
        load_provider(args.heldout),
        args.generations,
        args.seeds,
        args.size,
    )
    promotions = sum(row["promoted"] for row in rows)
    print(f"promotions beyond noise: {promotions}")


if __name__ == "__main__":
    main()
