"""Layers: each a Module whose forward is made of needle.ops.

Defaults follow PyTorch (initialisation, BatchNorm momentum and variance
conventions, padding 0), so a model written here and its torch.nn twin with
copied weights compute the same thing.  Linear keeps the Needle course's
(in_features, out_features) weight layout: forward is x @ W.
"""

import math

from .. import init, ops
from ..autograd import no_grad
from .module import Module, Parameter


def _torch_default_weight(fan_in, shape, device):
    # torch.nn's kaiming_uniform_(a=sqrt(5)): U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
    return Parameter(init.kaiming_uniform(fan_in, None, shape=shape, nonlinearity="leaky_relu",
                                          a=math.sqrt(5), device=device))


def _torch_default_bias(fan_in, n, device):
    bound = 1.0 / math.sqrt(fan_in)
    return Parameter(init.uniform(n, low=-bound, high=bound, device=device))


def _broadcast_channels(v, x, axis):
    """The per-channel vector v (C,) broadcast against x along `axis`."""
    shape = [1] * x.ndim
    shape[axis] = v.shape[0]
    return ops.broadcast_to(ops.reshape(v, tuple(shape)), x.shape)


class Identity(Module):
    def forward(self, x):
        return x


class Linear(Module):
    def __init__(self, in_features, out_features, bias=True, device=None):
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.weight = _torch_default_weight(in_features, (in_features, out_features), device)
        self.bias = _torch_default_bias(in_features, out_features, device) if bias else None

    def forward(self, x):
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            raise ValueError(f"Linear expects inputs whose last dimension is in_features="
                             f"{self.in_features}, got shape {x.shape}")
        y = x @ self.weight
        return y if self.bias is None else y + _broadcast_channels(self.bias, y, y.ndim - 1)


class Conv2d(Module):
    """2-D convolution on NCHW inputs with OIHW weights (square or (kh, kw) kernels)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True,
                 device=None):
        super().__init__()
        kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = (kh, kw)
        self.stride = stride
        self.padding = padding
        fan_in = in_channels * kh * kw
        self.weight = _torch_default_weight(fan_in, (out_channels, in_channels, kh, kw), device)
        self.bias = _torch_default_bias(fan_in, out_channels, device) if bias else None

    def forward(self, x):
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"Conv2d expects NCHW input with {self.in_channels} channels, "
                             f"got shape {x.shape}")
        return ops.conv(x, self.weight, self.bias, stride=self.stride, padding=self.padding)


class ReLU(Module):
    def forward(self, x):
        return ops.relu(x)


class Sigmoid(Module):
    def forward(self, x):
        return ops.sigmoid(x)


class Tanh(Module):
    def forward(self, x):
        return ops.tanh(x)


class Sequential(Module):
    """Applies its modules in order; they are named "0", "1", ... as in torch."""

    def __init__(self, *modules):
        super().__init__()
        for i, module in enumerate(modules):
            setattr(self, str(i), module)

    def __getitem__(self, i):
        return self.children()[i]

    def __len__(self):
        return len(self.children())

    def forward(self, x):
        for module in self.children():
            x = module(x)
        return x


class Flatten(Module):
    """(N, ...) -> (N, prod(...))."""

    def forward(self, x):
        return ops.reshape(x, (x.shape[0], math.prod(x.shape[1:])))


class _BatchNorm(Module):
    """Normalises each channel (axis 1) over every other axis, as torch's BatchNorm.

    Training normalises with the batch's biased variance and moves the running
    statistics towards the batch's mean and unbiased variance by `momentum`;
    eval normalises with the running statistics.
    """

    ndim = None  # the input rank the subclass accepts

    def __init__(self, num_features, eps=1e-5, momentum=0.1, device=None):
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.weight = Parameter(init.ones(num_features, device=device))
        self.bias = Parameter(init.zeros(num_features, device=device))
        self.register_buffer("running_mean", init.zeros(num_features, device=device))
        self.register_buffer("running_var", init.ones(num_features, device=device))

    def forward(self, x):
        if x.ndim != self.ndim or x.shape[1] != self.num_features:
            raise ValueError(f"{type(self).__name__} expects {self.ndim}-d input with "
                             f"{self.num_features} channels on axis 1, got shape {x.shape}")
        axes = (0,) + tuple(range(2, x.ndim))
        if self.training:
            count = x.size // self.num_features
            if count < 2:
                raise ValueError(f"{type(self).__name__} in training needs more than one value "
                                 f"per channel, got input shape {x.shape}")
            mean = ops.summation(x, axes) / count
            centered = x - _broadcast_channels(mean, x, 1)
            var = ops.summation(centered * centered, axes) / count
            self._update_running_stats(mean, var, count)
        else:
            mean, var = self.running_mean, self.running_var
            centered = x - _broadcast_channels(mean, x, 1)
        scale = self.weight / ops.sqrt(var + self.eps)
        return centered * _broadcast_channels(scale, x, 1) + _broadcast_channels(self.bias, x, 1)

    def _update_running_stats(self, mean, var, count):
        m = self.momentum
        with no_grad():
            self.running_mean.data = (1 - m) * self.running_mean + m * mean.detach()
            unbiased = var.detach() * (count / (count - 1))
            self.running_var.data = (1 - m) * self.running_var + m * unbiased


class BatchNorm1d(_BatchNorm):
    """BatchNorm over (N, C) inputs."""

    ndim = 2


class BatchNorm2d(_BatchNorm):
    """BatchNorm over (N, C, H, W) inputs, statistics per channel over N, H and W."""

    ndim = 4


class LayerNorm1d(Module):
    """Normalises over the last axis with biased variance (torch.nn.LayerNorm(dim))."""

    def __init__(self, dim, eps=1e-5, device=None):
        super().__init__()
        self.dim = dim
        self.eps = eps
        self.weight = Parameter(init.ones(dim, device=device))
        self.bias = Parameter(init.zeros(dim, device=device))

    def forward(self, x):
        if x.shape[-1] != self.dim:
            raise ValueError(f"LayerNorm1d expects a last dimension of {self.dim}, "
                             f"got shape {x.shape}")
        last = x.ndim - 1
        centered = x - ops.broadcast_to(ops.mean(x, (last,), keepdims=True), x.shape)
        var = ops.mean(centered * centered, (last,), keepdims=True)
        std = ops.broadcast_to(ops.sqrt(var + self.eps), x.shape)
        return centered / std * _broadcast_channels(self.weight, x, last) \
            + _broadcast_channels(self.bias, x, last)


class Dropout(Module):
    """Zeroes each element with probability p in training, scaling the rest by 1/(1-p)."""

    def __init__(self, p=0.5):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout probability must be in [0, 1], got {p}")
        self.p = p

    def forward(self, x):
        if not self.training or self.p == 0.0:
            return x
        if self.p == 1.0:
            return x * 0.0
        mask = init.randb(*x.shape, p=1.0 - self.p, device=x.device)
        return x * mask / (1.0 - self.p)


class Residual(Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x) + x


class Upsample(Module):
    def __init__(self, scale=2, mode="nearest"):
        super().__init__()
        self.scale = scale
        self.mode = mode

    def forward(self, x):
        return ops.upsample(x, scale=self.scale, mode=self.mode)
