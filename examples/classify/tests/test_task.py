"""The task's own properties: labels, the artifact, and what a sandboxed test may not see."""

from pathlib import Path

import numpy as np
from config import TrainConfig
from data import NUM_CLASSES, classify, make_training_data
from model import load, probabilities
from train import train


def test_every_class_occurs_and_labels_follow_the_rule() -> None:
    x, y = make_training_data(2000, np.random.default_rng(0), label_noise=0.0)
    assert set(np.unique(y)) == set(range(NUM_CLASSES))
    assert np.array_equal(y, classify(x))


def test_a_short_training_run_predicts_probabilities(tmp_path: Path) -> None:
    classifier, _ = train(TrainConfig(steps=5, train_size=300), seed=1)
    from model import save

    save(str(tmp_path / "model.npz"), classifier.coefs_, classifier.intercepts_)
    weights, biases = load(str(tmp_path / "model.npz"))
    p = probabilities(np.zeros((7, 4)), weights, biases)
    assert p.shape == (7, NUM_CLASSES) and np.allclose(p.sum(axis=1), 1.0)


def test_the_same_seed_trains_the_same_model() -> None:
    first, _ = train(TrainConfig(steps=3, train_size=200), seed=4)
    again, _ = train(TrainConfig(steps=3, train_size=200), seed=4)
    assert all(np.array_equal(a, b) for a, b in zip(first.coefs_, again.coefs_, strict=True))


def test_no_heldout_data_is_visible_while_the_tests_run() -> None:
    assert not Path("/heldout/inputs.npy").exists()
    assert not list(Path("/heldout").glob("*")) if Path("/heldout").is_dir() else True
