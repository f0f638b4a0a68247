"""The task: four classes of points in [-1, 1]^4, split by two curved boundaries.

from data import classify, make_training_data
x, y = make_training_data(1500, rng, label_noise=0.05)
"""

import numpy as np

INPUT_DIM = 4
NUM_CLASSES = 4


def classify(x: np.ndarray) -> np.ndarray:
    """The rule that makes the labels: which side of each of two curved boundaries a point is on."""
    first = np.sin(np.pi * x[:, 0]) + x[:, 1] * x[:, 2] > 0
    second = np.cos(np.pi * x[:, 1]) - x[:, 3] > 0
    return 2 * first.astype(np.int64) + second.astype(np.int64)


def make_training_data(
    size: int, rng: np.random.Generator, label_noise: float
) -> tuple[np.ndarray, np.ndarray]:
    """Uniform inputs and their classes, a `label_noise` fraction of them replaced at random."""
    x = rng.uniform(-1.0, 1.0, size=(size, INPUT_DIM))
    y = classify(x)
    noisy = rng.random(size) < label_noise
    y[noisy] = rng.integers(0, NUM_CLASSES, size=int(noisy.sum()))
    return x, y
