"""The kernel's key stores are per host user, not per namespace: a sandbox must reach none of them,
neither to read the harness user's keys nor to leave a trained model there for a later phase (a
warm start that no phase's budget counts). Both backends refuse the calls (Docker's default seccomp
profile; bwrap's filter in sandbox/seccomp.py)."""

from __future__ import annotations

import ctypes
import errno
import json
import platform
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.base import SandboxConfig
from sandbox.bwrap_backend import BwrapBackend
from sandbox.docker_backend import DockerBackend
from tests.conftest import IMAGE

ADD_KEY, KEYCTL = {"x86_64": (248, 250), "aarch64": (217, 219)}[platform.machine()]
USER_KEYRING, SEARCH, READ, INVALIDATE = -4, 10, 11, 21

PROBE = f"""
import ctypes, json, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
def call(*args):
    value = libc.syscall(*args)
    return value if value >= 0 else -ctypes.get_errno()
wanted = sys.argv[1].encode()
found = call({KEYCTL}, {SEARCH}, ctypes.c_long({USER_KEYRING}), b"user", wanted, ctypes.c_long(0))
payload = ""
if found > 0:
    buffer = ctypes.create_string_buffer(256)
    size = call({KEYCTL}, {READ}, ctypes.c_long(found), buffer, ctypes.c_long(256))
    payload = buffer.raw[: max(size, 0)].decode(errors="replace")
added = call({ADD_KEY}, b"user", b"left-for-later", b"weights", ctypes.c_size_t(7), ctypes.c_long({USER_KEYRING}))
print(json.dumps({{"found": found, "payload": payload, "added": added}}))
"""


def _libc_call(*args: object) -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    value = int(libc.syscall(*args))
    return value if value >= 0 else -ctypes.get_errno()


@pytest.fixture
def host_key() -> Iterator[tuple[str, str]]:
    """A key with a secret payload in this (harness) user's keyring, removed afterwards."""
    description, payload = f"rsi-host-{secrets.token_hex(4)}", f"secret-{secrets.token_hex(8)}"
    key = _libc_call(
        ADD_KEY,
        b"user",
        description.encode(),
        payload.encode(),
        ctypes.c_size_t(len(payload)),
        ctypes.c_long(USER_KEYRING),
    )
    if key < 0:
        pytest.fail(f"the host cannot add a key to its own keyring (errno {-key}): the probe proves nothing")
    try:
        yield description, payload
    finally:
        _libc_call(KEYCTL, INVALIDATE, ctypes.c_long(key))


def probe(result: str) -> dict[str, object]:
    return json.loads(result.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_the_probe_finds_the_key_outside_a_sandbox(host_key: tuple[str, str]) -> None:
    """Without a sandbox the same probe reads the key: what the sandboxes refuse is real."""
    run = subprocess.run(
        [sys.executable, "-c", PROBE, host_key[0]], capture_output=True, text=True, check=True
    )
    seen = probe(run.stdout)
    assert seen["payload"] == host_key[1], seen
    _libc_call(KEYCTL, INVALIDATE, ctypes.c_long(int(seen["added"])))  # type: ignore[call-overload]


def _assert_refused(seen: dict[str, object], host_key: tuple[str, str]) -> None:
    assert host_key[1] not in str(seen["payload"]), seen
    assert seen["found"] == -errno.EPERM and seen["added"] == -errno.EPERM, seen


@pytest.mark.bwrap
def test_bwrap_sandboxes_reach_no_kernel_key_store(host_key: tuple[str, str], tmp_path: Path) -> None:
    (tmp_path / "ws").mkdir()
    backend = BwrapBackend(SandboxConfig(), image="", run_id="test-keys")
    for label in ("first", "second"):  # the second must not find what the first tried to leave
        with backend.open(tmp_path / "ws", None, label) as session:
            session.write_file("/workspace/probe.py", PROBE.encode())
            result = session.exec(f"python probe.py {host_key[0]}", 60)
        assert result.exit_code == 0, result.output
        _assert_refused(probe(result.output), host_key)


@pytest.mark.docker
def test_docker_sandboxes_reach_no_kernel_key_store(
    docker_client,  # type: ignore[no-untyped-def]
    host_key: tuple[str, str],
    tmp_path: Path,
) -> None:
    (tmp_path / "ws").mkdir()
    with DockerBackend(SandboxConfig(), image=IMAGE, run_id="test-keys").open(
        tmp_path / "ws", None, "keys"
    ) as session:
        session.write_file("/workspace/probe.py", PROBE.encode())
        result = session.exec(f"python probe.py {host_key[0]}", 60)
    assert result.exit_code == 0, result.output
    _assert_refused(probe(result.output), host_key)
