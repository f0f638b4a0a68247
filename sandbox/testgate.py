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
- every callable of a trusted module (standard library, numpy…) is fingerprinted as that module
  finishes loading (identity, code object, defaults; class members too) and checked after
  collection, after each test and at the end: code the tests import that rebinds one, swaps its
  code or defaults, replaces the module or plants a fake submodule makes the run an error, so
  weakening what the assertions call (`numpy.testing.assert_allclose`, `numpy.isclose`) does not
  turn failures into passes (a name rebound to another function written in the trusted
  environment is excused: pytest and joblib rebind standard hooks themselves);
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

import hashlib
import hmac
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
CANARY_NODE = "<gate canary>"
TRUSTED_NODE = "<gate trusted code>"
"""Where TestResult.not_passed says code run by the tests replaced a trusted module's callable."""
"""Where TestResult.not_passed says the gate's canary was not reported failed."""

BOOTSTRAP = r"""
import hashlib, hmac, importlib.machinery, json, os, sys, tempfile
report_path, key_path, root, confcutdir, *selection = sys.argv[1:]
for name in [n for n in os.environ if n.startswith("PYTEST_")]:
    del os.environ[name]
os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
trusted = list(sys.path)


def make_sealer(path):
    # The key the harness wrote is read and removed before any code of the tree runs.
    with open(path, "rb") as handle:
        key = handle.read()
    os.unlink(path)
    new, digest, dumps = hmac.new, hashlib.sha256, json.dumps
    draw = int.from_bytes(digest(b"canary" + key).digest()[:8], "big")
    return (lambda body: dumps({"body": body, "seal": new(key, body.encode(), digest).hexdigest()})), draw


seal, draw = make_sealer(key_path)
del key_path


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


def make_warden(trusted, skip=("__main__", "sys", "warnings")):
    # Every callable a trusted module (standard library, numpy...) binds, seen as it finished loading:
    # code the tests import may not rebind it, swap its code or defaults, or replace the module.
    import importlib._bootstrap as bootstrap
    from importlib.machinery import PathFinder
    from functools import partial
    from types import FunctionType, MethodType, ModuleType

    roots = tuple(os.path.join(os.path.abspath(p), "") for p in trusted if p and os.path.isdir(p))
    prints, changed, modules = {}, [], sys.modules

    def is_trusted(name, module):
        spec = getattr(module, "__spec__", None)
        if name.split(".")[0] in skip or not isinstance(module, ModuleType) or getattr(spec, "_initializing", 0):
            return False  # a module still loading is seen once its own code has finished
        origin = getattr(spec, "origin", None) or getattr(module, "__file__", None)
        return origin in ("built-in", "frozen") or (isinstance(origin, str) and origin.startswith(roots))

    def mark(value):
        if isinstance(value, FunctionType):
            return id(value), id(value.__code__), id(value.__defaults__), id(value.__kwdefaults__)
        kept = callable(value) or isinstance(value, (ModuleType, property, classmethod, staticmethod))
        return (id(value),) if kept else None

    def fingerprint(module, deep=True):
        found = {}
        for key, value in list(vars(module).items()):
            if (marked := mark(value)) is not None:
                found[key] = marked
            if deep and isinstance(value, type) and value.__module__ == module.__name__:
                for attr, member in list(vars(value).items()):
                    if (marked := mark(member)) is not None:
                        found[key + "." + attr] = marked
        return found

    def adopt():
        for name, module in list(modules.items()):
            if name not in prints and is_trusted(name, module):
                top = fingerprint(module, deep=False)
                prints[name] = (module, top, fingerprint(module), set(vars(module)))

    def check(deep=True):
        # After each test only the modules' own bindings (the cheap part); class members and names a
        # module gained after collection and at the end.
        for name, (module, top, before, names) in prints.items():
            if modules.get(name, module) is not module:
                changed.append(name + " (the module itself)")
                continue
            if not deep:
                if fingerprint(module, deep=False) != top:
                    changed.extend(f"{name}.{k}" for k, v in top.items() if marks(module, k) != v and not rebound(module, k, v))
                continue
            now = fingerprint(module)
            changed.extend(f"{name}.{k}" for k, v in before.items() if now.get(k) != v and not rebound(module, k, v))
            # A name it gains must be a submodule the import system loaded, not one planted from outside.
            changed.extend(f"{name}.{k}" for k in vars(module).keys() - names if planted(name, module, k))
        return changed

    def marks(module, key):
        return mark(vars(module).get(key)) if key in vars(module) else None

    def planted(name, module, key):
        value = vars(module).get(key)
        if isinstance(value, ModuleType) or (
            hasattr(module, "__path__") and PathFinder.find_spec(f"{name}.{key}", list(module.__path__))
        ):
            return value is not modules.get(f"{name}.{key}")  # only the import system binds a submodule
        value = unwrap(value)
        if isinstance(value, FunctionType):
            return not value.__code__.co_filename.startswith(roots)
        if isinstance(value, type):
            return not is_trusted(value.__module__, modules.get(value.__module__))
        return False

    def rebound(module, key, before):
        # Trusted code rebinds trusted names too (pytest its hooks into pdb and threading, joblib
        # multiprocessing's): a name bound to another function written in the trusted environment is
        # excused; the same function with other code or defaults, or anything the tree wrote, is not.
        value = module
        for part in key.split("."):
            value = vars(value).get(part) if isinstance(value, (type, ModuleType)) else None
        if value is None or id(value) == before[0]:
            return False
        value = unwrap(value)
        return isinstance(value, FunctionType) and value.__code__.co_filename.startswith(roots)

    def unwrap(value):
        # Only the wrappers' own fields: a lookup on an arbitrary object can run its code.
        value = value.func if isinstance(value, partial) else value
        is_method = isinstance(value, (MethodType, staticmethod, classmethod))
        return value.__func__ if is_method else value

    loader = bootstrap._find_and_load

    def find_and_load(name, import_):
        module = loader(name, import_)
        adopt()
        return module

    bootstrap._find_and_load = find_and_load
    adopt()
    return check


check_trusted = make_warden(trusted)
import pytest

sys.path.append(root)
Function, Module, hookimpl, write = pytest.Function, pytest.Module, pytest.hookimpl, open


def canary_for(model):
    # A test that must fail, named and located like a real test drawn in secret, so code that
    # makes reports lie cannot tell it from the tests it wants to pass.
    left = draw % 1000
    right = left + 1 + (draw >> 10) % 9

    def canary():
        assert left == right

    function = getattr(model, "function", None)
    code = getattr(function, "__code__", None)
    if code is not None:
        canary.__code__ = canary.__code__.replace(
            co_filename=code.co_filename, co_firstlineno=code.co_firstlineno, co_name=code.co_name
        )
        canary.__name__ = canary.__qualname__ = function.__name__
        canary.__module__ = function.__module__
    return Function.from_parent(model.parent, name=model.name, callobj=canary, originalname=model.originalname)


class GateReport:
    def __init__(self):
        self.outcomes = {}
        self.canary = None
        self.canary_outcome = "absent"
        self.current = None
        self.session = None

    def pytest_sessionstart(self, session):
        self.session = session

    @hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, session, config, items):
        functions = [i for i in items if type(i) is Function]
        # A model whose module or class skips or expects failure would pass that on to the canary.
        plain = [i for i in functions if not any(i.get_closest_marker(m) for m in ("skip", "skipif", "xfail"))]
        models = [i for i in plain if type(i.parent) is Module] or plain or functions
        if not models:
            return
        self.canary = canary_for(models[draw % len(models)])
        self.canary_outcome = "not run"
        items.insert((draw >> 20) % (len(items) + 1), self.canary)

    @hookimpl(hookwrapper=True, tryfirst=True)
    def pytest_runtest_protocol(self, item, nextitem):
        self.current = item
        yield
        self.current = None

    @hookimpl(tryfirst=True)
    def pytest_report_teststatus(self, report, config):
        if self.canary is not None and self.current is self.canary and report.when == "call":
            return "", "", ""  # kept out of the printed summary: it is the gate's, not the target's
        return None

    def pytest_collection_finish(self, session):
        check_trusted()

    def pytest_collectreport(self, report):
        if report.failed:
            self.outcomes[report.nodeid or "<collection>"] = "error"

    def pytest_runtest_logreport(self, report):
        if report.when == "teardown":
            check_trusted(deep=False)
        if self.canary is not None and self.current is self.canary and report.when == "call":
            self.judge_canary(report)
            return
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

    def judge_canary(self, report):
        counted = report.failed and not hasattr(report, "wasxfail")
        honest = counted and report.outcome == "failed" and not report.passed and not report.skipped
        self.canary_outcome = "failed" if honest else "passed" if report.passed else str(report.outcome)
        if counted and self.session is not None:
            # The session counted the gate's own failure (and may stop on it under -x): undo it.
            session = self.session
            session.testsfailed -= 1
            maxfail = session.config.getvalue("maxfail")
            if session.shouldfail and not (maxfail and session.testsfailed >= maxfail):
                if "_shouldfail" in vars(session):
                    session._shouldfail = False
                else:
                    session.shouldfail = False

    def pytest_sessionfinish(self, session, exitstatus):
        changed = check_trusted()
        body = json.dumps(
            {
                "exit_status": int(exitstatus),
                "outcomes": self.outcomes,
                "canary": self.canary_outcome,
                "changed": sorted(set(changed))[:20],
            }
        )
        with write(report_path, "w", encoding="utf-8") as handle:
            handle.write(seal(body))


ini = os.path.join(tempfile.mkdtemp(prefix="rsi-gate-"), "pytest.ini")
with open(ini, "w", encoding="utf-8") as handle:
    handle.write("[pytest]\n")
options = ["-c", ini, "--rootdir", root, "--confcutdir", confcutdir, "-p", "no:cacheprovider"]
sys.exit(int(pytest.main([*selection, *options], plugins=[GateReport()])))
"""


class TestGate:
    """How the harness runs one target's test command; `start()` gives one run its own secrets."""

    __test__ = False  # not a pytest test class

    def __init__(self, test_command: str, pytest_args: list[str] | None, test_dir: str | None) -> None:
        self.test_command = test_command
        self.pytest_args = pytest_args
        """The selection of a pytest command (None: not a pytest command, run as written)."""
        self.test_dir = test_dir
        """The directory, relative to the tree, whose conftest files (and only those) are loaded."""

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

    def start(self) -> GateRun:
        """One run of the gate, with a fresh report path and sealing key of its own."""
        return GateRun(self)


class GateRun:
    """One run of the test gate: the command, the key file to write into the sandbox before it
    (`key_path`, `key`; None for a command that is not pytest), and how to read its outcome."""

    def __init__(self, gate: TestGate) -> None:
        self.gate = gate
        token = secrets.token_hex(8)
        self.report_path = f"/tmp/.rsi-gate-{token}.json"
        self.key_path: str | None = None
        self.key = secrets.token_hex(32).encode("ascii")
        """Seals the report; the bootstrap reads and deletes its file before any code of the tree runs."""
        if gate.pytest_args is not None:
            self.key_path = f"/tmp/.rsi-gate-{token}.key"

    def command(self, pythons: Sequence[str]) -> str:
        """The shell command the sandbox runs: the bootstrap under the first existing interpreter."""
        gate = self.gate
        if gate.pytest_args is None or self.key_path is None:
            return gate.test_command
        root = WORKDIR
        confcutdir = posixpath.normpath(posixpath.join(root, gate.test_dir or "."))
        argv = [self.report_path, self.key_path, root, confcutdir, *gate.pytest_args]
        choices = " ".join(shlex.quote(p) for p in pythons)
        return (
            f'for rsi_python in {choices}; do [ -x "$rsi_python" ] && break; done; '
            f'[ -x "$rsi_python" ] || {{ echo "test gate: no Python at {choices}" >&2; exit 127; }}; '
            f'exec "$rsi_python" -I -B -c {shlex.quote(BOOTSTRAP)} {shlex.join(argv)}'
        )

    def result(self, executed: ExecResult, report: bytes | None) -> TestResult:
        """The tests' outcome: from the gate's sealed report (pytest) or the exit code alone."""
        base = TestResult(
            exit_code=executed.exit_code,
            duration_s=round(executed.duration_s, 3),
            output_tail=tail(executed.output),
        )
        if self.gate.pytest_args is None:
            base.counts_from = "exit_code"
            return base
        base.counts_from = "gate_report"
        parsed = _parse_report(report, self.key)
        if isinstance(parsed, str):
            return _untrusted(base, parsed)
        exit_status, outcomes, canary, changed = parsed
        counts = {kind: sum(1 for o in outcomes.values() if o == kind) for kind in OUTCOMES}
        base.passed, base.failed = counts["passed"], counts["failed"]
        base.errors, base.skipped = counts["error"], counts["skipped"]
        not_passed = [(node, outcome) for node, outcome in outcomes.items() if outcome != "passed"]
        base.not_passed = dict(not_passed[:MAX_NOT_PASSED])
        if len(not_passed) > MAX_NOT_PASSED:
            base.not_passed["<more>"] = f"{len(not_passed) - MAX_NOT_PASSED} more not shown"
        if base.exit_code == 0 and exit_status != 0:
            base.exit_code = exit_status  # a failure either side reports is a failure
        if changed:
            base.errors += 1
            base.not_passed[TRUSTED_NODE] = (
                f"error: code run by the tests replaced {', '.join(changed[:5])}"
                f"{' and more' if len(changed) > 5 else ''} of the standard library or an installed "
                "package: what the tests assert with it can no longer be believed"
            )
            base.exit_code = base.exit_code or 1
        if (problem := _canary_problem(canary, outcomes)) is not None:
            base.errors += 1
            base.not_passed[CANARY_NODE] = f"error: {problem}"
            base.exit_code = base.exit_code or 1
        return base


def _untrusted(base: TestResult, why: str) -> TestResult:
    """No report the gate can believe: an error, whatever the process printed or returned."""
    base.errors = max(1, base.errors)
    base.not_passed = {"<gate>": f"error: {why}"}
    if base.exit_code == 0:
        base.exit_code = 1
    return base


def _canary_problem(canary: str, outcomes: dict[str, str]) -> str | None:
    """Why the canary's reported outcome shows the reports cannot be believed (None: they can)."""
    if canary == "failed":
        return None
    stopped_early = any(o in ("failed", "error") for o in outcomes.values())
    if canary == "not run" and stopped_early:
        return None  # a real failure stopped the session (-x) before the canary's turn
    if canary == "absent" and not any(o == "passed" for o in outcomes.values()):
        return None  # nothing passed: there was no test to place the canary beside
    return (
        f"a test the gate added, which must fail, was reported {canary!r}: code run by the tests "
        "changed how pytest reports outcomes, so no outcome of this run can be believed"
    )


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


def _parse_report(report: bytes | None, key: bytes) -> tuple[int, dict[str, str], str, list[str]] | str:
    """(exit status, outcome per node id, the canary's outcome, what trusted code the tests' run
    replaced), or why the report is not believed."""
    if report is None:
        return "the test gate wrote no readable report (pytest never finished, or was taken over)"
    try:
        sealed = json.loads(report.decode("utf-8"))
        body, seal = str(sealed["body"]), str(sealed["seal"])
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        return "the test gate's report is not one the gate writes"
    expected = hmac.new(key, body.encode("utf-8"), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, seal):
        return "the test gate's report is not the one the gate wrote (its seal does not match)"
    try:
        data = json.loads(body)
        exit_status = int(data["exit_status"])
        outcomes = {str(k): str(v) for k, v in dict(data["outcomes"]).items()}
        canary = str(data["canary"])
        changed = [str(name) for name in list(data.get("changed", []))[:20]]
    except (ValueError, KeyError, TypeError):
        return "the test gate's report is not one the gate writes"
    if any(v not in OUTCOMES for v in outcomes.values()):
        return "the test gate's report names an outcome pytest does not have"
    return exit_status, outcomes, canary, changed
