"""The task encoding and the teacher's data generation. Run: python -m pytest -q tests/test_data.py"""

import numpy as np
import pytest
from config import TrainConfig
from conftest import TEACHER0
from data import (
    DIGITS,
    LIMIT,
    from_digits,
    rewrite,
    sample_problems,
    teacher_label,
    to_digits,
    validate_problems,
)
from model import DigitMLP


@pytest.mark.parametrize("value", [0, 1, 9, 10, LIMIT - 1, 2 * (LIMIT - 1)])
def test_digits_round_trip(value: int) -> None:
    digits = to_digits(np.array([value]))
    assert digits.shape == (1, DIGITS + 1)
    assert from_digits(digits)[0] == value


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.zeros((3, 3)), "shape"),
        (np.zeros(4), "shape"),
        (np.array([[1.0, np.nan]]), "NaN"),
        (np.array([["1", "2"]]), "numeric"),
    ],
)
def test_bad_problems_are_rejected_with_a_reason(bad: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        validate_problems(bad)


def test_operands_are_rounded_and_clipped_into_range() -> None:
    rows = validate_problems(np.array([[-3.0, 2.4], [float(LIMIT) + 5, 7.6]]))
    assert rows.tolist() == [[0, 2], [LIMIT - 1, 8]]


def test_a_rewrite_is_the_same_problem_in_range() -> None:
    rng = np.random.default_rng(0)
    problems = np.concatenate(
        [rng.integers(0, LIMIT, size=(500, 2)), [[0, 0], [LIMIT - 1, LIMIT - 1], [0, LIMIT - 1]]]
    )
    rewritten = rewrite(problems, rng)
    assert np.array_equal(rewritten.sum(axis=1), problems.sum(axis=1))
    assert rewritten.min() >= 0 and rewritten.max() < LIMIT
    assert (rewritten[:500] != problems[:500]).any(axis=1).mean() > 0.9


def test_carry_rich_sampling_makes_long_carry_chains_common() -> None:
    def nines(sampling: str) -> float:
        problems = sample_problems(TrainConfig(operand_sampling=sampling), np.random.default_rng(0))
        return float((to_digits(problems[:, 0]) + to_digits(problems[:, 1]) == 9).mean())

    assert nines("carry_rich") > 3 * nines("uniform")


def test_unknown_sampling_is_rejected() -> None:
    with pytest.raises(ValueError, match="operand_sampling"):
        sample_problems(TrainConfig(operand_sampling="zipf"), np.random.default_rng(0))


def test_one_vote_is_the_teachers_single_pass() -> None:
    teacher = DigitMLP.load(TEACHER0)
    problems = sample_problems(
        TrainConfig(train_problems=300, operand_sampling="uniform"), np.random.default_rng(1)
    )
    digits, kept = teacher_label(teacher, problems, TrainConfig(teacher_votes=1), np.random.default_rng(2))
    assert kept.all()
    assert np.array_equal(digits, teacher.predict_digits(problems))


def test_unanimity_keeps_only_rows_every_vote_agrees_on() -> None:
    teacher = DigitMLP.load(TEACHER0)
    problems = sample_problems(
        TrainConfig(train_problems=300, operand_sampling="uniform"), np.random.default_rng(1)
    )
    config = TrainConfig(teacher_votes=2, min_agreement=1.0)
    digits, kept = teacher_label(teacher, problems, config, np.random.default_rng(2))
    assert 0 < kept.sum() < len(problems)
    assert np.array_equal(digits[kept], teacher.predict_digits(problems[kept]))


def test_voting_makes_the_teachers_data_better_than_its_single_pass() -> None:
    """Better data generation: the sums the teacher votes for are right more often than its first answers."""
    teacher = DigitMLP.load(TEACHER0)
    problems = sample_problems(
        TrainConfig(train_problems=1000, operand_sampling="uniform"), np.random.default_rng(3)
    )
    answers = to_digits(problems.sum(axis=1))
    config = TrainConfig(teacher_votes=5, min_agreement=0.0)
    voted, _ = teacher_label(teacher, problems, config, np.random.default_rng(4))
    assert (voted == answers).mean() > (teacher.predict_digits(problems) == answers).mean() + 0.02
