"""2-D convolution (NCHW activations, OIHW weights) on the device's conv2d kernels.

The backward-input kernels map every (output pixel, tap) pair back to its
input pixel directly (per output phase on CUDA, col2im or a flipped-kernel
GEMM on the CPU), so they are exact for every input size and stride (the
course's dilate-based recipe loses a row when (H + 2P - K) mod stride !=
stride - 1).
Backward runs only the kernels whose gradient some input needs: the first
layer's image and a frozen feature net's weights need none, and each of
those kernels costs as much as the forward.
"""

import numbers

from ..autograd import TensorOp
from .mathematic import KernelGrad, check_same_device, run_kernel, summation

__all__ = ["conv", "Conv"]


def _positive_int(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"conv: {name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


class Conv(TensorOp):
    """y = conv(x, w) + b with zero padding; inputs (x, w) or (x, w, b)."""

    def __init__(self, stride=1, padding=0):
        self.stride = _positive_int("stride", stride, 1)
        self.padding = _positive_int("padding", padding, 0)

    def sizes(self, x_shape, w_shape):
        """The kernels' size arguments (n, c, h, w, o, kh, kw, stride, padding), output shape."""
        if len(x_shape) != 4 or len(w_shape) != 4:
            raise ValueError(f"conv: x must be NCHW and w OIHW (4-D each), got x {x_shape}, "
                             f"w {w_shape}")
        n, c, h, w = x_shape
        o, cw, kh, kw = w_shape
        if c != cw:
            raise ValueError(f"conv: x has {c} channels but w expects {cw} (w shape {w_shape})")
        ho = (h + 2 * self.padding - kh) // self.stride + 1
        wo = (w + 2 * self.padding - kw) // self.stride + 1
        if min(n, c, h, w, o, kh, kw) <= 0 or ho <= 0 or wo <= 0:
            raise ValueError(f"conv: kernel {kh}x{kw} does not fit input {h}x{w} with padding "
                             f"{self.padding} (x {x_shape}, w {w_shape})")
        return (n, c, h, w, o, kh, kw, self.stride, self.padding), (n, o, ho, wo)

    def compute(self, x, w, b=None):
        check_same_device("conv", x=x, w=w, b=b)
        sizes, out_shape = self.sizes(x.shape, w.shape)
        if b is not None and b.shape != (w.shape[0],):
            raise ValueError(f"conv: bias has shape {b.shape}, expected ({w.shape[0]},) "
                             f"for w of shape {w.shape}")
        return run_kernel("conv2d_forward", (x, w, b), out_shape, *sizes)

    def gradient(self, out_grad, node):
        x, w = node.inputs[:2]
        x_shape, w_shape = x.shape, w.shape
        sizes, _ = self.sizes(x_shape, w_shape)
        dx = dw = db = None
        if x.requires_grad:
            dx = KernelGrad("conv", lambda dy, w_: run_kernel(
                "conv2d_backward_input", (dy, w_), x_shape, *sizes))(out_grad, w)
        if w.requires_grad:
            dw = KernelGrad("conv", lambda x_, dy: run_kernel(
                "conv2d_backward_weight", (x_, dy), w_shape, *sizes))(x, out_grad)
        if len(node.inputs) == 2:
            return dx, dw
        if node.inputs[2].requires_grad:
            db = summation(out_grad, (0, 2, 3))
        return dx, dw, db


def conv(x, w, b=None, stride=1, padding=0):
    return Conv(stride, padding)(x, w) if b is None else Conv(stride, padding)(x, w, b)
