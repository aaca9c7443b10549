"""sRGB <-> CIELAB (D65, scikit-image's constants) on NCHW tensors, on the device's colour kernels.

No clipping anywhere: the kernels' Jacobians are exact and finite for every
input, in gamut or not, so losses computed on lab_to_rgb(...) get gradients
even where the prediction leaves [0, 1].
"""

from ..autograd import TensorOp
from .mathematic import KernelGrad, run_kernel

__all__ = ["rgb_to_lab", "lab_to_rgb", "RGBToLab", "LabToRGB"]


class _ColourConversion(TensorOp):
    """One colour kernel and its vector-Jacobian product; x is (N, 3, H, W)."""

    kernel = None

    def sizes(self, shape):
        if len(shape) != 4 or shape[1] != 3:
            raise ValueError(f"{self.kernel}: expected an NCHW tensor with 3 channels "
                             f"(N, 3, H, W), got shape {shape}")
        return shape[0], shape[2] * shape[3]

    def compute(self, x):
        return run_kernel(self.kernel, (x,), x.shape, *self.sizes(x.shape))

    def gradient(self, out_grad, node):
        x = node.inputs[0]
        sizes = self.sizes(x.shape)
        shape = x.shape
        return KernelGrad(self.kernel, lambda x_, dy: run_kernel(
            self.kernel + "_vjp", (x_, dy), shape, *sizes))(x, out_grad)


class RGBToLab(_ColourConversion):
    """sRGB in [0, 1] -> L in [0, 100], a and b roughly in [-110, 110]."""

    kernel = "rgb_to_lab"


class LabToRGB(_ColourConversion):
    """Lab -> sRGB, not clipped to [0, 1]."""

    kernel = "lab_to_rgb"


def rgb_to_lab(x):
    return RGBToLab()(x)


def lab_to_rgb(x):
    return LabToRGB()(x)
