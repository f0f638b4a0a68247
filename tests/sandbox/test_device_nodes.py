"""A sandbox's device nodes (/dev/null, /dev/zero, /dev/urandom…) work, and no phase can change them.

bwrap binds the host's nodes into the sandbox, and its user namespace maps the sandbox's user to
the harness's: run as root, the sandbox's user owned the host's /dev/null and could set its times,
mode and owner on the host (red team, round eleven: its times carried data from phase to phase and
sandbox to sandbox, and dated the host's /dev/null 1970). A root harness now gives each bwrap
sandbox its own nodes, owned by nobody; Docker's are the container's own, owned by its root. Real
bwrap, real Docker; the host's node is compared before and after.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from sandbox.bwrap_backend import DEVICES_PREFIX
from tests.conftest import BOTH_BACKENDS, probe_runs

PROBE = """
import errno, json, os
nodes = ("null", "zero", "full", "random", "urandom")
tried = {}
def attempt(name, act):
    try:
        act()
        tried[name] = "done"
    except OSError as exc:
        tried[name] = errno.errorcode.get(exc.errno, str(exc.errno))
for node in nodes:
    path = "/dev/" + node
    attempt("utime " + node, lambda: os.utime(path, ns=(86400 * 10**9, 86400 * 10**9)))
    # The mode it already has: a regression must not break the host's node while the test reports it.
    attempt("chmod " + node, lambda: os.chmod(path, 0o666))
    attempt("chown " + node, lambda: os.chown(path, os.getuid(), os.getgid()))
with open("/dev/null", "w") as sink:
    sink.write("works")
with open("/dev/urandom", "rb") as source:
    random_bytes = len(source.read(16))
with open("/dev/zero", "rb") as source:
    zeros = source.read(4) == bytes(4)
before_touch = os.stat("/dev/null").st_mtime_ns
os.utime("/dev/null")  # "now": allowed wherever the node is writable
print(json.dumps({"tried": tried, "random": random_bytes, "zeros": zeros, "before": before_touch,
                  "modes": {n: os.stat("/dev/" + n).st_mode & 0o777 for n in nodes}}))
"""


def outcome(output: str) -> dict[str, object]:
    return json.loads(output.strip().splitlines()[-1])  # type: ignore[no-any-return]


def host_view(path: str = "/dev/null") -> tuple[int, int, int, int]:
    info = os.stat(path)
    return info.st_mode, info.st_uid, info.st_gid, info.st_mtime_ns


@pytest.mark.parametrize("backend_name", BOTH_BACKENDS)
def test_no_phase_changes_a_device_node_and_they_still_work(
    backend_name: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    host_before = host_view()
    first, second = probe_runs(backend_name, request, tmp_path, PROBE)
    assert first.exit_code == 0 and second.exit_code == 0, (first.output, second.output)
    one, two = outcome(first.output), outcome(second.output)
    tried = one["tried"]
    assert isinstance(tried, dict)
    assert not [name for name, result in tried.items() if result == "done"], tried
    assert one["random"] == 16 and one["zeros"] is True
    assert one["modes"] == two["modes"] and set(one["modes"].values()) == {0o666}  # type: ignore[union-attr]
    if backend_name == "bwrap":
        # The host's own node is untouched, whatever the phase did to the sandbox's.
        assert host_view()[:3] == host_before[:3]
        if os.geteuid() == 0:
            assert host_view() == host_before
            # The mark a phase can leave (a write's "now") is set back before the next phase.
            assert two["before"] == one["before"]
            assert not list(Path("/dev").glob(f"{DEVICES_PREFIX}{os.getpid()}-*")), "left behind"
