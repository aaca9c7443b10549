"""concat, stack and split (needle/ops/concat.py) against torch.cat, stack and unbind."""

import numpy as np
import pytest
import torch

import needle as ndl
from torch_compare import check_op, counting_device, other_device


@pytest.mark.parametrize("axis,sizes", [(1, (2, 5, 1)), (0, (1, 3)), (2, (3, 1, 2)), (-1, (4, 1)),
                                        (1, (3,))], ids=str)
def test_concat(device, rng, axis, sizes):
    shape = [2, 3, 4, 5]
    inputs = []
    for s in sizes:
        shape[axis] = s
        inputs.append(rng.standard_normal(shape))
    check_op(lambda *t: ndl.concat(t, axis), lambda *t: torch.cat(t, axis), inputs, device)


def test_concat_same_tensor_twice(device, rng):
    check_op(lambda a: ndl.concat([a, a * 2.0], 1), lambda a: torch.cat([a, a * 2.0], 1),
             [rng.standard_normal((2, 3, 2))], device)


def test_concat_one_kernel_call_each_way(rng):
    device = counting_device()
    xs = [ndl.Tensor(rng.standard_normal((2, c, 3, 3)), device=device, requires_grad=True)
          for c in (1, 4, 2)]
    ndl.concat(xs, 1).backward(ndl.Tensor(rng.standard_normal((2, 7, 3, 3)), device=device))
    assert device.mod.calls["concat_forward"] == 1
    assert device.mod.calls["concat_backward"] == 1


def test_concat_errors(device):
    a = ndl.Tensor(np.zeros((2, 3, 4, 4)), device=device)
    b = ndl.Tensor(np.zeros((2, 5, 3, 4)), device=device)
    with pytest.raises(ValueError, match=r"tensor 1 has shape \(2, 5, 3, 4\) but tensor 0 has "
                                         r"\(2, 3, 4, 4\); they may differ only along axis 1"):
        ndl.concat([a, b], 1)
    with pytest.raises(ValueError, match="at least one"):
        ndl.concat([], 1)
    with pytest.raises(ValueError, match="out of range"):
        ndl.concat([a, a], 4)
    c = ndl.Tensor(np.zeros((2, 3, 4, 4)), device=other_device())
    with pytest.raises(ValueError, match="different devices"):
        ndl.concat([a, c], 1)


@pytest.mark.parametrize("axis", [0, 1, 2, -1])
def test_stack(device, rng, axis):
    inputs = [rng.standard_normal((3, 4)) for _ in range(3)]
    check_op(lambda *t: ndl.stack(t, axis), lambda *t: torch.stack(t, axis), inputs, device)


def test_stack_shape_mismatch(device):
    a = ndl.Tensor(np.zeros((2, 3)), device=device)
    b = ndl.Tensor(np.zeros((2, 4)), device=device)
    with pytest.raises(ValueError, match=r"\(1, 2, 4\).*\(1, 2, 3\)"):
        ndl.stack([a, b], 0)


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_split(device, rng, axis):
    check_op(lambda a: ndl.split(a, axis), lambda a: torch.unbind(a, axis),
             [rng.standard_normal((3, 4, 2))], device)


def _pieces_reused(parts):
    return parts[2] * parts[0] + parts[2]


def test_split_pieces_reused_or_unused(device, rng):
    # Piece 1 never reaches the output (zero gradient); piece 2 reaches it twice.
    check_op(lambda a: _pieces_reused(ndl.split(a, 1)), lambda a: _pieces_reused(torch.unbind(a, 1)),
             [rng.standard_normal((3, 4))], device)


def test_stack_split_roundtrip(device, rng):
    x = ndl.Tensor(rng.standard_normal((3, 4, 5)), device=device)
    parts = ndl.split(x, 1)
    assert len(parts) == 4 and parts[0].shape == (3, 5)
    np.testing.assert_array_equal(ndl.stack(parts, 1).numpy(), x.numpy())
