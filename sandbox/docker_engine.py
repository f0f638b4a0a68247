"""The connection to the Docker engine, shared by the Docker backend, the image builder and the
target environments (none of them needs the others to reach the engine)."""

from __future__ import annotations

import docker
import docker.errors

from core.errors import SandboxError

ENGINE_HELP = (
    "Is the Docker engine running? Start it (`dockerd &` as root, or `make docker`) and check "
    "with `rsi doctor`. Without a Docker engine, the bubblewrap backend works too: add --backend bwrap."
)


def connect(base_url: str | None = None) -> docker.DockerClient:
    try:
        client = (
            docker.DockerClient(base_url=base_url, timeout=120) if base_url else docker.from_env(timeout=120)
        )
        client.ping()
    except docker.errors.DockerException as exc:
        raise SandboxError(f"cannot reach the Docker engine ({exc}). {ENGINE_HELP}") from exc
    return client


def image_exists(tag: str) -> bool:
    """False only when the engine answers that the image is missing (an unreachable engine is
    explained by the backend)."""
    try:
        connect().images.get(tag)
    except docker.errors.ImageNotFound:
        return False
    except (docker.errors.DockerException, SandboxError):
        return True
    return True
