"""The Docker backend: one fresh, hardened container per session, always removed.

The container's PID 1 is the harness's own init (sandbox/init.py: non-dumpable, it installs the
seccomp filter and reaps zombies, so a killed fork bomb cannot keep the pids limit exhausted); its
only child is the harness driver (sandbox/channel.py), which
the host talks to over the container's attach socket. A command therefore costs no engine
round trip at all; a session costs three (create, attach, start): when the driver's input ends the
container exits and the engine removes it (auto-remove); a busy or broken one is removed by force. Resource counters are
read from the engine's cgroups on the host, never reported by the candidate.
"""

from __future__ import annotations

import contextlib
import socket
import struct
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests

from core.errors import ConfigError, SandboxError
from core.target import TEACHER_MOUNT, TargetSpec
from sandbox.base import (
    SANDBOX_LABEL,
    SANDBOX_PATH,
    WORKDIR,
    SandboxConfig,
    UsageSample,
    owner_labels,
    pid_alive,
)
from sandbox.cgroups import (
    CGROUP_ROOT,
    PeakCounter,
    hierarchy,
    pids_in,
    read_v1,
    read_v2,
    reset_v1_peak,
)
from sandbox.channel import AUDIT_MOUNT, AUDIT_SOURCE, DRIVER_ARGV, ChannelSession, DriverChannel
from sandbox.docker_engine import ENGINE_HELP, connect, image_exists
from sandbox.init import init_argv
from sandbox.label_server import LABELS_MOUNT
from sandbox.seccomp import denied_syscalls_bpf
from sandbox.target_env import has_dependencies, target_image_tag

SANDBOX_ENV = {
    "HOME": "/tmp",
    "PATH": SANDBOX_PATH,
    "PYTHONDONTWRITEBYTECODE": "1",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MPLBACKEND": "Agg",
}
STDOUT_STREAM = 1


class AttachStream:
    """The container's stdin/stdout over the engine's hijacked attach socket (multiplexed frames)."""

    def __init__(self, raw: socket.socket) -> None:
        self.raw = raw
        self._pending = b""
        self.stderr = b""

    def send(self, data: bytes) -> None:
        self.raw.sendall(data)

    def receive(self, timeout_s: float) -> bytes:
        """The next stdout payload; stderr frames are kept aside for diagnostics."""
        self.raw.settimeout(timeout_s)
        while True:
            while len(self._pending) >= 8:
                stream, size = struct.unpack(">BxxxL", self._pending[:8])
                if len(self._pending) < 8 + size:
                    break
                payload = self._pending[8 : 8 + size]
                self._pending = self._pending[8 + size :]
                if stream == STDOUT_STREAM:
                    return payload
                self.stderr = (self.stderr + payload)[-4000:]
            chunk = self.raw.recv(65536)
            if not chunk:
                return b""
            self._pending += chunk

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.raw.close()


class DockerSession(ChannelSession):
    backend = "docker"

    def __init__(self, api: docker.APIClient, container_id: str, stream: AttachStream, config: SandboxConfig):
        self.api = api
        self.container_id = container_id
        self.short_id = container_id[:12]
        self.stream = stream
        self.config = config
        self.channel = DriverChannel(stream.send, stream.receive, self._describe_end)
        self._closed = False
        self.hierarchy = hierarchy()
        self._located = False
        self._v1: dict[str, Path] = {}
        self._v2: Path | None = None
        self._peak: PeakCounter | None = None
        self._phase_peak = False
        self._bound_lifetime(config.max_lifetime_s)

    # -- lifecycle -------------------------------------------------------------------------

    def close(self) -> None:
        """End the sandbox. Idle: end the driver's input, and the engine removes the container
        (auto-remove); we wait until it is gone, so no sandbox outlives its session. Busy or broken:
        kill and remove it now."""
        if self._closed:
            return
        self._closed = True
        self._lifetime.cancel()
        if self._peak is not None:
            self._peak.close()
        idle = self.channel.idle
        with contextlib.suppress(OSError):
            # Idle: end the driver's input. Busy: also wake the thread blocked reading the stream
            # (closing a socket does not), so a Ctrl-C never waits for a phase to finish.
            self.stream.raw.shutdown(socket.SHUT_WR if idle else socket.SHUT_RDWR)
        self.stream.close()
        if idle:
            try:
                self.api.wait(self.container_id, timeout=10, condition="removed")
                return
            except docker.errors.NotFound:
                return
            except (docker.errors.DockerException, OSError, requests.exceptions.RequestException):
                pass  # not gone in time: remove it by force below
        remove_container(self.api, self.container_id)

    def _end_now(self) -> None:
        with contextlib.suppress(docker.errors.DockerException, OSError):
            self.api.kill(self.container_id)

    def _describe_end(self) -> str:
        try:
            state = self.api.inspect_container(self.container_id)["State"]
        except docker.errors.NotFound:
            return f"Container {self.short_id} is gone (removed from outside the harness)."
        except (docker.errors.DockerException, OSError) as exc:
            return f"The Docker engine is unreachable ({exc}). {ENGINE_HELP}"
        return (
            f"Container {self.short_id} is {state.get('Status')} (exit code {state.get('ExitCode')}, "
            f"OOM-killed {state.get('OOMKilled')}): the engine or an outside process stopped it, or "
            "the candidate killed the harness shell."
        )

    # -- measurement -----------------------------------------------------------------------

    def _v1_dirs(self) -> dict[str, Path]:
        """The container's v1 cgroup directory per controller (cgroupfs or systemd driver)."""
        found: dict[str, Path] = {}
        for controller in ("cpuacct", "memory", "pids"):
            for parent in (f"docker/{self.container_id}", f"system.slice/docker-{self.container_id}.scope"):
                path = CGROUP_ROOT / controller / parent
                if path.is_dir():
                    found[controller] = path
                    break
        return found

    def _v2_dir(self) -> Path | None:
        for parent in (f"docker/{self.container_id}", f"system.slice/docker-{self.container_id}.scope"):
            path = CGROUP_ROOT / parent
            if (path / "cgroup.procs").exists():
                return path
        return None

    def _locate(self) -> None:
        """Find the container's cgroup files on this host once (absent when the engine is remote or
        in a VM, as with Docker Desktop: then the stats API is all there is)."""
        if self._located:
            return
        self._located = True
        if self.hierarchy == "v2":
            self._v2 = self._v2_dir()
            if self._v2 is not None:
                self._peak = PeakCounter(self._v2)
        elif self.hierarchy == "v1":
            self._v1 = self._v1_dirs()

    def begin_phase(self) -> None:
        self._locate()
        if self._v1.get("memory") is not None:
            self._phase_peak = reset_v1_peak(self._v1["memory"])
        elif self._peak is not None:
            self._phase_peak = self._peak.reset()

    def task_pids(self) -> list[int] | None:
        self._locate()
        directory = self._v1.get("pids") or self._v1.get("cpuacct") or self._v2
        return pids_in(directory / "cgroup.procs") if directory is not None else None

    def usage(self) -> UsageSample:
        """Counters from the container's cgroups (fast, local engine), else the engine's stats API."""
        self._locate()
        if self._v1:
            counters = read_v1(self._v1)
            return UsageSample(accounting="cgroup-v1", phase_peak=self._phase_peak, **vars(counters))
        if self._v2 is not None:
            counters = read_v2(self._v2, self._peak)
            if not self._phase_peak:
                counters.peak_memory_mb = None  # the session's peak, not this phase's: unmeasured
            return UsageSample(accounting="cgroup-v2", phase_peak=self._phase_peak, **vars(counters))
        return self._usage_from_stats()

    def _usage_from_stats(self) -> UsageSample:
        """The engine's stats: CPU time only (v2 engines give no peak; no OOM or pid-limit counters)."""
        sample = UsageSample(accounting="docker-stats")
        try:
            stats: dict[str, Any] = self.api.stats(self.container_id, stream=False, one_shot=True)
        except (docker.errors.APIError, OSError, requests.exceptions.RequestException):
            return sample
        total = ((stats.get("cpu_stats") or {}).get("cpu_usage") or {}).get("total_usage")
        sample.cpu_s = round(total / 1e9, 3) if total else None
        return sample


def remove_container(api: docker.APIClient, container_id: str) -> None:
    try:
        api.remove_container(container_id, force=True, v=True)
    except docker.errors.NotFound:
        return
    except docker.errors.APIError as exc:
        if "already in progress" not in str(exc):
            raise SandboxError(
                f"could not remove container {container_id[:12]}: {exc}. {ENGINE_HELP}"
            ) from exc
    except OSError as exc:
        raise SandboxError(
            f"could not remove container {container_id[:12]}: the engine is unreachable ({exc}). It will be "
            "reaped at the start of the next run."
        ) from exc


class DockerBackend:
    name = "docker"
    serves_labels = True
    """Sandboxes run on this host: a Unix socket of the harness can be bound into one."""

    def __init__(self, config: SandboxConfig, image: str, run_id: str, base_url: str | None = None) -> None:
        self.config = config
        self.image = image
        self.run_id = run_id
        self.client = connect(base_url)
        self._image_id: str | None = None

    config_class = SandboxConfig

    @classmethod
    def from_config(cls, config: SandboxConfig, *, image: str, run_id: str) -> DockerBackend:
        return cls(config, image=image, run_id=run_id)

    @classmethod
    def for_target(cls, config: SandboxConfig, spec: TargetSpec, target: Path) -> SandboxConfig:
        """The isolation settings for a target: one with its own dependencies runs in its own image,
        which must have been built (unless an image is chosen explicitly)."""
        if has_dependencies(spec) and config.image is None and not image_exists(target_image_tag(spec)):
            raise ConfigError(
                f"{target / 'rsi.toml'} declares [sandbox] packages/apt and its image "
                f"{target_image_tag(spec)} is not built: run `rsi image build --target {target}` first "
                "(it needs no container registry)."
            )
        return config

    @property
    def api(self) -> docker.APIClient:
        return self.client.api

    def trusted_pythons(self) -> tuple[str, ...]:
        """The image's own interpreter on its read-only root, in the sandbox PATH's order (a
        `python:3.11` base has it in /usr/local/bin, the Debian bootstrap in /usr/bin). The test gate
        is the sandbox's first command, so nothing of the candidate can have placed one there first,
        even with a writable root."""
        return ("/usr/local/bin/python3", "/usr/bin/python3")

    def image_id(self) -> str | None:
        """The image's content id, resolved once: every sandbox of this backend runs exactly it."""
        if self._image_id is None:
            try:
                self._image_id = str(self.api.inspect_image(self.image)["Id"])
            except docker.errors.ImageNotFound:
                return None
            except (docker.errors.DockerException, OSError) as exc:
                raise SandboxError(f"could not look up image {self.image!r}: {exc}. {ENGINE_HELP}") from exc
        return self._image_id

    def require_image(self) -> str:
        image_id = self.image_id()
        if image_id is None:
            raise SandboxError(
                f"the sandbox image {self.image!r} is not built. Run `rsi image build` (it needs no "
                "container registry), or set [sandbox].image / --image to an image you have."
            )
        return image_id

    def host_config(
        self, workspace: Path, heldout: Path | None, user: str | None = None, labels: Path | None = None
    ) -> dict[str, Any]:
        """The hardening, from SandboxConfig: each relaxation only through an explicit field."""
        cfg = self.config
        binds = {
            str(workspace.resolve()): {"bind": "/src", "mode": "ro"},
            str(AUDIT_SOURCE): {"bind": AUDIT_MOUNT, "mode": "ro"},
        }
        if heldout is not None:
            binds[str(heldout.resolve())] = {"bind": "/heldout", "mode": "ro"}
        if cfg.teacher_dir is not None:
            binds[str(cfg.teacher_dir.resolve())] = {"bind": TEACHER_MOUNT, "mode": "ro"}
        if labels is not None:
            binds[str(labels.resolve())] = {"bind": LABELS_MOUNT, "mode": "ro"}
        uid, _, gid = (user or cfg.user).partition(":")
        options: dict[str, Any] = {
            "binds": binds,
            "tmpfs": {
                WORKDIR: f"rw,exec,nosuid,nodev,size={cfg.workspace_mb}m,uid={uid},gid={gid or uid},mode=0755",
                "/tmp": f"rw,exec,nosuid,nodev,size={cfg.tmp_mb}m,mode=1777",
            },
            "mem_limit": f"{cfg.memory_mb}m",
            "memswap_limit": f"{cfg.memory_mb}m",
            "nano_cpus": int(cfg.cpus * 1e9),
            "pids_limit": cfg.pids_limit,
            "read_only": cfg.read_only_root,
            "ulimits": [docker.types.Ulimit(name="core", soft=0, hard=0)],
            # The harness's own init (sandbox/init.py), not the engine's: docker-init runs as the
            # sandbox's user and is dumpable, so a phase could leave data in its memory for the next.
            "init": False,
            "auto_remove": True,
            "network_mode": "none" if cfg.network_disabled else "bridge",
        }
        if cfg.drop_all_capabilities:
            options["cap_drop"] = ["ALL"]
        if cfg.no_new_privileges:
            options["security_opt"] = ["no-new-privileges"]
        return self.api.create_host_config(**options)

    def open(
        self,
        workspace: Path,
        heldout: Path | None,
        label: str,
        user: str | None = None,
        labels: Path | None = None,
    ) -> DockerSession:
        for shared in (workspace, heldout):
            if shared is not None:
                shared.chmod(0o755)  # the unprivileged sandbox user must be able to read its inputs
        image = self.require_image()
        container_id: str | None = None
        try:
            container_id = self.api.create_container(
                image,
                command=init_argv(
                    self.trusted_pythons(),
                    DRIVER_ARGV,
                    denied_syscalls_bpf(network=not self.config.network_disabled),
                ),
                user=user or self.config.user,
                environment=SANDBOX_ENV,
                working_dir=WORKDIR,
                labels=owner_labels(self.run_id, label),
                host_config=self.host_config(workspace, heldout, user, labels),
                stdin_open=True,
                network_disabled=self.config.network_disabled,
            )["Id"]
            raw = self.api.attach_socket(
                container_id, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1}
            )
            self.api.start(container_id)
            session = DockerSession(
                self.api, container_id, AttachStream(getattr(raw, "_sock", raw)), self.config
            )
        except BaseException as exc:
            if container_id is not None:
                with contextlib.suppress(docker.errors.DockerException, OSError):
                    remove_container(self.api, container_id)
            if isinstance(exc, docker.errors.ImageNotFound):
                raise SandboxError(
                    f"the sandbox image {self.image!r} is missing. Run `rsi image build`."
                ) from exc
            if isinstance(exc, docker.errors.DockerException | OSError):
                raise SandboxError(f"could not start a sandbox container: {exc}. {ENGINE_HELP}") from exc
            raise
        try:
            session.wait_ready()
        except BaseException:
            session.close()
            raise
        return session

    def remove_orphans(self) -> int:
        """Remove sandboxes whose owning process on this host is gone (a crashed run's leftovers)."""
        return remove_orphans(self.client)

    def run_sandboxes(self) -> int:
        try:
            held = self.client.api.containers(
                all=True, filters={"label": [SANDBOX_LABEL, f"rsi.run_id={self.run_id}"]}
            )
        except (docker.errors.DockerException, OSError) as exc:
            raise SandboxError(f"could not list sandbox containers: {exc}. {ENGINE_HELP}") from exc
        return len(held)

    def remove_run_sandboxes(self) -> int:
        return remove_orphans(self.client, run_id=self.run_id)


def remove_orphans(client: docker.DockerClient, run_id: str | None = None) -> int:
    """Remove this host's sandboxes whose owner process is gone, and every sandbox of `run_id`."""
    removed = 0
    try:
        found = client.api.containers(all=True, filters={"label": SANDBOX_LABEL})
    except (docker.errors.DockerException, OSError) as exc:
        raise SandboxError(f"could not list sandbox containers: {exc}. {ENGINE_HELP}") from exc
    for container in found:
        labels = container.get("Labels") or {}
        mine = labels.get("rsi.host") == socket.gethostname()
        owner_gone = mine and not pid_alive(int(labels.get("rsi.pid", "0") or 0))
        if owner_gone or (run_id is not None and labels.get("rsi.run_id") == run_id):
            remove_container(client.api, container["Id"])
            removed += 1
    return removed
