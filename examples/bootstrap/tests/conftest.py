"""Shared fixtures; puts the repo root on sys.path so tests can `import data`, `import model`, ...

Run from the repo root:
    python -m pytest -q -x tests
"""

import os
import subprocess
import sys

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

TEACHER0 = os.path.join(REPO_ROOT, "teacher0.npz")


def run_script(*args: str) -> subprocess.CompletedProcess:
    """Run `python <args>` from the repo root, capturing output (never raises on failure)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    return subprocess.run(
        [sys.executable, *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="session")
def trained_model_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A model.npz from a short CLI training run on the gen-0 teacher (shared across tests)."""
    out_dir = tmp_path_factory.mktemp("run_seed0")
    result = run_script(
        "train.py", "--teacher", TEACHER0, "--seed", "0", "--out", str(out_dir), "--steps", "60"
    )
    assert result.returncode == 0, result.stderr
    return str(out_dir / "model.npz")
