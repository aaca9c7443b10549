"""sRGB <-> Lab, forward and vjp, at 32x32 and 512x512."""

from . import _Family, grid


class RgbToLab(_Family):
    family, kernel = "colorspace", "rgb_to_lab"
    params = grid(family, kernel)
    unit = "GB/s"


class LabToRgb(_Family):
    family, kernel = "colorspace", "lab_to_rgb"
    params = grid(family, kernel)
    unit = "GB/s"
