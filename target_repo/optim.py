"""Optimisers (SGD, momentum, Adam) and the learning-rate schedule.

Usage:
    from optim import make_optimizer
    opt = make_optimizer(config, params); opt.step(params, grads, lr)
"""

import math

import numpy as np
from config import TrainConfig

OPTIMIZERS = ("sgd", "momentum", "adam")
DECAYED_PARAMS = ("w1", "w2")  # weight decay applies to weights, not biases


class Optimizer:
    def __init__(self, config: TrainConfig, params: dict[str, np.ndarray]):
        if config.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {config.optimizer!r}; expected one of {OPTIMIZERS}")
        self.kind = config.optimizer
        self.beta1 = config.momentum
        self.beta2 = 0.999
        self.eps = 1e-8
        self.weight_decay = config.weight_decay
        self.m = {k: np.zeros_like(v) for k, v in params.items()}
        self.v = {k: np.zeros_like(v) for k, v in params.items()}
        self.t = 0

    def step(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray], lr: float) -> None:
        """Update `params` in place."""
        self.t += 1
        for name, grad in grads.items():
            if self.weight_decay and name in DECAYED_PARAMS:
                grad = grad + self.weight_decay * params[name]
            params[name] -= lr * self._direction(name, grad)

    def _direction(self, name: str, grad: np.ndarray) -> np.ndarray:
        if self.kind == "sgd":
            return grad
        if self.kind == "momentum":
            self.m[name] = self.beta1 * self.m[name] + grad
            return self.m[name]
        self.m[name] = self.beta1 * self.m[name] + (1.0 - self.beta1) * grad
        self.v[name] = self.beta2 * self.v[name] + (1.0 - self.beta2) * grad * grad
        m_hat = self.m[name] / (1.0 - self.beta1**self.t)
        v_hat = self.v[name] / (1.0 - self.beta2**self.t)
        return m_hat / (np.sqrt(v_hat) + self.eps)


def make_optimizer(config: TrainConfig, params: dict[str, np.ndarray]) -> Optimizer:
    return Optimizer(config, params)


def learning_rate_at(config: TrainConfig, step: int, total_steps: int) -> float:
    """Linear warmup, then constant or cosine decay to zero at `total_steps`."""
    if config.warmup_steps > 0 and step < config.warmup_steps:
        return config.learning_rate * (step + 1) / config.warmup_steps
    if config.lr_schedule == "constant":
        return config.learning_rate
    if config.lr_schedule == "cosine":
        progress = (step - config.warmup_steps) / max(1, total_steps - config.warmup_steps)
        return config.learning_rate * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
    raise ValueError(f"unknown lr_schedule {config.lr_schedule!r}; expected 'constant' or 'cosine'")
