"""Harness-owned held-out sets and the metrics that score predictions against them.

A held-out set is generated on the host from a seed the candidate never sees; only its inputs are
ever written where a container can read them. The labels stay in this process.

Two sets per run: the *selection* set, whose metric every decision uses, and the *lockbox*, scored
for every candidate but never used for a decision, so that a lineage that overfits the selection
set by adaptive choice shows up as a gap between the two. The candidate's predict command sees both
(and the integrity probes) shuffled into one file, so it cannot tell which rows decide its fate.

    heldout = load_heldout("teacher-regression", seed=1234)
    lockbox = load_heldout("teacher-regression", seed=derive_seed(1234, "lockbox"))
    staged = stage_inputs({"selection": heldout.inputs, "lockbox": lockbox.inputs}, seed=99)
    parts = staged.split(predictions)           # validated: one finite value per staged row
    score("r2", parts["selection"], heldout.labels)
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from core.errors import ConfigError


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

LABEL_FUNCTIONS: dict[str, tuple[str, str]] = {
    "teacher-regression": ("data.py", "teacher"),
}
"""Where the target defines the function that makes the labels: (file, name). Code on the
prediction path that calls it is computing the answers, not learning them."""

LABEL_COPIES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "teacher-regression": _teacher,
}
"""The harness's own copy of each label function: it labels the relabelled control's inputs."""


def derive_seed(seed: int, purpose: str) -> int:
    """A seed for another harness-owned set, derived from the run's held-out seed and a purpose."""
    state = np.random.SeedSequence([seed, zlib.crc32(purpose.encode("utf-8"))]).generate_state(1)
    return int(state[0] & 0x7FFFFFFF)


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


@dataclass(frozen=True)
class StagedInputs:
    """Several sets' inputs shuffled into one array: what the candidate's predict command reads."""

    inputs: np.ndarray
    rows: dict[str, np.ndarray]
    """For each part, the indices of its rows in `inputs`, in the part's own order."""

    def split(self, predictions: np.ndarray) -> dict[str, np.ndarray]:
        """Each part's predictions. Raises ValueError on the wrong shape or non-finite values."""
        values = np.asarray(predictions, dtype=np.float64)
        if values.ndim == 2 and values.shape[1] == 1:
            values = values[:, 0]
        if values.shape != (len(self.inputs),):
            raise ValueError(
                f"predictions have shape {values.shape}; the inputs had {len(self.inputs)} rows "
                "(one prediction per row expected)"
            )
        if not np.all(np.isfinite(values)):
            raise ValueError("predictions contain NaN or infinite values")
        return {name: values[index] for name, index in self.rows.items()}


NPY_MAGIC = b"\x93NUMPY"


def load_predictions(raw: bytes) -> np.ndarray:
    """A candidate's predictions file as an array. Only a plain `.npy` array is accepted (no pickle,
    no `.npz` archive): anything else raises ValueError saying what the file was."""
    if not raw.startswith(NPY_MAGIC):
        kind = (
            "a zip archive (.npz?)" if raw.startswith(b"PK") else f"{len(raw)} bytes without the .npy header"
        )
        raise ValueError(f"the predictions file is {kind}; write one array with numpy.save")
    try:
        return np.load(io.BytesIO(raw), allow_pickle=False)
    except (OSError, EOFError, TypeError, SyntaxError) as exc:  # a truncated or malformed header
        raise ValueError(f"the predictions file is not a readable .npy array: {exc}") from exc


def stage_inputs(parts: dict[str, np.ndarray], seed: int) -> StagedInputs:
    """Concatenate the parts' inputs and shuffle them with a harness-secret permutation."""
    stacked = np.concatenate(list(parts.values()), axis=0)
    order = np.random.default_rng(seed).permutation(len(stacked))
    position = np.empty_like(order)
    position[order] = np.arange(len(order))
    rows, start = {}, 0
    for name, values in parts.items():
        rows[name] = position[start : start + len(values)]
        start += len(values)
    return StagedInputs(inputs=stacked[order], rows=rows)


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
