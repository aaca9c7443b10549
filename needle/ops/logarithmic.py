"""logsumexp and log_softmax, both shifted by the maximum so exp never overflows."""

from ..autograd import TensorOp
from .mathematic import broadcast_to, exp, expand_reduced, normalize_axes, summation

__all__ = ["logsumexp", "log_softmax", "LogSumExp", "LogSoftmax"]

# Replaces a max of -inf (a slice that is all -inf) so that a - max stays -inf
# instead of nan, and the result is log(0) + shift = -inf, as torch gives.
_LOWEST = -3.0e38


def _logsumexp_keepdims(a, axes):
    """log(sum(exp(a), axes)) with the reduced axes kept as size 1 (NDArrays)."""
    shift = a.max(axes, keepdims=True).maximum(_LOWEST)
    total = (a - shift.broadcast_to(a.shape)).exp().sum(axes, keepdims=True)
    return total.log() + shift


class LogSumExp(TensorOp):
    def __init__(self, axes=None, keepdims=False):
        self.axes = axes
        self.keepdims = keepdims

    def compute(self, a):
        axes = normalize_axes(self.axes, a.ndim)
        out = _logsumexp_keepdims(a, axes)
        return out if self.keepdims else out.reshape(tuple(n for i, n in enumerate(a.shape)
                                                           if i not in axes))

    def gradient(self, out_grad, node):
        a = node.inputs[0]
        axes = normalize_axes(self.axes, a.ndim)
        # softmax = exp(a - lse): exact even when several entries tie for the max.
        softmax = exp(a - expand_reduced(node, a.shape, axes))
        return expand_reduced(out_grad, a.shape, axes) * softmax


class LogSoftmax(TensorOp):
    def __init__(self, axis=-1):
        self.axis = axis

    def compute(self, a):
        axes = normalize_axes(self.axis, a.ndim)
        return a - _logsumexp_keepdims(a, axes).broadcast_to(a.shape)

    def gradient(self, out_grad, node):
        shape = node.shape
        axes = normalize_axes(self.axis, len(shape))
        total = broadcast_to(summation(out_grad, axes, keepdims=True), shape)
        return out_grad - exp(node) * total


def logsumexp(a, axes=None, keepdims=False):
    return LogSumExp(axes, keepdims)(a)


def log_softmax(a, axis=-1):
    return LogSoftmax(axis)(a)
