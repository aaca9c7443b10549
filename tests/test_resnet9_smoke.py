"""A ResNet9 (the Needle course's CIFAR-10 network) trains: a few steps on 64 CIFAR-10
images from ../shared lower the loss, on every backend (3-10 s a case here)."""

import os

import numpy as np
import pytest

import needle as ndl
import needle.nn as nn
from needle.data import DataLoader, ImageFolderDataset

SHARED_TRAIN = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "..",
                            "shared", "data", "cifar10-jpeg", "train")


def conv_bn(cin, cout, k, stride, device):
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, bias=False,
                                   device=device),
                         nn.BatchNorm2d(cout, device=device), nn.ReLU())


def resnet9(device, width=16):
    """The course's ResNet9: conv-bn-relu blocks, two residual pairs, a two-layer head.

    width=16 gives the course's channel counts (16, 32, 64, 128).
    """
    w = [width, 2 * width, 4 * width, 8 * width]
    return nn.Sequential(
        conv_bn(3, w[0], 7, 4, device), conv_bn(w[0], w[1], 3, 2, device),
        nn.Residual(nn.Sequential(conv_bn(w[1], w[1], 3, 1, device),
                                  conv_bn(w[1], w[1], 3, 1, device))),
        conv_bn(w[1], w[2], 3, 2, device), conv_bn(w[2], w[3], 3, 2, device),
        nn.Residual(nn.Sequential(conv_bn(w[3], w[3], 3, 1, device),
                                  conv_bn(w[3], w[3], 3, 1, device))),
        nn.Flatten(), nn.Linear(w[3], 128, device=device), nn.ReLU(),
        nn.Linear(128, 10, device=device))


@pytest.mark.skipif(not os.path.isdir(SHARED_TRAIN), reason=f"{SHARED_TRAIN} is not present")
@pytest.mark.parametrize("opt_cls,lr", [(ndl.optim.SGD, 0.05), (ndl.optim.Adam, 0.002)])
def test_resnet9_training_lowers_the_loss(device, tmp_path, opt_cls, lr):
    data = ImageFolderDataset(SHARED_TRAIN, cache_dir=tmp_path, limit_per_class=7)
    x, y = next(iter(DataLoader(data, batch_size=64, shuffle=True, seed=0, device=device)))
    np.random.seed(0)
    model = resnet9(device)
    opt = opt_cls(model.parameters(), lr=lr)
    loss_fn = nn.SoftmaxLoss()
    losses = []
    for _ in range(6):
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.isfinite(losses).all()
    assert losses[-1] < 0.8 * losses[0], losses
    model.eval()
    assert model(x).shape == (64, 10)
