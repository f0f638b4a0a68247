"""A diff as the harness reads it: its file changes, and the candidate tree it makes.

The parsing and applying live in sandbox.patch; these are the shapes every package reads. A
candidate's `PatchedTree` is built once (sandbox.patched) and handed to the evaluator, the policy
and the lineage, so none of them parses or applies the diff again:

    with patched_tree(lineage, parent, diff) as patched:
        patched.changes, patched.path, patched.stat     # parsed once, applied once
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


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
    """added | modified | deleted | renamed (a copy is `added`, with its source as old_path)"""
    added: list[AddedLine] = field(default_factory=list)
    removed: list[AddedLine] = field(default_factory=list)
    is_binary: bool = False
    mode_change: bool = False
    new_mode: str | None = None


UNPARSEABLE = "unparseable diff"


def change_stat(changes: list[FileChange]) -> str:
    """One line about a diff's changes: how many files, lines added and removed, the first names."""
    if not changes:
        return "empty diff"
    added = sum(len(c.added) for c in changes)
    removed = sum(len(c.removed) for c in changes)
    names = ", ".join(c.path for c in changes[:3]) + (" …" if len(changes) > 3 else "")
    return f"{len(changes)} file(s) +{added} -{removed}: {names}"


@dataclass(frozen=True)
class PatchedTree:
    """A candidate's files: the parent commit's with the diff applied, built once per candidate."""

    parent_commit: str
    diff: str
    changes: list[FileChange] | None
    """The parsed diff; None when it does not parse (`error` says why)."""
    path: Path | None
    """The patched files (read-only for every reader); None when the diff does not parse or apply."""
    error: str | None = None
    """Why the diff does not parse or apply; None when `path` is set."""
    tree: str | None = None
    """The git tree id of `path`: what the candidate is, whatever parent and diff produced it."""

    @property
    def stat(self) -> str:
        return UNPARSEABLE if self.changes is None else change_stat(self.changes)

    def matches(self, parent_commit: str, diff: str) -> bool:
        return self.parent_commit == parent_commit and self.diff == diff
