"""Dev tool: held-out R^2 (mean +- std over seeds) and wall time for a config.

The real score is computed by the harness on its own held-out set; this script
only mimics it (2000 inputs uniform on [-1, 1]^8, labelled with data.teacher).

Usage (from the repo root):
    python scripts/measure.py                                  # default config, seeds 0 1 2
    python scripts/measure.py --set input_range=1.0 --set optimizer=adam
    python scripts/measure.py --seeds 0 1 2 3 4 --steps 1000
"""

import argparse
import dataclasses
import os
import sys
import time
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from config import TrainConfig
from data import INPUT_DIM, teacher
from train import train

HELDOUT_SIZE = 2000
HELDOUT_SEED = 20240601


def r2_score(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    residual = np.sum((y_true - y_pred) ** 2)
    total = np.sum((y_true - y_true.mean()) ** 2)
    return float(1.0 - residual / total)


def parse_override(text: str, config: TrainConfig) -> tuple[str, Any]:
    name, _, value = text.partition("=")
    fields = {f.name: f for f in dataclasses.fields(config)}
    if name not in fields:
        raise SystemExit(f"unknown config field {name!r}; known: {sorted(fields)}")
    kind = type(getattr(config, name))
    return name, kind(value)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=None, help="override the step budget")
    parser.add_argument(
        "--set", action="append", default=[], metavar="FIELD=VALUE", help="override a config field"
    )
    args = parser.parse_args()
    config = TrainConfig(log_every=0)
    overrides: dict[str, Any] = dict(parse_override(item, config) for item in args.set)
    if args.steps is not None:
        overrides["steps"] = args.steps
    config = dataclasses.replace(config, **overrides)
    x_heldout = np.random.default_rng(HELDOUT_SEED).uniform(-1.0, 1.0, size=(HELDOUT_SIZE, INPUT_DIM))
    y_heldout = teacher(x_heldout)
    scores, times = [], []
    for seed in args.seeds:
        start = time.perf_counter()
        model, final_loss = train(config, seed, log=False)
        times.append(time.perf_counter() - start)
        scores.append(r2_score(y_heldout, model.predict(x_heldout)))
        print(
            f"seed={seed} r2={scores[-1]:.4f} final_train_loss={final_loss:.5f} train_time={times[-1]:.2f}s"
        )
    print(f"overrides={overrides}")
    print(f"r2 mean={np.mean(scores):.4f} std={np.std(scores):.4f}  train_time mean={np.mean(times):.2f}s")


if __name__ == "__main__":
    main()
