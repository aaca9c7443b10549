"""One ColorizationNet training step: forward, CombinedLoss, backward, Adam."""

from . import _Family, grid


class TrainStep(_Family):
    family = "train_step"
    params = grid(family)
    track_rate = None  # a whole step has no one FLOP count; time and ratio say it all
