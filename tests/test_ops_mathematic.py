"""needle.ops.mathematic against torch: forward and every input gradient, on every device."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import needle as ndl
from torch_compare import check_op, other_device

SHAPES = [(5,), (3, 7), (2, 3, 4)]


def normal(rng, shape):
    return rng.standard_normal(shape)


def positive(rng, shape):
    return rng.uniform(0.5, 2.0, shape)


def away_from_zero(rng, shape):
    return rng.choice([-1.0, 1.0], shape) * rng.uniform(0.5, 2.0, shape)


def integers(rng, shape):
    """Small integers: zeros and ties on purpose (kinks of relu, abs, maximum, max)."""
    return rng.integers(-2, 3, shape).astype(np.float64)


def wide(rng, shape):
    """Magnitudes up to 100, where a naive sigmoid overflows exp."""
    return rng.standard_normal(shape) * 40.0


UNARY = {
    "negate": (ndl.negate, torch.neg, normal),
    "exp": (ndl.exp, torch.exp, normal),
    "log": (ndl.log, torch.log, positive),
    "sqrt": (ndl.sqrt, torch.sqrt, positive),
    "abs": (ndl.abs, torch.abs, integers),
    "tanh": (ndl.tanh, torch.tanh, normal),
    "sigmoid": (ndl.sigmoid, torch.sigmoid, normal),
    "sigmoid_wide": (ndl.sigmoid, torch.sigmoid, wide),
    "relu": (ndl.relu, torch.relu, integers),
    "add_scalar": (lambda a: ndl.add_scalar(a, 1.5), lambda a: a + 1.5, normal),
    "mul_scalar": (lambda a: ndl.mul_scalar(a, -2.5), lambda a: a * -2.5, normal),
    "divide_scalar": (lambda a: ndl.divide_scalar(a, 3.0), lambda a: a / 3.0, normal),
    "rdivide_scalar": (lambda a: ndl.rdivide_scalar(a, 2.0), lambda a: 2.0 / a, away_from_zero),
    "power_scalar_2": (lambda a: a ** 2, lambda a: a ** 2, normal),
    "power_scalar_half": (lambda a: a ** 0.5, lambda a: a ** 0.5, positive),
    "power_scalar_neg": (lambda a: a ** -1.5, lambda a: a ** -1.5, positive),
    "power_scalar_0": (lambda a: a ** 0, lambda a: a ** 0, integers),
    "rsub": (lambda a: 3.0 - a, lambda a: 3.0 - a, normal),
    "rtruediv": (lambda a: 1.0 / a, lambda a: 1.0 / a, away_from_zero),
}

BINARY = {
    "add": (ndl.add, torch.add, normal, normal),
    "sub": (lambda a, b: a - b, torch.sub, normal, normal),
    "multiply": (ndl.multiply, torch.mul, normal, normal),
    "divide": (ndl.divide, torch.div, normal, away_from_zero),
    "power": (ndl.power, torch.pow, positive, normal),
    "maximum_ties": (ndl.maximum, torch.maximum, integers, integers),
    "maximum": (ndl.maximum, torch.maximum, normal, normal),
}


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("name", UNARY)
def test_unary(device, rng, name, shape):
    ndl_fn, torch_fn, gen = UNARY[name]
    check_op(ndl_fn, torch_fn, [gen(rng, shape)], device)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("name", BINARY)
def test_binary(device, rng, name, shape):
    ndl_fn, torch_fn, gen_a, gen_b = BINARY[name]
    check_op(ndl_fn, torch_fn, [gen_a(rng, shape), gen_b(rng, shape)], device)


def test_power_at_zero_base_is_finite(device):
    # torch: d(a**b)/db = 0 where a == 0, d/da = 0 where b == 0.
    check_op(ndl.power, torch.pow, [np.array([0.0, 0.0, 2.0, 3.0]), np.array([2.0, 0.0, 0.0, 1.5])],
             device)


def test_maximum_ties_split_the_gradient(device):
    a = ndl.Tensor([1.0, 2.0, 3.0], device=device, requires_grad=True)
    b = ndl.Tensor([1.0, 1.0, 5.0], device=device, requires_grad=True)
    ndl.maximum(a, b).backward(ndl.Tensor([2.0, 2.0, 2.0], device=device))
    np.testing.assert_array_equal(a.grad.numpy(), [1.0, 2.0, 0.0])
    np.testing.assert_array_equal(b.grad.numpy(), [1.0, 0.0, 2.0])


def test_relu_and_abs_gradient_zero_at_zero(device):
    x = ndl.Tensor([-1.0, 0.0, 2.0], device=device, requires_grad=True)
    (ndl.relu(x) + ndl.abs(x)).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [-1.0, 0.0, 2.0])


def test_sigmoid_saturates_without_overflow(device):
    x = ndl.Tensor([-200.0, -90.0, 0.0, 90.0, 200.0], device=device)
    np.testing.assert_allclose(ndl.sigmoid(x).numpy(), [0.0, 0.0, 0.5, 1.0, 1.0], atol=1e-30)


MATMUL_SHAPES = [((3, 4), (4, 5)), ((7, 9), (9, 1)), ((2, 3, 4), (4, 5)), ((3, 4), (2, 4, 5)),
                 ((2, 1, 3, 4), (3, 4, 2)), ((2, 3, 5, 4), (2, 3, 4, 3))]


@pytest.mark.parametrize("shapes", MATMUL_SHAPES, ids=str)
def test_matmul(device, rng, shapes):
    check_op(ndl.matmul, torch.matmul, [normal(rng, s) for s in shapes], device)


def test_matmul_operator(device, rng):
    check_op(lambda a, b: a @ b, lambda a, b: a @ b, [normal(rng, (2, 3)), normal(rng, (3, 2))],
             device)


RESHAPES = [((2, 3, 4), (6, 4)), ((2, 3, 4), (4, -1)), ((5,), (1, 5, 1)), ((3, 1), (3,))]


@pytest.mark.parametrize("shapes", RESHAPES, ids=str)
def test_reshape(device, rng, shapes):
    shape, new = shapes
    check_op(lambda a: ndl.reshape(a, new), lambda a: a.reshape(new), [normal(rng, shape)], device)


@pytest.mark.parametrize("axes", [None, (0, 1), (0, 2), (-1, 1)], ids=str)
def test_transpose(device, rng, axes):
    ref = (lambda a: a.transpose(-2, -1)) if axes is None else (lambda a: a.transpose(*axes))
    check_op(lambda a: ndl.transpose(a, axes), ref, [normal(rng, (2, 3, 4))], device)


@pytest.mark.parametrize("axes", [(2, 0, 1), (1, 2, 0), (0, 2, 1), (-1, 0, 1)], ids=str)
def test_permute(device, rng, axes):
    check_op(lambda a: ndl.permute(a, axes), lambda a: a.permute(*axes), [normal(rng, (2, 3, 4))],
             device)


BROADCASTS = [((3, 1), (3, 4)), ((4,), (2, 3, 4)), ((1, 3, 1), (2, 3, 5)), ((1,), (3, 2)),
              ((2, 3), (2, 3))]


@pytest.mark.parametrize("shapes", BROADCASTS, ids=str)
def test_broadcast_to(device, rng, shapes):
    shape, new = shapes
    check_op(lambda a: ndl.broadcast_to(a, new), lambda a: a.broadcast_to(new),
             [normal(rng, shape)], device)


REDUCE_AXES = [None, 0, 1, -1, (0, 2), (1, 2), (0, 1, 2), ()]


def _torch_dims(axes, ndim):
    if axes is None:
        return tuple(range(ndim))
    return axes


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("axes", REDUCE_AXES, ids=str)
def test_summation(device, rng, axes, keepdims):
    def ref(a):
        return a.sum(dim=_torch_dims(axes, a.ndim), keepdim=keepdims) if axes != () else a.clone()
    check_op(lambda a: ndl.summation(a, axes, keepdims), ref, [normal(rng, (2, 3, 5))], device)


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("axes", [None, 1, (0, 2), -1], ids=str)
def test_mean(device, rng, axes, keepdims):
    check_op(lambda a: ndl.mean(a, axes, keepdims),
             lambda a: a.mean(dim=_torch_dims(axes, a.ndim), keepdim=keepdims),
             [normal(rng, (2, 3, 5))], device)


@pytest.mark.parametrize("gen", [normal, integers], ids=["distinct", "ties"])
@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("axes", [None, 0, -1, (0, 2)], ids=str)
def test_max(device, rng, axes, keepdims, gen):
    # torch.amax splits the gradient evenly among tied maxima, as needle does.
    check_op(lambda a: ndl.max(a, axes, keepdims),
             lambda a: torch.amax(a, dim=_torch_dims(axes, a.ndim), keepdim=keepdims),
             [gen(rng, (3, 4, 5))], device)


def test_tensor_methods(device, rng):
    def ndl_fn(a):
        return (a.sum(1) + a.mean(1) + a.max(1) + a.reshape((4, 3)).transpose().sum(1)
                + a.permute((1, 0)).exp().log().relu().sum(0) + (-a).sum(1))

    def torch_fn(a):
        return (a.sum(1) + a.mean(1) + a.amax(1) + a.reshape(4, 3).T.sum(1)
                + a.permute(1, 0).exp().log().relu().sum(0) + (-a).sum(1))

    check_op(ndl_fn, torch_fn, [normal(rng, (3, 4))], device)


GETITEMS = [
    (1,),
    (-1,),
    (slice(None, None, 2),),
    (slice(1, None, 2), -2),
    (slice(-3, -1), 0, slice(None, None, 3)),
    (slice(None), slice(4, 1), slice(None)),
    (2, slice(None, None, 4), -1),
    (slice(None, None, 5), slice(-100, 100)),
]


@pytest.mark.parametrize("idxs", GETITEMS, ids=str)
def test_get_item(device, rng, idxs):
    check_op(lambda a: a[idxs], lambda a: a[idxs], [normal(rng, (4, 5, 7))], device)


def test_get_item_single_int_and_slice(device, rng):
    check_op(lambda a: ndl.get_item(a, 2), lambda a: a[2], [normal(rng, (3, 4))], device)
    check_op(lambda a: a[1:3], lambda a: a[1:3], [normal(rng, (3, 4))], device)


def test_get_item_out_of_range(device):
    a = ndl.Tensor(np.zeros((3, 4)), device=device)
    with pytest.raises(IndexError, match="out of range"):
        a[3]
    with pytest.raises(IndexError, match="too many indices"):
        a[0, 0, 0]


def _torch_pad(axes):
    """needle's ((lo, hi) per axis) as F.pad's flat (last axis first) list."""
    return [p for pair in reversed(axes) for p in pair]


@pytest.mark.parametrize("axes", [((0, 0), (1, 2), (2, 0)), ((1, 1), (0, 0), (0, 3)),
                                  ((0, 0), (0, 0), (0, 0))], ids=str)
def test_pad(device, rng, axes):
    check_op(lambda a: ndl.pad(a, axes), lambda a: F.pad(a, _torch_pad(axes)),
             [normal(rng, (2, 3, 5))], device)


@pytest.mark.parametrize("axes", [(0,), (1, 2), (0, 1, 2), (-1,)], ids=str)
def test_flip(device, rng, axes):
    check_op(lambda a: ndl.flip(a, axes), lambda a: torch.flip(a, axes), [normal(rng, (2, 3, 5))],
             device)


def _dilation_slices(ndim, axes, dilation):
    axes = [a % ndim for a in axes]
    return tuple(slice(None, None, dilation + 1) if i in axes else slice(None) for i in range(ndim))


def _torch_dilate(a, axes, dilation):
    shape = [n * (dilation + 1) if i in [x % a.ndim for x in axes] else n
             for i, n in enumerate(a.shape)]
    out = a.new_zeros(shape)
    out[_dilation_slices(a.ndim, axes, dilation)] = a
    return out


@pytest.mark.parametrize("axes,dilation", [((0,), 1), ((1, 2), 2), ((-1,), 1), ((0, 1, 2), 0)],
                         ids=str)
def test_dilate_undilate(device, rng, axes, dilation):
    check_op(lambda a: ndl.dilate(a, axes, dilation), lambda a: _torch_dilate(a, axes, dilation),
             [normal(rng, (2, 3, 5))], device)
    check_op(lambda a: ndl.undilate(a, axes, dilation),
             lambda a: a[_dilation_slices(a.ndim, axes, dilation)],
             [normal(rng, (4, 5, 7))], device)


def test_undilate_inverts_dilate(device, rng):
    x = ndl.Tensor(normal(rng, (3, 4)), device=device)
    np.testing.assert_array_equal(ndl.undilate(ndl.dilate(x, (0, 1), 2), (0, 1), 2).numpy(),
                                  x.numpy())


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize("fn", [ndl.add, ndl.multiply, ndl.divide, ndl.power, ndl.maximum],
                         ids=lambda f: f.__name__)
def test_shape_mismatch_names_both_shapes(device, fn):
    a = ndl.Tensor(np.ones((2, 3)), device=device)
    b = ndl.Tensor(np.ones((3, 2)), device=device)
    with pytest.raises(ValueError, match=r"\(2, 3\) vs \(3, 2\)"):
        fn(a, b)


@pytest.mark.parametrize("fn", [ndl.add, ndl.maximum, ndl.matmul], ids=lambda f: f.__name__)
def test_device_mismatch_names_both_devices(fn):
    a = ndl.Tensor(np.ones((2, 2)), device=ndl.cpu_numpy())
    b = ndl.Tensor(np.ones((2, 2)), device=other_device())
    with pytest.raises(ValueError, match=r"cpu_numpy\(\).*other_numpy\(\)"):
        fn(a, b)


def test_shape_op_errors(device):
    a = ndl.Tensor(np.ones((2, 3)), device=device)
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(4,\)"):
        ndl.reshape(a, (4,))
    with pytest.raises(ValueError, match="broadcast"):
        ndl.broadcast_to(a, (3, 3))
    with pytest.raises(ValueError, match="inner dimensions"):
        ndl.matmul(a, a)
    with pytest.raises(ValueError, match="out of range"):
        ndl.summation(a, 2)
    with pytest.raises(ValueError, match="permutation"):
        ndl.permute(a, (0, 0))
