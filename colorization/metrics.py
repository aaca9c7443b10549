"""DESIGN.md's colorization metrics: one definition, used by evaluate, the demo and the tests.

Every metric is computed on sRGB images quantized to uint8, as a saved image
would be, so that a number here is a property of the PNG a user gets.  Pure
numpy, float64 arithmetic; the only needle call is the Lab conversion behind
the ab error (colorization.lab, the same arithmetic as the training targets).
"""

import math

import numpy as np

from .lab import rgb_to_lab_array

SSIM_WINDOW, SSIM_SIGMA = 11, 1.5
SSIM_K1, SSIM_K2 = 0.01, 0.03


def quantize(rgb):
    """sRGB floats in [0, 1] (any shape) -> uint8, rounding as an image writer does."""
    return np.round(np.clip(rgb, 0.0, 1.0) * 255.0).astype(np.uint8)


def gaussian_window(size=SSIM_WINDOW, sigma=SSIM_SIGMA):
    """The normalised 1-D Gaussian of SSIM (scipy's gaussian_filter taps for truncate=3.5)."""
    x = np.arange(size) - (size - 1) / 2.0
    g = np.exp(-0.5 * (x / sigma) ** 2)
    return g / g.sum()


def _filter_valid(x, g):
    """Separable correlation of the last two axes with g, valid region only."""
    k = len(g)
    x = np.lib.stride_tricks.sliding_window_view(x, k, axis=-2) @ g
    return np.lib.stride_tricks.sliding_window_view(x, k, axis=-1) @ g


def ssim_per_image(pred, true, data_range=1.0):
    """SSIM of each image pair (N, C, H, W): Gaussian 11x11, sigma 1.5, valid region,
    population covariances; the mean over channels and pixels, as
    skimage.metrics.structural_similarity(gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, channel_axis=...) computes it."""
    x = np.asarray(pred, dtype=np.float64)
    y = np.asarray(true, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 4:
        raise ValueError(f"ssim needs two (N, C, H, W) arrays of one shape, got {x.shape} and {y.shape}")
    if min(x.shape[2:]) < SSIM_WINDOW:
        raise ValueError(f"ssim needs images of at least {SSIM_WINDOW}x{SSIM_WINDOW}, got {x.shape[2:]}")
    g = gaussian_window()
    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
    mx, my = _filter_valid(x, g), _filter_valid(y, g)
    vx = _filter_valid(x * x, g) - mx * mx
    vy = _filter_valid(y * y, g) - my * my
    cxy = _filter_valid(x * y, g) - mx * my
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return s.mean(axis=(1, 2, 3))


def psnr(mse):
    """PSNR in dB of a mean squared error on [0, 1] images (inf for a perfect match)."""
    return math.inf if mse == 0 else 10.0 * math.log10(1.0 / mse)


def colourfulness(images_u8):
    """Hasler & Suesstrunk (2003) colourfulness of each uint8 image (N, 3, H, W), 0..255 scale.

    The opponent channels are taken in absolute value, |R - G| and
    |(R + G)/2 - B|, as in the widely used implementation that produced the
    reference table of shared/data/README.md (27.69 for the CIFAR-10 test
    split), so numbers here compare with it.
    """
    rgb = np.asarray(images_u8, dtype=np.float64)
    r, g, b = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    rg = np.abs(r - g).reshape(len(rgb), -1)
    yb = np.abs(0.5 * (r + g) - b).reshape(len(rgb), -1)
    return (np.sqrt(rg.std(axis=1) ** 2 + yb.std(axis=1) ** 2)
            + 0.3 * np.sqrt(rg.mean(axis=1) ** 2 + yb.mean(axis=1) ** 2))


def is_grey(images_u8):
    """(N,) bool: the images whose every pixel has R = G = B."""
    x = np.asarray(images_u8)
    return np.all((x[:, 0] == x[:, 1]) & (x[:, 1] == x[:, 2]), axis=(1, 2))


class ColorizationMetrics:
    """Accumulates DESIGN.md's metrics over batches of (prediction, truth) uint8 images.

    update() takes uint8 (N, 3, H, W) arrays; result() returns a dict:
    psnr_pooled, psnr_per_image (grey ground truths left out, counted in
    grey_images_left_out), ssim, l1 (RGB on [0, 1]), ab_error (mean Euclidean
    distance in the ab plane, Lab units), colourfulness of the predictions and
    colourfulness_truth, and the number of images.
    """

    def __init__(self, device=None):
        self.device = device
        self.sq_err = 0.0
        self.abs_err = 0.0
        self.ab_err = 0.0
        self.values = 0
        self.pixels = 0
        self.psnrs = []
        self.grey = 0
        self.ssims = []
        self.colour_pred = []
        self.colour_true = []

    def update(self, pred_u8, true_u8):
        if pred_u8.dtype != np.uint8 or true_u8.dtype != np.uint8:
            raise TypeError(f"metrics take uint8 images, got {pred_u8.dtype} and {true_u8.dtype}")
        if pred_u8.shape != true_u8.shape or pred_u8.ndim != 4 or pred_u8.shape[1] != 3:
            raise ValueError(f"metrics take two (N, 3, H, W) arrays of one shape, "
                             f"got {pred_u8.shape} and {true_u8.shape}")
        pred = pred_u8.astype(np.float64) / 255.0
        true = true_u8.astype(np.float64) / 255.0
        diff = pred - true
        self.sq_err += float(np.sum(diff * diff))
        self.abs_err += float(np.sum(np.abs(diff)))
        self.values += diff.size
        grey = is_grey(true_u8)
        self.grey += int(grey.sum())
        per_image_mse = np.mean(diff * diff, axis=(1, 2, 3))
        self.psnrs.extend(psnr(m) for m in per_image_mse[~grey])
        self.ssims.extend(ssim_per_image(pred, true))
        lab_pred = rgb_to_lab_array(pred.astype(np.float32), self.device).astype(np.float64)
        lab_true = rgb_to_lab_array(true.astype(np.float32), self.device).astype(np.float64)
        self.ab_err += float(np.sum(np.sqrt(np.sum((lab_pred[:, 1:] - lab_true[:, 1:]) ** 2, axis=1))))
        self.pixels += lab_pred[:, 0].size
        self.colour_pred.extend(colourfulness(pred_u8))
        self.colour_true.extend(colourfulness(true_u8))

    def result(self):
        if not self.values:
            raise ValueError("no images were given to the metrics")
        return {
            "images": len(self.ssims),
            "psnr_pooled": psnr(self.sq_err / self.values),
            "psnr_per_image": float(np.mean(self.psnrs)) if self.psnrs else math.nan,
            "grey_images_left_out": self.grey,
            "ssim": float(np.mean(self.ssims)),
            "l1": self.abs_err / self.values,
            "ab_error": self.ab_err / self.pixels,
            "colourfulness": float(np.mean(self.colour_pred)),
            "colourfulness_truth": float(np.mean(self.colour_true)),
        }
