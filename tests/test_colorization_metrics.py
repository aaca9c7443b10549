"""DESIGN.md's colorization metrics against scikit-image and the formulas they name."""

import math
import os

import numpy as np
import pytest
from skimage import color
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

import needle as ndl
from colorization import metrics
from colorization.dataset import ColorizationDataset
from colorization.metrics import ColorizationMetrics, colourfulness, quantize, ssim_per_image
from colorization.predict import to_rgb

SHARED_TEST = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                           "shared", "data", "cifar10-jpeg", "test")


def random_pair(rng, n=3, h=32, w=32):
    truth = (rng.random((n, 3, h, w)) * 255).astype(np.uint8)
    noise = rng.integers(-40, 41, truth.shape)
    pred = np.clip(truth.astype(int) + noise, 0, 255).astype(np.uint8)
    return pred, truth


def skimage_ssim(a, b):
    return structural_similarity(a.transpose(1, 2, 0), b.transpose(1, 2, 0), gaussian_weights=True, sigma=1.5,
                                 use_sample_covariance=False, data_range=1.0, channel_axis=2)


@pytest.mark.parametrize("h,w", [(11, 11), (32, 32), (17, 40)])
def test_ssim_matches_skimage(rng, h, w):
    pred, truth = random_pair(rng, 2, h, w)
    a, b = pred / 255.0, truth / 255.0
    got = ssim_per_image(a, b)
    want = [skimage_ssim(x, y) for x, y in zip(a, b)]
    np.testing.assert_allclose(got, want, atol=1e-6)


def test_ssim_of_identical_and_flat_images():
    img = np.full((1, 3, 16, 16), 0.3)
    assert ssim_per_image(img, img)[0] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim_per_image(np.zeros((1, 3, 10, 16)), np.zeros((1, 3, 10, 16)))


def test_psnr_pooled_and_per_image_leave_out_grey_truths(rng):
    pred, truth = random_pair(rng, 4)
    truth[1] = truth[1, :1]  # a grey ground truth: R = G = B everywhere
    m = ColorizationMetrics(device=None)
    m.update(pred, truth)
    r = m.result()
    assert r["grey_images_left_out"] == 1 and r["images"] == 4
    assert r["psnr_pooled"] == pytest.approx(peak_signal_noise_ratio(truth / 255.0, pred / 255.0, data_range=1.0))
    per_image = [peak_signal_noise_ratio(truth[i] / 255.0, pred[i] / 255.0, data_range=1.0) for i in (0, 2, 3)]
    assert r["psnr_per_image"] == pytest.approx(np.mean(per_image))
    assert r["l1"] == pytest.approx(np.mean(np.abs(pred / 255.0 - truth / 255.0)))
    assert r["ssim"] == pytest.approx(np.mean([skimage_ssim(p / 255.0, t / 255.0) for p, t in zip(pred, truth)]),
                                      abs=1e-6)


def test_ab_error_in_lab_units_matches_skimage(rng):
    pred, truth = random_pair(rng, 2)
    m = ColorizationMetrics(device=None)
    m.update(pred, truth)
    lab_p = color.rgb2lab(pred.transpose(0, 2, 3, 1) / 255.0)
    lab_t = color.rgb2lab(truth.transpose(0, 2, 3, 1) / 255.0)
    want = np.mean(np.sqrt(np.sum((lab_p[..., 1:] - lab_t[..., 1:]) ** 2, axis=-1)))
    assert m.result()["ab_error"] == pytest.approx(want, abs=1e-3)


def test_batches_accumulate_like_one_batch(rng):
    pred, truth = random_pair(rng, 5)
    whole, parts = ColorizationMetrics(), ColorizationMetrics()
    whole.update(pred, truth)
    parts.update(pred[:2], truth[:2])
    parts.update(pred[2:], truth[2:])
    for key, value in whole.result().items():
        assert parts.result()[key] == pytest.approx(value, rel=1e-9), key


def test_perfect_prediction_has_infinite_psnr():
    truth = np.zeros((1, 3, 16, 16), np.uint8)
    truth[0, 0] = 200
    m = ColorizationMetrics()
    m.update(truth.copy(), truth)
    assert m.result()["psnr_pooled"] == math.inf and m.result()["ab_error"] == pytest.approx(0, abs=1e-4)


def test_colourfulness_hasler_suesstrunk():
    grey = np.full((1, 3, 8, 8), 90, np.uint8)
    assert colourfulness(grey)[0] == 0.0
    red = np.zeros((1, 3, 8, 8), np.uint8)
    red[0, 0] = 255  # |R-G| = 255, |(R+G)/2 - B| = 127.5, no spread
    assert colourfulness(red)[0] == pytest.approx(0.3 * math.hypot(255, 127.5))
    half = np.zeros((1, 3, 2, 2), np.uint8)
    half[0, 0, 0] = 100  # rg = 100 on half the pixels: std 50, mean 50; yb std 25, mean 25
    assert colourfulness(half)[0] == pytest.approx(math.hypot(50, 25) + 0.3 * math.hypot(50, 25))


def test_quantize_rounds_and_clips():
    x = np.array([-0.1, 0.0, 0.5 / 255, 1.49 / 255, 1.0, 1.2])
    np.testing.assert_array_equal(quantize(x), [0, 0, 0, 1, 255, 255])
    assert quantize(x).dtype == np.uint8


def test_update_refuses_floats_and_mismatched_shapes():
    m = ColorizationMetrics()
    with pytest.raises(TypeError, match="uint8"):
        m.update(np.zeros((1, 3, 16, 16)), np.zeros((1, 3, 16, 16), np.uint8))
    with pytest.raises(ValueError, match="one shape"):
        m.update(np.zeros((1, 3, 16, 16), np.uint8), np.zeros((2, 3, 16, 16), np.uint8))
    with pytest.raises(ValueError, match="no images"):
        m.result()


def test_gaussian_window_is_scipys():
    from scipy.ndimage import gaussian_filter1d
    impulse = np.zeros(11)
    impulse[5] = 1.0
    np.testing.assert_allclose(metrics.gaussian_window(), gaussian_filter1d(impulse, 1.5, truncate=3.5), atol=1e-12)


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir(SHARED_TEST), reason=f"the shared CIFAR-10 JPEG set is not at {SHARED_TEST}")
def test_grayscale_row_of_the_shared_data_readme():
    """The whole pipeline (decode, needle's Lab, quantization, every metric) reproduces the
    grayscale row that shared/data/README.md measured with scikit-image on the test split."""
    data = ColorizationDataset(ndl.data.ImageFolderDataset(SHARED_TEST), device=ndl.cpu())
    m = ColorizationMetrics(ndl.cpu())
    for start in range(0, len(data), 2000):
        L = data.L[start:start + 2000]
        grey = quantize(to_rgb(L, np.zeros((len(L), 2) + L.shape[2:], np.float32), ndl.cpu()))
        m.update(grey, np.ascontiguousarray(data.images[start:start + 2000].transpose(0, 3, 1, 2)))
    r = m.result()
    assert (r["images"], r["grey_images_left_out"]) == (10000, 113)
    assert round(r["psnr_pooled"], 2) == 21.96 and round(r["psnr_per_image"], 2) == 24.64
    assert round(r["ssim"], 4) == 0.9526 and round(r["l1"], 4) == 0.0486
    assert round(r["colourfulness"], 2) == 0.08 and round(r["colourfulness_truth"], 2) == 27.69
