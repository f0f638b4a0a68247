"""The student (and teacher): one MLP shared by every digit position of the answer.

Output digit j is predicted from the column sums a_i + b_i at positions j, j-1, ..., j-window
(one-hot, with a blank token below position 0): the carry into j comes from below, so a wider window handles
longer carry chains in one pass. The saved file is data only (.npz arrays, no pickle).

Usage:
    python model.py       # builds a model and predicts a few sums (untrained: mostly wrong)
"""

import zipfile
from dataclasses import dataclass

import numpy as np
from data import BLANK, DIGITS, from_digits, to_digits

PARAM_NAMES = ("w1", "b1", "w2", "b2")
TOKENS = BLANK + 1


def features(problems: np.ndarray, window: int) -> np.ndarray:
    """One-hot windows of digit pairs: problems (n, 2) -> (n, DIGITS + 1, (window + 1) * TOKENS).

    Column j is the pair (a_j, b_j) as one token 10 * a_j + b_j (0..99); a column below position 0
    is BLANK.
    """
    n, positions = len(problems), DIGITS + 1
    columns = 10 * to_digits(problems[:, 0]) + to_digits(problems[:, 1])  # (n, P)
    padded = np.concatenate([np.full((n, window), BLANK), columns], axis=1)
    out = np.zeros((n, positions, window + 1, TOKENS))
    for offset in range(window + 1):
        tokens = padded[:, window - offset : window - offset + positions]  # column j - offset
        np.put_along_axis(out[:, :, offset, :], tokens[:, :, None], 1.0, axis=-1)
    return out.reshape(n, positions, -1)


@dataclass
class DigitMLP:
    params: dict[str, np.ndarray]  # w1 (f, h), b1 (h,), w2 (h, 10), b2 (10,)
    window: int

    def logits(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        hidden = np.maximum(0.0, x @ self.params["w1"] + self.params["b1"])
        return hidden @ self.params["w2"] + self.params["b2"], hidden

    def predict_digits(self, problems: np.ndarray) -> np.ndarray:
        """The answer's digits (n, DIGITS + 1), least significant first, in one forward pass."""
        return self.logits(features(problems, self.window))[0].argmax(axis=-1)

    def digit_probabilities(self, problems: np.ndarray) -> np.ndarray:
        """Softmax over the ten digits at every answer position: (n, DIGITS + 1, 10)."""
        logits = self.logits(features(problems, self.window))[0]
        shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
        return shifted / shifted.sum(axis=-1, keepdims=True)

    def predict(self, problems: np.ndarray) -> np.ndarray:
        return from_digits(self.predict_digits(problems))

    def save(self, path: str) -> None:
        """Write an .npz of plain arrays; byte-identical for identical weights (fixed zip timestamps),
        so the harness can address a promoted teacher by its content."""
        arrays = {"window": np.asarray(self.window, dtype=np.int64), **self.params}
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
            for name, value in arrays.items():
                entry = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
                with archive.open(entry, "w") as handle:
                    np.lib.format.write_array(handle, np.asarray(value), allow_pickle=False)

    @classmethod
    def load(cls, path: str) -> "DigitMLP":
        with np.load(path, allow_pickle=False) as archive:
            if not isinstance(archive, np.lib.npyio.NpzFile):
                raise ValueError(f"{path}: not a model file (a single array, not an .npz archive)")
            missing = [name for name in (*PARAM_NAMES, "window") if name not in archive.files]
            if missing:
                raise ValueError(f"{path}: not a model file (missing arrays: {', '.join(missing)})")
            return cls(
                {name: archive[name].astype(np.float64) for name in PARAM_NAMES}, int(archive["window"])
            )


def init_model(window: int, hidden_size: int, rng: np.random.Generator) -> DigitMLP:
    fan_in = (window + 1) * TOKENS
    params = {
        "w1": rng.normal(0.0, np.sqrt(2.0 / fan_in), size=(fan_in, hidden_size)),
        "b1": np.zeros(hidden_size),
        "w2": rng.normal(0.0, np.sqrt(1.0 / hidden_size), size=(hidden_size, 10)),
        "b2": np.zeros(10),
    }
    return DigitMLP(params, window)


def loss_and_grads(model: DigitMLP, x: np.ndarray, y: np.ndarray) -> tuple[float, dict[str, np.ndarray]]:
    """Mean cross-entropy of digit targets y (m,) given features x (m, f), and its gradients."""
    logits, hidden = model.logits(x)
    logits = logits - logits.max(axis=1, keepdims=True)
    probs = np.exp(logits)
    probs /= probs.sum(axis=1, keepdims=True)
    m = len(y)
    loss = float(-np.mean(np.log(probs[np.arange(m), y] + 1e-12)))
    grad_logits = probs
    grad_logits[np.arange(m), y] -= 1.0
    grad_logits /= m
    grad_hidden = (grad_logits @ model.params["w2"].T) * (hidden > 0)
    grads = {
        "w1": x.T @ grad_hidden,
        "b1": grad_hidden.sum(axis=0),
        "w2": hidden.T @ grad_logits,
        "b2": grad_logits.sum(axis=0),
    }
    return loss, grads


if __name__ == "__main__":
    demo = init_model(1, 16, np.random.default_rng(0))
    problems = np.array([[12345678, 87654321], [1, 9]])
    print(problems.sum(axis=1), demo.predict(problems))
