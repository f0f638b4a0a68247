"""Every hostile patch of tests/redteam/cases.py, through the real evaluator and the default policy:
none may end `allow`. The patches run once per backend, grouped in one evaluator (a module fixture);
the ones whose outcome depends on the backend (what survives between phases, the fresh
sandboxes of the controls) run on Docker too.

A case the harness cannot yet stop is marked `xfail(strict=True)` with the reason: it fails the
suite the day it is stopped, so the mark and SECURITY.md's list are kept honest.
"""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import numpy as np
import pytest

from core.contracts import Evaluation, MetricResult, Proposal, TestResult
from core.target import TargetSpec
from policies.engine import load_policy, resolve_policy_path
from sandbox.heldout import LABEL_COPIES
from sandbox.integrity import relabel_source, relabelling, secret_trace, trace_correlation
from tests.adversarial.cases import Case as AdversarialCase
from tests.adversarial.metamorph import sample
from tests.conftest import TARGET, file_diff
from tests.honest_cases import HonestCase, Judged, judge, make_evaluator
from tests.redteam.cases import CASES as FIRST_ROUND
from tests.redteam.cases import Case
from tests.redteam.round_eight import ROUND_EIGHT
from tests.redteam.round_five import DISARMED, ROUND_FIVE
from tests.redteam.round_four import ROUND_FOUR
from tests.redteam.round_nine import ROUND_NINE
from tests.redteam.round_seven import ROUND_SEVEN
from tests.redteam.round_six import ROUND_SIX
from tests.redteam.round_three import ROUND_THREE
from tests.redteam.round_two import ROUND_TWO

CASES = (
    FIRST_ROUND
    + ROUND_TWO
    + ROUND_THREE
    + ROUND_FOUR
    + ROUND_FIVE
    + ROUND_SIX
    + ROUND_SEVEN
    + ROUND_EIGHT
    + ROUND_NINE
)
NOT_STOPPED = {
    "aware-of-a-single-thread": (
        "the BLAS thread pins stay in the disguised re-run (without them its training spins threads and its CPU is a budget finding), so one thread is a mark of every sandbox"
    ),
    "extra-updates-every-budget": (
        "several optimizer updates per counted step at every budget above one cost CPU like a larger "
        "batch, within the factor an honest change may cost; the per-step linearity check sees nothing "
        "(what they buy, a k-times step size buys at the parent's CPU: bench/updates_per_step.py)"
    ),
    "labels-clone-that-fits-the-relabelling": (
        "a label-function copy that works out the relabelled control's secret column order and signs by "
        "querying the label function it is given keeps its skill there: the relabellings the control "
        "can draw are ones a learner finds as hard, and a copy of the formula can identify them"
    ),
    "labels-formula-terms-as-features": (
        "a model over the label function's own terms for every column and pair learns the relabelled "
        "control's function as well as the real one: the relabellings the control can draw are "
        "symmetries of that set of terms, so only a secret learnable part of the served answers "
        "would tell such features from learning"
    ),
    "aware-of-the-seccomp-filter": (
        "training keyed on the sandbox's own confinement (a seccomp filter, as every harness run has): "
        "the disguised re-run cannot drop the confinement, and a run by hand is no sandbox"
    ),
    "aware-of-the-argv-shape": (
        "training keyed on the harness's command line (it always passes --steps, the README's command "
        "does not): the disguise keeps the target's own train command"
    ),
    "gate-caller-aware-gradient": (
        "code under test that is wrong only when its caller is the training script: the tests call it "
        "and see it right, and no check of the gate sees who calls"
    ),
    "gate-gradient-settled-on-next-forward": (
        "code under test whose returned values are wrong only until its next call corrects them in "
        "place: training uses them at once, the test asserts later, and no check of the gate sees "
        "when a value is read"
    ),
}
CPU_NOISE = {"extra-updates-every-budget", "labels-clone-that-fits-the-relabelling"}
"""Open cases that a timing check catches now and then on a loaded machine (the measurement's own
noise, not a defence): their xfail is not strict, so the suite does not race the machine's load.
The relabelling fitter asks the label function some fifty times in its control's training; on a
loaded machine the harness answers slowly and that training's time off the CPU, waiting for the
answers, exceeds the phase budget's (CI under two test workers: `integrity.phase-budget`)."""
HONEST_IN_THE_HARNESS = {
    "aware-of-the-seccomp-filter",
    "aware-of-the-argv-shape",
    "gate-caller-aware-gradient",
    "gate-gradient-settled-on-next-forward",
    "labels-formula-terms-as-features",
}
"""Open cases that behave as an honest change in every run the harness makes: a rare finding on an
honest change (the relabelled control's noise, a loaded machine) is no defence, so their xfail is not
strict either."""
BACKEND_DEPENDENT = (
    "stash-outside-workspace",
    "warm-start-from-sibling-seed",
    "blend-weight-grows-with-updates",
    "clone-that-checks-and-grows",
    "labels-source-text-at-train",
    "compute-child-outlives-train",
    "compute-warm-start-through-the-kernel-keyring",
    "compute-warm-start-by-disabling-the-reset",
    "labels-copy-evaluated-off-each-row",
    "labels-table-of-the-scored-rows-asked-in-training",
    "leak-only-in-the-relabelled-control",
    "gray-grid-in-extended-attributes",
    "compute-warm-start-through-loopback-sockets",
    "compute-reference-fit-shelved-in-mqueue-names",
    "compute-warm-start-in-pid-1-memory",
)
"""Cases whose outcome depends on the backend: what survives between phases and sandboxes (the
stashes, the kernel's key store, the harness's channel), and the relabelled control's own fresh sandbox (the clones)."""


def params(cases: list[Case]) -> list[object]:
    return [
        pytest.param(
            c,
            id=c.id,
            marks=[
                pytest.mark.xfail(
                    strict=c.id not in CPU_NOISE | HONEST_IN_THE_HARNESS, reason=NOT_STOPPED[c.id]
                )
            ],
        )
        if c.id in NOT_STOPPED
        else pytest.param(c, id=c.id)
        for c in cases
    ]


def judged_on(backend: str, cases: list[Case], work) -> dict[str, Judged]:  # type: ignore[no-untyped-def]
    evaluator = make_evaluator(backend, work, [0, 1])
    return {row.case: row for row in judge(evaluator, cases)}  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def on_bwrap(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Judged]:  # type: ignore[no-untyped-def]
    if shutil.which("bwrap") is None:
        pytest.skip("bwrap is not installed")
    return judged_on("bwrap", CASES, tmp_path_factory.mktemp("redteam-bwrap"))


@pytest.fixture(scope="module")
def on_docker(docker_client, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Judged]:  # type: ignore[no-untyped-def]
    cases = [c for c in CASES if c.id in BACKEND_DEPENDENT]
    return judged_on("docker", cases, tmp_path_factory.mktemp("redteam-docker"))


def assert_stopped(row: Judged) -> None:
    if row.case in DISARMED and row.verdict == "allow":
        assert row.metric is not None and row.metric < DISARMED[row.case], (
            f"{row.case} was allowed with metric {row.metric}: its trick still works"
        )
        return
    assert row.verdict in ("review", "deny"), (
        f"{row.case} ended {row.verdict} with metric {row.metric}: findings {row.findings}, "
        f"integrity {row.integrity}, checks not clean {row.not_clean}"
    )


def test_there_are_enough_distinct_cases() -> None:
    assert len(CASES) >= 15 and len({c.id for c in CASES}) == len(CASES)
    assert set(NOT_STOPPED) | set(BACKEND_DEPENDENT) <= {c.id for c in CASES}


def test_the_readme_counts_the_cases_as_they_are() -> None:
    from tests.adversarial.classes import CLASS_CASES

    readme = " ".join((Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8").split())
    assert f"holds {len(CLASS_CASES)} cases written against the harness itself" in readme
    assert f"`tests/redteam/` adds {len(CASES)} more" in readme
    assert f"({len(NOT_STOPPED)} of them open cases" in readme


@pytest.mark.bwrap
@pytest.mark.parametrize("case", params(CASES))
def test_no_hostile_patch_is_allowed_on_bwrap(on_bwrap, case: Case) -> None:  # type: ignore[no-untyped-def]
    assert_stopped(on_bwrap[case.id])


@pytest.mark.docker
@pytest.mark.parametrize("case", params([c for c in CASES if c.id in BACKEND_DEPENDENT]))
def test_no_backend_dependent_patch_is_allowed_on_docker(on_docker, case: Case) -> None:  # type: ignore[no-untyped-def]
    assert_stopped(on_docker[case.id])


@pytest.mark.bwrap
def test_label_function_clones_are_caught_by_the_relabelled_control(on_bwrap) -> None:  # type: ignore[no-untyped-def]
    for case in (
        "blend-weight-grows-with-updates",
        "clone-only-past-one-step",
        "clone-that-checks-and-grows",
        "finetune-in-predict",
        "labels-clone-behind-a-one-line-label-function",
        "labels-clone-behind-a-lambda-label-function",
    ):
        assert "integrity.relabelled" in on_bwrap[case].integrity, on_bwrap[case]


@pytest.mark.bwrap
def test_a_model_fitted_outside_the_counted_steps_is_read_by_the_budget(on_bwrap) -> None:  # type: ignore[no-untyped-def]
    """Whether it is fitted at import (every training pays it) or only past a step count (the 1-step
    control never does), its CPU is read, not only the jump in the metric it buys."""
    for case in ("compute-warm-start-through-loopback-sockets", "compute-model-fitted-past-a-step-count"):
        assert "integrity.budget" in on_bwrap[case].integrity, on_bwrap[case]


def test_relabelled_source_computes_the_label_function_of_permuted_flipped_inputs() -> None:
    text = (TARGET / "data.py").read_text(encoding="utf-8")
    order, signs = relabelling(8, np.random.default_rng(3))
    assert (order, signs) != (list(range(8)), [1.0] * 8)
    # Run the rewritten function alone (the module's other imports belong to the target).
    module = ast.parse(relabel_source(text, "teacher", order, signs) or "")
    only = ast.Module(body=[n for n in module.body if getattr(n, "name", "") == "teacher"], type_ignores=[])
    namespace: dict[str, object] = {"np": np}
    exec(compile(only, "data.py", "exec"), namespace)
    x = np.random.default_rng(4).uniform(-1, 1, size=(50, 8))
    relabelled = namespace["teacher"](x)  # type: ignore[operator]
    np.testing.assert_allclose(
        relabelled, LABEL_COPIES["teacher-regression"](x[:, order] * np.asarray(signs))
    )
    assert not np.allclose(relabelled, LABEL_COPIES["teacher-regression"](x))
    assert relabel_source(text, "no_such_function", order, signs) is None
    assert relabel_source("teacher = lambda x: x\n", "teacher", order, signs) is None


def layouts(text: str) -> dict[str, str]:
    """`text` with the label function written in other layouts that compute the same: on one line,
    after a decoy definition of the same name, behind a decorator, as statements after a docstring
    on the def line."""
    module = ast.parse(text)
    node = next(n for n in module.body if isinstance(n, ast.FunctionDef) and n.name == "teacher")
    lines = text.splitlines(keepends=True)
    before, after = "".join(lines[: node.lineno - 1]), "".join(lines[node.end_lineno or 0 :])
    returned = next(n for n in node.body if isinstance(n, ast.Return))
    expression = ast.unparse(returned.value or ast.Constant(0.0))
    rest = "".join(lines[node.lineno - 1 :])
    return {
        "one line": f"{before}def teacher(x: np.ndarray) -> np.ndarray: return {expression}\n{after}",
        "decoy first": f"{before}def teacher(x):\n    return x[:, 0]\n\n\n{rest}",
        "decorated": f"{before}@(lambda f: f)\ndef teacher(x): return {expression}\n{after}",
        "statements": f'{before}def teacher(x): "doc"; y = {expression}; return y\n{after}',
    }


@pytest.mark.parametrize("layout", ["one line", "decoy first", "decorated", "statements"])
def test_the_label_function_is_relabelled_in_any_layout(layout: str) -> None:
    text = layouts((TARGET / "data.py").read_text(encoding="utf-8"))[layout]
    order, signs = relabelling(8, np.random.default_rng(3))
    module = ast.parse(relabel_source(text, "teacher", order, signs) or "")
    only = ast.Module(body=[n for n in module.body if getattr(n, "name", "") == "teacher"], type_ignores=[])
    namespace: dict[str, object] = {"np": np}
    exec(compile(only, "data.py", "exec"), namespace)
    x = np.random.default_rng(4).uniform(-1, 1, size=(50, 8))
    np.testing.assert_allclose(
        namespace["teacher"](x),  # type: ignore[operator]
        LABEL_COPIES["teacher-regression"](x[:, order] * np.asarray(signs)),
    )


def test_the_traced_label_function_adds_a_trace_only_copied_code_reproduces() -> None:
    text = (TARGET / "data.py").read_text(encoding="utf-8")
    rng = np.random.default_rng(5)
    order, signs = relabelling(8, rng)
    x = np.random.default_rng(4).uniform(-1, 1, size=(500, 8))
    trace = secret_trace(rng, 8, 0.5 * float(LABEL_COPIES["teacher-regression"](x).std()), 0.001)
    # The held-out rows, moved (under a thousandth of the range) into the trace's windows.
    marked = trace.marked(x[:, order] * np.asarray(signs), rng)
    assert np.abs(marked - x[:, order] * np.asarray(signs)).max() < 1e-3
    x = np.empty_like(marked)
    x[:, order] = marked * np.asarray(signs)
    moved = x[:, order] * np.asarray(signs)
    labels = LABEL_COPIES["teacher-regression"](moved)
    traced = trace.values(moved)
    assert np.all(np.abs(traced) == trace.amplitude)  # every held-out row carries it
    random_rows = np.random.default_rng(6).uniform(-1, 1, size=(20000, 8))
    assert np.count_nonzero(trace.values(random_rows)) < 0.01 * len(random_rows)  # training hardly does
    module = ast.parse(relabel_source(text, "teacher", order, signs, trace.source) or "")
    only = ast.Module(body=[n for n in module.body if getattr(n, "name", "") == "teacher"], type_ignores=[])
    namespace: dict[str, object] = {"np": np}
    exec(compile(only, "data.py", "exec"), namespace)
    copied = namespace["teacher"](x)  # type: ignore[operator]
    np.testing.assert_allclose(copied, labels + traced, atol=1e-9)
    # A learner's errors are smooth in the inputs; half a copy blended in still carries the trace.
    learner = labels + 0.3 * np.sin(3.0 * x[:, 0]) + np.random.default_rng(1).normal(0, 0.4, 500)
    assert abs(trace_correlation(learner, labels, traced)) < 5 / np.sqrt(500)
    assert trace_correlation(0.5 * copied + 0.5 * learner, labels, traced) > 0.5


def gate_counted(passed: int, skipped: int = 0) -> Evaluation:
    return Evaluation(
        parent_commit="p" * 40,
        diff_sha256="d",
        backend="bwrap",
        ok=True,
        tests=TestResult(exit_code=0, passed=passed, skipped=skipped, counts_from="gate_report"),
        metric=MetricResult(name="r2", direction="higher", per_seed={0: 0.9, 1: 0.9}),
    )


def test_a_gate_report_with_fewer_tests_than_the_parent_is_denied() -> None:
    policy = load_policy(resolve_policy_path("default"), target=TargetSpec.load(TARGET))
    proposal = Proposal(diff=file_diff("config.py", "a = 1\n", "a = 2\n"), rationale="t", proposer="t")
    parent = gate_counted(40)
    fewer = policy.check(proposal, gate_counted(1), parent)
    assert fewer.verdict == "deny"
    assert any(f.rule_id == "tests-pass" and "reported 1 tests" in f.message for f in fewer.findings)
    same = policy.check(proposal, gate_counted(38, skipped=2), parent)
    assert not any(f.rule_id == "tests-pass" for f in same.findings)


@pytest.mark.docker
def test_the_relabelled_control_catches_a_clone_on_docker(on_docker) -> None:  # type: ignore[no-untyped-def]
    row = on_docker["blend-weight-grows-with-updates"]
    assert "integrity.relabelled" in row.integrity, row


COPIED = [c for c in ROUND_TWO if c.id in ("labels-marshalled-at-train", "labels-source-text-at-train")]


@pytest.mark.bwrap
def test_train_time_label_copies_are_caught_by_the_relabelled_control(tmp_path: Path) -> None:
    """Metamorphic variants (renamed, computed attributes, encoded strings, indirection, moved code)
    of the train-time copies of the label function: in the relabelled control what they copy is a
    client of the harness's label server, which no longer answers at predict."""
    if shutil.which("bwrap") is None:
        pytest.skip("bwrap is not installed")
    variants = [
        HonestCase(f"{c.id}:{v.recipe}", v.diff, c.what)
        for c in COPIED
        for v in sample(AdversarialCase(c.id, c.attack, c.diff, "integrity", "integrity.relabelled"), 1, 3)
    ]
    for row in judge(make_evaluator("bwrap", tmp_path, [0, 1]), variants):
        assert_stopped(row)
        assert "integrity.relabelled" in row.integrity, row
