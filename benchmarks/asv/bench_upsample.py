"""Nearest 2x upsampling, forward and backward, at the decoder's shapes."""

from . import _Family, grid


class Upsample(_Family):
    family = "upsample"
    params = grid(family)
    unit = "GB/s"
