"""The training loss: L1 on ab + (1 - SSIM) on RGB + a perceptual feature distance.

The SSIM and perceptual terms judge the RGB image the user would see: the
true L joined with the predicted ab, through needle's differentiable
lab_to_rgb (colorization.lab.compose_rgb).  Nothing is clipped on that path,
so every pixel keeps a gradient.
"""

import numpy as np

import needle as ndl

from .features import feature_net as default_feature_net
from .lab import compose_rgb
from .metrics import SSIM_K1, SSIM_K2, SSIM_WINDOW, gaussian_window


def _gaussian_filters(device):
    """The SSIM Gaussian as a vertical (1,1,11,1) and a horizontal (1,1,1,11) conv weight."""
    g = gaussian_window().astype(np.float32)
    return (ndl.Tensor(g.reshape(1, 1, SSIM_WINDOW, 1), device=device),
            ndl.Tensor(g.reshape(1, 1, 1, SSIM_WINDOW), device=device))


def ssim(x, y, data_range=1.0):
    """Mean SSIM of two (N, C, H, W) tensors, differentiable: DESIGN.md's definition
    (Gaussian 11x11, sigma 1.5, K1 0.01, K2 0.03, population covariances, valid
    region), the same number colorization.metrics.ssim_per_image averages to.

    needle's conv has no groups, so every channel of every image becomes its own
    one-channel image in the batch axis; the five local moments (x, y, x^2, y^2,
    xy) share one separable Gaussian pass the same way.
    """
    if x.shape != y.shape or len(x.shape) != 4:
        raise ValueError(f"ssim needs two (N, C, H, W) tensors of one shape, got {x.shape} and {y.shape}")
    n, c, h, w = x.shape
    if min(h, w) < SSIM_WINDOW:
        raise ValueError(f"ssim needs images of at least {SSIM_WINDOW}x{SSIM_WINDOW}, got {h}x{w}")
    gv, gh = _gaussian_filters(x.device)
    planes = ndl.concat([x, y, x * x, y * y, x * y], axis=0).reshape((5 * n * c, 1, h, w))
    moments = ndl.conv(ndl.conv(planes, gv), gh)
    ho, wo = h - SSIM_WINDOW + 1, w - SSIM_WINDOW + 1
    mx, my, exx, eyy, exy = ndl.split(moments.reshape((5, n * c, ho, wo)), axis=0).tuple()
    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
    mxx, myy, mxy = mx * mx, my * my, mx * my
    # E[x^2] - E[x]^2 can come out a rounding error below zero on flat or very
    # bright patches; relu keeps the denominator >= c1 * c2 > 0 whatever the input.
    var_sum = ndl.relu(exx - mxx) + ndl.relu(eyy - myy)
    s = ((2.0 * mxy + c1) * (2.0 * (exy - mxy) + c2)) / ((mxx + myy + c1) * (var_sum + c2))
    return s.mean()


def perceptual_distance(net, x, y):
    """Mean absolute difference of the feature maps of x and y (y is a constant target)."""
    with ndl.no_grad():
        target = net.features(y).detach()
    return ndl.abs(net.features(x) - target).mean()


class CombinedLoss:
    """l1_weight * L1(ab) + ssim_weight * (1 - SSIM(rgb)) + perceptual_weight * perceptual.

    Called as loss(ab_pred, ab_true, L) with the network's scales (ab/128,
    L/100; N, C, H, W tensors) and returns (total, terms): terms maps "l1",
    "ssim" (the 1 - SSIM term) and "perceptual" to unweighted, detached scalar
    tensors for logging.  Every term is computed for the log, but only those
    with a non-zero weight enter the total, so the others cost no backward
    pass.  feature_net defaults to the seeded RandomFeatureNet (built on the
    device of the first batch).
    """

    def __init__(self, l1_weight=1.0, ssim_weight=0.1, perceptual_weight=0.05, feature_net=None):
        self.weights = {"l1": float(l1_weight), "ssim": float(ssim_weight),
                        "perceptual": float(perceptual_weight)}
        if not any(self.weights.values()):
            raise ValueError("CombinedLoss needs at least one non-zero weight")
        self.feature_net = feature_net

    def __call__(self, ab_pred, ab_true, L):
        if ab_pred.shape != ab_true.shape:
            raise ValueError(f"predicted ab {ab_pred.shape} and target ab {ab_true.shape} differ")
        if self.feature_net is None:
            self.feature_net = default_feature_net(device=ab_pred.device)
        with ndl.no_grad():
            rgb_true = compose_rgb(L, ab_true).detach()
        rgb_pred = compose_rgb(L, ab_pred)
        terms = {
            "l1": ndl.abs(ab_pred - ab_true).mean(),
            "ssim": 1.0 - ssim(rgb_pred, rgb_true),
            "perceptual": perceptual_distance(self.feature_net, rgb_pred, rgb_true),
        }
        weighted = [term * self.weights[name] for name, term in terms.items() if self.weights[name]]
        total = weighted[0]
        for term in weighted[1:]:
            total = total + term
        return total, {name: term.detach() for name, term in terms.items()}
