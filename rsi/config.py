"""The run configuration: one validated object that decides every part of a run.

It is resolved once (CLI flags over defaults), written to the run directory and to the first
trajectory event, and read back unchanged by `rsi resume` and `rsi replay --verify`.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from agent.config import ClaudeConfig, OfflineConfig, ReplayConfig
from rsi.registry import ReviewMode
from rsi.search.strategies import StrategyConfig
from sandbox.base import SandboxConfig
from sandbox.integrity import IntegrityConfig

RUN_CONFIG_FILE = "run.json"


class CheckpointConfig(BaseModel):
    """When a headless run pauses for a human (in the spirit of METR Vivaria's checkpoints).

    A paused run records the candidate as queued, writes a `checkpoint` event and stops; decide it
    with `rsi review RUN_DIR`, then continue with `rsi resume RUN_DIR`.
    """

    model_config = ConfigDict(extra="forbid")

    metric_jump_spreads: float | None = Field(default=None, gt=0)
    """Pause when a candidate's metric improves on its parent's by more than this many spreads."""
    min_spread: float = Field(default=0.01, gt=0)
    """Smallest spread used for metric_jump_spreads (one seed has no spread of its own)."""
    budget_fraction: float | None = Field(default=None, gt=0, le=1)
    """Pause once when this fraction of a budget (generations, wall time, dollars) is used."""
    finding_rules: list[str] = Field(default_factory=list)
    """Pause when a finding of one of these policy rule ids appears in a verdict."""
    promotion: bool = False
    """Bootstrapping targets: pause before a candidate that would promote its student to teacher is
    decided (a human looks at every successor before it teaches the next generation)."""


class RunConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    run_id: str = Field(default_factory=lambda: secrets.token_hex(4))
    """Short unique id of the run; labels every sandbox it creates."""
    target: Path
    """The target repository (a directory with an rsi.toml)."""
    run_dir: Path
    """Where the trajectory, lineage, diffs and logs are written."""
    generations: int = Field(default=5, ge=0)
    """How many candidates to propose and evaluate."""
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2], min_length=1)
    """Training seeds per candidate: the metric is their mean, the noise their spread."""
    max_seeds: int | None = Field(default=None, ge=1)
    """Racing cap: a candidate whose paired gain over its parent is positive but not significant at
    the policy's confidence is measured, with its parent, on extra seeds up to this many in all
    before it is judged. None = twice `seeds`; no more than `seeds` turns racing off."""
    confirm_elites: bool = True
    """Re-measure an accepted candidate (and its parent) on fresh seeds before it first becomes a
    parent; one that no longer beats its parent there is a lucky score, never chosen as a parent."""
    heldout: str | None = None
    """The held-out set: a built-in name or the absolute path of a .npz/.py file outside the
    target's tree (`--heldout`). None: the target's [metric].heldout; resolved when the run starts."""
    heldout_sha256: str | None = None
    """sha256 of the held-out file, recorded when the run starts: a continued or re-executed run
    refuses a file that changed since. None for a built-in set."""
    heldout_seed: int | None = None
    """Seed of the harness-owned held-out set; never shown to the proposer. None: derived from the
    target's identity (its name and held-out set), so every run of a target is scored on the same
    set and runs compare; resolved when the run starts and recorded."""
    heldout_size: int = Field(default=2000, gt=0)
    """Number of held-out examples."""
    lockbox_seed: int | None = None
    """Seed of the lockbox set: scored for every candidate, never used for a decision, never shown.
    None: derived from the held-out seed."""
    lockbox_size: int | None = Field(default=None, gt=0)
    """Number of lockbox examples; None: as many as the held-out (selection) set."""
    integrity: IntegrityConfig = Field(default_factory=IntegrityConfig)
    """The harness's reward-hacking checks on every candidate."""
    backend: Literal["docker", "bwrap"] = "docker"
    """Isolation backend for every evaluation."""
    ray: str | None = None
    """Ray cluster address ("auto" = the cluster this machine belongs to): each candidate's sandbox
    then runs on a worker node, with that node's own `backend`; None = on this machine."""
    proposer: Literal["offline", "claude", "replay"] = "offline"
    """Who proposes changes."""
    proposer_seed: int = 0
    """Seed of the offline proposer."""
    replay_from: Path | None = None
    """Trajectory whose recorded proposals the replay proposer feeds back."""
    policy: str = "default"
    """A shipped policy name (default, strict) or a path to a policy YAML."""
    review: ReviewMode = "auto"
    """Who decides: the policy (auto), nobody until morning (queue), stop at first review (strict), the TUI (human)."""
    human_reviews_denials: bool = False
    """In the review app, stop at candidates the policy denied too (they can only be rejected or
    skipped). By default the policy rejects them itself; they stay visible in the run's list."""
    max_wall_s: float | None = None
    """Stop starting new generations after this many seconds."""
    max_dollars: float | None = None
    """Stop starting new generations after this much model spend."""
    candidates: int = Field(default=1, ge=1)
    """K: candidates proposed from the same parent per generation and evaluated in parallel; each
    has its own number (gen-N) in the trajectory, and at most one of them is accepted."""
    strategy: StrategyConfig = Field(default_factory=StrategyConfig)
    """How each candidate's parent is chosen from the archive of evaluated nodes (`--strategy`):
    greedy (the newest accepted commit, a line), best-first or archive (a tree of branches)."""
    max_evaluations: int | None = Field(default=None, ge=1)
    """Stop after this many candidates are evaluated (a budget beside generations, wall time, dollars)."""
    parallel: int | None = Field(default=None, ge=1)
    """Candidates the evaluator measures at once (TrustedEvaluator.evaluate_many); None = CPU cores
    (with --ray: the sandboxes the cluster's usable nodes run at once)."""
    test_timeout_s: float = Field(default=120.0, gt=0)
    """Wall-clock limit of the target's test command."""
    checkpoints: CheckpointConfig = Field(default_factory=CheckpointConfig)
    """When to pause the run for a human."""
    sandbox: SandboxConfig = Field(default_factory=SandboxConfig)
    """Isolation settings (hardened by default)."""
    claude: ClaudeConfig = Field(default_factory=ClaudeConfig)
    """Claude proposer settings."""

    def proposer_config(self) -> BaseModel:
        """The chosen proposer's own config (rsi.registry.PROPOSERS builds the proposer from it)."""
        configs: dict[str, BaseModel] = {
            "offline": OfflineConfig(seed=self.proposer_seed),
            "claude": self.claude,
            "replay": ReplayConfig(trajectory=self.replay_from),
        }
        return configs[self.proposer]

    def save(self) -> Path:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        path = self.run_dir / RUN_CONFIG_FILE
        path.write_text(self.model_dump_json(indent=2) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, run_dir: Path) -> RunConfig:
        return cls.model_validate_json((run_dir / RUN_CONFIG_FILE).read_text(encoding="utf-8"))
