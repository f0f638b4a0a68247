"""Run a trained model on a batch of inputs.

Usage:
    python predict.py --model runs/seed0/model.npz --inputs inputs.npy --out predictions.npy

`inputs.npy` must hold a float array of shape (n, 8) with finite values;
predictions are written as a float64 array of shape (n,).
"""

import argparse

import numpy as np
from data import INPUT_DIM
from model import MLP


def validate_inputs(x: np.ndarray) -> np.ndarray:
    """Return `x` as float64 of shape (n, 8), or raise ValueError explaining what is wrong."""
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise ValueError(f"inputs must be numeric, got dtype {x.dtype}")
    if x.ndim != 2 or x.shape[1] != INPUT_DIM:
        raise ValueError(f"inputs must have shape (n, {INPUT_DIM}), got {x.shape}")
    x = x.astype(np.float64)
    if not np.all(np.isfinite(x)):
        raise ValueError("inputs contain NaN or infinite values")
    return x


def predict_file(model_path: str, inputs_path: str, out_path: str) -> np.ndarray:
    x = validate_inputs(np.load(inputs_path, allow_pickle=False))
    predictions = MLP.load(model_path).predict(x).reshape(-1).astype(np.float64)
    np.save(out_path, predictions)
    return predictions


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", required=True, help="path to model.npz written by train.py")
    parser.add_argument("--inputs", required=True, help=".npy file of shape (n, 8)")
    parser.add_argument("--out", required=True, help="where to write predictions (.npy, shape (n,))")
    args = parser.parse_args()
    try:
        predictions = predict_file(args.model, args.inputs, args.out)
    except ValueError as error:
        raise SystemExit(f"predict.py: error: {error}") from None
    print(f"wrote {predictions.shape[0]} predictions to {args.out}")


if __name__ == "__main__":
    main()
