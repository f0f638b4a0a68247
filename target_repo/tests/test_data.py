"""Teacher and training-data tests. Run: python -m pytest -q tests/test_data.py"""

import dataclasses
import math

import numpy as np
import pytest
from config import TrainConfig
from data import INPUT_DIM, curriculum_fraction, make_training_data, sample_batch, teacher


def test_teacher_shape_and_dtype() -> None:
    x = np.random.default_rng(0).uniform(-1, 1, size=(17, INPUT_DIM))
    y = teacher(x)
    assert y.shape == (17,)
    assert y.dtype == np.float64


@pytest.mark.parametrize(
    "value, expected",
    [
        (0.0, 1.0),
        (0.5, 0.5 + math.cos(math.pi * 0.25) + 0.125 - 0.25 + 0.3 * math.tanh(1.5)),
        (1.0, math.sin(math.pi) + math.cos(math.pi) + 0.5 - 1.0 + 0.3 * math.tanh(3.0)),
        (-1.0, -math.sin(math.pi) + math.cos(math.pi) + 0.5 - 1.0 - 0.3 * math.tanh(3.0)),
    ],
)
def test_teacher_fixed_values(value: float, expected: float) -> None:
    x = np.full((1, INPUT_DIM), value)
    assert teacher(x)[0] == pytest.approx(expected, abs=1e-12)


def test_teacher_mixed_point() -> None:
    x = np.array([[0.5, 2.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0]])
    # sin(pi/2)*2 + cos(pi) + 0.5 - 1 + 0 = 0.5
    assert teacher(x)[0] == pytest.approx(0.5, abs=1e-12)


@pytest.mark.parametrize("input_range", [0.25, 0.5, 1.0])
def test_training_inputs_within_configured_range(input_range: float) -> None:
    config = TrainConfig(input_range=input_range, train_examples=300)
    x, y = make_training_data(config, np.random.default_rng(1))
    assert x.shape == (300, INPUT_DIM) and y.shape == (300,)
    assert np.all(np.abs(x) <= input_range)
    assert np.abs(x).max() > 0.9 * input_range  # actually uses the range


def test_noise_free_labels_equal_teacher() -> None:
    config = TrainConfig(label_noise=0.0, train_examples=64)
    x, y = make_training_data(config, np.random.default_rng(2))
    np.testing.assert_array_equal(y, teacher(x))


def test_label_noise_has_configured_scale() -> None:
    config = TrainConfig(label_noise=0.3, train_examples=20000)
    x, y = make_training_data(config, np.random.default_rng(3))
    assert np.std(y - teacher(x)) == pytest.approx(0.3, rel=0.05)


def test_training_data_deterministic_for_seed() -> None:
    config = TrainConfig()
    first = make_training_data(config, np.random.default_rng(4))
    second = make_training_data(config, np.random.default_rng(4))
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])


def test_sample_batch_shape_and_membership() -> None:
    config = TrainConfig(train_examples=50, batch_size=8)
    x, y = make_training_data(config, np.random.default_rng(5))
    xb, yb = sample_batch(x, y, config, step=0, rng=np.random.default_rng(6))
    assert xb.shape == (8, INPUT_DIM) and yb.shape == (8,)
    assert all(any(np.array_equal(row, pool_row) for pool_row in x) for row in xb)


def test_curriculum_starts_with_central_half_and_ends_with_everything() -> None:
    config = dataclasses.replace(TrainConfig(), curriculum_steps=100, train_examples=200, batch_size=500)
    x, y = make_training_data(config, np.random.default_rng(7))
    assert curriculum_fraction(config, 0) == 0.5 and curriculum_fraction(config, 100) == 1.0
    xb, _ = sample_batch(x, y, config, step=0, rng=np.random.default_rng(8))
    central_limit = np.max(np.abs(x[:100]))
    assert np.max(np.abs(xb)) <= central_limit
