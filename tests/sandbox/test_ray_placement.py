"""The Ray placement on a real local cluster: a head with no CPUs and worker nodes with one CPU
each, all on this machine's Docker engine. One cluster per module (started once, always stopped)."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from core.target import TargetSpec
from sandbox.base import SandboxConfig
from sandbox.evaluate import TrustedEvaluator
from sandbox.heldout import load_heldout
from sandbox.lineage import Lineage
from tests.conftest import IMAGE, IN_CI, TARGET, make_diff, sandboxes_of
from tests.sandbox.hostile import inject_into_train

try:
    # Token authentication, as rsi joins clusters by default: set before Ray reads its configuration.
    os.environ["RAY_AUTH_MODE"] = "token"
    os.environ["RAY_AUTH_TOKEN"] = uuid.uuid4().hex * 2
    import ray
    from ray.cluster_utils import Cluster
except ImportError:
    if IN_CI:
        pytest.fail("Ray is not installed (CI=true: Ray tests must run; pip install '.[ray]')", pytrace=False)
    pytest.skip("Ray is not installed (pip install 'rsi-sandbox[ray]')", allow_module_level=True)

from sandbox.ray_placement import RayConfig, RayPlacement

pytestmark = [pytest.mark.docker, pytest.mark.ray, pytest.mark.slow]
NODE = {"num_cpus": 1, "memory": 2 * 1024**3}


@pytest.fixture(scope="module")
def cluster(docker_client: Any) -> Iterator[Cluster]:
    cluster = Cluster(initialize_head=True, connect=True, head_node_args={"num_cpus": 0})
    try:
        for _ in range(2):
            cluster.add_node(**NODE)
        cluster.wait_for_nodes()
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()


def make_evaluator(tmp_path: Path, cluster: Cluster, run_id: str, parallel: int = 1) -> TrustedEvaluator:
    spec = TargetSpec.load(TARGET)
    spec.budget.steps, spec.budget.train_seconds = 300, 30
    lineage = Lineage.create(tmp_path / "lineage", TARGET)
    config = SandboxConfig(image=IMAGE, memory_mb=512, workspace_mb=64, tmp_mb=64)
    placement = RayPlacement("docker", config, IMAGE, run_id, RayConfig(address=cluster.address))
    heldout = load_heldout(spec.metric.heldout, seed=7, size=200)
    lockbox = load_heldout(spec.metric.heldout, seed=8, size=200)
    return TrustedEvaluator(
        spec, lineage, placement, heldout, [0], tmp_path / "logs", parallel=parallel, lockbox=lockbox
    )


def variants(count: int) -> list[str]:
    return [make_diff(TARGET, "train.py", "", f"\n# variant {i}\n") for i in range(count)]


def test_candidates_spread_over_the_nodes_and_record_where_they_ran(
    tmp_path: Path, cluster: Cluster, docker_client: Any
) -> None:
    run_id = f"ray-spread-{uuid.uuid4().hex[:8]}"
    evaluator = make_evaluator(tmp_path, cluster, run_id, parallel=2)
    results = evaluator.evaluate_many(evaluator.lineage.head(), variants(2))
    assert all(r.ok for r in results), [r.failure_detail for r in results]
    nodes = {r.placement.node_id for r in results if r.placement}
    assert len(nodes) == 2, nodes
    assert all(r.placement and r.placement.address and r.placement.kind for r in results)
    assert all(r.metric and r.metric.per_seed and r.lockbox for r in results)
    assert not sandboxes_of(docker_client, run_id)


def test_no_label_crosses_to_a_node_but_the_inputs_do_while_predict_runs(
    tmp_path: Path, cluster: Cluster
) -> None:
    evaluator = make_evaluator(tmp_path, cluster, f"ray-labels-{uuid.uuid4().hex[:8]}")
    placement = evaluator.backend
    assert isinstance(placement, RayPlacement)
    labels = [evaluator.heldout.labels, evaluator.lockbox.labels if evaluator.lockbox else None]
    forbidden = [a.tobytes() for a in labels if a is not None]
    forbidden += [a.astype(np.float32).tobytes() for a in labels if a is not None]
    sent: list[bytes] = []

    def check(blob: bytes) -> None:
        assert not any(label in blob for label in forbidden), "held-out labels were about to leave the head"
        sent.append(blob)

    placement.outbound_checks.append(check)
    result = evaluator.evaluate(evaluator.lineage.head(), "", label="labels")
    assert result.ok, result.failure_detail
    inputs = evaluator.staged.inputs.tobytes()
    assert sum(inputs in blob for blob in sent) == 1, "the staged inputs are mirrored once, for predict"


def test_a_node_lost_mid_evaluation_is_rerun_elsewhere_leaving_nothing_behind(
    tmp_path: Path, cluster: Cluster, docker_client: Any
) -> None:
    run_id = f"ray-lost-{uuid.uuid4().hex[:8]}"
    evaluator = make_evaluator(tmp_path, cluster, run_id)
    placement = evaluator.backend
    assert isinstance(placement, RayPlacement)
    training = threading.Event()
    evaluator.progress = lambda phase, details: training.set() if phase == "train" else None
    results: list[Any] = []
    # Training that lasts long enough for the node's removal to land mid-evaluation on a busy machine.
    slow = inject_into_train("import time\ntime.sleep(15)")
    worker = threading.Thread(
        target=lambda: results.append(evaluator.evaluate(evaluator.lineage.head(), slow))
    )
    worker.start()
    try:
        assert training.wait(120), "the evaluation never reached training"
        (busy,) = [node for node, sessions in placement.load().items() if sessions > 0]
        victim = next(n for n in cluster.worker_nodes if n.node_id == busy)
        cluster.remove_node(victim, allow_graceful=False)
    finally:
        worker.join(300)
        cluster.add_node(**NODE)  # the next tests find two nodes again
        cluster.wait_for_nodes()
    (result,) = results
    assert result.ok, result.failure_detail
    assert result.placement and result.placement.node_id != busy
    assert result.placement.lost and busy[:12] in result.placement.lost[0]
    deadline = time.monotonic() + 60
    while sandboxes_of(docker_client, run_id, wait_s=1) and time.monotonic() < deadline:
        placement.remove_orphans()
    assert not sandboxes_of(docker_client, run_id, wait_s=0), "an orphan sandbox was left behind"


def test_a_sandbox_cannot_reach_the_cluster(tmp_path: Path, cluster: Cluster) -> None:
    placement = RayPlacement(
        "docker",
        SandboxConfig(image=IMAGE),
        IMAGE,
        f"ray-net-{uuid.uuid4().hex[:8]}",
        RayConfig(address=cluster.address),
    )
    host, _, port = cluster.address.rpartition(":")
    stage = tmp_path / "stage"
    stage.mkdir()
    probe = (
        "import socket,sys\n"
        f"for addr in [({host!r}, {port}), ('127.0.0.1', {port})]:\n"
        "    try:\n"
        "        socket.create_connection(addr, timeout=3); print('reached', addr); sys.exit(1)\n"
        "    except OSError as exc:\n"
        "        print('blocked', addr, exc)\n"
    )
    with placement.open(stage, None, "net") as session:
        result = session.exec(f"python3 -c {shlex.quote(probe)}", timeout_s=30)
    assert result.exit_code == 0, result.output
    assert result.output.count("blocked") == 2


def test_a_node_without_the_image_is_reported_by_name_and_not_used(tmp_path: Path, cluster: Cluster) -> None:
    placement = RayPlacement(
        "docker",
        SandboxConfig(),
        "rsi-sandbox:no-such-tag",
        "ray-noimage",
        RayConfig(address=cluster.address),
    )
    survey = placement.survey()
    assert len(survey) == 2
    assert all(why and "not on this node" in why for _, why in survey)
    with pytest.raises(Exception, match="no node of the Ray cluster"):
        placement.require_image()


def test_a_driver_without_the_cluster_token_is_refused(cluster: Cluster) -> None:
    join = f"import ray; ray.init(address={cluster.address!r}); print('joined')"
    wrong = dict(os.environ, RAY_AUTH_TOKEN=uuid.uuid4().hex * 2)
    refused = subprocess.run(
        [sys.executable, "-c", join], env=wrong, capture_output=True, text=True, timeout=300
    )
    assert refused.returncode != 0 and "joined" not in refused.stdout
    right = subprocess.run([sys.executable, "-c", join], capture_output=True, text=True, timeout=300)
    assert right.returncode == 0 and "joined" in right.stdout, right.stderr[-2000:]


def placements(trajectory: Path) -> list[dict[str, Any]]:
    """Every evaluation's placement record in a trajectory."""
    found: list[dict[str, Any]] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            if isinstance(value.get("placement"), dict) and "node_id" in value["placement"]:
                found.append(value["placement"])
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    for line in trajectory.read_text().splitlines():
        walk(json.loads(line))
    return found


def readme_cluster_commands() -> list[list[str]]:
    """The README's three commands for several machines (environment assignments dropped)."""
    from tests.test_readme import commands, readme_blocks

    (block,) = readme_blocks("ray-cluster")
    return [[w for w in shlex.split(line) if "=" not in w] for line in commands(block)]


def test_the_readme_cluster_commands_use_real_options() -> None:
    head, worker, _ = readme_cluster_commands()
    ray_help = subprocess.run(
        [sys.executable, "-m", "ray.scripts.scripts", "start", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for word in head + worker:
        if word.startswith("--"):
            assert word in ray_help, f"`ray start` has no {word}"


def test_the_readme_run_command_survives_a_killed_head_and_records_where_each_candidate_ran(
    tmp_path: Path, cluster: Cluster, target_copy: Path, docker_client: Any
) -> None:
    """The README's run, its head killed (-9) once the first evaluation is recorded, then resumed:
    nothing lost, the chain intact, evaluations on both nodes, no sandbox left behind."""
    *_, run = readme_cluster_commands()
    assert run[:3] == ["rsi", "run", "--ray"]
    run_dir = tmp_path / "run"
    trajectory = run_dir / "trajectory.jsonl"
    rsi = [sys.executable, "-m", "rsi"]
    command = [*rsi, "run", "--ray", cluster.address, *run[4:]]
    command += ["--target", str(target_copy), "--run-dir", str(run_dir)]
    head = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while not (trajectory.exists() and placements(trajectory)) and head.poll() is None:
            assert time.monotonic() < deadline, "no evaluation recorded in 300 s"
            time.sleep(0.2)
    finally:
        head.kill()
        head.wait()
    recorded = len(placements(trajectory))
    resumed = subprocess.run(
        [*rsi, "resume", str(run_dir), "--headless"], capture_output=True, text=True, timeout=900
    )
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    where = placements(trajectory)
    assert len(where) > recorded and len({p["node_id"] for p in where}) == 2, where
    check = subprocess.run([*rsi, "replay", str(trajectory), "--check"], capture_output=True)
    assert check.returncode == 0, check.stdout[-2000:]
    run_id = json.loads(trajectory.read_text().splitlines()[0])["run_id"]
    assert not sandboxes_of(docker_client, run_id), "a sandbox of the killed head was left behind"
    wide = dict(os.environ, COLUMNS="240")
    doctor = subprocess.run(
        [*rsi, "doctor", "--ray", cluster.address], capture_output=True, text=True, env=wide
    )
    assert doctor.returncode == 0, doctor.stdout[-2000:] + doctor.stderr[-2000:]
    assert doctor.stdout.count("│ used") == 2 and "not used" not in doctor.stdout, doctor.stdout
