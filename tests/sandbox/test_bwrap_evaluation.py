"""The bubblewrap backend under the same hostile candidates as Docker (no engine needed)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from core.target import TargetSpec
from sandbox.base import SandboxConfig
from sandbox.bwrap_backend import BwrapBackend, CgroupLimits
from sandbox.evaluate import TrustedEvaluator
from sandbox.heldout import load_heldout
from sandbox.lineage import Lineage
from tests.conftest import IN_CI, TARGET
from tests.sandbox import hostile

pytestmark = pytest.mark.bwrap


@pytest.fixture
def evaluator(tmp_path: Path) -> TrustedEvaluator:
    if shutil.which("bwrap") is None:
        if IN_CI:
            pytest.fail("bwrap is not installed (CI=true: bwrap tests must run)")
        pytest.skip("bwrap is not installed")
    spec = TargetSpec.load(TARGET)
    spec.budget.train_seconds = 8
    lineage = Lineage.create(tmp_path / "lineage", TARGET)
    config = SandboxConfig(memory_mb=256, workspace_mb=32, tmp_mb=32, pids_limit=64)
    backend = BwrapBackend(config, image="unused", run_id="test-bwrap")
    heldout = load_heldout(spec.metric.heldout, seed=7, size=300)
    return TrustedEvaluator(spec, lineage, backend, heldout, seeds=[0], log_dir=tmp_path / "logs")


def test_parent_is_evaluated_with_resources(evaluator: TrustedEvaluator) -> None:
    result = evaluator.evaluate(evaluator.lineage.head(), "", label="baseline")
    assert result.ok, result.failure_detail
    assert result.backend == "bwrap" and result.metric and 0.0 < result.metric.mean < 0.5
    assert result.tests and result.tests.passed >= 10
    if CgroupLimits.available():
        assert result.resources.cpu_s and result.resources.peak_memory_mb


LIMITED = pytest.mark.skipif(not CgroupLimits.available(), reason="pid and memory limits need cgroups here")


@pytest.mark.parametrize(
    ("code", "failure"),
    [
        (hostile.NETWORK, "train_crashed"),
        pytest.param(hostile.FORK_BOMB, "pids_exhausted", marks=LIMITED),
        pytest.param(hostile.MEMORY_HOG, "out_of_memory", marks=LIMITED),
        (hostile.DISK_FILLER, "disk_full"),
        (hostile.INFINITE_LOOP, "timeout"),
    ],
    ids=["network", "fork-bomb", "memory", "disk", "infinite-loop"],
)
def test_abuse_is_contained_and_classified(evaluator: TrustedEvaluator, code: str, failure: str) -> None:
    result = evaluator.evaluate(evaluator.lineage.head(), hostile.inject_into_train(code), label=failure)
    assert result.failure == failure, (result.failure, result.failure_detail)
    assert evaluator.evaluate(evaluator.lineage.head(), "", label="after").ok


@pytest.mark.parametrize(
    "code",
    [hostile.WRITE_OUTSIDE, hostile.FIND_THE_EVALUATOR, hostile.API_KEY_AND_PRIVILEGES],
    ids=["write-outside", "evaluator-invisible", "api-key-and-privileges"],
)
def test_probes_find_nothing(evaluator: TrustedEvaluator, code: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-secret-123")
    result = evaluator.evaluate(evaluator.lineage.head(), hostile.inject_into_train(code), label="probe")
    assert result.ok, result.failure_detail


def test_held_out_labels_are_never_visible(evaluator: TrustedEvaluator) -> None:
    code = hostile.label_scanner(evaluator.heldout.labels[:4].tobytes().hex())
    result = evaluator.evaluate(evaluator.lineage.head(), hostile.inject_into_train(code), label="labels")
    assert result.ok, result.failure_detail
    assert "heldout: []" in Path(result.phases[1].log_file or "").read_text()  # inputs only at predict


def test_no_cgroup_is_left_behind(evaluator: TrustedEvaluator) -> None:
    evaluator.evaluate(
        evaluator.lineage.head(), hostile.inject_into_train("import time\ntime.sleep(60)"), label="x"
    )
    assert not list(Path("/sys/fs/cgroup/pids").glob(f"rsi-bwrap-{__import__('os').getpid()}-*"))


def test_an_evaluation_on_other_seeds_is_measured_on_them_and_merges_per_seed(
    evaluator: TrustedEvaluator,
) -> None:
    head = evaluator.lineage.head()
    first = evaluator.evaluate(head, "", label="baseline")
    assert evaluator.evaluate(head, "", label="baseline-again") is first  # the same seeds: cached
    extra = evaluator.evaluate(head, "", label="extra-seeds", seeds=[3])  # never served from the cache
    assert first.ok and extra.ok, extra.failure_detail
    assert first.metric and extra.metric and extra.seeds == [3] and list(extra.metric.per_seed) == [3]
    assert extra.tree == first.tree and evaluator.evaluate(head, "", label="x", seeds=[3]) is extra
    merged = first.with_extra_seeds(extra)
    assert merged.seeds == [0, 3] and merged.metric is not None
    assert merged.metric.per_seed == {**first.metric.per_seed, **extra.metric.per_seed}
    assert {p.phase for p in merged.phases} >= {"train-seed-0", "train-seed-3"}
    with pytest.raises(ValueError, match="measured already"):
        merged.with_extra_seeds(extra)
