"""Held-out providers (built-in, .npz, .py) and the metrics that score against them: real files,
real imports, on the host."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest

from core.errors import ConfigError
from core.target import TargetSpec
from sandbox.heldout import load_provider, null_score, score, stage_inputs
from tests.conftest import ROOT

PROVIDER = textwrap.dedent(
    """
    import numpy as np

    label_function = "data.py:rule"

    def label(inputs):
        return (inputs[:, 0] > inputs[:, 1]).astype(np.int64)

    def generate(seed, n):
        inputs = np.random.default_rng(seed).normal(size=(n, 3))
        return inputs, label(inputs)

    def score(predictions, labels):
        return float(np.mean(np.round(predictions) == labels))
    """
)


def test_a_python_provider_generates_by_seed_and_declares_its_label_function(tmp_path: Path) -> None:
    path = tmp_path / "task.py"
    path.write_text(PROVIDER, encoding="utf-8")
    provider = load_provider(path)
    first, again = provider.selection(7, 50), provider.selection(7, 50)
    assert first.inputs.shape == (50, 3) and np.array_equal(first.labels, again.labels)
    assert not np.array_equal(provider.selection(8, 50).inputs, first.inputs)
    assert provider.content_hash and len(provider.content_hash) == 64 and provider.source == str(path)
    assert provider.label_function is not None and provider.label_function.file == "data.py"
    assert provider.label_function.copy is not None and provider.scorer is not None
    assert score("custom", first.labels.astype(float), first.labels, provider.scorer) == 1.0


def test_an_npz_provider_serves_its_arrays_and_its_lockbox(tmp_path: Path) -> None:
    path = tmp_path / "task.npz"
    inputs, labels = np.arange(20.0).reshape(10, 2), np.arange(10.0)
    np.savez(path, inputs=inputs, labels=labels, lockbox_inputs=inputs[:4], lockbox_labels=labels[:4])
    provider = load_provider(path)
    assert np.array_equal(provider.selection(1, 2000).labels, labels)
    lockbox = provider.lockbox(2, 2000)
    assert lockbox is not None and len(lockbox.labels) == 4
    assert provider.fresh_inputs(3, 3).shape == (3, 2)
    np.savez(path, inputs=inputs, labels=labels)
    assert load_provider(path).lockbox(2, 2000) is None


@pytest.mark.parametrize(
    ("arrays", "expected"),
    [
        ({"inputs": np.zeros((3, 2))}, "no 'labels' array"),
        ({"inputs": np.zeros((3, 2)), "labels": np.zeros(4)}, "same number of rows"),
        (
            {"inputs": np.zeros((3, 2)), "labels": np.zeros(3), "lockbox_inputs": np.zeros((1, 2))},
            "go together",
        ),
    ],
)
def test_a_malformed_npz_is_refused_saying_what_it_lacks(tmp_path: Path, arrays: dict, expected: str) -> None:
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(ConfigError, match=expected):
        load_provider(path)


def test_unknown_names_missing_files_and_broken_providers_are_explained(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="teacher-regression"):
        load_provider("nosuch")
    with pytest.raises(ConfigError, match="no such held-out file"):
        load_provider(tmp_path / "missing.npz")
    empty = tmp_path / "empty.py"
    empty.write_text("x = 1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"generate\(seed, n\)"):
        load_provider(empty)
    failing = tmp_path / "failing.py"
    failing.write_text("def generate(seed, n):\n    raise RuntimeError('no data')\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="no data"):
        load_provider(failing).selection(0, 10)


def test_the_builtin_set_is_unchanged() -> None:
    provider = load_provider("teacher-regression")
    heldout = provider.selection(1234, 100)
    assert heldout.inputs.shape == (100, 8) and provider.content_hash is None
    assert provider.label_function is not None and provider.label_function.name == "teacher"


def test_each_metric_scores_what_it_names() -> None:
    classes = np.array([0, 1, 2, 1])
    probabilities = np.eye(3)[classes] * 0.7 + 0.1
    assert score("accuracy", probabilities, classes) == 1.0
    assert score("accuracy", classes.astype(float), classes) == 1.0
    assert score("log_loss", probabilities, classes) == pytest.approx(-np.log(0.8))
    assert score("bits_per_char", probabilities, classes) == pytest.approx(-np.log2(0.8))
    uniform = null_score("bits_per_char", np.array([0, 1, 2, 3]))
    assert uniform == pytest.approx(2.0)
    assert null_score("r2", np.array([1.0, 2.0, 3.0])) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="class probabilities"):
        score("log_loss", probabilities[:, :2], classes)


def test_probabilities_split_by_row_when_staged() -> None:
    staged = stage_inputs({"selection": np.zeros((3, 2)), "lockbox": np.ones((2, 2))}, seed=1)
    parts = staged.split(np.full((5, 4), 0.25))
    assert parts["selection"].shape == (3, 4) and parts["lockbox"].shape == (2, 4)


def spec_with(metric: str) -> TargetSpec:
    text = (ROOT / "target_repo" / "rsi.toml").read_text(encoding="utf-8")
    return TargetSpec.parse_text(text.replace('name = "r2"\ndirection = "higher"', metric, 1))


def test_the_direction_is_known_per_metric_and_a_contradiction_is_refused() -> None:
    assert spec_with('name = "bits_per_char"').metric.direction == "lower"
    assert spec_with('name = "accuracy"').metric.direction == "higher"
    with pytest.raises(ConfigError, match=r"\[metric\].direction = 'higher' contradicts 'mse'"):
        spec_with('name = "mse"\ndirection = "higher"')
    with pytest.raises(ConfigError, match=r"\[metric\].direction is missing"):
        spec_with('name = "custom"')
    assert spec_with('name = "custom"\ndirection = "lower"').metric.direction == "lower"


def test_a_metric_that_does_not_fit_the_labels_is_refused_naming_the_key() -> None:
    with pytest.raises(ConfigError, match=r"\[metric\].name = 'log_loss'.*class ids"):
        spec_with('name = "log_loss"').check_heldout_labels(np.array([0.5, 1.5]))
    with pytest.raises(ConfigError, match=r"\[metric\].name = 'r2'.*shape \(2, 2\)"):
        spec_with('name = "r2"').check_heldout_labels(np.zeros((2, 2)))
    spec_with('name = "accuracy"').check_heldout_labels(np.array([0, 2, 1]))
