"""Element-wise, linear-algebra, shape and reduction ops.

Every op computes on NDArrays and returns its gradient as Tensors built from
other ops, so ``backward(create_graph=True)`` records a differentiable graph.
Comparisons (masks for relu, abs, maximum, max) are taken from the forward
data: they are piecewise constant, so they carry no gradient of their own.

This module also holds the small helpers the other op families share
(operand checks, ``sum_to_shape``, ``run_kernel``, ``KernelGrad``).
"""

import numpy as np

from ..autograd import Tensor, TensorOp, TensorTuple, TensorTupleOp
from ..backend_ndarray.ndarray import NDArray, prod
from ..backend_ndarray.ndarray import _normalize_axes as normalize_axes

__all__ = [
    "add", "add_scalar", "multiply", "mul_scalar", "divide", "divide_scalar", "rdivide_scalar",
    "power", "power_scalar", "negate", "exp", "log", "sqrt", "abs", "tanh", "sigmoid", "relu",
    "maximum", "matmul", "reshape", "transpose", "permute", "broadcast_to", "summation", "mean",
    "max", "make_tuple", "tuple_get_item", "get_item", "pad", "flip", "dilate", "undilate",
    "EWiseAdd", "AddScalar", "EWiseMul", "MulScalar", "EWiseDiv", "DivScalar", "RDivScalar",
    "EWisePow", "PowerScalar", "Negate", "Exp", "Log", "Sqrt", "Abs", "Tanh", "Sigmoid", "ReLU",
    "Maximum", "MatMul", "Reshape", "Transpose", "Permute", "BroadcastTo", "Summation", "Mean",
    "Max", "MakeTuple", "TupleGetItem", "GetItem", "Scatter", "Pad", "Flip", "Dilate", "UnDilate",
    "sum_to_shape",
]


# ---------------------------------------------------------------- shared helpers


def check_same_device(name, **arrays):
    """Raise ValueError naming every operand's device unless they all agree."""
    present = {k: a.device for k, a in arrays.items() if a is not None}
    if len(set(present.values())) > 1:
        where = ", ".join(f"{k} on {d}" for k, d in present.items())
        raise ValueError(f"{name}: operands are on different devices ({where})")


def check_same_shape(name, a, b):
    check_same_device(name, a=a, b=b)
    if a.shape != b.shape:
        raise ValueError(f"{name}: operand shapes differ: {a.shape} vs {b.shape} "
                         f"(broadcast_to one of them first)")


def run_kernel(kernel, inputs, out_shape, *sizes):
    """out = NDArray(out_shape); device.kernel(*inputs, out, *sizes); None inputs pass as None."""
    device = next(a.device for a in inputs if a is not None)
    out = NDArray.make(out_shape, device=device)
    handles = [None if a is None else a.compact()._handle for a in inputs]
    getattr(device, kernel)(*handles, out._handle, *sizes)
    return out


class KernelGrad(TensorOp):
    """A backward kernel (conv, upsample, colour) as an op.

    Wrapping it keeps create_graph=True honest: the recorded graph raises a
    clear error if differentiated again, instead of silently treating the
    gradient as a constant.
    """

    def __init__(self, name, fn):
        self.name = name
        self.fn = fn

    def compute(self, *arrays):
        return self.fn(*arrays)

    def gradient(self, out_grad, node):
        raise NotImplementedError(f"the second derivative of {self.name} is not implemented")


def const(array):
    """A Tensor outside the graph (masks and weights derived from forward data)."""
    return Tensor.make_const(array)


def keepdims_shape(shape, axes):
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


def sum_to_shape(t, shape):
    """Sum t over the axes that broadcasting to t.shape added or stretched from 1."""
    shape = tuple(shape)
    if t.shape == shape:
        return t
    lead = len(t.shape) - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(shape)
                                      if n == 1 and t.shape[lead + i] != 1)
    return reshape(summation(t, axes), shape)


def expand_reduced(g, in_shape, axes):
    """Broadcast the gradient of a reduction over axes back to the input's shape."""
    return broadcast_to(reshape(g, keepdims_shape(in_shape, axes)), in_shape)


# ---------------------------------------------------------------- element-wise


class EWiseAdd(TensorOp):
    def compute(self, a, b):
        check_same_shape("add", a, b)
        return a + b

    def gradient(self, out_grad, node):
        return out_grad, out_grad


class AddScalar(TensorOp):
    def __init__(self, scalar):
        self.scalar = float(scalar)

    def compute(self, a):
        return a + self.scalar

    def gradient(self, out_grad, node):
        return out_grad


class EWiseMul(TensorOp):
    def compute(self, a, b):
        check_same_shape("multiply", a, b)
        return a * b

    def gradient(self, out_grad, node):
        a, b = node.inputs
        return out_grad * b, out_grad * a


class MulScalar(TensorOp):
    def __init__(self, scalar):
        self.scalar = float(scalar)

    def compute(self, a):
        return a * self.scalar

    def gradient(self, out_grad, node):
        return out_grad * self.scalar


class EWiseDiv(TensorOp):
    def compute(self, a, b):
        check_same_shape("divide", a, b)
        return a / b

    def gradient(self, out_grad, node):
        a, b = node.inputs
        return out_grad / b, -(out_grad * a) / (b * b)


class DivScalar(TensorOp):
    def __init__(self, scalar):
        self.scalar = float(scalar)

    def compute(self, a):
        return a / self.scalar

    def gradient(self, out_grad, node):
        return out_grad / self.scalar


class RDivScalar(TensorOp):
    """scalar / a."""

    def __init__(self, scalar):
        self.scalar = float(scalar)

    def compute(self, a):
        return self.scalar / a

    def gradient(self, out_grad, node):
        a = node.inputs[0]
        return -(out_grad * self.scalar) / (a * a)


class EWisePow(TensorOp):
    """a ** b for two tensors."""

    def compute(self, a, b):
        check_same_shape("power", a, b)
        return a ** b

    def gradient(self, out_grad, node):
        a, b = node.inputs
        # As torch: d/da is 0 where b == 0 (avoids 0 * inf at a == 0), and
        # d/db is 0 where a == 0 (log(0) = -inf would give nan); log(a + 1)
        # there is log(1) = 0.
        nonzero_b = const(b.cached_data != 0.0)
        zero_a = const(a.cached_data == 0.0)
        grad_a = out_grad * b * power(a, b - nonzero_b) * nonzero_b
        grad_b = out_grad * node * log(a + zero_a)
        return grad_a, grad_b


class PowerScalar(TensorOp):
    """a ** scalar."""

    def __init__(self, scalar):
        self.scalar = float(scalar)

    def compute(self, a):
        return a ** self.scalar

    def gradient(self, out_grad, node):
        if self.scalar == 0.0:
            return out_grad * 0.0
        return out_grad * self.scalar * power_scalar(node.inputs[0], self.scalar - 1.0)


class Negate(TensorOp):
    def compute(self, a):
        return -a

    def gradient(self, out_grad, node):
        return -out_grad


class Exp(TensorOp):
    def compute(self, a):
        return a.exp()

    def gradient(self, out_grad, node):
        return out_grad * node


class Log(TensorOp):
    def compute(self, a):
        return a.log()

    def gradient(self, out_grad, node):
        return out_grad / node.inputs[0]


class Sqrt(TensorOp):
    def compute(self, a):
        return a.sqrt()

    def gradient(self, out_grad, node):
        return out_grad / (node * 2.0)


class Abs(TensorOp):
    def compute(self, a):
        return a.abs()

    def gradient(self, out_grad, node):
        # sign(0) = 0: the subgradient torch picks.
        return out_grad * const(node.inputs[0].cached_data.sign())


class Tanh(TensorOp):
    def compute(self, a):
        return a.tanh()

    def gradient(self, out_grad, node):
        return out_grad * (1.0 - node * node)


class Sigmoid(TensorOp):
    def compute(self, a):
        # 1 / (1 + exp(-a)) overflows exp for large -a; the tanh form never does.
        return ((a * 0.5).tanh() + 1.0) * 0.5

    def gradient(self, out_grad, node):
        return out_grad * node * (1.0 - node)


class ReLU(TensorOp):
    def compute(self, a):
        return a.maximum(0.0)

    def gradient(self, out_grad, node):
        # Gradient 0 at a == 0, as torch.
        return out_grad * const(node.inputs[0].cached_data > 0.0)


class Maximum(TensorOp):
    def compute(self, a, b):
        check_same_shape("maximum", a, b)
        return a.maximum(b)

    def gradient(self, out_grad, node):
        a, b = (x.cached_data for x in node.inputs)
        # torch semantics: where a == b each side gets half the gradient.
        tie = (a == b) * 0.5
        return out_grad * const((a > b) + tie), out_grad * const((b > a) + tie)


# ---------------------------------------------------------------- linear algebra


class MatMul(TensorOp):
    """a @ b over the last two axes; leading (batch) axes broadcast as in numpy."""

    def compute(self, a, b):
        check_same_device("matmul", a=a, b=b)
        return a @ b

    def gradient(self, out_grad, node):
        a, b = node.inputs
        return (sum_to_shape(matmul(out_grad, transpose(b)), a.shape),
                sum_to_shape(matmul(transpose(a), out_grad), b.shape))


# ---------------------------------------------------------------- shape


class Reshape(TensorOp):
    def __init__(self, shape):
        self.shape = tuple(shape)

    def compute(self, a):
        return a.reshape(self.shape)

    def gradient(self, out_grad, node):
        return reshape(out_grad, node.inputs[0].shape)


class Permute(TensorOp):
    def __init__(self, axes):
        self.axes = tuple(axes)

    def compute(self, a):
        return a.permute(self.axes)

    def gradient(self, out_grad, node):
        axes = [ax % len(self.axes) for ax in self.axes]
        return permute(out_grad, sorted(range(len(axes)), key=axes.__getitem__))


class Transpose(TensorOp):
    """Swap two axes (the last two by default)."""

    def __init__(self, axes=None):
        self.axes = (-2, -1) if axes is None else tuple(axes)
        if len(self.axes) != 2:
            raise ValueError(f"transpose swaps two axes, got axes={axes}")

    def compute(self, a):
        i, j = normalize_axes(self.axes[0], a.ndim)[0], normalize_axes(self.axes[1], a.ndim)[0]
        order = list(range(a.ndim))
        order[i], order[j] = j, i
        return a.permute(order)

    def gradient(self, out_grad, node):
        return transpose(out_grad, self.axes)


class BroadcastTo(TensorOp):
    def __init__(self, shape):
        self.shape = tuple(shape)

    def compute(self, a):
        return a.broadcast_to(self.shape)

    def gradient(self, out_grad, node):
        return sum_to_shape(out_grad, node.inputs[0].shape)


# ---------------------------------------------------------------- reductions


class Summation(TensorOp):
    def __init__(self, axes=None, keepdims=False):
        self.axes = axes
        self.keepdims = keepdims

    def compute(self, a):
        return a.sum(self.axes, keepdims=self.keepdims)

    def gradient(self, out_grad, node):
        shape = node.inputs[0].shape
        return expand_reduced(out_grad, shape, normalize_axes(self.axes, len(shape)))


class Mean(Summation):
    def count(self, shape):
        return prod(shape[ax] for ax in normalize_axes(self.axes, len(shape)))

    def compute(self, a):
        return super().compute(a) / self.count(a.shape)

    def gradient(self, out_grad, node):
        return super().gradient(out_grad, node) / self.count(node.inputs[0].shape)


class Max(TensorOp):
    def __init__(self, axes=None, keepdims=False):
        self.axes = axes
        self.keepdims = keepdims

    def compute(self, a):
        return a.max(self.axes, keepdims=self.keepdims)

    def gradient(self, out_grad, node):
        a = node.inputs[0].cached_data
        axes = normalize_axes(self.axes, a.ndim)
        top = node.cached_data.reshape(keepdims_shape(a.shape, axes)).broadcast_to(a.shape)
        hits = a == top
        # Ties share the gradient evenly, as torch.amax and torch.max(x) do.
        count = hits.sum(axes, keepdims=True).broadcast_to(a.shape)
        return expand_reduced(out_grad, a.shape, axes) * const(hits / count)


# ---------------------------------------------------------------- tuples


class MakeTuple(TensorTupleOp):
    def compute(self, *arrays):
        return tuple(arrays)

    def gradient(self, out_grad, node):
        return out_grad.tuple()


class TupleGetItem(TensorOp):
    def __init__(self, index):
        self.index = index

    def compute(self, a):
        return a[self.index]

    def gradient(self, out_grad, node):
        parts = node.inputs[0].cached_data
        return make_tuple(*[out_grad if i == self.index else const(p.device.zeros(p.shape))
                            for i, p in enumerate(parts)])


# ---------------------------------------------------------------- indexing


def _squeezed_view(a, idxs):
    """a[idxs] with integer-indexed axes dropped (numpy semantics), as a view."""
    idxs = idxs if isinstance(idxs, tuple) else (idxs,)
    view, shape = a._index_view(idxs)
    full = idxs + (slice(None),) * (a.ndim - len(idxs))
    strides = tuple(st for st, s in zip(view.strides, full) if not isinstance(s, (int, np.integer)))
    return view.as_strided(shape, strides)


class GetItem(TensorOp):
    """a[idxs]: ints drop their axis; slices may step and count from the end."""

    def __init__(self, idxs):
        self.idxs = idxs

    def compute(self, a):
        return _squeezed_view(a, self.idxs)

    def gradient(self, out_grad, node):
        return Scatter(self.idxs, node.inputs[0].shape)(out_grad)


class Scatter(TensorOp):
    """zeros(shape) with [idxs] = a: the adjoint of GetItem (and of UnDilate)."""

    def __init__(self, idxs, shape):
        self.idxs = idxs
        self.shape = tuple(shape)

    def compute(self, a):
        out = a.device.zeros(self.shape)
        view = out[self.idxs]
        if view.size != a.size:
            raise ValueError(f"scatter: {a.shape} does not fill the slot {view.shape}")
        out[self.idxs] = a.reshape(view.shape)
        return out

    def gradient(self, out_grad, node):
        return get_item(out_grad, self.idxs)


class Pad(TensorOp):
    """Zero padding; axes is one (before, after) pair per dimension."""

    def __init__(self, axes):
        self.axes = tuple(tuple(p) for p in axes)

    def compute(self, a):
        return a.pad(self.axes)

    def gradient(self, out_grad, node):
        return get_item(out_grad, tuple(slice(lo, lo + n) for (lo, _), n
                                        in zip(self.axes, node.inputs[0].shape)))


class Flip(TensorOp):
    def __init__(self, axes=None):
        self.axes = axes

    def compute(self, a):
        return a.flip(self.axes)

    def gradient(self, out_grad, node):
        return flip(out_grad, self.axes)


def _dilation_slices(ndim, axes, dilation):
    if dilation < 0:
        raise ValueError(f"dilation must be >= 0, got {dilation}")
    axes = normalize_axes(axes, ndim)
    return tuple(slice(None, None, dilation + 1) if i in axes else slice(None)
                 for i in range(ndim))


class Dilate(TensorOp):
    """Insert `dilation` zeros after every element along axes (size n -> n * (dilation + 1))."""

    def __init__(self, axes, dilation):
        self.axes = axes
        self.dilation = int(dilation)

    def compute(self, a):
        axes = normalize_axes(self.axes, a.ndim)
        shape = tuple(n * (self.dilation + 1) if i in axes else n for i, n in enumerate(a.shape))
        return Scatter(_dilation_slices(a.ndim, axes, self.dilation), shape).compute(a)

    def gradient(self, out_grad, node):
        return undilate(out_grad, self.axes, self.dilation)


class UnDilate(TensorOp):
    """Keep every (dilation + 1)-th element along axes: the inverse of Dilate."""

    def __init__(self, axes, dilation):
        self.axes = axes
        self.dilation = int(dilation)

    def compute(self, a):
        return a[_dilation_slices(a.ndim, self.axes, self.dilation)]

    def gradient(self, out_grad, node):
        shape = node.inputs[0].shape
        return Scatter(_dilation_slices(len(shape), self.axes, self.dilation), shape)(out_grad)


# ---------------------------------------------------------------- functions


def add(a, b):
    return EWiseAdd()(a, b)


def add_scalar(a, scalar):
    return AddScalar(scalar)(a)


def multiply(a, b):
    return EWiseMul()(a, b)


def mul_scalar(a, scalar):
    return MulScalar(scalar)(a)


def divide(a, b):
    return EWiseDiv()(a, b)


def divide_scalar(a, scalar):
    return DivScalar(scalar)(a)


def rdivide_scalar(a, scalar):
    return RDivScalar(scalar)(a)


def power(a, b):
    return EWisePow()(a, b)


def power_scalar(a, scalar):
    return PowerScalar(scalar)(a)


def negate(a):
    return Negate()(a)


def exp(a):
    return Exp()(a)


def log(a):
    return Log()(a)


def sqrt(a):
    return Sqrt()(a)


def abs(a):  # noqa: A001  (needle.abs, as torch.abs)
    return Abs()(a)


def tanh(a):
    return Tanh()(a)


def sigmoid(a):
    return Sigmoid()(a)


def relu(a):
    return ReLU()(a)


def maximum(a, b):
    return Maximum()(a, b)


def matmul(a, b):
    return MatMul()(a, b)


def reshape(a, shape):
    return Reshape(shape)(a)


def transpose(a, axes=None):
    return Transpose(axes)(a)


def permute(a, axes):
    return Permute(axes)(a)


def broadcast_to(a, shape):
    return BroadcastTo(shape)(a)


def summation(a, axes=None, keepdims=False):
    return Summation(axes, keepdims)(a)


def mean(a, axes=None, keepdims=False):
    return Mean(axes, keepdims)(a)


def max(a, axes=None, keepdims=False):  # noqa: A001  (needle.max, as torch.max)
    return Max(axes, keepdims)(a)


def make_tuple(*tensors):
    return MakeTuple()(*tensors)


def tuple_get_item(value, index):
    if not isinstance(value, TensorTuple):
        raise TypeError(f"tuple_get_item needs a TensorTuple, got {type(value).__name__}")
    if not -len(value) <= index < len(value):
        raise IndexError(f"index {index} is out of range for a tuple of {len(value)}")
    if isinstance(value.op, MakeTuple):
        # The tuple was built here: hand back the tensor itself, no extra node.
        return value.inputs[index]
    return TupleGetItem(index % len(value))(value)


def get_item(a, idxs):
    return GetItem(idxs)(a)


def pad(a, axes):
    return Pad(axes)(a)


def flip(a, axes=None):
    return Flip(axes)(a)


def dilate(a, axes, dilation):
    return Dilate(axes, dilation)(a)


def undilate(a, axes, dilation):
    return UnDilate(axes, dilation)(a)
