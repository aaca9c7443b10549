"""needle.init: shapes, dtype, device, seeding, and the Xavier / Kaiming distributions."""

import math

import numpy as np
import pytest
import torch

import needle as ndl
from needle import init

SHAPE = (300, 400)  # large enough for the sample std to be within 1% of the true one


@pytest.mark.parametrize("make,value", [
    (lambda d: init.zeros(2, 3, device=d), 0.0),
    (lambda d: init.ones(2, 3, device=d), 1.0),
    (lambda d: init.constant(2, 3, c=-2.5, device=d), -2.5),
])
def test_constants(device, make, value):
    t = make(device)
    assert t.device == device and t.shape == (2, 3) and not t.requires_grad
    assert t.numpy().dtype == np.float32
    np.testing.assert_array_equal(t.numpy(), np.full((2, 3), value, np.float32))


def test_requires_grad_and_device(device):
    t = init.uniform(4, 5, device=device, requires_grad=True)
    assert t.requires_grad and t.is_leaf() and t.device == device
    assert t.numpy().dtype == np.float32


def test_uniform_and_normal_moments():
    gen = np.random.default_rng(0)
    u = init.uniform(*SHAPE, low=-2.0, high=4.0, device=ndl.cpu_numpy(), generator=gen).numpy()
    assert u.min() >= -2.0 and u.max() <= 4.0
    assert abs(u.mean() - 1.0) < 0.02 and abs(u.std() - 6 / math.sqrt(12)) < 0.02
    n = init.normal(*SHAPE, mean=3.0, std=0.5, device=ndl.cpu_numpy(), generator=gen).numpy()
    assert abs(n.mean() - 3.0) < 0.01 and abs(n.std() - 0.5) < 0.005
    assert init.rand is init.uniform and init.randn is init.normal


def test_seeding_by_generator_or_global_rng():
    dev = ndl.cpu_numpy()
    a = init.normal(3, 4, device=dev, generator=np.random.default_rng(7)).numpy()
    b = init.normal(3, 4, device=dev, generator=np.random.default_rng(7)).numpy()
    np.testing.assert_array_equal(a, b)
    np.random.seed(3)
    c = init.kaiming_uniform(3, 4, device=dev).numpy()
    np.random.seed(3)
    np.testing.assert_array_equal(c, init.kaiming_uniform(3, 4, device=dev).numpy())


def sample_std(fn, **kwargs):
    gen = np.random.default_rng(1)
    return fn(*SHAPE, device=ndl.cpu_numpy(), generator=gen, **kwargs).numpy().std()


def torch_std(fn, **kwargs):
    t = torch.empty(SHAPE[1], SHAPE[0])  # torch's (fan_out, fan_in) layout
    torch.manual_seed(1)
    return fn(t, **kwargs).std().item()


@pytest.mark.parametrize("ours,theirs,kwargs,torch_kwargs", [
    (init.xavier_uniform, torch.nn.init.xavier_uniform_, dict(gain=2.0), dict(gain=2.0)),
    (init.xavier_normal, torch.nn.init.xavier_normal_, dict(gain=0.5), dict(gain=0.5)),
    (init.kaiming_uniform, torch.nn.init.kaiming_uniform_, dict(), dict(nonlinearity="relu")),
    (init.kaiming_normal, torch.nn.init.kaiming_normal_, dict(mode="fan_out"),
     dict(mode="fan_out", nonlinearity="relu")),
    (init.kaiming_uniform, torch.nn.init.kaiming_uniform_,
     dict(nonlinearity="leaky_relu", a=math.sqrt(5)), dict(a=math.sqrt(5))),
    (init.kaiming_normal, torch.nn.init.kaiming_normal_, dict(nonlinearity="tanh"),
     dict(nonlinearity="tanh")),
])
def test_fan_based_schemes_match_torch_std(ours, theirs, kwargs, torch_kwargs):
    """(fan_in, fan_out) here is torch's weight (fan_out, fan_in); the stds must agree."""
    want = torch_std(theirs, **torch_kwargs)
    assert abs(sample_std(ours, **kwargs) - want) < 0.01 * want


def test_uniform_schemes_respect_their_bound():
    w = init.kaiming_uniform(50, 20, shape=(20, 50, 1, 1), device=ndl.cpu_numpy()).numpy()
    assert w.shape == (20, 50, 1, 1) and np.abs(w).max() <= math.sqrt(6 / 50)
    w = init.xavier_uniform(50, 20, device=ndl.cpu_numpy()).numpy()
    assert w.shape == (50, 20) and np.abs(w).max() <= math.sqrt(6 / 70)


@pytest.mark.parametrize("name,a", [("linear", None), ("sigmoid", None), ("tanh", None),
                                    ("relu", None), ("leaky_relu", None), ("leaky_relu", 0.2),
                                    ("selu", None)])
def test_gain_matches_torch(name, a):
    assert init.calculate_gain(name, a) == pytest.approx(torch.nn.init.calculate_gain(name, a))


def test_one_hot(device):
    t = init.one_hot(4, np.array([3, 0, 2]), device=device)
    np.testing.assert_array_equal(t.numpy(), np.eye(4, dtype=np.float32)[[3, 0, 2]])
    labels = ndl.Tensor([1.0, 2.0], device=device)
    np.testing.assert_array_equal(init.one_hot(3, labels, device=device).numpy(),
                                  np.eye(3)[[1, 2]])
    with pytest.raises(ValueError, match=r"must lie in \[0, 4\)"):
        init.one_hot(4, [4])
    with pytest.raises(ValueError, match="whole numbers"):
        init.one_hot(4, [1.5])


def test_randb_probability():
    gen = np.random.default_rng(0)
    b = init.randb(*SHAPE, p=0.3, device=ndl.cpu_numpy(), generator=gen).numpy()
    assert set(np.unique(b)) <= {0.0, 1.0} and abs(b.mean() - 0.3) < 0.01


def test_bad_arguments():
    with pytest.raises(ValueError, match="mode must be 'fan_in' or 'fan_out'"):
        init.kaiming_uniform(3, 4, mode="fan_avg", device=ndl.cpu_numpy())
    with pytest.raises(ValueError, match="unknown nonlinearity 'swish'"):
        init.kaiming_normal(3, 4, nonlinearity="swish", device=ndl.cpu_numpy())
