"""The bootstrap target evaluated by the trusted harness in real sandboxes: it trains from the
teacher mounted read-only at /teacher, and no true answer is readable in any phase."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from core.target import TargetSpec
from sandbox.base import SandboxConfig
from sandbox.bwrap_backend import BwrapBackend
from sandbox.evaluate import TrustedEvaluator
from sandbox.heldout import load_provider
from sandbox.lineage import Lineage
from sandbox.teacher import TeacherStore
from tests.conftest import IN_CI, ROOT, make_diff

BOOTSTRAP = ROOT / "examples" / "bootstrap"
PROVIDER = ROOT / "examples" / "bootstrap-heldout.py"
IMPORTS = "import numpy as np\nfrom config import TrainConfig\n"

pytestmark = pytest.mark.bwrap


def probe(needle_hex: str) -> str:
    """Code run whenever data.py is imported (tests, train and predict): look for the true answers'
    bytes in every place a candidate can read, and report the teacher it was given."""
    return f'''
import hashlib as _hashlib, os as _os, sys as _sys
_needle = bytes.fromhex("{needle_hex}")
for _root in ("/heldout", "/teacher", "/src", "/workspace", "/tmp", "/home", "/etc", "/opt", "/root", "/var"):
    for _d, _dirs, _files in _os.walk(_root):
        _dirs[:] = [x for x in _dirs if x != "site-packages"]
        for _f in _files:
            try:
                _data = open(_os.path.join(_d, _f), "rb").read()
            except OSError:
                continue
            if _needle in _data:
                _sys.exit("TRUE ANSWERS FOUND IN " + _os.path.join(_d, _f))
_teacher = open("/teacher/model.npz", "rb").read()
print("probe: no true answer readable; teacher", _hashlib.sha256(_teacher).hexdigest(), file=_sys.stderr)
'''


@pytest.fixture
def evaluator(tmp_path: Path) -> TrustedEvaluator:
    if shutil.which("bwrap") is None:
        if IN_CI:
            pytest.fail("bwrap is not installed (CI=true: bwrap tests must run)")
        pytest.skip("bwrap is not installed")
    spec = TargetSpec.load(BOOTSTRAP)
    spec.budget.steps, spec.budget.train_seconds = 150, 60
    assert spec.teacher is not None
    store = TeacherStore(tmp_path / "teachers")
    sha = store.put((BOOTSTRAP / spec.teacher.initial).read_bytes())
    config = SandboxConfig(memory_mb=512, workspace_mb=32, tmp_mb=64, teacher_dir=store.mount_dir(sha))
    backend = BwrapBackend(config, image="unused", run_id="test-bootstrap")
    heldout = load_provider(PROVIDER).selection(seed=5, size=300)
    lineage = Lineage.create(tmp_path / "lineage", BOOTSTRAP)
    return TrustedEvaluator(spec, lineage, backend, heldout, seeds=[0], log_dir=tmp_path / "logs")


def test_the_target_trains_from_the_mounted_teacher_and_is_scored(evaluator: TrustedEvaluator) -> None:
    result = evaluator.evaluate(evaluator.lineage.head(), "", label="baseline")
    assert result.ok, result.failure_detail
    assert result.metric is not None and 0.0 <= result.metric.mean < 0.3  # the gen-0 teacher's level
    assert result.tests and result.tests.passed >= 20


def test_no_true_answer_is_readable_in_any_phase(evaluator: TrustedEvaluator) -> None:
    labels = evaluator.heldout.labels
    needle = labels[:4].tobytes().hex()
    diff = make_diff(BOOTSTRAP, "data.py", IMPORTS, IMPORTS + probe(needle))
    result = evaluator.evaluate(evaluator.lineage.head(), diff, label="probe")
    assert result.ok, result.failure_detail
    teacher = hashlib.sha256((BOOTSTRAP / "teacher0.npz").read_bytes()).hexdigest()
    logs = {phase.phase: Path(phase.log_file or "").read_text() for phase in result.phases if phase.log_file}
    reported = [
        name for name, text in logs.items() if f"probe: no true answer readable; teacher {teacher}" in text
    ]
    assert any(name.startswith("train") for name in reported), logs.keys()
    assert any(name.startswith("predict") for name in reported), logs.keys()
