"""The bubblewrap backend: the same Session contract with no container engine, for light hosts.

Each session is one `bwrap` process running the harness driver (sandbox/channel.py) over its pipes,
so a command costs a fork, not an engine call. The sandbox gets:

- new user, pid, network, ipc and uts namespaces (the network one unless
  SandboxConfig.network_disabled is False), no nested user namespaces, no capabilities, a new
  session (no terminal injection), death with the parent, an empty environment (`--clearenv`);
- a read-only root: the host's /usr (and /bin, /lib… as the host lays them out), the dynamic
  loader's cache and the Python environment below, nothing else of the host; a size-limited tmpfs
  at /workspace (a copy of the staged tree, made by the driver) and at /tmp; the staged tree at
  /src and the held-out inputs at /heldout, read-only; `--remount-ro /` at the end;
- limits: when the host lets this process create cgroups (root on cgroup v1), a memory (no swap),
  pids and CPU-quota cgroup per session whose counters also give CPU seconds, peak memory, OOM kills
  and pid-limit hits; otherwise rlimits only (address space for memory, no pid limit). Always
  rlimits for file size, CPU seconds and core dumps.

Python: there is no image, so the sandbox runs the interpreter environment that runs rsi
(`sys.prefix`, usually the project's virtualenv, and its base installation), bound read-only at
the same paths and first on PATH. `pip install -e ".[dev]"` puts numpy and pytest there; set
SandboxConfig.bwrap_python to use another environment. `rsi doctor` checks both.
"""

from __future__ import annotations

import contextlib
import os
import resource
import secrets
import select
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from rsi.errors import SandboxError
from sandbox.base import (
    SANDBOX_PATH,
    WORKDIR,
    SandboxConfig,
    UsageSample,
    pid_alive,
)
from sandbox.channel import DRIVER_ARGV, ChannelSession, DriverChannel

CGROUP_ROOT = Path("/sys/fs/cgroup")
CGROUP_PREFIX = "rsi-bwrap-"
CONTROLLERS = ("memory", "pids", "cpuacct", "cpu")
SYSTEM_DIRS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
ETC_FILES = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/alternatives", "/etc/localtime")
BWRAP_HELP = "Install bubblewrap (`apt-get install bubblewrap`) and check with `rsi doctor`."


def bwrap_path() -> str:
    found = shutil.which("bwrap")
    if found is None:
        raise SandboxError(f"the bwrap backend needs `bwrap`, which is not on PATH. {BWRAP_HELP}")
    return found


def python_prefixes(config: SandboxConfig) -> tuple[Path, list[Path]]:
    """(environment to put first on PATH, directories to bind read-only) for the sandbox's Python."""
    prefix = Path(config.bwrap_python or sys.prefix).resolve()
    binds = {prefix}
    if config.bwrap_python is None:
        binds.add(Path(sys.base_prefix).resolve())
    else:
        cfg = prefix / "pyvenv.cfg"
        if cfg.is_file():
            for line in cfg.read_text().splitlines():
                key, _, value = line.partition("=")
                if key.strip() == "home":
                    binds.add(Path(value.strip()).resolve().parent)
    return prefix, sorted(p for p in binds if not str(p).startswith("/usr/"))


class CgroupLimits:
    """A cgroup (v1) per session in each controller: limits, counters, and cleanup."""

    def __init__(self, config: SandboxConfig, label: str) -> None:
        safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in label)[:40]
        self.name = f"{CGROUP_PREFIX}{os.getpid()}-{safe}-{secrets.token_hex(3)}"
        self.paths: dict[str, Path] = {}
        try:
            for controller in CONTROLLERS:
                path = CGROUP_ROOT / controller / self.name
                path.mkdir()
                self.paths[controller] = path
            memory = str(config.memory_mb * 2**20)
            self._write("memory", "memory.limit_in_bytes", memory)
            self._write("memory", "memory.memsw.limit_in_bytes", memory, optional=True)
            self._write("pids", "pids.max", str(config.pids_limit))
            self._write("cpu", "cpu.cfs_period_us", "100000")
            self._write("cpu", "cpu.cfs_quota_us", str(int(config.cpus * 100000)))
        except OSError:
            self.remove()
            raise

    @staticmethod
    def available() -> bool:
        return all(os.access(CGROUP_ROOT / c, os.W_OK) for c in CONTROLLERS)

    def _write(self, controller: str, name: str, value: str, optional: bool = False) -> None:
        target = self.paths[controller] / name
        if optional and not target.exists():
            return
        target.write_text(value)

    def procs_files(self) -> list[str]:
        return [str(path / "cgroup.procs") for path in self.paths.values()]

    def usage(self) -> UsageSample:
        sample = UsageSample()
        with contextlib.suppress(OSError, ValueError, KeyError):
            sample.cpu_s = round(int((self.paths["cpuacct"] / "cpuacct.usage").read_text()) / 1e9, 3)
            peak = int((self.paths["memory"] / "memory.max_usage_in_bytes").read_text())
            sample.peak_memory_mb = round(peak / 2**20, 1)
            for line in (self.paths["memory"] / "memory.oom_control").read_text().splitlines():
                if line.startswith("oom_kill "):
                    sample.oom_kills = int(line.split()[1])
            sample.pids_limit_hits = int((self.paths["pids"] / "pids.events").read_text().split()[1])
        return sample

    def remove(self) -> None:
        for path in self.paths.values():
            # Processes of a killed sandbox take a moment (usually a few ms) to leave the cgroup:
            # poll finely, up to a second in all.
            for _ in range(500):
                try:
                    path.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.002)


class PipeStream:
    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.process = process

    def send(self, data: bytes) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(data)
        self.process.stdin.flush()

    def receive(self, timeout_s: float) -> bytes:
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        ready, _, _ = select.select([fd], [], [], timeout_s)
        if not ready:
            raise TimeoutError(f"no output within {timeout_s:.0f}s")
        return os.read(fd, 65536)


class BwrapSession(ChannelSession):
    ready_timeout_s = 60.0
    backend = "bwrap"

    def __init__(
        self,
        process: subprocess.Popen[bytes],
        stderr_path: Path,
        cgroup: CgroupLimits | None,
        config: SandboxConfig,
    ):
        self.process = process
        self.stderr_path = stderr_path
        self.cgroup = cgroup
        self.config = config
        self.channel = DriverChannel(
            PipeStream(process).send, PipeStream(process).receive, self._describe_end
        )
        self._closed = False
        self._bound_lifetime(config.max_lifetime_s)

    def _end_now(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, 9)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._lifetime.cancel()
        self._end_now()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)
        for pipe in (self.process.stdin, self.process.stdout):
            with contextlib.suppress(OSError):
                pipe.close()  # type: ignore[union-attr]
        if self.cgroup is not None:
            self.cgroup.remove()
        self.stderr_path.unlink(missing_ok=True)

    def _describe_end(self) -> str:
        code = self.process.poll()
        errors = ""
        with contextlib.suppress(OSError):
            errors = self.stderr_path.read_text(errors="replace").strip()[-400:]
        return (
            f"bwrap exited with code {code}{': ' + errors if errors else ''}. An outside process "
            "killed it, or the candidate killed the harness shell."
        )

    def usage(self) -> UsageSample:
        return self.cgroup.usage() if self.cgroup is not None else UsageSample()


def child_setup(procs_files: list[str], rlimits: list[tuple[int, int]]) -> Callable[[], None]:
    """What the forked child does before it execs bwrap: join the session's cgroups, set rlimits.

    Done in the child itself (no `sh`/`prlimit` exec in between), so nothing of the sandbox ever
    runs outside its cgroups: if a join fails the child exits and Popen raises. Only plain system
    calls here, as the child of a possibly threaded process must not take Python-level locks.
    """

    def setup() -> None:
        pid = str(os.getpid()).encode()
        for procs in procs_files:
            fd = os.open(procs, os.O_WRONLY)
            try:
                os.write(fd, pid)
            finally:
                os.close(fd)
        for limit, value in rlimits:
            resource.setrlimit(limit, (value, value))

    return setup


class BwrapBackend:
    name = "bwrap"

    def __init__(self, config: SandboxConfig, image: str, run_id: str) -> None:
        self.config = config
        self.image = image  # recorded only: bwrap runs the host's system and Python
        self.run_id = run_id
        self.bwrap = bwrap_path()
        self.use_cgroups = CgroupLimits.available()

    def image_id(self) -> str | None:
        return f"host:{Path(self.config.bwrap_python or sys.prefix).resolve()}"

    def trusted_pythons(self) -> tuple[str, ...]:
        """The bound environment's interpreter, at the same path inside the sandbox (read-only)."""
        prefix, _ = python_prefixes(self.config)
        return (f"{prefix}/bin/python3",)

    def bwrap_argv(self, workspace: Path, heldout: Path | None, user: str | None = None) -> list[str]:
        cfg = self.config
        uid, _, gid = (user or cfg.user).partition(":")
        argv = [self.bwrap, "--unshare-user", "--unshare-pid", "--unshare-ipc", "--unshare-uts"]
        argv += ["--unshare-cgroup-try", "--disable-userns", "--die-with-parent", "--new-session"]
        argv += ["--uid", uid, "--gid", gid or uid, "--cap-drop", "ALL"]
        if cfg.network_disabled:
            argv.append("--unshare-net")
        argv += ["--ro-bind", "/usr", "/usr"]
        for directory in SYSTEM_DIRS:
            if os.path.islink(directory):
                argv += ["--symlink", os.readlink(directory), directory]
            elif os.path.isdir(directory):
                argv += ["--ro-bind", directory, directory]
        for etc_file in ETC_FILES:
            argv += ["--ro-bind-try", etc_file, etc_file]
        argv += ["--proc", "/proc", "--dev", "/dev"]
        argv += ["--size", str(cfg.workspace_mb * 2**20), "--perms", "0755", "--tmpfs", WORKDIR]
        argv += ["--size", str(cfg.tmp_mb * 2**20), "--perms", "1777", "--tmpfs", "/tmp"]
        # After the tmpfs mounts, so a Python environment that lives under /tmp (a checkout there)
        # is bound on top of the scratch space instead of being hidden by it.
        prefix, binds = python_prefixes(cfg)
        for bound in binds:
            argv += ["--ro-bind", str(bound), str(bound)]
        argv += ["--ro-bind", str(workspace.resolve()), "/src"]
        if heldout is not None:
            argv += ["--ro-bind", str(heldout.resolve()), "/heldout"]
        if cfg.read_only_root:
            argv += ["--remount-ro", "/"]
        argv += ["--chdir", WORKDIR, "--clearenv"]
        environment = {
            "HOME": "/tmp",
            "PATH": f"{prefix}/bin:{SANDBOX_PATH}",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONHASHSEED": "0",
            "OMP_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1",
            "MPLBACKEND": "Agg",
        }
        for key, value in environment.items():
            argv += ["--setenv", key, value]
        return [*argv, *DRIVER_ARGV]

    def rlimits(self) -> list[tuple[int, int]]:
        cfg = self.config
        limits = [
            (resource.RLIMIT_CORE, 0),
            (resource.RLIMIT_CPU, cfg.max_lifetime_s),
            (resource.RLIMIT_FSIZE, max(cfg.workspace_mb, cfg.tmp_mb) * 2**20),
        ]
        if not self.use_cgroups:
            limits.append((resource.RLIMIT_AS, cfg.memory_mb * 2**20))
        return limits

    def open(
        self, workspace: Path, heldout: Path | None, label: str, user: str | None = None
    ) -> BwrapSession:
        cgroup = CgroupLimits(self.config, label) if self.use_cgroups else None
        env = {"PATH": os.environ.get("PATH", SANDBOX_PATH)}
        argv = self.bwrap_argv(workspace, heldout, user)
        setup = child_setup(cgroup.procs_files() if cgroup else [], self.rlimits())
        handle, stderr_name = tempfile.mkstemp(prefix="rsi-bwrap-", suffix=".err")
        try:
            process = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=handle,
                env=env,
                start_new_session=True,
                preexec_fn=setup,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            os.close(handle)
            if cgroup:
                cgroup.remove()
            raise SandboxError(f"could not start bwrap ({exc}). {BWRAP_HELP}") from exc
        os.close(handle)
        session = BwrapSession(process, Path(stderr_name), cgroup, self.config)
        try:
            session.wait_ready()
        except BaseException:
            session.close()
            raise
        return session

    def remove_orphans(self) -> int:
        """Remove the (empty) cgroups of sessions whose owner process is gone."""
        removed = 0
        if not self.use_cgroups:
            return 0
        for controller in CONTROLLERS:
            for path in (CGROUP_ROOT / controller).glob(f"{CGROUP_PREFIX}*"):
                owner = path.name[len(CGROUP_PREFIX) :].split("-", 1)[0]
                if owner.isdigit() and not pid_alive(int(owner)):
                    with contextlib.suppress(OSError):
                        for pid in (path / "cgroup.procs").read_text().split():
                            with contextlib.suppress(ProcessLookupError, PermissionError):
                                os.kill(int(pid), 9)
                        time.sleep(0.05)
                        path.rmdir()
                        removed += 1
        return removed


def bwrap_status(config: SandboxConfig | None = None) -> tuple[bool, str]:
    """Whether the bwrap backend works here, and why not: a real sandbox runs the target's imports."""
    cfg = config or SandboxConfig()
    try:
        backend = BwrapBackend(cfg, image="", run_id="doctor")
    except SandboxError as exc:
        return False, str(exc)
    with tempfile.TemporaryDirectory(prefix="rsi-doctor-") as empty:
        try:
            with backend.open(Path(empty), None, "doctor") as session:
                probe = session.exec('python -c "import numpy, pytest"', timeout_s=60)
        except SandboxError as exc:
            return False, f"bwrap cannot create its sandbox here: {str(exc)[:200]}"
    prefix, _ = python_prefixes(cfg)
    if probe.exit_code != 0:
        return False, (
            f"the sandbox's Python ({prefix}) lacks numpy or pytest: install them there "
            f'(`pip install -e ".[dev]"`) or set sandbox.bwrap_python. {probe.output.strip()[-150:]}'
        )
    limits = (
        "cgroup limits (memory, pids, cpu)"
        if backend.use_cgroups
        else "rlimits only: no pid limit, memory as address space (run as root with cgroup v1 for cgroups)"
    )
    return True, f"works: {backend.bwrap}, Python {prefix}, {limits}"
