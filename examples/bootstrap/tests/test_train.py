"""Training on the teacher's data: CLI, determinism, what the student learns.

Run: python -m pytest -q tests/test_train.py
"""

import ast
import dataclasses
import os

import numpy as np
from config import TrainConfig
from conftest import REPO_ROOT, TEACHER0, run_script
from data import sample_problems
from model import DigitMLP
from train import train


def test_cli_writes_a_model_and_the_kept_share(tmp_path) -> None:
    result = run_script(
        "train.py", "--teacher", TEACHER0, "--seed", "1", "--out", str(tmp_path / "run"), "--steps", "20"
    )
    assert result.returncode == 0, result.stderr
    assert os.path.isfile(tmp_path / "run" / "model.npz")
    last_line = result.stdout.strip().splitlines()[-1]
    assert last_line.startswith("teacher_kept=")
    assert 0.0 < float(last_line.split("=", 1)[1]) <= 1.0


def test_same_seed_and_teacher_give_an_identical_file(tmp_path, trained_model_path) -> None:
    result = run_script(
        "train.py", "--teacher", TEACHER0, "--seed", "0", "--out", str(tmp_path), "--steps", "60"
    )
    assert result.returncode == 0, result.stderr
    with open(trained_model_path, "rb") as a, open(tmp_path / "model.npz", "rb") as b:
        assert a.read() == b.read()


def test_a_missing_teacher_is_a_clear_error(tmp_path) -> None:
    result = run_script(
        "train.py", "--teacher", str(tmp_path / "none.npz"), "--seed", "0", "--out", str(tmp_path)
    )
    assert result.returncode != 0
    assert "cannot load the teacher" in result.stderr


def test_the_student_learns_its_teachers_answers() -> None:
    """With one vote the student imitates its teacher: most digits agree, whatever the truth is."""
    teacher = DigitMLP.load(TEACHER0)
    config = TrainConfig(steps=400, log_every=0, teacher_votes=1, window=1, operand_sampling="uniform")
    student, kept = train(config, teacher, seed=0, log=False)
    assert kept == 1.0
    problems = sample_problems(
        TrainConfig(train_problems=500, operand_sampling="uniform"), np.random.default_rng(9)
    )
    assert (student.predict_digits(problems) == teacher.predict_digits(problems)).mean() > 0.85


def test_every_knob_is_a_literal_with_a_comment() -> None:
    """The offline proposer reads config.py with `ast`: every field a literal on one commented line."""
    with open(os.path.join(REPO_ROOT, "config.py"), encoding="utf-8") as handle:
        source = handle.read()
    lines = source.splitlines()
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            assert isinstance(node.value, ast.Constant), node.target.id
            assert "#" in lines[node.lineno - 1], node.target.id
            found.add(node.target.id)
    assert found == fields
