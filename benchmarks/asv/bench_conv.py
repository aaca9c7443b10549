"""conv2d forward, backward-input and backward-weight: the network's nine 3x3 convolutions."""

from . import _Family, grid


class Conv(_Family):
    family = "conv"
    params = grid(family)
    unit = "GFLOP/s"
