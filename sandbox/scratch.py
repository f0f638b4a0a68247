"""The harness's scratch directories on the host, named by the process that owns them.

A candidate's patched tree, an evaluation's stage, a parent exported for the proposer, a label
server's socket: each lives in a temporary directory removed when its block ends. A run killed with
-9 (or a lost machine) never ends the block, and a patched tree is a copy of the target: an
overnight run killed a few times filled /tmp with them. Each directory is named
``rsi-<kind>-<pid>-<random>``, so the next run on the host removes those whose owner is gone
(`remove_stale`, called with the sandboxes' own orphans at a run's start), the way it reaps a
crashed run's sandboxes.

    with scratch_dir("candidate") as tmp: ...
    remove_stale()  # -> the directories removed
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from pathlib import Path

from sandbox.base import pid_alive

OWNED = re.compile(r"rsi-(?P<kind>[a-z]+)-(?P<pid>\d+)-[A-Za-z0-9_]+")
"""A scratch directory's name: its kind, its owner's pid, tempfile's random part."""


def _prefix(kind: str) -> str:
    if not re.fullmatch(r"[a-z]+", kind):
        raise ValueError(f"a scratch directory's kind is lower-case letters, not {kind!r}")
    return f"rsi-{kind}-{os.getpid()}-"


def scratch_dir(kind: str) -> tempfile.TemporaryDirectory[str]:
    """A temporary directory (context manager) that a later run removes if this process dies first."""
    return tempfile.TemporaryDirectory(prefix=_prefix(kind))


SHORT_ROOT = "/tmp"
"""Where a scratch directory goes when the temporary directory's path is too long for its use (a
Unix socket's path holds at most 107 bytes); `remove_stale` looks there too."""


def make_scratch_dir(kind: str, longest: int | None = None) -> Path:
    """`scratch_dir` for an owner that removes it itself (mkdtemp). `longest`: the length of the
    longest name the owner puts in it; where the temporary directory's path (TMPDIR) would make a
    path in it longer than a Unix socket's path may be, the directory goes in SHORT_ROOT instead."""
    prefix = _prefix(kind)
    root = None
    if (
        longest is not None
        and len(os.path.join(tempfile.gettempdir(), prefix + "x" * 8, "x" * longest)) > 107
    ):
        root = SHORT_ROOT
    return Path(tempfile.mkdtemp(prefix=prefix, dir=root))


def remove_stale(root: Path | None = None) -> list[Path]:
    """Remove every scratch directory in `root` (default: the temporary directory and SHORT_ROOT)
    whose owner process is gone, and return them. Only directories of this user, never through a
    link; a pid reused by a live process keeps its directory until that process ends too (never
    removed early)."""
    roots = [Path(root)] if root is not None else sorted({Path(tempfile.gettempdir()), Path(SHORT_ROOT)})
    entries = []
    for base in roots:
        with contextlib.suppress(OSError):
            entries += list(os.scandir(base))
    removed: list[Path] = []
    for entry in entries:
        match = OWNED.fullmatch(entry.name)
        if match is None or int(match["pid"]) == os.getpid():
            continue
        try:
            if (
                not entry.is_dir(follow_symlinks=False)
                or entry.stat(follow_symlinks=False).st_uid != os.getuid()
            ):
                continue
        except OSError:
            continue
        if pid_alive(int(match["pid"])):
            continue
        shutil.rmtree(entry.path, ignore_errors=True)
        if not os.path.lexists(entry.path):
            removed.append(Path(entry.path))
    return removed
