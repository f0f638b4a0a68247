"""A training codebase written outside the project, as its owner would bring it: its own rsi.toml,
its own tests, its held-out `.npz` outside its tree. Real `rsi` processes, real sandboxes, real git."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

RSI = str(Path(sys.executable).with_name("rsi"))

TRAIN = '''
"""Nearest-centroid classifier: python train.py --seed S --out DIR --steps N"""
import argparse
import os
from dataclasses import dataclass

import numpy as np

from task import make_data


@dataclass
class Config:
    pool: int = 400
    shrink: float = 0.5


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--steps", type=int, required=True)
    args = parser.parse_args()
    config = Config()
    x, y = make_data(np.random.default_rng(args.seed), config.pool)
    centroids = np.zeros((3, x.shape[1]))
    for step in range(args.steps):  # one running-mean update per step
        row = step % len(x)
        centroids[y[row]] += (x[row] - centroids[y[row]]) * config.shrink / (1 + step // len(x))
    os.makedirs(args.out, exist_ok=True)
    np.savez(os.path.join(args.out, "model.npz"), centroids=centroids)


if __name__ == "__main__":
    main()
'''

PREDICT = '''
"""python predict.py --model M --inputs X --out P: one class id per row"""
import argparse

import numpy as np

parser = argparse.ArgumentParser()
parser.add_argument("--model", required=True)
parser.add_argument("--inputs", required=True)
parser.add_argument("--out", required=True)
args = parser.parse_args()
centroids = np.load(args.model)["centroids"]
x = np.load(args.inputs)
distances = ((x[:, None, :] - centroids[None, :, :]) ** 2).sum(axis=2)
np.save(args.out, distances.argmin(axis=1).astype(np.float64))
'''

TASK = """
import numpy as np

CENTRES = np.array([[2.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 2.0]])


def make_data(rng, size):
    y = rng.integers(0, 3, size=size)
    return CENTRES[y] + rng.normal(0.0, 1.0, size=(size, 3)), y
"""

ISOLATION_TEST = """
from pathlib import Path

import numpy as np

from task import make_data


def test_the_data_has_three_classes():
    _, y = make_data(np.random.default_rng(0), 300)
    assert set(y.tolist()) == {{0, 1, 2}}


def test_no_heldout_data_can_be_read_while_the_tests_run():
    assert not Path({heldout!r}).exists(), "the owner's held-out file is visible"
    assert not Path({heldout_dir!r}).exists(), "the directory of the held-out file is visible"
    assert not (Path("/heldout").is_dir() and any(Path("/heldout").iterdir())), "held-out inputs staged"
"""

RSI_TOML = """
[target]
name = "centroids"
description = "A nearest-centroid classifier of three Gaussian blobs; scored by accuracy."

[commands]
test = "python -m pytest -q tests"
train = "python train.py --seed {seed} --out {out} --steps {steps}"
predict = "python predict.py --model {out}/model.npz --inputs {inputs} --out {predictions}"

[metric]
name = "accuracy"

[budget]
steps = 300
train_seconds = 30

[protected]
paths = ["rsi.toml", "tests/", "predict.py"]
"""


def owner_accuracy(target: Path, heldout: Path, seed: int, steps: int, scratch: Path) -> float:
    """The owner's own way of scoring their baseline: train, predict, compare, on the host."""
    out = scratch / f"owner-{seed}"
    subprocess.run(
        [sys.executable, "train.py", "--seed", str(seed), "--out", str(out), "--steps", str(steps)],
        cwd=target,
        check=True,
    )
    data = np.load(heldout)
    np.save(scratch / "x.npy", data["inputs"])
    model, inputs, predictions = out / "model.npz", scratch / "x.npy", scratch / "p.npy"
    subprocess.run(
        [
            sys.executable,
            "predict.py",
            "--model",
            str(model),
            "--inputs",
            str(inputs),
            "--out",
            str(predictions),
        ],
        cwd=target,
        check=True,
    )
    return float(np.mean(np.load(predictions) == data["labels"]))


def write_target(root: Path, heldout: Path, contract: bool = True) -> Path:
    """The owner's repo, committed; without `contract`, as it was before it met rsi (no rsi.toml)."""
    target = root / "centroids"
    (target / "tests").mkdir(parents=True)
    (target / "train.py").write_text(textwrap.dedent(TRAIN), encoding="utf-8")
    (target / "predict.py").write_text(textwrap.dedent(PREDICT), encoding="utf-8")
    (target / "task.py").write_text(textwrap.dedent(TASK), encoding="utf-8")
    if contract:
        (target / "rsi.toml").write_text(RSI_TOML, encoding="utf-8")
    (target / "pytest.ini").write_text("[pytest]\npythonpath = .\n", encoding="utf-8")
    isolation = ISOLATION_TEST.format(heldout=str(heldout), heldout_dir=str(heldout.parent))
    (target / "tests" / "test_task.py").write_text(textwrap.dedent(isolation), encoding="utf-8")
    for command in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "centroids"]):
        subprocess.run(
            ["git", "-c", "user.name=owner", "-c", "user.email=owner@example.org", *command],
            cwd=target,
            check=True,
        )
    return target


def write_heldout(path: Path) -> None:
    exec_scope: dict[str, Any] = {}
    exec(textwrap.dedent(TASK), exec_scope)
    rng = np.random.default_rng(2024)
    inputs, labels = exec_scope["make_data"](rng, 500)
    lockbox_inputs, lockbox_labels = exec_scope["make_data"](rng, 300)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, inputs=inputs, labels=labels, lockbox_inputs=lockbox_inputs, lockbox_labels=lockbox_labels)


def rsi(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [RSI, *args],
        capture_output=True,
        text=True,
        timeout=600,
        env={"PATH": "/usr/bin:/bin", "COLUMNS": "200"},
    )


def events(run_dir: Path) -> list[dict[str, Any]]:
    lines = (run_dir / "trajectory.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


@pytest.mark.parametrize(
    "backend",
    [pytest.param("bwrap", marks=pytest.mark.bwrap), pytest.param("docker", marks=pytest.mark.docker)],
)
def test_an_own_target_with_an_outside_npz_runs_end_to_end(
    tmp_path: Path, backend: str, request: Any
) -> None:
    if backend == "docker":
        request.getfixturevalue("docker_client")
    heldout = tmp_path / "owner-data" / "heldout.npz"
    write_heldout(heldout)
    target = write_target(tmp_path / "code", heldout)
    run_dir = tmp_path / "run"
    done = rsi(
        "run", "--target", str(target), "--heldout", str(heldout), "--headless", "--backend", backend,
        "--generations", "1", "--seeds", "1", "--run-dir", str(run_dir),
    )  # fmt: skip
    assert done.returncode == 0, (done.stdout[-3000:], done.stderr[-3000:])

    recorded = events(run_dir)
    started = next(e for e in recorded if e["kind"] == "run_started")["data"]
    assert started["config"]["heldout"] == str(heldout)
    assert started["heldout"]["sha256"] == __import__("hashlib").sha256(heldout.read_bytes()).hexdigest()
    baseline = next(e for e in recorded if e["kind"] == "baseline")["data"]["evaluation"]
    assert baseline["failure"] is None and baseline["tests"]["failed"] == 0, baseline["tests"]
    assert baseline["tests"]["passed"] >= 2
    rsi_score = baseline["metric"]["per_seed"]["0"]
    assert rsi_score == pytest.approx(owner_accuracy(target, heldout, 0, 300, tmp_path), abs=1e-12)
    assert baseline["metric"]["direction"] == "higher" and 0.5 < rsi_score <= 1.0

    np.savez(heldout, inputs=np.zeros((3, 3)), labels=np.zeros(3))
    changed = rsi("resume", str(run_dir), "--headless")
    assert changed.returncode != 0
    message = " ".join(changed.stderr.split())
    assert "changed since the run started" in message and str(heldout) in message, message


def test_a_heldout_file_inside_the_target_is_refused(tmp_path: Path) -> None:
    inside = tmp_path / "code" / "centroids-data.npz"
    write_heldout(inside)
    target = write_target(tmp_path / "code", inside)
    moved = target / "heldout.npz"
    inside.rename(moved)
    done = rsi(
        "evaluate", "/dev/null", "--target", str(target), "--heldout", str(moved), "--backend", "bwrap"
    )
    message = " ".join(done.stderr.split())
    assert done.returncode == 2 and "inside the target's tree" in message, message


def test_no_heldout_set_at_all_says_what_to_pass(tmp_path: Path) -> None:
    target = write_target(tmp_path / "code", tmp_path / "nowhere.npz")
    done = rsi("evaluate", "/dev/null", "--target", str(target), "--backend", "bwrap")
    message = " ".join(done.stderr.split())
    assert done.returncode == 2 and "--heldout" in message and "[metric].heldout" in message, message
