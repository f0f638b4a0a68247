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
- /dev read-only but for its own size-limited /dev/shm and a fresh /dev/mqueue, which the driver
  empties between phases like /workspace and /tmp; its device nodes (null, zero, full, random,
  urandom, tty) are the sandbox's own when the harness runs as root (`PrivateDevices`);
- limits: when the host lets this process create cgroups — root on cgroup v1, or on cgroup v2 a
  delegated parent (this process's cgroup, or SandboxConfig.cgroup_parent, enabling memory, pids
  and cpu for its children) — a memory (no swap), pids and CPU-quota cgroup per session whose
  counters also give CPU seconds, per-phase peak memory, OOM kills and pid-limit hits; otherwise
  rlimits only (address space for memory, no pid limit, nothing measured: "rlimit-only"). Always
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

from core.contracts import Accounting
from core.errors import SandboxError
from core.target import TEACHER_MOUNT, TargetSpec
from sandbox.base import (
    SANDBOX_PATH,
    WORKDIR,
    SandboxConfig,
    UsageSample,
    pid_alive,
)
from sandbox.cgroups import (
    PeakCounter,
    hierarchy,
    own_v2_cgroup,
    pids_in,
    read_v1,
    read_v2,
    reset_v1_peak,
    v2_delegation_problem,
)
from sandbox.channel import AUDIT_MOUNT, AUDIT_SOURCE, DRIVER_ARGV, ChannelSession, DriverChannel
from sandbox.init import init_argv
from sandbox.label_server import LABELS_MOUNT
from sandbox.seccomp import filter_fd
from sandbox.target_env import ensure_bwrap_env, has_dependencies

CGROUP_ROOT = Path("/sys/fs/cgroup")
CGROUP_PREFIX = "rsi-bwrap-"
CONTROLLERS = ("memory", "pids", "cpuacct", "cpu")
SYSTEM_DIRS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
ETC_FILES = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/alternatives", "/etc/localtime")
DEVICE_NODES = ("null", "zero", "full", "random", "urandom", "tty")
DEVICES_PREFIX = ".rsi-bwrap-dev-"
NODE_OWNER = 65534
"""The overflow uid/gid ("nobody"): the owner of a sandbox's own device nodes, never its user."""
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


SCRATCH_ROOTS = ("/tmp", WORKDIR, "/dev")
"""Where the sandbox has its own writable (or device) mounts, which the driver empties between phases."""
RELOCATED_ROOT = "/opt/rsi-python"


def sandbox_view(host_path: Path) -> str:
    """Where a bound host directory appears inside the sandbox: at its own path, unless that lies in
    the sandbox's scratch space (a checkout under /tmp), where the phase reset would meet a read-only
    mount it cannot empty; such a directory is bound under /opt/rsi-python instead (a virtualenv
    finds itself from its interpreter's path, so it works from there)."""
    text = str(host_path)
    if any(text == root or text.startswith(root + "/") for root in SCRATCH_ROOTS):
        return f"{RELOCATED_ROOT}{text}"
    return text


class CgroupLimits:
    """A cgroup (v1) per session in each controller: limits, counters, and cleanup."""

    accounting: Accounting = "cgroup-v1"

    def __init__(self, config: SandboxConfig, label: str) -> None:
        self.name = cgroup_name(label)
        self.paths: dict[str, Path] = {}
        self.phase_peak = False
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
        return hierarchy() == "v1" and all(os.access(CGROUP_ROOT / c, os.W_OK) for c in CONTROLLERS)

    def _write(self, controller: str, name: str, value: str, optional: bool = False) -> None:
        target = self.paths[controller] / name
        if optional and not target.exists():
            return
        target.write_text(value)

    def procs_files(self) -> list[str]:
        return [str(path / "cgroup.procs") for path in self.paths.values()]

    def begin_phase(self) -> None:
        self.phase_peak = reset_v1_peak(self.paths["memory"])

    def usage(self) -> UsageSample:
        counters = read_v1(self.paths)
        return UsageSample(accounting=self.accounting, phase_peak=self.phase_peak, **vars(counters))

    def remove(self) -> None:
        for path in self.paths.values():
            remove_cgroup_dir(path)


class CgroupV2Limits:
    """One cgroup v2 directory per session under a delegated parent: limits, counters, cleanup."""

    accounting: Accounting = "cgroup-v2"

    def __init__(self, config: SandboxConfig, label: str, parent: Path) -> None:
        self.path = parent / cgroup_name(label)
        self.path.mkdir()
        self.peak: PeakCounter | None = None
        try:
            memory = str(config.memory_mb * 2**20)
            (self.path / "memory.max").write_text(memory)
            with contextlib.suppress(FileNotFoundError):  # no swap accounting on this kernel
                (self.path / "memory.swap.max").write_text("0")
            (self.path / "pids.max").write_text(str(config.pids_limit))
            (self.path / "cpu.max").write_text(f"{int(config.cpus * 100000)} 100000")
            self.peak = PeakCounter(self.path)
        except OSError:
            self.remove()
            raise

    @staticmethod
    def parent(config: SandboxConfig) -> tuple[Path | None, str]:
        """The delegated parent to create session cgroups under, or None and why not."""
        if hierarchy() != "v2":
            return None, "the unified cgroup v2 hierarchy is not mounted at /sys/fs/cgroup"
        parent = config.cgroup_parent or own_v2_cgroup()
        if parent is None:
            return None, "this process's cgroup v2 directory is unknown (/proc/self/cgroup)"
        problem = v2_delegation_problem(parent)
        return (None, problem) if problem else (parent, "")

    def procs_files(self) -> list[str]:
        return [str(self.path / "cgroup.procs")]

    def begin_phase(self) -> None:
        if self.peak is not None:
            self.peak.reset()

    def usage(self) -> UsageSample:
        resettable = self.peak is not None and self.peak.resettable
        counters = read_v2(self.path, self.peak)
        if not resettable:
            counters.peak_memory_mb = None  # only the session's peak: not a phase's, so unmeasured
        return UsageSample(accounting=self.accounting, phase_peak=resettable, **vars(counters))

    def remove(self) -> None:
        if self.peak is not None:
            self.peak.close()
        with contextlib.suppress(OSError):
            (self.path / "cgroup.kill").write_text("1")
        remove_cgroup_dir(self.path)


class PrivateDevices:
    """A sandbox's own device nodes, when the harness runs as root.

    bwrap's `--dev` binds the host's /dev/null, /dev/zero… into the sandbox, writable (they must
    be), and its user namespace maps the sandbox's user to the harness's. When that is root, the
    sandbox's user owns the host's nodes: a phase could date them, chmod or chown them on the host
    (red team round eleven: /dev/null's times carried data from phase to phase and sandbox to
    sandbox, and dated the host's own /dev/null 1970; `chmod 000` would break the host). So a
    root harness makes each sandbox fresh nodes of the same devices, owned by nobody (mode 0666,
    usable, not changeable), in a directory of the host's /dev (a filesystem that allows device
    nodes), bound over bwrap's; it sets their times back after every reset and removes them with
    the sandbox. Without root the host's nodes belong to root, not to the sandbox's user: nothing
    to do, and nothing can be (only root makes device nodes)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.stamp = time.time_ns()

    @classmethod
    def make(cls, root: Path = Path("/dev")) -> PrivateDevices | None:
        if os.geteuid() != 0:
            return None
        path = root / f"{DEVICES_PREFIX}{os.getpid()}-{secrets.token_hex(4)}"
        try:
            path.mkdir(mode=0o755)
        except OSError:
            return None
        devices = cls(path)
        try:
            for name in DEVICE_NODES:
                host = Path("/dev") / name
                if not host.is_char_device():
                    continue
                node = path / name
                os.mknod(node, 0o666 | 0o020000, os.stat(host).st_rdev)
                os.chown(node, NODE_OWNER, NODE_OWNER)
                os.chmod(node, 0o666)
        except OSError:
            devices.remove()
            return None
        devices.restore()
        return devices

    def nodes(self) -> list[str]:
        return [name for name in DEVICE_NODES if (self.path / name).exists()]

    def restore(self) -> None:
        """Every node's times back to the sandbox's start: the one mark a phase can still leave on
        them (a write updates them) does not reach the next phase."""
        for name in self.nodes():
            with contextlib.suppress(OSError):
                os.utime(self.path / name, ns=(self.stamp, self.stamp))

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def cgroup_name(label: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in label)[:40]
    return f"{CGROUP_PREFIX}{os.getpid()}-{safe}-{secrets.token_hex(3)}"


def remove_cgroup_dir(path: Path) -> None:
    # Processes of a killed sandbox take a moment (usually a few ms) to leave the cgroup:
    # poll finely, up to a second in all.
    for _ in range(500):
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
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
        cgroup: CgroupLimits | CgroupV2Limits | None,
        config: SandboxConfig,
        devices: PrivateDevices | None = None,
    ):
        self.process = process
        self.stderr_path = stderr_path
        self.cgroup = cgroup
        self.devices = devices
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
        if self.devices is not None:
            self.devices.remove()
        self.stderr_path.unlink(missing_ok=True)

    def reset(self, keep: str | None = None) -> None:
        super().reset(keep)
        if self.devices is not None:
            self.devices.restore()

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
        return self.cgroup.usage() if self.cgroup is not None else UsageSample(accounting="rlimit-only")

    def begin_phase(self) -> None:
        if self.cgroup is not None:
            self.cgroup.begin_phase()

    def task_pids(self) -> list[int] | None:
        if self.cgroup is None:
            return None
        return pids_in(Path(self.cgroup.procs_files()[0]))


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
    serves_labels = True
    """Sandboxes run on this host: a Unix socket of the harness can be bound into one."""

    def __init__(self, config: SandboxConfig, image: str, run_id: str) -> None:
        self.config = config
        self.image = image  # recorded only: bwrap runs the host's system and Python
        self.run_id = run_id
        self.bwrap = bwrap_path()
        self.v2_parent, self.v2_problem = CgroupV2Limits.parent(config)
        self.use_cgroups = self.v2_parent is not None or CgroupLimits.available()

    @property
    def accounting(self) -> Accounting:
        if self.v2_parent is not None:
            return "cgroup-v2"
        return "cgroup-v1" if self.use_cgroups else "rlimit-only"

    def new_cgroup(self, label: str) -> CgroupLimits | CgroupV2Limits | None:
        if self.v2_parent is not None:
            return CgroupV2Limits(self.config, label, self.v2_parent)
        return CgroupLimits(self.config, label) if self.use_cgroups else None

    config_class = SandboxConfig

    @classmethod
    def from_config(cls, config: SandboxConfig, *, image: str, run_id: str) -> BwrapBackend:
        return cls(config, image=image, run_id=run_id)

    @classmethod
    def for_target(cls, config: SandboxConfig, spec: TargetSpec, target: Path) -> SandboxConfig:
        """The isolation settings for a target: one with its own dependencies gets its own Python
        environment (built once) unless one is chosen explicitly."""
        if not has_dependencies(spec) or config.bwrap_python is not None:
            return config
        return config.model_copy(update={"bwrap_python": ensure_bwrap_env(spec, say=lambda _: None)})

    def image_id(self) -> str:
        return f"host:{Path(self.config.bwrap_python or sys.prefix).resolve()}"

    def require_image(self) -> str:
        return self.image_id()

    def run_sandboxes(self) -> int:
        return 0  # a bwrap sandbox is a child process: it dies with the run

    def remove_run_sandboxes(self) -> int:
        return 0

    def trusted_pythons(self) -> tuple[str, ...]:
        """The bound environment's interpreter, as the sandbox sees it (read-only)."""
        prefix, _ = python_prefixes(self.config)
        return (f"{sandbox_view(prefix)}/bin/python3",)

    def bwrap_argv(
        self,
        workspace: Path,
        heldout: Path | None,
        user: str | None = None,
        labels: Path | None = None,
        devices: PrivateDevices | None = None,
    ) -> list[str]:
        cfg = self.config
        uid, _, gid = (user or cfg.user).partition(":")
        # --as-pid-1: the harness's own init (sandbox/init.py) is PID 1, not bwrap's reaper, which
        # runs as the sandbox's user and is dumpable (a phase could leave data in its memory).
        argv = [self.bwrap, "--unshare-user", "--unshare-pid", "--as-pid-1", "--unshare-ipc", "--unshare-uts"]
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
        # /proc/sys read-only: under a root harness the sandbox's user is the host's root, and the
        # kernel's settings check only that (red team round twelve: 763 host sysctls writable from
        # training, kernel.core_pattern among them). bwrap covers it only when it finds it writable
        # to itself, which it does not as root. The host's view, read-only: the same settings.
        argv += ["--proc", "/proc", "--ro-bind", "/proc/sys", "/proc/sys", "--dev", "/dev"]
        if devices is not None:  # the sandbox's own nodes over the host's (see PrivateDevices)
            for name in devices.nodes():
                argv += ["--dev-bind", str(devices.path / name), f"/dev/{name}"]
        # Shared memory and message queues are places a phase could leave data for the next: both
        # get their own mounts, which the driver empties between phases; the rest of /dev is
        # read-only.
        argv += ["--size", str(cfg.tmp_mb * 2**20), "--perms", "1777", "--tmpfs", "/dev/shm"]
        argv += ["--mqueue", "/dev/mqueue", "--remount-ro", "/dev"]
        argv += ["--size", str(cfg.workspace_mb * 2**20), "--perms", "0755", "--tmpfs", WORKDIR]
        argv += ["--size", str(cfg.tmp_mb * 2**20), "--perms", "1777", "--tmpfs", "/tmp"]
        # A Python environment that lives in the scratch space on the host (a checkout under /tmp)
        # is bound elsewhere: inside /tmp it would be hidden by the tmpfs, or (bound over it) be a
        # read-only mount the driver's reset between phases cannot empty.
        prefix, binds = python_prefixes(cfg)
        for bound in binds:
            argv += ["--ro-bind", str(bound), sandbox_view(bound)]
        argv += ["--ro-bind", str(workspace.resolve()), "/src"]
        argv += ["--ro-bind", str(AUDIT_SOURCE), AUDIT_MOUNT]
        if heldout is not None:
            argv += ["--ro-bind", str(heldout.resolve()), "/heldout"]
        if cfg.teacher_dir is not None:
            argv += ["--ro-bind", str(cfg.teacher_dir.resolve()), TEACHER_MOUNT]
        if labels is not None:
            argv += ["--ro-bind", str(labels.resolve()), LABELS_MOUNT]
        if cfg.read_only_root:
            argv += ["--remount-ro", "/"]
        argv += ["--chdir", WORKDIR, "--clearenv"]
        environment = {
            "HOME": "/tmp",
            "PATH": f"{sandbox_view(prefix)}/bin:{SANDBOX_PATH}",
            "PYTHONDONTWRITEBYTECODE": "1",
            "OMP_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1",
            "MPLBACKEND": "Agg",
        }
        for key, value in environment.items():
            argv += ["--setenv", key, value]
        return [*argv, *init_argv(self.trusted_pythons(), DRIVER_ARGV)]

    def rlimits(self) -> list[tuple[int, int]]:
        """No core files; and on a host that delegates no cgroup, what its limits would hold: CPU
        time, file size, address space. With cgroups those hold it (memory, pids), as do the
        session's own lifetime bound and the tmpfs sizes, as on Docker, whose containers set no
        other: limits a person's shell does not have are a mark of the harness that code can read
        in /proc/self/limits (red team round nineteen keyed the hand-made configuration on a CPU
        time limit)."""
        cfg = self.config
        limits = [(resource.RLIMIT_CORE, 0)]
        if not self.use_cgroups:
            limits += [
                (resource.RLIMIT_CPU, cfg.max_lifetime_s),
                (resource.RLIMIT_FSIZE, max(cfg.workspace_mb, cfg.tmp_mb) * 2**20),
                (resource.RLIMIT_AS, cfg.memory_mb * 2**20),
            ]
        return limits

    def open(
        self,
        workspace: Path,
        heldout: Path | None,
        label: str,
        user: str | None = None,
        labels: Path | None = None,
    ) -> BwrapSession:
        try:
            cgroup = self.new_cgroup(label)
        except OSError as exc:
            raise SandboxError(
                f"could not create the sandbox's cgroup for {label!r} ({exc}). Check `rsi doctor`."
            ) from exc
        env = {"PATH": os.environ.get("PATH", SANDBOX_PATH)}
        try:
            seccomp = filter_fd(network=not self.config.network_disabled)
        except BaseException:
            if cgroup:
                cgroup.remove()
            raise
        devices = PrivateDevices.make()
        argv = self.bwrap_argv(workspace, heldout, user, labels, devices)
        argv[1:1] = ["--seccomp", str(seccomp)]
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
                pass_fds=(seccomp,),
            )
        except (OSError, subprocess.SubprocessError) as exc:
            os.close(handle)
            os.close(seccomp)
            if cgroup:
                cgroup.remove()
            if devices:
                devices.remove()
            raise SandboxError(f"could not start bwrap ({exc}). {BWRAP_HELP}") from exc
        os.close(handle)
        os.close(seccomp)
        session = BwrapSession(process, Path(stderr_name), cgroup, self.config, devices)
        try:
            session.wait_ready()
        except BaseException:
            session.close()
            raise
        return session

    def remove_orphans(self) -> int:
        """Remove the (empty) cgroups and the device nodes of sessions whose owner process is gone."""
        removed = 0
        for path in Path("/dev").glob(f"{DEVICES_PREFIX}*"):
            owner = path.name[len(DEVICES_PREFIX) :].split("-", 1)[0]
            if owner.isdigit() and not pid_alive(int(owner)):
                PrivateDevices(path).remove()
        if not self.use_cgroups:
            return removed
        directories = [CGROUP_ROOT / c for c in CONTROLLERS] if self.v2_parent is None else [self.v2_parent]
        for directory in directories:
            for path in directory.glob(f"{CGROUP_PREFIX}*"):
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
    if backend.v2_parent is not None:
        limits = f"cgroup-v2 limits and accounting (memory, pids, cpu) under {backend.v2_parent}"
    elif backend.use_cgroups:
        limits = "cgroup-v1 limits and accounting (memory, pids, cpu)"
    else:
        why = backend.v2_problem if hierarchy() == "v2" else "cgroup v1 controllers need root"
        limits = f"rlimit-only: no pid limit, memory as address space, CPU and memory unmeasured ({why})"
    return True, f"works: {backend.bwrap}, Python {prefix}, {limits}"
