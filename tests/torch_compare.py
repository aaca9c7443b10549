"""Shared test helpers: compare a needle op with the same op in torch.

``check_op`` runs both on the same float32 inputs, compares the outputs, then
back-propagates the same random upstream gradient (never all ones) through
both and compares the gradient of every input.  ``counting_device`` wraps the
numpy backend so a test can assert which kernels an op calls.
"""

import collections

import numpy as np
import torch

import needle as ndl
from needle.backend_ndarray import ndarray_backend_numpy
from needle.backend_ndarray.ndarray import BackendDevice


def assert_close(got, want, rtol, what):
    """|got - want| <= rtol * (|want| + max|want|): relative, but not blind to cancellation."""
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, f"{what}: needle shape {got.shape}, torch shape {want.shape}"
    scale = float(np.abs(want).max()) if want.size else 0.0
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * max(scale, 1e-3), err_msg=what)


def _as_tuple(out):
    if isinstance(out, ndl.TensorTuple):
        return out.tuple()
    return tuple(out) if isinstance(out, (tuple, list)) else (out,)


def check_op(ndl_fn, torch_fn, inputs, device, rtol=1e-5, grad_rtol=None, seed=0):
    """Assert ndl_fn(*tensors) matches torch_fn(*torch_tensors) forward and backward.

    inputs: numpy arrays (made float32).  The outputs may be one tensor or a
    tuple (TensorTuple in needle).  Returns the needle outputs as numpy arrays.
    """
    rng = np.random.default_rng(seed)
    arrays = [np.asarray(x, dtype=np.float32) for x in inputs]
    xs = [ndl.Tensor(a, device=device, requires_grad=True) for a in arrays]
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    outs, touts = _as_tuple(ndl_fn(*xs)), _as_tuple(torch_fn(*ts))
    assert len(outs) == len(touts), f"needle gives {len(outs)} outputs, torch {len(touts)}"
    for k, (o, t) in enumerate(zip(outs, touts)):
        assert o.device == device, f"output {k} is on {o.device}, expected {device}"
        assert_close(o.numpy(), t.detach().numpy(), rtol, f"output {k}")

    upstream = [rng.standard_normal(t.shape).astype(np.float32) for t in touts]
    torch.autograd.backward(touts, [torch.tensor(g) for g in upstream])
    if len(outs) == 1:
        outs[0].backward(ndl.Tensor(upstream[0], device=device))
    else:
        total = outs[0].sum() * 0.0
        for o, g in zip(outs, upstream):
            total = total + (o * ndl.Tensor(g, device=device)).sum()
        total.backward()
    for k, (x, t) in enumerate(zip(xs, ts)):
        want = np.zeros(t.shape) if t.grad is None else t.grad.numpy()
        got = np.zeros(x.shape) if x.grad is None else x.grad.numpy()
        assert_close(got, want, grad_rtol or rtol, f"gradient of input {k}")
    return [o.numpy() for o in outs]


class _CountingModule:
    """A backend module proxy that counts calls to each contract function."""

    def __init__(self, mod):
        self._mod = mod
        self.calls = collections.Counter()

    def __getattr__(self, name):
        attr = getattr(self._mod, name)
        if name == "Array" or not callable(attr):
            return attr

        def counted(*args):
            self.calls[name] += 1
            return attr(*args)

        return counted


def counting_device():
    """A device on the numpy backend whose .mod.calls counts every kernel call."""
    return BackendDevice("counting_numpy", _CountingModule(ndarray_backend_numpy))


def other_device():
    """A second device (numpy backend under another name), to provoke device mismatches."""
    return BackendDevice("other_numpy", ndarray_backend_numpy)
