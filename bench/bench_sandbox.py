"""Sandbox overhead and parallel throughput, printed as a table against the targets.

Overhead per candidate = wall time of a full trusted evaluation (stage the parent, apply the diff,
open the sandbox, copy the workspace in, run tests + train + predict per seed, read predictions
out, score, remove the sandbox) minus the same commands run as bare host subprocesses. The work is
a null target (commands that do nothing but copy a predictions file) so the difference is all
sandbox. Throughput runs the bundled target's real work, K candidates at once vs one at a time.

    python bench/bench_sandbox.py [--repeat 5] [--seeds 3] [--candidates 4] [--backends bwrap]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.errors import RsiError  # noqa: E402
from core.target import TargetSpec  # noqa: E402
from sandbox.base import Backend, SandboxConfig  # noqa: E402
from sandbox.evaluate import OUT_DIR, TrustedEvaluator  # noqa: E402
from sandbox.heldout import load_heldout  # noqa: E402
from sandbox.lineage import Lineage  # noqa: E402

TARGETS_S = {"docker": 0.5, "bwrap": 0.05}
HELDOUT_SIZE = 500
NULL_TOML = """
[target]
name = "null"
[commands]
test = "true"
train = "mkdir -p {out}"
predict = "cp zeros.npy {predictions}"
[metric]
name = "mse"
direction = "lower"
heldout = "teacher-regression"
[budget]
steps = 1
train_seconds = 30
"""


def null_target(into: Path) -> Path:
    into.mkdir(parents=True)
    (into / "rsi.toml").write_text(NULL_TOML)
    np.save(into / "zeros.npy", np.zeros(HELDOUT_SIZE))
    return into


def unique_diff(index: int) -> str:
    """A diff that adds one small file, so every candidate is a new tree (no cache hits)."""
    return f"--- /dev/null\n+++ b/bench-{index}.txt\n@@ -0,0 +1 @@\n+candidate {index}\n"


def make_backend(name: str, image: str) -> Backend:
    config = SandboxConfig()
    if name == "docker":
        from sandbox.docker_backend import DockerBackend

        return DockerBackend(config, image=image, run_id="bench")
    from sandbox.bwrap_backend import BwrapBackend

    return BwrapBackend(config, image=image, run_id="bench")


def evaluator_for(
    target: Path, backend: Backend, seeds: int, work: Path, parallel: int = 1
) -> TrustedEvaluator:
    spec = TargetSpec.load(target)
    lineage = Lineage.create(work / f"lineage-{time.monotonic_ns()}", target)
    heldout = load_heldout(spec.metric.heldout, seed=1, size=HELDOUT_SIZE)
    return TrustedEvaluator(
        spec, lineage, backend, heldout, list(range(seeds)), work / "logs", parallel=parallel
    )


def bare_run(target: Path, seeds: int, work: Path) -> float:
    """The same commands as host subprocesses in a plain copy: the floor any sandbox adds to."""
    spec = TargetSpec.load(target)
    started = time.monotonic()
    copy = work / f"bare-{time.monotonic_ns()}"
    shutil.copytree(target, copy)
    out_root = copy / OUT_DIR.strip("/")
    inputs = copy / "inputs.npy"
    np.save(inputs, np.zeros((HELDOUT_SIZE, 8)))
    commands = [spec.commands.test]
    for seed in range(seeds):
        out = out_root / f"seed-{seed}"
        commands.append(f"mkdir -p {out} && " + spec.commands.train.format(seed=seed, out=out, steps=1))
        commands.append(spec.commands.predict.format(out=out, inputs=inputs, predictions=out / "p.npy"))
    for command in commands:
        subprocess.run(["sh", "-c", command], cwd=copy, check=True, capture_output=True)
    for seed in range(seeds):
        np.load(out_root / f"seed-{seed}" / "p.npy")
    return time.monotonic() - started


def median_of(repeat: int, run: Callable[[int], float]) -> float:
    run(-1)  # warm-up: imports, page cache, image layers
    return statistics.median(run(i) for i in range(repeat))


def overhead_rows(args: argparse.Namespace, work: Path) -> list[tuple[str, str, str, str]]:
    target = null_target(work / "null-target")
    bare = median_of(args.repeat, lambda i: bare_run(target, args.seeds, work))
    rows = [("bare subprocess", f"{bare * 1000:.0f} ms", "(the floor)", "")]
    for name in args.backends:
        try:
            backend = make_backend(name, args.image)
        except RsiError as exc:
            rows.append((name, "unavailable", f"≤ {TARGETS_S[name] * 1000:.0f} ms", str(exc)[:60]))
            continue
        evaluator = evaluator_for(target, backend, args.seeds, work)

        def once(index: int, evaluator: TrustedEvaluator = evaluator, name: str = name) -> float:
            started = time.monotonic()
            result = evaluator.evaluate(evaluator.lineage.head(), unique_diff(index + 1000), f"o-{index}")
            if not result.ok:
                raise SystemExit(f"{name}: the null candidate failed: {result.failure_detail}")
            return time.monotonic() - started

        total = median_of(args.repeat, once)
        overhead = total - bare
        target_s = TARGETS_S[name]
        verdict = "PASS" if overhead <= target_s else "MISS"
        rows.append((f"{name} sandbox", f"{overhead * 1000:.0f} ms", f"≤ {target_s * 1000:.0f} ms", verdict))
    return rows


def isolation_rows(args: argparse.Namespace, work: Path) -> list[tuple[str, str, str, str]]:
    """What it costs to start every phase from the staged tree, both ways, per candidate.

    In-session reset: the driver kills every process, empties /workspace, /tmp and shared memory,
    and copies the staged tree in again. Fresh session: a new sandbox per phase (create, stage,
    remove). A candidate has 2 × seeds phases after the first."""
    target = null_target(work / "isolation-target")
    # The bundled target's files, so the restaged tree is a real one.
    shutil.copytree(ROOT / "target_repo", target / "tree", ignore=shutil.ignore_patterns("__pycache__"))
    resets_per_candidate = 2 * args.seeds
    rows = []
    for name in args.backends:
        try:
            backend = make_backend(name, args.image)
        except RsiError as exc:
            rows.append((name, "unavailable", "", str(exc)[:60]))
            continue

        def fresh(index: int, backend: Backend = backend) -> float:
            started = time.monotonic()
            with backend.open(target, None, f"iso-{index}") as session:
                session.exec("true", timeout_s=10)
            return time.monotonic() - started

        with backend.open(target, None, "iso-reset") as session:
            session.exec("true", timeout_s=10)

            def reset(index: int, session: Any = session) -> float:
                session.exec("mkdir -p /tmp/rsi-out/seed-0 && touch /tmp/x /workspace/y", timeout_s=10)
                started = time.monotonic()
                session.reset("/tmp/rsi-out/seed-0")
                return time.monotonic() - started

            per_reset = median_of(args.repeat, reset)
        per_session = median_of(args.repeat, fresh)
        for how, each in (("in-session reset", per_reset), ("fresh session", per_session)):
            rows.append(
                (
                    f"{name}: {how}",
                    f"{each * 1000:.1f} ms",
                    f"{each * resets_per_candidate * 1000:.0f} ms",
                    "chosen" if how == "in-session reset" else "",
                )
            )
    return rows


def throughput_rows(args: argparse.Namespace, work: Path) -> list[tuple[str, str, str, str]]:
    rows = []
    k = args.parallel or os.cpu_count() or 1
    for name in args.backends:
        try:
            backend = make_backend(name, args.image)
        except RsiError:
            continue
        per_minute = {}
        for workers in (1, k):
            evaluator = evaluator_for(ROOT / "target_repo", backend, 1, work, parallel=workers)
            diffs = [unique_diff(workers * 100 + i) for i in range(args.candidates)]
            started = time.monotonic()
            results = evaluator.evaluate_many(evaluator.lineage.head(), diffs)
            elapsed = time.monotonic() - started
            if not all(r.ok for r in results):
                raise SystemExit(f"{name}: a throughput candidate failed: {results}")
            per_minute[workers] = 60 * len(diffs) / elapsed
        speedup = per_minute[k] / per_minute[1]
        rows.append(
            (
                f"{name}: {args.candidates} candidates, K={k} vs 1",
                f"{per_minute[k]:.1f} vs {per_minute[1]:.1f} /min",
                f"×{speedup:.2f}",
                "",
            )
        )
    return rows


def print_table(title: str, header: tuple[str, ...], rows: list[tuple[str, str, str, str]]) -> None:
    print(f"\n{title}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="measurements per row (median)")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per candidate (commands = 1 + 2×seeds)")
    parser.add_argument("--candidates", type=int, default=4, help="candidates in the throughput rows")
    parser.add_argument("--parallel", type=int, default=None, help="K (default: CPU cores)")
    parser.add_argument("--image", default=os.environ.get("RSI_TEST_IMAGE", "rsi-sandbox:latest"))
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument(
        "--backends",
        type=lambda text: [name for name in text.split(",") if name],
        default=["docker", "bwrap"],
        help="comma-separated backends to measure (default: docker,bwrap)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rsi-bench-") as tmp:
        work = Path(tmp)
        print(
            f"sandbox bench: {os.cpu_count()} cores, {args.seeds} seeds ({1 + 2 * args.seeds} commands) per candidate"
        )
        print_table(
            "Per-candidate overhead beyond the work (median)",
            ("backend", "overhead", "target", "result"),
            overhead_rows(args, work),
        )
        print_table(
            f"Phase isolation: cost per phase and per candidate ({2 * args.seeds} phases after the first, median)",
            ("backend: how", "per phase", "per candidate", ""),
            isolation_rows(args, work),
        )
        if not args.skip_throughput:
            print_table(
                "Throughput on the bundled target (1 seed per candidate)",
                ("run", "candidates per minute", "speedup", ""),
                throughput_rows(args, work),
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
