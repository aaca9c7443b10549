"""needle.ops.conv against torch's conv2d: forward and the input, weight and bias gradients.

The shapes cover odd and even sizes with strides 1, 2 and 3, so every residue
(H + 2P - K) mod stride is hit: the backward must be exact for all of them.
"""

import numpy as np
import pytest
import torch.nn.functional as F

import needle as ndl
from torch_compare import check_op, counting_device, other_device

# (n, c, h, w, o, kh, kw, stride, padding)
CASES = [
    (2, 3, 5, 5, 4, 3, 3, 1, 1),
    (1, 2, 8, 8, 3, 3, 3, 2, 1),
    (2, 3, 7, 9, 2, 3, 3, 2, 0),
    (1, 4, 6, 7, 5, 3, 3, 2, 2),
    (2, 2, 9, 8, 3, 5, 5, 2, 1),
    (1, 3, 10, 11, 2, 3, 3, 3, 1),
    (2, 1, 7, 7, 3, 1, 1, 2, 0),
    (1, 2, 6, 5, 2, 3, 2, 1, 0),
    (1, 3, 4, 4, 2, 4, 4, 3, 2),
]


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("case", CASES, ids=str)
def test_conv(device, rng, case, bias):
    n, c, h, w, o, kh, kw, stride, padding = case
    inputs = [rng.standard_normal((n, c, h, w)), rng.standard_normal((o, c, kh, kw))]
    if bias:
        inputs.append(rng.standard_normal(o))
    check_op(lambda *t: ndl.conv(*t, stride=stride, padding=padding),
             lambda *t: F.conv2d(*t, stride=stride, padding=padding),
             inputs, device, rtol=1e-4)


def test_conv_calls_only_the_conv_kernels(rng):
    device = counting_device()
    x = ndl.Tensor(rng.standard_normal((1, 2, 5, 5)), device=device, requires_grad=True)
    w = ndl.Tensor(rng.standard_normal((3, 2, 3, 3)), device=device, requires_grad=True)
    b = ndl.Tensor(rng.standard_normal(3), device=device, requires_grad=True)
    ndl.conv(x, w, b, stride=2, padding=1).backward(
        ndl.Tensor(rng.standard_normal((1, 3, 3, 3)), device=device))
    calls = device.mod.calls
    assert calls["conv2d_forward"] == calls["conv2d_backward_input"] == 1
    assert calls["conv2d_backward_weight"] == 1
    assert calls["matmul"] == 0


@pytest.mark.parametrize("needs", ["x", "w", "x,w"])
def test_conv_backward_runs_only_the_kernels_some_input_needs(rng, needs):
    """The network's grey input and a frozen feature net need no gradient: their
    backward kernels (each as costly as the forward) are skipped."""
    device = counting_device()
    x = ndl.Tensor(rng.standard_normal((1, 2, 5, 5)), device=device, requires_grad="x" in needs)
    w = ndl.Tensor(rng.standard_normal((3, 2, 3, 3)), device=device, requires_grad="w" in needs)
    b = ndl.Tensor(rng.standard_normal(3), device=device, requires_grad="w" in needs)
    dy = rng.standard_normal((1, 3, 5, 5))
    ndl.conv(x, w, b, padding=1).backward(ndl.Tensor(dy, device=device))
    calls = device.mod.calls
    assert calls["conv2d_backward_input"] == ("x" in needs)
    assert calls["conv2d_backward_weight"] == ("w" in needs)
    assert (x.grad is not None) == ("x" in needs)
    if "w" in needs:
        np.testing.assert_allclose(b.grad.numpy(), dy.sum(axis=(0, 2, 3)), rtol=1e-5)


def test_second_derivative_of_conv_raises_clearly(device, rng):
    x = ndl.Tensor(rng.standard_normal((1, 1, 4, 4)), device=device, requires_grad=True)
    w = ndl.Tensor(rng.standard_normal((1, 1, 3, 3)), device=device, requires_grad=True)
    ndl.conv(x, w).sum().backward(create_graph=True)
    assert x.grad.requires_grad
    with pytest.raises(NotImplementedError, match="second derivative of conv"):
        x.grad.sum().backward()


def _conv_error(device, x_shape, w_shape, b_shape=None, **kw):
    x = ndl.Tensor(np.zeros(x_shape), device=device)
    w = ndl.Tensor(np.zeros(w_shape), device=device)
    b = None if b_shape is None else ndl.Tensor(np.zeros(b_shape), device=device)
    return ndl.conv(x, w, b, **kw)


def test_conv_errors(device):
    with pytest.raises(ValueError,
                       match=r"x has 3 channels but w expects 4 \(w shape \(2, 4, 3, 3\)\)"):
        _conv_error(device, (1, 3, 5, 5), (2, 4, 3, 3))
    with pytest.raises(ValueError, match=r"bias has shape \(3,\), expected \(2,\)"):
        _conv_error(device, (1, 3, 5, 5), (2, 3, 3, 3), (3,))
    with pytest.raises(ValueError, match="4-D"):
        _conv_error(device, (3, 5, 5), (2, 3, 3, 3))
    with pytest.raises(ValueError, match="does not fit"):
        _conv_error(device, (1, 3, 2, 2), (2, 3, 5, 5), padding=1)
    with pytest.raises(ValueError, match="stride must be an integer >= 1"):
        _conv_error(device, (1, 3, 5, 5), (2, 3, 3, 3), stride=0)
    with pytest.raises(ValueError, match="padding must be an integer >= 0"):
        _conv_error(device, (1, 3, 5, 5), (2, 3, 3, 3), padding=-1)


def test_conv_device_mismatch():
    x = ndl.Tensor(np.zeros((1, 1, 3, 3)), device=ndl.cpu_numpy())
    w = ndl.Tensor(np.zeros((1, 1, 3, 3)), device=other_device())
    with pytest.raises(ValueError, match=r"x on cpu_numpy\(\), w on other_numpy\(\)"):
        ndl.conv(x, w)
