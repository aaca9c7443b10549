"""Module and Parameter: the containers layers are built from.

A Module finds its parameters, buffers and sub-modules by walking its
attributes in definition order (through lists, tuples and dicts too), as the
Needle course does, so layers need no registration calls except for buffers
(state that is saved but not trained, such as BatchNorm's running stats).
Names follow PyTorch's dotted form ("blocks.0.conv.weight").
"""

import numpy as np

from ..autograd import Tensor
from ..backend_ndarray import NDArray


class Parameter(Tensor):
    """A Tensor that a Module trains: requires_grad unless told otherwise."""

    def __init__(self, array, *, device=None, dtype=None, requires_grad=True):
        super().__init__(array, device=device, dtype=dtype, requires_grad=requires_grad)


def _walk(value, prefix):
    """(name, value) for every Parameter, Module or buffer candidate inside value."""
    if isinstance(value, (Parameter, Module)):
        yield prefix, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(item, f"{prefix}.{key}")
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from _walk(item, f"{prefix}.{i}")


class Module:
    training = True
    _buffer_names = ()

    def __init__(self):
        self.training = True
        self._buffer_names = []

    def register_buffer(self, name, tensor):
        """Keep tensor as attribute `name`, saved in state_dict but not trained."""
        if not isinstance(tensor, Tensor):
            raise TypeError(f"buffer {name!r} must be a Tensor, got {type(tensor).__name__}")
        if "_buffer_names" not in vars(self):  # a subclass that skipped Module.__init__
            self._buffer_names = []
        if name not in self._buffer_names:
            self._buffer_names.append(name)
        setattr(self, name, tensor)

    # ------------------------------------------------------------ traversal

    def _members(self):
        for name, value in vars(self).items():
            yield from _walk(value, name)

    def named_children(self):
        return [(name, m) for name, m in self._members() if isinstance(m, Module)]

    def children(self):
        return [m for _, m in self.named_children()]

    def named_modules(self, prefix=""):
        """(dotted name, module) for self and every descendant, each module once."""
        seen, out = set(), []

        def visit(module, name):
            if id(module) in seen:
                return
            seen.add(id(module))
            out.append((name, module))
            for child_name, child in module.named_children():
                visit(child, f"{name}.{child_name}" if name else child_name)

        visit(self, prefix)
        return out

    def modules(self):
        return [m for _, m in self.named_modules()]

    def named_parameters(self):
        """(dotted name, Parameter) in definition order; a shared Parameter appears once."""
        seen, out = set(), []
        for prefix, module in self.named_modules():
            for name, value in module._members():
                if isinstance(value, Parameter) and id(value) not in seen:
                    seen.add(id(value))
                    out.append((f"{prefix}.{name}" if prefix else name, value))
        return out

    def parameters(self):
        return [p for _, p in self.named_parameters()]

    def named_buffers(self):
        return [(f"{prefix}.{name}" if prefix else name, getattr(module, name))
                for prefix, module in self.named_modules() for name in module._buffer_names]

    # ------------------------------------------------------------ modes and devices

    def train(self, mode=True):
        for m in self.modules():
            m.training = mode
        return self

    def eval(self):
        return self.train(False)

    def to(self, device):
        """Move every parameter and buffer to device, in place (objects keep their identity)."""
        for _, t in self.named_parameters() + self.named_buffers():
            t.cached_data = t.cached_data.to(device)
            t.grad = None
        return self

    # ------------------------------------------------------------ state

    def state_dict(self):
        """{dotted name: float32 numpy array} of parameters, then buffers."""
        return {name: t.numpy() for name, t in self.named_parameters() + self.named_buffers()}

    def load_state_dict(self, state_dict, strict=True):
        """Copy values (numpy arrays, NDArrays or Tensors) into parameters and buffers.

        Shapes must match.  With strict, the keys must match exactly as well;
        otherwise returns (missing keys, unexpected keys).
        """
        targets = dict(self.named_parameters() + self.named_buffers())
        missing = [k for k in targets if k not in state_dict]
        unexpected = [k for k in state_dict if k not in targets]
        if strict and (missing or unexpected):
            raise ValueError(f"load_state_dict of {type(self).__name__}: missing keys {missing}, "
                           f"unexpected keys {unexpected}")
        values = {k: _as_numpy(v, k) for k, v in state_dict.items() if k in targets}
        wrong = [f"{k}: expected {targets[k].shape}, got {v.shape}" for k, v in values.items()
                 if tuple(v.shape) != targets[k].shape]
        if wrong:
            raise ValueError(f"load_state_dict of {type(self).__name__}: shape mismatch for "
                             + "; ".join(wrong))
        for key, value in values.items():
            target = targets[key]
            target.cached_data = NDArray(value, device=target.device)
        return missing, unexpected

    # ------------------------------------------------------------ calling

    def forward(self, *args, **kwargs):
        raise NotImplementedError

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)


def _as_numpy(value, key):
    if isinstance(value, (Tensor, NDArray)):
        return value.numpy()
    if isinstance(value, np.ndarray):
        return value
    raise TypeError(f"state_dict[{key!r}] must be an array or Tensor, got {type(value).__name__}")
