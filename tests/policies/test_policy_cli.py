"""`rsi policy validate|check`: tables, verdicts, JSON, and exit codes by verdict."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from core.contracts import Evaluation, MetricResult, TestResult
from rsi.cli import app
from tests.conftest import TARGET, make_diff

runner = CliRunner()


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rich wraps to the terminal's width; tests read whole lines."""
    from rsi import cli

    monkeypatch.setattr(cli.console, "width", 250)
    monkeypatch.setattr(cli.errors, "width", 250)


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_validate_prints_the_rules_table() -> None:
    result = runner.invoke(app, ["policy", "validate", "default", "--target", str(TARGET)])
    assert result.exit_code == 0, result.output
    assert "forbidden-code" in result.output and "every example checked" in result.output


def test_validate_reports_a_broken_policy_with_its_line(tmp_path: Path) -> None:
    bad = write(tmp_path, "bad.yaml", "name: x\nrules:\n  - id: a\n    type: nope\n    verdict: deny\n")
    result = runner.invoke(app, ["policy", "validate", bad])
    assert result.exit_code == 2
    assert "bad.yaml:4: rule a: unknown type 'nope'" in result.output


def test_check_exit_codes_follow_the_verdict(tmp_path: Path) -> None:
    allowed = write(tmp_path, "ok.diff", make_diff(TARGET, "config.py", "= 0.02", "= 0.04"))
    forbidden = write(
        tmp_path, "bad.diff", make_diff(TARGET, "train.py", "import time\n", "import time\nimport socket\n")
    )
    review = write(
        tmp_path,
        "log.diff",
        make_diff(TARGET, "config.py", "log_every: int = 500", "log_every: int = 999999"),
    )
    assert runner.invoke(app, ["policy", "check", allowed]).exit_code == 0
    assert runner.invoke(app, ["policy", "check", review]).exit_code == 10
    result = runner.invoke(app, ["policy", "check", "--json", forbidden])
    assert result.exit_code == 11
    verdict = json.loads(result.output)
    assert verdict["verdict"] == "deny" and verdict["findings"][0]["rule_id"] == "forbidden-code"
    assert len(verdict["policy_hash"]) == 64
    assert runner.invoke(app, ["policy", "check", "--policy", "nope.yaml", allowed]).exit_code == 2
    assert runner.invoke(app, ["policy", "check", str(tmp_path / "missing.diff")]).exit_code == 2


def test_check_judges_evaluations_when_given(tmp_path: Path) -> None:
    def evaluation(values: list[float]) -> str:
        measured = Evaluation(
            parent_commit="p" * 40,
            diff_sha256="d",
            backend="docker",
            ok=True,
            tests=TestResult(exit_code=0, passed=1),
            metric=MetricResult(name="r2", direction="higher", per_seed=dict(enumerate(values))),
        )
        return write(tmp_path, f"{values[0]}.json", measured.model_dump_json())

    diff = write(tmp_path, "ok.diff", make_diff(TARGET, "config.py", "= 0.02", "= 0.04"))
    args = ["policy", "check", diff, "--parent", evaluation([0.5, 0.51, 0.49])]
    assert runner.invoke(app, [*args, "--evaluation", evaluation([0.7, 0.71, 0.69])]).exit_code == 0
    worse = runner.invoke(app, [*args, "--evaluation", evaluation([0.4, 0.41, 0.39])])
    assert worse.exit_code == 11 and "metric-improves" in worse.output
