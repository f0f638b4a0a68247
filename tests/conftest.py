"""Shared fixtures. Docker tests use the real engine; with CI=true a missing engine fails them."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.target import TargetSpec
from sandbox.base import SANDBOX_LABEL, SandboxConfig

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "target_repo"
IMAGE = os.environ.get("RSI_TEST_IMAGE", "rsi-sandbox:latest")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: Docker tests must run, never skip)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def docker_client():  # type: ignore[no-untyped-def]
    try:
        import docker

        client = docker.from_env(timeout=120)
        client.ping()
    except Exception as exc:
        _unavailable(f"no Docker engine reachable: {exc}")
    try:
        client.images.get(IMAGE)
    except Exception:
        _unavailable(f"sandbox image {IMAGE} not built (run `rsi image build`)")
    yield client
    # Only this test process's sandboxes: other runs may share the engine.
    mine = [SANDBOX_LABEL, f"rsi.pid={os.getpid()}"]
    leftovers = labelled_containers(client, mine)
    for container in leftovers:
        with contextlib.suppress(docker.errors.NotFound):  # removed by the engine meanwhile
            container.remove(force=True)
    assert not leftovers, f"tests leaked {len(leftovers)} sandbox container(s)"


@pytest.fixture
def target_spec() -> TargetSpec:
    return TargetSpec.load(TARGET)


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    return SandboxConfig(image=IMAGE)


@pytest.fixture
def target_copy(tmp_path: Path) -> Path:
    """A private copy of the bundled target, safe to modify."""
    copy = tmp_path / "target"
    shutil.copytree(TARGET, copy, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    return copy


def make_diff(root: Path, relative: str, old: str, new: str) -> str:
    """A real unified diff (via git) replacing `old` with `new` in one file of a target tree."""
    path = root / relative
    original = path.read_text() if path.exists() else ""
    if old and old not in original:
        raise AssertionError(f"{old!r} not in {relative}")
    updated = original.replace(old, new, 1) if old else original + new
    return file_diff(relative, original, updated)


def file_diff(relative: str, before: str | None, after: str | None) -> str:
    """A unified diff of one file; None on either side means the file does not exist there. Its
    lines end at line feeds only, as git's do (str.splitlines would also break at a carriage
    return, a form feed or U+2028)."""
    import difflib

    def lines_of(text: str | None) -> list[str]:
        return re.split(r"(?<=\n)(?!\Z)", text) if text else []

    lines = difflib.unified_diff(
        lines_of(before),
        lines_of(after),
        fromfile=f"a/{relative}" if before is not None else "/dev/null",
        tofile=f"b/{relative}" if after is not None else "/dev/null",
    )
    return "".join(lines)


@pytest.fixture
def diff_maker() -> Iterator:  # type: ignore[type-arg]
    yield make_diff


def labelled_containers(client, label: str | list[str]) -> list:  # type: ignore[no-untyped-def,type-arg]
    """Containers carrying `label`, listed without racing the engine's removal of a killed one.

    A full listing inspects each container after listing it, so one the engine removes in between
    raises NotFound; the sparse listing reads only what the list call itself returned, and a
    container gone between the calls is one that is legitimately not left.
    """
    import docker.errors

    for _ in range(20):
        try:
            return client.containers.list(all=True, sparse=True, filters={"label": label})
        except docker.errors.NotFound:
            continue
    return client.containers.list(all=True, sparse=True, filters={"label": label})


def sandboxes_of(client, run_id: str, wait_s: float = 10.0) -> list:  # type: ignore[no-untyped-def,type-arg]
    """The run's containers left after the engine's auto-removal had time to finish (normally ms)."""
    import time

    deadline = time.monotonic() + wait_s
    while True:
        left = labelled_containers(client, f"rsi.run_id={run_id}")
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)


BOTH_BACKENDS = [
    pytest.param("bwrap", marks=pytest.mark.bwrap),
    pytest.param("docker", marks=pytest.mark.docker),
]
"""Parametrize a test over both sandbox backends (`backend_name`), each with its marker."""


def sandbox_backend(name: str, request: pytest.FixtureRequest, run_id: str):  # type: ignore[no-untyped-def]
    """A real backend by name: Docker (its engine required, as the `docker_client` fixture says) or
    bubblewrap."""
    from sandbox.bwrap_backend import BwrapBackend
    from sandbox.docker_backend import DockerBackend

    if name == "docker":
        request.getfixturevalue("docker_client")
        return DockerBackend(SandboxConfig(), image=IMAGE, run_id=run_id)
    return BwrapBackend(SandboxConfig(), image="", run_id=run_id)


def probe_runs(  # type: ignore[no-untyped-def]
    backend_name: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    probe: str,
    runs: int = 2,
    timeout_s: float = 60,
) -> list:
    """A Python `probe` run `runs` times in one real sandbox of that backend, the sandbox reset
    between runs (as between phases): each run's ExecResult."""
    (tmp_path / "ws").mkdir(exist_ok=True)
    results = []
    with sandbox_backend(backend_name, request, f"test-probe-{backend_name}").open(
        tmp_path / "ws", None, "probe"
    ) as s:
        for index in range(runs):
            if index:
                s.reset()
            s.write_file("/tmp/probe.py", probe.encode())
            results.append(s.exec("python3 /tmp/probe.py", timeout_s))
    return results
