"""Nearest-neighbour upsampling of NCHW tensors by an integer factor, on the device's kernels."""

import numbers

from ..autograd import TensorOp
from .mathematic import KernelGrad, run_kernel

__all__ = ["upsample", "Upsample"]

MODES = ("nearest",)


class Upsample(TensorOp):
    """y[n, c, i, j] = x[n, c, i // scale, j // scale].

    The gradient sums each scale x scale block of the upstream gradient.
    """

    def __init__(self, scale=2, mode="nearest"):
        if mode not in MODES:
            raise ValueError(f"upsample: mode {mode!r} is not supported; supported modes: "
                             f"{', '.join(MODES)}")
        if isinstance(scale, bool) or not isinstance(scale, numbers.Integral) or scale < 1:
            raise ValueError(f"upsample: scale must be an integer >= 1, got {scale!r}")
        self.scale = int(scale)
        self.mode = mode

    def compute(self, x):
        if x.ndim != 4:
            raise ValueError(f"upsample: x must be NCHW (4-D), got shape {x.shape}")
        n, c, h, w = x.shape
        s = self.scale
        return run_kernel("upsample_nearest_forward", (x,), (n, c, h * s, w * s), n * c, h, w, s)

    def gradient(self, out_grad, node):
        shape = node.inputs[0].shape
        n, c, h, w = shape
        return KernelGrad("upsample", lambda dy: run_kernel(
            "upsample_nearest_backward", (dy,), shape, n * c, h, w, self.scale))(out_grad)


def upsample(x, scale=2, mode="nearest"):
    return Upsample(scale, mode)(x)
