"""Candidates on a Ray cluster: throughput with 2 worker nodes against 1, and the head's cost per
evaluation (what stays on the head however many nodes there are).

Each cluster is local (`ray.cluster_utils.Cluster`): a head with no CPUs and N worker nodes of one
CPU each, all on this machine's engine, started for the measurement and always shut down. Each
measurement evaluates K distinct candidates of the bundled target (one seed) with `evaluate_many`.

    python bench/bench_ray.py [--candidates 4] [--backend docker] [--steps 300]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import pickle
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
THROUGHPUT_TARGET = 1.6
CALLS: dict[str, float] = {}


def variants(count: int) -> list[str]:
    from tests.conftest import make_diff

    return [make_diff(ROOT / "target_repo", "train.py", "", f"\n# variant {i}\n") for i in range(count)]


def evaluator(work: Path, address: str, backend: str, steps: int) -> Any:
    from core.target import TargetSpec
    from sandbox.base import SandboxConfig
    from sandbox.evaluate import TrustedEvaluator
    from sandbox.heldout import load_heldout
    from sandbox.lineage import Lineage
    from sandbox.ray_placement import RayConfig, RayPlacement

    spec = TargetSpec.load(ROOT / "target_repo")
    spec.budget.steps = steps
    config = SandboxConfig(memory_mb=512, workspace_mb=64, tmp_mb=64)
    run_id = f"bench-ray-{uuid.uuid4().hex[:8]}"
    placement = RayPlacement(backend, config, "rsi-sandbox:latest", run_id, RayConfig(address=address))
    heldout = load_heldout(spec.metric.heldout, seed=7, size=300)
    lineage = Lineage.create(work / "lineage", ROOT / "target_repo")
    return TrustedEvaluator(
        spec, lineage, placement, heldout, [0], work / "logs", parallel=placement.capacity()
    )


def throughput(nodes: int, candidates: int, backend: str, steps: int) -> tuple[float, int, list[Any]]:
    """Candidates per minute on a cluster of `nodes` one-CPU workers (and how many nodes ran them)."""
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, connect=True, head_node_args={"num_cpus": 0})
    try:
        for _ in range(nodes):
            cluster.add_node(num_cpus=1, memory=2 * 1024**3)
        cluster.wait_for_nodes()
        with tempfile.TemporaryDirectory(prefix="rsi-bench-ray-") as tmp:
            measure = evaluator(Path(tmp), cluster.address, backend, steps)
            measure.evaluate(measure.lineage.head(), "", label="warm-up")  # image and tree caches
            sent: list[int] = []
            measure.backend.outbound_checks.append(lambda blob: sent.append(len(blob)))
            started = time.monotonic()
            results = measure.evaluate_many(measure.lineage.head(), variants(candidates))
            wall = time.monotonic() - started
            CALLS.update(per_evaluation=len(sent) / candidates, round_trip_ms=round_trip_ms(measure.backend))
        failed = [r.failure_detail for r in results if not r.ok]
        if failed:
            raise SystemExit(f"an evaluation failed: {failed[0]}")
        used = len({r.placement.node_id for r in results if r.placement})
        return candidates / wall * 60, used, results
    finally:
        ray.shutdown()
        cluster.shutdown()


def round_trip_ms(placement: Any, repeat: int = 50) -> float:
    """One proxied session call (usage) head → node → head, on an idle sandbox."""
    with (
        tempfile.TemporaryDirectory(prefix="rsi-bench-rt-") as stage,
        placement.open(Path(stage), None, "round-trip") as session,
    ):
        session.usage()
        started = time.perf_counter()
        for _ in range(repeat):
            session.usage()
        return (time.perf_counter() - started) / repeat * 1000


def head_costs(results: list[Any], repeat: int = 200) -> list[tuple[str, float]]:
    """Milliseconds the head spends per evaluation on what never leaves it."""
    import numpy as np

    from core.trajectory import TrajectoryWriter
    from sandbox.heldout import load_heldout, score
    from sandbox.ray_placement import tree_archive

    heldout = load_heldout("teacher-regression", seed=7, size=300)
    predictions = heldout.labels + np.random.default_rng(0).normal(0, 0.1, heldout.labels.shape)
    rows = []
    with tempfile.TemporaryDirectory(prefix="rsi-bench-head-") as tmp:
        started = time.perf_counter()
        for _ in range(20):
            data = tree_archive(ROOT / "target_repo")
            hashlib.sha256(data).hexdigest()
        rows.append(("tree archive + hash (once per tree)", (time.perf_counter() - started) / 20 * 1000))
        calls = CALLS["per_evaluation"]
        started = time.perf_counter()
        for _ in range(repeat):
            pickle.loads(pickle.dumps(("exec", ("python train.py --seed 0", 60.0, "/workspace"))))
        each_ms = (time.perf_counter() - started) / repeat * 1000
        rows.append((f"call serialization ({calls:.0f} sends to the node)", each_ms * calls))
        waited = calls * CALLS["round_trip_ms"]
        rows.append((f"round trips, waited not spent ({CALLS['round_trip_ms']:.2f} ms each)", waited))
        started = time.perf_counter()
        for _ in range(repeat):
            score("r2", predictions, heldout.labels)
        rows.append(("scoring one seed", (time.perf_counter() - started) / repeat * 1000))
        writer = TrajectoryWriter.open(Path(tmp) / "trajectory.jsonl", run_id="bench")
        payload = results[0].model_dump(mode="json")
        started = time.perf_counter()
        for _ in range(50):
            writer.append("evaluation", {"evaluation": payload})
        rows.append(("trajectory append, fsynced", (time.perf_counter() - started) / 50 * 1000))
        writer.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--candidates", type=int, default=4)
    parser.add_argument("--backend", default="docker", choices=["docker", "bwrap"])
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args()
    os.environ.setdefault("RAY_AUTH_MODE", "token")
    os.environ.setdefault("RAY_AUTH_TOKEN", uuid.uuid4().hex * 2)
    one, used_one, _ = throughput(1, args.candidates, args.backend, args.steps)
    two, used_two, results = throughput(2, args.candidates, args.backend, args.steps)
    ratio = two / one
    print(
        f"\nRay placement, {args.candidates} candidates, backend {args.backend}, {os.cpu_count()} host cores"
    )
    print("| worker nodes (1 CPU each) | nodes used | candidates/min |")
    print("|---|---|---|")
    print(f"| 1 | {used_one} | {one:.2f} |")
    print(f"| 2 | {used_two} | {two:.2f} |")
    verdict = "meets" if ratio >= THROUGHPUT_TARGET else "below"
    print(f"\nspeed-up 2 vs 1 node: {ratio:.2f}x ({verdict} the {THROUGHPUT_TARGET}x target)\n")
    print("| head-side work per evaluation | ms |")
    print("|---|---|")
    for name, ms in head_costs(results):
        print(f"| {name} | {ms:.2f} |")


if __name__ == "__main__":
    main()
