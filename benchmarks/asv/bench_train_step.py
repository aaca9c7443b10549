"""One ColorizationNet training step: forward, CombinedLoss, backward, Adam."""

from . import _Family, grid


class TrainStep(_Family):
    family = "train_step"
    params = grid(family)
