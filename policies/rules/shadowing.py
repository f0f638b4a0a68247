"""`shadowing`: files that would change which code the interpreter or the test runner loads.

A candidate can try to replace trusted code by where it puts a file rather than by what the file
does: a top-level module or package named like a standard-library module or an installed
distribution's import name (`numpy.py`, `json/`, `pytest/`), an interpreter start-up hook
(`sitecustomize`, `usercustomize`, a `.pth` file), a `conftest.py` outside the protected test
directory, or test-runner configuration (`pytest.ini`, `.pytest.ini`, `tox.ini`, a `setup.cfg`
with `[tool:pytest]`, a `pyproject.toml` with `[tool.pytest…]`). The test gate ignores all of these
(sandbox/testgate.py); this rule makes sure a human sees them anyway, since the target's own
scripts (`python train.py`) still import from the tree first.

A file can also take the place of the tree's own code: a package `predict/__init__.py`, an extension
module `predict.abi3.so` or a sourceless `predict/__init__.pyc` added next to `predict.py` is what
`import predict` loads from then on (FileFinder looks for a package, then extension modules, then
source, then bytecode, in each directory), and a module added to the test directory comes before the
root's for the tests. The rule computes, for each directory and import name a change touches, which
entry Python loads before and after the patch (from importlib.machinery's suffix lists, never from
literal names); two entries for one name where the patch added one is a finding, a `deny` when a
protected path (rsi.toml's [protected].paths) is among them: the gate would test the substitute.

Judged by the file's importable name and location, for its new path (so a rename onto such a name
counts); a deletion never fires. Case variants that alias on a case-insensitive filesystem
(`NumPy.py` on macOS) are out of scope: the sandbox's filesystems are case-sensitive.
"""

from __future__ import annotations

import functools
import importlib.machinery
import importlib.metadata
import os
import posixpath
import sys
from pathlib import Path

from pydantic import Field

from core.contracts import Finding
from core.errors import ConfigError
from policies.base import CheckContext, Params, Rule, compile_globs, rule_type
from sandbox.patch import FileChange

STARTUP_HOOKS = ("sitecustomize", "usercustomize")
LOADER_ORDER = (
    *(("an extension module", s) for s in importlib.machinery.EXTENSION_SUFFIXES),
    *(("source", s) for s in importlib.machinery.SOURCE_SUFFIXES),
    *(("sourceless bytecode", s) for s in importlib.machinery.BYTECODE_SUFFIXES),
)
"""(kind, suffix) in the order FileFinder tries them in one directory (the order of
importlib._bootstrap_external._get_supported_file_loaders; tests/policies check it on disk)."""
RUNNER_CONFIG_FILES = ("pytest.ini", ".pytest.ini", "pytest.toml", ".pytest.toml", "tox.ini")
SECTION_CONFIG_FILES = {"setup.cfg": ("[tool:pytest]",), "pyproject.toml": ("[tool.pytest",)}


class ShadowingParams(Params):
    stdlib: bool = True
    """Flag top-level modules/packages named like a standard-library module (sys.stdlib_module_names)."""
    installed: bool = True
    """Flag top-level names that an installed distribution provides (the harness's environment)."""
    names: list[str] = Field(default_factory=list)
    """More top-level import names to protect (e.g. ones only the sandbox image installs)."""
    siblings: bool = True
    """Flag a file the patch adds (or renames) that changes which entry of its directory an import
    name loads, or that never loads because another entry wins (`X/__init__.py` next to `X.py`)."""
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
        self.protected = compile_globs(
            self.target.protected.paths if self.target else [], "[protected].paths"
        )

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
        if self.params.siblings:
            findings += self._siblings(ctx)
        return findings

    def _siblings(self, ctx: CheckContext) -> list[Finding]:
        """Import names whose winner the patch changed, or whose new entry never loads."""
        after = self._tree_files(ctx)
        added = {c.path: c for c in ctx.changes if c.status in ("added", "renamed")}
        removed = {c.old_path or c.path for c in ctx.changes if c.status in ("deleted", "renamed")}
        before = (after - set(added)) | removed
        findings, seen = [], set()
        for path, change in added.items():
            slot = import_slot(path)
            if slot is None or slot in seen:
                continue
            seen.add(slot)
            folder, name = slot
            entries = import_entries(after, folder, name)
            now, then = import_winner(after, folder, name), import_winner(before, folder, name)
            place = f"{folder}/" if folder else "the root"
            if len(entries) > 1 and now != then and now in added:
                instead = then or ", ".join(sorted(entries - {now}))
                what = f"`import {name}` from {place} now loads {now} instead of {instead}"
            elif len(entries) > 1 and now != path:
                what = f"{path} never loads: `import {name}` from {place} loads {now}"
            elif (earlier := self._earlier_on_the_path(after, folder, name)) is not None:
                what = f"the tests put {place} first on sys.path, so `import {name}` loads {now} instead of {earlier}"
                entries = {*entries, earlier}
            else:
                continue
            deny = any(self.protected.match_file(e) for e in entries | {then or ""} if e)
            findings.append(
                self.finding(
                    f"{change.status} {path}: {what} (Python prefers a package, then an extension module, "
                    "then source, then bytecode in one directory). Remove or rename it; to replace a "
                    "module, change or delete its file in the same patch instead"
                    + (" — the file it takes the place of is protected" if deny else ""),
                    file=path,
                    verdict="deny" if deny else None,
                )
            )
        return findings

    def _earlier_on_the_path(self, files: set[str], folder: str, name: str) -> str | None:
        """What `name` loads from the root when `folder` is a test directory (pytest puts it on
        sys.path before the root, so the tests import its module instead)."""
        if folder not in self.test_dirs:
            return None
        return import_winner(files, "", name)

    def _tree_files(self, ctx: CheckContext) -> set[str]:
        """The patched tree's files: walked when the caller has the tree, else what the diff, the
        whole texts and the target's literal protected paths name."""
        if ctx.tree is not None:
            return _walk(ctx.tree)
        files = {c.path for c in ctx.changes if c.status != "deleted"} | set(ctx.new_sources or ())
        literal = self.target.protected.paths if self.target else []
        files |= {p.strip("/") for p in literal if not p.endswith("/") and not any(ch in p for ch in "*?[!")}
        return files

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


def import_slot(path: str) -> tuple[str, str] | None:
    """(directory, import name) a file answers for: `d/x.py`, `d/x.abi3.so` and `d/x/__init__.py`
    all answer for `x` in `d` (None: no importable name)."""
    folder, base = posixpath.split(path)
    stem = _stem(base)
    if stem == "__init__":
        folder, stem = posixpath.split(folder)
    return (folder, stem) if stem is not None and stem.isidentifier() else None


def import_entries(files: set[str], folder: str, name: str) -> set[str]:
    """Every entry of `folder` that answers for `name`: module files, package inits, and the
    directory itself (as `name/`) when it would be a namespace package."""
    base = posixpath.join(folder, name)
    found = {base + suffix for _, suffix in LOADER_ORDER if base + suffix in files}
    found |= {f"{base}/__init__{suffix}" for _, suffix in LOADER_ORDER if f"{base}/__init__{suffix}" in files}
    if not any(f.startswith(base + "/__init__") for f in found) and any(
        f.startswith(base + "/") for f in files
    ):
        found.add(base + "/")
    return found


def import_winner(files: set[str], folder: str, name: str) -> str | None:
    """What `import name` loads from `folder` of a tree holding `files`, by FileFinder's order: a
    package's __init__ (any loader's suffix), then a module file per loader, then a namespace."""
    base = posixpath.join(folder, name)
    for _, suffix in LOADER_ORDER:
        if f"{base}/__init__{suffix}" in files:
            return f"{base}/__init__{suffix}"
    for _, suffix in LOADER_ORDER:
        if base + suffix in files:
            return base + suffix
    return base + "/" if any(f.startswith(base + "/") for f in files) else None


def _stem(base: str) -> str | None:
    for _, suffix in sorted(LOADER_ORDER, key=lambda item: len(item[1]), reverse=True):
        if base.endswith(suffix) and len(base) > len(suffix):
            return base[: -len(suffix)]
    return None


def _walk(tree: Path) -> set[str]:
    files = set()
    for folder, folders, names in os.walk(tree):
        folders[:] = [f for f in folders if f != ".git"]
        files |= {Path(folder, n).relative_to(tree).as_posix() for n in names}
    return files


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
