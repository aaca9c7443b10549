"""Concatenation along any axis, and its relatives stack and split.

All three run on the concat kernel pair: viewed as (outer, width) row blocks,
with outer = prod(shape[:axis]) and width = shape[axis] * prod(shape[axis+1:]),
concatenation puts the inputs' rows side by side (one concat_forward call) and
its adjoint cuts them apart again (one concat_backward call).  Stack is a
concat along a new axis of size 1; split is the inverse of either.
"""

from ..autograd import TensorOp, TensorTuple, TensorTupleOp
from ..backend_ndarray.ndarray import NDArray, prod
from .mathematic import check_same_device, make_tuple, normalize_axes

__all__ = ["concat", "stack", "split", "Concat", "Stack", "Split"]


def _axis(name, axis, ndim):
    if ndim == 0:
        raise ValueError(f"{name}: zero-dimensional tensors have no axis to join along")
    return normalize_axes(axis, ndim)[0]


def concat_arrays(arrays, axis, name="concat"):
    """One concat_forward call joining NDArrays along axis."""
    if not arrays:
        raise ValueError(f"{name}: needs at least one tensor")
    first = arrays[0]
    axis = _axis(name, axis, first.ndim)
    for k, a in enumerate(arrays):
        check_same_device(name, **{"tensor 0": first, f"tensor {k}": a})
        if a.ndim != first.ndim or a.shape[:axis] + a.shape[axis + 1:] != \
                first.shape[:axis] + first.shape[axis + 1:]:
            raise ValueError(f"{name}: tensor {k} has shape {a.shape} but tensor 0 has "
                             f"{first.shape}; they may differ only along axis {axis}")
    inner = prod(first.shape[axis + 1:])
    shape = first.shape[:axis] + (sum(a.shape[axis] for a in arrays),) + first.shape[axis + 1:]
    out = NDArray.make(shape, device=first.device)
    first.device.concat_forward([a.compact()._handle for a in arrays], out._handle,
                                prod(first.shape[:axis]), [a.shape[axis] * inner for a in arrays])
    return out


def split_array(a, axis, sizes):
    """One concat_backward call cutting a along axis into pieces of the given sizes."""
    axis = _axis("split", axis, a.ndim)
    if sum(sizes) != a.shape[axis] or any(n < 0 for n in sizes):
        raise ValueError(f"split: sizes {list(sizes)} do not add up to {a.shape[axis]}, "
                         f"the length of axis {axis} of shape {a.shape}")
    inner = prod(a.shape[axis + 1:])
    outs = [NDArray.make(a.shape[:axis] + (n,) + a.shape[axis + 1:], device=a.device)
            for n in sizes]
    a.device.concat_backward(a.compact()._handle, [o._handle for o in outs],
                             prod(a.shape[:axis]), [n * inner for n in sizes])
    return outs


class Concat(TensorOp):
    """Join a TensorTuple along an existing axis; sizes along it may differ."""

    def __init__(self, axis):
        self.axis = axis

    def compute(self, arrays):
        return concat_arrays(arrays, self.axis)

    def gradient(self, out_grad, node):
        parts = node.inputs[0].cached_data
        axis = _axis("concat", self.axis, parts[0].ndim)
        return Split(axis, [p.shape[axis] for p in parts])(out_grad)


class Stack(TensorOp):
    """Join a TensorTuple of equal shapes along a new axis."""

    def __init__(self, axis):
        self.axis = axis

    def compute(self, arrays):
        if not arrays:
            raise ValueError("stack: needs at least one tensor")
        axis = normalize_axes(self.axis, arrays[0].ndim + 1)[0]
        return concat_arrays([a.reshape(a.shape[:axis] + (1,) + a.shape[axis:]) for a in arrays],
                             axis, "stack")

    def gradient(self, out_grad, node):
        return Split(self.axis)(out_grad)


class Split(TensorTupleOp):
    """Cut along axis into pieces of `sizes` (the inverse of concat), or, without
    sizes, into every index with the axis dropped (the inverse of stack)."""

    def __init__(self, axis, sizes=None):
        self.axis = axis
        self.sizes = None if sizes is None else tuple(sizes)

    def compute(self, a):
        if self.sizes is not None:
            return tuple(split_array(a, self.axis, self.sizes))
        axis = _axis("split", self.axis, a.ndim)
        rest = a.shape[:axis] + a.shape[axis + 1:]
        return tuple(p.reshape(rest) for p in split_array(a, axis, [1] * a.shape[axis]))

    def gradient(self, out_grad, node):
        parts = out_grad.tuple()
        return stack(parts, self.axis) if self.sizes is None else concat(parts, self.axis)


def _as_tuple(tensors):
    return tensors if isinstance(tensors, TensorTuple) else make_tuple(*tensors)


def concat(tensors, axis=1):
    """Concatenate any number of tensors along axis (NCHW channels by default)."""
    return Concat(axis)(_as_tuple(tensors))


def stack(tensors, axis=0):
    return Stack(axis)(_as_tuple(tensors))


def split(a, axis=0):
    """The TensorTuple of a's slices along axis, with that axis dropped."""
    return Split(axis)(a)
