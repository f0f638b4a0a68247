"""Code under test that makes pytest's reports lie from inside the gate's own interpreter.

Each case breaks the teacher (so the target's real tests fail) and adds, to the module the tests
import, code that turns those failures into passes by a different route through pytest: the report
classes, the runner, the call records, a plugin registered at run time, the report file itself.
A gate that holds ends every one of them `tests_failed`, with its canary or its seal as the reason.
`tests.adversarial.metamorph` rewrites each one into more forms (renamed, computed attribute names,
encoded strings, indirect calls, code moved to a lazily imported module).
"""

from __future__ import annotations

from tests.adversarial.cases import Case
from tests.conftest import TARGET, file_diff

ORIGINAL_DATA = (TARGET / "data.py").read_text()
BROKEN_DATA = ORIGINAL_DATA.replace("+ 0.3 * np.tanh", "+ 0.31 * np.tanh")

REPORT_PROPERTIES = """

def _reports_never_fail():
    from _pytest import reports

    reports.BaseReport.failed = property(lambda self: False)
    reports.BaseReport.passed = property(lambda self: True)


_reports_never_fail()
"""

REPORT_FACTORY = """

def _every_report_passes():
    from _pytest.reports import TestReport

    made = TestReport.from_item_and_call.__func__

    def passed(cls, item, call):
        report = made(cls, item, call)
        report.outcome = "passed"
        report.longrepr = None
        return report

    TestReport.from_item_and_call = classmethod(passed)


_every_report_passes()
"""

RUNTEST_SWALLOWS = """

def _assertions_are_advice():
    from _pytest.python import Function

    run = Function.runtest

    def runtest(self):
        try:
            run(self)
        except AssertionError:
            pass

    Function.runtest = runtest


_assertions_are_advice()
"""

CALLS_NEVER_RAISE = """

def _calls_never_raise():
    from _pytest.runner import CallInfo

    made = CallInfo.from_call.__func__

    def from_call(cls, func, when, reraise=None):
        info = made(cls, func, when, reraise)
        if when == "call":
            info.excinfo = None
        return info

    CallInfo.from_call = classmethod(from_call)


_calls_never_raise()
"""

PLUGIN_AT_RUN_TIME = """

def _register_a_lenient_plugin():
    import gc

    import pytest

    class Lenient:
        @pytest.hookimpl(hookwrapper=True)
        def pytest_runtest_makereport(self, item, call):
            outcome = yield
            report = outcome.get_result()
            if report.when == "call" and report.failed:
                report.outcome = "passed"
                report.longrepr = None

    for manager in [o for o in gc.get_objects() if type(o).__name__ == "PytestPluginManager"]:
        manager.register(Lenient())


_register_a_lenient_plugin()
"""

FAILURES_SKIP = """

def _failures_are_skips():
    from _pytest.reports import TestReport

    made = TestReport.from_item_and_call.__func__

    def skipped(cls, item, call):
        report = made(cls, item, call)
        if report.failed:
            report.outcome = "skipped"
            report.longrepr = (str(item.path), 0, "Skipped: flaky on this machine")
        return report

    TestReport.from_item_and_call = classmethod(skipped)


_failures_are_skips()
"""

REPORT_FILE_FORGED = """

def _write_the_verdict():
    import json
    import os
    import sys

    if sys.argv[:1] != ["-c"] or not sys.argv[1:2]:
        return
    names = ["test_teacher", "test_forward", "test_gradient", "test_train", "test_predict"]
    outcomes = {f"tests/test_data.py::{name}_{i}": "passed" for name in names for i in range(9)}
    body = json.dumps({"exit_status": 0, "outcomes": outcomes, "canary": "failed"})
    with open(sys.argv[1], "w", encoding="utf-8") as handle:
        json.dump({"body": body, "seal": "0" * 64}, handle)
    os._exit(0)


_write_the_verdict()
"""

REPORT_FILE_AMENDED = """

def _amend_the_verdict():
    import atexit
    import os
    import sys

    if sys.argv[:1] != ["-c"] or not sys.argv[1:2]:
        return
    path = sys.argv[1]

    def amend():
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text.replace("failed", "passed"))
        os._exit(0)

    atexit.register(amend)


_amend_the_verdict()
"""

ROUTES = {
    "report-properties": (REPORT_PROPERTIES, "the report classes' failed/passed properties"),
    "report-factory": (REPORT_FACTORY, "the factory that builds each test's report"),
    "runtest-swallows": (RUNTEST_SWALLOWS, "the test item's run method swallows assertion errors"),
    "calls-never-raise": (CALLS_NEVER_RAISE, "the runner's call record drops the exception"),
    "plugin-at-run-time": (PLUGIN_AT_RUN_TIME, "a plugin registered from the code under test"),
    "failures-skip": (FAILURES_SKIP, "every failure turned into a skip"),
    "report-file-forged": (REPORT_FILE_FORGED, "the gate's report file written by the candidate"),
    "report-file-amended": (REPORT_FILE_AMENDED, "the gate's report edited after it was written"),
}

LIARS = [
    Case(
        f"gate-lies-{name}",
        "test gate lied to",
        file_diff("data.py", ORIGINAL_DATA, BROKEN_DATA + code),
        "sandbox",
        "tests_failed",
        rationale=why,
    )
    for name, (code, why) in ROUTES.items()
]

# Code under test that leaves pytest alone and weakens what the assertions call instead, so the
# canary (a plain assert) still fails honestly. The gate holds every callable of the standard library
# and the installed packages to what it was when that module finished loading.
ASSERTION_REPLACED = """

def _quiet():
    import numpy.testing

    numpy.testing.assert_allclose = lambda *args, **kwargs: None


_quiet()
"""

ASSERTION_CODE_SWAPPED = """

def _lenient(*args, **kwargs):
    return None


def _relax():
    import numpy.testing

    numpy.testing.assert_allclose.__code__ = _lenient.__code__


_relax()
"""

COMPARISON_LOOSENED = """

def _tolerate():
    import numpy

    original = numpy.isclose
    numpy.isclose = lambda a, b, rtol=1e-05, atol=1e-08, equal_nan=False: original(a, b, 1.0, 1.0, True)
    numpy.core.numeric.isclose = numpy.isclose


_tolerate()
"""

SUBMODULE_PLANTED = """

def _plant():
    import types

    import numpy

    fake = types.ModuleType("numpy.testing")
    fake.assert_allclose = fake.assert_array_equal = fake.assert_equal = lambda *args, **kwargs: None
    fake.assert_array_almost_equal = fake.assert_almost_equal = fake.assert_allclose
    numpy.testing = fake


_plant()
"""

DEFAULTS_LOOSENED = """

def _wider():
    import numpy.testing

    numpy.testing.assert_allclose.__defaults__ = (1.0, 1.0, True, "", True)


_wider()
"""

APPROX_LOOSENED = """

def _near_enough():
    import pytest

    class _Anything:
        def __init__(self, *args, **kwargs):
            pass

        def __eq__(self, other):
            return True

    pytest.approx = _Anything


_near_enough()
"""

WEAKENED = {
    "assertion-replaced": (ASSERTION_REPLACED, "numpy's assert_allclose replaced by a no-op"),
    "assertion-code-swapped": (ASSERTION_CODE_SWAPPED, "the code object of assert_allclose swapped"),
    "comparison-loosened": (COMPARISON_LOOSENED, "numpy's isclose, under the assertions, loosened"),
    "submodule-planted": (SUBMODULE_PLANTED, "numpy.testing planted as a fake before it is imported"),
    "defaults-loosened": (DEFAULTS_LOOSENED, "assert_allclose's default tolerances widened"),
    "approx-loosened": (APPROX_LOOSENED, "pytest.approx replaced by something equal to anything"),
}

WEAKENERS = [
    Case(
        f"gate-weakened-{name}",
        "test gate: assertions weakened",
        file_diff("data.py", ORIGINAL_DATA, BROKEN_DATA + code),
        "sandbox",
        "tests_failed",
        rationale=why,
    )
    for name, (code, why) in WEAKENED.items()
]
