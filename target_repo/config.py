"""Training configuration for the teacher->student regression task.

Every knob lives in one flat dataclass so a patch can change a single value.
Each field is a plain literal assignment (numbers or strings) with a trailing
comment; tools parse this file with `ast`, so keep it that way.

Usage:
    python -c "from config import TrainConfig; print(TrainConfig())"
"""

from dataclasses import dataclass


@dataclass
class TrainConfig:
    # --- compute budget ---
    steps: int = 3000  # optimiser steps per run (the budget; train.py --steps overrides it)
    # --- model ---
    hidden_size: int = 32  # width of the single tanh hidden layer
    init_scale: float = 1.0  # multiplier on the 1/sqrt(fan_in) weight init std
    # --- optimisation ---
    optimizer: str = "sgd"  # one of "sgd", "momentum", "adam"
    learning_rate: float = 0.02  # peak step size
    momentum: float = 0.9  # beta for "momentum", beta1 for "adam"
    lr_schedule: str = "constant"  # "constant" or "cosine" (decays to 0 over `steps`)
    warmup_steps: int = 0  # linear learning-rate warmup from 0 over this many steps
    weight_decay: float = 0.0  # L2 penalty coefficient added to the weight gradients
    batch_size: int = 32  # examples per optimiser step, resampled from the pool
    # --- synthetic data ---
    input_range: float = 0.5  # training inputs are drawn uniformly from [-input_range, input_range]^8
    label_noise: float = 0.2  # std of Gaussian noise added to the teacher labels
    train_examples: int = 512  # size of the fixed training pool that batches are drawn from
    curriculum_steps: int = 0  # steps to grow sampling from the central half of the pool to all; 0 = off
    # --- logging ---
    log_every: int = 500  # print a progress line every this many steps
