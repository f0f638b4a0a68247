"""The classifier's numbers and its forward pass in NumPy: train.py fits them with scikit-learn,
predict.py needs nothing but this file (the artifact is plain arrays, never a pickle)."""

import numpy as np


def save(path: str, weights: list[np.ndarray], biases: list[np.ndarray]) -> None:
    arrays = {f"w{i}": w for i, w in enumerate(weights)} | {f"b{i}": b for i, b in enumerate(biases)}
    np.savez(path, **arrays)


def load(path: str) -> tuple[list[np.ndarray], list[np.ndarray]]:
    with np.load(path, allow_pickle=False) as data:
        layers = sum(1 for key in data.files if key.startswith("w"))
        return [data[f"w{i}"] for i in range(layers)], [data[f"b{i}"] for i in range(layers)]


def probabilities(x: np.ndarray, weights: list[np.ndarray], biases: list[np.ndarray]) -> np.ndarray:
    """Class probabilities, one row per input: ReLU hidden layers, softmax output."""
    h = x
    for w, b in zip(weights[:-1], biases[:-1], strict=True):
        h = np.maximum(h @ w + b, 0.0)
    logits = h @ weights[-1] + biases[-1]
    logits -= logits.max(axis=1, keepdims=True)
    exp = np.exp(logits)
    return exp / exp.sum(axis=1, keepdims=True)
