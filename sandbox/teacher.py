"""The teacher of a bootstrapping target: stored by the harness, mounted read-only, audited.

A bootstrapping target (`[teacher]` in its rsi.toml) trains each student on data its *teacher*
generates. The teacher is a data-only model file (an `.npz` of plain arrays, never a pickle). The
harness keeps every teacher in a content-addressed store in the run directory, outside every
candidate's tree; the current one is mounted read-only at /teacher in each sandbox, and its path
there replaces `{teacher}` in the train command. When a generation is accepted, its student's
trained artifact is promoted: it becomes the next generation's teacher.

    store = TeacherStore(run_dir / "teachers")
    first = store.put((target / spec.teacher.initial).read_bytes())    # sha256 of the bytes
    backend_config.teacher_dir = store.mount_dir(first)                # bound at /teacher, read-only
    ...
    promoted = store.put(student_bytes)                               # at accept
    store.verify(promoted)                                            # TamperedTeacherError if changed

A stored teacher is a directory `<sha256>/model.npz` whose file and directory are read-only; `verify`
re-hashes the bytes before every mount, so a teacher changed on disk after it was stored (by anyone)
is refused rather than silently used.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

from core.errors import RsiError
from core.target import TEACHER_FILE
from sandbox.artifact import classify

SHA256 = re.compile(r"^[0-9a-f]{64}$")


class TeacherError(RsiError):
    """A teacher that cannot be stored or used: not data, missing, or changed since it was stored."""


class TamperedTeacherError(TeacherError):
    """A stored teacher whose bytes no longer hash to its address."""


def teacher_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_data_only(data: bytes, where: str) -> None:
    """Refuse anything but an `.npz` of plain arrays: a teacher is loaded by every later sandbox."""
    kind, problem = classify(data)
    if kind != "npz" or problem is not None:
        reason = problem or f"it is {kind}, not an .npz archive of arrays"
        raise TeacherError(
            f"{where}: cannot be a teacher: {reason}. A teacher must be a data-only .npz (numpy arrays "
            "saved without pickle), as the target's train command writes to {out}/model.npz."
        )


class TeacherStore:
    """Content-addressed, read-only teachers under one directory of the run."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def put(self, data: bytes, where: str = "teacher") -> str:
        """Store the bytes (idempotent) and return their sha256, the teacher's address."""
        check_data_only(data, where)
        sha = teacher_sha256(data)
        directory = self.root / sha
        if (directory / TEACHER_FILE).is_file():
            self.verify(sha)
            return sha
        self.root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".incoming-", dir=self.root))
        (staging / TEACHER_FILE).write_bytes(data)
        (staging / TEACHER_FILE).chmod(0o444)
        staging.chmod(0o555)  # the sandbox user reads it; nobody writes into it
        os.replace(staging, directory)
        return sha

    def mount_dir(self, sha: str) -> Path:
        """The directory to bind read-only at /teacher, after checking its bytes still match."""
        self.verify(sha)
        return self.root / sha

    def read(self, sha: str) -> bytes:
        self.verify(sha)
        return (self.root / sha / TEACHER_FILE).read_bytes()

    def verify(self, sha: str) -> None:
        """Raise TeacherError if the teacher is missing, TamperedTeacherError if its bytes changed."""
        if not SHA256.match(sha):
            raise TeacherError(f"{sha!r} is not a teacher address (a sha256 in lower-case hex)")
        path = self.root / sha / TEACHER_FILE
        if not path.is_file():
            raise TeacherError(
                f"{path}: no such teacher in the run's store; the run directory is incomplete "
                "(restore it from a copy, or start a new run)"
            )
        actual = teacher_sha256(path.read_bytes())
        if actual != sha:
            raise TamperedTeacherError(
                f"{path}: the teacher was changed after it was stored (its sha256 is now "
                f"{actual[:12]}, its address {sha[:12]}); the run cannot trust it. Restore the run "
                "directory from a copy, or re-derive the teachers with `rsi replay --verify`."
            )
