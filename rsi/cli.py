"""The `rsi` command line. Every command is a thin shell over the library; errors are printed as
one clear message (what, where, what to do), never as a traceback, with a documented exit code:

    0    done (a run completed, or stopped as asked: stop file, budget)
    1    run error: the command or the run failed (engine down, broken target, unreadable run)
    2    usage error: a bad option, argument, input file or run directory
    3    the run is paused for a human (checkpoint, strict review, model outage): review, resume
    10   `policy check`: verdict review          11  `policy check`: verdict deny
    12   `replay --verify`: the re-execution diverged beyond tolerance
    13   `replay --check`: the trajectory fails its integrity check (edited, truncated, re-chained)
    14   `evaluate`: the candidate fails its evaluation
    128+N  interrupted by signal N: 130 Ctrl-C/SIGINT, 143 SIGTERM, 129 SIGHUP (`rsi resume RUN_DIR`)
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from core.errors import ConfigError, RsiError, SandboxError, TrajectoryError
from core.visible import showing_console
from rsi import __version__
from rsi.registry import BACKENDS, REVIEW_MODES, user_proposers
from rsi.search.strategies import STRATEGIES

# The choices come from the one registry; typer turns a Literal into a usage error that lists them
# and into `[docker|bwrap]` in --help. mypy sees plain strings.
if TYPE_CHECKING:
    BackendName = str
    ProposerName = str
    ReviewModeName = str
    StrategyName = str
else:
    BackendName = Literal[tuple(BACKENDS)]
    ProposerName = Literal[tuple(user_proposers())]
    ReviewModeName = Literal[REVIEW_MODES]
    StrategyName = Literal[tuple(STRATEGIES)]

app = typer.Typer(
    name="rsi",
    help="rsi-sandbox: propose, sandbox, measure, judge and review changes to a training codebase.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
image_app = typer.Typer(help="Build and inspect the sandbox image.", no_args_is_help=True)
policy_app = typer.Typer(help="Validate a policy file; check a diff against it.", no_args_is_help=True)
app.add_typer(image_app, name="image")
app.add_typer(policy_app, name="policy")

console = showing_console(highlight=False)
errors = showing_console(stderr=True, highlight=False)
EXIT_OK = 0
EXIT_RUN_ERROR = 1
EXIT_USAGE = 2
EXIT_PAUSED = 3
EXIT_VERDICT_REVIEW = 10
EXIT_VERDICT_DENY = 11
EXIT_DIVERGED = 12
EXIT_TAMPERED = 13
EXIT_CANDIDATE_FAILED = 14
EXIT_SIGNAL_BASE = 128
EXIT_ERROR = EXIT_USAGE  # kept for callers of the former single error code

EXIT_CODES_HELP = (
    "Exit codes: 0 ok; 1 run error; 2 usage error (bad option, input or run directory); "
    "128+N interrupted by signal N (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP)."
)
RUN_EXIT_HELP = (
    "Exit codes: 0 completed or stopped as asked (stop file, budget); 1 run error; 2 usage error; "
    "3 paused for a human (rsi review, then rsi resume); 128+N interrupted by signal N (130 Ctrl-C, "
    "143 SIGTERM, 129 SIGHUP): continue with rsi resume RUN_DIR."
)
EXAMPLE = "Example: {}"
HeldoutOption = Annotated[
    str | None,
    typer.Option(
        help="Held-out set: a .npz (inputs, labels[, lockbox_inputs, lockbox_labels]) or a .py "
        "defining generate(seed, n), outside the target's tree (default: the one the target's rsi.toml names)."
    ),
]
"""`--heldout` of `rsi run` and `rsi evaluate`."""
RayOption = Annotated[
    str | None,
    typer.Option(
        metavar="ADDRESS",
        help="Run each sandbox on a worker node of this Ray cluster ('auto': the one this machine belongs to).",
    ),
]
"""`--ray` of `rsi run` and `rsi evaluate`."""


def print_error(message: str) -> None:
    """One error line on stderr. The message is data (file names, keys like `[metric].heldout`,
    rule ids like `[metric-improves]`), so it is printed as plain text, never parsed as markup, and
    never folded: a path or key cut at the console's width could not be copied or searched for (the
    terminal wraps the line; a log keeps it whole)."""
    errors.print(Text("error: ", style="red") + Text(message), soft_wrap=True)


def friendly(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn the tool's own errors into a one-line message: exit 2 for what the user passed (a
    configuration, input or run directory), 1 for a failure while doing the work."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except SandboxError as exc:
            print_error(str(exc))
            raise typer.Exit(EXIT_ERROR) from None
        except RsiError as exc:
            print_error(str(exc))
            raise typer.Exit(EXIT_USAGE if isinstance(exc, ConfigError) else EXIT_RUN_ERROR) from None

    return wrapper


def interruptible(func: Callable[..., Any]) -> Callable[..., Any]:
    """SIGINT, SIGTERM and SIGHUP while a command sets up (before the loop takes them over) end it
    with exit 128+N and a message, never a traceback; what a failed start created is removed."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        import signal

        from rsi.interrupts import Interrupts, SignalInterrupt

        try:
            with Interrupts().installed():
                return func(*args, **kwargs)
        except KeyboardInterrupt as exc:
            signum = exc.signum if isinstance(exc, SignalInterrupt) else signal.SIGINT
            _say(
                f"interrupted by {signal.Signals(signum).name} while starting: no step of the run was recorded"
            )
            raise typer.Exit(EXIT_SIGNAL_BASE + signum) from None

    return wrapper


def _say(message: str | Text) -> None:
    """A line on stderr that may find no terminal any more (SIGHUP): then it is dropped."""
    with contextlib.suppress(OSError):
        errors.print(message)


def run_exit_code(summary: Any) -> int:
    """The documented exit code of a finished run (see the module docstring)."""
    if summary.status == "interrupted":
        import signal

        return EXIT_SIGNAL_BASE + (summary.signal or signal.SIGINT)
    if summary.status == "error":
        return EXIT_RUN_ERROR
    if summary.status == "paused":
        return EXIT_PAUSED
    return EXIT_OK


def read_patch(patch: str) -> str:
    """The diff's text exactly as written: no newline translation (a carriage return inside a line
    is part of it, as it is for the loop, which gets a proposer's text as it is)."""
    if patch == "-":
        return sys.stdin.buffer.read().decode("utf-8", errors="replace")
    path = Path(patch)
    if not path.is_file() and patch != "/dev/null":
        raise ConfigError(f"{patch}: no such patch file. Pass a unified diff file, or - to read stdin.")
    return path.read_bytes().decode("utf-8", errors="replace")


def default_run_dir() -> Path:
    from datetime import datetime

    return Path("runs") / datetime.now().strftime("%Y%m%d-%H%M%S")


# -- rsi run ------------------------------------------------------------------------------------


@app.command(
    epilog=EXAMPLE.format("rsi run --target target_repo --generations 3 --backend bwrap --headless")
    + "\n\n"
    + RUN_EXIT_HELP
)
@friendly
@interruptible
def run(
    target: Annotated[Path, typer.Option(help="Target repository (a directory with an rsi.toml).")] = Path(
        "target_repo"
    ),
    run_dir: Annotated[Path | None, typer.Option(help="Run directory (default: runs/<timestamp>).")] = None,
    generations: Annotated[int, typer.Option(min=0, help="Generations to run.")] = 5,
    policy: Annotated[
        str, typer.Option(help="Policy: a shipped name (default, strict) or a YAML path.")
    ] = "default",
    backend: Annotated[BackendName, typer.Option(help="Isolation backend.")] = "docker",
    proposer: Annotated[
        ProposerName | None,
        typer.Option(
            help="Who proposes changes (default: claude when ANTHROPIC_API_KEY is set, else offline)."
        ),
    ] = None,
    seeds: Annotated[int, typer.Option(min=1, help="Training seeds per candidate.")] = 3,
    heldout: HeldoutOption = None,
    heldout_seed: Annotated[
        int | None,
        typer.Option(
            help="Seed of the held-out set (default: derived from the target, the same for every run of it)."
        ),
    ] = None,
    review: Annotated[
        ReviewModeName | None,
        typer.Option(
            help="Who decides: the policy (auto), a person later (queue), pause at the first review "
            "verdict (strict), a person in the TUI (human). Default: human in the TUI, else auto."
        ),
    ] = None,
    headless: Annotated[bool, typer.Option(help="No TUI: print progress, let the policy decide.")] = False,
    review_denials: Annotated[
        bool,
        typer.Option(
            help="In the TUI, stop at policy-denied candidates too (default: the policy rejects them)."
        ),
    ] = False,
    max_wall: Annotated[float | None, typer.Option(help="Wall-time budget in seconds.")] = None,
    max_dollars: Annotated[float | None, typer.Option(help="Model spend budget in dollars.")] = None,
    candidates: Annotated[
        int,
        typer.Option(min=1, help="Candidates per generation, from the same parent, evaluated in parallel."),
    ] = 1,
    max_evaluations: Annotated[
        int | None, typer.Option(min=1, help="Budget: stop after this many candidates are evaluated.")
    ] = None,
    max_seeds: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Racing: a close call (positive gain within the noise) is measured with its parent on "
            "extra seeds up to this many in all before it is judged (default: twice --seeds).",
        ),
    ] = None,
    parallel: Annotated[
        int | None, typer.Option(min=1, help="Candidates evaluated at once (default: the CPU cores).")
    ] = None,
    strategy: Annotated[
        StrategyName,
        typer.Option(
            help="How parents are chosen: greedy (the newest accepted, a line), best-first (a beam of "
            "the best nodes) or archive (score- and novelty-weighted; a tree)."
        ),
    ] = "greedy",
    strategy_seed: Annotated[int, typer.Option(help="Seed of the archive strategy's parent draws.")] = 0,
    image: Annotated[str | None, typer.Option(help="Sandbox image (default: the target's rsi.toml).")] = None,
    model: Annotated[str | None, typer.Option(help="Claude model id.")] = None,
    proposer_seed: Annotated[int, typer.Option(help="Seed of the offline proposer.")] = 0,
    pause_on_jump: Annotated[
        float | None, typer.Option(help="Pause for a human when the metric improves by more than N spreads.")
    ] = None,
    pause_at_budget: Annotated[
        float | None, typer.Option(help="Pause for a human once this fraction (0-1] of a budget is used.")
    ] = None,
    pause_on_rule: Annotated[
        list[str] | None, typer.Option(help="Pause for a human when a finding of this rule id appears.")
    ] = None,
    pause_on_promotion: Annotated[
        bool,
        typer.Option(
            help="Bootstrapping targets: pause for a human before a student could become the teacher."
        ),
    ] = False,
    ray: RayOption = None,
) -> None:
    """Run the self-improvement loop on a target: propose, evaluate in a sandbox, judge, decide, commit."""
    from rsi.compose import build_run
    from rsi.config import CheckpointConfig, RunConfig
    from rsi.console import ConsoleObserver
    from rsi.search.strategies import StrategyConfig

    chosen = proposer or ("claude" if os.environ.get("ANTHROPIC_API_KEY") else "offline")
    search = StrategyConfig(name=strategy, seed=strategy_seed)
    tui = wants_tui(headless)
    config = RunConfig(
        target=target.resolve(),
        run_dir=(run_dir or default_run_dir()).resolve(),
        generations=generations,
        policy=policy,
        backend=backend,  # type: ignore[arg-type]
        ray=ray,
        proposer=chosen,  # type: ignore[arg-type]
        proposer_seed=proposer_seed,
        seeds=list(range(seeds)),
        heldout=absolute_heldout(heldout),
        heldout_seed=heldout_seed,
        review=review or ("human" if tui else "auto"),  # type: ignore[arg-type]
        human_reviews_denials=review_denials,
        max_wall_s=max_wall,
        max_dollars=max_dollars,
        candidates=candidates,
        max_evaluations=max_evaluations,
        max_seeds=max_seeds,
        parallel=parallel,
        strategy=search,
        checkpoints=CheckpointConfig(
            metric_jump_spreads=pause_on_jump,
            budget_fraction=pause_at_budget,
            finding_rules=pause_on_rule or [],
            promotion=pause_on_promotion,
        ),
    )
    if image:
        config.sandbox.image = image
    if model:
        config.claude.model = model
    if tui:
        run_in_tui(config)
        return
    observer = headless_observer() if headless else ConsoleObserver()
    loop, parts = build_run(config, observer=observer)
    try:
        summary = loop.run()
    finally:
        parts.trajectory.close()
    print_summary(summary, str(config.run_dir))
    raise typer.Exit(run_exit_code(summary))


def absolute_heldout(heldout: str | None) -> str | None:
    """A --heldout file as an absolute path (recorded with the run); a built-in name as given."""
    if heldout is None or not heldout.endswith((".npz", ".py")):
        return heldout
    return str(Path(heldout).expanduser().resolve())


# -- rsi evaluate -------------------------------------------------------------------------------


@app.command(
    short_help="Evaluate one diff exactly as the loop would, and judge it with the policy.",
    epilog=EXAMPLE.format("rsi evaluate my.diff --target target_repo --backend bwrap")
    + "\n\n"
    + EXIT_CODES_HELP.replace("; 128", "; 14 the candidate fails its evaluation; 128"),
)
@friendly
def evaluate(
    patch: Annotated[
        str, typer.Argument(help="Unified diff file to evaluate (- for stdin, /dev/null for none).")
    ],
    target: Annotated[Path, typer.Option(help="Target repository.")] = Path("target_repo"),
    backend: Annotated[BackendName, typer.Option(help="Isolation backend.")] = "docker",
    seeds: Annotated[int, typer.Option(min=1, help="Training seeds.")] = 3,
    heldout: HeldoutOption = None,
    heldout_seed: Annotated[
        int | None,
        typer.Option(help="Seed of the held-out set (default: the target's, as `rsi run` uses)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the evaluation as JSON.")] = False,
    image: Annotated[str | None, typer.Option(help="Sandbox image.")] = None,
    log_dir: Annotated[
        Path | None, typer.Option(help="Where full phase logs are kept (default: a new temp dir).")
    ] = None,
    with_parent: Annotated[
        bool,
        typer.Option(help="Measure the unpatched parent first, as the loop does (enables the budget check)."),
    ] = False,
    policy: Annotated[
        str,
        typer.Option(help="Policy that judges the result: a shipped name (default, strict) or a YAML path."),
    ] = "default",
    ray: RayOption = None,
) -> None:
    """Evaluate one diff against the target exactly as the loop would (held-out and lockbox sets,
    integrity checks), then judge it with the policy as the loop does.

    With --json, stdout holds exactly {"evaluation": {...}, "verdict": {"verdict": ..., "findings": [...]}}."""
    from core.contracts import Proposal
    from core.target import TargetSpec
    from rsi.compose import make_backend, make_evaluator, make_policy
    from rsi.config import RunConfig
    from sandbox.lineage import Lineage
    from sandbox.patched import patched_tree
    from sandbox.scratch import remove_stale, scratch_dir

    diff = read_patch(patch)
    with scratch_dir("evaluate") as tmp:
        config = RunConfig(
            target=target.resolve(),
            run_dir=Path(tmp),
            backend=backend,  # type: ignore[arg-type]
            ray=ray,
            seeds=list(range(seeds)),
            heldout=absolute_heldout(heldout),
            heldout_seed=heldout_seed,
            policy=policy,
        )
        if image:
            config.sandbox.image = image
        spec = TargetSpec.load(config.target)
        loaded_policy = make_policy(config, spec)  # a bad policy file fails before any sandbox starts
        chosen = make_backend(config, spec)
        chosen.remove_orphans()
        remove_stale()
        logs = (log_dir or Path(tempfile.mkdtemp(prefix="rsi-evaluate-logs-"))).resolve()
        lineage = Lineage.create(Path(tmp) / "lineage", config.target)

        def progress(phase: str, details: dict[str, Any]) -> None:
            if not as_json:
                extra = f" seed {details['index']}/{details['of']}" if "index" in details else ""
                errors.print(Text(f"… {details.get('label', '')} {phase}{extra}", style="dim"))

        evaluator = make_evaluator(config, spec, lineage, chosen, progress=progress, log_dir=logs)
        parent_eval = None
        if with_parent and diff.strip():
            # The loop always knows the parent's measurement; the budget check compares against it.
            parent_eval = evaluator.evaluate(lineage.head(), "", label="parent")
        with patched_tree(lineage, lineage.head(), diff) as patched:
            result = evaluator.evaluate(lineage.head(), diff, label="evaluate", patched=patched)
            proposal = Proposal(diff=diff, rationale="rsi evaluate", proposer="evaluate")
            verdict = loaded_policy.check(proposal, result, parent_eval, patched=patched)
    if as_json:
        judged = {
            "evaluation": result.model_dump(mode="json"),
            "verdict": {
                "verdict": verdict.verdict,
                "findings": [f.model_dump(mode="json") for f in verdict.findings],
            },
        }
        print(json.dumps(judged, indent=2))
    else:
        errors.print(Text(f"full logs: {logs / 'evaluate'}", style="dim"))
        print_evaluation(result)
        console.print(
            f"verdict: [bold]{verdict.verdict}[/bold] ({verdict.policy_name} {verdict.policy_hash[:12]}): "
            f"{escape(verdict.reasons())}"
        )
    raise typer.Exit(EXIT_OK if result.ok else EXIT_CANDIDATE_FAILED)


def print_evaluation(result: Any) -> None:

    table = Table(show_header=False, box=None)
    table.add_row("status", "[green]ok[/green]" if result.ok else f"[red]{result.failure}[/red]")
    if result.failure_detail:
        table.add_row("detail", escape(result.failure_detail[:800]))
    if result.tests:
        t = result.tests
        table.add_row(
            "tests", f"{t.passed} passed, {t.failed} failed, {t.errors} errors ({t.duration_s:.1f}s)"
        )
    if result.metric:
        per_seed = ", ".join(f"seed {s}: {v:.4f}" for s, v in result.metric.per_seed.items())
        table.add_row("metric", f"{result.metric.summary()}  [{per_seed}]")
    r = result.resources
    table.add_row(
        "resources",
        f"wall {r.wall_s:.1f}s, cpu {r.cpu_s}s, peak {r.peak_memory_mb} MB, sandbox overhead {r.overhead_s}s",
    )
    if result.lockbox:
        table.add_row("lockbox", f"{result.lockbox.summary()}  (recorded, never used for a decision)")
    if result.integrity:
        for finding in result.integrity:
            table.add_row("integrity", f"[yellow]{finding.rule_id}[/yellow] {escape(finding.message)}")
    else:
        table.add_row("integrity", "no findings")
    table.add_row("backend", f"{result.backend} {(result.image or '')[:19]}")
    console.print(table)


# -- rsi image ----------------------------------------------------------------------------------


@image_app.command(
    "build",
    epilog=EXAMPLE.format("rsi image build --tag rsi-sandbox:latest")
    + "\n\n"
    + EXAMPLE.format("rsi image build --target examples/classify"),
)
@friendly
def image_build(
    tag: Annotated[str, typer.Option(help="Image tag to build.")] = "rsi-sandbox:latest",
    base: Annotated[
        str, typer.Option(help="'debootstrap' (no registry needed) or a base image such as python:3.11-slim.")
    ] = "debootstrap",
    mirror: Annotated[
        str | None, typer.Option(help="Debian mirror for debootstrap (default: the host's apt source).")
    ] = None,
    force: Annotated[bool, typer.Option(help="Rebuild even if the image is current.")] = False,
    target: Annotated[
        Path | None,
        typer.Option(
            help="Build the image of this target: its base image plus the packages and apt its rsi.toml names."
        ),
    ] = None,
) -> None:
    """Build the sandbox image (works with no container registry); with --target, a target's own image."""
    from sandbox.image import build_image

    if target is not None:
        from core.target import TargetSpec
        from sandbox.target_env import build_target_image

        say = lambda m: errors.print(Text(m, style="dim"))  # noqa: E731
        console.print(Text(build_target_image(TargetSpec.load(target), force=force, say=say)))
        return
    image_id = build_image(
        tag=tag, base=base, mirror=mirror, force=force, say=lambda m: errors.print(Text(m, style="dim"))
    )
    console.print(Text(f"{tag} {image_id}"))


# -- rsi doctor ---------------------------------------------------------------------------------


@app.command(epilog=EXAMPLE.format("rsi doctor"))
@friendly
def doctor(
    image: Annotated[str, typer.Option(help="Sandbox image to look for.")] = "rsi-sandbox:latest",
    ray: Annotated[
        str | None,
        typer.Option(metavar="ADDRESS", help="Also list this Ray cluster's nodes: engine, image, version."),
    ] = None,
    backend: Annotated[
        BackendName, typer.Option(help="With --ray: the backend the nodes must run.")
    ] = "docker",
) -> None:
    """Say what is available here: backends, image, API key, versions (and a Ray cluster's nodes)."""
    table = Table(title="rsi doctor", show_lines=False)
    table.add_column("check")
    table.add_column("status")
    table.add_column("detail")
    for name, ok, detail in doctor_checks(image):
        table.add_row(name, "[green]ok[/green]" if ok else "[yellow]missing[/yellow]", Text(detail))
    console.print(table)
    if ray is not None:
        console.print(ray_nodes_table(ray, backend, image))


def ray_nodes_table(address: str, backend: str, image: str) -> Table:
    """Each node of the cluster with CPUs: where it is, its engine's image id, its rsi, used or why not."""
    from sandbox.base import SandboxConfig
    from sandbox.ray_placement import RayConfig, RayPlacement

    placement = RayPlacement(backend, SandboxConfig(), image, "doctor", RayConfig(address=address))
    table = Table(title=f"Ray cluster {address} ({backend}, head image id {placement.image_id()})")
    for column in ("node", "address", "hostname", "image id", "rsi", "hardware", "status"):
        table.add_column(column)
    for node, why in placement.survey():
        status = "[green]used[/green]" if why is None else f"[yellow]not used[/yellow]: {escape(why)}"
        table.add_row(
            node.node_id[:12],
            node.address,
            node.hostname,
            (node.image_id or "-")[:19],
            node.rsi_version or "-",
            node.kind,
            status,
        )
    return table


def doctor_checks(image: str) -> list[tuple[str, bool, str]]:
    import platform

    checks: list[tuple[str, bool, str]] = [
        ("rsi", True, f"{__version__}, Python {platform.python_version()}")
    ]
    try:
        from sandbox.docker_engine import connect

        client = connect()
        version = client.version().get("Version", "?")
        checks.append(("docker engine", True, f"server {version}"))
        try:
            found = client.images.get(image)
            checks.append(("sandbox image", True, f"{image} {found.short_id}"))
            checks.append(("docker backend", True, "works: engine reachable and image built"))
        except Exception:
            checks.append(("sandbox image", False, f"{image} not built: run `rsi image build`"))
            checks.append(("docker backend", False, "unusable until the sandbox image is built"))
    except RsiError as exc:
        checks.append(("docker engine", False, str(exc)))
        checks.append(("docker backend", False, "unusable: no Docker engine reachable (use --backend bwrap)"))
    from sandbox.bwrap_backend import bwrap_status

    bwrap_ok, bwrap_detail = bwrap_status()
    checks.append(("bwrap backend", bwrap_ok, bwrap_detail))
    checks.append(accounting_check())
    key = bool(os.environ.get("ANTHROPIC_API_KEY"))
    checks.append(
        (
            "ANTHROPIC_API_KEY",
            key,
            "set (the Claude proposer is the default)" if key else "not set: the offline proposer is used",
        )
    )
    return checks


def accounting_check() -> tuple[str, bool, str]:
    """Which cgroup hierarchy is in force, so what each backend can measure per phase."""
    from sandbox.base import SandboxConfig
    from sandbox.bwrap_backend import BwrapBackend
    from sandbox.cgroups import hierarchy

    found = hierarchy()
    bwrap: str
    try:
        bwrap = BwrapBackend(SandboxConfig(), image="", run_id="doctor").accounting
    except RsiError:
        bwrap = "unavailable"
    docker = {"v1": "cgroup-v1", "v2": "cgroup-v2"}.get(found, "docker-stats")
    detail = (
        f"cgroup {found} in force: bwrap measures with {bwrap}; docker with {docker} when its engine runs "
        "on this host (else docker-stats: CPU only, peak memory, OOM and pid hits unmeasured)"
    )
    return ("resource accounting", bwrap != "rlimit-only" and found != "none", detail)


# -- rsi policy ---------------------------------------------------------------------------------

VERDICT_EXIT = {"allow": EXIT_OK, "review": EXIT_VERDICT_REVIEW, "deny": EXIT_VERDICT_DENY}


@policy_app.command("validate", epilog=EXAMPLE.format("rsi policy validate policies/default.yaml"))
@friendly
def policy_validate(
    file: Annotated[str, typer.Argument(help="Policy YAML (or a shipped name: default, strict, example).")],
    target: Annotated[
        Path | None, typer.Option(help="Target whose rsi.toml protected paths to include.")
    ] = None,
) -> None:
    """Load a policy, run every rule's examples, print its rules."""
    from core.target import TargetSpec
    from policies.engine import load_policy, resolve_policy_path

    spec = TargetSpec.load(target) if target else None
    policy = load_policy(resolve_policy_path(file), target=spec)
    table = Table(
        title=Text(f"policy {policy.name} ({policy.content_hash[:12]}) — default {policy.spec.default}")
    )
    # The rule id is what --pause-on-rule takes: it never wraps or shrinks; on a narrow terminal
    # the parameters make way first.
    table.add_column("rule", no_wrap=True, min_width=max((len(r.spec.id) for r in policy.rules), default=4))
    table.add_column("verdict", no_wrap=True)
    table.add_column("type", overflow="fold")
    table.add_column("examples\nmatch/not", overflow="fold")
    table.add_column("description", overflow="fold", ratio=3)
    wide = console.width >= 140
    if wide:
        table.add_column("params", overflow="fold", ratio=2)
    for rule in policy.rules:
        examples = rule.spec.examples
        counts = f"{len(examples.get('match', []))}/{len(examples.get('not_match', []))}"
        params = ", ".join(f"{k}={v}" for k, v in rule.spec.params.items())
        cells = [rule.spec.id, rule.spec.verdict, rule.spec.type, counts, rule.spec.description]
        table.add_row(*(Text(cell) for cell in cells + ([params] if wide else [])))
    console.print(table)
    if not wide:
        console.print("(each rule's parameters are shown on a terminal of 140 columns or more)")
    console.print(f"[green]valid[/green]: {len(policy.rules)} rules, every example checked.")


def _read_evaluation(path: Path | None) -> Any:
    from pydantic import ValidationError

    from core.contracts import Evaluation

    if path is None:
        return None
    try:
        return Evaluation.model_validate_json(path.read_text(encoding="utf-8"))
    except (OSError, ValidationError) as exc:
        raise ConfigError(
            f"{path}: not an evaluation ({str(exc).splitlines()[0]}). Write one with `rsi evaluate --json`."
        ) from exc


@policy_app.command(
    "check",
    epilog=EXAMPLE.format("rsi policy check --policy strict my.diff")
    + "\n\nExit codes: 0 allow; 10 review; 11 deny; 1 run error; 2 usage error (bad patch, policy, "
    "evaluation or tree).",
)
def policy_check(
    patch: Annotated[str, typer.Argument(help="Unified diff file (- for stdin).")],
    policy: Annotated[str, typer.Option(help="Policy YAML or shipped name.")] = "default",
    target: Annotated[Path | None, typer.Option(help="Target whose protected paths to include.")] = None,
    evaluation: Annotated[
        Path | None, typer.Option(help="Evaluation JSON of the candidate (`rsi evaluate --json`).")
    ] = None,
    parent: Annotated[Path | None, typer.Option(help="Evaluation JSON of the parent.")] = None,
    tree: Annotated[
        Path | None, typer.Option(help="The patched tree: code rules then read whole files.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the verdict as JSON.")] = False,
) -> None:
    """The verdict of a policy on a diff (and, given evaluations, on its measurements).

    Without --evaluation only the diff rules run.
    """
    from core.contracts import Proposal
    from core.target import TargetSpec
    from policies.engine import load_policy, resolve_policy_path

    try:
        spec = TargetSpec.load(target) if target else None
        loaded = load_policy(resolve_policy_path(policy), target=spec)
        candidate, parent_eval = _read_evaluation(evaluation), _read_evaluation(parent)
        if tree is not None and not tree.is_dir():
            raise ConfigError(f"{tree}: not a directory. Pass the patched tree of the target.")
        proposal = Proposal(diff=read_patch(patch), rationale="", proposer="cli")
        verdict = loaded.check(proposal, candidate, parent_eval, tree=tree)
    except RsiError as exc:
        print_error(str(exc))
        raise typer.Exit(EXIT_USAGE if isinstance(exc, ConfigError) else EXIT_RUN_ERROR) from None
    if as_json:
        print(verdict.model_dump_json(indent=2))
    else:
        console.print(
            Text("verdict: ")
            + Text(verdict.verdict, style="bold")
            + Text(f" ({verdict.policy_name} {verdict.policy_hash[:12]})")
        )
        for finding in verdict.findings:
            where = (
                f" {finding.file}:{finding.line}"
                if finding.line
                else f" {finding.file}"
                if finding.file
                else ""
            )
            console.print(f"  [{finding.rule_id}] {finding.verdict}{where}: {finding.message}", markup=False)
        if not verdict.findings:
            console.print(f"  no rule matched: the policy's default ({loaded.spec.default})")
    raise typer.Exit(VERDICT_EXIT[verdict.verdict])


# -- rsi replay ---------------------------------------------------------------------------------


@app.command(
    short_help="Re-display a recorded run, --check its integrity or --verify that it reproduces.",
    epilog=EXAMPLE.format("rsi replay runs/20261122-090102 --headless")
    + "\n\nExit codes: 0 ok (intact, reproduced); 1 run error; 2 usage error; 12 --verify: the "
    "re-execution diverged; 13 --check: the trajectory fails its integrity check.",
)
@friendly
def replay(
    trajectory: Annotated[Path, typer.Argument(help="trajectory.jsonl, or a run directory.")],
    check: Annotated[
        bool, typer.Option(help="Only verify the hash chain; report the first broken link.")
    ] = False,
    headless: Annotated[
        bool, typer.Option(help="Print a text transcript instead of opening the TUI.")
    ] = False,
    verify: Annotated[
        bool,
        typer.Option(
            help="Re-execute every generation in fresh sandboxes and compare; exit 1 on divergence."
        ),
    ] = False,
    tolerance: Annotated[
        float, typer.Option(help="--verify: a metric reproduces within this many seed spreads.")
    ] = 2.0,
    verify_target: Annotated[
        Path | None, typer.Option(help="--verify: the target, if it moved since the run.")
    ] = None,
) -> None:
    """Re-display a recorded run (the TUI in a terminal, else a text transcript), --check its
    integrity, or --verify that it reproduces."""
    from core.trajectory import TRAJECTORY_FILE, TrajectoryReader
    from rsi.console import ConsoleObserver

    path = trajectory / TRAJECTORY_FILE if trajectory.is_dir() else trajectory
    reader = TrajectoryReader(path)
    if path.is_file() and path.stat().st_size == 0:  # a wrong input, not a damaged record
        raise ConfigError(
            f"{path}: the trajectory file is empty (0 bytes), so there is nothing to replay or "
            "check. A run writes its first event when it starts; pass the trajectory.jsonl of a run "
            "that started, or its run directory."
        )
    if check:
        check_trajectory(path)
        return
    if verify:
        verify_replay(path, tolerance, verify_target)
        return
    reader.verify()
    if wants_tui(headless):
        replay_in_tui(path)
        return
    from core.events import RunFinished

    observer = ConsoleObserver(progress=False)
    for event in reader.events():
        observer.on_event(event)
        if event.kind == "run_finished":
            finished = RunFinished.model_validate(event.data)
            console.print(
                Text("run finished", style="bold")
                + Text(f": {finished.status} — {finished.accepted} accepted")
            )


# -- headless runs, resume, integrity, verification, reports -------------------------------------


def headless_observer() -> Any:
    """Blocks per generation on stdout, one line per event on stderr (plus a bar on a terminal)."""
    from rsi.console import ConsoleObserver
    from rsi.progress import FanOut, HeadlessProgress

    progress = HeadlessProgress()
    blocks = ConsoleObserver(progress=False, console=progress.console_for(sys.stdout))
    return FanOut(blocks, progress)


def print_summary(summary: Any, run_dir: str) -> None:
    from rsi.console import ConsoleObserver

    with contextlib.suppress(OSError):  # the terminal may be gone (SIGHUP): the run is recorded
        ConsoleObserver(progress=False).summary(summary, run_dir)
        if summary.status in ("paused", "stopped", "interrupted"):
            console.print(Text(f"continue with: rsi resume {run_dir}"))
    if summary.status == "interrupted":
        _say(Text(f"interrupted ({summary.reason}); continue with: rsi resume {run_dir}"))


# -- the review TUI: rsi run / rsi replay in a terminal, rsi review --------------------------------


def wants_tui(headless: bool) -> bool:
    """The TUI opens only when a person can see it: never with --headless, in CI or in a pipe."""
    return not headless and sys.stdin.isatty() and sys.stdout.isatty()


@contextlib.contextmanager
def default_signals() -> Iterator[None]:
    """The TUI reads Ctrl-C as a key and runs the loop in a worker thread, where a signal handler
    cannot abandon a step; it keeps the default dispositions (the setup's handlers are set aside)."""
    import signal

    from rsi.interrupts import INTERRUPT_SIGNALS

    previous = {signum: signal.signal(signum, signal.SIG_DFL) for signum in INTERRUPT_SIGNALS}
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def run_in_tui(config: Any, resume: bool = False) -> None:
    """The live run (or its resumption) in the review app; the summary printed once it closes."""
    from review.app import make_app
    from rsi.console import ConsoleObserver
    from rsi.live import live_run

    app = make_app("live", live=live_run(config, resume=resume))
    with default_signals():
        summary = app.run()
    if app.run_error:
        raise RsiError(app.run_error)
    if summary is not None:
        ConsoleObserver().summary(summary, str(config.run_dir))
        raise typer.Exit(run_exit_code(summary))


def replay_in_tui(path: Path) -> None:
    from review.app import make_app

    make_app("replay", trajectory=path).run()


@app.command(
    short_help="Continue any run that stopped, paused, was interrupted or crashed, losing nothing.",
    epilog=EXAMPLE.format("rsi resume runs/20261122-090102") + "\n\n" + RUN_EXIT_HELP,
)
@friendly
@interruptible
def resume(
    run_dir: Annotated[Path, typer.Argument(help="Run directory of a run that stopped, paused or crashed.")],
    generations: Annotated[
        int | None, typer.Option(min=0, help="Raise the planned number of generations.")
    ] = None,
    headless: Annotated[
        bool,
        typer.Option(
            help="No TUI. A run a human was reviewing continues with every change queued for `rsi review`."
        ),
    ] = False,
) -> None:
    """Continue any run that stopped, paused or crashed, losing nothing: in a terminal a run that a
    human reviews reopens the TUI; otherwise (or with --headless) it continues here, headless."""
    from rsi.resume import load_run_config, resume_run

    config = load_run_config(run_dir.resolve())
    if config.review == "human" and wants_tui(headless):
        if generations is not None:
            config.generations = generations
        run_in_tui(config, resume=True)
        return

    def warn_of_differences(loop: Any) -> None:
        for difference in loop.parts.contract_differences:
            _say(Text("warning: ", style="yellow") + Text(f"{difference} (the recorded contract is used)"))

    summary, _ = resume_run(
        run_dir, observer=headless_observer(), generations=generations, on_loop=warn_of_differences
    )
    print_summary(summary, str(run_dir.resolve()))
    raise typer.Exit(run_exit_code(summary))


def check_trajectory(path: Path) -> None:
    from core.trajectory import TrajectoryReader

    try:
        last, covered = TrajectoryReader(path).authenticate()
    except TrajectoryError as exc:
        errors.print(Text("integrity check failed: ", style="red") + Text(str(exc)))
        raise typer.Exit(EXIT_TAMPERED) from None
    count = 0 if last is None else last.seq + 1
    console.print(Text("intact", style="green") + Text(f": {count} events, hash chain verified, {covered}."))


def verify_replay(path: Path, tolerance: float, target: Path | None) -> None:
    from rsi.progress import HeadlessProgress
    from rsi.verify import verify_trajectory

    errors.print(Text(f"re-executing {path} in fresh sandboxes (replay proposer, no network)…", style="dim"))
    report = verify_trajectory(path, observer=HeadlessProgress(), spreads=tolerance, target=target)
    for difference in report.contract_differences:
        errors.print(
            Text("warning: ", style="yellow") + Text(f"{difference} (the recorded contract is used)")
        )
    console.print(verify_table(report))
    for divergence in report.divergences:
        console.print(Text("divergence: ", style="red") + Text(str(divergence)))
    draws = report.audit_draws
    if draws.get("recorded") or draws.get("fresh"):
        console.print(
            f"integrity controls: {draws.get('recorded', 0)} audits drawn as recorded, "
            f"{draws.get('fresh', 0)} afresh (no secret recorded for them)"
        )
    console.print(
        f"original run {report.original_s:.1f}s, re-execution {report.verify_s:.1f}s; "
        + ("[green]reproduced[/green]" if report.ok else "[red]DIVERGED[/red] beyond tolerance")
    )
    if not report.ok:
        raise typer.Exit(EXIT_DIVERGED)


def verify_table(report: Any) -> Table:
    """The comparison of `replay --verify`, readable at 80 columns."""
    from rsi.verify import COLUMNS

    table = Table(title=Text(f"replay --verify {report.trajectory}"), padding=(0, 0), collapse_padding=True)
    for column in COLUMNS:
        # The first and last columns ("baseline", "DIVERGED") are read at a glance: never cut;
        # the others fold rather than end in an ellipsis, so a hash or a metric stays whole.
        edge = column in (COLUMNS[0], COLUMNS[-1])
        widest_word = max(len(word) for word in column.split())
        table.add_column(column, no_wrap=edge, min_width=max(widest_word, 8 if edge else 0), overflow="fold")
    for row in report.table_rows():
        style = "" if row[-1] == "ok" else "red"
        table.add_row(*(Text(cell) for cell in row), style=style)
    return table


@app.command(epilog=EXAMPLE.format("rsi report runs/20261122-090102"))
@friendly
def report(
    run_dirs: Annotated[list[Path], typer.Argument(help="Run directory (several with --compare).")],
    compare: Annotated[bool, typer.Option(help="Overlay several runs in one report.")] = False,
    out: Annotated[
        Path | None, typer.Option(help="Where to write (default: RUN_DIR/report.md; --compare: ./compare).")
    ] = None,
) -> None:
    """Write report.md with a plot of the metric, a table of generations, totals and findings."""
    from rsi.report import write_comparison, write_report

    if compare or len(run_dirs) > 1:
        from rsi.compare import comparability_warnings, compare_runs

        written = write_comparison(run_dirs, out or Path("compare"))
        for warning in comparability_warnings(compare_runs(run_dirs)):
            errors.print(Text("warning: ", style="yellow") + Text(warning))
    else:
        written = write_report(run_dirs[0], out)
        _print_successors(run_dirs[0])
    console.print(Text(f"wrote {written}"))


def _print_successors(run_dir: Path) -> None:
    """A bootstrapping run's headline: the teacher's score along its chain of promotions."""
    from core.trajectory import TRAJECTORY_FILE, TrajectoryReader
    from rsi.succession_report import succession_headline

    headline = succession_headline(list(TrajectoryReader(run_dir / TRAJECTORY_FILE).events()))
    if headline is not None:
        console.print(Text(headline))


@app.command(
    short_help="Decide the changes a run queued for a human: in the TUI, or with --accept/--reject.",
    epilog=EXAMPLE.format('rsi review runs/20261122-090102 --accept 3 --reason "checked the diff"'),
)
@friendly
def review(
    run_dir: Annotated[Path, typer.Argument(help="The run directory (holds trajectory.jsonl and lineage/).")],
    by: Annotated[str | None, typer.Option(help="Who decides, as recorded (default: human:<login>).")] = None,
    accept: Annotated[
        list[int] | None, typer.Option(help="Accept this queued generation without the TUI (repeatable).")
    ] = None,
    reject: Annotated[
        list[int] | None, typer.Option(help="Reject this queued generation without the TUI (repeatable).")
    ] = None,
    reason: Annotated[str, typer.Option(help="The reason recorded with --accept/--reject.")] = "",
) -> None:
    """Open a run in the TUI and decide the changes the policy queued for a human (or decide them
    from a script with --accept/--reject)."""

    from core.trajectory import TRAJECTORY_FILE
    from review.queue import decide, pending

    if not (run_dir / TRAJECTORY_FILE).is_file():
        raise ConfigError(f"{run_dir}: no {TRAJECTORY_FILE} here. Pass the directory an `rsi run` wrote.")
    if accept or reject:
        if reject and not reason:
            raise ConfigError("--reject needs --reason: the reason is recorded and goes back to the agent.")
        for generation, choice in [(g, "accept") for g in accept or []] + [
            (g, "reject") for g in reject or []
        ]:
            made = decide(run_dir, generation, choice, reason=reason, by=by)  # type: ignore[arg-type]
            console.print(Text(f"generation {generation}: {made.decision} by {made.by}"))
        return
    waiting = pending(run_dir)
    if not wants_tui(False):
        table = Table(title=f"{len(waiting)} change(s) wait for review in {run_dir}")
        for column in ("gen", "verdict", "why it waits", "change"):
            table.add_column(column)
        for record in waiting:
            table.add_row(
                str(record.generation),
                record.verdict.verdict if record.verdict else "—",
                escape(record.decision.reason[:60]) if record.decision else "",
                escape((record.proposal.rationale.splitlines() or [""])[0][:70]) if record.proposal else "",
            )
        console.print(table)
        console.print("Open this in a terminal to decide: rsi review RUN_DIR")
        return
    from review.app import make_app

    make_app("review", run_dir=run_dir, by=by).run()


@app.callback(invoke_without_command=True, epilog=EXIT_CODES_HELP + " Each command's --help lists its own.")
def main(
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False,
    verbose: Annotated[
        int,
        typer.Option("--verbose", "-v", count=True, help="More log output on stderr (-v info, -vv debug)."),
    ] = 0,
    log_level: Annotated[
        str | None, typer.Option(help="Log level on stderr: debug, info, warning, error (default: warning).")
    ] = None,
) -> None:
    configure_logging(verbose, log_level)
    if version:
        console.print(f"rsi-sandbox {__version__}")
        raise typer.Exit(0)


class _CurrentStderr(logging.StreamHandler):
    """Writes to whatever sys.stderr is when a record is emitted: while the TUI runs, Textual
    captures it, so log lines never draw over the screen."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def configure_logging(verbose: int, level_name: str | None) -> None:
    """The one place logging is set up: the package loggers to stderr, at the level asked for."""
    levels = {
        "debug": logging.DEBUG,
        "info": logging.INFO,
        "warning": logging.WARNING,
        "error": logging.ERROR,
    }
    if level_name is not None and level_name.lower() not in levels:
        raise typer.BadParameter(
            f"{level_name!r} is not a log level; choose one of: {', '.join(levels)}", param_hint="--log-level"
        )
    level = levels[level_name.lower()] if level_name else max(logging.DEBUG, logging.WARNING - 10 * verbose)
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _CurrentStderr)]:
        root.removeHandler(handler)
    handler = _CurrentStderr()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
    root.addHandler(handler)
    root.setLevel(level)
