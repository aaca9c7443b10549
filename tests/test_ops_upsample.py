"""needle.ops.upsample (nearest) against torch.nn.functional.interpolate."""

import numpy as np
import pytest
import torch.nn.functional as F

import needle as ndl
from torch_compare import check_op, counting_device


@pytest.mark.parametrize("shape,scale", [((2, 3, 4, 4), 2), ((1, 2, 3, 5), 2), ((2, 1, 3, 2), 3),
                                         ((1, 2, 3, 3), 1)], ids=str)
def test_upsample_nearest(device, rng, shape, scale):
    check_op(lambda x: ndl.upsample(x, scale), lambda x: F.interpolate(x, scale_factor=scale),
             [rng.standard_normal(shape)], device)


def test_upsample_calls_its_kernels_once(rng):
    device = counting_device()
    x = ndl.Tensor(rng.standard_normal((1, 2, 3, 3)), device=device, requires_grad=True)
    ndl.upsample(x).backward(ndl.Tensor(rng.standard_normal((1, 2, 6, 6)), device=device))
    assert device.mod.calls["upsample_nearest_forward"] == 1
    assert device.mod.calls["upsample_nearest_backward"] == 1


def test_upsample_errors(device):
    x = ndl.Tensor(np.zeros((1, 1, 2, 2)), device=device)
    with pytest.raises(ValueError, match="supported modes: nearest"):
        ndl.upsample(x, 2, mode="bicubic")
    with pytest.raises(ValueError, match="scale must be an integer >= 1"):
        ndl.upsample(x, 0)
    with pytest.raises(ValueError, match=r"4-D\), got shape \(2, 2\)"):
        ndl.upsample(ndl.Tensor(np.zeros((2, 2)), device=device))
