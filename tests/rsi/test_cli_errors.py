"""What a newcomer meets first: errors that name the problem, choices in --help. Real `rsi`
processes, real files."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from rsi.cli import verify_table
from rsi.registry import BACKENDS, REVIEW_MODES, user_proposers
from rsi.search.strategies import STRATEGIES
from rsi.verify import COLUMNS, Check, GenerationCheck, VerifyReport
from tests.conftest import ROOT

RSI = str(Path(sys.executable).with_name("rsi"))


def rsi(*args: str, cwd: Path = ROOT, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [RSI, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": "/usr/bin:/bin", "COLUMNS": "200", **(env or {})},
    )


def one_line(text: str) -> str:
    return " ".join(text.split())


def target_with(tmp_path: Path, old: str, new: str) -> Path:
    target = tmp_path / "target"
    shutil.copytree(ROOT / "target_repo", target, ignore=shutil.ignore_patterns(".git"))
    toml = target / "rsi.toml"
    text = toml.read_text(encoding="utf-8")
    assert old in text
    toml.write_text(text.replace(old, new, 1), encoding="utf-8")
    return target


@pytest.mark.parametrize(
    ("option", "valid"),
    [
        ("--backend", list(BACKENDS)),
        ("--proposer", user_proposers()),
        ("--review", list(REVIEW_MODES)),
        ("--strategy", list(STRATEGIES)),
    ],
)
def test_an_unknown_choice_is_a_usage_error_listing_the_valid_ones(option: str, valid: list[str]) -> None:
    done = rsi("run", option, "nosuch", "--headless")
    text = one_line(done.stderr)
    assert done.returncode == 2 and "Traceback" not in done.stderr and "pydantic" not in text
    assert "nosuch" in text and all(repr(name) in text for name in valid), text
    assert len(done.stderr.splitlines()) < 10


def test_help_shows_the_choices_and_an_example() -> None:
    text = one_line(rsi("run", "--help").stdout)
    assert "[docker|bwrap]" in text.replace("<", "[").replace(">", "]")
    assert "offline|claude" in text and "auto|queue|strict|human" in text
    assert "Example: rsi run --target target_repo" in text
    for command in (
        ["evaluate"],
        ["replay"],
        ["report"],
        ["review"],
        ["resume"],
        ["doctor"],
        ["policy", "check"],
    ):
        assert "Example: rsi " in rsi(*command, "--help").stdout, command


def test_an_unknown_key_is_named_with_its_table_and_file(tmp_path: Path) -> None:
    target = target_with(tmp_path, 'direction = "higher"', 'direction = "higher"\nheldotu = "x"')
    done = rsi("evaluate", "/dev/null", "--target", str(target), "--backend", "bwrap")
    text = one_line(done.stderr)
    assert done.returncode == 2
    assert "unknown key [metric].heldotu" in text and str(target / "rsi.toml") in text
    assert "known here: name, direction, heldout" in text


def test_a_missing_table_is_named(tmp_path: Path) -> None:
    target = target_with(tmp_path, "[target]", "[unused]")
    text = one_line(rsi("evaluate", "/dev/null", "--target", str(target)).stderr)
    assert "the table [target] is missing" in text and "unknown key [unused]" in text


def test_accuracy_on_a_regression_heldout_set_is_refused(tmp_path: Path) -> None:
    target = target_with(tmp_path, 'name = "r2"', 'name = "accuracy"')
    done = rsi("evaluate", "/dev/null", "--target", str(target), "--backend", "bwrap")
    text = one_line(done.stderr)
    assert done.returncode == 2
    assert "[metric].name = 'accuracy'" in text and "[metric].heldout = 'teacher-regression'" in text
    assert "r2, mse or mae" in text


def test_a_missing_target_directory_is_called_that(tmp_path: Path) -> None:
    text = one_line(rsi("evaluate", "/dev/null", "--target", str(tmp_path / "nope")).stderr)
    assert "no such target directory" in text and "rsi.toml found" not in text


def test_without_docker_the_error_suggests_bwrap(tmp_path: Path) -> None:
    done = rsi(
        "run", "--headless", "--generations", "0", "--run-dir", str(tmp_path / "run"),
        env={"DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock"},
    )  # fmt: skip
    text = one_line(done.stderr)
    assert done.returncode == 2 and "--backend bwrap" in text, text


def test_doctor_says_the_whole_docker_message(tmp_path: Path) -> None:
    done = rsi("doctor", env={"DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock", "COLUMNS": "400"})
    assert "and check with `rsi doctor`." in done.stdout, done.stdout


def test_an_empty_trajectory_is_an_error_not_a_silent_success(tmp_path: Path) -> None:
    empty = tmp_path / "trajectory.jsonl"
    empty.write_text("", encoding="utf-8")
    for extra in (["--headless"], ["--check"]):
        done = rsi("replay", str(empty), *extra)
        assert done.returncode == 2 and "is empty" in one_line(done.stderr), extra
        assert "intact" not in done.stdout


def test_policy_validate_keeps_every_rule_id_whole_at_80_columns() -> None:
    done = rsi("policy", "validate", "default", env={"COLUMNS": "80"})
    assert done.returncode == 0
    assert max(len(line) for line in done.stdout.splitlines()) <= 80
    for rule_id in ("protected-paths", "environment-and-seeding", "metric-improves", "tests-pass"):
        assert f"│ {rule_id} " in done.stdout, rule_id


def test_the_verify_table_keeps_its_words_whole_at_80_columns() -> None:
    rows = [
        GenerationCheck(g, [Check(n, "3f2a9c1b7e", "3f2a9c1b7e", True) for n in COLUMNS[1:-1]])
        for g in (0, 1)
    ]
    rows[1].checks[3] = Check("metric", "0.6589 ± 0.0203", "0.7012 ± 0.0100", False)
    report = VerifyReport(Path("run/trajectory.jsonl"), rows, [], 1.0, 1.0)
    console = Console(width=80, record=True)
    console.print(verify_table(report))
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "baseline" in text and "DIVERGED" in text and "…" not in text
    assert all(word in text for column in COLUMNS for word in column.split())


def test_the_headless_blocks_keep_rule_ids_and_bracketed_words(tmp_path: Path) -> None:
    from core.trajectory import TrajectoryReader
    from rsi.console import ConsoleObserver
    from tests.review.synthetic import Gen, better_diff, protected_diff, write_run

    gens = [
        Gen("Use [bold]x[/bold] for [metric].heldout", better_diff(), [0.6, 0.61, 0.59], decision="accept"),
        Gen("Train longer", protected_diff(), [0.3, 0.31, 0.29], decision="reject"),
    ]
    run_dir = write_run(tmp_path / "run", gens)
    console = Console(record=True, width=300)
    observer = ConsoleObserver(console=console, progress=False)
    for event in TrajectoryReader(run_dir / "trajectory.jsonl").events():
        observer.on_event(event)
    text = console.export_text()
    assert "input_range 0.5 → 1.0" in text  # what changed, not a diff stat
    assert "Use [bold]x[/bold] for [metric].heldout" in text  # the proposer's words, as written
    assert "[protected-paths]" in text  # the rule id of the deny


def test_an_error_naming_a_long_path_is_one_line_whatever_the_width(tmp_path: Path) -> None:
    """A path or key in an error is never folded at the console's width: a log keeps it whole, so
    it can be copied and searched for."""
    deep = tmp_path.joinpath(*["a-long-folder-name"] * 8, "missing.yaml")
    done = rsi("evaluate", "/dev/null", "--policy", str(deep), env={"COLUMNS": "40"})
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and str(deep) in done.stderr, done.stderr
