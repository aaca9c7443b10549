"""ColorizationNet: the architecture of issue 3 section 2, its shapes and its errors."""

import numpy as np
import pytest

import needle as ndl
from colorization.model import ColorizationNet, ConvBlock, UpConvBlock

# (name, shape) of every parameter: the seed's attribute names, 3x3 convs,
# decoder inputs widened by the concatenated skips.
EXPECTED = {
    "enc1.conv.weight": (64, 1, 3, 3), "enc2.conv.weight": (128, 64, 3, 3),
    "enc3.conv.weight": (256, 128, 3, 3), "enc4.conv.weight": (512, 256, 3, 3),
    "bottleneck.conv.weight": (512, 512, 3, 3),
    "dec1.block.conv.weight": (256, 512, 3, 3), "dec2.block.conv.weight": (128, 512, 3, 3),
    "dec3.block.conv.weight": (64, 256, 3, 3), "final.weight": (2, 128, 3, 3),
}


def test_parameters_follow_the_specification():
    shapes = {name: p.shape for name, p in ColorizationNet(device=ndl.cpu_numpy()).named_parameters()}
    for name, shape in EXPECTED.items():
        assert shapes[name] == shape, name
        assert shapes[name.replace("weight", "bias")] == shape[:1]
    assert len(shapes) == 2 * len(EXPECTED)


@pytest.mark.parametrize("h,w", [(8, 8), (16, 24)])
def test_any_size_divisible_by_8(device, rng, h, w):
    np.random.seed(0)
    net = ColorizationNet(device=device)
    out = net(ndl.Tensor(rng.random((2, 1, h, w)).astype(np.float32), device=device))
    assert out.shape == (2, 2, h, w)
    assert np.isfinite(out.numpy()).all()


def test_clear_errors_for_bad_inputs(rng):
    net = ColorizationNet(device=ndl.cpu_numpy())
    with pytest.raises(ValueError, match="divisible by 8"):
        net(ndl.Tensor(rng.random((1, 1, 12, 16)).astype(np.float32), device=ndl.cpu_numpy()))
    with pytest.raises(ValueError, match=r"\(N, 1, H, W\)"):
        net(ndl.Tensor(rng.random((1, 3, 16, 16)).astype(np.float32), device=ndl.cpu_numpy()))


def test_skips_carry_the_input_past_a_dead_bottleneck(rng):
    """With the bottleneck zeroed, only the concatenated skips can make the output depend on the input."""
    dev = ndl.cpu_numpy()
    np.random.seed(1)
    net = ColorizationNet(device=dev)
    net.bottleneck.conv.weight.data = ndl.Tensor(np.zeros((512, 512, 3, 3), np.float32), device=dev)
    net.bottleneck.conv.bias.data = ndl.Tensor(np.zeros(512, np.float32), device=dev)
    a, b = (net(ndl.Tensor(rng.random((1, 1, 8, 8)).astype(np.float32), device=dev)).numpy() for _ in range(2))
    assert not np.allclose(a, b)


def test_batch_norm_option(fast_device, rng):
    np.random.seed(0)
    net = ColorizationNet(batch_norm=True, device=fast_device)
    state = net.state_dict()
    assert "enc1.norm.running_mean" in state and "enc1.conv.bias" not in state
    assert "final.bias" in state  # the last conv has no norm after it
    x = ndl.Tensor(rng.random((2, 1, 8, 8)).astype(np.float32), device=fast_device)
    train_out = net(x).numpy()
    net.eval()
    assert net(x).shape == (2, 2, 8, 8) and not np.allclose(net(x).numpy(), train_out)
    assert net.config == {"batch_norm": True, "upsample_mode": "nearest"}


def test_blocks(rng):
    dev = ndl.cpu_numpy()
    x = ndl.Tensor(rng.standard_normal((1, 4, 6, 6)).astype(np.float32), device=dev)
    assert ConvBlock(4, 5, stride=2, device=dev)(x).shape == (1, 5, 3, 3)
    up = UpConvBlock(4, 3, device=dev)(x).numpy()
    assert up.shape == (1, 3, 12, 12) and up.min() >= 0  # ReLU after the conv
