"""Train the classifier (scikit-learn's MLP) on fresh synthetic data and save its numbers.

Usage:
    python train.py --seed 0 --out runs/seed0 --steps 60

Writes DIR/model.npz. The same seed gives the same model. The last line printed is
`final_train_accuracy=<fraction>`.
"""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one thread: the same seed gives the same numbers

import argparse
import warnings

import numpy as np
from config import TrainConfig
from data import make_training_data
from model import save
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier


def train(config: TrainConfig, seed: int) -> tuple[MLPClassifier, float]:
    x, y = make_training_data(config.train_size, np.random.default_rng(seed), config.label_noise)
    classifier = MLPClassifier(
        hidden_layer_sizes=(config.hidden_size,),
        learning_rate_init=config.learning_rate,
        alpha=config.alpha,
        batch_size=config.batch_size,
        max_iter=config.steps,
        n_iter_no_change=config.steps + 1,
        random_state=seed,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        classifier.fit(x, y)
    return classifier, float(classifier.score(x, y))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--out", required=True, help="directory for model.npz")
    parser.add_argument("--steps", type=int, default=None, help="epochs (default: TrainConfig.steps)")
    args = parser.parse_args()
    config = TrainConfig()
    if args.steps is not None:
        config.steps = args.steps
    classifier, accuracy = train(config, args.seed)
    os.makedirs(args.out, exist_ok=True)
    save(os.path.join(args.out, "model.npz"), classifier.coefs_, classifier.intercepts_)
    print(f"final_train_accuracy={accuracy:.4f}")


if __name__ == "__main__":
    main()
