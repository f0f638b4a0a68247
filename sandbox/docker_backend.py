"""The Docker backend: one fresh, hardened container per session, always removed.

The container starts with a bounded `sleep` as PID 1 and every command runs through `docker exec`
under coreutils `timeout`, its output redirected to a log file inside the container so that a
background process the candidate leaves behind cannot hold the exec stream open. After each
command every process of the sandbox user is killed, so nothing survives from one phase to the
next. Resource counters are read from the engine's cgroups, never reported by the candidate.
"""

from __future__ import annotations

import contextlib
import io
import shlex
import tarfile
import time
from pathlib import Path
from typing import Any

import docker
import docker.errors
from docker.models.containers import Container

from rsi.errors import SandboxError
from sandbox.base import (
    SANDBOX_LABEL,
    SANDBOX_PATH,
    WORKDIR,
    ExecResult,
    SandboxConfig,
    UsageSample,
    owner_labels,
    pid_alive,
)

CGROUP_ROOT = Path("/sys/fs/cgroup")
ENGINE_HELP = (
    "Is the Docker engine running? Start it (`dockerd &` as root, or `make docker`) and check "
    "with `rsi doctor`."
)


def connect() -> docker.DockerClient:
    try:
        client = docker.from_env(timeout=120)
        client.ping()
    except docker.errors.DockerException as exc:
        raise SandboxError(f"cannot reach the Docker engine ({exc}). {ENGINE_HELP}") from exc
    return client


class DockerSession:
    backend = "docker"

    def __init__(self, client: docker.DockerClient, container: Container, config: SandboxConfig) -> None:
        self.client = client
        self.container = container
        self.config = config
        self._exec_count = 0

    # -- lifecycle -------------------------------------------------------------------------

    def __enter__(self) -> DockerSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with contextlib.suppress(docker.errors.NotFound):
            try:
                self.container.remove(force=True, v=True)
            except docker.errors.APIError as exc:
                if "removal of container" not in str(exc) and "already in progress" not in str(exc):
                    raise SandboxError(
                        f"could not remove container {self.container.short_id}: {exc}"
                    ) from exc

    # -- commands --------------------------------------------------------------------------

    def _raw_exec(self, argv: list[str], user: str | None = None) -> tuple[int, bytes]:
        try:
            result = self.container.exec_run(argv, user=user or self.config.user, demux=False)
        except docker.errors.APIError as exc:
            raise SandboxError(
                f"docker exec failed in {self.container.short_id}: {exc}. {ENGINE_HELP}"
            ) from exc
        except OSError as exc:  # connection to the engine lost mid-command
            raise SandboxError(f"lost the Docker engine during a command ({exc}). {ENGINE_HELP}") from exc
        return int(result.exit_code if result.exit_code is not None else -1), result.output or b""

    def exec(self, command: str, timeout_s: float, cwd: str = WORKDIR) -> ExecResult:
        self._exec_count += 1
        log = f"/tmp/.rsi-exec-{self._exec_count}.log"
        seconds = max(1, round(timeout_s))
        script = (
            f"cd {shlex.quote(cwd)} && timeout --kill-after=3 {seconds} sh -c {shlex.quote(command)} "
            f"> {log} 2>&1 < /dev/null; echo $?"
        )
        started = time.monotonic()
        _, status = self._raw_exec(["sh", "-c", script])
        duration = time.monotonic() - started
        # Nothing the command started may outlive it (PID 1 ignores this signal in its namespace).
        self._raw_exec(["sh", "-c", "kill -9 -1 2>/dev/null; true"])
        try:
            exit_code = int(status.decode(errors="replace").strip().splitlines()[-1])
        except (ValueError, IndexError):
            exit_code = -1
        try:
            output = self.read_file(log, max_bytes=1024 * 1024).decode("utf-8", errors="replace")
        except SandboxError:
            output = status.decode(errors="replace")
        return ExecResult(
            exit_code=exit_code,
            output=output,
            duration_s=duration,
            timed_out=exit_code in (124, 137) and duration >= seconds - 0.5,
        )

    def read_file(self, path: str, max_bytes: int = 64 * 1024 * 1024) -> bytes:
        """Read a file out of the sandbox through the engine's exec stream (works on tmpfs)."""
        code, data = self._raw_exec(["head", "-c", str(max_bytes + 1), path])
        if code != 0:
            raise SandboxError(
                f"could not read {path} from the sandbox: {data.decode(errors='replace')[:200]}"
            )
        if len(data) > max_bytes:
            raise SandboxError(f"{path} in the sandbox is larger than {max_bytes} bytes; not read.")
        return data

    def write_file(self, path: str, data: bytes) -> None:
        """Write a file into the sandbox (its writable tmpfs) through `sh` reading a tar on stdin."""
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as archive:
            info = tarfile.TarInfo(Path(path).name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        socket = self.container.exec_run(
            ["tar", "-x", "-C", str(Path(path).parent)], user=self.config.user, stdin=True, socket=True
        ).output
        raw = getattr(socket, "_sock", socket)
        raw.sendall(buffer.getvalue())
        with contextlib.suppress(OSError):
            raw.shutdown(1)
        with contextlib.suppress(OSError):
            while raw.recv(4096):
                pass
        raw.close()

    # -- measurement -----------------------------------------------------------------------

    def _cgroup_file(self, controller: str, name: str) -> Path | None:
        for parent in ("docker", f"system.slice/docker-{self.container.id}.scope"):
            base = CGROUP_ROOT / controller / parent
            path = base / self.container.id / name if parent == "docker" else base / name
            if path.exists():
                return path
        return None

    def usage(self) -> UsageSample:
        """Counters from the container's cgroups (fast, local engine), else the engine's stats API."""
        sample = UsageSample()
        cpu = self._cgroup_file("cpuacct", "cpuacct.usage")
        memory = self._cgroup_file("memory", "memory.max_usage_in_bytes")
        if cpu and memory:
            sample.cpu_s = round(int(cpu.read_text()) / 1e9, 3)
            sample.peak_memory_mb = round(int(memory.read_text()) / 2**20, 1)
        else:
            self._usage_from_stats(sample)
        oom = self._cgroup_file("memory", "memory.oom_control")
        if oom:
            for line in oom.read_text().splitlines():
                if line.startswith("oom_kill "):
                    sample.oom_kills = int(line.split()[1])
        pids = self._cgroup_file("pids", "pids.events")
        if pids:
            sample.pids_limit_hits = int(pids.read_text().split()[1])
        return sample

    def _usage_from_stats(self, sample: UsageSample) -> None:
        try:
            stats: dict[str, Any] = self.container.stats(stream=False, one_shot=True)
        except (docker.errors.APIError, OSError):
            return
        memory = stats.get("memory_stats") or {}
        peak = memory.get("max_usage") or memory.get("usage")
        sample.peak_memory_mb = round(peak / 2**20, 1) if peak else None
        total = ((stats.get("cpu_stats") or {}).get("cpu_usage") or {}).get("total_usage")
        sample.cpu_s = round(total / 1e9, 3) if total else None


class DockerBackend:
    name = "docker"

    def __init__(self, config: SandboxConfig, image: str, run_id: str) -> None:
        self.config = config
        self.image = image
        self.run_id = run_id
        self.client = connect()

    def image_id(self) -> str | None:
        try:
            return str(self.client.images.get(self.image).id)
        except docker.errors.ImageNotFound:
            return None

    def require_image(self) -> str:
        image_id = self.image_id()
        if image_id is None:
            raise SandboxError(
                f"the sandbox image {self.image!r} is not built. Run `rsi image build` (it needs no "
                "container registry), or set [sandbox].image / --image to an image you have."
            )
        return image_id

    def open(self, workspace: Path, heldout: Path | None, label: str) -> DockerSession:
        cfg = self.config
        for shared in (workspace, heldout):
            if shared is not None:
                shared.chmod(0o755)  # the unprivileged sandbox user must be able to read its inputs
        volumes = {str(workspace.resolve()): {"bind": "/src", "mode": "ro"}}
        if heldout is not None:
            volumes[str(heldout.resolve())] = {"bind": "/heldout", "mode": "ro"}
        uid, _, gid = cfg.user.partition(":")
        options: dict[str, Any] = {
            "command": ["sleep", str(cfg.max_lifetime_s)],
            "detach": True,
            "labels": owner_labels(self.run_id, label),
            "volumes": volumes,
            "tmpfs": {
                WORKDIR: f"rw,exec,nosuid,nodev,size={cfg.workspace_mb}m,uid={uid},gid={gid or uid},mode=0755",
                "/tmp": f"rw,exec,nosuid,nodev,size={cfg.tmp_mb}m,mode=1777",
            },
            "environment": {
                "HOME": "/tmp",
                "PATH": SANDBOX_PATH,
                "PYTHONDONTWRITEBYTECODE": "1",
                "PYTHONHASHSEED": "0",
                "OMP_NUM_THREADS": "1",
                "OPENBLAS_NUM_THREADS": "1",
                "MPLBACKEND": "Agg",
            },
            "working_dir": WORKDIR,
            "user": cfg.user,
            "mem_limit": f"{cfg.memory_mb}m",
            "memswap_limit": f"{cfg.memory_mb}m",
            "nano_cpus": int(cfg.cpus * 1e9),
            "pids_limit": cfg.pids_limit,
            "read_only": cfg.read_only_root,
            "ulimits": [docker.types.Ulimit(name="core", soft=0, hard=0)],
        }
        if cfg.network_disabled:
            options["network_mode"] = "none"
        if cfg.drop_all_capabilities:
            options["cap_drop"] = ["ALL"]
        if cfg.no_new_privileges:
            options["security_opt"] = ["no-new-privileges"]
        container = None
        try:
            container = self.client.containers.run(self.image, **options)
            session = DockerSession(self.client, container, cfg)
            copy = session.exec(f"cp -R /src/. {WORKDIR}/", timeout_s=60, cwd="/")
            if copy.exit_code != 0:
                raise SandboxError(f"could not copy the workspace into the sandbox: {copy.output[-500:]}")
            return session
        except docker.errors.ImageNotFound as exc:
            raise SandboxError(
                f"the sandbox image {self.image!r} is missing. Run `rsi image build`."
            ) from exc
        except (docker.errors.DockerException, OSError) as exc:
            if container is not None:
                with contextlib.suppress(docker.errors.DockerException, OSError):
                    container.remove(force=True)
            raise SandboxError(f"could not start a sandbox container: {exc}. {ENGINE_HELP}") from exc
        except BaseException:
            if container is not None:
                with contextlib.suppress(docker.errors.DockerException, OSError):
                    container.remove(force=True)
            raise

    def remove_orphans(self) -> int:
        """Remove sandboxes whose owning process on this host is gone (a crashed run's leftovers)."""
        return remove_orphans(self.client)


def remove_orphans(client: docker.DockerClient, run_id: str | None = None) -> int:
    import socket

    removed = 0
    for container in client.containers.list(all=True, filters={"label": SANDBOX_LABEL}):
        labels = container.labels or {}
        mine = labels.get("rsi.host") == socket.gethostname()
        owner_gone = mine and not pid_alive(int(labels.get("rsi.pid", "0") or 0))
        if owner_gone or (run_id is not None and labels.get("rsi.run_id") == run_id):
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True, v=True)
                removed += 1
    return removed
