"""predict.py tests: round trip and input validation. Run: python -m pytest -q tests/test_predict.py"""

import numpy as np
import pytest
from conftest import run_script
from predict import predict_file, validate_inputs


def test_cli_round_trip_shape_and_dtype(tmp_path, trained_model_path) -> None:
    inputs = np.random.default_rng(0).uniform(-1, 1, size=(123, 8))
    np.save(tmp_path / "inputs.npy", inputs)
    result = run_script(
        "predict.py",
        "--model",
        trained_model_path,
        "--inputs",
        str(tmp_path / "inputs.npy"),
        "--out",
        str(tmp_path / "predictions.npy"),
    )
    assert result.returncode == 0, result.stderr
    predictions = np.load(tmp_path / "predictions.npy", allow_pickle=False)
    assert predictions.shape == (123,) and predictions.dtype == np.float64
    assert np.all(np.isfinite(predictions))


def test_predictions_are_row_independent(tmp_path, trained_model_path) -> None:
    inputs = np.random.default_rng(1).uniform(-1, 1, size=(10, 8))
    np.save(tmp_path / "all.npy", inputs)
    np.save(tmp_path / "one.npy", inputs[3:4])
    everything = predict_file(trained_model_path, str(tmp_path / "all.npy"), str(tmp_path / "p_all.npy"))
    single = predict_file(trained_model_path, str(tmp_path / "one.npy"), str(tmp_path / "p_one.npy"))
    assert single.shape == (1,)
    assert single[0] == pytest.approx(everything[3], rel=1e-12, abs=1e-12)


def test_float32_inputs_are_accepted() -> None:
    x = validate_inputs(np.zeros((3, 8), dtype=np.float32))
    assert x.dtype == np.float64


@pytest.mark.parametrize(
    "bad_inputs, message",
    [
        (np.zeros((5, 7)), "shape"),
        (np.zeros((5, 9)), "shape"),
        (np.zeros(8), "shape"),
        (np.zeros((2, 8, 1)), "shape"),
        (np.full((2, 8), np.nan), "NaN"),
        (np.array([[np.inf] * 8]), "infinite"),
        (np.array([["a"] * 8]), "numeric"),
    ],
)
def test_rejects_bad_inputs(bad_inputs: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        validate_inputs(bad_inputs)


def test_cli_rejects_wrong_shape_with_clear_error(tmp_path, trained_model_path) -> None:
    np.save(tmp_path / "bad.npy", np.zeros((4, 3)))
    result = run_script(
        "predict.py",
        "--model",
        trained_model_path,
        "--inputs",
        str(tmp_path / "bad.npy"),
        "--out",
        str(tmp_path / "out.npy"),
    )
    assert result.returncode != 0
    assert "shape (n, 8)" in result.stderr
    assert not (tmp_path / "out.npy").exists()


def test_cli_rejects_pickled_object_arrays(tmp_path, trained_model_path) -> None:
    np.save(tmp_path / "obj.npy", np.array([[object()] * 8], dtype=object), allow_pickle=True)
    result = run_script(
        "predict.py",
        "--model",
        trained_model_path,
        "--inputs",
        str(tmp_path / "obj.npy"),
        "--out",
        str(tmp_path / "out.npy"),
    )
    assert result.returncode != 0
    assert "predict.py: error" in result.stderr
