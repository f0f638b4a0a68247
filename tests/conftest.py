"""Shared fixtures. Docker tests use the real engine; with CI=true a missing engine fails them."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from rsi.target import TargetSpec
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
    leftovers = client.containers.list(all=True, filters={"label": mine})
    for container in leftovers:
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
    """A unified diff of one file; None on either side means the file does not exist there."""
    import difflib

    lines = difflib.unified_diff(
        (before or "").splitlines(keepends=True),
        (after or "").splitlines(keepends=True),
        fromfile=f"a/{relative}" if before is not None else "/dev/null",
        tofile=f"b/{relative}" if after is not None else "/dev/null",
    )
    return "".join(lines)


@pytest.fixture
def diff_maker() -> Iterator:  # type: ignore[type-arg]
    yield make_diff
