"""Training configuration of the bootstrapping student (multi-digit addition).

Every knob is a plain literal in one flat dataclass with a trailing comment, so a patch can change a
single value and tools that parse this file with `ast` find it. Two groups matter most:
- how the teacher makes the data (`teacher_votes`, `min_agreement`, `operand_sampling`): better
  data generation, paid for with teacher compute at train time;
- how much of it the student learns in one pass (`window`, `hidden_size`, `train_problems`): the
  amortised reasoning that lets a single forward pass match what the teacher reached by voting.

Usage:
    python -c "from config import TrainConfig; print(TrainConfig())"
"""

from dataclasses import dataclass


@dataclass
class TrainConfig:
    # --- compute budget ---
    steps: int = 1500  # optimiser steps of the student (train.py --steps overrides it)
    # --- the teacher's data generation ---
    train_problems: int = 2000  # addition problems the teacher labels for the student
    teacher_votes: int = 1  # rewrites of each problem the teacher answers; digits are majority-voted
    min_agreement: float = 0.5  # drop problems whose weakest digit won less than this share of the votes
    operand_sampling: str = "uniform"  # one of "uniform", "carry_rich" (digit pairs summing to 9 are common)
    # --- the student ---
    window: int = 2  # lower digit positions each output digit sees (carries come from below)
    hidden_size: int = 48  # width of the relu hidden layer
    # --- optimisation ---
    learning_rate: float = 0.01  # Adam step size
    batch_size: int = 256  # digit positions per optimiser step
    weight_decay: float = 0.0001  # L2 penalty on the weights
    # --- logging ---
    log_every: int = 500  # print a progress line every this many steps
