"""CombinedLoss: SSIM against scikit-image, the perceptual term, and finiteness on any input."""

import numpy as np
import pytest
from skimage.metrics import structural_similarity

import needle as ndl
from colorization.features import CifarClassifier, RandomFeatureNet, feature_net, freeze, random_feature_weights
from colorization.losses import CombinedLoss, ssim
from colorization.metrics import ssim_per_image
from colorization_helpers import save_tiny_classifier


def tensor(a, device, requires_grad=False):
    return ndl.Tensor(np.asarray(a, dtype=np.float32), device=device, requires_grad=requires_grad)


@pytest.mark.parametrize("h,w", [(11, 11), (16, 24)])
def test_ssim_matches_skimage(device, rng, h, w):
    x, y = rng.random((2, 3, h, w)), rng.random((2, 3, h, w))
    y[1] = np.clip(x[1] + rng.normal(0, 0.05, x[1].shape), 0, 1)
    want = np.mean([structural_similarity(a.transpose(1, 2, 0), b.transpose(1, 2, 0), gaussian_weights=True,
                                          sigma=1.5, use_sample_covariance=False, data_range=1.0, channel_axis=2)
                    for a, b in zip(x, y)])
    got = ssim(tensor(x, device), tensor(y, device)).item()
    assert got == pytest.approx(want, abs=1e-4)
    assert got == pytest.approx(ssim_per_image(x, y).mean(), abs=1e-4)


def test_ssim_refuses_small_images():
    x = tensor(np.zeros((1, 3, 10, 12)), ndl.cpu_numpy())
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(x, x)


def special_batches(rng, h=16):
    """(name, L, ab_true, ab_pred): the inputs that break naive colour losses."""
    zeros = np.zeros((2, 2, h, h))
    L_rand = rng.random((2, 1, h, h))
    return [
        ("black", np.zeros((2, 1, h, h)), zeros, zeros),
        ("white", np.ones((2, 1, h, h)), zeros, zeros),
        ("grey", np.full((2, 1, h, h), 0.5), zeros, zeros + 1e-9),
        ("black, wild prediction", np.zeros((2, 1, h, h)), zeros, rng.normal(0, 3, zeros.shape)),
        ("white, wild prediction", np.ones((2, 1, h, h)), zeros, rng.normal(0, 3, zeros.shape)),
        ("random", L_rand, rng.normal(0, 0.3, zeros.shape), rng.normal(0, 0.3, zeros.shape)),
        ("exact", L_rand, zeros + 0.1, zeros + 0.1),
    ]


@pytest.mark.parametrize("case", range(7))
def test_no_nan_or_inf_in_any_term_or_gradient(fast_device, rng, case):
    name, L, ab_true, ab_pred = special_batches(rng)[case]
    pred = tensor(ab_pred, fast_device, requires_grad=True)
    total, terms = CombinedLoss()(pred, tensor(ab_true, fast_device), tensor(L, fast_device))
    total.backward()
    for term, value in terms.items():
        assert np.isfinite(value.item()), f"{name}: {term} = {value.item()}"
    assert np.isfinite(pred.grad.numpy()).all(), name
    if name == "exact":
        assert terms["l1"].item() == pytest.approx(0, abs=1e-7)
        assert terms["ssim"].item() == pytest.approx(0, abs=1e-5)
        assert terms["perceptual"].item() == pytest.approx(0, abs=1e-6)


def test_no_nan_on_the_reference_backend(rng):
    dev = ndl.cpu_numpy()
    for name, L, ab_true, ab_pred in special_batches(rng, h=11)[:5]:
        pred = tensor(ab_pred[:1], dev, requires_grad=True)
        total, _ = CombinedLoss()(pred, tensor(ab_true[:1], dev), tensor(L[:1], dev))
        total.backward()
        assert np.isfinite(total.item()) and np.isfinite(pred.grad.numpy()).all(), name


def test_total_is_the_weighted_sum_and_zero_weights_cost_no_gradient(fast_device, rng):
    L = tensor(rng.random((2, 1, 16, 16)), fast_device)
    ab_true = tensor(rng.normal(0, 0.2, (2, 2, 16, 16)), fast_device)
    ab_pred = tensor(rng.normal(0, 0.2, (2, 2, 16, 16)), fast_device, requires_grad=True)
    total, terms = CombinedLoss(1.0, 0.1, 0.05)(ab_pred, ab_true, L)
    want = terms["l1"].item() + 0.1 * terms["ssim"].item() + 0.05 * terms["perceptual"].item()
    assert total.item() == pytest.approx(want, rel=1e-5)

    l1_only, terms_l1 = CombinedLoss(1.0, 0.0, 0.0)(ab_pred, ab_true, L)
    assert l1_only.item() == pytest.approx(terms["l1"].item(), rel=1e-6)
    assert terms_l1["ssim"].item() == pytest.approx(terms["ssim"].item(), rel=1e-5)  # still logged
    l1_only.backward()
    # d mean|p - t| / dp = sign(p - t) / size: the SSIM and perceptual terms added nothing.
    want_grad = np.sign(ab_pred.numpy() - ab_true.numpy()) / ab_pred.size
    np.testing.assert_allclose(ab_pred.grad.numpy(), want_grad, rtol=1e-5, atol=1e-12)
    with pytest.raises(ValueError, match="non-zero weight"):
        CombinedLoss(0, 0, 0)


def test_feature_net_is_frozen_and_seeded(fast_device, rng):
    net = freeze(RandomFeatureNet(seed=3, device=fast_device))
    assert all(not p.requires_grad for p in net.parameters())
    state = net.state_dict()
    for key, value in random_feature_weights(3).items():
        np.testing.assert_array_equal(state[key], value)
    assert not np.array_equal(random_feature_weights(4)["conv1.weight"], state["conv1.weight"])

    L = tensor(rng.random((1, 1, 16, 16)), fast_device)
    ab_pred = tensor(rng.normal(0, 0.2, (1, 2, 16, 16)), fast_device, requires_grad=True)
    total, _ = CombinedLoss(0.0, 0.0, 1.0, feature_net=net)(ab_pred, tensor(np.zeros((1, 2, 16, 16)), fast_device), L)
    total.backward()
    assert all(p.grad is None for p in net.parameters())
    assert np.abs(ab_pred.grad.numpy()).max() > 0
    assert net(tensor(rng.random((1, 3, 16, 16)), fast_device)).shape == (1, 64, 8, 8)


def test_classifier_features_drive_the_perceptual_term(tmp_path, rng):
    net = feature_net(save_tiny_classifier(tmp_path / "classifier.pkl"), ndl.cpu())
    assert isinstance(net, CifarClassifier) and not net.training
    L = tensor(rng.random((2, 1, 16, 16)), ndl.cpu())
    ab_pred = tensor(rng.normal(0, 0.2, (2, 2, 16, 16)), ndl.cpu(), requires_grad=True)
    total, terms = CombinedLoss(0.0, 0.0, 1.0, feature_net=net)(ab_pred, tensor(np.zeros((2, 2, 16, 16)), ndl.cpu()), L)
    total.backward()
    assert terms["perceptual"].item() > 0 and np.abs(ab_pred.grad.numpy()).max() > 0
    assert all(p.grad is None for p in net.parameters())
    assert net.features(tensor(rng.random((1, 3, 16, 16)), ndl.cpu())).shape == (1, 4, 8, 8)
