"""Teacher function and synthetic training data.

The teacher is fixed: the harness keeps an identical copy to label its
held-out inputs (uniform on [-1, 1]^8), so `teacher` must never change.
Everything else here (how training inputs are sampled, label noise, pool
size, curriculum) is fair game for improvement.

Usage:
    python data.py        # prints a few samples and the label statistics
"""

import numpy as np
from config import TrainConfig

INPUT_DIM = 8


def teacher(x: np.ndarray) -> np.ndarray:
    """The fixed target function: inputs (n, 8) -> outputs (n,). Do not change (the harness has a copy)."""
    return (
        np.sin(np.pi * x[:, 0]) * x[:, 1]
        + np.cos(np.pi * x[:, 2] * x[:, 3])
        + 0.5 * x[:, 4] ** 2
        - x[:, 5] * x[:, 6]
        + 0.3 * np.tanh(3.0 * x[:, 7])
    )


def make_training_data(config: TrainConfig, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Draw the fixed training pool: inputs uniform in [-r, r]^8, noisy teacher labels.

    The pool is returned sorted from the most central example (smallest max |x_i|)
    to the most extreme one, which is what the curriculum in `sample_batch` uses.
    """
    r = config.input_range
    x = rng.uniform(-r, r, size=(config.train_examples, INPUT_DIM))
    y = teacher(x) + config.label_noise * rng.standard_normal(config.train_examples)
    order = np.argsort(np.max(np.abs(x), axis=1), kind="stable")
    return x[order], y[order]


def curriculum_fraction(config: TrainConfig, step: int) -> float:
    """Fraction of the (centre-first) pool available at `step`: grows from 0.5 to 1.0."""
    if config.curriculum_steps <= 0 or step >= config.curriculum_steps:
        return 1.0
    return 0.5 + 0.5 * step / config.curriculum_steps


def sample_batch(
    x: np.ndarray, y: np.ndarray, config: TrainConfig, step: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Sample a minibatch (with replacement) from the pool, respecting the curriculum."""
    available = max(1, int(np.ceil(curriculum_fraction(config, step) * len(x))))
    index = rng.integers(0, available, size=config.batch_size)
    return x[index], y[index]


if __name__ == "__main__":
    cfg = TrainConfig()
    xs, ys = make_training_data(cfg, np.random.default_rng(0))
    print(f"x: shape={xs.shape} min={xs.min():.3f} max={xs.max():.3f}")
    print(f"y: mean={ys.mean():.4f} std={ys.std():.4f}")
