"""Harness-owned held-out sets and the metrics that score predictions against them.

A held-out set is generated on the host from a seed the candidate never sees; only its inputs are
ever written where a container can read them. The labels stay in this process.

    heldout = load_heldout("teacher-regression", seed=1234)
    score("r2", predictions, heldout.labels)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from rsi.errors import ConfigError


@dataclass(frozen=True)
class HeldoutSet:
    name: str
    seed: int
    inputs: np.ndarray
    labels: np.ndarray


def _teacher(x: np.ndarray) -> np.ndarray:
    """The harness's own copy of the bundled target's teacher function (never imported from it)."""
    return (
        np.sin(np.pi * x[:, 0]) * x[:, 1]
        + np.cos(np.pi * x[:, 2] * x[:, 3])
        + 0.5 * x[:, 4] ** 2
        - x[:, 5] * x[:, 6]
        + 0.3 * np.tanh(3.0 * x[:, 7])
    )


def _teacher_regression(seed: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    inputs = rng.uniform(-1.0, 1.0, size=(size, 8))
    return inputs, _teacher(inputs)


GENERATORS: dict[str, Callable[[int, int], tuple[np.ndarray, np.ndarray]]] = {
    "teacher-regression": _teacher_regression,
}


def load_heldout(name: str, seed: int, size: int = 2000) -> HeldoutSet:
    try:
        generator = GENERATORS[name]
    except KeyError:
        raise ConfigError(
            f"unknown held-out set {name!r} (from the target's rsi.toml [metric].heldout); "
            f"the harness knows: {', '.join(sorted(GENERATORS))}."
        ) from None
    inputs, labels = generator(seed, size)
    return HeldoutSet(name=name, seed=seed, inputs=inputs, labels=labels)


def score(metric: str, predictions: np.ndarray, labels: np.ndarray) -> float:
    """Score predictions on the host. Raises ValueError on predictions of the wrong shape or non-finite."""
    predictions = np.asarray(predictions, dtype=np.float64)
    if predictions.ndim == 2 and predictions.shape[1] == 1:
        predictions = predictions[:, 0]
    if predictions.shape != labels.shape:
        raise ValueError(f"predictions have shape {predictions.shape}, the held-out labels {labels.shape}")
    if not np.all(np.isfinite(predictions)):
        raise ValueError("predictions contain NaN or infinite values")
    error = predictions - labels
    if metric == "mse":
        return float(np.mean(error**2))
    if metric == "mae":
        return float(np.mean(np.abs(error)))
    if metric == "r2":
        return float(1.0 - np.sum(error**2) / np.sum((labels - labels.mean()) ** 2))
    if metric == "accuracy":
        return float(np.mean(np.round(predictions) == labels))
    raise ConfigError(f"unknown metric {metric!r}; known: r2, mse, mae, accuracy")
