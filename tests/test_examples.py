"""The bundled example targets run as a user runs them: one short real run each, on both backends."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from core.target import TargetSpec
from tests.conftest import ROOT

RSI = str(Path(sys.executable).with_name("rsi"))
CLASSIFY = ROOT / "examples" / "classify"


def short_run(backend: str, run_dir: Path) -> list[dict[str, Any]]:
    command = [RSI, "run", "--target", str(CLASSIFY), "--backend", backend, "--headless"]
    done = subprocess.run(
        [*command, "--generations", "1", "--seeds", "1", "--run-dir", str(run_dir)],
        capture_output=True,
        text=True,
        timeout=900,
        env={"PATH": "/usr/bin:/bin", "COLUMNS": "200", "HOME": str(Path.home())},
    )
    assert done.returncode == 0, (done.stdout[-3000:], done.stderr[-3000:])
    lines = (run_dir / "trajectory.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def test_the_classify_example_keeps_its_heldout_set_outside_its_tree() -> None:
    spec = TargetSpec.load(CLASSIFY)
    heldout = (CLASSIFY / str(spec.metric.heldout)).resolve()
    assert heldout.is_file() and not heldout.is_relative_to(CLASSIFY)
    assert spec.metric.name == "log_loss" and spec.metric.direction == "lower"
    assert spec.sandbox.packages, "the example proves a package beyond numpy"


@pytest.mark.parametrize(
    "backend",
    [pytest.param("bwrap", marks=pytest.mark.bwrap), pytest.param("docker", marks=pytest.mark.docker)],
)
def test_one_short_run_of_the_classify_example(backend: str, tmp_path: Path, request: Any) -> None:
    if backend == "docker":
        request.getfixturevalue("docker_client")
        from sandbox.target_env import build_target_image

        build_target_image(TargetSpec.load(CLASSIFY), say=lambda _: None)  # a no-op once built
    recorded = short_run(backend, tmp_path / "run")
    baseline = next(e for e in recorded if e["kind"] == "baseline")["data"]["evaluation"]
    assert baseline["failure"] is None and baseline["tests"]["failed"] == 0
    metric = baseline["metric"]
    assert metric["name"] == "log_loss" and metric["direction"] == "lower"
    assert 0.0 < metric["per_seed"]["0"] < 0.8  # a constant predictor scores about 1.39
    checks = {check["check"]: check["status"] for check in baseline["checks"]}
    assert checks["relabelled"] == "clean" and checks["artifact-sensitivity"] == "clean", checks
    started = next(e for e in recorded if e["kind"] == "run_started")["data"]
    assert started["heldout"]["sha256"] and started["config"]["heldout"].endswith("four_class.py")
