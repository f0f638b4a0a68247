"""The test gate: the harness, not the candidate's tree, decides how the target's tests run and
what their outcome is.

A pytest test command from rsi.toml (`python -m pytest ARGS` or `pytest ARGS`) keeps ARGS as the
selection and is run by the harness's own bootstrap (below, passed inline with `-c`, so there is
no file in the sandbox the candidate could replace or pre-empt):

- the sandbox's own interpreter by absolute path (the backend names it: the image's Python, or
  the environment bwrap binds read-only), isolated with `-I` (no PYTHON* variables, no user site,
  no current directory or script directory on sys.path) and `-B` (no bytecode written into the
  tree): a `pytest.py`, `sitecustomize.py`, `usercustomize.py` or `.pth` file in the tree is never
  imported at startup;
- the candidate's root appended to the *end* of sys.path, and an import finder placed before the
  path finder that resolves every top-level name the interpreter's own paths provide (the standard
  library, numpy, pytest…) from those paths only — even after a conftest puts the tree first;
- pytest configured by the harness: an empty ini of its own (`-c`), `--rootdir` at the tree,
  `--confcutdir` at the test directory (so a conftest.py outside it is never loaded), no cache
  provider, no plugin autoloading, no PYTEST_* variables: the tree's pytest.ini, tox.ini,
  setup.cfg and pyproject.toml are never read;
- the outcome per node id is written by the bootstrap's own plugin to a report file; the counts
  and the verdict come from that report and the exit status, never from the printed output.

A test command that is not pytest runs as written; its result is its exit code alone, and the
TestResult says so (`counts_from="exit_code"`).

What this cannot stop: code of the candidate that the tests import runs in the same interpreter
as the bootstrap and could tamper with pytest from inside; the policy's code rules and a human
review are the defence there (see SECURITY.md).

    gate = TestGate.from_command("python -m pytest -q -x tests")
    phase = session.exec(gate.command(backend.trusted_pythons()), timeout_s=120)
    tests = gate.result(phase, session.read_file(gate.report_path))
"""

from __future__ import annotations

import json
import posixpath
import secrets
import shlex
from collections.abc import Sequence

from core.contracts import TestResult
from core.errors import ConfigError
from sandbox.base import WORKDIR, ExecResult, tail

PYTEST_LAUNCHERS = (("python", "-m", "pytest"), ("python3", "-m", "pytest"), ("pytest",), ("py.test",))
GATE_OWNED_OPTIONS = (
    "-c",
    "--config-file",
    "--rootdir",
    "--confcutdir",
    "--noconftest",
    "-p",
    "-o",
    "--override-ini",
    "--import-mode",
    "--pyargs",
)
"""pytest options only the gate sets; a test command that uses them is refused."""
VALUE_OPTIONS = ("-k", "-m", "-W", "-r", "--tb", "--maxfail", "--durations", "--deselect", "--ignore")
"""Selection options that take a separate value (so that value is not a test path)."""
OUTCOMES = ("passed", "failed", "error", "skipped", "xfailed", "xpassed")
MAX_NOT_PASSED = 200
"""Node ids kept in TestResult.not_passed (the counts stay exact); bounds what a record carries."""

BOOTSTRAP = r"""
import importlib.machinery, json, os, sys, tempfile
report_path, root, confcutdir, *selection = sys.argv[1:]
for name in [n for n in os.environ if n.startswith("PYTEST_")]:
    del os.environ[name]
os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
trusted = list(sys.path)

class TrustedFirst:
    # A top-level name the interpreter's own paths provide always comes from there.
    @staticmethod
    def find_spec(name, path=None, target=None):
        if path is not None or "." in name:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, trusted)
        return spec if spec is not None and spec.loader is not None else None

    @staticmethod
    def invalidate_caches():
        pass

finders = sys.meta_path
finders.insert(finders.index(importlib.machinery.PathFinder), TrustedFirst)
import pytest
sys.path.append(root)

class GateReport:
    def __init__(self):
        self.outcomes = {}

    def pytest_collectreport(self, report):
        if report.failed:
            self.outcomes[report.nodeid or "<collection>"] = "error"

    def pytest_runtest_logreport(self, report):
        expected_failure = hasattr(report, "wasxfail")
        if report.failed:
            outcome = "failed" if report.when == "call" else "error"
        elif report.skipped:
            outcome = "xfailed" if expected_failure else "skipped"
        elif report.when == "call":
            outcome = "xpassed" if expected_failure else "passed"
        else:
            return
        if self.outcomes.get(report.nodeid, "passed") == "passed" or outcome == "error":
            self.outcomes[report.nodeid] = outcome

    def pytest_sessionfinish(self, session, exitstatus):
        with open(report_path, "w", encoding="utf-8") as handle:
            json.dump({"exit_status": int(exitstatus), "outcomes": self.outcomes}, handle)

ini = os.path.join(tempfile.mkdtemp(prefix="rsi-gate-"), "pytest.ini")
with open(ini, "w", encoding="utf-8") as handle:
    handle.write("[pytest]\n")
options = ["-c", ini, "--rootdir", root, "--confcutdir", confcutdir, "-p", "no:cacheprovider"]
sys.exit(int(pytest.main([*selection, *options], plugins=[GateReport()])))
"""


class TestGate:
    """How the harness runs one target's test command, and how it reads the outcome."""

    __test__ = False  # not a pytest test class

    def __init__(self, test_command: str, pytest_args: list[str] | None, test_dir: str | None) -> None:
        self.test_command = test_command
        self.pytest_args = pytest_args
        """The selection of a pytest command (None: not a pytest command, run as written)."""
        self.test_dir = test_dir
        """The directory, relative to the tree, whose conftest files (and only those) are loaded."""
        self.report_path = f"/tmp/.rsi-gate-{secrets.token_hex(8)}.json"

    @classmethod
    def from_command(cls, test_command: str) -> TestGate:
        """Map rsi.toml's test command onto the gate; raises ConfigError for an unusable one."""
        try:
            words = shlex.split(test_command)
        except ValueError as exc:
            raise ConfigError(
                f"rsi.toml [commands].test {test_command!r} is not a valid command line: {exc}."
            ) from None
        for launcher in PYTEST_LAUNCHERS:
            if tuple(words[: len(launcher)]) == launcher:
                args = words[len(launcher) :]
                return cls(test_command, args, _test_dir(test_command, args))
        return cls(test_command, None, None)

    def command(self, pythons: Sequence[str]) -> str:
        """The shell command the sandbox runs: the bootstrap under the first existing interpreter."""
        if self.pytest_args is None:
            return self.test_command
        root = WORKDIR
        confcutdir = posixpath.normpath(posixpath.join(root, self.test_dir or "."))
        argv = [self.report_path, root, confcutdir, *self.pytest_args]
        choices = " ".join(shlex.quote(p) for p in pythons)
        return (
            f'for rsi_python in {choices}; do [ -x "$rsi_python" ] && break; done; '
            f'[ -x "$rsi_python" ] || {{ echo "test gate: no Python at {choices}" >&2; exit 127; }}; '
            f'exec "$rsi_python" -I -B -c {shlex.quote(BOOTSTRAP)} {shlex.join(argv)}'
        )

    def result(self, executed: ExecResult, report: bytes | None) -> TestResult:
        """The tests' outcome: from the gate's report (pytest) or the exit code alone (other commands)."""
        base = TestResult(
            exit_code=executed.exit_code,
            duration_s=round(executed.duration_s, 3),
            output_tail=tail(executed.output),
        )
        if self.pytest_args is None:
            base.counts_from = "exit_code"
            return base
        base.counts_from = "gate_report"
        parsed = _parse_report(report)
        if parsed is None:
            # No report: pytest never finished (killed, timed out, or its process was taken over).
            base.errors = max(1, base.errors)
            base.not_passed = {"<gate>": "error: the test gate wrote no readable report"}
            if base.exit_code == 0:
                base.exit_code = 1
            return base
        exit_status, outcomes = parsed
        counts = {kind: sum(1 for o in outcomes.values() if o == kind) for kind in OUTCOMES}
        base.passed, base.failed = counts["passed"], counts["failed"]
        base.errors, base.skipped = counts["error"], counts["skipped"]
        not_passed = [(node, outcome) for node, outcome in outcomes.items() if outcome != "passed"]
        base.not_passed = dict(not_passed[:MAX_NOT_PASSED])
        if len(not_passed) > MAX_NOT_PASSED:
            base.not_passed["<more>"] = f"{len(not_passed) - MAX_NOT_PASSED} more not shown"
        if base.exit_code == 0 and exit_status != 0:
            base.exit_code = exit_status  # a failure either side reports is a failure
        return base


def _test_dir(test_command: str, args: list[str]) -> str:
    """The one directory the selection's paths share: the protected test directory."""
    paths: list[str] = []
    skip_next = False
    for index, word in enumerate(args):
        if skip_next:
            skip_next = False
            continue
        if word == "-p" and args[index + 1 : index + 2] and args[index + 1].startswith("no:"):
            skip_next = True  # disabling a plugin is always safe
            continue
        if word.startswith("-pno:"):
            continue
        option = word.split("=", 1)[0]
        if option in GATE_OWNED_OPTIONS or (
            word.startswith(("-p", "-c", "-o")) and not word.startswith("--")
        ):
            raise ConfigError(
                f"rsi.toml [commands].test {test_command!r} sets {option!r}, which the test gate "
                "controls itself (configuration, rootdir, conftest and plugin loading). Remove it."
            )
        if word in VALUE_OPTIONS:
            skip_next = True
        elif not word.startswith("-"):
            paths.append(posixpath.normpath(word.split("::", 1)[0]))
    if not paths or any(p.startswith(("/", "..")) or p == "." for p in paths):
        raise ConfigError(
            f"rsi.toml [commands].test {test_command!r} must name the test directory inside the "
            "target (e.g. `python -m pytest -q tests`): the gate loads conftest files from it only."
        )
    directories = [p if not p.endswith(".py") else posixpath.dirname(p) or "." for p in paths]
    common = posixpath.commonpath(directories)
    if common in ("", "."):
        raise ConfigError(
            f"rsi.toml [commands].test {test_command!r} selects tests from the target's root; name "
            "a test directory instead so a conftest.py at the root cannot take part."
        )
    return common


def _parse_report(report: bytes | None) -> tuple[int, dict[str, str]] | None:
    if report is None:
        return None
    try:
        data = json.loads(report.decode("utf-8"))
        exit_status = int(data["exit_status"])
        outcomes = {str(k): str(v) for k, v in dict(data["outcomes"]).items()}
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        return None
    if any(v not in OUTCOMES for v in outcomes.values()):
        return None
    return exit_status, outcomes
