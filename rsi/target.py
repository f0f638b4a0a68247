"""The target repository contract: an `rsi.toml` at the root of any git repository.

spec = TargetSpec.load(Path("target_repo"))
spec.commands.train.format(seed=0, out="/tmp/out", steps=spec.budget.steps)
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rsi.errors import ConfigError

TARGET_FILE = "rsi.toml"


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
    """Trains one model. Placeholders: {seed}, {out} (artifact dir), {steps} (the step budget)."""
    predict: str
    """Predicts on held-out inputs. Placeholders: {out}, {inputs} (.npy), {predictions} (.npy to write)."""


class Metric(_Strict):
    name: Literal["r2", "mse", "mae", "accuracy"]
    """How the harness scores predictions against the held-out labels."""
    direction: Literal["higher", "lower"]
    """Whether a higher or a lower value is better."""
    heldout: str
    """Name of the harness-owned held-out set (see sandbox.heldout); never stored in the target."""


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
    """Container image the candidate runs in."""


class TargetSpec(_Strict):
    target: TargetInfo
    commands: Commands
    metric: Metric
    budget: Budget
    protected: Protected = Field(default_factory=Protected)
    sandbox: SandboxSpec = Field(default_factory=SandboxSpec)

    @classmethod
    def load(cls, root: Path) -> TargetSpec:
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
            problems = "; ".join(
                f"[{'.'.join(str(p) for p in err['loc'])}] {err['msg']}" for err in exc.errors()
            )
            raise ConfigError(f"{source}: invalid target contract: {problems}") from exc
