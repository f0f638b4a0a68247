"""The isolation backends by name, each built from a SandboxConfig with `image` and `run_id`: on
this machine by the composition root, on a Ray worker node by sandbox.ray_node. Kept free of heavy
imports (the CLI offers the names in `--help`)."""

from __future__ import annotations

from core.registry import Registry

BACKENDS = Registry(
    "backend",
    {
        "docker": "sandbox.docker_backend.DockerBackend",
        "bwrap": "sandbox.bwrap_backend.BwrapBackend",
    },
    where="--backend (run config `backend`)",
)
