"""The composition root: the one place that turns a RunConfig into concrete parts.

Backends, proposers and reviewers are built through the registries of rsi.registry, each from its
own config, with lazy imports, so an optional part (the Claude agent, the TUI) costs nothing unless
chosen, and an unknown name gets an error that lists the valid ones.
"""

from __future__ import annotations

import hashlib
import platform
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.contracts import Candidate, ProgressCallback, Proposer, Reviewer
from core.errors import ConfigError
from core.run import NullObserver, Observer
from core.target import TargetSpec
from core.trajectory import TRAJECTORY_FILE, TrajectoryWriter
from policies.engine import LoadedPolicy, load_policy, parse_policy, resolve_policy_path
from rsi import __version__
from rsi.config import RUN_CONFIG_FILE, RunConfig
from rsi.loop import GenerationLoop, RunParts
from rsi.promotion import judge_successors, promote, start_teacher
from rsi.registry import BACKENDS, PROPOSERS, REVIEWERS
from sandbox.base import Backend
from sandbox.evaluate import TrustedEvaluator
from sandbox.heldout import HeldoutProvider, derive_seed, load_provider
from sandbox.lineage import Lineage
from sandbox.scratch import remove_stale
from sandbox.target_env import target_image_tag

LINEAGE_DIR = "lineage"


def make_backend(config: RunConfig, spec: TargetSpec, image: str | None = None) -> Backend:
    """The backend every sandbox of the run opens on; with --ray, the placement on the cluster's
    worker nodes (each builds this same backend with its own engine)."""
    image = image or config.sandbox.image or target_image_tag(spec)
    if config.ray is not None:
        from sandbox.ray_placement import RayConfig, RayPlacement

        return RayPlacement(
            config.backend, config.sandbox, image, config.run_id, RayConfig(address=config.ray)
        )
    sandbox = BACKENDS.load(config.backend).for_target(config.sandbox, spec, config.target)
    backend: Backend = BACKENDS.build(config.backend, sandbox, image=image, run_id=config.run_id)
    return backend


def make_proposer(config: RunConfig, backend: Backend, progress: ProgressCallback | None = None) -> Proposer:
    """The chosen proposer, built from its own config; `progress` sees an agent's tool calls live."""
    proposer: Proposer = PROPOSERS.build(
        config.proposer, config.proposer_config(), backend=backend, progress=progress
    )
    return proposer


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
    provider = resolve_heldout(config, spec)
    heldout_seed, lockbox_seed = resolve_heldout_seeds(config, spec)
    heldout = provider.selection(heldout_seed, config.heldout_size)
    spec.check_heldout_labels(heldout.labels, provider.source)
    if spec.metric.name == "custom" and provider.scorer is None:
        raise ConfigError(
            f"rsi.toml: [metric].name = 'custom' but the held-out provider {provider.source} defines no "
            "score(predictions, labels); give a .py provider with one, or name a built-in metric."
        )
    lockbox = provider.lockbox(lockbox_seed, config.lockbox_size or config.heldout_size)
    evaluator = TrustedEvaluator(
        spec,
        lineage,
        backend,
        heldout,
        config.seeds,
        log_dir=log_dir or config.run_dir / "logs",
        test_timeout_s=config.test_timeout_s,
        progress=progress,
        parallel=config.parallel or (backend.capacity() if hasattr(backend, "capacity") else None),
        lockbox=lockbox,
        integrity=config.integrity,
    )
    start_teacher(config.run_dir, config.target, spec, evaluator)
    return evaluator


def resolve_heldout(config: RunConfig, spec: TargetSpec) -> HeldoutProvider:
    """The run's held-out provider: `--heldout`, else the target's [metric].heldout. The first time
    its source and content hash are recorded in config; later (resume, verify) a file whose bytes
    changed since is refused."""
    source = config.heldout or spec.metric.heldout
    if source is None:
        raise ConfigError(
            f"{config.target / 'rsi.toml'}: no held-out set: [metric].heldout is not set and no "
            "--heldout FILE was given. Pass --heldout with a .npz (inputs, labels) or a .py "
            "(generate(seed, n)) kept outside the target's tree."
        )
    if source.endswith((".npz", ".py")) and not Path(source).expanduser().is_absolute():
        source = str((config.target / source).resolve())  # rsi.toml names it relative to the target
    provider = load_provider(source)
    if provider.content_hash is not None and Path(provider.source).is_relative_to(config.target.resolve()):
        raise ConfigError(
            f"{provider.source}: the held-out file is inside the target's tree ({config.target}), where "
            "a candidate could read its labels. Move it outside the target and pass --heldout FILE."
        )
    if config.heldout_sha256 is not None and provider.content_hash != config.heldout_sha256:
        raise ConfigError(
            f"held-out file {provider.source} changed since the run started (sha256 now "
            f"{(provider.content_hash or 'none')[:12]}, recorded {config.heldout_sha256[:12]}): its "
            "scores would not compare. Restore the file the run was started with, or start a new run."
        )
    config.heldout, config.heldout_sha256 = provider.source, provider.content_hash
    return provider


def target_heldout_seed(spec: TargetSpec, heldout: str | None = None) -> int:
    """The held-out seed of a target: derived from its identity (name and held-out set), so every
    run of the same target is scored on the same examples unless a seed is asked for."""
    source = heldout or spec.metric.heldout or ""
    identity = f"{spec.target.name}\0{Path(source).name if source.endswith(('.npz', '.py')) else source}"
    return int.from_bytes(hashlib.sha256(identity.encode()).digest()[:4], "big") & 0x7FFFFFFF


def resolve_heldout_seeds(config: RunConfig, spec: TargetSpec) -> tuple[int, int]:
    """Fill in the held-out and lockbox seeds the config leaves to the target (once: then recorded)."""
    if config.heldout_seed is None:
        config.heldout_seed = target_heldout_seed(spec, config.heldout)
    if config.lockbox_seed is None:
        config.lockbox_seed = derive_seed(config.heldout_seed, "lockbox")
    return config.heldout_seed, config.lockbox_seed


def make_reviewer(
    config: RunConfig,
    ask_human: Callable[[Candidate], None] | None = None,
    by: str | None = None,
    continuing: bool = False,
) -> Reviewer:
    """Who decides: the one place that chooses.

    The policy (auto, queue, strict); in review mode `human` the person at the keyboard when there
    is one (`ask_human` shows them a waiting candidate). A run a human was reviewing that is
    `continuing` without a terminal queues every change for `rsi review`."""
    reviewer: Reviewer
    if config.review != "human":
        reviewer = REVIEWERS.build("policy", {"mode": config.review})
    elif ask_human is not None:
        settings = {"by": by, "review_denials": config.human_reviews_denials}
        reviewer = REVIEWERS.build("human", settings, ask_human=ask_human)
    elif continuing:
        reviewer = REVIEWERS.build("policy", {"mode": "queue"})
    else:
        raise ConfigError(
            "review mode 'human' needs the TUI; run `rsi run` in a terminal without --headless, or "
            "continue the run headless with `rsi resume RUN_DIR --headless` (changes then wait for "
            "`rsi review`)."
        )
    return reviewer


# -- the contract recorded when the run started ------------------------------------------------

CONTRACT_FIELDS = (
    "seeds",
    "heldout",
    "heldout_sha256",
    "heldout_seed",
    "heldout_size",
    "lockbox_seed",
    "lockbox_size",
    "integrity",
)
"""Run settings that decide what a score means: a continued run keeps the recorded ones."""


@dataclass
class RecordedContract:
    """What a run started with (its `run_started` event): a resumed or re-executed run is judged
    by these, not by whatever the target's files, the policy file or the image tag say today."""

    spec: TargetSpec
    policy_text: str
    policy_source: str
    image: str | None
    config: dict[str, Any]
    differences: list[str] = field(default_factory=list)
    """What the live files or settings say differently (the recorded value is used)."""

    @classmethod
    def from_run_started(cls, data: dict[str, Any]) -> RecordedContract:
        policy = data.get("policy") or {}
        return cls(
            spec=TargetSpec.model_validate(data["target"]),
            policy_text=str(policy.get("text", "")),
            policy_source=str(policy.get("source", "recorded policy")),
            image=data.get("image"),
            config=dict(data.get("config") or {}),
        )

    def apply(self, config: RunConfig) -> None:
        """Put the recorded contract settings into config, noting each that differed."""
        recorded = RunConfig.model_validate({**config.model_dump(mode="json"), **self._contract_fields()})
        for name in CONTRACT_FIELDS:
            live, kept = getattr(config, name), getattr(recorded, name)
            if live != kept:
                self.differences.append(f"{name}: the run config now says {live!r}, recorded {kept!r}")
                setattr(config, name, kept)

    def _contract_fields(self) -> dict[str, Any]:
        return {name: self.config[name] for name in CONTRACT_FIELDS if name in self.config}

    def compare_target(self, live_target: Path) -> None:
        try:
            live = TargetSpec.load(live_target)
        except ConfigError as exc:
            self.differences.append(f"target contract: the live rsi.toml cannot be read ({exc})")
            return
        recorded, now = self.spec.model_dump(mode="json"), live.model_dump(mode="json")
        for section in sorted(set(recorded) | set(now)):
            if recorded.get(section) != now.get(section):
                self.differences.append(
                    f"target contract [{section}]: {live_target / 'rsi.toml'} now says "
                    f"{now.get(section)}, recorded {recorded.get(section)}"
                )

    def compare_policy(self, live: LoadedPolicy | None, error: str | None) -> None:
        if error is not None:
            self.differences.append(f"policy: the live file cannot be loaded ({error})")
        elif live is not None and live.content_hash != _text_hash(self.policy_text):
            self.differences.append(
                f"policy: {live.source} changed since the run started (now {live.content_hash[:12]}, "
                f"recorded {_text_hash(self.policy_text)[:12]})"
            )


def _text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _recorded_run_started(run_dir: Path) -> dict[str, Any] | None:
    from core.trajectory import TrajectoryReader

    path = run_dir / TRAJECTORY_FILE
    if not path.is_file():
        return None
    for event in TrajectoryReader(path).events():
        if event.kind == "run_started":
            return event.data
    return None


def recorded_contract(run_dir: Path) -> RecordedContract | None:
    """The contract a run in run_dir started with; None before its first event."""
    started = _recorded_run_started(run_dir)
    return RecordedContract.from_run_started(started) if started else None


def _contract_parts(config: RunConfig, contract: RecordedContract | None) -> tuple[TargetSpec, LoadedPolicy]:
    """The target contract and policy a run is judged by: the recorded ones when there are."""
    if contract is None:
        spec = TargetSpec.load(config.target)
        return spec, make_policy(config, spec)
    contract.apply(config)
    contract.compare_target(config.target)
    live_policy, error = None, None
    try:
        live_policy = make_policy(config, contract.spec)
    except ConfigError as exc:
        error = str(exc)
    contract.compare_policy(live_policy, error)
    policy = parse_policy(contract.policy_text, f"{contract.policy_source} (as recorded)", contract.spec)
    return contract.spec, policy


def _pinned_backend(
    config: RunConfig, spec: TargetSpec, contract: RecordedContract | None
) -> tuple[Backend, str | None]:
    """The backend and the image id it runs; a continued run keeps the recorded image id."""
    backend = make_backend(config, spec)
    image_id = backend.require_image()
    if contract is None or not contract.image or contract.image == image_id:
        return backend, image_id
    contract.differences.append(
        f"image: {config.sandbox.image or target_image_tag(spec)} is now {image_id}, recorded {contract.image}; the recorded "
        "image is used"
    )
    backend = make_backend(config, spec, image=contract.image)
    return backend, backend.require_image()


# -- the run directory ---------------------------------------------------------------------------


def check_new_run_dir(run_dir: Path) -> None:
    """A new run goes into a new or empty directory, never into another run or other files."""
    if (run_dir / TRAJECTORY_FILE).exists() or (run_dir / RUN_CONFIG_FILE).exists():
        raise ConfigError(
            f"{run_dir} already holds a run; continue it with `rsi resume {run_dir}` "
            "or choose another --run-dir."
        )
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"{run_dir}: not a directory. Pass a new or empty directory as --run-dir.")
    if run_dir.is_dir() and any(run_dir.iterdir()):
        raise ConfigError(
            f"{run_dir}: not empty and not a run directory (no {RUN_CONFIG_FILE} or {TRAJECTORY_FILE}); "
            "a run is never mixed into other files. Pass a new or empty directory as --run-dir."
        )


def _undo_failed_start(run_dir: Path, existed: bool) -> None:
    """Remove what a start that failed created (the directory was new or empty before)."""
    shutil.rmtree(run_dir, ignore_errors=True)
    if existed:
        run_dir.mkdir(parents=True, exist_ok=True)


def build_run(
    config: RunConfig,
    observer: Observer | None = None,
    reviewer: Reviewer | None = None,
    resume: bool = False,
    contract: RecordedContract | None = None,
) -> tuple[GenerationLoop, RunParts]:
    """Create (or reopen, with resume=True) a run directory and everything a loop needs.

    A resumed run (and a re-execution, given `contract`) is judged by the contract recorded when
    the run started; a new run that fails to start removes what it created.
    """
    if resume and contract is None:
        contract = recorded_contract(config.run_dir)
    # Counted first: a killed session's sandboxes remove themselves once the engine notices.
    leftover = make_backend(config, contract.spec).run_sandboxes() if resume and contract else 0
    spec, policy = _contract_parts(config, contract)
    backend, image_id = _pinned_backend(config, spec, contract)
    backend.remove_orphans()
    remove_stale()  # host scratch directories of killed runs
    lineage_path = config.run_dir / LINEAGE_DIR
    if resume:
        lineage = Lineage(lineage_path)
        return _assemble(
            config, spec, policy, backend, image_id, lineage, observer, reviewer, contract, leftover
        )
    check_new_run_dir(config.run_dir)
    existed = config.run_dir.is_dir()
    try:
        resolve_heldout(config, spec)
        resolve_heldout_seeds(config, spec)
        config.save()
        lineage = Lineage.create(lineage_path, config.target)
        return _assemble(config, spec, policy, backend, image_id, lineage, observer, reviewer, contract)
    except BaseException:
        _undo_failed_start(config.run_dir, existed)
        raise


def _assemble(
    config: RunConfig,
    spec: TargetSpec,
    policy: LoadedPolicy,
    backend: Backend,
    image_id: str | None,
    lineage: Lineage,
    observer: Observer | None,
    reviewer: Reviewer | None,
    contract: RecordedContract | None,
    leftover: int = 0,
) -> tuple[GenerationLoop, RunParts]:
    live = observer or NullObserver()
    evaluator = make_evaluator(config, spec, lineage, backend, progress=live.on_progress)
    heldout, lockbox = evaluator.heldout, evaluator.lockbox
    proposer = make_proposer(config, backend, progress=live.on_progress)
    chosen_reviewer = reviewer or make_reviewer(config)
    trajectory = TrajectoryWriter.open(config.run_dir / TRAJECTORY_FILE, run_id=config.run_id)
    parts = RunParts(
        config=config,
        spec=spec,
        lineage=lineage,
        evaluator=evaluator,
        proposer=proposer,
        policy=judge_successors(policy, config.run_dir, spec),
        reviewer=chosen_reviewer,
        trajectory=trajectory,
        observer=live,
        contract_differences=list(contract.differences) if contract else [],
        remove_sandboxes=backend.remove_run_sandboxes,
        leftover_sandboxes=leftover,
        promote_successor=lambda candidate: promote(candidate, evaluator),
        run_info={
            "config": config.model_dump(mode="json"),
            "target": spec.model_dump(mode="json"),
            "image": image_id,
            "policy": {
                "name": policy.name,
                "hash": policy.content_hash,
                "source": contract.policy_source if contract else str(policy.source),
                "text": contract.policy_text if contract else Path(policy.source).read_text(encoding="utf-8"),
            },
            "heldout": {
                "name": heldout.name,
                "source": config.heldout,
                "sha256": config.heldout_sha256,
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
