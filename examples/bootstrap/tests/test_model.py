"""The digit MLP: features, gradients, the data-only file. Run: python -m pytest -q tests/test_model.py"""

import numpy as np
import pytest
from data import BLANK, DIGITS
from model import TOKENS, DigitMLP, features, init_model, loss_and_grads


@pytest.mark.parametrize("window", [0, 1, 3])
def test_features_are_one_token_per_column_in_the_window(window: int) -> None:
    problems = np.array([[12345678, 87654321], [0, 0]])
    x = features(problems, window).reshape(2, DIGITS + 1, window + 1, TOKENS)
    assert np.array_equal(x.sum(axis=-1), np.ones((2, DIGITS + 1, window + 1)))
    assert x[0, 0, 0, 10 * 8 + 1] == 1.0  # the lowest column holds the pair (8, 1)
    if window:
        assert x[0, 0, 1, BLANK] == 1.0  # nothing lies below position 0


def test_gradients_match_finite_differences() -> None:
    rng = np.random.default_rng(0)
    model = init_model(1, 6, rng)
    x = features(rng.integers(0, 10**DIGITS, size=(4, 2)), 1).reshape(-1, 2 * TOKENS)
    y = rng.integers(0, 10, size=len(x))
    _, grads = loss_and_grads(model, x, y)
    for name in ("w1", "b1", "w2", "b2"):
        flat = model.params[name].reshape(-1)
        for index in rng.choice(flat.size, size=min(5, flat.size), replace=False):
            saved = flat[index]
            flat[index] = saved + 1e-6
            up = loss_and_grads(model, x, y)[0]
            flat[index] = saved - 1e-6
            down = loss_and_grads(model, x, y)[0]
            flat[index] = saved
            assert grads[name].reshape(-1)[index] == pytest.approx((up - down) / 2e-6, abs=1e-6)


def test_the_saved_file_is_data_only_and_byte_stable(tmp_path) -> None:
    model = init_model(2, 8, np.random.default_rng(0))
    model.save(str(tmp_path / "a.npz"))
    model.save(str(tmp_path / "b.npz"))
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    loaded = DigitMLP.load(str(tmp_path / "a.npz"))
    assert loaded.window == 2
    problems = np.array([[5, 7], [99999999, 1]])
    assert np.array_equal(loaded.predict(problems), model.predict(problems))


def test_a_file_that_is_not_a_model_is_refused(tmp_path) -> None:
    np.savez(tmp_path / "other.npz", weights=np.zeros(3))
    with pytest.raises(ValueError, match="missing arrays"):
        DigitMLP.load(str(tmp_path / "other.npz"))
    np.save(tmp_path / "pickled.npy", np.array([{"code": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError):
        DigitMLP.load(str(tmp_path / "pickled.npy"))
