"""Training settings: the knobs a proposer may turn (the step budget comes from the harness)."""

from dataclasses import dataclass


@dataclass
class TrainConfig:
    steps: int = 60
    """Training epochs over the pool (the harness passes its budget as --steps)."""
    train_size: int = 1500
    """Examples drawn for training."""
    hidden_size: int = 16
    """Units in the one hidden layer."""
    learning_rate: float = 0.002
    """Adam's step size."""
    alpha: float = 0.0001
    """L2 penalty on the weights."""
    batch_size: int = 100
    """Examples per update."""
    label_noise: float = 0.05
    """Fraction of training labels replaced by a random class (the data is noisy, as real data is)."""
