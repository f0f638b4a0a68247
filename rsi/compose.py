"""The composition root: the one place that turns a RunConfig into concrete parts.

Backends, proposers and reviewers are looked up by name in small registries with lazy imports, so
an optional part (the Claude agent, the TUI) costs nothing unless chosen, and an unknown name gets
an error that lists the valid ones.
"""

from __future__ import annotations

import importlib
import platform
from pathlib import Path
from typing import Any

from policies.engine import LoadedPolicy, load_policy, resolve_policy_path
from rsi import __version__
from rsi.config import RunConfig
from rsi.contracts import ProgressCallback, Proposer, Reviewer
from rsi.errors import ConfigError
from rsi.loop import GenerationLoop, NullObserver, Observer, RunParts
from rsi.registry import BACKENDS, PROPOSERS
from rsi.target import TargetSpec
from rsi.trajectory import TrajectoryWriter
from sandbox.base import Backend
from sandbox.evaluate import TrustedEvaluator
from sandbox.heldout import load_heldout
from sandbox.lineage import Lineage

TRAJECTORY_FILE = "trajectory.jsonl"
LINEAGE_DIR = "lineage"


def load_class(registry: dict[str, str], name: str, what: str) -> Any:
    try:
        dotted = registry[name]
    except KeyError:
        raise ConfigError(f"unknown {what} {name!r}; choose one of: {', '.join(registry)}") from None
    module_name, _, attribute = dotted.rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"the {what} {name!r} is not available in this installation ({exc})") from exc


def make_backend(config: RunConfig, spec: TargetSpec) -> Backend:
    backend_class = load_class(BACKENDS, config.backend, "backend")
    image = config.sandbox.image or spec.sandbox.image
    return backend_class(config.sandbox, image=image, run_id=config.run_id)


def make_proposer(config: RunConfig, backend: Backend) -> Proposer:
    proposer_class = load_class(PROPOSERS, config.proposer, "proposer")
    if config.proposer == "offline":
        return proposer_class(seed=config.proposer_seed)
    if config.proposer == "replay":
        if config.replay_from is None:
            raise ConfigError("the replay proposer needs a trajectory to replay (--replay-from TRAJ).")
        return proposer_class(config.replay_from, backend=backend)
    return proposer_class(config.claude, backend=backend)


def make_policy(config: RunConfig, spec: TargetSpec) -> LoadedPolicy:
    return load_policy(resolve_policy_path(config.policy), target=spec)


def make_evaluator(
    config: RunConfig,
    spec: TargetSpec,
    lineage: Lineage,
    backend: Backend,
    progress: ProgressCallback | None = None,
    log_dir: Path | None = None,
) -> TrustedEvaluator:
    """The trusted evaluator exactly as a run uses it: selection set, lockbox and integrity checks.

    `rsi run` and `rsi evaluate` both build theirs here, so a one-off evaluation measures (and
    flags) a patch the way the loop would.
    """
    heldout = load_heldout(spec.metric.heldout, seed=config.heldout_seed, size=config.heldout_size)
    spec.check_heldout_labels(heldout.labels)
    lockbox = load_heldout(
        spec.metric.heldout, seed=config.lockbox_seed, size=config.lockbox_size or config.heldout_size
    )
    return TrustedEvaluator(
        spec,
        lineage,
        backend,
        heldout,
        config.seeds,
        log_dir=log_dir or config.run_dir / "logs",
        test_timeout_s=config.test_timeout_s,
        progress=progress,
        parallel=config.parallel,
        lockbox=lockbox,
        integrity=config.integrity,
    )


def make_reviewer(config: RunConfig) -> Reviewer:
    from review.headless import PolicyReviewer

    if config.review == "human":
        raise ConfigError(
            "review mode 'human' needs the TUI; run `rsi run` in a terminal without --headless."
        )
    return PolicyReviewer(config.review)


def build_run(
    config: RunConfig,
    observer: Observer | None = None,
    reviewer: Reviewer | None = None,
    resume: bool = False,
) -> tuple[GenerationLoop, RunParts]:
    """Create (or reopen, with resume=True) a run directory and everything a loop needs."""
    spec = TargetSpec.load(config.target)
    policy = make_policy(config, spec)
    backend = make_backend(config, spec)
    image_id = backend.require_image() if hasattr(backend, "require_image") else backend.image_id()
    backend.remove_orphans()
    lineage_path = config.run_dir / LINEAGE_DIR
    if resume:
        lineage = Lineage(lineage_path)
    else:
        if (config.run_dir / TRAJECTORY_FILE).exists():
            raise ConfigError(
                f"{config.run_dir} already holds a run; continue it with `rsi resume {config.run_dir}` "
                "or choose another --run-dir."
            )
        config.save()
        lineage = Lineage.create(lineage_path, config.target)
    live = observer or NullObserver()
    evaluator = make_evaluator(config, spec, lineage, backend, progress=live.on_progress)
    heldout, lockbox = evaluator.heldout, evaluator.lockbox
    proposer = make_proposer(config, backend)
    if hasattr(proposer, "progress"):  # the agent reports its tool calls live
        proposer.progress = live.on_progress
    trajectory = TrajectoryWriter.open(config.run_dir / TRAJECTORY_FILE, run_id=config.run_id)
    parts = RunParts(
        config=config,
        spec=spec,
        lineage=lineage,
        evaluator=evaluator,
        proposer=proposer,
        policy=policy,
        reviewer=reviewer or make_reviewer(config),
        trajectory=trajectory,
        observer=live,
        run_info={
            "config": config.model_dump(mode="json"),
            "target": spec.model_dump(mode="json"),
            "image": image_id,
            "policy": {
                "name": policy.name,
                "hash": policy.content_hash,
                "source": str(policy.source),
                "text": Path(policy.source).read_text(encoding="utf-8"),
            },
            "heldout": {
                "name": heldout.name,
                "seed": heldout.seed,
                "size": len(heldout.labels),
                "lockbox": {"seed": config.lockbox_seed, "size": len(lockbox.labels) if lockbox else 0},
            },
            "integrity": config.integrity.model_dump(mode="json"),
            "versions": {"rsi": __version__, "python": platform.python_version()},
            "baseline_commit": lineage.head(),
        },
    )
    return GenerationLoop(parts), parts
