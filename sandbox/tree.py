"""The git tree id of a directory, computed exactly as `git add -A && git write-tree` would.

It names what a candidate *is* (its files), independently of the parent and diff that produced it,
so two requests that lead to the same files share one measurement.

    tree_id(Path("stage/workspace"))   # '4b825dc642cb6eb9a060e54bf8d69288fbee4904' for an empty dir
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path


def _object_id(kind: bytes, body: bytes) -> bytes:
    return hashlib.sha1(kind + b" %d\x00" % len(body) + body, usedforsecurity=False).digest()


def _entry(path: Path) -> tuple[bytes, bytes] | None:
    """(mode, object id) of one directory entry; None for what git would not track (empty dirs)."""
    info = path.lstat()
    if stat.S_ISLNK(info.st_mode):
        return b"120000", _object_id(b"blob", os.readlink(path).encode())
    if stat.S_ISDIR(info.st_mode):
        digest = _tree(path)
        return (b"40000", digest) if digest is not None else None
    mode = b"100755" if info.st_mode & stat.S_IXUSR else b"100644"
    return mode, _object_id(b"blob", path.read_bytes())


def _tree(directory: Path) -> bytes | None:
    entries = []
    for child in directory.iterdir():
        if child.name == ".git":
            continue
        found = _entry(child)
        if found is not None:
            mode, digest = found
            # git sorts directories as if their name ended with "/".
            key = child.name.encode() + (b"/" if mode == b"40000" else b"")
            entries.append((key, mode + b" " + child.name.encode() + b"\x00" + digest))
    if not entries:
        return None
    return _object_id(b"tree", b"".join(body for _, body in sorted(entries)))


def tree_id(directory: Path) -> str:
    digest = _tree(directory)
    return digest.hex() if digest is not None else "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
