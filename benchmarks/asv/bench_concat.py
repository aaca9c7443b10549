"""Channel concatenation, forward and backward (split), at the skip shapes."""

from . import _Family, grid


class Concat(_Family):
    family = "concat"
    params = grid(family)
    unit = "GB/s"
