"""Harness-side ground truth of the bootstrapping target (examples/bootstrap): D-digit addition.

Lives outside the target's tree, so no candidate can read it; only `generate`'s inputs ever enter a
sandbox. `generate(seed, n)` gives n problems (a, b), each below 10**8, and their sums; `score` is
exact-match accuracy (a sum is right only if every digit is).
"""

import numpy as np

DIGITS = 8


def generate(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    inputs = rng.integers(0, 10**DIGITS, size=(n, 2)).astype(np.float64)
    return inputs, inputs.sum(axis=1)


def score(predictions: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(np.round(np.asarray(predictions, dtype=np.float64)) == labels))
