"""Train the student MLP on synthetic teacher data and save it.

Usage:
    python train.py --seed 0 --out runs/seed0              # default budget (TrainConfig.steps)
    python train.py --seed 0 --out runs/seed0 --steps 500  # explicit budget (the harness passes this)

Writes DIR/model.npz (weights + normalisation stats). The same seed gives a
bit-identical model.npz. The last line printed is `final_train_loss=<mse>`,
the mean squared error on the (noisy) training pool in original label units.
"""

import argparse
import os
import time

import numpy as np
from config import TrainConfig
from data import INPUT_DIM, make_training_data, sample_batch
from model import MLP, init_mlp
from optim import learning_rate_at, make_optimizer


def mse(model: MLP, x: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean((model.predict(x) - y) ** 2))


def should_log(config: TrainConfig, step: int) -> bool:
    """Log every `log_every` steps and always at the last step."""
    is_last = step + 1 == config.steps
    return is_last or (config.log_every > 0 and (step + 1) % config.log_every == 0)


def train(config: TrainConfig, seed: int, log: bool = True) -> tuple[MLP, float]:
    """Train for exactly config.steps optimiser steps; return the model and final train MSE."""
    data_rng, init_rng, batch_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3))
    x_pool, y_pool = make_training_data(config, data_rng)
    model = init_mlp(INPUT_DIM, config.hidden_size, config.init_scale, init_rng, x_pool, y_pool)
    optimizer = make_optimizer(config, model.params)
    start = time.perf_counter()
    for step in range(config.steps):
        x_batch, y_batch = sample_batch(x_pool, y_pool, config, step, batch_rng)
        out, cache = model.forward(x_batch)
        residual = out - (y_batch - model.y_mean) / model.y_std
        grads = model.backward(cache, 2.0 * residual / len(residual))
        optimizer.step(model.params, grads, learning_rate_at(config, step, config.steps))
        if log and should_log(config, step):
            elapsed = time.perf_counter() - start
            loss = mse(model, x_pool, y_pool)
            print(f"step {step + 1}/{config.steps} train_loss={loss:.5f} ({elapsed:.2f}s)")
    final_loss = mse(model, x_pool, y_pool)
    if not np.isfinite(final_loss):
        raise FloatingPointError(f"training diverged: final_train_loss={final_loss}")
    return model, final_loss


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seed", type=int, required=True, help="seed for data, init and batch order")
    parser.add_argument("--out", required=True, help="output directory; model.npz is written there")
    parser.add_argument(
        "--steps", type=int, default=None, help="training step budget (default: TrainConfig.steps)"
    )
    args = parser.parse_args()
    config = TrainConfig()
    if args.steps is not None:
        if args.steps < 0:
            parser.error("--steps must be >= 0")
        config.steps = args.steps
    model, final_loss = train(config, args.seed)
    os.makedirs(args.out, exist_ok=True)
    model.save(os.path.join(args.out, "model.npz"))
    print(f"final_train_loss={final_loss:.6f}")


if __name__ == "__main__":
    main()
