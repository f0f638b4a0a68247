"""Nothing of the host is writable from a sandbox: only its own scratch space is.

Under a root harness, bwrap's user namespace maps the sandbox's user to the host's root, so every
host object owned by root that the sandbox can reach is, to the kernel, the sandbox's own: the
host's device nodes were (round eleven), and 763 of the host kernel's settings under /proc/sys were,
`kernel.core_pattern` among them (round twelve). The probe lists every path a process of the
sandbox may write, outside the places that are the sandbox's own, on both backends; and writes a
kernel setting back to the value it has (harmless where it succeeds, which is the failure).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import BOTH_BACKENDS, probe_runs

PROBE = r"""
import errno, json, os
OWN = ("/tmp", "/workspace", "/dev/shm", "/dev/mqueue", "/dev/pts", "/proc/self", "/proc/thread-self")
writable = []
NULL = os.stat("/dev/null").st_rdev
def visit(top, deep=True):
    for root, dirs, files in os.walk(top):
        if root == "/proc":
            dirs[:] = [d for d in dirs if not d.isdigit()]
        dirs[:] = [d for d in dirs if not os.path.join(root, d).startswith(OWN)]
        for name in dirs + files:
            path = os.path.join(root, name)
            if os.path.islink(path) or not os.access(path, os.W_OK):
                continue
            try:
                if os.stat(path).st_rdev == NULL and path != "/dev/null":
                    continue  # a path masked with /dev/null (Docker masks /proc/keys so)
            except OSError:
                pass
            writable.append(path)
        if not deep:
            dirs[:] = []
for top in ("/proc", "/sys", "/dev", "/etc"):
    if os.path.isdir(top):
        visit(top)
visit("/", deep=False)
setting = "/proc/sys/fs/lease-break-time"
try:
    value = open(setting).read()
    with open(setting, "w") as handle:
        handle.write(value)
    wrote = "done"
except OSError as exc:
    wrote = errno.errorcode.get(exc.errno, str(exc.errno))
print(json.dumps({"writable": sorted(set(writable) - {p for p in writable if p.startswith(OWN)}),
                  "setting": wrote}))
"""

ALLOWED = {
    # The device nodes every process needs (the sandbox's own under a root bwrap harness, the
    # container's own on Docker): their mode lets anyone write them, nothing more.
    *(f"/dev/{n}" for n in ("null", "zero", "full", "random", "urandom", "tty", "ptmx")),
    # Capability-checked on write (CAP_SYS_ADMIN), which no sandbox has; and pressure triggers,
    # bound to the descriptor that sets them.
    "/proc/mtrr",
    "/proc/pressure/cpu",
    "/proc/pressure/io",
    "/proc/pressure/memory",
    "/proc/pressure/irq",
}


@pytest.mark.parametrize("backend_name", BOTH_BACKENDS)
def test_a_sandbox_can_write_nothing_of_the_host(
    backend_name: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    (result,) = probe_runs(backend_name, request, tmp_path, PROBE, runs=1, timeout_s=120)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output.strip().splitlines()[-1])
    assert report["setting"] != "done", report
    assert set(report["writable"]) - ALLOWED == set(), sorted(set(report["writable"]) - ALLOWED)
