"""Losses, each averaged over the batch as torch's default reduction="mean"."""

import numpy as np

from .. import init, ops
from ..autograd import Tensor
from .module import Module


def _target_tensor(target, like):
    """target as a Tensor on like's device, with like's shape."""
    t = target if isinstance(target, Tensor) else Tensor(np.asarray(target), device=like.device)
    if t.shape != like.shape:
        raise ValueError(f"target shape {t.shape} does not match prediction shape {like.shape}")
    return t


class SoftmaxLoss(Module):
    """Cross entropy of logits (N, K) against integer labels (N,) (Tensor of floats or ints)."""

    def forward(self, logits, y):
        if logits.ndim != 2:
            raise ValueError(f"SoftmaxLoss expects logits (N, K), got shape {logits.shape}")
        labels = y.numpy() if isinstance(y, Tensor) else np.asarray(y)
        if labels.shape != logits.shape[:1]:
            raise ValueError(f"SoftmaxLoss: {logits.shape[0]} rows of logits but labels of "
                             f"shape {labels.shape}")
        picked = init.one_hot(logits.shape[1], labels, device=logits.device)
        return -ops.summation(ops.log_softmax(logits, axis=1) * picked) / logits.shape[0]


class L1Loss(Module):
    def forward(self, pred, target):
        return ops.mean(ops.abs(pred - _target_tensor(target, pred)))


class MSELoss(Module):
    def forward(self, pred, target):
        diff = pred - _target_tensor(target, pred)
        return ops.mean(diff * diff)
