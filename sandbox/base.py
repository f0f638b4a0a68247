"""The isolation contract every backend implements, and its hardening settings.

A backend opens a `Session`: one fresh, isolated environment for one candidate (or one agent's
exploration), never reused. Inside it the candidate's copy of the tree is at /workspace (writable,
size-limited), the staged source at /src (read-only), harness-provided inputs at /heldout
(read-only) and, for a bootstrapping target, its current teacher at /teacher (read-only); /tmp is
scratch. Commands run as an unprivileged user with no network.

    with backend.open(workspace=stage, heldout=inputs_dir, label="gen-3") as session:
        result = session.exec("python train.py --seed 0 --out /tmp/out", timeout_s=30)
        data = session.read_file("/tmp/out/predictions.npy")
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Protocol

from pydantic import BaseModel, Field

from core.contracts import Accounting
from core.errors import SandboxError

SANDBOX_LABEL = "rsi-sandbox"
WORKDIR = "/workspace"
SANDBOX_PATH = "/usr/local/bin:/usr/bin:/bin"
OUTPUT_TAIL_CHARS = 4000


class SandboxLost(SandboxError):
    """The machine a session ran on was lost mid-session (a Ray node died or stopped answering):
    nothing it measured counts; the evaluation runs again from the start elsewhere."""


class SandboxConfig(BaseModel):
    """Isolation settings. Every default is the hardened choice; relax one only on purpose."""

    image: str | None = None
    """Container image; None takes the target's rsi.toml [sandbox].image."""
    network_disabled: bool = True
    """No network at all inside the sandbox (network_mode=none / no network namespace access)."""
    read_only_root: bool = True
    """The root filesystem is read-only; only /workspace and /tmp (tmpfs) are writable."""
    drop_all_capabilities: bool = True
    """Drop every Linux capability."""
    no_new_privileges: bool = True
    """Forbid privilege gain through setuid binaries."""
    user: str = "1000:1000"
    """Unprivileged uid:gid that runs the candidate's commands."""
    memory_mb: int = Field(default=1024, gt=16)
    """Memory limit of the whole sandbox (no swap beyond it)."""
    cpus: float = Field(default=1.0, gt=0)
    """CPU quota in cores."""
    pids_limit: int = Field(default=128, gt=8)
    """Maximum number of processes and threads."""
    workspace_mb: int = Field(default=256, gt=1)
    """Size of the writable workspace (tmpfs): the candidate's disk quota."""
    tmp_mb: int = Field(default=256, gt=1)
    """Size of the /tmp scratch (tmpfs)."""
    max_lifetime_s: int = Field(default=1800, gt=0)
    """Hard upper bound on a sandbox's life, whatever its commands do."""
    teacher_dir: Path | None = None
    """A harness-owned directory bound read-only at /teacher in every sandbox: the current teacher
    of a bootstrapping target (sandbox.teacher); None = no /teacher."""
    cgroup_parent: Path | None = None
    """cgroup v2 only: a delegated cgroup (its subtree_control enabling memory, pids and cpu) under
    which the bwrap backend creates each sandbox's cgroup; None = this process's own cgroup, when
    it delegates those controllers."""
    bwrap_python: Path | None = None
    """Python environment (a virtualenv or installation prefix) the bwrap backend runs; None = the
    one running rsi. It needs the target's dependencies (numpy, pytest for the bundled target)."""


class ExecResult(BaseModel):
    exit_code: int
    output: str
    """Combined stdout and stderr (the full text; callers keep a tail in events)."""
    duration_s: float
    timed_out: bool = False
    disk_full: bool = False
    """A writable filesystem of the sandbox (/workspace or /tmp) was full when the command ended."""
    log_bytes: int | None = None
    """Full size of the command's output (`output` keeps at most the driver's log limit)."""
    disk_bytes: int | None = None
    """Bytes in use on /workspace, /tmp and /dev/shm when the command ended."""
    audit: str | None = None
    """What the runtime audit hooks of the command's Python processes wrote, one JSON object per
    line (sandbox/audit; judged by sandbox/runtime_audit.py); None when the sandbox gave no answer."""


class UsageSample(BaseModel):
    """Resource counters of a session, read from the kernel or the engine (not from the candidate).

    CPU seconds, OOM kills and pid-limit hits are cumulative over the session; the peak memory is
    the peak since the last `Session.begin_phase()` when `phase_peak` is True, else over the
    session. None means the backend cannot read that counter here: unmeasured, never 0."""

    accounting: Accounting = "rlimit-only"
    """Where the counters come from (see core.contracts.Accounting)."""
    cpu_s: float | None = None
    peak_memory_mb: float | None = None
    phase_peak: bool = False
    """True when peak_memory_mb covers only the current phase (the counter was reset at its start)."""
    oom_kills: int | None = None
    pids_limit_hits: int | None = None


class Session(Protocol):
    backend: str

    def exec(self, command: str, timeout_s: float, cwd: str = WORKDIR) -> ExecResult: ...

    def read_file(self, path: str, max_bytes: int = 64 * 1024 * 1024) -> bytes: ...

    def write_file(self, path: str, data: bytes) -> None: ...

    def usage(self) -> UsageSample: ...

    def task_pids(self) -> list[int] | None:
        """Host pids of the sandbox's processes (for sampling their threads' states); None when
        this host cannot see them (a remote engine, no cgroup of its own)."""
        ...

    def begin_phase(self) -> None:
        """Reset the per-phase counters (peak memory) where the kernel allows it."""
        ...

    def reset(self, keep: str | None = None) -> None:
        """Return the sandbox to its state at start: every process killed, /workspace the staged
        tree again, /tmp and the shared-memory places emptied; `keep`, a directory under /tmp, is
        carried over. Raises SandboxError if anything written earlier survives."""
        ...

    def size_of(self, path: str) -> int | None:
        """Bytes under a path in the sandbox (apparent size), None if it does not exist."""
        ...

    def close(self) -> None: ...

    def __enter__(self) -> Session: ...

    def __exit__(self, *exc: object) -> None: ...


class Backend(Protocol):
    name: str
    config: SandboxConfig

    serves_labels: bool
    """Whether a session can reach a Unix socket of the harness's host (`labels` of `open`)."""

    def open(
        self,
        workspace: Path,
        heldout: Path | None,
        label: str,
        user: str | None = None,
        labels: Path | None = None,
    ) -> Session:
        """A fresh session; `user` ("uid:gid") overrides SandboxConfig.user for this one (e.g. a
        disguised re-run under another uid); `labels`, a host directory bound read-only at
        `sandbox.label_server.LABELS_MOUNT` (the relabelled control's label server)."""
        ...

    def image_id(self) -> str | None:
        """The content id of what every sandbox runs (None: the image is not there)."""
        ...

    def require_image(self) -> str:
        """image_id(), or an error that says how to get the image."""
        ...

    def remove_orphans(self) -> int:
        """Remove sandboxes whose owning process on this host is gone (a crashed run's leftovers)."""
        ...

    def run_sandboxes(self) -> int:
        """How many sandboxes of this backend's run the engine still holds."""
        ...

    def remove_run_sandboxes(self) -> int:
        """Remove every sandbox of this backend's run the engine still holds. Called when no session
        of the run can be open: an interruption can cut a sandbox's creation after the engine made
        it but before the backend knew of it."""
        ...

    def trusted_pythons(self) -> tuple[str, ...]:
        """Absolute paths, inside the sandbox, of the interpreter the test gate runs (the first that
        exists wins); none of them is writable by the candidate."""
        ...


WRITE_CHUNK_BYTES = 48 * 1024


def write_file_via_exec(session: Session, path: str, data: bytes) -> None:
    """Write a file into a sandbox through its command channel (base64 in chunks): no mounts needed."""
    import base64
    import shlex

    target = shlex.quote(path)
    chunks = [data[i : i + WRITE_CHUNK_BYTES] for i in range(0, len(data), WRITE_CHUNK_BYTES)] or [b""]
    for index, chunk in enumerate(chunks):
        encoded = base64.b64encode(chunk).decode("ascii")
        redirect = ">" if index == 0 else ">>"
        result = session.exec(f"printf %s '{encoded}' | base64 -d {redirect} {target}", timeout_s=30, cwd="/")
        if result.exit_code != 0:
            raise SandboxError(f"could not write {path} in the sandbox: {result.output.strip()[:300]}")


def owner_labels(run_id: str, label: str) -> dict[str, str]:
    """Labels that let any later process find, attribute and reap a sandbox."""
    return {
        SANDBOX_LABEL: "1",
        "rsi.run_id": run_id,
        "rsi.candidate": label,
        "rsi.host": socket.gethostname(),
        "rsi.pid": str(os.getpid()),
    }


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def tail(text: str, limit: int = OUTPUT_TAIL_CHARS) -> str:
    return text if len(text) <= limit else "…" + text[-limit:]
