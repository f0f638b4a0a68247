"""`test_weakening`: a change that makes the target's tests easier to pass rather than the code better.

Detected on the AST of both sides of the changed test code: test files or test functions deleted,
asserts removed or loosened (a threshold moved the easy way, `==` relaxed, `assert True`),
`skip`/`xfail` added, tolerances widened (`approx`, `isclose`, `allclose`, `assert_allclose`,
`assertAlmostEqual`, `*tol*` constants), and tests excluded from collection (`collect_ignore`,
collection hooks in conftest.py; `testpaths`, `-k`, `--deselect`, `--ignore` in pytest's config
files; the test command in rsi.toml).
"""

from __future__ import annotations

import ast
import re
from collections import Counter
from typing import Literal

from pydantic import Field

from core.contracts import Finding
from core.pysource import literal
from policies.base import CheckContext, Params, Rule, compile_globs, rule_type
from policies.source import FileView, dotted, resolve

Check = Literal[
    "deleted",
    "asserts_removed",
    "asserts_loosened",
    "skips_added",
    "tolerances_widened",
    "collection_excluded",
]
SKIP_NAMES = {
    "pytest.skip",
    "pytest.mark.skip",
    "pytest.mark.skipif",
    "pytest.mark.xfail",
    "pytest.xfail",
    "pytest.importorskip",
    "unittest.skip",
    "unittest.skipIf",
    "unittest.skipUnless",
    "unittest.expectedFailure",
    "unittest.TestCase.skipTest",
}
ASSERT_CALL = re.compile(r"(^|\.)(assert\w*|fail\w*|raises|warns)$")
# (function name ending, positional index -> tolerance keyword); defaults are the library defaults.
TOLERANCE_POSITIONS: dict[str, dict[int, str]] = {
    "approx": {1: "rel", 2: "abs"},
    "isclose": {2: "rtol", 3: "atol"},
    "allclose": {2: "rtol", 3: "atol"},
    "assert_allclose": {2: "rtol", 3: "atol"},
    "assertAlmostEqual": {2: "places"},
    "assertNotAlmostEqual": {2: "places"},
    "assert_almost_equal": {2: "decimal"},
    "assert_array_almost_equal": {2: "decimal"},
}
DEFAULT_TOLERANCE = {
    "rel": 1e-6,
    "abs": 1e-12,
    "rtol": 1e-5,
    "atol": 1e-8,
    "rel_tol": 1e-9,
    "abs_tol": 0.0,
    "delta": 0.0,
    "places": 7,
    "decimal": 7,
}
LOWER_IS_LOOSER = {"places", "decimal"}
TOLERANCE_NAME = re.compile(r"(?i)(tol|eps|margin|slack)")
INI_COLLECTION = re.compile(
    r"\b(testpaths|norecursedirs|python_files|python_classes|python_functions|collect_ignore\w*)\b"
)
CLI_DESELECT = re.compile(
    r"(^|[\s\"'=])(-k|-m|--deselect|--ignore|--ignore-glob|--lf|--last-failed|--co)(\s|=|$)"
)
COLLECTION_HOOKS = {
    "pytest_ignore_collect",
    "pytest_collection_modifyitems",
    "pytest_collect_file",
    "pytest_pycollect_makeitem",
    "pytest_generate_tests",
}


class TestWeakeningParams(Params):
    __test__ = False  # not a pytest test class

    checks: list[Check] = Field(default_factory=lambda: list(Check.__args__))  # type: ignore[attr-defined]
    """Which kinds of weakening are findings."""
    test_paths: list[str] = Field(default_factory=lambda: ["tests/", "test_*.py", "*_test.py", "conftest.py"])
    """gitignore-style patterns of test code."""
    config_files: list[str] = Field(
        default_factory=lambda: [
            "pytest.ini",
            "setup.cfg",
            "tox.ini",
            "pyproject.toml",
            "rsi.toml",
            "conftest.py",
            "Makefile",
        ]
    )
    """gitignore-style patterns of files that configure test collection (and the test command)."""


@rule_type
class TestWeakeningRule(Rule):
    __test__ = False

    kind = "test_weakening"
    summary = (
        "tests deleted, asserts removed/loosened, skip/xfail added, tolerances widened, tests uncollected"
    )
    Params = TestWeakeningParams
    params: TestWeakeningParams

    def setup(self) -> None:
        self.tests = compile_globs(self.params.test_paths, "params.test_paths")
        self.configs = compile_globs(self.params.config_files, "params.config_files")

    def check(self, ctx: CheckContext) -> list[Finding]:
        findings: list[Finding] = []
        enabled: set[str] = set(self.params.checks)
        for view in ctx.files:
            is_test = bool(self.tests.match_file(view.path)) or bool(
                view.change.old_path and self.tests.match_file(view.change.old_path)
            )
            if "deleted" in enabled:
                findings += self._deleted(view, is_test)
            if is_test and view.is_python and view.change.status != "deleted":
                if "asserts_removed" in enabled or "asserts_loosened" in enabled:
                    findings += self._asserts(view, enabled)
                if "skips_added" in enabled:
                    findings += self._skips(view)
                if "tolerances_widened" in enabled:
                    findings += self._tolerances(view)
            if "collection_excluded" in enabled and self.configs.match_file(view.path):
                findings += self._collection(view)
        return findings

    # -- deleted ---------------------------------------------------------------------------

    def _deleted(self, view: FileView, is_test: bool) -> list[Finding]:
        change = view.change
        if is_test and change.status == "deleted":
            return [self.finding(f"test file {view.path} deleted", file=view.path, check="deleted")]
        if is_test and change.status == "renamed" and not self.tests.match_file(view.path):
            return [
                self.finding(
                    f"test file {change.old_path} renamed to {view.path}, out of the test paths",
                    file=view.path,
                    check="deleted",
                )
            ]
        if not (is_test and view.is_python) or change.status == "deleted":
            return []
        before = _test_defs(view, "old")
        after = set(_test_defs(view, "new"))
        return [
            self.finding(f"test {name} removed", file=view.path, line=line, check="deleted")
            for name, line in before.items()
            if name not in after
        ]

    # -- asserts ---------------------------------------------------------------------------

    def _asserts(self, view: FileView, enabled: set[str]) -> list[Finding]:
        old = _assertions(view, "old")
        new = _assertions(view, "new")
        findings = []
        if "asserts_removed" in enabled and len(old) > len(new):
            line = getattr(old[0], "lineno", None) if old else None
            findings.append(
                self.finding(
                    f"{len(old) - len(new)} assertion(s) removed ({len(old)} changed away, {len(new)} added)",
                    file=view.path,
                    line=line,
                    check="asserts_removed",
                )
            )
        if "asserts_loosened" in enabled:
            for before, after in zip(
                [a for a in old if isinstance(a, ast.Assert)],
                [a for a in new if isinstance(a, ast.Assert)],
                strict=False,
            ):
                why = _loosened(before.test, after.test)
                if why:
                    findings.append(
                        self.finding(
                            f"assertion loosened: {why}",
                            file=view.path,
                            line=after.lineno,
                            check="asserts_loosened",
                            before=ast.unparse(before.test)[:200],
                            after=ast.unparse(after.test)[:200],
                        )
                    )
        return findings

    # -- skips -----------------------------------------------------------------------------

    def _skips(self, view: FileView) -> list[Finding]:
        old = _skip_markers(view, "old")
        new = _skip_markers(view, "new")
        findings = []
        for name, count in new.items():
            if count > old.get(name, 0):
                line = min(new_lines for new_lines in _skip_lines(view, name))
                findings.append(
                    self.finding(f"{name} added", file=view.path, line=line, check="skips_added", name=name)
                )
        return findings

    # -- tolerances ------------------------------------------------------------------------

    def _tolerances(self, view: FileView) -> list[Finding]:
        old = _tolerance_settings(view, "old")
        new = _tolerance_settings(view, "new")
        findings = []
        for key, after_values in new.items():
            before_values = old.get(key)
            if before_values is None:
                continue
            function, name = key
            for (before, _), (after, line) in zip(before_values, after_values, strict=False):
                before = DEFAULT_TOLERANCE.get(name, 0.0) if before is None else before
                if after is None:
                    continue
                looser = after < before if name in LOWER_IS_LOOSER else after > before
                if looser:
                    findings.append(
                        self.finding(
                            f"tolerance widened: {function} {name} {before:g} -> {after:g}",
                            file=view.path,
                            line=line,
                            check="tolerances_widened",
                        )
                    )
        return findings

    # -- collection ------------------------------------------------------------------------

    def _collection(self, view: FileView) -> list[Finding]:
        if view.is_python:
            return self._collection_python(view)
        findings = []
        for side, lines in (("added", view.change.added), ("removed", view.change.removed)):
            for line in lines:
                text = line.text.split("#", 1)[0]
                reason = None
                if INI_COLLECTION.search(text):
                    reason = f"a test-collection setting {side}"
                elif side == "added" and CLI_DESELECT.search(text):
                    reason = "an option that deselects tests added"
                elif view.path.endswith("rsi.toml") and re.match(r"\s*test\s*=", text):
                    reason = f"the test command {side}"
                if reason:
                    findings.append(
                        self.finding(
                            f"{reason}: {line.text.strip()[:120]}",
                            file=view.path,
                            line=line.line_no if side == "added" else None,
                            check="collection_excluded",
                        )
                    )
        return findings

    def _collection_python(self, view: FileView) -> list[Finding]:
        findings = []
        for node in view.changed_nodes("new"):
            names: list[str] = []
            if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                names = [dotted(t) or "" for t in targets]
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name in COLLECTION_HOOKS:
                names = [node.name]
            elif isinstance(node, ast.Call) and (dotted(node.func) or "").endswith(
                ("collect_ignore.append", "collect_ignore.extend", "collect_ignore_glob.append")
            ):
                names = [dotted(node.func) or ""]
            hit = next((n for n in names if n.startswith("collect_ignore") or n in COLLECTION_HOOKS), None)
            if hit:
                findings.append(
                    self.finding(
                        f"test collection changed in {view.path}: {hit}",
                        file=view.path,
                        line=getattr(node, "lineno", None),
                        check="collection_excluded",
                    )
                )
        return findings


def _test_defs(view: FileView, side: str) -> dict[str, int]:
    """Test functions/classes defined on the changed lines of one side."""
    found: dict[str, int] = {}
    for node in view.changed_nodes(side):  # type: ignore[arg-type]
        if (
            (isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test"))
            or (isinstance(node, ast.ClassDef) and node.name.startswith("Test"))
        ) and node.lineno in view.focus(side):  # type: ignore[arg-type]
            found.setdefault(node.name, node.lineno)
    return found


def _assertions(view: FileView, side: str) -> list[ast.AST]:
    """assert statements and assert-like calls starting on the changed lines of one side."""
    focus = view.focus(side)  # type: ignore[arg-type]
    found: list[ast.AST] = []
    for node in view.changed_nodes(side):  # type: ignore[arg-type]
        if getattr(node, "lineno", None) not in focus:
            continue
        if isinstance(node, ast.Assert) or (
            isinstance(node, ast.Call) and ASSERT_CALL.search(dotted(node.func) or "")
        ):
            found.append(node)
    return sorted(found, key=lambda n: (n.lineno, n.col_offset))  # type: ignore[attr-defined]


def _loosened(before: ast.expr, after: ast.expr) -> str | None:
    if isinstance(after, ast.Constant) and after.value and not isinstance(before, ast.Constant):
        return f"`{ast.unparse(before)[:80]}` became `assert {after.value!r}`"
    if isinstance(before, ast.BoolOp) and isinstance(after, ast.BoolOp):
        if isinstance(before.op, ast.And) and len(after.values) < len(before.values):
            return "fewer conditions joined by `and`"
        if isinstance(before.op, ast.And) and isinstance(after.op, ast.Or):
            return "`and` became `or`"
    if not (isinstance(before, ast.Compare) and isinstance(after, ast.Compare)):
        return None
    if len(before.ops) != 1 or len(after.ops) != 1:
        return None
    op_before, op_after = type(before.ops[0]), type(after.ops[0])
    if op_before in (ast.Eq, ast.Is) and op_after not in (ast.Eq, ast.Is):
        return f"`{ast.unparse(before)[:80]}` relaxed to `{ast.unparse(after)[:80]}`"
    strict_to_loose = {(ast.Gt, ast.GtE), (ast.Lt, ast.LtE)}
    if (op_before, op_after) in strict_to_loose and ast.dump(before.left) == ast.dump(after.left):
        return f"`{ast.unparse(before)[:80]}` relaxed to `{ast.unparse(after)[:80]}`"
    old_bound, new_bound = _number(before.comparators[0]), _number(after.comparators[0])
    same_side = ast.dump(before.left) == ast.dump(after.left)
    if op_before == op_after and same_side and old_bound is not None and new_bound is not None:
        lower_bound = op_before in (ast.Gt, ast.GtE)
        upper_bound = op_before in (ast.Lt, ast.LtE)
        if (lower_bound and new_bound < old_bound) or (upper_bound and new_bound > old_bound):
            return f"threshold moved from {old_bound:g} to {new_bound:g} in `{ast.unparse(after)[:80]}`"
    return None


def _number(node: ast.AST) -> float | None:
    if (
        isinstance(node, ast.Constant)
        and isinstance(node.value, int | float)
        and not isinstance(node.value, bool)
    ):
        return float(node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = _number(node.operand)
        return -inner if inner is not None else None
    if isinstance(node, ast.BinOp):
        try:
            value = literal(node)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError, OverflowError):
            return None
        return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
    return None


def _skip_markers(view: FileView, side: str) -> Counter[str]:
    aliases = view.aliases(side)  # type: ignore[arg-type]
    counts: Counter[str] = Counter()
    for node in view.changed_nodes(side):  # type: ignore[arg-type]
        name = _skip_name(node, aliases)
        if name:
            counts[name] += 1
    return counts


def _skip_lines(view: FileView, wanted: str) -> list[int]:
    aliases = view.aliases("new")
    return [
        node.lineno  # type: ignore[attr-defined]
        for node in view.changed_nodes("new")
        if _skip_name(node, aliases) == wanted
    ] or [0]


def _skip_name(node: ast.AST, aliases: dict[str, str]) -> str | None:
    # Count the outermost use only: `pytest.mark.skip(...)` once, not for its inner attribute.
    if not isinstance(node, ast.Attribute | ast.Name) or not isinstance(getattr(node, "ctx", None), ast.Load):
        return None
    name = dotted(node)
    if name is None:
        return None
    origin = resolve(name, aliases)[0]
    if origin in SKIP_NAMES or (name.endswith(".skipTest") and name.startswith("self.")):
        return origin if origin in SKIP_NAMES else "self.skipTest"
    return None


def _tolerance_settings(view: FileView, side: str) -> dict[tuple[str, str], list[tuple[float | None, int]]]:
    """(function, tolerance name) -> [(value, line)] for calls and *tol* constants on changed lines."""
    settings: dict[tuple[str, str], list[tuple[float | None, int]]] = {}
    for node in view.changed_nodes(side):  # type: ignore[arg-type]
        if isinstance(node, ast.Call):
            function = (dotted(node.func) or "").rsplit(".", 1)[-1]
            positions = TOLERANCE_POSITIONS.get(function)
            if positions is None and function != "isclose":
                continue
            given: dict[str, float | None] = {}
            for index, name in (positions or {}).items():
                if index < len(node.args):
                    given[name] = _number(node.args[index])
            for keyword in node.keywords:
                if keyword.arg and keyword.arg in DEFAULT_TOLERANCE:
                    given[keyword.arg] = _number(keyword.value)
            names = set(given) | {n for n in (positions or {}).values()}
            for name in names:
                settings.setdefault((function, name), []).append((given.get(name), node.lineno))
        elif isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                name = dotted(target) or ""
                value = _number(node.value)
                if TOLERANCE_NAME.search(name) and value is not None:
                    settings.setdefault(("constant", name), []).append((value, node.lineno))
    return settings
