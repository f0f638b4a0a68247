"""The test gate under trees that try to replace the runner, its configuration or its imports.

Every hostile tree below also breaks the teacher, so the target's real tests fail; each trick would
turn that into a pass if the tree could reach the runner. Real Docker and real bwrap evaluations.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib.machinery
import json
import shutil
from pathlib import Path

import pytest

from core.contracts import Evaluation
from core.errors import ConfigError
from core.target import TargetSpec
from sandbox.base import ExecResult, SandboxConfig
from sandbox.bwrap_backend import BwrapBackend
from sandbox.evaluate import TrustedEvaluator
from sandbox.heldout import load_heldout
from sandbox.integrity import IntegrityConfig
from sandbox.lineage import Lineage
from sandbox.testgate import CANARY_NODE, IMPORT_NODE, TEST_CODE_NODE, TRUSTED_NODE, TestGate
from tests.adversarial.metamorph import sample
from tests.conftest import IMAGE, IN_CI, TARGET, file_diff, make_diff
from tests.sandbox.gate_liars import LIARS, TEST_TAMPERERS, VALUE_LIARS, WEAKENERS

# Code that, imported or run in place of the real thing, ends the process with "success".
FAKE_SUCCESS = 'import os\nprint("42 passed in 0.10s")\nos._exit(0)\n'
SHIM = """import os, sys
here = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") not in (here, os.path.dirname(here))]
sys.modules.pop("pytest", None)
import pytest as _real
globals().update({k: v for k, v in vars(_real).items() if not k.startswith("__")})
sys.modules["pytest"] = _real
if __name__ == "__main__":
    _real.main(sys.argv[1:])
    print("42 passed in 0.10s")
    os._exit(0)
"""
SKIP_ALL = """import pytest

def pytest_collection_modifyitems(items):
    for item in items:
        item.add_marker(pytest.mark.skip(reason="not today"))
"""
TARGET_INI = (TARGET / "pytest.ini").read_text()
WITHOUT_INI = file_diff("pytest.ini", TARGET_INI, None)  # so the next configuration file is read


def _new(path: str, text: str) -> str:
    return file_diff(path, None, text)


def _shadow(name: str, package: bool) -> str:
    """A top-level module (or package) named `name` that fakes success when imported."""
    return _new(f"{name}/__init__.py" if package else f"{name}.py", FAKE_SUCCESS)


ORIGINAL_DATA = (TARGET / "data.py").read_text()


def _broken_data(imported: str | None = None) -> str:
    """data.py with a wrong teacher (the tests fail), importing `imported` first if given (data.py
    is imported by the tests, so a shadow of that module would run)."""
    broken = ORIGINAL_DATA.replace("+ 0.3 * np.tanh", "+ 0.31 * np.tanh")
    if imported:
        broken = broken.replace("import numpy as np\n", f"import {imported}\nimport numpy as np\n", 1)
    return file_diff("data.py", ORIGINAL_DATA, broken)


# trick -> (the hostile files, a module data.py imports first)
HOSTILE: dict[str, tuple[str, str | None]] = {
    "pytest-module-shim": (_new("pytest.py", SHIM), None),
    "pytest-package-shim": (
        _new("pytest/__init__.py", "# the package\n") + _new("pytest/__main__.py", SHIM),
        None,
    ),
    "root-conftest-skips-all": (_new("conftest.py", SKIP_ALL), None),
    "pytest-ini-addopts-collect-only": (
        file_diff("pytest.ini", TARGET_INI, TARGET_INI.replace("addopts = ", "addopts = --co ")),
        None,
    ),
    "pytest-ini-deselects-the-failures": (
        file_diff("pytest.ini", TARGET_INI, TARGET_INI.replace("addopts = ", 'addopts = -k "not teacher" ')),
        None,
    ),
    "pyproject-addopts": (
        WITHOUT_INI + _new("pyproject.toml", '[tool.pytest.ini_options]\naddopts = "--co"\n'),
        None,
    ),
    "tox-ini-addopts": (WITHOUT_INI + _new("tox.ini", "[pytest]\naddopts = --co\n"), None),
    "setup-cfg-addopts": (WITHOUT_INI + _new("setup.cfg", "[tool:pytest]\naddopts = --co\n"), None),
    "sitecustomize-and-usercustomize": (
        _new("sitecustomize.py", FAKE_SUCCESS) + _new("usercustomize.py", FAKE_SUCCESS),
        None,
    ),
    "pth-file": (_new("zz-evil.pth", "import os; os._exit(0)\n"), None),
    "numpy-module": (_shadow("numpy", package=False), None),
    "json-module": (_shadow("json", package=False), "json"),
    "unittest-package": (_shadow("unittest", package=True), "unittest"),
    "colorsys-module": (_shadow("colorsys", package=False), "colorsys"),
}


def _evaluator(
    tmp_path: Path, backend_name: str, docker_client: object | None, integrity: IntegrityConfig | None = None
) -> TrustedEvaluator:
    spec = TargetSpec.load(TARGET)
    spec.budget.train_seconds = 8
    lineage = Lineage.create(tmp_path / "lineage", TARGET)
    heldout = load_heldout(spec.metric.heldout, seed=7, size=200)
    if backend_name == "bwrap":
        config = SandboxConfig(memory_mb=512, workspace_mb=32, tmp_mb=64, pids_limit=64)
        backend = BwrapBackend(config, image="unused", run_id="test-gate")
    else:
        from sandbox.docker_backend import DockerBackend

        backend = DockerBackend(SandboxConfig(image=IMAGE), IMAGE, run_id="test-gate")  # type: ignore[assignment]
    return TrustedEvaluator(
        spec, lineage, backend, heldout, seeds=[0], log_dir=tmp_path / "logs", integrity=integrity
    )


@pytest.fixture(params=["bwrap", "docker"])
def evaluator(request: pytest.FixtureRequest, tmp_path: Path) -> TrustedEvaluator:
    if request.param == "bwrap" and shutil.which("bwrap") is None:
        if IN_CI:
            pytest.fail("bwrap is not installed (CI=true: bwrap tests must run)")
        pytest.skip("bwrap is not installed")
    client = request.getfixturevalue("docker_client") if request.param == "docker" else None
    return _evaluator(tmp_path, request.param, client)


def test_the_parent_passes_the_gate_with_counts_from_its_report(evaluator: TrustedEvaluator) -> None:
    result = evaluator.evaluate(evaluator.lineage.head(), "", label="baseline")
    assert result.ok, result.failure_detail
    tests = result.tests
    assert tests is not None and tests.counts_from == "gate_report"
    assert (tests.passed, tests.failed, tests.errors, tests.not_passed) == (42, 0, 0, {})


def test_broken_teacher_fails_the_gate(evaluator: TrustedEvaluator) -> None:
    result = evaluator.evaluate(evaluator.lineage.head(), _broken_data(), label="broken")
    assert result.failure == "tests_failed"
    assert result.tests is not None and result.tests.failed >= 1
    assert any("test_teacher" in node for node in result.tests.not_passed)


@pytest.mark.parametrize("trick", sorted(HOSTILE))
def test_a_tree_cannot_replace_the_gate(evaluator: TrustedEvaluator, trick: str) -> None:
    files, imported = HOSTILE[trick]
    diff = files + _broken_data(imported)
    result = evaluator.evaluate(evaluator.lineage.head(), diff, label=trick)
    assert result.failure == "tests_failed", (result.failure, result.failure_detail)
    tests = result.tests
    assert tests is not None and tests.counts_from == "gate_report"
    # rsi.toml's `-x` stops at the first failure: at least one real failure, nothing skipped.
    assert tests.failed >= 1 and tests.passed >= 1 and tests.skipped == 0, tests.model_dump()
    assert any("test_teacher" in node for node in tests.not_passed)


def test_fake_exit_without_a_report_is_an_error(evaluator: TrustedEvaluator) -> None:
    """Candidate code the tests import ends the process with 0: no report, so not a pass."""
    diff = make_diff(
        TARGET, "data.py", "import numpy as np\n", "import os\nos._exit(0)\nimport numpy as np\n"
    )
    result = evaluator.evaluate(evaluator.lineage.head(), diff, label="exit-zero")
    assert result.failure == "tests_failed"
    assert result.tests is not None and result.tests.errors >= 1 and "<gate>" in result.tests.not_passed


LIES_BY_ID = {case.id: case for case in LIARS}
VARIANTS = {f"{v.case.id}:{v.recipe}": v.diff for case in LIARS for v in sample(case, count=1, seed=11)}


def assert_lie_caught(result: Evaluation) -> None:
    assert result.failure == "tests_failed", (result.failure, result.failure_detail)
    tests = result.tests
    assert tests is not None and not tests.ok and tests.counts_from == "gate_report"
    assert CANARY_NODE in tests.not_passed or "<gate>" in tests.not_passed, tests.model_dump()


@pytest.mark.parametrize("liar", sorted(LIES_BY_ID))
def test_code_under_test_cannot_make_the_reports_lie(evaluator: TrustedEvaluator, liar: str) -> None:
    """Code the tests import turns failures into passes from inside the gate's interpreter: the
    canary the gate hides among the tests is reported passed too, or the report loses its seal."""
    result = evaluator.evaluate(evaluator.lineage.head(), LIES_BY_ID[liar].diff, label=liar)
    assert_lie_caught(result)


@pytest.mark.bwrap
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_rewritten_liars_are_caught_like_their_originals(tmp_path: Path, variant: str) -> None:
    if shutil.which("bwrap") is None:
        pytest.skip("bwrap is not installed")
    evaluator = _evaluator(tmp_path, "bwrap", None)
    assert_lie_caught(evaluator.evaluate(evaluator.lineage.head(), VARIANTS[variant], label="variant"))


WEAKENED_BY_ID = {case.id: case for case in WEAKENERS}
WEAKENED_VARIANTS = {
    f"{v.case.id}:{v.recipe}": v.diff for case in WEAKENERS for v in sample(case, count=1, seed=11)
}


def assert_weakening_caught(result: Evaluation) -> None:
    assert result.failure == "tests_failed", (result.failure, result.failure_detail)
    tests = result.tests
    assert tests is not None and not tests.ok and tests.counts_from == "gate_report"
    assert TRUSTED_NODE in tests.not_passed, tests.model_dump()
    assert "can no longer be believed" in tests.not_passed[TRUSTED_NODE]


@pytest.mark.parametrize("weakener", sorted(WEAKENED_BY_ID))
def test_code_under_test_cannot_weaken_what_the_assertions_call(
    evaluator: TrustedEvaluator, weakener: str
) -> None:
    """Code the tests import rebinds, re-codes or plants a callable of numpy the assertions use: the
    canary still fails honestly, but the gate sees the trusted module changed under the tests."""
    result = evaluator.evaluate(evaluator.lineage.head(), WEAKENED_BY_ID[weakener].diff, label=weakener)
    assert_weakening_caught(result)


@pytest.mark.bwrap
@pytest.mark.parametrize("variant", sorted(WEAKENED_VARIANTS))
def test_rewritten_weakeners_are_caught_like_their_originals(tmp_path: Path, variant: str) -> None:
    if shutil.which("bwrap") is None:
        pytest.skip("bwrap is not installed")
    evaluator = _evaluator(tmp_path, "bwrap", None)
    result = evaluator.evaluate(evaluator.lineage.head(), WEAKENED_VARIANTS[variant], label="variant")
    assert_weakening_caught(result)


TAMPERED_BY_ID = {case.id: case for case in TEST_TAMPERERS}
TAMPERED_VARIANTS = {
    f"{v.case.id}:{v.recipe}": v for case in TEST_TAMPERERS for v in sample(case, count=1, seed=11)
}


def _bwrap_evaluator(tmp_path: Path) -> TrustedEvaluator:
    if shutil.which("bwrap") is None:
        if IN_CI:
            pytest.fail("bwrap is not installed (CI=true: bwrap tests must run)")
        pytest.skip("bwrap is not installed")
    return _evaluator(tmp_path, "bwrap", None)


def assert_test_module_change_caught(result: Evaluation, named: str | None) -> None:
    assert result.failure == "tests_failed", (result.failure, result.failure_detail)
    tests = result.tests
    assert tests is not None and not tests.ok and tests.counts_from == "gate_report"
    assert TEST_CODE_NODE in tests.not_passed, tests.model_dump()
    message = tests.not_passed[TEST_CODE_NODE]
    assert "can no longer be believed" in message and (named or "") in message, message


@pytest.mark.bwrap
@pytest.mark.parametrize("tamperer", sorted(TAMPERED_BY_ID))
def test_code_under_test_cannot_change_the_test_modules(tmp_path: Path, tamperer: str) -> None:
    """Code the tests import rebinds a test module's `np`/`pytest`/`math` (found through the call
    stack, a traceback, a generator's frame or sys.modules), re-codes a test, a helper or a fixture,
    or plants a builtin in it: the gate holds each protected test module to what its file defines.
    Every case but the fixture's passes the pre-gate runner with 42 tests; each is named in the error."""
    evaluator = _bwrap_evaluator(tmp_path)
    case = TAMPERED_BY_ID[tamperer]
    result = evaluator.evaluate(evaluator.lineage.head(), case.diff, label=tamperer)
    assert_test_module_change_caught(result, case.expected_detail)


@pytest.mark.bwrap
@pytest.mark.parametrize("variant", sorted(TAMPERED_VARIANTS))
def test_rewritten_test_module_changes_are_caught_like_their_originals(tmp_path: Path, variant: str) -> None:
    evaluator = _bwrap_evaluator(tmp_path)
    rewritten = TAMPERED_VARIANTS[variant]
    result = evaluator.evaluate(evaluator.lineage.head(), rewritten.diff, label="variant")
    assert_test_module_change_caught(result, rewritten.case.expected_detail)


# Test files that use what the gate's reading of a test module must allow: classes (with super()),
# fixtures (module, class, named), decorators, defaults, a guarded import, `global`, a local
# helper module, monkeypatching of the code under test, parametrized and generated tests.
HONEST_TESTS = {
    "tests/helpers.py": "import math\n\nSCALE = 2.0\n\n\ndef double(x, *, by=SCALE):\n    return x * by\n",
    "tests/conftest.py": (
        "import pytest\n\n\n@pytest.fixture(name='base')\ndef _base_fixture():\n    return 3\n"
    ),
    "tests/test_honest.py": """import functools
import os.path
import unittest

import numpy.testing as npt
import pytest
from helpers import double
from numpy import testing
from numpy.testing import assert_allclose

try:
    import not_installed_anywhere
except ImportError:
    not_installed_anywhere = None

TOLERANCE = 1e-9
COUNTER = 0


def traced(function):
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        return function(*args, **kwargs)

    return wrapper


@pytest.fixture
def offset(base, scale=1):
    return base * scale


class Base:
    def value(self):
        return 1


class TestInherits(Base):
    @pytest.fixture(autouse=True)
    def _setup(self):
        self.ready = True

    def value(self):
        return super().value() + 1

    def test_super(self):
        assert self.ready and self.value() == 2


class TestCaseStyle(unittest.TestCase):
    def test_equal(self):
        self.assertEqual(double(2), 4.0)


def test_counts(offset, step=1):
    global COUNTER
    COUNTER += step
    assert offset == 3 and COUNTER >= 1 and not_installed_anywhere is None


@traced
def test_decorated():
    assert_allclose(double(0.5), 1.0, atol=TOLERANCE)
    npt.assert_allclose(1.0, 1.0)
    testing.assert_equal(os.path.join("a", "b"), "a/b")


@pytest.mark.parametrize("x", [1, 2])
def test_parametrized(x, monkeypatch):
    import helpers

    monkeypatch.setattr(helpers, "SCALE", 3.0)
    assert double(x, by=helpers.SCALE) == 3.0 * x


def _make(n):
    def generated():
        assert n == n

    return generated


test_generated = _make(3)
""",
}


@pytest.mark.bwrap
def test_an_honest_tree_keeps_its_test_modules_as_written(tmp_path: Path) -> None:
    """What a test suite does to itself (fixtures, classes, decorators, `global`, monkeypatching the
    code under test, generated tests) is what its files define: the gate finds nothing changed."""
    if shutil.which("bwrap") is None:
        pytest.skip("bwrap is not installed")
    workspace = tmp_path / "ws"
    for relative, text in HONEST_TESTS.items():
        (workspace / relative).parent.mkdir(parents=True, exist_ok=True)
        (workspace / relative).write_text(text)
    gate = TestGate.from_command("python -m pytest -q tests").start()
    assert gate.key_path is not None
    backend = BwrapBackend(SandboxConfig(), image="", run_id="test-gate")
    with backend.open(workspace, None, "honest") as session:
        session.write_file(gate.key_path, gate.key)
        ran = session.exec(gate.command(backend.trusted_pythons()), timeout_s=120)
        result = gate.result(ran, session.read_file(gate.report_path))
    assert result.ok, (result.not_passed, ran.output)
    assert result.passed == 7 and TEST_CODE_NODE not in result.not_passed


def test_a_report_of_changed_test_modules_is_an_error() -> None:
    gate = TestGate.from_command("python -m pytest -q tests").start()
    changed = ["tests/test_model.py: np is no longer what `import numpy as np` gives"]
    body = {"exit_status": 0, "outcomes": {"tests/a.py::t": "passed"}, "canary": "failed"}
    ran = ExecResult(exit_code=0, output="", duration_s=1.0)
    result = gate.result(ran, sealed(gate.key, {**body, "tests_changed": changed}))
    assert not result.ok and result.errors == 1 and changed[0] in result.not_passed[TEST_CODE_NODE]
    assert gate.result(ran, sealed(gate.key, body)).ok  # a report without the field: nothing changed


VALUES_BY_ID = {case.id: case for case in VALUE_LIARS}
VALUE_VARIANTS = {
    f"{v.case.id}:{v.recipe}": v.diff for case in VALUE_LIARS for v in sample(case, count=1, seed=11)
}


VALUE_CHECK = IntegrityConfig(rerun_first_seed=False, controls=False, relabel=False)


def _require_bwrap() -> None:
    if shutil.which("bwrap") is None:
        if IN_CI:
            pytest.fail("bwrap is not installed (CI=true: bwrap tests must run)")
        pytest.skip("bwrap is not installed")


@pytest.fixture(params=["bwrap", "docker"])
def value_evaluator(request: pytest.FixtureRequest, tmp_path: Path) -> TrustedEvaluator:
    """Each backend (their images differ: Docker's has another pytest, whose classes attrs made), with
    the integrity checks on but for the ones that train again: the test-values check reads what the
    gate reported."""
    if request.param == "bwrap":
        _require_bwrap()
    client = request.getfixturevalue("docker_client") if request.param == "docker" else None
    return _evaluator(tmp_path, request.param, client, VALUE_CHECK)


def assert_value_lie_found(result: Evaluation) -> None:
    """The tests pass (the lie works on them) and the verdict carries the test-values finding."""
    tests = result.tests
    assert result.ok and tests is not None and tests.ok, (result.failure, result.failure_detail)
    assert tests.passed == 42 and tests.counts_from == "gate_report", tests.model_dump()
    # Named by where its code is in the tree, whatever module it claims.
    assert tests.value_faces and any(".py:" in t for t in tests.value_faces), tests.value_faces
    found = [f for f in result.integrity if f.rule_id == "integrity.test-values"]
    assert found and found[0].verdict == "review", [f.rule_id for f in result.integrity]
    assert "what the tests assert may not be what training uses" in found[0].message
    assert found[0].evidence["types"] == tests.value_faces
    assert any(c.check == "test-values" and c.status == "finding" for c in result.checks)


@pytest.mark.parametrize("liar", sorted(VALUES_BY_ID))
def test_values_that_lie_to_the_tests_go_to_a_human(value_evaluator: TrustedEvaluator, liar: str) -> None:
    """`backward` gives the tests the exact gradient and training a wrong one, told apart by the
    type of the value (an ndarray subclass answering np.isclose, a two-faced dict, a duck array, a
    float subclass, a class made by type() at call time and collected once dropped): every test
    passes, and the gate's watch over the classes alive while they ran names the type."""
    evaluator = value_evaluator
    assert_value_lie_found(evaluator.evaluate(evaluator.lineage.head(), VALUES_BY_ID[liar].diff, label=liar))


@pytest.mark.bwrap
@pytest.mark.parametrize("variant", sorted(VALUE_VARIANTS))
def test_rewritten_value_lies_are_found_like_their_originals(tmp_path: Path, variant: str) -> None:
    _require_bwrap()
    evaluator = _evaluator(tmp_path, "bwrap", None, VALUE_CHECK)
    assert_value_lie_found(
        evaluator.evaluate(evaluator.lineage.head(), VALUE_VARIANTS[variant], label="variant")
    )


def test_the_parent_has_no_test_values_finding(value_evaluator: TrustedEvaluator) -> None:
    evaluator = value_evaluator
    result = evaluator.evaluate(evaluator.lineage.head(), "", label="baseline")
    assert result.ok and result.tests is not None and result.tests.value_faces == []
    assert not [f for f in result.integrity if f.rule_id == "integrity.test-values"]
    assert any(c.check == "test-values" and c.status == "clean" for c in result.checks)


# Value types an honest tree uses, read by its tests: none changes how a value reads or compares
# with code of the tree.
HONEST_VALUES = {
    "values.py": """import collections
import dataclasses
import enum
import typing

Point = collections.namedtuple("Point", "x y")


class Pair(typing.NamedTuple):
    left: float
    right: float

    def total(self):
        return self.left + self.right


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


@dataclasses.dataclass
class Config:
    rate: float = 0.1
    steps: int = 10


@dataclasses.dataclass(order=True, frozen=True)
class Version:
    major: int
    minor: int


@dataclasses.dataclass
class Rows:
    items: list

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        return self.items[index]


class Dataset:
    def __init__(self, rows):
        self.rows = rows

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, index):
        return self.rows[index]


class Record(dict):
    __getattr__ = dict.__getitem__

    def describe(self):
        return ", ".join(sorted(self))


class Seed(int):
    pass
""",
    "tests/test_values.py": """import collections

import numpy as np
from values import Config, Dataset, Level, Pair, Point, Record, Rows, Seed, Version


def test_values_read_as_written():
    assert Point(1, 2) == (1, 2) and Pair(1.0, 2.0).total() == 3.0
    assert Level.HIGH > Level.LOW and Level.HIGH == 2
    assert Config() == Config(0.1, 10) and Version(1, 2) < Version(1, 3)
    data = Dataset([1.0, 2.0, 3.0])
    assert len(data) == 3 and np.asarray([data[i] for i in range(len(data))]).sum() == 6.0
    assert len(Rows([1, 2])) == 2 and Rows([1, 2])[1] == 2
    record = Record(a=1, b=2)
    assert record.a == 1 and record.describe() == "a, b" and Seed(3) + 1 == 4
    assert collections.Counter("aab")["a"] == 2 and np.ma.masked_array([1, 2]).sum() == 3
    assert np.asmatrix([[1, 2]]).shape == (1, 2)
""",
}


@pytest.mark.parametrize(
    "backend_name",
    [pytest.param("bwrap", marks=pytest.mark.bwrap), pytest.param("docker", marks=pytest.mark.docker)],
)
def test_honest_value_types_are_not_reported(
    request: pytest.FixtureRequest, tmp_path: Path, backend_name: str
) -> None:
    """A namedtuple, a typing.NamedTuple, an IntEnum, dataclasses compared with == and < (one with
    `__len__`/`__getitem__`), a Dataset class, a dict subclass reading attributes as items, an int
    subclass, numpy's own subclasses: the gate's watch reports none of them, nor the classes pytest
    and the libraries it loads make for themselves (Docker's image has another pytest, attrs-made)."""
    workspace = tmp_path / "ws"
    for relative, text in HONEST_VALUES.items():
        (workspace / relative).parent.mkdir(parents=True, exist_ok=True)
        (workspace / relative).write_text(text)
    gate = TestGate.from_command("python -m pytest -q tests").start()
    assert gate.key_path is not None
    if backend_name == "bwrap":
        _require_bwrap()
        backend = BwrapBackend(SandboxConfig(), image="", run_id="test-gate")
    else:
        from sandbox.docker_backend import DockerBackend

        request.getfixturevalue("docker_client")
        backend = DockerBackend(SandboxConfig(image=IMAGE), IMAGE, run_id="test-gate")  # type: ignore[assignment]
    with backend.open(workspace, None, "honest-values") as session:
        session.write_file(gate.key_path, gate.key)
        ran = session.exec(gate.command(backend.trusted_pythons()), timeout_s=120)
        result = gate.result(ran, session.read_file(gate.report_path))
    assert result.ok and result.passed == 1, (result.not_passed, ran.output)
    assert result.value_faces == [], result.value_faces


def test_a_report_of_value_faces_is_kept_and_older_reports_have_none() -> None:
    gate = TestGate.from_command("python -m pytest -q tests").start()
    body = {"exit_status": 0, "outcomes": {"tests/a.py::t": "passed"}, "canary": "failed"}
    ran = ExecResult(exit_code=0, output="", duration_s=1.0)
    faces = ["model.Update (model.py:25): a dict subclass overriding __getitem__"]
    result = gate.result(ran, sealed(gate.key, {**body, "value_faces": faces}))
    assert result.ok and result.value_faces == faces  # not a failure: an integrity finding
    older = gate.result(ran, sealed(gate.key, body))
    assert older.ok and older.value_faces == []


# -- mapping rsi.toml's test command onto the gate (no sandbox) --------------------------------------


@pytest.mark.parametrize(
    ("command", "args", "test_dir"),
    [
        ("python -m pytest -q -x tests", ["-q", "-x", "tests"], "tests"),
        (
            "pytest -k 'not slow' tests/unit tests/integration",
            ["-k", "not slow", "tests/unit", "tests/integration"],
            "tests",
        ),
        ("python3 -m pytest tests/test_data.py::test_teacher", ["tests/test_data.py::test_teacher"], "tests"),
        ("pytest -p no:randomly -q tests", ["-p", "no:randomly", "-q", "tests"], "tests"),
    ],
)
def test_pytest_commands_keep_their_selection(command: str, args: list[str], test_dir: str) -> None:
    gate = TestGate.from_command(command)
    assert (gate.pytest_args, gate.test_dir) == (args, test_dir)


@pytest.mark.parametrize(
    ("command", "reason"),
    [
        ("python -m pytest -q", "must name the test directory"),
        ("python -m pytest -q .", "must name the test directory"),
        ("python -m pytest ../elsewhere", "must name the test directory"),
        ("python -m pytest test_root.py", "from the target's root"),
        ("python -m pytest -p myplugin tests", "controls itself"),
        ("python -m pytest -c other.ini tests", "controls itself"),
        ("python -m pytest --rootdir=/ tests", "controls itself"),
    ],
)
def test_commands_the_gate_cannot_confine_are_refused(command: str, reason: str) -> None:
    with pytest.raises(ConfigError, match=reason):
        TestGate.from_command(command)


def test_other_commands_count_by_exit_code_only() -> None:
    gate = TestGate.from_command("make check").start()
    assert gate.command(["/usr/bin/python3"]) == "unset RSI_AUDIT_FD; make check" and gate.key_path is None
    passed = gate.result(ExecResult(exit_code=0, output="999 passed", duration_s=1.0), None)
    assert passed.ok and passed.counts_from == "exit_code" and passed.passed == 0
    failed = gate.result(ExecResult(exit_code=2, output="all good", duration_s=1.0), None)
    assert not failed.ok


def sealed(key: bytes, body: dict[str, object]) -> bytes:
    text = json.dumps(body)
    return json.dumps(
        {"body": text, "seal": hmac.new(key, text.encode(), hashlib.sha256).hexdigest()}
    ).encode()


def test_report_wins_over_printed_output() -> None:
    gate = TestGate.from_command("python -m pytest -q tests").start()
    outcomes = {"tests/a.py::t": "failed", "tests/a.py::u": "passed"}
    report = sealed(gate.key, {"exit_status": 1, "outcomes": outcomes, "canary": "failed"})
    result = gate.result(ExecResult(exit_code=0, output="2 passed", duration_s=1.0), report)
    assert (result.passed, result.failed, result.exit_code, result.ok) == (1, 1, 1, False)
    bad_outcome = {"exit_status": 0, "outcomes": {"x": "won"}, "canary": "failed"}
    for garbage in (None, b"", b"{", sealed(gate.key, bad_outcome)):
        assert not gate.result(ExecResult(exit_code=0, output="", duration_s=1.0), garbage).ok


def test_only_a_report_sealed_with_this_runs_key_and_a_failed_canary_is_believed() -> None:
    gate = TestGate.from_command("python -m pytest -q tests").start()
    honest = {"exit_status": 0, "outcomes": {"tests/a.py::t": "passed"}, "canary": "failed"}
    ran = ExecResult(exit_code=0, output="", duration_s=1.0)
    assert gate.result(ran, sealed(gate.key, honest)).ok
    other_run = TestGate.from_command("python -m pytest -q tests").start()
    forged = gate.result(ran, sealed(other_run.key, honest))
    assert not forged.ok and "seal" in forged.not_passed["<gate>"]
    unsealed = json.dumps({"body": json.dumps(honest), "seal": "0" * 64}).encode()
    assert not gate.result(ran, unsealed).ok
    for canary in ("passed", "skipped", "not run", "absent"):
        lied = gate.result(ran, sealed(gate.key, {**honest, "canary": canary}))
        assert not lied.ok and "must fail" in lied.not_passed[CANARY_NODE], canary
    # -x stopped the session at a real failure before the canary's turn: a failure, nothing more.
    stopped = {"exit_status": 1, "outcomes": {"tests/a.py::t": "failed"}, "canary": "not run"}
    result = gate.result(ran, sealed(gate.key, stopped))
    assert not result.ok and CANARY_NODE not in result.not_passed


MARKED_TESTS = {
    "tests/test_skipped_module.py": (
        "import pytest\n\npytestmark = pytest.mark.skip(reason='not here')\n\n\ndef test_a():\n    assert True\n"
    ),
    "tests/test_marked.py": (
        "import pytest\n\n\n@pytest.mark.xfail(strict=True)\ndef test_known_bug():\n    assert 1 == 2\n\n\n"
        "@pytest.mark.skipif(True, reason='never')\ndef test_never():\n    pass\n\n\n"
        "def test_plain():\n    assert True\n"
    ),
}


@pytest.mark.bwrap
@pytest.mark.parametrize("selection", ["-q -x tests", "-q tests -k 'plain or known'"])
def test_the_canary_never_inherits_a_skip_or_an_expected_failure(tmp_path: Path, selection: str) -> None:
    """Tests that skip or are expected to fail, beside one plain test: the canary borrows the plain
    one's name, so an honest tree's run is believed, with the target's own counts."""
    if shutil.which("bwrap") is None:
        pytest.skip("bwrap is not installed")
    workspace = tmp_path / "ws"
    for relative, text in MARKED_TESTS.items():
        (workspace / relative).parent.mkdir(parents=True, exist_ok=True)
        (workspace / relative).write_text(text)
    gate = TestGate.from_command(f"python -m pytest {selection}").start()
    assert gate.key_path is not None
    backend = BwrapBackend(SandboxConfig(), image="", run_id="test-gate")
    with backend.open(workspace, None, "marked") as session:
        session.write_file(gate.key_path, gate.key)
        ran = session.exec(gate.command(backend.trusted_pythons()), timeout_s=120)
        result = gate.result(ran, session.read_file(gate.report_path))
    assert result.ok, (result.not_passed, ran.output)
    assert result.passed == 1 and CANARY_NODE not in result.not_passed
    assert "1 failed" not in ran.output  # the canary's failure stays out of the printed summary


# A file the tree adds (or renames) so that a protected module's import name loads it instead:
# predict.py (protected by rsi.toml) and tests/conftest.py (the test directory), each shadowed by
# every kind of entry FileFinder prefers over a source module in its directory.
SUBSTITUTE = "def predict_file(*args, **kwargs):\n    return None\n\ndef validate_inputs(x):\n    return x\n"
SHADOW_KINDS = {
    "package": "{x}/__init__.py",
    "extension": "{x}" + importlib.machinery.EXTENSION_SUFFIXES[0],
    "abi3-extension": "{x}.abi3.so",
    "sourceless-package": "{x}/__init__.pyc",
}
SHADOW_PLACES = {"top": "predict", "nested": "tests/conftest"}
MEASURE = (TARGET / "scripts/measure.py").read_text()


def _shadowing_diff(kind: str, spelling: str, place: str) -> str:
    new = SHADOW_KINDS[kind].format(x=SHADOW_PLACES[place])
    if spelling == "add":
        return _new(new, SUBSTITUTE)
    return f"diff --git a/scripts/measure.py b/{new}\nsimilarity index 100%\nrename from scripts/measure.py\nrename to {new}\n"


SHADOWING = {
    f"{kind}:{spelling}:{place}": _shadowing_diff(kind, spelling, place)
    for kind in SHADOW_KINDS
    for spelling in ("add", "rename")
    for place in SHADOW_PLACES
}


@pytest.mark.bwrap
@pytest.mark.parametrize("case", sorted(SHADOWING))
def test_a_protected_module_loads_as_itself_or_the_gate_fails(tmp_path: Path, case: str) -> None:
    """The red-team hole: predict/__init__.py beside the protected predict.py made the tests import
    the substitute. Whatever kind of entry wins the name, and wherever, the run is an error that
    names the file taking the protected one's place."""
    evaluator = _bwrap_evaluator(tmp_path)
    result = evaluator.evaluate(evaluator.lineage.head(), SHADOWING[case], label=case.replace(":", "-"))
    assert result.failure == "tests_failed", (result.failure, result.failure_detail)
    tests = result.tests
    assert tests is not None and not tests.ok and IMPORT_NODE in tests.not_passed, tests.model_dump()
    kind, _, place = case.split(":")
    shadow = SHADOW_KINDS[kind].format(x=SHADOW_PLACES[place])
    assert (
        shadow in tests.not_passed[IMPORT_NODE]
        and f"{SHADOW_PLACES[place]}.py" in tests.not_passed[IMPORT_NODE]
    )


@pytest.mark.bwrap
def test_an_honest_new_module_or_package_keeps_the_gate_green(tmp_path: Path) -> None:
    evaluator = _bwrap_evaluator(tmp_path)
    diff = (
        _new("extras/__init__.py", "x = 1\n")
        + _new("predict_utils.py", "y = 2\n")
        + _new("lib/ops.py", "z = 3\n")
    )
    rename = "diff --git a/scripts/measure.py b/tools/measure.py\nsimilarity index 100%\nrename from scripts/measure.py\nrename to tools/measure.py\n"
    result = evaluator.evaluate(evaluator.lineage.head(), diff + rename, label="honest-modules")
    assert result.ok, result.failure_detail
    assert result.tests is not None and (result.tests.passed, result.tests.not_passed) == (42, {})


def test_a_report_of_shadowed_import_names_is_an_error() -> None:
    run = TestGate.from_command("python -m pytest -q tests", ["predict.py"]).start()
    body = {
        "exit_status": 0,
        "outcomes": {"t::a": "passed"},
        "canary": "failed",
        "shadowed": ["predict.py: x"],
    }
    result = run.result(ExecResult(exit_code=0, output="", duration_s=1.0), sealed(run.key, body))
    assert not result.ok and result.not_passed[IMPORT_NODE].startswith("error: the tree makes")


def test_the_gate_lists_the_protected_modules_of_the_tree() -> None:
    gate = TestGate.from_command("python -m pytest -q tests", ["rsi.toml", "tests/", "predict.py"])
    modules = gate.protected_modules(TARGET)
    assert "predict.py" in modules and "tests/conftest.py" in modules
    assert "model.py" not in modules and "rsi.toml" not in modules


ORIGINAL_MODEL = (TARGET / "model.py").read_text()


def _model_running(code: str) -> str:
    """model.py (imported by the tests during collection) running `code` first."""
    return file_diff("model.py", ORIGINAL_MODEL, code + ORIGINAL_MODEL)


@pytest.mark.bwrap
def test_a_directory_put_first_on_sys_path_does_not_answer_for_a_protected_name(tmp_path: Path) -> None:
    """The name is pinned to the protected file: a substitute earlier on the path is never imported
    (its predict_file returns None, so the tests of predict would fail if it were)."""
    evaluator = _bwrap_evaluator(tmp_path)
    code = "import os, sys\nsys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'alt'))\n"
    diff = _new("alt/predict.py", SUBSTITUTE) + _model_running(code)
    result = evaluator.evaluate(evaluator.lineage.head(), diff, label="earlier-on-path")
    assert result.tests is not None and (result.tests.passed, result.tests.not_passed) == (42, {})


@pytest.mark.bwrap
def test_a_protected_name_bound_in_sys_modules_to_another_module_is_an_error(tmp_path: Path) -> None:
    evaluator = _bwrap_evaluator(tmp_path)
    code = (
        "import sys, types\n_fake = types.ModuleType('predict')\n"
        "_fake.predict_file = _fake.validate_inputs = lambda *a, **k: None\nsys.modules['predict'] = _fake\n"
    )
    result = evaluator.evaluate(evaluator.lineage.head(), _model_running(code), label="sys-modules")
    assert result.failure == "tests_failed" and result.tests is not None
    assert "sys.modules['predict']" in result.tests.not_passed[IMPORT_NODE], result.tests.model_dump()
