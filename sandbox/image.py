"""Building the sandbox image, with or without a container registry.

Two recipes, one result (an image with python3, numpy, pytest, git and an unprivileged user 1000):

- `debootstrap` (the default): bootstraps a minimal Debian root filesystem from the host's own apt
  sources and imports it with `docker import`. Needs root and `debootstrap`; no registry at all.
- any image reference (e.g. `python:3.11-slim`): a two-line Dockerfile on top of it, for machines
  that can pull from a registry.

The image carries a label with the hash of its recipe, so `rsi image build` is a no-op when the
image is already current.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path

import docker
import docker.errors

from core.errors import SandboxError
from sandbox.docker_engine import connect

DEFAULT_TAG = "rsi-sandbox:latest"
DEBIAN_PACKAGES = ["python3", "python-is-python3", "python3-numpy", "python3-pytest", "git", "procps"]
RECIPE_LABEL = "rsi.recipe"
PRUNE = [
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
    "usr/share/locale",
    "var/cache/apt/archives",
    "var/lib/apt/lists",
]
DOCKERFILE = """FROM {base}
RUN pip install --no-cache-dir "numpy<2.3" "pytest<9" 2>/dev/null || (apt-get update && apt-get install -y --no-install-recommends python3-numpy python3-pytest git && rm -rf /var/lib/apt/lists/*)
RUN (command -v useradd >/dev/null && useradd -u 1000 -m sandbox) || adduser -D -u 1000 sandbox
WORKDIR /workspace
LABEL {label}="{recipe}"
"""


def recipe_hash(base: str, suite: str) -> str:
    text = "\n".join([base, suite, *DEBIAN_PACKAGES, DOCKERFILE])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def host_codename() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("VERSION_CODENAME="):
                return line.split("=", 1)[1].strip().strip('"') or "bookworm"
    except OSError:
        pass
    return "bookworm"


def host_debian_mirror() -> str | None:
    """The first Debian archive URI the host's apt is configured with (deb822 or one-line format)."""
    candidates: list[Path] = [Path("/etc/apt/sources.list")]
    source_dir = Path("/etc/apt/sources.list.d")
    if source_dir.is_dir():
        candidates += sorted(source_dir.glob("*.sources")) + sorted(source_dir.glob("*.list"))
    for path in candidates:
        try:
            text = path.read_text()
        except OSError:
            continue
        for match in re.finditer(r"^\s*(?:URIs:\s*|deb\s+(?:\[[^\]]*\]\s*)?)(\S+)", text, re.MULTILINE):
            uri = match.group(1)
            if uri.startswith("http") and "security" not in uri and uri.rstrip("/").endswith("debian"):
                return uri
    return None


def image_is_current(client: docker.DockerClient, tag: str, recipe: str) -> bool:
    try:
        image = client.images.get(tag)
    except docker.errors.ImageNotFound:
        return False
    return (image.labels or {}).get(RECIPE_LABEL) == recipe


def build_image(
    tag: str = DEFAULT_TAG,
    base: str = "debootstrap",
    mirror: str | None = None,
    suite: str | None = None,
    force: bool = False,
    say: Callable[[str], None] = print,
) -> str:
    """Build the sandbox image unless it is already current; return its id."""
    client = connect()
    suite = suite or host_codename()
    recipe = recipe_hash(base, suite)
    if not force and image_is_current(client, tag, recipe):
        say(f"image {tag} is current (recipe {recipe}); nothing to do. Use --force to rebuild.")
        return str(client.images.get(tag).id)
    if base == "debootstrap":
        return _build_debootstrap(client, tag, recipe, mirror, suite, say)
    return _build_from_base(client, tag, recipe, base, say)


def _build_debootstrap(
    client: docker.DockerClient,
    tag: str,
    recipe: str,
    mirror: str | None,
    suite: str,
    say: Callable[[str], None],
) -> str:
    if os.geteuid() != 0:
        raise SandboxError(
            "building the image with debootstrap needs root. Run `sudo rsi image build`, or build from a "
            "registry image: `rsi image build --base python:3.11-slim`."
        )
    if shutil.which("debootstrap") is None:
        say("debootstrap is missing; installing it with apt-get …")
        subprocess.run(["apt-get", "install", "-y", "-qq", "debootstrap"], check=False, capture_output=True)
        if shutil.which("debootstrap") is None:
            raise SandboxError(
                "debootstrap is not installed and apt-get could not install it: `apt-get install debootstrap`."
            )
    mirror = mirror or host_debian_mirror()
    if mirror is None:
        raise SandboxError("found no Debian mirror in the host's apt sources; pass --mirror URL.")
    with tempfile.TemporaryDirectory(prefix="rsi-rootfs-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        say(f"bootstrapping Debian {suite} ({', '.join(DEBIAN_PACKAGES)}) — about a minute …")
        command = [
            "debootstrap",
            "--variant=minbase",
            f"--include={','.join(DEBIAN_PACKAGES)}",
            suite,
            str(rootfs),
            mirror,
        ]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            log = (done.stdout + done.stderr)[-1500:]
            raise SandboxError(f"debootstrap failed (exit {done.returncode}):\n{log}")
        subprocess.run(["chroot", str(rootfs), "useradd", "-u", "1000", "-m", "sandbox"], check=True)
        for relative in PRUNE:
            target = rootfs / relative
            if target.is_dir():
                shutil.rmtree(target)
                target.mkdir(parents=True)
        (rootfs / "workspace").mkdir(exist_ok=True)
        say("importing the root filesystem into Docker …")
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as archive:
            archive.add(str(rootfs), arcname=".")
        buffer.seek(0)
        changes = [
            "WORKDIR /workspace",
            "ENV PATH=/usr/local/bin:/usr/bin:/bin",
            f'LABEL {RECIPE_LABEL}="{recipe}"',
        ]
        return _docker_import(client, buffer, tag, changes)


def _docker_import(client: docker.DockerClient, data: io.BytesIO, tag: str, changes: list[str]) -> str:
    repository, _, version = tag.partition(":")
    try:
        client.api.import_image_from_data(
            data.getvalue(), repository=repository, tag=version or "latest", changes=changes
        )
        return str(client.images.get(tag).id)
    except docker.errors.DockerException as exc:
        raise SandboxError(f"docker import of the bootstrapped root filesystem failed: {exc}") from exc


def _build_from_base(
    client: docker.DockerClient, tag: str, recipe: str, base: str, say: Callable[[str], None]
) -> str:
    say(f"building {tag} from {base} …")
    dockerfile = DOCKERFILE.format(base=base, label=RECIPE_LABEL, recipe=recipe)
    try:
        image, _ = client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=tag, rm=True, pull=False)
    except docker.errors.BuildError as exc:
        log = "".join(str(chunk.get("stream", "")) for chunk in exc.build_log)[-1500:]
        raise SandboxError(f"building {tag} from {base} failed: {exc.msg}\n{log}") from exc
    except docker.errors.APIError as exc:
        raise SandboxError(
            f"building {tag} from {base} failed: {exc}. Can this machine pull {base}?"
        ) from exc
    return str(image.id)
