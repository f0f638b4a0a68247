"""A diff as the harness reads it: its file changes, and the candidate tree it makes.

The parsing and applying live in sandbox.patch; these are the shapes every package reads. A
candidate's `PatchedTree` is built once (sandbox.patched) and handed to the evaluator, the policy
and the lineage, so none of them parses or applies the diff again:

    with patched_tree(lineage, parent, diff) as patched:
        patched.changes, patched.path, patched.stat     # parsed once, applied once
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal


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


HUNK_HEADER = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
DiffLineKind = Literal["git", "index", "old-file", "new-file", "hunk", "add", "del", "ctx", "meta"]


def diff_lines(diff: str) -> Iterator[tuple[DiffLineKind, str]]:
    """Each line of a unified diff with what it is, read as git reads it, for what people are
    shown (tolerant: an odd line is `meta`, never an error; `rsi` parses strictly where it applies
    a diff): lines end at line feeds only, and a hunk's lines are as many as its header counts,
    whatever they start with, so an added line reading `++ b/other.py` is an added line, not a
    file header, and a removed `-- x` is a removed line, not dropped (red team round twelve: a
    docstring line turned the rest of a file into another file on the reviewer's screen)."""
    lines = diff.split("\n")
    if lines and not lines[-1]:
        lines.pop()
    old_left = new_left = 0
    for line in lines:
        line = line.removesuffix("\r")  # a CRLF diff's line end, never drawn
        if old_left > 0 or new_left > 0:
            if line.startswith("+") and new_left > 0:
                new_left -= 1
                yield "add", line[1:]
                continue
            if line.startswith("-") and old_left > 0:
                old_left -= 1
                yield "del", line[1:]
                continue
            if (line.startswith(" ") or not line) and old_left > 0 and new_left > 0:
                old_left, new_left = old_left - 1, new_left - 1
                yield "ctx", line[1:]
                continue
            if line.startswith("\\"):
                yield "meta", line
                continue
            old_left = new_left = 0  # a hunk shorter than its header: read on as headers
        if line.startswith("diff --git"):
            yield "git", line
        elif line.startswith("index "):
            yield "index", line
        elif line.startswith("--- "):
            yield "old-file", line
        elif line.startswith("+++ "):
            yield "new-file", line
        elif match := HUNK_HEADER.match(line):
            old_left = 1 if match.group(2) is None else int(match.group(2))
            new_left = 1 if match.group(4) is None else int(match.group(4))
            yield "hunk", line
        else:
            yield "meta", line
