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
