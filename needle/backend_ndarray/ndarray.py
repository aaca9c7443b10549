"""NDArray: a strided float32 view over a flat backend buffer.

Shape, strides and offset live here, in Python; the buffer and every kernel
live in a backend module that implements the contract (contract.py).  Views
(reshape of compact arrays, permute, broadcast_to, slicing, flip) share the
buffer and cost nothing; anything that computes first makes the operands
compact.
"""

import importlib
import math
import operator
from functools import reduce

import numpy as np

from .contract import FUNCTIONS


def prod(xs):
    return reduce(operator.mul, xs, 1)


class BackendDevice:
    """A device: a name and the backend module that runs its kernels."""

    def __init__(self, name, mod):
        self.name = name
        self.mod = mod

    def __eq__(self, other):
        return isinstance(other, BackendDevice) and self.name == other.name

    def __hash__(self):
        return hash(self.name)

    def __repr__(self):
        return f"{self.name}()"

    def __getattr__(self, name):
        return getattr(self.mod, name)

    def enabled(self):
        return self.mod is not None

    def full(self, shape, fill_value):
        arr = NDArray.make(shape, device=self)
        arr.fill(fill_value)
        return arr

    def zeros(self, shape):
        return self.full(shape, 0.0)

    def ones(self, shape):
        return self.full(shape, 1.0)

    def rand(self, *shape, generator=None):
        gen = generator if generator is not None else np.random
        return NDArray(gen.random(shape).astype(np.float32), device=self)

    def randn(self, *shape, generator=None):
        gen = generator if generator is not None else np.random
        return NDArray(gen.standard_normal(shape).astype(np.float32), device=self)

    def one_hot(self, n, idx):
        idx = np.asarray(idx, dtype=np.int64)
        return NDArray(np.eye(n, dtype=np.float32)[idx], device=self)


class DeviceUnavailable(RuntimeError):
    """The backend of a device is not built, or its hardware is missing."""


_HOW_TO_BUILD = {
    "cpu": "build it with `make` (or `pip install -e .`) from the repository root",
    "cuda": "build it with `make` on a machine with nvcc (CUDA toolkit), and run on a machine "
    "with an NVIDIA GPU",
}

_devices = {}


def _load_device(name, module_name):
    if name not in _devices:
        try:
            mod = importlib.import_module(f"needle.backend_ndarray.{module_name}")
        except ImportError as err:
            raise DeviceUnavailable(
                f"needle.{name}() is not available: the backend module {module_name} "
                f"did not import ({err}); {_HOW_TO_BUILD[name]}") from err
        missing = [f for f in FUNCTIONS if not hasattr(mod, f)]
        if missing:
            raise DeviceUnavailable(f"backend {module_name} lacks contract functions {missing}")
        if hasattr(mod, "device_count") and mod.device_count() == 0:
            raise DeviceUnavailable(f"needle.{name}() is built but no GPU is present; "
                                    f"{_HOW_TO_BUILD[name]}")
        _devices[name] = BackendDevice(name, mod)
    return _devices[name]


def cpu_numpy():
    """The numpy reference backend."""
    if "cpu_numpy" not in _devices:
        from . import ndarray_backend_numpy
        _devices["cpu_numpy"] = BackendDevice("cpu_numpy", ndarray_backend_numpy)
    return _devices["cpu_numpy"]


def cpu():
    """The C++ CPU backend (pybind11, OpenMP, SIMD)."""
    return _load_device("cpu", "ndarray_backend_cpu")


def cuda():
    """The CUDA backend."""
    return _load_device("cuda", "ndarray_backend_cuda")


def default_device():
    return cpu()


def all_devices():
    """Every device that is built and has its hardware present."""
    found = []
    for make in (cpu_numpy, cpu, cuda):
        try:
            found.append(make())
        except DeviceUnavailable:
            pass
    return found


def _as_float32(value):
    arr = np.asarray(value)
    if arr.dtype == np.float32:
        return arr
    if arr.dtype.kind in "biuf":
        return arr.astype(np.float32)
    raise TypeError(f"needle arrays hold float32; cannot convert dtype {arr.dtype} "
                    f"(expected a bool, integer or floating array)")


def _normalize_axes(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    out = []
    for ax in axes:
        if not -ndim <= ax < max(ndim, 1):
            raise ValueError(f"axis {ax} is out of range for an array of {ndim} dimensions")
        out.append(ax % max(ndim, 1))
    if len(set(out)) != len(out):
        raise ValueError(f"repeated axis in {axis}")
    return tuple(sorted(out))


class NDArray:
    """A float32 array on a device: a backend buffer plus shape, strides and offset."""

    def __init__(self, other, device=None):
        if isinstance(other, NDArray):
            device = device or other.device
            self._init(other.compact_copy() if device == other.device else other.to(device))
            return
        device = device if device is not None else default_device()
        # np.require, not ascontiguousarray: the latter turns 0-d arrays into shape (1,).
        arr = np.require(_as_float32(other), requirements="C")
        handle = device.Array(arr.size)
        device.from_numpy(arr, handle)
        self._init(NDArray.make(arr.shape, device=device, handle=handle))

    def _init(self, other):
        self._shape = other._shape
        self._strides = other._strides
        self._offset = other._offset
        self._device = other._device
        self._handle = other._handle

    @staticmethod
    def compact_strides(shape):
        stride, res = 1, []
        for n in reversed(shape):
            res.append(stride)
            stride *= n
        return tuple(reversed(res))

    @staticmethod
    def make(shape, strides=None, device=None, handle=None, offset=0):
        shape = tuple(int(s) for s in shape)
        if any(s < 0 for s in shape):
            raise ValueError(f"negative dimension in shape {shape}")
        arr = NDArray.__new__(NDArray)
        arr._shape = shape
        arr._strides = NDArray.compact_strides(shape) if strides is None else tuple(strides)
        arr._offset = offset
        arr._device = device if device is not None else default_device()
        arr._handle = handle if handle is not None else arr._device.Array(prod(shape))
        return arr

    # ------------------------------------------------------------ properties

    @property
    def shape(self):
        return self._shape

    @property
    def strides(self):
        return self._strides

    @property
    def device(self):
        return self._device

    @property
    def dtype(self):
        return "float32"

    @property
    def ndim(self):
        return len(self._shape)

    @property
    def size(self):
        return prod(self._shape)

    def __repr__(self):
        return f"NDArray({self.numpy()}, device={self.device})"

    def __str__(self):
        return str(self.numpy())

    def __len__(self):
        if not self._shape:
            raise TypeError("len() of a 0-d array")
        return self._shape[0]

    # ------------------------------------------------------------ conversion

    def numpy(self):
        return self.device.to_numpy(self._handle, self._shape, self._strides, self._offset)

    def to(self, device):
        return self if device == self.device else NDArray(self.numpy(), device=device)

    def fill(self, value):
        self.device.fill(self._handle, float(value))

    def is_compact(self):
        return self._strides == NDArray.compact_strides(self._shape) and (
            self._offset == 0 and prod(self._shape) == self._handle.size)

    def compact(self):
        if self.is_compact():
            return self
        out = NDArray.make(self._shape, device=self.device)
        self.device.compact(self._handle, out._handle, self._shape, self._strides, self._offset)
        return out

    def compact_copy(self):
        out = NDArray.make(self._shape, device=self.device)
        self.device.compact(self._handle, out._handle, self._shape, self._strides, self._offset)
        return out

    def as_strided(self, shape, strides):
        if len(shape) != len(strides):
            raise ValueError(f"shape {shape} and strides {strides} differ in length")
        return NDArray.make(shape, strides=strides, device=self.device,
                            handle=self._handle, offset=self._offset)

    # ------------------------------------------------------------ views

    @property
    def flat(self):
        return self.reshape((self.size,))

    def reshape(self, new_shape):
        new_shape = tuple(new_shape)
        if new_shape.count(-1) > 1:
            raise ValueError(f"only one -1 allowed in reshape, got {new_shape}")
        if -1 in new_shape:
            known = prod(s for s in new_shape if s != -1)
            if known == 0 or self.size % known:
                raise ValueError(f"cannot reshape array of shape {self.shape} into {new_shape}")
            new_shape = tuple(self.size // known if s == -1 else s for s in new_shape)
        if prod(new_shape) != self.size:
            raise ValueError(f"cannot reshape array of shape {self.shape} (size {self.size}) "
                             f"into {new_shape} (size {prod(new_shape)})")
        src = self if self._strides == NDArray.compact_strides(self._shape) else self.compact()
        return NDArray.make(new_shape, device=src.device, handle=src._handle, offset=src._offset)

    def permute(self, new_axes):
        new_axes = tuple(new_axes)
        if sorted(a % max(self.ndim, 1) for a in new_axes) != list(range(self.ndim)):
            raise ValueError(f"permute axes {new_axes} are not a permutation of "
                             f"{self.ndim} dimensions")
        new_axes = tuple(a % self.ndim for a in new_axes)
        return NDArray.make(tuple(self._shape[a] for a in new_axes),
                            strides=tuple(self._strides[a] for a in new_axes),
                            device=self.device, handle=self._handle, offset=self._offset)

    def broadcast_to(self, new_shape):
        new_shape = tuple(new_shape)
        if len(new_shape) < self.ndim:
            raise ValueError(f"cannot broadcast shape {self.shape} to fewer dimensions {new_shape}")
        lead = len(new_shape) - self.ndim
        strides = [0] * lead
        for old, new, st in zip(self._shape, new_shape[lead:], self._strides):
            if old == new:
                strides.append(st)
            elif old == 1:
                strides.append(0)
            else:
                raise ValueError(f"cannot broadcast shape {self.shape} to {new_shape}")
        return NDArray.make(new_shape, strides=tuple(strides), device=self.device,
                            handle=self._handle, offset=self._offset)

    def flip(self, axes=None):
        axes = _normalize_axes(axes, self.ndim)
        strides, offset = list(self._strides), self._offset
        for ax in axes:
            if self._shape[ax] > 0:
                offset += (self._shape[ax] - 1) * strides[ax]
            strides[ax] = -strides[ax]
        return NDArray.make(self._shape, strides=tuple(strides), device=self.device,
                            handle=self._handle, offset=offset).compact()

    def pad(self, axes):
        axes = tuple(tuple(p) for p in axes)
        if len(axes) != self.ndim or any(len(p) != 2 or min(p) < 0 for p in axes):
            raise ValueError(f"pad needs one (before, after) pair of non-negative ints per "
                             f"dimension ({self.ndim}), got {axes}")
        out = self.device.zeros(tuple(n + lo + hi for n, (lo, hi) in zip(self._shape, axes)))
        out[tuple(slice(lo, lo + n) for n, (lo, _) in zip(self._shape, axes))] = self
        return out

    # ------------------------------------------------------------ indexing

    def _process_slice(self, sl, dim):
        n = self._shape[dim]
        if isinstance(sl, slice):
            start, stop, step = sl.indices(n)
            if step <= 0:
                raise ValueError(f"slice step must be positive, got {sl.step}")
            return slice(start, max(stop, start), step)
        if isinstance(sl, (int, np.integer)):
            i = int(sl)
            if not -n <= i < n:
                raise IndexError(f"index {i} is out of range for dimension {dim} of size {n}")
            i %= n
            return slice(i, i + 1, 1)
        raise TypeError(f"indices must be ints or slices, got {type(sl).__name__}")

    def _index_view(self, idxs):
        if not isinstance(idxs, tuple):
            idxs = (idxs,)
        if len(idxs) > self.ndim:
            raise IndexError(f"too many indices ({len(idxs)}) for an array of "
                             f"{self.ndim} dimensions")
        idxs = idxs + (slice(None),) * (self.ndim - len(idxs))
        slices = [self._process_slice(s, i) for i, s in enumerate(idxs)]
        shape = tuple(max(0, math.ceil((s.stop - s.start) / s.step)) for s in slices)
        strides = tuple(st * s.step for st, s in zip(self._strides, slices))
        offset = self._offset + sum(s.start * st for s, st in zip(slices, self._strides))
        view = NDArray.make(shape, strides=strides, device=self.device,
                            handle=self._handle, offset=offset)
        squeeze = tuple(d for d, s in zip(view.shape, idxs) if not isinstance(s, (int, np.integer)))
        return view, squeeze

    def __getitem__(self, idxs):
        """Basic indexing: ints, slices (steps, negative indices); returns a view.

        Integer indices keep their axis (size 1), as in the Needle course; the
        autograd getitem op drops them.
        """
        return self._index_view(idxs)[0]

    def __setitem__(self, idxs, other):
        view, _ = self._index_view(idxs)
        if isinstance(other, NDArray):
            if other.device != self.device:
                raise ValueError(f"cannot assign an array on {other.device} into one on {self.device}")
            if prod(other.shape) != prod(view.shape):
                other = other.broadcast_to(view.shape)
            self.device.ewise_setitem(other.compact()._handle, view._handle, view.shape,
                                      view.strides, view._offset)
        else:
            self.device.scalar_setitem(prod(view.shape), float(other), view._handle,
                                       view.shape, view.strides, view._offset)

    # ------------------------------------------------------------ element-wise

    def _same_device(self, other):
        if other.device != self.device:
            raise ValueError(f"operands are on different devices: {self.device} and {other.device}")

    def ewise_or_scalar(self, other, ewise_func, scalar_func):
        out = NDArray.make(self.shape, device=self.device)
        if isinstance(other, NDArray):
            self._same_device(other)
            if self.shape != other.shape:
                raise ValueError(f"element-wise shapes differ: {self.shape} vs {other.shape}")
            ewise_func(self.compact()._handle, other.compact()._handle, out._handle)
        else:
            scalar_func(self.compact()._handle, float(other), out._handle)
        return out

    def _unary(self, func):
        out = NDArray.make(self.shape, device=self.device)
        func(self.compact()._handle, out._handle)
        return out

    def __add__(self, other):
        return self.ewise_or_scalar(other, self.device.ewise_add, self.device.scalar_add)

    __radd__ = __add__

    def __sub__(self, other):
        return self + (-other)

    def __rsub__(self, other):
        return other + (-self)

    def __mul__(self, other):
        return self.ewise_or_scalar(other, self.device.ewise_mul, self.device.scalar_mul)

    __rmul__ = __mul__

    def __truediv__(self, other):
        return self.ewise_or_scalar(other, self.device.ewise_div, self.device.scalar_div)

    def __rtruediv__(self, other):
        out = NDArray.make(self.shape, device=self.device)
        self.device.scalar_rdiv(self.compact()._handle, float(other), out._handle)
        return out

    def __neg__(self):
        return self * (-1.0)

    def __pow__(self, other):
        return self.ewise_or_scalar(other, self.device.ewise_pow, self.device.scalar_power)

    def maximum(self, other):
        return self.ewise_or_scalar(other, self.device.ewise_maximum, self.device.scalar_maximum)

    def __eq__(self, other):
        return self.ewise_or_scalar(other, self.device.ewise_eq, self.device.scalar_eq)

    def __ge__(self, other):
        return self.ewise_or_scalar(other, self.device.ewise_ge, self.device.scalar_ge)

    def __gt__(self, other):
        return self.ewise_or_scalar(other, self.device.ewise_gt, self.device.scalar_gt)

    def __ne__(self, other):
        return 1 - (self == other)

    def __lt__(self, other):
        return 1 - (self >= other)

    def __le__(self, other):
        return 1 - (self > other)

    __hash__ = object.__hash__

    def log(self):
        return self._unary(self.device.ewise_log)

    def exp(self):
        return self._unary(self.device.ewise_exp)

    def tanh(self):
        return self._unary(self.device.ewise_tanh)

    def sqrt(self):
        return self._unary(self.device.ewise_sqrt)

    def abs(self):
        return self._unary(self.device.ewise_abs)

    def sign(self):
        return self._unary(self.device.ewise_sign)

    # ------------------------------------------------------------ matmul

    def __matmul__(self, other):
        """Matrix product; leading (batch) dimensions broadcast as in numpy."""
        self._same_device(other)
        if self.ndim < 2 or other.ndim < 2:
            raise ValueError(f"matmul needs arrays of at least 2 dimensions, got "
                             f"{self.shape} and {other.shape}")
        m, n = self.shape[-2:]
        n2, p = other.shape[-2:]
        if n != n2:
            raise ValueError(f"matmul inner dimensions differ: {self.shape} @ {other.shape}")
        batch_shape = tuple(np.broadcast_shapes(self.shape[:-2], other.shape[:-2]))
        a = self.broadcast_to(batch_shape + (m, n)).compact()
        b = other.broadcast_to(batch_shape + (n, p)).compact()
        out = NDArray.make(batch_shape + (m, p), device=self.device)
        self.device.matmul(a._handle, b._handle, out._handle, prod(batch_shape), m, n, p)
        return out

    # ------------------------------------------------------------ reductions

    def _reduce(self, axis, keepdims, func):
        axes = _normalize_axes(axis, self.ndim)
        if any(self._shape[a] == 0 for a in axes) and func is self.device.reduce_max:
            raise ValueError("max of an empty axis")
        # A compact array reduces its trailing reduced axes in place first: no
        # permuted copy of the whole array, only of what is left (a conv bias
        # gradient sums (N, C, H, W) over H, W, then over N).
        tail = 0
        while tail < len(axes) and self.ndim - 1 - tail in axes:
            tail += 1
        if 0 < tail < len(axes) and prod(self._shape[self.ndim - tail:]) > 1 and self.is_compact():
            inner = self._reduce(tuple(range(self.ndim - tail, self.ndim)), True, func)
            return inner._reduce(axes, keepdims, func)
        keep = tuple(a for a in range(self.ndim) if a not in axes)
        view = self.permute(keep + axes).compact()
        out_shape = tuple(self._shape[a] for a in keep)
        reduce_size = prod(self._shape[a] for a in axes)
        out = NDArray.make(out_shape, device=self.device)
        if reduce_size == 0:
            out.fill(0.0)
        else:
            func(view._handle, out._handle, reduce_size)
        if keepdims:
            out = out.reshape(tuple(1 if a in axes else n for a, n in enumerate(self._shape)))
        return out

    def sum(self, axis=None, keepdims=False):
        return self._reduce(axis, keepdims, self.device.reduce_sum)

    def max(self, axis=None, keepdims=False):
        return self._reduce(axis, keepdims, self.device.reduce_max)


def array(a, device=None):
    return NDArray(a, device=device)


def empty(shape, device=None):
    return NDArray.make(shape, device=device)


def full(shape, fill_value, device=None):
    return (device or default_device()).full(shape, fill_value)

