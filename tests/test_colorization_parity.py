"""The whole training path against PyTorch (issue 3 section 7).

Same initial weights and batch -> the same network output, every loss term
and every parameter gradient; then 10 Adam steps on the same batches -> the
same loss curve.  The reference is benchmarks/torch_models.py.  cpu_numpy
runs a smaller batch to stay fast.
"""

import numpy as np
import pytest
import torch

import needle as ndl
from benchmarks import torch_models as tm
from colorization.lab import rgb_to_lab_array, split_lab
from colorization.losses import CombinedLoss
from colorization.model import ColorizationNet
from colorization.train import train_step
from colorization_helpers import synthetic_images
from torch_compare import assert_close

# (batch, image size) per device for the one-step comparison and for the
# 10-step curve: small where the CPU must run 10 full steps of two frameworks.
SIZES = {"cpu_numpy": (1, 16), "cpu": (2, 32), "cuda": (8, 32)}
CURVE_SIZES = {"cpu_numpy": (1, 16), "cpu": (1, 16), "cuda": (8, 32)}
STEPS = 10


def batches(count, n, size, seed=0):
    """count (L/100, ab/128) batches of synthetic colour images, as training would see them."""
    images = np.stack(synthetic_images(count * n, size, seed)).transpose(0, 3, 1, 2) / 255.0
    L, ab = split_lab(rgb_to_lab_array(images.astype(np.float32), ndl.cpu_numpy()))
    return [(L[i * n:(i + 1) * n], ab[i * n:(i + 1) * n]) for i in range(count)]


def twin_models(device, batch_norm=False):
    np.random.seed(0)
    net = ColorizationNet(batch_norm=batch_norm, device=device)
    return net, tm.load_needle_state(tm.ColorizationNet(batch_norm=batch_norm), net.state_dict())


def compare_step(net, tnet, L, ab, device):
    """Forward + backward in both; asserts output, terms and every gradient agree."""
    Ln, abn = ndl.Tensor(L, device=device), ndl.Tensor(ab, device=device)
    pred = net(Ln)
    total, terms = CombinedLoss()(pred, abn, Ln)
    total.backward()
    Lt, abt = torch.from_numpy(L), torch.from_numpy(ab)
    tpred = tnet(Lt)
    ttotal, tterms = tm.CombinedLoss()(tpred, abt, Lt)
    ttotal.backward()
    assert_close(pred.numpy(), tpred.detach().numpy(), 1e-4, "network output")
    for name in ("l1", "ssim", "perceptual"):
        assert terms[name].item() == pytest.approx(tterms[name].item(), rel=1e-4), name
    assert total.item() == pytest.approx(ttotal.item(), rel=1e-4)
    tgrads = tm.needle_grads(tnet)
    params = dict(net.named_parameters())
    assert set(params) == set(tgrads)
    for name, p in params.items():
        assert_close(p.grad.numpy(), tgrads[name], 1e-4, f"gradient of {name}")


def test_output_terms_and_gradients_match_torch(device):
    n, size = SIZES[device.name]
    net, tnet = twin_models(device)
    L, ab = batches(1, n, size)[0]
    compare_step(net, tnet, L, ab, device)


def test_batch_norm_variant_matches_torch(fast_device):
    net, tnet = twin_models(fast_device, batch_norm=True)
    # 32x32, not 16x16: at 2x2 the deepest BatchNorms normalise 16 values, some
    # channels come out constant, and which side of the ReLU their rounding
    # noise lands on is a coin toss in either framework.
    L, ab = batches(1, 4, 32, seed=1)[0]
    compare_step(net, tnet, L, ab, fast_device)
    state = net.state_dict()
    for name in ("enc2.norm.running_mean", "bottleneck.norm.running_var"):
        assert_close(state[name], tnet.state_dict()[name].numpy(), 1e-4, name)


def test_adam_loss_curves_match_torch(device):
    n, size = CURVE_SIZES[device.name]
    net, tnet = twin_models(device)
    optimizer = ndl.optim.Adam(net.parameters(), lr=1e-3)
    toptimizer = torch.optim.Adam(tnet.parameters(), lr=1e-3)
    loss_fn, tloss_fn = CombinedLoss(), tm.CombinedLoss()
    ours, theirs = [], []
    for L, ab in batches(STEPS, n, size, seed=2):
        ours.append(train_step(net, loss_fn, optimizer, ndl.Tensor(L, device=device),
                               ndl.Tensor(ab, device=device))[0])
        toptimizer.zero_grad()
        total, _ = tloss_fn(tnet(torch.from_numpy(L)), torch.from_numpy(ab), torch.from_numpy(L))
        total.backward()
        toptimizer.step()
        theirs.append(total.item())
    np.testing.assert_allclose(ours, theirs, rtol=1e-3)
