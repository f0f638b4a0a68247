"""Answer addition problems with a trained model, in one forward pass.

Usage:
    python predict.py --model runs/seed0/model.npz --inputs problems.npy --out predictions.npy

`problems.npy` holds numbers of shape (n, 2), operands in [0, 10**8) (others are rounded and clipped
into range); the predictions (the sums) are written as a float64 array of shape (n,).
"""

import argparse

import numpy as np
from data import validate_problems
from model import DigitMLP


def predict_file(model_path: str, inputs_path: str, out_path: str) -> np.ndarray:
    problems = validate_problems(np.load(inputs_path, allow_pickle=False))
    predictions = DigitMLP.load(model_path).predict(problems).astype(np.float64)
    np.save(out_path, predictions)
    return predictions


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", required=True, help="path to model.npz written by train.py")
    parser.add_argument("--inputs", required=True, help=".npy file of shape (n, 2)")
    parser.add_argument("--out", required=True, help="where to write predictions (.npy, shape (n,))")
    args = parser.parse_args()
    try:
        predictions = predict_file(args.model, args.inputs, args.out)
    except ValueError as error:
        raise SystemExit(f"predict.py: error: {error}") from None
    print(f"wrote {predictions.shape[0]} predictions to {args.out}")


if __name__ == "__main__":
    main()
