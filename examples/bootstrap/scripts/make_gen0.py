"""Make the weak generation-0 teacher: the student's model fitted to a handful of true sums.

Usage (from examples/bootstrap, outside any sandbox):
    python scripts/make_gen0.py --heldout ../bootstrap-heldout.py --out teacher0.npz

The only true answers the bootstrapping ever uses: `--problems` (default 150) sums from the
harness-side provider, on a seed of their own (not the held-out seeds), fitted for `--steps` steps.
Everything after this is the teacher's own data.
"""

import argparse
import importlib.util
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from config import TrainConfig  # noqa: E402
from data import to_digits, validate_problems  # noqa: E402
from model import features  # noqa: E402
from train import fit  # noqa: E402

GEN0_SEED = 20260  # a seed of its own: none of the harness's held-out sets uses it


def load_provider(path: str):
    spec = importlib.util.spec_from_file_location("heldout_provider", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"make_gen0.py: error: cannot import the held-out provider {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_gen0(provider, problems: int, steps: int):
    inputs, labels = provider.generate(GEN0_SEED, problems)
    config = TrainConfig(steps=steps)
    x = features(validate_problems(inputs), config.window)
    y = to_digits(np.asarray(labels, dtype=np.int64))
    return fit(config, x.reshape(-1, x.shape[-1]), y.reshape(-1), seed=0, log=False)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--heldout", required=True, help="the harness-side provider (defines generate)")
    parser.add_argument("--out", required=True, help="where to write the teacher's model.npz")
    parser.add_argument("--problems", type=int, default=150, help="true sums the teacher is fitted to")
    parser.add_argument("--steps", type=int, default=300, help="optimiser steps")
    args = parser.parse_args()
    make_gen0(load_provider(args.heldout), args.problems, args.steps).save(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
