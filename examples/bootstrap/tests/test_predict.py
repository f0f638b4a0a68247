"""Prediction: one forward pass, one sum per problem. Run: python -m pytest -q tests/test_predict.py"""

import numpy as np
import pytest
from conftest import run_script


def test_cli_writes_one_sum_per_problem(tmp_path, trained_model_path) -> None:
    np.save(tmp_path / "in.npy", np.array([[1.0, 2.0], [12345678.0, 87654321.0], [0.0, 0.0]]))
    result = run_script(
        "predict.py",
        "--model",
        trained_model_path,
        "--inputs",
        str(tmp_path / "in.npy"),
        "--out",
        str(tmp_path / "p.npy"),
    )
    assert result.returncode == 0, result.stderr
    predictions = np.load(tmp_path / "p.npy", allow_pickle=False)
    assert predictions.shape == (3,) and predictions.dtype == np.float64
    assert np.all(predictions == np.round(predictions)) and np.all(predictions >= 0)


@pytest.mark.parametrize("bad", [np.zeros((2, 3)), np.array([[1.0, np.inf]])])
def test_bad_inputs_fail_with_a_message(tmp_path, trained_model_path, bad: np.ndarray) -> None:
    np.save(tmp_path / "in.npy", bad)
    result = run_script(
        "predict.py",
        "--model",
        trained_model_path,
        "--inputs",
        str(tmp_path / "in.npy"),
        "--out",
        str(tmp_path / "p.npy"),
    )
    assert result.returncode != 0
    assert "predict.py: error:" in result.stderr
