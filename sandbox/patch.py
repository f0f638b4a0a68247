"""Patch parsing, safety checks and application, before anything of the candidate runs.

A diff is parsed with `unidiff`, checked path by path (no escapes from the tree, nothing under
.git, no binary or mode changes unless allowed, no outward symlinks), then applied with
`git apply` in a fresh copy of the parent.

    changes = parse_diff(text)                  # raises PatchError with a clear reason
    apply_diff(text, workdir)                   # raises PatchError if it does not apply cleanly
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import subprocess
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from unidiff import PatchedFile, PatchSet
from unidiff.errors import UnidiffParseError

from rsi.errors import PatchError


@dataclass(frozen=True)
class AddedLine:
    line_no: int
    text: str


@dataclass
class FileChange:
    """One file's part of a diff: its paths, what kind of change, and its added/removed lines."""

    path: str
    """The path after the change (before it, for a deletion)."""
    old_path: str | None
    status: str
    """added | modified | deleted | renamed"""
    added: list[AddedLine] = field(default_factory=list)
    removed: list[AddedLine] = field(default_factory=list)
    is_binary: bool = False
    mode_change: bool = False
    new_mode: str | None = None


def diff_sha256(diff: str) -> str:
    return hashlib.sha256(diff.encode("utf-8")).hexdigest()


def _strip_prefix(path: str | None) -> str | None:
    if path is None or path == "/dev/null":
        return None
    for prefix in ("a/", "b/"):
        if path.startswith(prefix):
            return path[len(prefix) :]
    return path


def check_relative_path(path: str) -> str:
    """Return the normalised path, or raise if it leaves the tree or touches .git."""
    if "\x00" in path or path.strip() == "":
        raise PatchError(f"patch names an empty or NUL-containing path {path!r}; rejected.")
    if path.startswith("/") or PurePosixPath(path).is_absolute():
        raise PatchError(
            f"patch writes to an absolute path {path!r}; only paths inside the target are allowed."
        )
    normal = posixpath.normpath(path)
    if normal == ".." or normal.startswith("../") or "/../" in f"/{path}/":
        raise PatchError(f"patch path {path!r} escapes the target tree with '..'; rejected.")
    if normal == ".git" or normal.startswith(".git/") or "/.git/" in f"/{normal}/":
        raise PatchError(f"patch changes {path!r} under .git/; the repository's metadata is off limits.")
    return normal


def parse_diff(diff: str, allow_binary: bool = False, allow_mode_changes: bool = False) -> list[FileChange]:
    """Parse a unified diff into file changes, rejecting anything unsafe with a clear reason."""
    if not diff.strip():
        return []
    try:
        patch = PatchSet(diff)
    except UnidiffParseError as exc:
        raise PatchError(f"patch is not a valid unified diff: {exc}. Produce it with `git diff`.") from exc
    if len(patch) == 0:
        raise PatchError("patch has text but no file changes a unified-diff parser recognises; rejected.")
    changes = []
    for patched in patch:
        changes.append(_file_change(patched, allow_binary, allow_mode_changes))
    return changes


def _file_change(patched: PatchedFile, allow_binary: bool, allow_mode_changes: bool) -> FileChange:
    source = _strip_prefix(patched.source_file)
    target = _strip_prefix(patched.target_file)
    path = check_relative_path(target or source or "")
    old_path = check_relative_path(source) if source else None
    if patched.is_binary_file and not allow_binary:
        raise PatchError(
            f"patch changes {path!r} as a binary file; binary patches are not allowed by policy."
        )
    header = str(patched.patch_info or "")
    mode_change = "old mode" in header or "new mode" in header
    new_mode = None
    for header_line in header.splitlines():
        if header_line.startswith(("new mode ", "new file mode ")):
            new_mode = header_line.split()[-1]
    if new_mode == "120000":
        raise PatchError(f"patch makes {path!r} a symbolic link; symlinks are not allowed in candidates.")
    if mode_change and not allow_mode_changes:
        raise PatchError(f"patch changes the file mode of {path!r}; mode changes are not allowed by policy.")
    status = (
        "added"
        if patched.is_added_file
        else "deleted"
        if patched.is_removed_file
        else "renamed"
        if old_path and old_path != path
        else "modified"
    )
    change = FileChange(
        path=path,
        old_path=old_path,
        status=status,
        is_binary=patched.is_binary_file,
        mode_change=mode_change,
        new_mode=new_mode,
    )
    for hunk in patched:
        for line in hunk:
            if line.is_added and line.target_line_no is not None:
                change.added.append(AddedLine(line.target_line_no, line.value.rstrip("\n")))
            elif line.is_removed and line.source_line_no is not None:
                change.removed.append(AddedLine(line.source_line_no, line.value.rstrip("\n")))
    return change


def _reject_outward_symlinks(workdir: Path) -> None:
    root = workdir.resolve()
    for path in workdir.rglob("*"):
        if path.is_symlink():
            resolved = path.resolve()
            if resolved != root and root not in resolved.parents:
                rel = path.relative_to(workdir)
                raise PatchError(f"after the patch, {rel} is a symlink pointing outside the tree; rejected.")


def apply_diff(
    diff: str, workdir: Path, allow_binary: bool = False, allow_mode_changes: bool = False
) -> None:
    """Apply a checked diff in workdir (a fresh copy of the parent) with `git apply`."""
    parse_diff(diff, allow_binary, allow_mode_changes)
    if not diff.strip():
        return
    text = diff if diff.endswith("\n") else diff + "\n"
    args = ["git", "apply", "--whitespace=nowarn"]
    # Never let git discover an enclosing repository: paths would be taken relative to its root.
    env = {**os.environ, "GIT_CEILING_DIRECTORIES": str(workdir.resolve().parent)}
    # One call: without --reject, `git apply` checks every hunk before it writes anything, so a
    # patch that does not apply leaves the tree untouched (no separate --check pass needed).
    done = subprocess.run(
        [*args, "-"], input=text, cwd=workdir, capture_output=True, text=True, check=False, env=env
    )
    if done.returncode != 0:
        detail = done.stderr.strip().splitlines()
        raise PatchError(
            "patch does not apply cleanly to the parent: "
            + ("; ".join(detail[:4]) or "git apply failed")
            + ". Regenerate the diff against the parent commit."
        )
    _reject_outward_symlinks(workdir)
