"""A tiny NumPy MLP: standardised inputs -> tanh hidden layer -> scalar output.

The model owns its input/target normalisation statistics so that `predict.py`
only needs the saved .npz file.

Usage:
    python model.py       # builds a model, runs a forward/backward pass, prints shapes
"""

import zipfile
from dataclasses import dataclass

import numpy as np

PARAM_NAMES = ("w1", "b1", "w2", "b2")


@dataclass
class MLP:
    params: dict[str, np.ndarray]  # w1 (d, h), b1 (h,), w2 (h,), b2 ()
    x_mean: np.ndarray  # (d,) input mean used for standardisation
    x_std: np.ndarray  # (d,) input std used for standardisation
    y_mean: float  # target mean (model predicts standardised targets)
    y_std: float  # target std

    def normalise(self, x: np.ndarray) -> np.ndarray:
        return (x - self.x_mean) / self.x_std

    def forward(self, x: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Predict standardised targets for raw inputs; also return the activations cache."""
        z = self.normalise(x)
        h = np.tanh(z @ self.params["w1"] + self.params["b1"])
        out = h @ self.params["w2"] + self.params["b2"]
        return out, {"z": z, "h": h}

    def backward(self, cache: dict[str, np.ndarray], grad_out: np.ndarray) -> dict[str, np.ndarray]:
        """Gradients of a loss w.r.t. parameters, given d(loss)/d(out) of shape (n,)."""
        z, h = cache["z"], cache["h"]
        grad_h = np.outer(grad_out, self.params["w2"]) * (1.0 - h * h)
        return {
            "w1": z.T @ grad_h,
            "b1": grad_h.sum(axis=0),
            "w2": h.T @ grad_out,
            "b2": np.asarray(grad_out.sum()),
        }

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Predictions in the original target units, shape (n,), float64."""
        out, _ = self.forward(x)
        return (out * self.y_std + self.y_mean).astype(np.float64)

    def save(self, path: str) -> None:
        """Write an .npz readable by np.load; byte-identical for identical weights (fixed zip timestamps)."""
        arrays = {
            "x_mean": self.x_mean,
            "x_std": self.x_std,
            "y_mean": np.float64(self.y_mean),
            "y_std": np.float64(self.y_std),
            **self.params,
        }
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
            for name, value in arrays.items():
                entry = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
                with archive.open(entry, "w") as handle:
                    np.lib.format.write_array(handle, np.asarray(value, dtype=np.float64), allow_pickle=False)

    @classmethod
    def load(cls, path: str) -> "MLP":
        with np.load(path, allow_pickle=False) as f:
            params = {name: f[name].astype(np.float64) for name in PARAM_NAMES}
            return cls(
                params=params,
                x_mean=f["x_mean"],
                x_std=f["x_std"],
                y_mean=float(f["y_mean"]),
                y_std=float(f["y_std"]),
            )


def init_mlp(
    input_dim: int,
    hidden_size: int,
    init_scale: float,
    rng: np.random.Generator,
    x: np.ndarray,
    y: np.ndarray,
) -> MLP:
    """Random weights (std init_scale/sqrt(fan_in)), zero biases, normalisation fitted to (x, y)."""
    params = {
        "w1": rng.standard_normal((input_dim, hidden_size)) * init_scale / np.sqrt(input_dim),
        "b1": np.zeros(hidden_size),
        "w2": rng.standard_normal(hidden_size) * init_scale / np.sqrt(hidden_size),
        "b2": np.zeros(()),
    }
    x_std = np.maximum(x.std(axis=0), 1e-8)
    y_std = max(float(y.std()), 1e-8)
    return MLP(params=params, x_mean=x.mean(axis=0), x_std=x_std, y_mean=float(y.mean()), y_std=y_std)


if __name__ == "__main__":
    rng = np.random.default_rng(0)
    xs = rng.uniform(-1, 1, (4, 8))
    mlp = init_mlp(8, 16, 1.0, rng, xs, xs.sum(axis=1))
    out, cache = mlp.forward(xs)
    grads = mlp.backward(cache, np.ones(4))
    print("out", out.shape, {k: v.shape for k, v in grads.items()})
