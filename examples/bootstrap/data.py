"""The task (D-digit addition) and the teacher's data generation.

A problem is a row (a, b) of two non-negative integers below 10**DIGITS; its answer is a + b. The
student never sees a true answer: `teacher_label` asks the teacher model, which may spend more
compute than the student does at predict time — answering several equivalent rewrites of each
problem (a + b = (a + k) + (b - k), operands swapped) and voting digit by digit, then dropping the
problems it is least sure of. The harness keeps the true answers for its own scoring.

Usage:
    python data.py        # prints a few problems and the digit encoding of one
"""

import numpy as np
from config import TrainConfig

DIGITS = 8  # digits per operand; an answer has DIGITS + 1 digits
BLANK = 100  # the token for a column below the least significant digit (pairs are 0..99)
LIMIT = 10**DIGITS


def validate_problems(x: np.ndarray) -> np.ndarray:
    """Problems as int64 of shape (n, 2), each operand rounded to a whole number and clipped into
    [0, LIMIT); raise ValueError explaining what is wrong for a non-numeric, misshapen or
    non-finite array."""
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise ValueError(f"problems must be numeric, got dtype {x.dtype}")
    if x.ndim != 2 or x.shape[1] != 2:
        raise ValueError(f"problems must have shape (n, 2), got {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("problems contain NaN or infinite values")
    return np.clip(np.round(x), 0, LIMIT - 1).astype(np.int64)


def to_digits(values: np.ndarray) -> np.ndarray:
    """Integers (n,) -> digits (n, DIGITS + 1), least significant first."""
    powers = 10 ** np.arange(DIGITS + 1, dtype=np.int64)
    return (values[:, None] // powers) % 10


def from_digits(digits: np.ndarray) -> np.ndarray:
    """Digits (n, DIGITS + 1), least significant first -> integers (n,)."""
    return digits @ (10 ** np.arange(DIGITS + 1, dtype=np.int64))


def sample_problems(config: TrainConfig, rng: np.random.Generator) -> np.ndarray:
    """The unlabelled problems the teacher will answer, shape (train_problems, 2)."""
    n = config.train_problems
    a = rng.integers(0, 10, size=(n, DIGITS))
    b = rng.integers(0, 10, size=(n, DIGITS))
    if config.operand_sampling == "carry_rich":
        nines = rng.random((n, DIGITS)) < 0.5  # half the positions sum to 9: long carry chains
        b = np.where(nines, 9 - a, b)
    elif config.operand_sampling != "uniform":
        raise ValueError(
            f"operand_sampling must be 'uniform' or 'carry_rich', got {config.operand_sampling!r}"
        )
    powers = 10 ** np.arange(DIGITS, dtype=np.int64)
    return np.stack([a @ powers, b @ powers], axis=1)


def rewrite(problems: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """An equivalent problem per row: (a + k, b - k) with both operands still in range, maybe swapped."""
    a, b = problems[:, 0], problems[:, 1]
    low = np.maximum(-a, b - (LIMIT - 1))
    high = np.minimum(b, LIMIT - 1 - a)
    k = low + (rng.random(len(a)) * (high - low + 1)).astype(np.int64)
    out = np.stack([a + k, b - k], axis=1)
    swap = rng.random(len(a)) < 0.5
    out[swap] = out[swap][:, ::-1]
    return out


def teacher_label(teacher, problems: np.ndarray, config: TrainConfig, rng: np.random.Generator):
    """The teacher's answers as digits (n, DIGITS + 1) and the kept rows' mask (confidence filter).

    With one vote this is the teacher's single forward pass; with more, the first vote is the problem
    itself and the others are rewrites, voted digit by digit.
    """
    answers = [teacher.digit_probabilities(problems)]
    answers += [teacher.digit_probabilities(rewrite(problems, rng)) for _ in range(config.teacher_votes - 1)]
    confidence = np.stack(answers)  # (votes, n, positions, 10)
    stacked = confidence.argmax(axis=-1)  # each vote's digits
    counts = np.stack([(stacked == d).sum(axis=0) for d in range(10)], axis=-1).astype(np.float64)
    # The majority digit wins; a tie goes to the digit the voters were more confident of in total.
    winners = (counts + confidence.sum(axis=0) / (len(answers) + 1)).argmax(axis=-1)
    agreement = np.take_along_axis(counts, winners[..., None], axis=-1)[..., 0].min(axis=1) / len(answers)
    return winners, agreement >= config.min_agreement


if __name__ == "__main__":
    sample = sample_problems(TrainConfig(), np.random.default_rng(0))
    print(sample[:3])
    print(to_digits(sample[:1, 0]))
