"""logsumexp and log_softmax against torch, including ties for the max and huge inputs."""

import numpy as np
import pytest
import torch

import needle as ndl
from torch_compare import check_op


def _dims(axes, ndim):
    return tuple(range(ndim)) if axes is None else axes


def _inputs(rng, kind, shape):
    if kind == "normal":
        return rng.standard_normal(shape)
    if kind == "ties":  # entries share the max: only the softmax form of the gradient is exact
        return rng.integers(0, 2, shape).astype(np.float64)
    return rng.standard_normal(shape) * 10.0 + 1000.0  # "huge": exp overflows without the max shift


@pytest.mark.parametrize("kind", ["normal", "ties", "huge"])
@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("axes", [None, 0, -1, (0, 2)], ids=str)
def test_logsumexp(device, rng, axes, keepdims, kind):
    check_op(lambda a: ndl.logsumexp(a, axes, keepdims),
             lambda a: torch.logsumexp(a, dim=_dims(axes, a.ndim), keepdim=keepdims),
             [_inputs(rng, kind, (3, 4, 5))], device)


@pytest.mark.parametrize("kind", ["normal", "ties", "huge"])
@pytest.mark.parametrize("axis", [-1, 0, 1])
def test_log_softmax(device, rng, axis, kind):
    check_op(lambda a: ndl.log_softmax(a, axis), lambda a: torch.log_softmax(a, dim=axis),
             [_inputs(rng, kind, (3, 7))], device)


@pytest.mark.filterwarnings("ignore:divide by zero")
def test_logsumexp_of_all_minus_infinity(device):
    x = ndl.Tensor(np.array([[-np.inf, -np.inf], [0.0, -np.inf]]), device=device)
    np.testing.assert_array_equal(ndl.logsumexp(x, 1).numpy(), [-np.inf, 0.0])
