"""The target repository contract: an `rsi.toml` at the root of any git repository.

spec = TargetSpec.load(Path("target_repo"))
spec.train_command(seed=0, out="/tmp/out", steps=spec.budget.steps)
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from core.errors import ConfigError

TARGET_FILE = "rsi.toml"
TEACHER_MOUNT = "/teacher"
"""Where a bootstrapping target's current teacher is mounted, read-only, in every sandbox."""
TEACHER_FILE = "model.npz"
"""The teacher's file name in that mount (and in the harness's store)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TargetInfo(_Strict):
    name: str
    """Short name of the target, shown in the UI and reports."""
    description: str = ""
    """The objective in a sentence or two; the proposer reads it."""


class Commands(_Strict):
    test: str
    """Runs the target's own tests from the repository root; exit code 0 means they pass."""
    train: str
    """Trains one model. Placeholders: {seed}, {out} (artifact dir), {steps} (the step budget), and
    for a target with a [teacher] table {teacher} (the current teacher's file, read-only)."""
    predict: str
    """Predicts on held-out inputs. Placeholders: {out}, {inputs} (.npy), {predictions} (.npy to write)."""


MetricName = Literal["r2", "mse", "mae", "accuracy", "log_loss", "bits_per_char", "custom"]

METRIC_DIRECTIONS: dict[str, Literal["higher", "lower"]] = {
    "r2": "higher",
    "mse": "lower",
    "mae": "lower",
    "accuracy": "higher",
    "log_loss": "lower",
    "bits_per_char": "lower",
}
"""Which way each built-in metric improves; `custom` (the provider's own score) states its own."""

CLASS_METRICS = ("accuracy", "log_loss", "bits_per_char")
"""Metrics whose labels are class ids (non-negative integers, one per row)."""
PROBABILITY_METRICS = ("log_loss", "bits_per_char")
"""Metrics whose predictions are class probabilities (one row per input)."""


class Metric(_Strict):
    name: MetricName
    """How the harness scores predictions against the held-out labels: r2, mse, mae (one number per
    row), accuracy (a class id, or class probabilities, per row), log_loss, bits_per_char (class
    probabilities per row), custom (the held-out .py provider's own score(predictions, labels))."""
    direction: Literal["higher", "lower"]
    """Whether a higher or a lower value is better; may be left out for every metric but custom
    (it is known), and may not contradict the metric."""
    heldout: str | None = None
    """The held-out set: a built-in name (teacher-regression) or a .npz/.py file outside the target's
    tree; `--heldout FILE` overrides it. Never stored in the target."""

    @model_validator(mode="before")
    @classmethod
    def _known_direction(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        known, given = METRIC_DIRECTIONS.get(str(data.get("name"))), data.get("direction")
        if known is not None and given not in (None, known):
            raise ValueError(
                f"[metric].direction = {given!r} contradicts {data.get('name')!r}, which is better "
                f"when {known}; remove [metric].direction or set it to {known!r}"
            )
        return {**data, "direction": given or known} if known else data


class Budget(_Strict):
    steps: int = Field(gt=0)
    """Training step budget, passed to the train command as {steps}."""
    train_seconds: float = Field(gt=0)
    """Wall-clock limit of one training run."""


class Protected(_Strict):
    paths: list[str] = Field(default_factory=list)
    """gitignore-style patterns of files a candidate may not create, modify or delete."""


class SandboxSpec(_Strict):
    image: str = "rsi-sandbox:latest"
    """Base container image (Python 3, numpy, pytest); with packages or apt below, the target's own
    image is built on top of it by `rsi image build --target DIR`."""
    packages: list[str] = Field(default_factory=list)
    """pip requirements beyond numpy and pytest (e.g. "scikit-learn>=1.3"): installed in the target's
    own image (Docker) and in its own environment (bwrap), never from inside a sandbox."""
    apt: list[str] = Field(default_factory=list)
    """Debian packages the target needs, installed in its own image (Docker only; bwrap runs the
    host's system libraries)."""


class TeacherSpec(_Strict):
    initial: str
    """Path, inside the target, of the generation-0 teacher: a data-only `.npz` the train command
    reads through {teacher}. An accepted generation's trained artifact becomes the next teacher."""
    compute_budget_s: float | None = Field(default=None, gt=0)
    """CPU seconds one student's train phase may use (its teacher generating the data + its training);
    a generation whose students use more on average is a `succession.compute-budget` finding in the
    report and the review app. None: no budget (the train phase's `train_seconds` still applies)."""

    @field_validator("initial")
    @classmethod
    def _inside_the_target(cls, value: str) -> str:
        """The generation-0 teacher is read from the target's own tree, never from elsewhere on the host."""
        parts = Path(value).parts
        if not value.strip() or Path(value).is_absolute() or ".." in parts:
            raise ValueError(
                f"{value!r} is not a path inside the target: give the teacher's path relative to the "
                "target's root, without '..' (e.g. initial = \"teacher0.npz\")"
            )
        return value


class TargetSpec(_Strict):
    target: TargetInfo
    commands: Commands
    metric: Metric
    budget: Budget
    protected: Protected = Field(default_factory=Protected)
    sandbox: SandboxSpec = Field(default_factory=SandboxSpec)
    teacher: TeacherSpec | None = None
    """Present for a bootstrapping target, whose students learn from a teacher the harness holds."""

    def train_command(self, seed: int, out: str, steps: int) -> str:
        """The train command for one seed; {teacher} is the mounted teacher's path."""
        return self.commands.train.format(
            seed=seed, out=out, steps=steps, teacher=f"{TEACHER_MOUNT}/{TEACHER_FILE}"
        )

    @model_validator(mode="after")
    def _teacher_placeholder_matches(self) -> TargetSpec:
        uses_teacher = "{teacher}" in self.commands.train
        if uses_teacher and self.teacher is None:
            raise ValueError(
                "[commands].train uses {teacher} but there is no [teacher] table: add one with "
                "initial = the path of the generation-0 teacher, or drop the placeholder"
            )
        if self.teacher is not None and not uses_teacher:
            raise ValueError(
                "[teacher] is set but [commands].train never reads {teacher}: pass it to the train command"
            )
        return self

    def check_heldout_labels(self, labels: Sequence[float] | Any, source: str | None = None) -> None:
        """Refuse a metric that cannot score this held-out set's labels, naming the key: class
        metrics need one non-negative integer class id per row, r2/mse/mae one number per row."""
        values = np.asarray(labels)
        named = source is None or source == self.metric.heldout
        where = f"[metric].heldout = {self.metric.heldout!r}" if named else f"the held-out file {source}"
        name = self.metric.name
        if name == "custom":
            return
        if values.dtype.kind not in "iufb" or values.ndim != 1:
            raise ConfigError(
                f"rsi.toml: [metric].name = {name!r} cannot score {where}: its labels have shape "
                f"{values.shape} and type {values.dtype}, one number per row is needed. Use metric "
                "'custom' with a score(predictions, labels) in a .py provider for other labels."
            )
        if name in CLASS_METRICS and (np.any(values != np.round(values)) or np.any(values < 0)):
            raise ConfigError(
                f"rsi.toml: [metric].name = {name!r} cannot score {where}: its labels "
                "are continuous values, not class ids, so every candidate would score 0. Set "
                "[metric].name to r2, mse or mae, or give a held-out set whose labels are class ids."
            )

    @classmethod
    def load(cls, root: Path) -> TargetSpec:
        if not root.is_dir():
            raise ConfigError(
                f"{root}: no such target directory. Pass --target DIR, a git repository with an "
                f"{TARGET_FILE} at its root (the bundled one is target_repo/)."
            )
        path = root / TARGET_FILE
        if not path.is_file():
            raise ConfigError(
                f"{path}: no {TARGET_FILE} found. A target is a git repository with an {TARGET_FILE} "
                "at its root that names its commands, metric and budget; see target_repo/rsi.toml."
            )
        return cls.parse_text(path.read_text(encoding="utf-8"), source=str(path))

    @classmethod
    def parse_text(cls, text: str, source: str = TARGET_FILE) -> TargetSpec:
        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{source}: not valid TOML ({exc}). Fix the syntax and try again.") from exc
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            problems = "; ".join(describe_problem(cls, err) for err in exc.errors())
            raise ConfigError(
                f"{source}: invalid target contract: {problems}. See the target contract in README.md "
                "or target_repo/rsi.toml for a complete example."
            ) from exc


def toml_key(location: tuple[int | str, ...]) -> str:
    """A validation location as the user wrote it in rsi.toml: ("metric", "heldout") → [metric].heldout."""
    parts = [str(part) for part in location]
    if len(parts) == 1:
        return f"[{parts[0]}]"
    return f"[{'.'.join(parts[:-1])}].{parts[-1]}"


def known_keys(model: type[BaseModel], location: tuple[int | str, ...]) -> list[str]:
    """The keys the contract accepts at the table that holds `location`."""
    for part in location[:-1]:
        field = model.model_fields.get(str(part))
        annotation = field.annotation if field else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return list(model.model_fields)


def describe_problem(model: type[BaseModel], error: Any) -> str:
    """One validation error in the words of the file: which key, what is wrong, what to do."""
    location = tuple(error["loc"])
    if not location:  # a rule across tables (a model validator) names its keys in its message
        return str(error["msg"]).removeprefix("Value error, ")
    key = toml_key(location)
    kind = error["type"]
    if kind == "extra_forbidden":
        allowed = known_keys(model, location)
        where = f"; known here: {', '.join(allowed)}" if allowed else ""
        return f"unknown key {key}: remove it or correct its spelling{where}"
    if kind == "missing":
        if len(location) == 1:
            return f"the table {key} is missing: add it"
        return f"{key} is missing: add it"
    return f"{key} = {error.get('input')!r}: {error['msg']}"
