"""`shadowing`: files that would change which code the interpreter or the test runner loads.

A candidate can try to replace trusted code by where it puts a file rather than by what the file
does: a top-level module or package named like a standard-library module or an installed
distribution's import name (`numpy.py`, `json/`, `pytest/`), an interpreter start-up hook
(`sitecustomize`, `usercustomize`, a `.pth` file), a `conftest.py` outside the protected test
directory, or test-runner configuration (`pytest.ini`, `.pytest.ini`, `tox.ini`, a `setup.cfg`
with `[tool:pytest]`, a `pyproject.toml` with `[tool.pytest…]`). The test gate ignores all of these
(sandbox/testgate.py); this rule makes sure a human sees them anyway, since the target's own
scripts (`python train.py`) still import from the tree first.

Judged by the file's importable name and location, for its new path (so a rename onto such a name
counts); a deletion never fires. Case variants that alias on a case-insensitive filesystem
(`NumPy.py` on macOS) are out of scope: the sandbox's filesystems are case-sensitive.
"""

from __future__ import annotations

import functools
import importlib.machinery
import importlib.metadata
import posixpath
import sys

from pydantic import Field

from core.contracts import Finding
from core.errors import ConfigError
from policies.base import CheckContext, Params, Rule, rule_type
from sandbox.patch import FileChange

STARTUP_HOOKS = ("sitecustomize", "usercustomize")
RUNNER_CONFIG_FILES = ("pytest.ini", ".pytest.ini", "pytest.toml", ".pytest.toml", "tox.ini")
SECTION_CONFIG_FILES = {"setup.cfg": ("[tool:pytest]",), "pyproject.toml": ("[tool.pytest",)}


class ShadowingParams(Params):
    stdlib: bool = True
    """Flag top-level modules/packages named like a standard-library module (sys.stdlib_module_names)."""
    installed: bool = True
    """Flag top-level names that an installed distribution provides (the harness's environment)."""
    names: list[str] = Field(default_factory=list)
    """More top-level import names to protect (e.g. ones only the sandbox image installs)."""
    test_dirs: list[str] | None = None
    """Directories where conftest.py files belong; None: the test directory of the target's test
    command (`tests` for `python -m pytest -q tests`), or `tests` without a target."""


@functools.cache
def _installed_names() -> frozenset[str]:
    return frozenset(importlib.metadata.packages_distributions())


def importable_name(path: str) -> str | None:
    """The top-level import name a path provides from the tree's root, if any."""
    first, _, rest = path.partition("/")
    if rest:
        return first if first.isidentifier() else None  # a package (or namespace package) directory
    for suffix in sorted(importlib.machinery.all_suffixes(), key=len, reverse=True):
        if first.endswith(suffix):
            stem = first[: -len(suffix)]
            # Extension modules carry a platform tag: numpy.cpython-311-x86_64-linux-gnu.so.
            stem = stem.split(".", 1)[0]
            return stem if stem.isidentifier() else None
    return None


@rule_type
class ShadowingRule(Rule):
    kind = "shadowing"
    summary = (
        "top-level modules named like the standard library or an installed package, start-up hooks "
        "(sitecustomize, .pth), conftest.py outside the tests, test-runner configuration"
    )
    Params = ShadowingParams
    params: ShadowingParams

    def setup(self) -> None:
        for name in self.params.names:
            if not name.isidentifier():
                raise ConfigError(f"params.names: {name!r} is not a Python import name; write e.g. 'numpy'")
        if self.params.test_dirs is not None:
            self.test_dirs = [posixpath.normpath(d.strip("/")) for d in self.params.test_dirs]
        else:
            self.test_dirs = [self._target_test_dir()]

    def _target_test_dir(self) -> str:
        if self.target is None:
            return "tests"
        from sandbox.testgate import TestGate

        try:
            return TestGate.from_command(self.target.commands.test).test_dir or "tests"
        except ConfigError:
            return "tests"

    def protected_names(self) -> set[str]:
        names = set(self.params.names)
        if self.params.stdlib:
            names |= set(sys.stdlib_module_names)
        if self.params.installed:
            names |= _installed_names()
        return names

    def check(self, ctx: CheckContext) -> list[Finding]:
        findings = []
        names = None
        for change in ctx.changes:
            if change.status == "deleted":
                continue
            reason = self._startup_or_runner(change, ctx)
            if reason is None:
                module = importable_name(change.path)
                names = names if names is not None else self.protected_names()
                if module is not None and module in names:
                    reason = (
                        f"a top-level module {module!r} shadows the standard library or an installed "
                        "package for every script the target runs from its root"
                    )
            if reason is not None:
                findings.append(self.finding(f"{change.status} {change.path}: {reason}", file=change.path))
        return findings

    def _startup_or_runner(self, change: FileChange, ctx: CheckContext) -> str | None:
        path = change.path
        base = posixpath.basename(path)
        stem = base.split(".", 1)[0]
        if base.endswith(".pth"):
            return "a .pth file runs code whenever its directory is a site directory"
        if stem in STARTUP_HOOKS and importable_name(base) == stem:
            return f"{stem} runs at interpreter start-up when it is on the path"
        if base == "conftest.py" and not any(_under(path, d) for d in self.test_dirs):
            return f"a conftest.py outside {', '.join(d + '/' for d in self.test_dirs)} hooks into pytest"
        if base in RUNNER_CONFIG_FILES:
            return "test-runner configuration (pytest reads its options from here)"
        markers = SECTION_CONFIG_FILES.get(base)
        if markers is not None and _mentions(ctx, change, markers):
            return f"test-runner configuration ({' / '.join(markers)} section)"
        return None


def _under(path: str, directory: str) -> bool:
    return directory in ("", ".") or path.startswith(directory.rstrip("/") + "/")


def _mentions(ctx: CheckContext, change: FileChange, markers: tuple[str, ...]) -> bool:
    """Whether the file, before or after the change, has one of these sections (whole file when the
    patched tree is known, else the diff's lines)."""
    texts = [line.text for line in change.added] + [line.text for line in change.removed]
    for view in ctx.files:
        if view.change is change:
            texts.append(view.whole_new or "")
            texts += [line.text for hunk in view.hunks for line in hunk.lines]
    return any(marker in text for text in texts for marker in markers)
