"""rgb_to_lab / lab_to_rgb: forward against scikit-image, the round trip, and the backward
against torch autograd of a float64 re-statement of the formulas and against float64
finite differences; gradients stay finite at the kinks and out of gamut."""

import re

import numpy as np
import pytest
import torch
from skimage import color

import needle as ndl
from torch_compare import assert_close, counting_device

# ---------------------------------------------------------------- float64 torch re-statement
# scikit-image's constants (DESIGN.md).  The inner torch.where calls keep the
# branch that is not taken finite, so autograd sends no nan through it.
RGB_TO_XYZ = torch.tensor([[0.412453, 0.357580, 0.180423],
                           [0.212671, 0.715160, 0.072169],
                           [0.019334, 0.119193, 0.950227]], dtype=torch.float64)
XYZ_TO_RGB = torch.linalg.inv(RGB_TO_XYZ)
WHITE = torch.tensor([0.95047, 1.0, 1.08883], dtype=torch.float64).view(1, 3, 1, 1)
SRGB_KINK, LAB_EPSILON, FINV_KINK, GAMMA_KINK = 0.04045, 0.008856, 0.2068966, 0.0031308


def _mix(matrix, x):
    return torch.einsum("ij,njhw->nihw", matrix, x)


def torch_rgb_to_t(rgb):
    """sRGB -> XYZ / white (the argument of the cube root)."""
    high = rgb > SRGB_KINK
    lin = torch.where(high, ((torch.where(high, rgb, 0.0) + 0.055) / 1.055) ** 2.4, rgb / 12.92)
    return _mix(RGB_TO_XYZ, lin) / WHITE


def torch_rgb_to_lab(rgb):
    t = torch_rgb_to_t(rgb)
    high = t > LAB_EPSILON
    f = torch.where(high, torch.where(high, t, 1.0) ** (1.0 / 3.0), 7.787 * t + 16.0 / 116.0)
    fx, fy, fz = f.unbind(1)
    return torch.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], 1)


def torch_lab_to_f(lab):
    L, a, b = lab.unbind(1)
    fy = (L + 16.0) / 116.0
    return torch.stack([fy + a / 500.0, fy, fy - b / 200.0], 1)


def torch_lab_to_lin(lab):
    f = torch_lab_to_f(lab)
    t = torch.where(f > FINV_KINK, f ** 3, (f - 16.0 / 116.0) / 7.787)
    return _mix(XYZ_TO_RGB, t * WHITE)


def torch_lab_to_rgb(lab):
    lin = torch_lab_to_lin(lab)
    high = lin > GAMMA_KINK
    return torch.where(high, 1.055 * torch.where(high, lin, 1.0) ** (1.0 / 2.4) - 0.055,
                       12.92 * lin)


CONVERSIONS = {"rgb_to_lab": (ndl.rgb_to_lab, torch_rgb_to_lab),
               "lab_to_rgb": (ndl.lab_to_rgb, torch_lab_to_rgb)}

# ---------------------------------------------------------------- samples


def dense_srgb(rng):
    """Every colour of a 16-level 8-bit grid plus 2048 random 8-bit colours, as (2, 3, 48, 64)."""
    levels = np.arange(0, 256, 17)
    grid = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), -1).reshape(-1, 3)
    pixels = np.concatenate([grid, rng.integers(0, 256, (2048, 3))]) / 255.0
    return pixels.reshape(2, 48, 64, 3).transpose(0, 3, 1, 2)


def random_lab(rng, shape=(2, 3, 6, 7)):
    """L in [-10, 110], a and b in [-150, 150]: much of it out of the sRGB gamut."""
    lab = rng.uniform(-150.0, 150.0, shape)
    lab[:, 0] = rng.uniform(-10.0, 110.0, lab[:, 0].shape)
    return lab


def to_image(nchw):
    return nchw.transpose(0, 2, 3, 1)


def to_nchw(image):
    return image.transpose(0, 3, 1, 2)


# ---------------------------------------------------------------- forward


def test_rgb_to_lab_matches_skimage(device, rng):
    rgb = dense_srgb(rng)
    got = ndl.rgb_to_lab(ndl.Tensor(rgb, device=device)).numpy()
    want = to_nchw(color.rgb2lab(to_image(rgb.astype(np.float32).astype(np.float64))))
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-3)


def test_lab_to_rgb_matches_skimage_in_gamut(device, rng):
    lab = to_nchw(color.rgb2lab(to_image(dense_srgb(rng)))).astype(np.float32)
    got = ndl.lab_to_rgb(ndl.Tensor(lab, device=device)).numpy()
    # skimage clips to [0, 1]; these colours are in gamut, so only rounding differs.
    want = to_nchw(color.lab2rgb(to_image(lab.astype(np.float64))))
    np.testing.assert_allclose(got, want, rtol=0, atol=2e-5)


def test_round_trip(device, rng):
    rgb = np.concatenate([dense_srgb(rng), rng.uniform(0, 1, (2, 3, 48, 64))])
    x = ndl.Tensor(rgb, device=device)
    np.testing.assert_allclose(ndl.lab_to_rgb(ndl.rgb_to_lab(x)).numpy(), x.numpy(),
                               rtol=0, atol=1e-5)


def test_lab_to_rgb_does_not_clip(device):
    lab = np.array([[0.0, 80.0, -120.0], [100.0, 0.0, 0.0], [50.0, 0.0, 0.0]]).T.reshape(1, 3, 1, 3)
    got = ndl.lab_to_rgb(ndl.Tensor(lab, device=device)).numpy()
    want = torch_lab_to_rgb(torch.tensor(lab)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    assert got.min() < 0.0, "an out-of-gamut colour must come out unclipped"


def test_reference_restatement_matches_skimage(rng):
    """The torch formulas the gradients are checked against are the skimage formulas."""
    rgb = dense_srgb(rng)
    lab = torch_rgb_to_lab(torch.tensor(rgb)).numpy()
    np.testing.assert_allclose(lab, to_nchw(color.rgb2lab(to_image(rgb))), atol=1e-9)
    np.testing.assert_allclose(torch_lab_to_rgb(torch.tensor(lab)).numpy(), rgb, atol=1e-9)


# ---------------------------------------------------------------- backward


def _vjp(fn, x, upstream, device):
    t = ndl.Tensor(x, device=device, requires_grad=True)
    fn(t).backward(ndl.Tensor(upstream, device=device))
    return t.grad.numpy()


def _torch_vjp(fn, x, upstream):
    t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    fn(t).backward(torch.tensor(upstream, dtype=torch.float64))
    return t.grad.numpy()


def _inputs(name, rng):
    if name == "rgb_to_lab":
        return rng.uniform(0.0, 1.0, (2, 3, 6, 7)).astype(np.float32)
    return random_lab(rng).astype(np.float32)


@pytest.mark.parametrize("name", CONVERSIONS)
def test_backward_matches_torch_autograd(device, rng, name):
    ndl_fn, torch_fn = CONVERSIONS[name]
    x = _inputs(name, rng)
    upstream = rng.standard_normal(x.shape).astype(np.float32)
    got = ndl_fn(ndl.Tensor(x, device=device)).numpy()
    assert_close(got, torch_fn(torch.tensor(x, dtype=torch.float64)).numpy(), 1e-5, name)
    assert_close(_vjp(ndl_fn, x, upstream, device), _torch_vjp(torch_fn, x, upstream), 1e-4,
                 f"{name} gradient")


def _away_from_kinks(name, x, margin=1e-3):
    """Pixels (N, H, W) whose every piecewise branch is at least margin from its switch."""
    x = torch.tensor(x, dtype=torch.float64)
    if name == "rgb_to_lab":
        pieces = [(x, SRGB_KINK), (torch_rgb_to_t(x), LAB_EPSILON)]
    else:
        pieces = [(torch_lab_to_f(x), FINV_KINK), (torch_lab_to_lin(x), GAMMA_KINK)]
    ok = torch.ones(x.shape[0], *x.shape[2:], dtype=torch.bool)
    for value, kink in pieces:
        ok &= ((value - kink).abs() > margin * kink).all(1)
    return ok.numpy()


@pytest.mark.parametrize("name", CONVERSIONS)
def test_backward_matches_finite_differences(device, rng, name):
    ndl_fn, torch_fn = CONVERSIONS[name]
    x = _inputs(name, rng)
    upstream = rng.standard_normal(x.shape)
    # Each pixel's output depends on that pixel only, so one perturbed channel
    # across all pixels at once gives every pixel's derivative for that channel.
    h, fd = 1e-6, np.empty(x.shape)
    x64 = torch.tensor(x, dtype=torch.float64)
    for c in range(3):
        step = torch.zeros_like(x64)
        step[:, c] = h
        diff = (torch_fn(x64 + step) - torch_fn(x64 - step)).numpy() / (2 * h)
        fd[:, c] = (diff * upstream).sum(1)
    keep = _away_from_kinks(name, x)
    assert keep.mean() > 0.9
    got = _vjp(ndl_fn, x, upstream.astype(np.float32), device)
    mask = np.broadcast_to(keep[:, None], x.shape)
    assert_close(got[mask], fd[mask], 1e-4, f"{name} gradient vs finite differences")


def _kink_rgb():
    """Channel values at 0, 1, the sRGB kink, and the grey whose luminance is the Lab kink."""
    grey_kink = 1.055 * LAB_EPSILON ** (1 / 2.4) - 0.055
    values = np.array([0.0, 1.0, SRGB_KINK, grey_kink, 0.5])
    combos = np.stack(np.meshgrid(values, values, values, indexing="ij"), 0).reshape(3, -1)
    return combos.reshape(1, 3, 1, -1)


def _kink_lab():
    """L at 0, at the cube-root kink (L = 8: with a = b = 0 all three channels sit on it),
    100 and out of range; a and b far out of gamut."""
    L = np.array([0.0, 116.0 * FINV_KINK - 16.0, 100.0, -20.0, 130.0])
    ab = np.array([0.0, 60.0, 200.0, -200.0])
    combos = np.stack(np.meshgrid(L, ab, ab, indexing="ij"), 0).reshape(3, -1)
    return combos.reshape(1, 3, 1, -1)


@pytest.mark.parametrize("name,points", [("rgb_to_lab", _kink_rgb()), ("lab_to_rgb", _kink_lab())])
def test_gradient_finite_at_kinks_and_out_of_gamut(device, rng, name, points):
    ndl_fn, _ = CONVERSIONS[name]
    grad = _vjp(ndl_fn, points, rng.standard_normal(points.shape), device)
    assert np.isfinite(grad).all()
    assert np.isfinite(ndl_fn(ndl.Tensor(points, device=device)).numpy()).all()


# ---------------------------------------------------------------- kernels and errors


@pytest.mark.parametrize("name", CONVERSIONS)
def test_one_kernel_call_each_way(rng, name):
    device = counting_device()
    x = ndl.Tensor(_inputs(name, rng), device=device, requires_grad=True)
    CONVERSIONS[name][0](x).backward(ndl.Tensor(rng.standard_normal(x.shape), device=device))
    assert device.mod.calls[name] == 1
    assert device.mod.calls[name + "_vjp"] == 1


@pytest.mark.parametrize("name", CONVERSIONS)
@pytest.mark.parametrize("shape", [(1, 4, 2, 2), (3, 2, 2), (1, 1, 3, 3)], ids=str)
def test_shape_errors(device, name, shape):
    with pytest.raises(ValueError, match=rf"{name}: expected .*3 channels.* got shape "
                                         + re.escape(str(shape))):
        CONVERSIONS[name][0](ndl.Tensor(np.zeros(shape), device=device))
