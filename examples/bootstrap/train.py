"""Train the student on data its teacher generates, and save it (it may become the next teacher).

Usage:
    python train.py --teacher teacher0.npz --seed 0 --out runs/seed0              # TrainConfig.steps
    python train.py --teacher teacher0.npz --seed 0 --out runs/seed0 --steps 500  # the harness's budget

The teacher (a model file written by an earlier generation's train.py) labels `train_problems`
fresh problems; no true answer is read anywhere. Writes DIR/model.npz (data only); the same seed
and teacher give a bit-identical file. The last line printed is `teacher_kept=<share>`, the share
of problems that passed the teacher's confidence filter.
"""

import argparse
import os
import time

import numpy as np
from config import TrainConfig
from data import sample_problems, teacher_label
from model import DigitMLP, features, init_model, loss_and_grads


def teacher_dataset(config: TrainConfig, teacher: DigitMLP, rng: np.random.Generator):
    """Per-digit training rows: features (m, f) and the teacher's digits (m,); and the kept share."""
    problems = sample_problems(config, rng)
    digits, kept = teacher_label(teacher, problems, config, rng)
    if not kept.any():
        raise ValueError(
            f"the teacher is confident about none of {len(problems)} problems; lower min_agreement"
        )
    x = features(problems[kept], config.window)
    return x.reshape(-1, x.shape[-1]), digits[kept].reshape(-1), float(kept.mean())


def adam(config: TrainConfig, params: dict[str, np.ndarray]):
    moments = {name: (np.zeros_like(p), np.zeros_like(p)) for name, p in params.items()}

    def step(grads: dict[str, np.ndarray], t: int) -> None:
        for name, grad in grads.items():
            if name.startswith("w"):
                grad = grad + config.weight_decay * params[name]
            m, v = moments[name]
            m[:] = 0.9 * m + 0.1 * grad
            v[:] = 0.999 * v + 0.001 * grad * grad
            m_hat, v_hat = m / (1 - 0.9**t), v / (1 - 0.999**t)
            params[name] -= config.learning_rate * m_hat / (np.sqrt(v_hat) + 1e-8)

    return step


def fit(config: TrainConfig, x: np.ndarray, y: np.ndarray, seed: int, log: bool = True) -> DigitMLP:
    """A fresh student trained for exactly config.steps steps on digit rows x (m, f) -> y (m,)."""
    init_rng, batch_rng = (np.random.default_rng(s) for s in np.random.SeedSequence([seed, 1]).spawn(2))
    student = init_model(config.window, config.hidden_size, init_rng)
    step = adam(config, student.params)
    start = time.perf_counter()
    for t in range(1, config.steps + 1):
        index = batch_rng.integers(0, len(y), size=config.batch_size)
        loss, grads = loss_and_grads(student, x[index], y[index])
        step(grads, t)
        if log and (t == config.steps or (config.log_every > 0 and t % config.log_every == 0)):
            print(f"step {t}/{config.steps} loss={loss:.4f} ({time.perf_counter() - start:.2f}s)")
    return student


def train(config: TrainConfig, teacher: DigitMLP, seed: int, log: bool = True) -> tuple[DigitMLP, float]:
    """Label fresh problems with the teacher and fit a student to its answers; also the kept share."""
    x, y, kept = teacher_dataset(config, teacher, np.random.default_rng([seed, 0]))
    return fit(config, x, y, seed, log), kept


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--teacher", required=True, help="the teacher's model.npz (given by the harness)")
    parser.add_argument("--seed", type=int, required=True, help="seed for problems, votes, init and batches")
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
    try:
        teacher = DigitMLP.load(args.teacher)
    except (OSError, ValueError) as error:
        raise SystemExit(f"train.py: error: cannot load the teacher {args.teacher}: {error}") from None
    student, kept = train(config, teacher, args.seed)
    os.makedirs(args.out, exist_ok=True)
    student.save(os.path.join(args.out, "model.npz"))
    print(f"teacher_kept={kept:.4f}")


if __name__ == "__main__":
    main()
