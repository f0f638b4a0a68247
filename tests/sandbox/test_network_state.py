"""A sandbox's network namespace outlives every reset between its phases: a TCP connection over
loopback leaves its socket in TIME_WAIT for a minute with no process holding it, and the counters of
the interface and the protocols keep what was sent. A phase could leave a trained model there (in
the addresses and ports of a few hundred connections) for the next. So a sandbox without network
may open no socket but a Unix one, on both backends (sandbox/seccomp.py): nothing is sent, nothing
stays. Real bwrap, real Docker; the same probe outside any sandbox shows what is refused is real."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import BOTH_BACKENDS, probe_runs

# Every way this probe knows to open an IP socket: the socket module, its C module, and the system
# call itself through libc; then a loopback TCP connection closed from the client side (TIME_WAIT).
PROBE = """
import ctypes, errno, json, socket, _socket
AF_INET, AF_INET6, SOCK_STREAM, SOCK_DGRAM = 2, 10, 1, 2
tried = {}

def attempt(name, make):
    try:
        made = make()
        tried[name] = "opened"
        return made
    except OSError as exc:
        tried[name] = errno.errorcode.get(exc.errno, str(exc.errno))
        return None

libc = ctypes.CDLL(None, use_errno=True)

def raw_socket(family, kind):
    fd = libc.socket(family, kind, 0)
    if fd < 0:
        code = ctypes.get_errno()
        raise OSError(code, "socket")
    return fd

attempt("socket.socket(AF_INET, SOCK_STREAM)", lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM))
attempt("socket.socket(AF_INET6, SOCK_DGRAM)", lambda: socket.socket(socket.AF_INET6, socket.SOCK_DGRAM))
attempt("_socket.socket(AF_INET, SOCK_DGRAM)", lambda: _socket.socket(AF_INET, SOCK_DGRAM))
attempt("libc socket(AF_INET, SOCK_STREAM)", lambda: raw_socket(AF_INET, SOCK_STREAM))
attempt("socketpair(AF_INET)", lambda: socket.socketpair(socket.AF_INET))
unix = attempt("socketpair(AF_UNIX)", lambda: socket.socketpair(socket.AF_UNIX))
if unix:
    unix[0].sendall(b"ok")
    tried["unix pair carries data"] = unix[1].recv(2) == b"ok"
server = attempt("listen on 127.0.0.1", lambda: socket.create_server(("127.0.0.1", 0)))
if server:
    client = socket.create_connection(server.getsockname())
    accepted, _ = server.accept()
    client.close()  # the side that closes first keeps the socket in TIME_WAIT
    accepted.close()
    server.close()
    tried["connected over loopback"] = True
entries = {}
for table in ("tcp", "tcp6", "udp", "udp6"):
    try:
        with open("/proc/net/" + table) as handle:
            entries[table] = len(handle.read().splitlines()[1:])
    except OSError:
        entries[table] = None
print(json.dumps({"tried": tried, "entries": entries}))
"""


def outcome(output: str) -> dict[str, dict[str, object]]:
    return json.loads(output.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_the_probe_opens_sockets_outside_a_sandbox() -> None:
    run = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=60
    )
    tried = outcome(run.stdout)["tried"]
    assert tried["socket.socket(AF_INET, SOCK_STREAM)"] == "opened", tried
    assert tried["libc socket(AF_INET, SOCK_STREAM)"] == "opened", tried
    assert tried.get("connected over loopback") is True, tried


def _assert_only_unix_sockets(
    first: dict[str, dict[str, object]], second: dict[str, dict[str, object]]
) -> None:
    tried = first["tried"]
    refused = {name: result for name, result in tried.items() if "AF_UNIX" not in name and "unix" not in name}
    assert refused and all(result == "EPERM" for result in refused.values()), tried
    assert tried["socketpair(AF_UNIX)"] == "opened" and tried["unix pair carries data"] is True, tried
    # The next phase finds no socket the first one left behind, of any state.
    assert all(count in (0, None) for count in second["entries"].values()), second


@pytest.mark.parametrize("backend_name", BOTH_BACKENDS)
def test_a_sandbox_opens_no_socket_but_a_unix_one(
    backend_name: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    first, second = probe_runs(backend_name, request, tmp_path, PROBE)
    assert first.exit_code == 0 and second.exit_code == 0, (first.output, second.output)
    _assert_only_unix_sockets(outcome(first.output), outcome(second.output))
