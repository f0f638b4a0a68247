"""Escape and abuse attempts as patches, in real hardened containers: each is contained and classified."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from pathlib import Path

import docker
import pytest

from core.target import TargetSpec
from sandbox.base import SANDBOX_LABEL, SandboxConfig, owner_labels
from sandbox.docker_backend import DockerBackend, remove_orphans
from sandbox.evaluate import TrustedEvaluator
from sandbox.heldout import load_heldout
from sandbox.lineage import Lineage
from tests.conftest import IMAGE, TARGET, file_diff, make_diff
from tests.sandbox import hostile

pytestmark = pytest.mark.docker

LIMITS = SandboxConfig(memory_mb=256, workspace_mb=32, tmp_mb=32, pids_limit=64)


def make_evaluator(
    tmp_path: Path, config: SandboxConfig = LIMITS, run_id: str | None = None
) -> TrustedEvaluator:
    spec = TargetSpec.load(TARGET)
    spec.budget.train_seconds = 8  # keeps the infinite-loop case short
    lineage = Lineage.create(tmp_path / "lineage", TARGET)
    backend = DockerBackend(config, image=IMAGE, run_id=run_id or f"test-{tmp_path.name[-12:]}")
    heldout = load_heldout(spec.metric.heldout, seed=7, size=300)
    return TrustedEvaluator(spec, lineage, backend, heldout, seeds=[0], log_dir=tmp_path / "logs", parallel=2)


@pytest.fixture
def evaluator(docker_client, tmp_path: Path) -> TrustedEvaluator:  # type: ignore[no-untyped-def]
    return make_evaluator(tmp_path)


def run_hostile(evaluator: TrustedEvaluator, code: str, label: str):  # type: ignore[no-untyped-def]
    return evaluator.evaluate(evaluator.lineage.head(), hostile.inject_into_train(code), label=label)


@pytest.mark.parametrize(
    ("code", "failure", "evidence"),
    [
        (hostile.NETWORK, "train_crashed", "Operation not permitted"),  # no IP socket (seccomp)
        (hostile.FORK_BOMB, "pids_exhausted", ""),
        (hostile.MEMORY_HOG, "out_of_memory", ""),
        (hostile.DISK_FILLER, "disk_full", "No space left on device"),
        (hostile.INFINITE_LOOP, "timeout", ""),
    ],
    ids=["network", "fork-bomb", "memory", "disk", "infinite-loop"],
)
def test_abuse_is_contained_and_classified(
    evaluator: TrustedEvaluator, code: str, failure: str, evidence: str
) -> None:
    result = run_hostile(evaluator, code, label=failure)
    assert result.failure == failure, (result.failure, result.failure_detail)
    assert not result.ok and result.metric is None
    train = result.phases[-1]
    assert train.phase == "train-seed-0" and train.log_file and Path(train.log_file).is_file()
    assert evidence in Path(train.log_file).read_text()
    assert result.resources.wall_s > 0 and result.resources.cpu_s is not None
    # The sandbox is gone and the evaluator carries on with the next candidate.
    assert evaluator.evaluate(evaluator.lineage.head(), "", label="after").ok


@pytest.mark.parametrize(
    "code",
    [hostile.WRITE_OUTSIDE, hostile.FIND_THE_EVALUATOR, hostile.API_KEY_AND_PRIVILEGES],
    ids=["write-outside", "evaluator-invisible", "api-key-and-privileges"],
)
def test_probes_find_nothing(evaluator: TrustedEvaluator, code: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-secret-123")
    result = run_hostile(evaluator, code, label="probe")
    assert result.ok, result.failure_detail
    log = Path(result.phases[1].log_file or "").read_text()
    assert "NoNewPrivs\t1" in log or "NoNewPrivs 1" in log or "visible" in log or "succeeded" in log


def test_a_patched_rsi_toml_does_not_change_what_the_harness_runs(evaluator: TrustedEvaluator) -> None:
    diff = make_diff(TARGET, "rsi.toml", 'train = "python train.py', 'train = "echo fake && python train.py')
    result = evaluator.evaluate(evaluator.lineage.head(), diff, label="own-evaluator")
    assert result.ok and next(p.command for p in result.phases if p.phase == "train-seed-0").endswith(
        "python train.py --seed 0 --out /tmp/rsi-out/seed-0 --steps 3000"
    )


@pytest.mark.parametrize(
    "diff",
    [
        file_diff("../outside.py", None, "x = 1\n"),
        "diff --git a/link b/link\nnew file mode 120000\n--- /dev/null\n+++ b/link\n@@ -0,0 +1 @@\n+/etc/passwd\n\\ No newline at end of file\n",
    ],
    ids=["dotdot", "outward-symlink"],
)
def test_path_escapes_are_rejected_before_anything_runs(evaluator: TrustedEvaluator, diff: str) -> None:
    result = evaluator.evaluate(evaluator.lineage.head(), diff, label="escape")
    assert result.failure == "patch_rejected" and result.phases == []


def test_engine_unreachable_is_a_sandbox_error_and_not_cached(evaluator: TrustedEvaluator) -> None:
    backend = evaluator.backend
    assert isinstance(backend, DockerBackend)
    working = backend.client
    backend.client = docker.DockerClient(
        base_url="unix:///tmp/rsi-no-engine-here.sock", version="1.41", timeout=5
    )
    try:
        down = evaluator.evaluate(evaluator.lineage.head(), "", label="engine-down")
    finally:
        backend.client = working
    assert down.failure == "sandbox_error" and "Docker engine" in down.failure_detail
    assert Path(evaluator.log_dir / "engine-down" / "sandbox-error.log").is_file()
    assert evaluator.evaluate(evaluator.lineage.head(), "", label="engine-back").ok


def test_container_killed_from_outside_mid_command_is_a_sandbox_error(
    evaluator: TrustedEvaluator, docker_client
) -> None:  # type: ignore[no-untyped-def]
    run_id = evaluator.backend.run_id  # type: ignore[attr-defined]

    def kill_when_training(phase: str, details: dict) -> None:  # type: ignore[type-arg]
        if phase == "train":

            def later() -> None:
                time.sleep(0.5)
                for c in hostile.labelled_containers(docker_client, f"rsi.run_id={run_id}"):
                    with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                        c.kill()  # already gone or stopping: the sandbox ended anyway

            threading.Thread(target=later).start()

    evaluator.progress = kill_when_training
    result = run_hostile(evaluator, "import time\ntime.sleep(20)", label="killed")
    assert result.failure == "sandbox_error", result.failure_detail
    assert "ended unexpectedly" in result.failure_detail
    assert hostile.sandboxes_of(docker_client, run_id) == []


def test_ctrl_c_mid_evaluation_leaves_no_container(evaluator: TrustedEvaluator, docker_client) -> None:  # type: ignore[no-untyped-def]
    def interrupt(phase: str, details: dict) -> None:  # type: ignore[type-arg]
        if phase == "train":
            raise KeyboardInterrupt

    evaluator.progress = interrupt
    with pytest.raises(KeyboardInterrupt):
        evaluator.evaluate(evaluator.lineage.head(), "", label="ctrl-c")
    run_id = evaluator.backend.run_id  # type: ignore[attr-defined]
    assert hostile.sandboxes_of(docker_client, run_id) == []


def test_ctrl_c_during_parallel_evaluation_stops_every_sandbox(
    evaluator: TrustedEvaluator, docker_client
) -> None:  # type: ignore[no-untyped-def]
    run_id = evaluator.backend.run_id  # type: ignore[attr-defined]
    slow = hostile.inject_into_train("import time\ntime.sleep(30)")
    slower = hostile.inject_into_train("import time\ntime.sleep(31)")
    started = threading.Event()
    evaluator.progress = lambda phase, details: started.set() if phase == "train" else None
    pressed: list[float] = []
    answered = threading.Event()

    def press_ctrl_c() -> None:
        # A real SIGINT to the main thread, as a terminal sends it, once training runs in a sandbox
        # (however long the tests phase takes on a busy machine). Pressed again after 3 s if still
        # unanswered, as a person would: in one CI run on a loaded machine the first press went
        # unanswered (the main thread can be inside a finaliser, where Python drops the exception);
        # 3 s leaves an answered press time to stop the sandboxes, and training times out at 8.
        if started.wait(600):
            time.sleep(0.5)
            for _ in range(2):
                if answered.is_set():
                    return
                pressed.append(time.monotonic())
                signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)
                answered.wait(3.0)

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C raises, whatever ran before
    threading.Thread(target=press_ctrl_c, daemon=True).start()
    try:
        with pytest.raises(KeyboardInterrupt):
            evaluator.evaluate_many(evaluator.lineage.head(), [slow, slower])
    finally:
        answered.set()
        signal.signal(signal.SIGINT, previous)
    # The sandboxes sleep 30 s in training: stopping well before that means they were stopped.
    assert pressed and time.monotonic() - pressed[0] < 20
    assert hostile.sandboxes_of(docker_client, run_id) == []


def test_orphans_of_a_dead_owner_are_reaped(docker_client) -> None:  # type: ignore[no-untyped-def]
    labels = owner_labels("test-orphan", "crashed")
    labels["rsi.pid"] = "999999999"  # no such process: its owner crashed
    container = docker_client.containers.create(IMAGE, ["sleep", "60"], labels=labels, network_mode="none")
    assert remove_orphans(docker_client) >= 1
    with pytest.raises(docker.errors.NotFound):
        container.reload()
    mine = hostile.labelled_containers(docker_client, [SANDBOX_LABEL, f"rsi.pid={os.getpid()}"])
    assert all(c.labels.get("rsi.run_id") != "test-orphan" for c in mine)


def test_parallel_candidates_stay_attributed_in_input_order(evaluator: TrustedEvaluator) -> None:
    better = make_diff(TARGET, "config.py", "input_range: float = 0.5", "input_range: float = 1.0")
    broken = make_diff(TARGET, "data.py", "+ 0.5 * x[:, 4] ** 2", "+ 0.6 * x[:, 4] ** 2")
    head = evaluator.lineage.head()
    results = evaluator.evaluate_many(head, ["", broken, better], labels=["parent", "broken", "better"])
    assert [r.failure for r in results] == [None, "tests_failed", None]
    assert results[2].metric and results[0].metric and results[2].metric.mean > results[0].metric.mean
    assert len({r.tree for r in results}) == 3
    assert [Path(r.phases[0].log_file or "").parent.name for r in results] == ["parent", "broken", "better"]


def test_identical_trees_are_measured_once(evaluator: TrustedEvaluator) -> None:
    change = ("input_range: float = 0.5", "input_range: float = 1.0")
    diff = make_diff(TARGET, "config.py", *change)
    # The same change written differently (no context lines) yields the same tree.
    terse = "".join(line for line in diff.splitlines(keepends=True) if not line.startswith(" "))
    terse = terse.replace("@@ -", "@@ -").replace(",7 +", ",1 +")
    first = evaluator.evaluate(evaluator.lineage.head(), diff, label="first")
    again = evaluator.evaluate(evaluator.lineage.head(), diff + "\n", label="again")
    assert again.tree == first.tree and again.resources == first.resources
    assert not (evaluator.log_dir / "again").exists()
