"""The teacher store and mount: content-addressed, data-only, read-only in every sandbox on both
backends, and a teacher changed on disk is refused."""

from __future__ import annotations

import hashlib
import io
import pickle
from pathlib import Path

import numpy as np
import pytest

from core.target import TEACHER_FILE, TEACHER_MOUNT
from sandbox.base import Backend, SandboxConfig
from sandbox.bwrap_backend import BwrapBackend
from sandbox.docker_backend import DockerBackend
from sandbox.teacher import TamperedTeacherError, TeacherError, TeacherStore
from tests.conftest import IMAGE, ROOT

TEACHER0 = ROOT / "examples" / "bootstrap" / "teacher0.npz"

# Every way a candidate could try to change the teacher it was given; each must fail.
WRITE_ATTEMPTS = [
    f"echo x >> {TEACHER_MOUNT}/{TEACHER_FILE}",
    f"cp /dev/null {TEACHER_MOUNT}/{TEACHER_FILE}",
    f"rm -f {TEACHER_MOUNT}/{TEACHER_FILE}",
    f"touch {TEACHER_MOUNT}/other.npz",
    f"chmod 666 {TEACHER_MOUNT}/{TEACHER_FILE}",
    f"mv {TEACHER_MOUNT}/{TEACHER_FILE} /tmp/stolen.npz",
]


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def npz_bytes(**arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def test_a_teacher_is_addressed_by_the_sha256_of_its_bytes(tmp_path: Path) -> None:
    store = TeacherStore(tmp_path / "teachers")
    data = TEACHER0.read_bytes()
    sha = store.put(data)
    assert sha == hashlib.sha256(data).hexdigest()
    assert store.put(data) == sha  # idempotent
    assert store.read(sha) == data
    stored = store.mount_dir(sha) / TEACHER_FILE
    assert stored.stat().st_mode & 0o222 == 0 and stored.parent.stat().st_mode & 0o222 == 0
    assert [p.name for p in (tmp_path / "teachers").iterdir()] == [sha]


@pytest.mark.parametrize(
    "data, reason",
    [
        (pickle.dumps({"w": [1.0]}), "pickle"),
        (b"print('hi')\n", "not an .npz"),
        (npy_bytes(np.arange(3.0)), "it is npy, not an .npz"),
    ],
)
def test_only_a_data_only_npz_can_be_a_teacher(tmp_path: Path, data: bytes, reason: str) -> None:
    with pytest.raises(TeacherError, match=reason):
        TeacherStore(tmp_path).put(data, where="gen-2 seed 0 artifact")


def test_an_npz_holding_a_pickle_is_refused(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, w=np.array([{"code": 1}], dtype=object))
    with pytest.raises(TeacherError, match="cannot be a teacher"):
        TeacherStore(tmp_path).put(buffer.getvalue())


def test_a_teacher_changed_after_it_was_stored_is_refused(tmp_path: Path) -> None:
    store = TeacherStore(tmp_path / "teachers")
    sha = store.put(npz_bytes(w=np.arange(4.0)))
    path = tmp_path / "teachers" / sha / TEACHER_FILE
    path.parent.chmod(0o755)
    path.chmod(0o644)
    path.write_bytes(npz_bytes(w=np.arange(4.0) + 1))
    with pytest.raises(TamperedTeacherError, match="changed after it was stored"):
        store.mount_dir(sha)
    with pytest.raises(TamperedTeacherError):
        store.put(npz_bytes(w=np.arange(4.0)))


def test_a_missing_or_malformed_address_is_a_clear_error(tmp_path: Path) -> None:
    store = TeacherStore(tmp_path)
    with pytest.raises(TeacherError, match="no such teacher"):
        store.verify("0" * 64)
    with pytest.raises(TeacherError, match="not a teacher address"):
        store.verify("../etc/passwd")


def check_mount(backend_for, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The sandbox reads the teacher at /teacher, cannot change it, and the store still verifies."""
    store = TeacherStore(tmp_path / "teachers")
    data = TEACHER0.read_bytes()
    sha = store.put(data)
    (tmp_path / "ws").mkdir()
    backend: Backend = backend_for(SandboxConfig(teacher_dir=store.mount_dir(sha)))
    with backend.open(tmp_path / "ws", None, "teacher") as session:
        assert session.read_file(f"{TEACHER_MOUNT}/{TEACHER_FILE}") == data
        for attempt in WRITE_ATTEMPTS:
            assert session.exec(attempt, 10).exit_code != 0, attempt
        assert session.read_file(f"{TEACHER_MOUNT}/{TEACHER_FILE}") == data
    store.verify(sha)
    with backend_for(SandboxConfig()).open(tmp_path / "ws", None, "no-teacher") as session:
        assert session.exec(f"test -e {TEACHER_MOUNT}/{TEACHER_FILE}", 10).exit_code != 0


@pytest.mark.bwrap
def test_bwrap_mounts_the_teacher_read_only(tmp_path: Path) -> None:
    check_mount(lambda config: BwrapBackend(config, image="", run_id="test-teacher"), tmp_path)


@pytest.mark.docker
def test_docker_mounts_the_teacher_read_only(docker_client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    check_mount(lambda config: DockerBackend(config, image=IMAGE, run_id="test-teacher"), tmp_path)
