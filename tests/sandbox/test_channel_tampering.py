"""The harness's channel into a sandbox cannot be driven by the candidate, on both backends.

The driver shell and the candidate run as one user, and the processes that hold the channel's
pipes (the driver, the sandbox's init) outlive every command. Code of the candidate that could open
those pipes through /proc could write into them: requests for the driver (a reset that wipes
nothing) and records for the host (a forged exit code, forged times). Both processes are
non-dumpable (their /proc entries are closed to the candidate); behind that, requests and records
carry the session's token, and any byte outside a record is refused by the host (sandbox/channel.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.base import SandboxConfig, Session
from sandbox.bwrap_backend import BwrapBackend
from sandbox.docker_backend import DockerBackend
from tests.conftest import IMAGE
from tests.redteam.round_three import INTO_PIPES, RESET_NOTHING

# `data` (a file) into every pipe end another process of the sandbox holds for reading ("r": what
# the driver reads requests from) or for writing ("w": what carries records to the host).
# The runtime audit's pipe (sandbox/audit) is left out: every process of a command holds it, the
# probe's own too, and what is written there is only more of the record (a line the hook did not
# write is a finding of its own, sandbox/runtime_audit.py).
INTO_EVERY_PIPE = INTO_PIPES + (
    "import os, sys\n\n"
    "own = set()\n"
    "for fd in os.listdir('/proc/self/fd'):\n"
    "    try:\n"
    "        own.add(os.readlink(f'/proc/self/fd/{fd}'))\n"
    "    except OSError:\n"
    "        pass\n"
    "reached = _into_pipes(open(sys.argv[1], 'rb').read(), sys.argv[2])\n"
    "def link(end):\n"
    "    pid, fd = end.split('/')\n"
    "    return os.readlink(f'/proc/{pid}/fd/{fd}')\n"
    "print('reached', [end for end in reached if link(end) not in own])\n"
)
INJECTED = RESET_NOTHING + b"touch /tmp/injected\n__RSI_BEGIN__\n__RSI_END__\n"
FORGED = b"\n\036RSI end 1 0 0.0 0.1 0 0 0 0\n"
DRIVER_SECRETS = """
import os
opened = []
for pid in [p for p in os.listdir("/proc") if p.isdigit()]:
    try:
        if not open(f"/proc/{pid}/cmdline", "rb").read().startswith(b"/tmp/.rsi-sh"):
            continue
    except OSError:
        continue
    print("driver", pid)
    for entry in ["environ", "mem", *[f"fd/{fd}" for fd in range(64)]]:
        try:
            os.close(os.open(f"/proc/{pid}/{entry}", os.O_RDONLY))
            opened.append(f"{pid}/{entry}")
        except OSError:
            pass
print("opened", opened)
"""


def sessions(backend: str, tmp_path: Path) -> Iterator[Session]:
    (tmp_path / "ws").mkdir(exist_ok=True)
    if backend == "docker":
        made = DockerBackend(SandboxConfig(), image=IMAGE, run_id="test-channel")
    else:
        made = BwrapBackend(SandboxConfig(), image="", run_id="test-channel")
    with made.open(tmp_path / "ws", None, "channel") as session:
        session.write_file("/workspace/pipes.py", INTO_EVERY_PIPE.encode())
        session.write_file("/workspace/secrets.py", DRIVER_SECRETS.encode())
        yield session


BACKENDS = [pytest.param("bwrap", marks=pytest.mark.bwrap), pytest.param("docker", marks=pytest.mark.docker)]


@pytest.fixture(params=BACKENDS)
def session(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Session]:
    if request.param == "docker":
        request.getfixturevalue("docker_client")
    yield from sessions(request.param, tmp_path)


def test_the_driver_s_descriptors_memory_and_environment_are_closed_to_the_candidate(
    session: Session,
) -> None:
    result = session.exec("python secrets.py", 60)
    assert result.exit_code == 0, result.output
    assert "driver" in result.output and "opened []" in result.output, result.output


@pytest.mark.parametrize(
    "payload",
    [INJECTED, FORGED, b"\0" * 65536, b"\n" * 65536],
    ids=["request", "forged-record", "zeros", "newlines"],
)
def test_no_process_of_the_sandbox_holds_a_channel_pipe_the_candidate_can_open(
    session: Session, payload: bytes
) -> None:
    """The channel's pipes are held by the driver and by the sandbox's init, and both are
    non-dumpable (sandbox/init.py): code of the candidate finds no end to write a request for the
    driver or a record for the host into. (Before, bubblewrap's reaper and docker-init held them
    open to the candidate: a request that made the reset wipe nothing, a forged exit code. The
    session token that refused those stays as a second wall.) The real reset still wipes, and the
    session goes on."""
    session.write_file("/workspace/payload", payload)
    for end in ("r", "w"):
        result = session.exec(f"python pipes.py payload {end}", 60)
        assert result.exit_code == 0 and "reached []" in result.output, result.output
    session.exec("echo left > /tmp/left-behind", 30)
    session.reset()
    after = session.exec("ls -a /tmp", 30)
    assert after.exit_code == 0 and "injected" not in after.output and "left-behind" not in after.output
