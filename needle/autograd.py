"""Reverse-mode automatic differentiation: Tensor, Op, and backward.

A Tensor is a value in a graph: its data (an NDArray), the Op that made it
and that Op's inputs.  ``backward`` walks the graph once in reverse
topological order, asks each Op for the vector-Jacobian product of its
inputs, sums the contributions that meet at a node, and stores the result in
``.grad`` of the leaves that require it.  Gradient arithmetic runs under
``no_grad`` (unless ``create_graph=True``), so a training step leaves no graph
behind once its loss goes out of scope.
"""

import contextlib

import numpy as np

from .backend_ndarray import NDArray, default_device

_grad_enabled = [True]
# Number of Tensor objects alive; tests use it to prove graphs are freed.
TENSOR_COUNTER = 0


def is_grad_enabled():
    return _grad_enabled[-1]


@contextlib.contextmanager
def no_grad():
    """Inside this block, ops record no graph and results require no grad."""
    _grad_enabled.append(False)
    try:
        yield
    finally:
        _grad_enabled.pop()


@contextlib.contextmanager
def enable_grad():
    _grad_enabled.append(True)
    try:
        yield
    finally:
        _grad_enabled.pop()


class Op:
    """An operation: ``compute`` on NDArrays, ``gradient`` on Tensors."""

    def __call__(self, *args):
        raise NotImplementedError

    def compute(self, *args):
        """Forward on NDArrays; returns an NDArray (or a tuple of them)."""
        raise NotImplementedError

    def gradient(self, out_grad, node):
        """The adjoint of each input given the adjoint of the output.

        Returns a Tensor for a single input, a tuple (one entry per input,
        None for inputs that need no gradient) otherwise.
        """
        raise NotImplementedError

    def gradient_as_tuple(self, out_grad, node):
        grads = self.gradient(out_grad, node)
        if isinstance(grads, tuple):
            return grads
        if isinstance(grads, list):
            return tuple(grads)
        return (grads,)


class TensorOp(Op):
    def __call__(self, *args):
        return Tensor.make_from_op(self, args)


class TensorTupleOp(Op):
    def __call__(self, *args):
        return TensorTuple.make_from_op(self, args)


class Value:
    """A node of the graph."""

    op = None
    inputs = ()
    cached_data = None
    requires_grad = False
    # Set by _init: a Tensor whose constructor raised before _init must not
    # decrement TENSOR_COUNTER when it is collected.
    _counted = False

    def _init(self, op, inputs, *, cached_data, requires_grad=None):
        global TENSOR_COUNTER
        TENSOR_COUNTER += 1
        self._counted = True
        if requires_grad is None:
            requires_grad = any(x.requires_grad for x in inputs)
        self.op = op
        self.inputs = tuple(inputs)
        self.cached_data = cached_data
        self.requires_grad = requires_grad

    def __del__(self):
        global TENSOR_COUNTER
        if self._counted:
            TENSOR_COUNTER -= 1

    def is_leaf(self):
        return self.op is None

    def realize_cached_data(self):
        return self.cached_data

    @classmethod
    def make_from_op(cls, op, inputs):
        for x in inputs:
            if not isinstance(x, Value):
                raise TypeError(f"{type(op).__name__} takes Tensors, got {type(x).__name__}")
        data = op.compute(*[x.cached_data for x in inputs])
        value = cls.__new__(cls)
        if is_grad_enabled() and any(x.requires_grad for x in inputs):
            value._init(op, inputs, cached_data=data, requires_grad=True)
        else:
            value._init(None, (), cached_data=data, requires_grad=False)
        return value


class TensorTuple(Value):
    """The result of an op that returns several arrays (split)."""

    def __len__(self):
        return len(self.cached_data)

    def __getitem__(self, index):
        from .ops import tuple_get_item
        return tuple_get_item(self, index)

    def tuple(self):
        return tuple(self[i] for i in range(len(self)))

    def __repr__(self):
        return f"needle.TensorTuple({self.tuple()})"

    def detach(self):
        return TensorTuple.make_const(self.cached_data)

    @staticmethod
    def make_const(data):
        t = TensorTuple.__new__(TensorTuple)
        t._init(None, (), cached_data=data, requires_grad=False)
        return t


class Tensor(Value):
    grad = None

    def __init__(self, array, *, device=None, dtype=None, requires_grad=False):
        if dtype not in (None, "float32", np.float32):
            raise TypeError(f"needle tensors are float32; got dtype={dtype!r}")
        if isinstance(array, Tensor):
            data = array.cached_data if device in (None, array.device) else array.cached_data.to(device)
        elif isinstance(array, NDArray):
            data = array if device in (None, array.device) else array.to(device)
        else:
            data = NDArray(array, device=device if device is not None else default_device())
        self._init(None, (), cached_data=data, requires_grad=requires_grad)

    @staticmethod
    def make_const(data, requires_grad=False):
        t = Tensor.__new__(Tensor)
        t._init(None, (), cached_data=data.cached_data if isinstance(data, Tensor) else data,
                requires_grad=requires_grad)
        return t

    # ------------------------------------------------------------ data

    @property
    def data(self):
        return self.detach()

    @data.setter
    def data(self, value):
        if not isinstance(value, Tensor):
            raise TypeError(f"Tensor.data must be set to a Tensor, got {type(value).__name__}")
        if value.shape != self.shape:
            raise ValueError(f"Tensor.data: shape {value.shape} does not match {self.shape}")
        if value.device != self.device:
            raise ValueError(f"Tensor.data: device {value.device} does not match {self.device}")
        self.cached_data = value.cached_data

    def detach(self):
        """A new leaf sharing this tensor's data, outside any graph."""
        return Tensor.make_const(self.cached_data)

    def requires_grad_(self, flag=True):
        if not self.is_leaf():
            raise RuntimeError("requires_grad can only be changed on leaf tensors")
        self.requires_grad = flag
        return self

    @property
    def shape(self):
        return self.cached_data.shape

    @property
    def ndim(self):
        return len(self.shape)

    @property
    def size(self):
        return self.cached_data.size

    @property
    def dtype(self):
        return "float32"

    @property
    def device(self):
        return self.cached_data.device

    def numpy(self):
        return self.cached_data.numpy()

    def item(self):
        if self.size != 1:
            raise ValueError(f"item() needs a tensor of one element, got shape {self.shape}")
        return float(self.numpy().reshape(-1)[0])

    def to(self, device):
        return Tensor(self.cached_data.to(device), requires_grad=self.requires_grad)

    def __repr__(self):
        return f"needle.Tensor({self.numpy()}, device={self.device})"

    def __str__(self):
        return str(self.numpy())

    def __len__(self):
        return len(self.cached_data)

    # ------------------------------------------------------------ autograd

    def backward(self, out_grad=None, create_graph=False):
        """Accumulate d(self)/d(leaf) into the .grad of every leaf that requires it."""
        if not self.requires_grad:
            raise RuntimeError("backward() on a tensor that does not require grad "
                               "(no input of its graph has requires_grad=True)")
        if out_grad is None:
            out_grad = Tensor(self.device.ones(self.shape))
        elif out_grad.shape != self.shape:
            raise ValueError(f"backward: out_grad has shape {out_grad.shape}, "
                             f"the tensor has {self.shape}")
        ctx = enable_grad() if create_graph else no_grad()
        with ctx:
            compute_gradients(self, out_grad)

    # ------------------------------------------------------------ operators

    def __add__(self, other):
        from . import ops
        return ops.add(self, other) if isinstance(other, Tensor) else ops.add_scalar(self, other)

    __radd__ = __add__

    def __sub__(self, other):
        from . import ops
        return (ops.add(self, ops.negate(other)) if isinstance(other, Tensor)
                else ops.add_scalar(self, -other))

    def __rsub__(self, other):
        from . import ops
        return ops.add_scalar(ops.negate(self), other)

    def __mul__(self, other):
        from . import ops
        return ops.multiply(self, other) if isinstance(other, Tensor) else ops.mul_scalar(self, other)

    __rmul__ = __mul__

    def __truediv__(self, other):
        from . import ops
        return ops.divide(self, other) if isinstance(other, Tensor) else ops.divide_scalar(self, other)

    def __rtruediv__(self, other):
        from . import ops
        return ops.rdivide_scalar(self, other)

    def __pow__(self, other):
        from . import ops
        return ops.power(self, other) if isinstance(other, Tensor) else ops.power_scalar(self, other)

    def __neg__(self):
        from . import ops
        return ops.negate(self)

    def __matmul__(self, other):
        from . import ops
        return ops.matmul(self, other)

    def __getitem__(self, idxs):
        from . import ops
        return ops.get_item(self, idxs)

    def matmul(self, other):
        return self @ other

    def sum(self, axes=None, keepdims=False):
        from . import ops
        return ops.summation(self, axes, keepdims=keepdims)

    def mean(self, axes=None, keepdims=False):
        from . import ops
        return ops.mean(self, axes, keepdims=keepdims)

    def max(self, axes=None, keepdims=False):
        from . import ops
        return ops.max(self, axes, keepdims=keepdims)

    def broadcast_to(self, shape):
        from . import ops
        return ops.broadcast_to(self, shape)

    def reshape(self, shape):
        from . import ops
        return ops.reshape(self, shape)

    def transpose(self, axes=None):
        from . import ops
        return ops.transpose(self, axes)

    def permute(self, axes):
        from . import ops
        return ops.permute(self, axes)

    def exp(self):
        from . import ops
        return ops.exp(self)

    def log(self):
        from . import ops
        return ops.log(self)

    def relu(self):
        from . import ops
        return ops.relu(self)

    @property
    def T(self):
        return self.transpose()

    __hash__ = object.__hash__


def compute_gradients(output, out_grad):
    """Propagate out_grad from output to every node; store .grad on leaves."""
    order = find_topo_sort([output])
    grads = {id(output): out_grad}
    for node in reversed(order):
        grad = grads.pop(id(node), None)
        if grad is None:
            continue
        if node.is_leaf():
            if node.requires_grad:
                node.grad = grad if node.grad is None else node.grad + grad
            continue
        for inp, g in zip(node.inputs, node.op.gradient_as_tuple(grad, node)):
            if g is None or not inp.requires_grad:
                continue
            if isinstance(inp, Tensor) and g.shape != inp.shape:
                raise RuntimeError(f"{type(node.op).__name__}.gradient returned shape {g.shape} "
                                   f"for an input of shape {inp.shape}")
            key = id(inp)
            grads[key] = g if key not in grads else _sum_adjoints(grads[key], g)


def _sum_adjoints(a, b):
    if isinstance(a, TensorTuple):
        from .ops import make_tuple
        return make_tuple(*[x + y for x, y in zip(a.tuple(), b.tuple())])
    return a + b


def find_topo_sort(outputs):
    """Nodes reachable from outputs, every node after its inputs (iterative DFS)."""
    order, visited = [], set()
    for root in outputs:
        stack = [(root, False)]
        while stack:
            node, expanded = stack.pop()
            if expanded:
                order.append(node)
                continue
            if id(node) in visited:
                continue
            visited.add(id(node))
            stack.append((node, True))
            stack.extend((inp, False) for inp in reversed(node.inputs) if id(inp) not in visited)
    return order
