"""The node side of the Ray placement: what runs on a worker node, with that node's own engine.

A `SandboxHost` is one candidate's sandbox on one node. The head creates it as a Ray actor pinned
to the node; it builds the node's local backend (docker or bwrap) from the run's `SandboxConfig`,
unpacks the staged tree the head shipped (a tar archive), opens one session on it and runs the
session's calls for the head. Every call arrives and every answer leaves as one pickled blob, so
the head checks everything it sends at a single place (see sandbox/ray_placement.py).

Nothing here scores, judges or records: held-out labels never reach a node. The `heldout` dir the
head mirrors here holds the staged *inputs*, and only while the head's own dir holds them.

`survey_node()` describes a node (engine, image id, rsi version, hardware kind) without opening a
sandbox, for the head's choice of nodes and for `rsi doctor --ray`.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import io
import os
import pickle
import platform
import shutil
import socket
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from core.errors import ConfigError, SandboxError
from sandbox.backends import BACKENDS
from sandbox.base import Backend, SandboxConfig


class NodeReport(BaseModel):
    """What a worker node offers, as it reports it itself."""

    node_id: str
    address: str
    """The node's IP address as Ray knows it."""
    hostname: str
    backend: str
    image_id: str | None = None
    """Id of the sandbox image on the node's engine (bwrap: the bound Python prefix); None: missing."""
    rsi_version: str | None = None
    trusted_pythons: tuple[str, ...] = ()
    """The interpreters the test gate runs inside this node's sandboxes."""
    kind: str = ""
    """Hardware kind (machine, CPU model, cores): budgets compare runs on the same kind only."""
    problem: str | None = None
    """Why the node cannot run sandboxes (no engine, no image, ...); None when it can."""


def rsi_version() -> str | None:
    try:
        return importlib.metadata.version("rsi-sandbox")
    except importlib.metadata.PackageNotFoundError:
        return None


def node_kind() -> str:
    """Machine, CPU model and core count: what decides how long the same work takes here."""
    model = platform.processor() or ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{platform.machine()} {model} x{os.cpu_count()}".strip()


def build_backend(backend: str, config: SandboxConfig, image: str, run_id: str) -> Backend:
    built: Backend = BACKENDS.build(backend, config, image=image, run_id=run_id)
    return built


def _this_node() -> tuple[str, str]:
    import ray

    context = ray.get_runtime_context()
    return context.get_node_id(), ray.util.get_node_ip_address()


def survey_node(backend: str, config_json: str, image: str, run_id: str) -> NodeReport:
    """Describe this node for the head; a node that cannot run sandboxes says why."""
    node_id, address = _this_node()
    report = NodeReport(
        node_id=node_id,
        address=address,
        hostname=socket.gethostname(),
        backend=backend,
        rsi_version=rsi_version(),
        kind=node_kind(),
    )
    try:
        local = build_backend(backend, SandboxConfig.model_validate_json(config_json), image, run_id)
        report.image_id = local.image_id()
        report.trusted_pythons = local.trusted_pythons()
        if report.image_id is None:
            report.problem = (
                f"the sandbox image {image!r} is not on this node's engine (run `rsi image build`)"
            )
    except (SandboxError, ConfigError, OSError) as exc:
        report.problem = f"{backend} backend unusable: {exc}"
    except Exception as exc:  # the engine's client raises its own family (docker.errors)
        report.problem = f"{backend} backend unusable: {type(exc).__name__}: {exc}"
    return report


def remove_node_orphans(backend: str, config_json: str, image: str, run_id: str) -> int:
    """Remove this node's sandboxes whose owner process is gone (a lost node's, a killed head's)."""
    local = build_backend(backend, SandboxConfig.model_validate_json(config_json), image, run_id)
    return local.remove_orphans()


def count_node_run_sandboxes(backend: str, config_json: str, image: str, run_id: str) -> int:
    """How many sandboxes of this run this node's engine still holds."""
    local = build_backend(backend, SandboxConfig.model_validate_json(config_json), image, run_id)
    return local.run_sandboxes()


def remove_node_run_sandboxes(backend: str, config_json: str, image: str, run_id: str) -> int:
    """Remove every sandbox of this run this node's engine still holds."""
    local = build_backend(backend, SandboxConfig.model_validate_json(config_json), image, run_id)
    return local.remove_run_sandboxes()


def unpack_tree(archive: bytes, destination: Path) -> None:
    """Unpack the head's tar of a staged tree; members that would land outside are refused."""
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:") as tar:
        tar.extractall(destination, filter="data")


class SandboxHost:
    """One candidate's sandbox on this node (run as a Ray actor, one per session)."""

    def __init__(self, blob: bytes) -> None:
        """blob = pickle((backend name, SandboxConfig as JSON, image, run id))."""
        backend, config_json, image, run_id = pickle.loads(blob)
        self.backend = build_backend(backend, SandboxConfig.model_validate_json(config_json), image, run_id)
        self.root = Path(tempfile.mkdtemp(prefix="rsi-node-"))
        self.heldout = self.root / "heldout"
        self.session: Any = None

    def where(self) -> tuple[str, str]:
        """(node id, node address) of this sandbox."""
        return _this_node()

    def open(self, archive: bytes, blob: bytes) -> bytes:
        """blob = pickle((with_heldout, label, user)); answer = pickle((ok, error or None))."""
        with_heldout, label, user = pickle.loads(blob)
        try:
            self._open(archive, with_heldout, label, user)
        except SandboxError as exc:
            return pickle.dumps((False, str(exc)))
        return pickle.dumps((True, None))

    def _open(self, archive: bytes, with_heldout: bool, label: str, user: str | None) -> None:
        workspace = self.root / "workspace"
        workspace.mkdir()
        unpack_tree(archive, workspace)
        heldout = None
        if with_heldout:
            self.heldout.mkdir()
            heldout = self.heldout
        self.session = self.backend.open(workspace, heldout, label, user=user)

    def mirror_heldout(self, files: dict[str, bytes]) -> None:
        """Make the node's heldout dir hold exactly `files` (the head's dir at this moment)."""
        for present in self.heldout.iterdir():
            if present.name not in files:
                present.unlink()
        for name, data in files.items():
            path = self.heldout / name
            path.write_bytes(data)
            path.chmod(0o644)

    def call(self, blob: bytes) -> bytes:
        """Run one session method: blob = pickle((method, args)); answer = pickle((ok, value))."""
        method, args = pickle.loads(blob)
        try:
            if method == "mirror_heldout":
                self.mirror_heldout(*args)
                return pickle.dumps((True, None))
            return pickle.dumps((True, getattr(self.session, method)(*args)))
        except SandboxError as exc:
            return pickle.dumps((False, str(exc)))

    def close(self) -> None:
        try:
            if self.session is not None:
                self.session.close()
        finally:
            self.session = None
            shutil.rmtree(self.root, ignore_errors=True)
