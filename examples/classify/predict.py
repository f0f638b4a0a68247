"""Write class probabilities for held-out inputs.

Usage:
    python predict.py --model runs/seed0/model.npz --inputs inputs.npy --out predictions.npy

Reads an (N, 4) array, writes an (N, 4) array of class probabilities (rows sum to 1).
"""

import argparse

import numpy as np
from model import load, probabilities


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", required=True)
    parser.add_argument("--inputs", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    weights, biases = load(args.model)
    inputs = np.load(args.inputs, allow_pickle=False)
    np.save(args.out, probabilities(inputs, weights, biases))


if __name__ == "__main__":
    main()
