"""A sandbox's PID 1 outlives every reset between phases and runs as the sandbox's own user: it is
the harness's init (sandbox/init.py), which no process of the sandbox may read, write or end.
Before, docker-init and bubblewrap's reaper were dumpable: a phase wrote a trained model into PID 1's
memory through /proc/1/mem and the next phase read it back (red team, round ten). Real Docker and
real bwrap; the same probe against a dumpable process of the same user shows the refusal is real."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sandbox.bwrap_backend import BwrapBackend
from sandbox.docker_backend import DockerBackend
from tests.conftest import BOTH_BACKENDS, sandbox_backend

# Opens PID 1's memory, maps and environment, and, as a control, those of a dumpable process of
# the same user it starts itself; then tries to end PID 1 from inside.
PROBE = """
import json, os, signal, subprocess, sys, time
def reach(pid):
    found = {}
    for entry in ("mem", "maps", "environ"):
        try:
            with open(f"/proc/{pid}/{entry}", "rb"):
                found[entry] = "opened"
        except OSError as exc:
            found[entry] = type(exc).__name__
    return found
helper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
time.sleep(0.2)
report = {"init": reach(1), "dumpable": reach(helper.pid)}
helper.kill()
for number in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL, signal.SIGSTOP):
    try:
        os.kill(1, number)
    except OSError as exc:
        report[number.name] = type(exc).__name__
print(json.dumps(report))
"""


def _backend(name: str, request: pytest.FixtureRequest) -> DockerBackend | BwrapBackend:
    return sandbox_backend(name, request, "test-init")  # type: ignore[no-any-return]


@pytest.mark.parametrize("backend_name", BOTH_BACKENDS)
def test_no_process_of_the_sandbox_reaches_its_init(
    backend_name: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    (tmp_path / "ws").mkdir()
    with _backend(backend_name, request).open(tmp_path / "ws", None, "init") as session:
        session.write_file("/tmp/probe.py", PROBE.encode())
        # Unaudited: the probe starts a helper process, which the runtime audit's no-exec filter refuses.
        first = session.exec("unset RSI_AUDIT_FD; python3 /tmp/probe.py", 60)
        session.reset()
        # The sandbox lives on after every signal its processes sent PID 1, and its init still reaps.
        after = session.exec("(sleep 30 &); cat /proc/1/status | head -1", 30)
        session.reset()
        left = session.exec("ls /proc | grep -c '^[0-9]'", 30)
    assert first.exit_code == 0, first.output
    report = json.loads(first.output.strip().splitlines()[-1])
    assert report["dumpable"] == {"mem": "opened", "maps": "opened", "environ": "opened"}, report
    assert set(report["init"].values()) == {"PermissionError"}, report
    assert after.exit_code == 0 and "python3" in after.output, after.output
    # init, the driver, and the command's own shell, timeout, ls and grep: the killed sleep was reaped.
    assert left.exit_code == 0 and int(left.output.strip()) <= 6, left.output


@pytest.mark.parametrize("backend_name", BOTH_BACKENDS)
def test_the_reset_check_s_pipes_are_the_driver_s_alone(
    backend_name: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The init checks what survives each reset when the driver asks over fds 7 and 8: no command
    of the candidate holds them, so none can forge a request or read an answer."""
    (tmp_path / "ws").mkdir()
    with _backend(backend_name, request).open(tmp_path / "ws", None, "init-pipes") as session:
        own = session.exec("ls /proc/self/fd", 30)
        forged = session.exec("echo 0 >&7; echo wrote=$?; read answer <&8; echo read=$?", 30)
        session.exec("mkdir -p /tmp/kept && echo x > /tmp/kept/model && echo y > /tmp/gone", 30)
        session.reset("/tmp/kept")
        after = session.exec("ls -A /tmp; cat /tmp/kept/model", 30)
        session.reset()
        empty = session.exec("ls -A /tmp /workspace | grep -v '^/' | sort | tr '\\n' ' '", 30)
    # ls's own directory: 3; the runtime audit's pipe, whose writing end every command holds (what
    # is written there only adds to the record, sandbox/runtime_audit.py): 9.
    assert sorted(own.output.split()) == ["0", "1", "2", "3", "9"], own.output
    assert "wrote=0" not in forged.output and "read=0" not in forged.output, forged.output
    assert "gone" not in after.output and "x" in after.output, after.output
    assert "kept" not in empty.output, empty.output


@pytest.mark.parametrize("backend_name", BOTH_BACKENDS)
def test_a_mount_root_made_unreadable_keeps_nothing_past_a_reset(
    backend_name: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """A phase that hides /tmp's entries (write and search but no read) fails the reset instead of
    keeping them, and a mode changed as a mark is set back (red team round thirteen: 3 MB kept in
    an unlistable /tmp past every reset, held-out inputs among it)."""
    from core.errors import SandboxError

    (tmp_path / "ws").mkdir()
    with _backend(backend_name, request).open(tmp_path / "ws", None, "init-modes") as session:
        before = session.exec("stat -c %a /tmp /workspace", 30).output.split()
        session.exec("chmod 0751 /workspace", 30)
        session.reset()
        marked = session.exec("stat -c %a /tmp /workspace", 30).output.split()
        hid = session.exec("echo kept > /tmp/.shelf && chmod 1300 /tmp && echo hidden", 30)
        if "hidden" in hid.output:  # the sandbox's user owns /tmp's mount (bwrap)
            with pytest.raises(SandboxError, match=r"left after the reset|could not be listed"):
                session.reset()
        else:  # it does not (Docker's tmpfs is root's): nothing is hidden, all is cleared
            session.reset()
            assert "kept" not in session.exec("cat /tmp/.shelf", 30).output
    assert marked == before, (before, marked)
