"""Training tests: tiny CLI runs, determinism, budget. Run: python -m pytest -q tests/test_train.py"""

import ast
import dataclasses
import os
import tomllib

import numpy as np
import pytest
from config import TrainConfig
from conftest import REPO_ROOT, run_script
from model import PARAM_NAMES
from optim import learning_rate_at
from train import train


def test_cli_writes_model_and_final_loss_line(tmp_path) -> None:
    result = run_script("train.py", "--seed", "1", "--out", str(tmp_path / "run"), "--steps", "20")
    assert result.returncode == 0, result.stderr
    assert os.path.isfile(tmp_path / "run" / "model.npz")
    last_line = result.stdout.strip().splitlines()[-1]
    assert last_line.startswith("final_train_loss=")
    assert np.isfinite(float(last_line.split("=", 1)[1]))


def test_same_seed_gives_identical_model_file(tmp_path, trained_model_path) -> None:
    result = run_script("train.py", "--seed", "0", "--out", str(tmp_path), "--steps", "50")
    assert result.returncode == 0, result.stderr
    with open(trained_model_path, "rb") as a, open(tmp_path / "model.npz", "rb") as b:
        assert a.read() == b.read()


def test_different_seeds_give_different_weights() -> None:
    config = TrainConfig(steps=10, log_every=0)
    first, _ = train(config, seed=0, log=False)
    second, _ = train(config, seed=1, log=False)
    assert not np.array_equal(first.params["w1"], second.params["w1"])


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
def test_short_run_reduces_training_loss(optimizer: str) -> None:
    lr = {"sgd": 0.05, "momentum": 0.01, "adam": 0.01}[optimizer]
    _, untrained_loss = train(TrainConfig(steps=0, optimizer=optimizer, log_every=0), seed=0, log=False)
    _, trained_loss = train(
        TrainConfig(steps=300, optimizer=optimizer, learning_rate=lr, log_every=0), seed=0, log=False
    )
    assert trained_loss < untrained_loss


def test_unknown_optimizer_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown optimizer"):
        train(TrainConfig(steps=1, optimizer="lbfgs"), seed=0, log=False)


def test_training_takes_exactly_the_step_budget(monkeypatch) -> None:
    import train as train_module

    calls = []
    original = train_module.sample_batch

    def counting_sample_batch(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(train_module, "sample_batch", counting_sample_batch)
    train(TrainConfig(steps=37, log_every=0), seed=0, log=False)
    assert len(calls) == 37


def test_cli_steps_flag_overrides_config_budget(tmp_path) -> None:
    result = run_script("train.py", "--seed", "0", "--out", str(tmp_path), "--steps", "40")
    assert result.returncode == 0, result.stderr
    progress = [line for line in result.stdout.splitlines() if line.startswith("step ")]
    assert progress and progress[-1].startswith("step 40/40 ")


def test_cosine_schedule_and_warmup() -> None:
    config = TrainConfig(learning_rate=0.1, lr_schedule="cosine", warmup_steps=10)
    assert learning_rate_at(config, 0, 100) == pytest.approx(0.01)
    assert learning_rate_at(config, 10, 100) == pytest.approx(0.1)
    assert learning_rate_at(config, 100, 100) == pytest.approx(0.0, abs=1e-12)


def test_saved_model_has_expected_arrays(trained_model_path) -> None:
    with np.load(trained_model_path, allow_pickle=False) as saved:
        assert set(PARAM_NAMES) <= set(saved.files)
        assert {"x_mean", "x_std", "y_mean", "y_std"} <= set(saved.files)


def test_config_fields_are_simple_commented_literals() -> None:
    with open(os.path.join(REPO_ROOT, "config.py")) as handle:
        source = handle.read()
    lines = source.splitlines()
    tree = ast.parse(source)
    classes = [node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == "TrainConfig"]
    body = classes[0].body
    fields = [node for node in body if isinstance(node, ast.AnnAssign)]
    assert [f.target.id for f in fields] == [f.name for f in dataclasses.fields(TrainConfig)]
    for field in fields:
        assert isinstance(field.value, ast.Constant) and isinstance(field.value.value, (int, float, str))
        assert "  # " in lines[field.lineno - 1], f"field {field.target.id} needs a trailing comment"


def test_rsi_toml_contract_matches_config() -> None:
    with open(os.path.join(REPO_ROOT, "rsi.toml"), "rb") as handle:
        contract = tomllib.load(handle)
    assert contract["budget"]["steps"] == TrainConfig().steps
    assert contract["metric"] == {"name": "r2", "direction": "higher", "heldout": "teacher-regression"}
    assert "{steps}" in contract["commands"]["train"] and "{seed}" in contract["commands"]["train"]
    assert set(contract["protected"]["paths"]) == {"rsi.toml", "tests/", "predict.py"}
