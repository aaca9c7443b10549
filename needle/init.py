"""Tensor initializers: constants, random draws, and the Xavier / Kaiming schemes.

Every function returns a float32 ``Tensor`` on ``device`` (default: the
default device).  Random draws come from numpy's global RNG (so
``np.random.seed`` makes them reproducible) unless an ``np.random.Generator``
is passed as ``generator``.  The Xavier and Kaiming formulas, gains and fan
modes are torch.nn.init's, so a layer initialised here has the distribution
of its PyTorch counterpart.
"""

import math

import numpy as np

from .autograd import Tensor


def _tensor(array, device, requires_grad):
    return Tensor(array, device=device, requires_grad=requires_grad)


def _rng(generator):
    return generator if generator is not None else np.random


def constant(*shape, c=1.0, device=None, requires_grad=False):
    return _tensor(np.full(shape, c, dtype=np.float32), device, requires_grad)


def ones(*shape, device=None, requires_grad=False):
    return constant(*shape, c=1.0, device=device, requires_grad=requires_grad)


def zeros(*shape, device=None, requires_grad=False):
    return constant(*shape, c=0.0, device=device, requires_grad=requires_grad)


def uniform(*shape, low=0.0, high=1.0, device=None, requires_grad=False, generator=None):
    """U(low, high) samples."""
    draw = _rng(generator).uniform(low, high, size=shape)
    return _tensor(draw.astype(np.float32), device, requires_grad)


def normal(*shape, mean=0.0, std=1.0, device=None, requires_grad=False, generator=None):
    """N(mean, std**2) samples."""
    draw = _rng(generator).normal(mean, std, size=shape)
    return _tensor(draw.astype(np.float32), device, requires_grad)


# The Needle course's names for the two basic draws.
rand = uniform
randn = normal


def randb(*shape, p=0.5, device=None, requires_grad=False, generator=None):
    """1.0 with probability p, else 0.0 (dropout masks)."""
    draw = _rng(generator).random(size=shape) < p
    return _tensor(draw.astype(np.float32), device, requires_grad)


def one_hot(n, i, device=None, requires_grad=False):
    """Rows of the n x n identity picked by the integer labels i."""
    labels = np.asarray(i.numpy() if isinstance(i, Tensor) else i)
    if labels.dtype.kind == "f":
        if not np.all(labels == np.round(labels)):
            raise ValueError("one_hot labels must be whole numbers")
        labels = labels.astype(np.int64)
    if labels.size and (labels.min() < 0 or labels.max() >= n):
        raise ValueError(f"one_hot labels must lie in [0, {n}), got values in "
                         f"[{labels.min()}, {labels.max()}]")
    return _tensor(np.eye(n, dtype=np.float32)[labels], device, requires_grad)


def calculate_gain(nonlinearity, a=None):
    """torch.nn.init.calculate_gain: the std scale that keeps activations' variance."""
    if nonlinearity in ("linear", "conv1d", "conv2d", "conv3d", "sigmoid"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3.0
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if a is None else a
        return math.sqrt(2.0 / (1.0 + slope ** 2))
    if nonlinearity == "selu":
        return 0.75
    raise ValueError(f"unknown nonlinearity {nonlinearity!r}")


def _fans_shape(fan_in, fan_out, shape):
    return tuple(shape) if shape is not None else (fan_in, fan_out)


def xavier_uniform(fan_in, fan_out, gain=1.0, shape=None, **kwargs):
    """U(-a, a), a = gain * sqrt(6 / (fan_in + fan_out)); shape defaults to (fan_in, fan_out)."""
    a = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform(*_fans_shape(fan_in, fan_out, shape), low=-a, high=a, **kwargs)


def xavier_normal(fan_in, fan_out, gain=1.0, shape=None, **kwargs):
    std = gain * math.sqrt(2.0 / (fan_in + fan_out))
    return normal(*_fans_shape(fan_in, fan_out, shape), std=std, **kwargs)


def _kaiming_std(fan_in, fan_out, mode, nonlinearity, a):
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan = fan_in if mode == "fan_in" else fan_out
    return calculate_gain(nonlinearity, a) / math.sqrt(fan)


def kaiming_uniform(fan_in, fan_out, shape=None, nonlinearity="relu", mode="fan_in", a=None,
                    **kwargs):
    """U(-b, b), b = gain * sqrt(3 / fan), fan picked by mode.

    PyTorch's default for Linear and Conv2d weights is nonlinearity="leaky_relu",
    a=sqrt(5), which makes b = 1 / sqrt(fan_in).
    """
    bound = math.sqrt(3.0) * _kaiming_std(fan_in, fan_out, mode, nonlinearity, a)
    return uniform(*_fans_shape(fan_in, fan_out, shape), low=-bound, high=bound, **kwargs)


def kaiming_normal(fan_in, fan_out, shape=None, nonlinearity="relu", mode="fan_in", a=None,
                   **kwargs):
    std = _kaiming_std(fan_in, fan_out, mode, nonlinearity, a)
    return normal(*_fans_shape(fan_in, fan_out, shape), std=std, **kwargs)
