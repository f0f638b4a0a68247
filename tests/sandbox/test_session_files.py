"""Files go in and out of a session through its command channel, byte for byte, on both backends."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sandbox.base import SandboxConfig
from sandbox.bwrap_backend import BwrapBackend
from sandbox.docker_backend import DockerBackend
from tests.conftest import IMAGE


@pytest.mark.docker
def test_docker_session_round_trips_a_binary_file(docker_client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "ws").mkdir()
    data = os.urandom(150_000)  # more than one write chunk
    with DockerBackend(SandboxConfig(), image=IMAGE, run_id="test-files").open(
        tmp_path / "ws", None, "f"
    ) as s:
        s.write_file("/workspace/blob.bin", data)
        assert s.read_file("/workspace/blob.bin") == data
        assert s.exec("stat -c %U blob.bin", 10).output.strip() != "root"


@pytest.mark.bwrap
def test_bwrap_session_round_trips_a_binary_file(tmp_path: Path) -> None:
    (tmp_path / "ws").mkdir()
    data = os.urandom(70_000)
    with BwrapBackend(SandboxConfig(), image="", run_id="test-files").open(tmp_path / "ws", None, "f") as s:
        s.write_file("/workspace/blob.bin", data)
        assert s.read_file("/workspace/blob.bin") == data


MARK = """
import os, sys
marked = []
for path in ("/workspace", "/tmp", "/dev/shm", "/tmp/rsi-out", "/tmp/rsi-out/seed-0"):
    try:
        os.setxattr(path, "user.table", b"x" * 3000)
        marked.append(path)
        os.utime(path, ns=(4_102_444_800_123_456_789, 4_102_444_800_123_456_789))  # 2100, to the ns
    except OSError:
        pass  # a root-owned sticky /tmp (Docker) takes none
print(" ".join(marked))
"""
LIST = """
import os
places = ("/workspace", "/tmp", "/dev/shm", "/tmp/rsi-out", "/tmp/rsi-out/seed-0")
print(sorted((p, n) for p in places for n in os.listxattr(p) if n.startswith("user."))
      + [p for p in places if os.stat(p).st_atime_ns == 4_102_444_800_123_456_789])
"""


@pytest.mark.parametrize(
    "backend_name",
    [pytest.param("bwrap", marks=pytest.mark.bwrap), pytest.param("docker", marks=pytest.mark.docker)],
)
def test_a_reset_leaves_no_extended_attribute_behind(
    backend_name: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The mount roots, the kept directory and its parents survive a reset as the same inodes: data
    kept in their extended attributes or times must not reach the next phase."""
    if backend_name == "docker":
        request.getfixturevalue("docker_client")
        backend: DockerBackend | BwrapBackend = DockerBackend(
            SandboxConfig(), image=IMAGE, run_id="test-xattr"
        )
    else:
        backend = BwrapBackend(SandboxConfig(), image="", run_id="test-xattr")
    (tmp_path / "ws").mkdir()
    with backend.open(tmp_path / "ws", None, "xattr") as session:
        session.write_file("/tmp/mark.py", MARK.encode())
        session.write_file("/tmp/list.py", LIST.encode())
        made = session.exec("mkdir -p /tmp/rsi-out/seed-0 && python3 /tmp/mark.py", 30)
        assert made.exit_code == 0 and "/workspace" in made.output, made.output
        session.reset("/tmp/rsi-out/seed-0")
        session.write_file("/tmp/list.py", LIST.encode())
        left = session.exec("python3 /tmp/list.py", 30)
        assert left.exit_code == 0 and left.output.strip() == "[]", left.output
