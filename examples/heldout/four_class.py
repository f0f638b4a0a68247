"""Held-out data of the four-class example target, kept outside its tree; imported by the harness
on the host only. It also declares where the target computes its labels, with the harness's own
copy of that rule, so the relabelled integrity control can run."""

import numpy as np

label_function = "data.py:classify"


def label(x: np.ndarray) -> np.ndarray:
    first = np.sin(np.pi * x[:, 0]) + x[:, 1] * x[:, 2] > 0
    second = np.cos(np.pi * x[:, 1]) - x[:, 3] > 0
    return 2 * first.astype(np.int64) + second.astype(np.int64)


def generate(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    inputs = np.random.default_rng(seed).uniform(-1.0, 1.0, size=(n, 4))
    return inputs, label(inputs)
