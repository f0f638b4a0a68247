"""Phase isolation and per-phase accounting on both backends, with the real target and sandboxes.

Every phase starts from the staged tree and an empty /tmp; only a seed's output directory passes
from its train to its predict. Each phase's usage is recorded, and a phase that costs far more than
the parent's same phase is an `integrity.phase-budget` finding; honest changes get none.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.contracts import Evaluation, PhaseLog
from core.target import TargetSpec
from sandbox.base import Backend, SandboxConfig
from sandbox.bwrap_backend import BwrapBackend
from sandbox.evaluate import TrustedEvaluator
from sandbox.heldout import load_heldout
from sandbox.integrity import IntegrityConfig
from sandbox.lineage import Lineage
from sandbox.phase_budget import RULE_ID
from tests.conftest import IMAGE, IN_CI, TARGET
from tests.sandbox import hostile, phase_cases

BACKENDS = ["bwrap", pytest.param("docker", marks=pytest.mark.docker)]


def make_backend(name: str, request: pytest.FixtureRequest) -> Backend:
    config = SandboxConfig(image=IMAGE, memory_mb=768, workspace_mb=64, tmp_mb=64, pids_limit=64)
    if name == "docker":
        request.getfixturevalue("docker_client")  # skips (or fails in CI) without an engine
        from sandbox.docker_backend import DockerBackend

        return DockerBackend(config, image=IMAGE, run_id="test-phases")
    if shutil.which("bwrap") is None:
        if IN_CI:
            pytest.fail("bwrap is not installed (CI=true: bwrap tests must run)")
        pytest.skip("bwrap is not installed")
    return BwrapBackend(config, image=IMAGE, run_id="test-phases")


def make_evaluator(backend: Backend, work: Path, seeds: list[int]) -> TrustedEvaluator:
    spec = TargetSpec.load(TARGET)
    spec.budget.train_seconds = 40
    lineage = Lineage.create(work / f"lineage-{backend.name}", TARGET)
    heldout = load_heldout(spec.metric.heldout, seed=7, size=300)
    # The disguised re-run is the integrity checks' business; without it each case costs half.
    integrity = IntegrityConfig(rerun_first_seed=False)
    return TrustedEvaluator(
        spec, lineage, backend, heldout, seeds=seeds, log_dir=work / "logs", integrity=integrity
    )


@pytest.fixture(scope="module", params=BACKENDS)
def measured(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[TrustedEvaluator, Evaluation]]:
    """One evaluator per backend, with its parent (the bundled target) measured once."""
    backend = make_backend(request.param, request)
    evaluator = make_evaluator(backend, tmp_path_factory.mktemp(request.param), seeds=[0])
    parent = evaluator.evaluate(evaluator.lineage.head(), "", label="parent")
    assert parent.ok, parent.failure_detail
    yield evaluator, parent


def budget_findings(evaluation: Evaluation) -> list[str]:
    return [
        f"{f.evidence.get('phase')}:{f.evidence.get('quantity')}"
        for f in evaluation.integrity
        if f.rule_id == RULE_ID
    ]


def own_phases(evaluation: Evaluation) -> list[PhaseLog]:
    """The evaluation's own phases, without the integrity checks' extra runs (they follow them)."""
    return [p for p in evaluation.phases if re.fullmatch(r"tests|(train|predict)-seed-\d+", p.phase)]


def test_every_phase_records_its_own_usage(measured: tuple[TrustedEvaluator, Evaluation]) -> None:
    evaluator, parent = measured
    assert [p.phase for p in own_phases(parent)] == ["tests", "train-seed-0", "predict-seed-0"]
    expected = parent.accounting
    if isinstance(evaluator.backend, BwrapBackend):
        assert expected == evaluator.backend.accounting
    else:
        assert expected in ("cgroup-v1", "cgroup-v2", "docker-stats")
    for phase in own_phases(parent):
        usage = phase.usage
        assert usage is not None and usage.accounting == expected
        assert usage.wall_s is not None and usage.log_bytes and usage.log_bytes > 0
        assert usage.disk_bytes and usage.disk_bytes > 0
        assert (
            (usage.artifact_bytes or 0) > 0
            if phase.phase.startswith("train")
            else usage.artifact_bytes is None
        )
        if expected in ("cgroup-v1", "cgroup-v2"):
            assert usage.cpu_s and usage.cpu_s > 0 and usage.peak_memory_mb and usage.peak_memory_mb > 0
            assert usage.oom_kills == 0 and usage.pids_limit_hits == 0
    # The training phase's peak is its own, not the tests' (pytest's imports weigh more).
    tests, train = parent.phases[0].usage, parent.phases[1].usage
    assert tests and train and tests.peak_memory_mb and train.peak_memory_mb
    assert train.peak_memory_mb < tests.peak_memory_mb
    assert parent.resources.peak_memory_mb == max(
        p.usage.peak_memory_mb for p in parent.phases if p.usage and p.usage.peak_memory_mb
    )


def test_no_phase_sees_what_an_earlier_phase_wrote(
    request: pytest.FixtureRequest, tmp_path: Path, measured: tuple[TrustedEvaluator, Evaluation]
) -> None:
    evaluator, _ = measured
    two_seeds = make_evaluator(evaluator.backend, tmp_path, seeds=[0, 1])
    result = two_seeds.evaluate(two_seeds.lineage.head(), phase_cases.LEFTOVER_PROBE, label="probe")
    assert result.ok, result.failure_detail
    seen = {}
    for phase in result.phases:
        text = Path(phase.log_file or "").read_text()
        seen[phase.phase] = re.findall(r"^MARKERS (\w+) (\d*) (\S+)$", text, re.MULTILINE)
    assert seen["train-seed-0"] == [("train", "0", "none")], seen
    assert seen["train-seed-1"] == [("train", "1", "none")], seen
    kept = "marker-train{0}-out,marker-train{0}-out.,marker-train{0}-out.."
    assert seen["predict-seed-0"] == [("predict", "0", kept.format(0))], seen
    assert seen["predict-seed-1"] == [("predict", "1", kept.format(1))], seen


@pytest.mark.parametrize("case", phase_cases.HONEST, ids=[c.name for c in phase_cases.HONEST])
def test_honest_changes_stay_within_the_parents_phase_budgets(
    measured: tuple[TrustedEvaluator, Evaluation], case: phase_cases.Case
) -> None:
    evaluator, parent = measured
    result = evaluator.evaluate(parent.parent_commit, case.diff, label=case.name)
    assert result.ok, result.failure_detail
    assert budget_findings(result) == [], [f.message for f in result.integrity]


@pytest.mark.parametrize("case", phase_cases.HOSTILE, ids=[c.name for c in phase_cases.HOSTILE])
def test_work_moved_out_of_the_budgeted_phase_is_found(
    measured: tuple[TrustedEvaluator, Evaluation], case: phase_cases.Case
) -> None:
    evaluator, parent = measured
    result = evaluator.evaluate(parent.parent_commit, case.diff, label=case.name)
    assert result.ok, result.failure_detail
    found = budget_findings(result)
    assert f"{case.phase}:{case.quantity}" in found, (found, [p.usage for p in result.phases])
    hit = next(f for f in result.integrity if f.evidence.get("phase") == case.phase)
    assert {"phase", "quantity", "candidate", "parent", "ratio", "threshold"} <= set(hit.evidence)
    assert hit.verdict == "review"
    if case.name == "train-in-tests":
        train_log = Path(result.phases[1].log_file or "").read_text()
        assert "warm start" not in train_log  # the tests' cache did not reach the training


def test_without_cgroups_usage_is_unmeasured_and_oom_still_classified(tmp_path: Path) -> None:
    """bwrap with rlimits only (a host that delegates no cgroup): nothing is reported as 0."""
    if shutil.which("bwrap") is None:
        pytest.skip("bwrap is not installed")
    backend = BwrapBackend(SandboxConfig(memory_mb=512), image=IMAGE, run_id="test-phases")
    backend.v2_parent, backend.use_cgroups = None, False  # as on a host without delegated cgroups
    evaluator = make_evaluator(backend, tmp_path, seeds=[0])
    parent = evaluator.evaluate(evaluator.lineage.head(), "", label="parent")
    assert parent.ok and parent.accounting == "rlimit-only", parent.failure_detail
    for phase in own_phases(parent):
        usage = phase.usage
        assert usage and usage.cpu_s is None and usage.peak_memory_mb is None and usage.oom_kills is None
        assert usage.log_bytes and usage.disk_bytes and usage.wall_s is not None
    assert parent.resources.cpu_s is None and parent.resources.peak_memory_mb is None
    hog = evaluator.evaluate(parent.parent_commit, hostile.inject_into_train(hostile.MEMORY_HOG), label="hog")
    assert hog.failure == "out_of_memory", (hog.failure, hog.failure_detail)
    # Both sides unmeasured: no phase-budget finding floods the honest run.
    honest = evaluator.evaluate(parent.parent_commit, phase_cases.HONEST[0].diff, label="honest")
    assert honest.ok and budget_findings(honest) == []
