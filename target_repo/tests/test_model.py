"""MLP tests: gradients and save/load. Run: python -m pytest -q tests/test_model.py"""

import numpy as np
from model import MLP, PARAM_NAMES, init_mlp


def make_model(seed: int = 0, hidden: int = 5) -> tuple[MLP, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, size=(7, 8))
    y = rng.standard_normal(7)
    return init_mlp(8, hidden, 1.0, rng, x, y), x, y


def loss(model: MLP, x: np.ndarray, target: np.ndarray) -> float:
    out, _ = model.forward(x)
    return float(np.sum((out - target) ** 2))


def test_backward_matches_finite_differences() -> None:
    model, x, target = make_model()
    out, cache = model.forward(x)
    grads = model.backward(cache, 2.0 * (out - target))
    eps = 1e-6
    for name in PARAM_NAMES:
        param = model.params[name]
        numeric = np.zeros_like(param)
        for index in np.ndindex(param.shape):
            original = param[index]
            param[index] = original + eps
            plus = loss(model, x, target)
            param[index] = original - eps
            minus = loss(model, x, target)
            param[index] = original
            numeric[index] = (plus - minus) / (2 * eps)
        np.testing.assert_allclose(grads[name], numeric, rtol=1e-5, atol=1e-7, err_msg=name)


def test_init_is_deterministic_for_seed() -> None:
    first, _, _ = make_model(seed=3)
    second, _, _ = make_model(seed=3)
    for name in PARAM_NAMES:
        np.testing.assert_array_equal(first.params[name], second.params[name])


def test_save_load_round_trip(tmp_path) -> None:
    model, x, _ = make_model()
    path = str(tmp_path / "model.npz")
    model.save(path)
    loaded = MLP.load(path)
    np.testing.assert_array_equal(model.predict(x), loaded.predict(x))
    assert loaded.predict(x).dtype == np.float64
