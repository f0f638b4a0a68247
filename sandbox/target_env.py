"""Per-target dependencies: `[sandbox] packages` (pip) and `apt` (Debian) in a target's rsi.toml.

Docker: `rsi image build --target DIR` builds an image of the target's own on top of its base
image (`[sandbox].image`), tagged by the hash of its recipe, so a second build is a no-op. The pip
packages are downloaded and unpacked on the host (the host's pip, with whatever index or proxy it
is configured with) for the image's Python version and copied into the image, so no step inside
the build needs a package index; apt packages are installed by the build with apt-get.

bubblewrap: a virtualenv of the target's own (numpy, pytest and the packages), built once under
the cache directory and keyed by the same kind of hash; the sandbox runs it instead of the
environment rsi itself runs in, so a candidate sees its packages and none of rsi's.

    tag = target_image_tag(spec)                 # "rsi-target-digits:3f2a…" (or the base image)
    build_target_image(spec)                     # idempotent
    env = ensure_bwrap_env(spec)                 # Path of the environment's prefix
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path

from core.errors import SandboxError
from core.target import TargetSpec

BASE_PACKAGES = ["numpy", "pytest"]
"""What every bwrap environment has, as the base image does."""
SITE_PACKAGES = "/usr/local/lib/python{version}/dist-packages"
"""Where the image's Debian Python looks first: the target's packages win over Debian's copies."""
RECIPE_LABEL = "rsi.recipe"
CACHE_ENV = "RSI_CACHE_DIR"


def has_dependencies(spec: TargetSpec) -> bool:
    return bool(spec.sandbox.packages or spec.sandbox.apt)


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "target"


def image_recipe(spec: TargetSpec) -> str:
    text = json.dumps(
        {"base": spec.sandbox.image, "packages": spec.sandbox.packages, "apt": spec.sandbox.apt},
        sort_keys=True,
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def target_image_tag(spec: TargetSpec) -> str:
    """The image a target runs in: its base image, or its own when it declares dependencies."""
    if not has_dependencies(spec):
        return spec.sandbox.image
    return f"rsi-target-{_slug(spec.target.name)}:{image_recipe(spec)}"


def image_python_version(image: str) -> str:
    """The `major.minor` of the image's python3, asked of the image itself."""
    import docker.errors

    from sandbox.docker_engine import connect

    try:
        output = connect().containers.run(
            image,
            ["python3", "-c", "import sys; print(f'{sys.version_info[0]}.{sys.version_info[1]}')"],
            remove=True,
            network_disabled=True,
            labels={"rsi.purpose": "image-probe"},
        )
    except docker.errors.DockerException as exc:
        raise SandboxError(
            f"could not run python3 in the base image {image!r} ({exc}); build it first with `rsi image build`."
        ) from exc
    return output.decode().strip()


def download_packages(packages: list[str], python_version: str, into: Path) -> None:
    """Unpack binary wheels of `packages` (and their dependencies) for CPython `python_version` on
    x86-64/aarch64 Linux into `into`, with the host's pip."""
    machine = os.uname().machine
    platforms = [f"manylinux2014_{machine}", f"manylinux_2_28_{machine}", f"manylinux_2_17_{machine}"]
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--target",
        str(into),
        "--only-binary=:all:",
    ]
    command += [f"--platform={platform}" for platform in platforms]
    command += [f"--python-version={python_version}", "--implementation=cp", *packages]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SandboxError(
            f"pip could not fetch [sandbox].packages = {packages} as wheels for Python {python_version}:\n"
            f"{(done.stdout + done.stderr)[-1500:]}\nCheck the package names and that a wheel exists."
        )


def dockerfile(spec: TargetSpec, recipe: str, python_version: str) -> str:
    lines = [f"FROM {spec.sandbox.image}", "USER root"]
    if spec.sandbox.apt:
        lines.append(
            "RUN apt-get update && apt-get install -y --no-install-recommends "
            + " ".join(spec.sandbox.apt)
            + " && rm -rf /var/lib/apt/lists/*"
        )
    if spec.sandbox.packages:
        lines.append(f"COPY packages/ {SITE_PACKAGES.format(version=python_version)}/")
    lines += ["WORKDIR /workspace", f'LABEL {RECIPE_LABEL}="{recipe}"']
    return "\n".join(lines) + "\n"


def build_target_image(spec: TargetSpec, force: bool = False, say: Callable[[str], None] = print) -> str:
    """Build the target's own image unless it is current; return its tag."""
    import docker.errors

    from sandbox.docker_engine import connect

    tag = target_image_tag(spec)
    if not has_dependencies(spec):
        say(f"{spec.target.name} declares no [sandbox] packages or apt: it runs in {tag} as it is.")
        return tag
    client, recipe = connect(), image_recipe(spec)
    try:
        if not force and (client.images.get(tag).labels or {}).get(RECIPE_LABEL) == recipe:
            say(f"image {tag} is current; nothing to do. Use --force to rebuild.")
            return tag
    except docker.errors.ImageNotFound:
        pass
    version = image_python_version(spec.sandbox.image)
    with tempfile.TemporaryDirectory(prefix="rsi-target-image-") as tmp:
        context = Path(tmp)
        (context / "packages").mkdir()
        if spec.sandbox.packages:
            say(f"fetching {', '.join(spec.sandbox.packages)} for Python {version} on the host …")
            download_packages(spec.sandbox.packages, version, context / "packages")
        (context / "Dockerfile").write_text(dockerfile(spec, recipe, version), encoding="utf-8")
        say(f"building {tag} on {spec.sandbox.image} …")
        _docker_build(client, context, tag)
    return tag


def _docker_build(client: object, context: Path, tag: str) -> None:
    import docker.errors

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        archive.add(str(context), arcname=".")
    buffer.seek(0)
    try:
        client.images.build(fileobj=buffer, custom_context=True, tag=tag, rm=True, pull=False)  # type: ignore[attr-defined]
    except docker.errors.BuildError as exc:
        log = "".join(str(chunk.get("stream", "")) for chunk in exc.build_log)[-1500:]
        raise SandboxError(f"building {tag} failed: {exc.msg}\n{log}") from exc
    except docker.errors.APIError as exc:
        raise SandboxError(f"building {tag} failed: {exc}") from exc


# -- bubblewrap ------------------------------------------------------------------------------------


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "rsi")


def env_recipe(spec: TargetSpec) -> str:
    text = json.dumps({"python": sys.version, "packages": [*BASE_PACKAGES, *spec.sandbox.packages]})
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def ensure_bwrap_env(spec: TargetSpec, say: Callable[[str], None] = print) -> Path:
    """The target's own Python environment for bwrap, built the first time (and only once, even
    when several processes ask at the same moment)."""
    root = cache_dir() / "envs"
    root.mkdir(parents=True, exist_ok=True)
    env = root / f"{_slug(spec.target.name)}-{env_recipe(spec)}"
    done_marker = env / ".rsi-complete"
    with open(root / f"{env.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if done_marker.is_file():
            return env
        shutil.rmtree(env, ignore_errors=True)
        say(f"building the bwrap environment of {spec.target.name} ({', '.join(spec.sandbox.packages)}) …")
        base_python = Path(sys.base_prefix) / "bin" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
        _run([str(base_python), "-m", "venv", "--without-pip", str(env)], "create the environment")
        packages = [*BASE_PACKAGES, *spec.sandbox.packages]
        _run(
            [
                sys.executable,
                "-m",
                "pip",
                "--python",
                str(env / "bin" / "python"),
                "install",
                "-q",
                *packages,
            ],
            f"install {packages}",
        )
        done_marker.write_text(json.dumps(packages) + "\n", encoding="utf-8")
    return env


def _run(command: list[str], what: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SandboxError(
            f"could not {what} for the bwrap environment:\n{(done.stdout + done.stderr)[-1500:]}"
        )
