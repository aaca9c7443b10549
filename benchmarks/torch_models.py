"""PyTorch re-statement of the colorization training path, the reference for
tests/test_colorization_parity.py and the training-step benchmark.

Same architecture and parameter names as colorization.model.ColorizationNet,
same loss as colorization.losses.CombinedLoss (lab_to_rgb written out in torch
with the constants of needle's reference backend, the same SSIM, the same
seeded random feature net), so a needle state dict loads here unchanged and
both frameworks compute the same numbers.  Only benchmarks/ and tests/ import
torch.
"""

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from colorization.features import RandomFeatureNet, random_feature_weights
from colorization.lab import AB_SCALE, L_SCALE
from colorization.metrics import SSIM_K1, SSIM_K2, SSIM_WINDOW, gaussian_window
from needle.backend_ndarray import ndarray_backend_numpy as reference

# ------------------------------------------------------------ colour


def lab_to_rgb(lab):
    """Lab (N, 3, H, W) -> unclipped sRGB: the formulas of needle's reference backend."""
    t_to_rgb = torch.as_tensor(reference.T_TO_RGB, dtype=lab.dtype, device=lab.device)
    L, a, b = lab[:, 0], lab[:, 1], lab[:, 2]
    fy = (L + 16.0) / 116.0
    f = torch.stack([fy + a / 500.0, fy, fy - b / 200.0], dim=1)
    t = torch.where(f > reference.FINV_THRESHOLD, f ** 3,
                    (f - reference.LAB_OFFSET) / reference.LAB_KAPPA)
    lin = torch.einsum("ij,njhw->nihw", t_to_rgb, t)
    high = lin > 0.0031308
    # pow only sees positive bases, so neither branch makes a NaN gradient.
    base = torch.where(high, lin, torch.ones_like(lin))
    return torch.where(high, 1.055 * base ** (1.0 / 2.4) - 0.055, 12.92 * lin)


def compose_rgb(L, ab):
    return lab_to_rgb(torch.cat([L * L_SCALE, ab * AB_SCALE], dim=1))


# ------------------------------------------------------------ network


class ConvBlock(nn.Module):
    def __init__(self, cin, cout, stride=1, batch_norm=False):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=not batch_norm)
        self.norm = nn.BatchNorm2d(cout) if batch_norm else nn.Identity()

    def forward(self, x):
        return F.relu(self.norm(self.conv(x)))


class UpConvBlock(nn.Module):
    def __init__(self, cin, cout, batch_norm=False, upsample_mode="nearest"):
        super().__init__()
        self.mode = upsample_mode
        self.block = ConvBlock(cin, cout, batch_norm=batch_norm)

    def forward(self, x):
        return self.block(F.interpolate(x, scale_factor=2, mode=self.mode))


class ColorizationNet(nn.Module):
    def __init__(self, batch_norm=False, upsample_mode="nearest"):
        super().__init__()
        bn = dict(batch_norm=batch_norm)
        self.enc1 = ConvBlock(1, 64, **bn)
        self.enc2 = ConvBlock(64, 128, stride=2, **bn)
        self.enc3 = ConvBlock(128, 256, stride=2, **bn)
        self.enc4 = ConvBlock(256, 512, stride=2, **bn)
        self.bottleneck = ConvBlock(512, 512, **bn)
        self.dec1 = UpConvBlock(512, 256, upsample_mode=upsample_mode, **bn)
        self.dec2 = UpConvBlock(512, 128, upsample_mode=upsample_mode, **bn)
        self.dec3 = UpConvBlock(256, 64, upsample_mode=upsample_mode, **bn)
        self.final = nn.Conv2d(128, 2, 3, padding=1)

    def forward(self, x):
        e1 = self.enc1(x)
        e2 = self.enc2(e1)
        e3 = self.enc3(e2)
        b = self.bottleneck(self.enc4(e3))
        d1 = torch.cat([self.dec1(b), e3], dim=1)
        d2 = torch.cat([self.dec2(d1), e2], dim=1)
        return self.final(torch.cat([self.dec3(d2), e1], dim=1))


def load_needle_state(module, state):
    """Loads a needle state_dict (name -> numpy array) into the torch module of the same names."""
    tensors = {k: torch.from_numpy(np.asarray(v, dtype=np.float32).copy()) for k, v in state.items()}
    missing, unexpected = module.load_state_dict(tensors, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise KeyError(f"needle and torch state differ: missing {missing}, unexpected {unexpected}")
    return module


def needle_grads(module):
    """name -> gradient (numpy) of every torch parameter, keyed like needle's state_dict."""
    return {name: p.grad.detach().cpu().numpy() for name, p in module.named_parameters()}


# ------------------------------------------------------------ loss


class RandomFeatures(nn.Module):
    """colorization.features.RandomFeatureNet with the same seeded weights."""

    def __init__(self, seed=0):
        super().__init__()
        self.conv1, self.conv2, self.conv3 = [
            nn.Conv2d(cin, cout, 3, stride=stride, padding=1)
            for cin, cout, stride in RandomFeatureNet.LAYERS]
        load_needle_state(self, random_feature_weights(seed))
        self.requires_grad_(False)

    def forward(self, x):
        x = x - 0.5
        for conv in (self.conv1, self.conv2, self.conv3):
            x = F.relu(conv(x))
        return x


def ssim(x, y, data_range=1.0):
    n, c, h, w = x.shape
    g = torch.as_tensor(gaussian_window(), dtype=x.dtype, device=x.device)
    planes = torch.cat([x, y, x * x, y * y, x * y], dim=0).reshape(5 * n * c, 1, h, w)
    moments = F.conv2d(F.conv2d(planes, g.reshape(1, 1, SSIM_WINDOW, 1)), g.reshape(1, 1, 1, SSIM_WINDOW))
    mx, my, exx, eyy, exy = moments.reshape(5, n * c, h - SSIM_WINDOW + 1, w - SSIM_WINDOW + 1)
    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
    mxx, myy, mxy = mx * mx, my * my, mx * my
    var_sum = F.relu(exx - mxx) + F.relu(eyy - myy)
    return (((2 * mxy + c1) * (2 * (exy - mxy) + c2)) / ((mxx + myy + c1) * (var_sum + c2))).mean()


class CombinedLoss:
    """colorization.losses.CombinedLoss in torch: (total, {"l1", "ssim", "perceptual"})."""

    def __init__(self, l1_weight=1.0, ssim_weight=0.1, perceptual_weight=0.05, feature_net=None):
        self.weights = {"l1": l1_weight, "ssim": ssim_weight, "perceptual": perceptual_weight}
        self.feature_net = feature_net if feature_net is not None else RandomFeatures()

    def __call__(self, ab_pred, ab_true, L):
        with torch.no_grad():
            rgb_true = compose_rgb(L, ab_true)
            target = self.feature_net(rgb_true)
        rgb_pred = compose_rgb(L, ab_pred)
        terms = {
            "l1": (ab_pred - ab_true).abs().mean(),
            "ssim": 1.0 - ssim(rgb_pred, rgb_true),
            "perceptual": (self.feature_net(rgb_pred) - target).abs().mean(),
        }
        total = sum(terms[k] * w for k, w in self.weights.items() if w)
        return total, {k: v.detach() for k, v in terms.items()}
