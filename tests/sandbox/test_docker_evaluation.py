"""Candidates evaluated in real, hardened Docker containers; labels stay on the host."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.target import TargetSpec
from sandbox.base import SandboxConfig
from sandbox.docker_backend import DockerBackend
from sandbox.evaluate import TrustedEvaluator
from sandbox.heldout import load_heldout
from sandbox.lineage import Lineage
from tests.conftest import IMAGE, TARGET, make_diff
from tests.sandbox import hostile

pytestmark = pytest.mark.docker

MAIN = 'if __name__ == "__main__":\n    main()\n'


def inject_into_train(code: str) -> str:
    """A diff that runs `code` at the start of train.py's main block (not under the target's tests)."""
    guarded = "".join(f"    {line}\n" for line in code.splitlines())
    body = f'if __name__ == "__main__":\n    import os as _os\n    if "PYTEST_CURRENT_TEST" not in _os.environ:\n{guarded}    main()\n'
    return make_diff(TARGET, "train.py", MAIN, body)


@pytest.fixture
def evaluator(docker_client, tmp_path: Path) -> TrustedEvaluator:  # type: ignore[no-untyped-def]
    spec = TargetSpec.load(TARGET)
    lineage = Lineage.create(tmp_path / "lineage", TARGET)
    backend = DockerBackend(SandboxConfig(), image=IMAGE, run_id=f"test-{tmp_path.name[-12:]}")
    heldout = load_heldout(spec.metric.heldout, seed=7, size=500)
    return TrustedEvaluator(spec, lineage, backend, heldout, seeds=[0, 1], log_dir=tmp_path / "logs")


def test_parent_is_evaluated_with_tests_and_metric_per_seed(evaluator: TrustedEvaluator) -> None:
    result = evaluator.evaluate(evaluator.lineage.head(), "", label="baseline")
    assert result.ok, result.failure_detail
    assert result.tests is not None and result.tests.passed >= 10 and result.tests.failed == 0
    assert result.metric is not None and set(result.metric.per_seed) == {0, 1}
    assert 0.0 < result.metric.mean < 0.5  # the bundled baseline is far from the ceiling
    assert result.resources.cpu_s and result.resources.peak_memory_mb
    assert [p.phase for p in result.phases] == [
        "tests",
        "train-seed-0",
        "predict-seed-0",
        "train-seed-1",
        "predict-seed-1",
    ]
    assert Path(result.phases[1].log_file or "").read_text().startswith("$ mkdir -p")


def test_an_improving_patch_measures_better(evaluator: TrustedEvaluator) -> None:
    diff = make_diff(TARGET, "config.py", "input_range: float = 0.5", "input_range: float = 1.0")
    parent = evaluator.evaluate(evaluator.lineage.head(), "", label="parent")
    child = evaluator.evaluate(evaluator.lineage.head(), diff, label="child")
    assert child.ok and parent.metric and child.metric
    assert child.metric.mean > parent.metric.mean + 0.2


def test_network_is_really_off(evaluator: TrustedEvaluator) -> None:
    code = (
        "    import socket\n"
        "    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)\n"
        "    s.settimeout(3)\n"
        "    s.connect(('1.1.1.1', 53))\n"
    )
    result = evaluator.evaluate(evaluator.lineage.head(), inject_into_train(code), label="socket")
    assert not result.ok and result.failure == "train_crashed"
    # Refused before any route is looked up: a sandbox without network opens no IP socket.
    assert "Operation not permitted" in result.failure_detail, result.failure_detail


def test_held_out_labels_never_enter_the_container(evaluator: TrustedEvaluator) -> None:
    labels = evaluator.heldout.labels
    needle = labels[:4].tobytes().hex()
    code = (
        "    import os, sys\n"
        f"    needle = bytes.fromhex('{needle}')\n"
        "    seen = []\n"
        "    for root in ('/heldout', '/src', '/workspace', '/tmp', '/home', '/etc', '/opt', '/root', '/var'):\n"
        "        for d, _, files in os.walk(root):\n"
        "            for f in files:\n"
        "                p = os.path.join(d, f)\n"
        "                try:\n"
        "                    data = open(p, 'rb').read()\n"
        "                except OSError:\n"
        "                    continue\n"
        "                seen.append(p)\n"
        "                if needle in data:\n"
        "                    sys.exit('LABELS FOUND IN ' + p)\n"
        "    print('scanned', len(seen), 'files; heldout:', sorted(os.listdir('/heldout')))\n"
    )
    result = evaluator.evaluate(evaluator.lineage.head(), inject_into_train(code), label="labels")
    assert result.ok, result.failure_detail
    train_log = Path(result.phases[1].log_file or "").read_text()
    assert "heldout: []" in train_log  # the inputs appear only while predict runs
    assert "LABELS FOUND" not in train_log
    inputs_needle = evaluator.heldout.inputs[:1].tobytes()
    assert inputs_needle and not np.array_equal(evaluator.heldout.inputs[:, 0], labels)


def test_container_runs_unprivileged_read_only_and_without_the_api_key(
    evaluator: TrustedEvaluator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-secret-123")
    code = (
        "    import os\n"
        "    assert os.getuid() != 0, 'running as root'\n"
        "    assert 'sk-ant-test-secret-123' not in repr(dict(os.environ)), 'API key leaked'\n"
        "    try:\n"
        "        open('/usr/lib/evil', 'w')\n"
        "        raise SystemExit('root filesystem is writable')\n"
        "    except OSError:\n"
        "        pass\n"
        "    caps = [l for l in open('/proc/self/status') if l.startswith('CapEff')][0].split()[1]\n"
        "    assert int(caps, 16) == 0, 'capabilities: ' + caps\n"
    )
    result = evaluator.evaluate(evaluator.lineage.head(), inject_into_train(code), label="hardening")
    assert result.ok, result.failure_detail


def test_failing_tests_stop_the_evaluation_before_training(evaluator: TrustedEvaluator) -> None:
    diff = make_diff(TARGET, "data.py", "+ 0.5 * x[:, 4] ** 2", "+ 0.6 * x[:, 4] ** 2")
    result = evaluator.evaluate(evaluator.lineage.head(), diff, label="broken")
    assert result.failure == "tests_failed"
    assert result.tests is not None and result.tests.failed >= 1
    assert result.metric is None and [p.phase for p in result.phases] == ["tests"]


def test_patch_that_does_not_apply_is_classified(evaluator: TrustedEvaluator) -> None:
    diff = "--- a/config.py\n+++ b/config.py\n@@ -1 +1 @@\n-this line is not there\n+x\n"
    result = evaluator.evaluate(evaluator.lineage.head(), diff, label="bad-patch")
    assert result.failure == "patch_rejected" and "does not apply" in result.failure_detail


def test_container_is_removed_after_an_exception(docker_client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    backend = DockerBackend(SandboxConfig(), image=IMAGE, run_id="test-cleanup")
    (tmp_path / "ws").mkdir()
    with pytest.raises(RuntimeError), backend.open(tmp_path / "ws", None, "boom") as session:
        assert session.exec("echo alive", 10).output.strip() == "alive"
        raise RuntimeError("the harness failed mid-evaluation")
    assert hostile.sandboxes_of(docker_client, "test-cleanup") == []
