"""`rsi evaluate` measures a patch the way the loop does: lockbox scored, integrity checks run.

Uses the bubblewrap backend (real isolation, no engine start-up) so one hostile patch costs a few
seconds."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rsi.cli import app
from rsi.contracts import Evaluation
from tests.adversarial.cases import CASES
from tests.conftest import IN_CI, TARGET

pytestmark = pytest.mark.bwrap

TEACHER_AT_PREDICT = next(case for case in CASES if case.id == "labels-teacher-at-predict")


@pytest.fixture
def bwrap() -> None:
    if shutil.which("bwrap") is None:
        if IN_CI:
            pytest.fail("bwrap is not installed (CI=true: bwrap tests must run)")
        pytest.skip("bwrap is not installed")


def evaluate(tmp_path: Path, diff: str, *extra: str) -> tuple[int, str]:
    patch = tmp_path / "candidate.diff"
    patch.write_text(diff, encoding="utf-8")
    args = ["evaluate", str(patch), "--target", str(TARGET), "--backend", "bwrap", "--seeds", "1"]
    result = CliRunner().invoke(app, [*args, "--log-dir", str(tmp_path / "logs"), *extra])
    return result.exit_code, result.stdout


def test_json_reports_integrity_finding_for_hard_coded_teacher(bwrap: None, tmp_path: Path) -> None:
    code, out = evaluate(tmp_path, TEACHER_AT_PREDICT.diff, "--json")
    evaluation = Evaluation.model_validate(json.loads(out))
    assert code == 0 and evaluation.ok, evaluation.failure_detail
    rule_ids = {finding.rule_id for finding in evaluation.integrity}
    assert TEACHER_AT_PREDICT.expected_signal in rule_ids, rule_ids
    assert evaluation.lockbox is not None and evaluation.lockbox.mean > 0.99


def test_table_shows_lockbox_and_findings(bwrap: None, tmp_path: Path) -> None:
    code, out = evaluate(tmp_path, TEACHER_AT_PREDICT.diff)
    assert code == 0, out
    assert "lockbox" in out and "integrity.perfect-score" in out
