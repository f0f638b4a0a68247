"""Harness-owned held-out sets, the providers they come from, and the metrics that score predictions.

A held-out set is made on the host, from a seed the candidate never sees, by a *provider*; only its
inputs are ever written where a container can read them. The labels stay in this process.

Three kinds of provider, named by `[metric].heldout` in the target's rsi.toml or by `--heldout`:

- a built-in name (`teacher-regression`, the bundled target's task);
- a `.npz` file with `inputs` and `labels` (and optionally `lockbox_inputs`, `lockbox_labels`);
- a `.py` file, imported on the host only, defining `generate(seed, n) -> (inputs, labels)` and
  optionally `score(predictions, labels) -> float` (the `custom` metric) and, for the integrity
  checks that need one, `label_function = "data.py:teacher"` (where the target computes its labels)
  with `label(inputs) -> labels` (the harness's own copy of it).

A file provider is recorded by the sha256 of its bytes, so a continued or re-executed run can say
when the file changed.

Two sets per run: the *selection* set, whose metric every decision uses, and the *lockbox*, scored
for every candidate but never used for a decision, so that a lineage that overfits the selection
set by adaptive choice shows up as a gap between the two. The candidate's predict command sees both
(and the integrity probes) shuffled into one file, so it cannot tell which rows decide its fate.

    provider = load_provider("teacher-regression")        # or Path("task.npz"), Path("task.py")
    heldout = provider.selection(seed=1234, size=2000)
    lockbox = provider.lockbox(seed=derive_seed(1234, "lockbox"), size=2000)
    staged = stage_inputs({"selection": heldout.inputs, "lockbox": lockbox.inputs}, seed=99)
    parts = staged.split(predictions)           # validated: one finite row per staged row
    score("r2", parts["selection"], heldout.labels)
"""

from __future__ import annotations

import hashlib
import importlib.util
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Protocol

import numpy as np

from core.errors import ConfigError
from core.target import CLASS_METRICS, PROBABILITY_METRICS
from sandbox.artifact import load_array

Generator = Callable[[int, int], tuple[np.ndarray, np.ndarray]]
Scorer = Callable[[np.ndarray, np.ndarray], float]


@dataclass(frozen=True)
class LabelFunction:
    """Where the target computes its labels, and the harness's own copy of that function."""

    file: str
    """Path of the defining file, relative to the target's root."""
    name: str
    """Name of the function in that file."""
    copy: Callable[[np.ndarray], np.ndarray] | None = None
    """The harness's copy (labels the relabelled control's inputs); None: the checks that need it skip."""


@dataclass(frozen=True)
class HeldoutSet:
    name: str
    seed: int
    inputs: np.ndarray
    labels: np.ndarray
    provider: HeldoutProvider | None = field(default=None, compare=False, repr=False)
    """Where the set came from: its label function and fresh rows, for the integrity checks."""


class HeldoutProvider(Protocol):
    """Where held-out sets come from; one per run, chosen by `load_provider`."""

    name: str
    """Shown in the trajectory and reports: the built-in name or the file's name."""
    source: str
    """The built-in name or the file's absolute path (recorded with the run)."""
    content_hash: str | None
    """sha256 of the file's bytes; None for a built-in set."""
    label_function: LabelFunction | None
    scorer: Scorer | None
    """The provider's own `score(predictions, labels)` (metric `custom`); None if it has none."""

    def selection(self, seed: int, size: int) -> HeldoutSet: ...

    def lockbox(self, seed: int, size: int) -> HeldoutSet | None: ...

    def fresh_inputs(self, seed: int, size: int) -> np.ndarray:
        """Inputs from the held-out distribution that are not the selection set's (labels unused)."""
        ...


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


GENERATORS: dict[str, Generator] = {
    "teacher-regression": _teacher_regression,
}
"""The built-in held-out sets, by the name `[metric].heldout` gives."""

BUILTIN_LABEL_FUNCTIONS: dict[str, LabelFunction] = {
    "teacher-regression": LabelFunction("data.py", "teacher", _teacher),
}
"""Where the bundled targets define the function that makes the labels, with the harness's copy.
Code on the prediction path that calls it is computing the answers, not learning them."""

LABEL_FUNCTIONS: dict[str, tuple[str, str]] = {
    name: (found.file, found.name) for name, found in BUILTIN_LABEL_FUNCTIONS.items()
}
"""(file, function) of each built-in set's label function."""
LABEL_COPIES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    name: found.copy for name, found in BUILTIN_LABEL_FUNCTIONS.items() if found.copy is not None
}
"""The harness's own copy of each built-in set's label function."""


def derive_seed(seed: int, purpose: str) -> int:
    """A seed for another harness-owned set, derived from the run's held-out seed and a purpose."""
    state = np.random.SeedSequence([seed, zlib.crc32(purpose.encode("utf-8"))]).generate_state(1)
    return int(state[0] & 0x7FFFFFFF)


@dataclass
class GeneratedProvider:
    """Sets drawn from a generator `(seed, n) -> (inputs, labels)`: a built-in one or a `.py` file's."""

    name: str
    source: str
    generate: Generator
    content_hash: str | None = None
    label_function: LabelFunction | None = None
    scorer: Scorer | None = None

    def selection(self, seed: int, size: int) -> HeldoutSet:
        inputs, labels = self._draw(seed, size)
        return HeldoutSet(self.name, seed, inputs, labels, provider=self)

    def lockbox(self, seed: int, size: int) -> HeldoutSet | None:
        return self.selection(seed, size)

    def fresh_inputs(self, seed: int, size: int) -> np.ndarray:
        return self._draw(seed, size)[0]

    def _draw(self, seed: int, size: int) -> tuple[np.ndarray, np.ndarray]:
        try:
            inputs, labels = self.generate(seed, size)
        except Exception as exc:
            raise ConfigError(
                f"{self.source}: generate({seed}, {size}) raised {type(exc).__name__}: {exc}. "
                "Fix the held-out provider and try again."
            ) from exc
        return checked_arrays(
            np.asarray(inputs), np.asarray(labels), f"{self.source}: generate({seed}, {size})"
        )


@dataclass
class ArrayProvider:
    """Fixed arrays from a `.npz` file: the selection set is all of `inputs`/`labels` (the seed
    only orders them), the lockbox is `lockbox_inputs`/`lockbox_labels` when the file has them."""

    name: str
    source: str
    content_hash: str | None
    inputs: np.ndarray
    labels: np.ndarray
    lockbox_inputs: np.ndarray | None = None
    lockbox_labels: np.ndarray | None = None
    label_function: LabelFunction | None = None
    scorer: Scorer | None = None

    def selection(self, seed: int, size: int) -> HeldoutSet:
        return HeldoutSet(self.name, seed, self.inputs, self.labels, provider=self)

    def lockbox(self, seed: int, size: int) -> HeldoutSet | None:
        if self.lockbox_inputs is None or self.lockbox_labels is None:
            return None
        return HeldoutSet(self.name, seed, self.lockbox_inputs, self.lockbox_labels, provider=self)

    def fresh_inputs(self, seed: int, size: int) -> np.ndarray:
        """A fixed file has no unseen rows: selection rows in another order stand in (the
        row-independence check only needs rows the candidate did not expect)."""
        pool = self.inputs if self.lockbox_inputs is None else self.lockbox_inputs
        rows = np.random.default_rng(seed).choice(len(pool), size=min(size, len(pool)), replace=False)
        return pool[rows]


def checked_arrays(inputs: np.ndarray, labels: np.ndarray, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Inputs and labels a held-out set can be made of, or a ConfigError saying what is wrong."""
    if inputs.dtype == object or labels.dtype == object:
        raise ConfigError(f"{where}: object arrays are not held-out data; use numeric arrays.")
    if inputs.ndim < 1 or labels.ndim < 1 or len(inputs) != len(labels) or len(inputs) == 0:
        raise ConfigError(
            f"{where}: inputs have shape {inputs.shape} and labels {labels.shape}; both need the same "
            "number of rows (at least one), one label per input row."
        )
    return inputs, labels


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _load_npz(path: Path) -> ArrayProvider:
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: np.asarray(data[key]) for key in data.files}
    except (OSError, ValueError, EOFError) as exc:
        raise ConfigError(f"{path}: not a readable .npz archive of plain arrays ({exc}).") from exc
    missing = [key for key in ("inputs", "labels") if key not in arrays]
    if missing:
        raise ConfigError(
            f"{path}: no {' or '.join(repr(key) for key in missing)} array; a held-out .npz holds "
            f"'inputs' and 'labels' (optionally 'lockbox_inputs', 'lockbox_labels'); it has: "
            f"{', '.join(sorted(arrays)) or 'nothing'}."
        )
    inputs, labels = checked_arrays(arrays["inputs"], arrays["labels"], str(path))
    lockbox_inputs, lockbox_labels = arrays.get("lockbox_inputs"), arrays.get("lockbox_labels")
    if (lockbox_inputs is None) != (lockbox_labels is None):
        raise ConfigError(f"{path}: 'lockbox_inputs' and 'lockbox_labels' go together; add or remove both.")
    if lockbox_inputs is not None and lockbox_labels is not None:
        checked_arrays(lockbox_inputs, lockbox_labels, f"{path} (lockbox)")
    return ArrayProvider(
        name=path.name,
        source=str(path),
        content_hash=file_sha256(path),
        inputs=inputs,
        labels=labels,
        lockbox_inputs=lockbox_inputs,
        lockbox_labels=lockbox_labels,
    )


def _import_file(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"rsi_heldout_{file_sha256(path)[:12]}", path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"{path}: cannot be imported as a Python module.")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise ConfigError(
            f"{path}: importing the held-out provider raised {type(exc).__name__}: {exc}."
        ) from exc
    return module


def _declared_label_function(module: ModuleType, path: Path) -> LabelFunction | None:
    declared = getattr(module, "label_function", None)
    if declared is None:
        return None
    file, _, name = str(declared).partition(":")
    if not file or not name:
        raise ConfigError(
            f"{path}: label_function = {declared!r}; write it as 'FILE:FUNCTION' (where the target "
            "computes its labels, relative to its root), e.g. 'data.py:teacher'."
        )
    copy = getattr(module, "label", None)
    return LabelFunction(file, name, copy if callable(copy) else None)


def _load_python(path: Path) -> GeneratedProvider:
    module = _import_file(path)
    generate = getattr(module, "generate", None)
    if not callable(generate):
        raise ConfigError(
            f"{path}: defines no generate(seed, n) -> (inputs, labels); a held-out .py provider needs one."
        )
    scorer = getattr(module, "score", None)
    return GeneratedProvider(
        name=path.name,
        source=str(path),
        generate=generate,
        content_hash=file_sha256(path),
        label_function=_declared_label_function(module, path),
        scorer=scorer if callable(scorer) else None,
    )


def load_provider(source: str | Path) -> HeldoutProvider:
    """The provider a name or file stands for: a built-in name, a `.npz` or a `.py` file."""
    text = str(source)
    if text in GENERATORS:
        return GeneratedProvider(
            name=text,
            source=text,
            generate=GENERATORS[text],
            label_function=BUILTIN_LABEL_FUNCTIONS.get(text),
        )
    path = Path(text).expanduser()
    if path.suffix not in (".npz", ".py"):
        raise ConfigError(
            f"unknown held-out set {text!r}: give a .npz file (inputs, labels), a .py file defining "
            f"generate(seed, n), or a built-in name the harness knows: {', '.join(sorted(GENERATORS))}."
        )
    if not path.is_file():
        raise ConfigError(f"{path}: no such held-out file. Pass --heldout with an existing .npz or .py file.")
    path = path.resolve()
    return _load_npz(path) if path.suffix == ".npz" else _load_python(path)


def load_heldout(name: str | Path, seed: int, size: int = 2000) -> HeldoutSet:
    """The selection set of a provider (see `load_provider`)."""
    return load_provider(name).selection(seed, size)


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
        if values.ndim not in (1, 2) or values.shape[0] != len(self.inputs):
            raise ValueError(
                f"predictions have shape {values.shape}; the inputs had {len(self.inputs)} rows "
                "(one prediction, or one row of class probabilities, per input row expected)"
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
        return load_array(raw)
    except (ValueError, OSError, EOFError, TypeError, SyntaxError) as exc:  # a malformed header or data
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


def _class_ids(labels: np.ndarray, metric: str) -> np.ndarray:
    if labels.ndim != 1 or not np.all(labels == np.round(labels)) or np.any(labels < 0):
        raise ValueError(f"metric {metric!r} needs one non-negative class id per row as labels")
    return labels.astype(np.int64)


def _probabilities(predictions: np.ndarray, classes: np.ndarray, metric: str) -> np.ndarray:
    """Each row's probability of its true class (a 1-D prediction is the probability of class 1)."""
    if predictions.ndim == 1:
        predictions = np.stack([1.0 - predictions, predictions], axis=1)
    if predictions.ndim != 2 or predictions.shape[0] != len(classes):
        raise ValueError(f"metric {metric!r} needs one row of class probabilities per input row")
    if int(classes.max(initial=0)) >= predictions.shape[1]:
        raise ValueError(
            f"predictions give {predictions.shape[1]} class probabilities; labels go up to {int(classes.max())}"
        )
    return np.clip(predictions[np.arange(len(classes)), classes], 1e-12, 1.0)


def score(metric: str, predictions: np.ndarray, labels: np.ndarray, scorer: Scorer | None = None) -> float:
    """Score predictions on the host. Raises ValueError on predictions of the wrong shape or non-finite."""
    predictions = np.asarray(predictions, dtype=np.float64)
    if not np.all(np.isfinite(predictions)):
        raise ValueError("predictions contain NaN or infinite values")
    if metric == "custom":
        if scorer is None:
            raise ConfigError(
                "metric 'custom' needs a held-out .py provider that defines score(predictions, labels)"
            )
        return float(scorer(predictions, labels))
    if metric in PROBABILITY_METRICS:
        nats = -np.log(_probabilities(predictions, _class_ids(labels, metric), metric))
        return float(np.mean(nats) / (np.log(2.0) if metric == "bits_per_char" else 1.0))
    if metric in CLASS_METRICS:
        classes = _class_ids(labels, metric)
        chosen = (
            np.argmax(predictions, axis=1) if predictions.ndim == 2 and predictions.shape[1] > 1 else None
        )
        if chosen is None:
            chosen = (
                np.round(predictions.reshape(len(classes), -1)[:, 0])
                if predictions.size == len(classes)
                else None
            )
        if chosen is None:
            raise ValueError(f"predictions have shape {predictions.shape}; labels {labels.shape}")
        return float(np.mean(chosen == classes))
    if predictions.ndim == 2 and predictions.shape[1] == 1:
        predictions = predictions[:, 0]
    if predictions.shape != labels.shape:
        raise ValueError(f"predictions have shape {predictions.shape}, the held-out labels {labels.shape}")
    error = predictions - labels
    if metric == "mse":
        return float(np.mean(error**2))
    if metric == "mae":
        return float(np.mean(np.abs(error)))
    if metric == "r2":
        return float(1.0 - np.sum(error**2) / np.sum((labels - labels.mean()) ** 2))
    raise ConfigError(
        f"unknown metric {metric!r}; known: r2, mse, mae, accuracy, log_loss, bits_per_char, custom"
    )


def perfect_score(metric: str, labels: np.ndarray, scorer: Scorer | None = None) -> float | None:
    """What predictions equal to the answers score (None: the metric cannot say, e.g. a custom
    scorer that does not take labels as predictions)."""
    if metric in PROBABILITY_METRICS:
        return 0.0  # the true class at probability 1
    try:
        value = score(metric, labels, labels, scorer)
    except Exception:  # a custom scorer is the target's own code: anything can fail
        return None
    return value if np.isfinite(value) else None


def null_predictions(metric: str, labels: np.ndarray, width: int | None = None) -> np.ndarray:
    """What a predictor that ignores its input says for every row: the labels' mean, the most
    common class, or the class frequencies. The floor the integrity controls are measured from."""
    if metric in PROBABILITY_METRICS or (metric in CLASS_METRICS and width):
        classes = labels.astype(np.int64)
        counts = np.bincount(classes, minlength=max(width or 0, int(classes.max(initial=0)) + 1))
        return np.tile(counts / max(1, len(classes)), (len(labels), 1))
    if metric in CLASS_METRICS:
        return np.full(labels.shape, float(np.bincount(labels.astype(np.int64)).argmax()))
    return np.broadcast_to(labels.mean(axis=0), labels.shape).astype(np.float64)


def null_score(
    metric: str, labels: np.ndarray, scorer: Scorer | None = None, width: int | None = None
) -> float:
    return score(metric, null_predictions(metric, labels, width), labels, scorer)
