"""needle.nn against torch.nn: same weights -> same outputs, input and parameter gradients."""

import numpy as np
import pytest
import torch

import needle as ndl
import needle.nn as nn
from torch_compare import assert_close, other_device


def copy_weights(ndl_module, torch_module):
    """Load needle's state_dict into the torch twin (names match; Linear weights transpose)."""
    transposed = {".".join(filter(None, [name, "weight"]))
                  for name, m in torch_module.named_modules() if isinstance(m, torch.nn.Linear)}
    state = {k: torch.tensor(v.T if k in transposed else v)
             for k, v in ndl_module.state_dict().items()}
    missing, unexpected = torch_module.load_state_dict(state, strict=False)
    assert not unexpected and all(k.endswith("num_batches_tracked") for k in missing), \
        (missing, unexpected)
    return transposed


def check_module(ndl_module, torch_module, x, device, rtol=1e-5, seed=0):
    """Forward, then backward of a random upstream grad: output, dx and every dparam agree."""
    transposed = copy_weights(ndl_module, torch_module)
    xn = ndl.Tensor(x, device=device, requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    yn, yt = ndl_module(xn), torch_module(xt)
    assert_close(yn.numpy(), yt.detach().numpy(), rtol, "output")
    g = np.random.default_rng(seed).standard_normal(yt.shape).astype(np.float32)
    yn.backward(ndl.Tensor(g, device=device))
    yt.backward(torch.tensor(g))
    assert_close(xn.grad.numpy(), xt.grad.numpy(), rtol, "input gradient")
    torch_params = dict(torch_module.named_parameters())
    for name, p in ndl_module.named_parameters():
        want = torch_params[name].grad.numpy()
        want = want.T if name in transposed else want
        assert_close(p.grad.numpy(), want, rtol, f"grad of {name}")
    return yn


# Device-free tests (module machinery, initialisation) run on the numpy reference.
REF = ndl.cpu_numpy()


def randn(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


# ------------------------------------------------------------ layers vs torch


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("batch_shape", [(4,), (2, 3)])
def test_linear(device, rng, bias, batch_shape):
    check_module(nn.Linear(7, 5, bias=bias, device=device), torch.nn.Linear(7, 5, bias=bias),
                 randn(rng, *batch_shape, 7), device)


@pytest.mark.parametrize("cin,cout,k,stride,padding,hw,bias", [
    (3, 4, 3, 1, 1, (7, 9), True),
    (2, 5, 3, 2, 0, (9, 8), True),
    (4, 3, 1, 1, 0, (5, 5), False),
    (3, 2, 5, 2, 2, (11, 10), True),
])
def test_conv2d(device, rng, cin, cout, k, stride, padding, hw, bias):
    check_module(nn.Conv2d(cin, cout, k, stride=stride, padding=padding, bias=bias, device=device),
                 torch.nn.Conv2d(cin, cout, k, stride=stride, padding=padding, bias=bias),
                 randn(rng, 2, cin, *hw), device, rtol=1e-4)


@pytest.mark.parametrize("ndl_cls,torch_cls", [
    (nn.ReLU, torch.nn.ReLU), (nn.Sigmoid, torch.nn.Sigmoid), (nn.Tanh, torch.nn.Tanh),
    (nn.Identity, torch.nn.Identity), (nn.Flatten, torch.nn.Flatten),
])
def test_stateless_layers(device, rng, ndl_cls, torch_cls):
    check_module(ndl_cls(), torch_cls(), randn(rng, 3, 2, 5), device)


def test_upsample(device, rng):
    check_module(nn.Upsample(scale=2), torch.nn.Upsample(scale_factor=2, mode="nearest"),
                 randn(rng, 2, 3, 4, 5), device)


def test_sequential_residual(device, rng):
    net = nn.Sequential(nn.Linear(6, 6, device=device), nn.ReLU(),
                        nn.Residual(nn.Sequential(nn.Linear(6, 6, device=device), nn.Tanh())))

    class TorchResidual(torch.nn.Module):
        def __init__(self, fn):
            super().__init__()
            self.fn = fn

        def forward(self, x):
            return self.fn(x) + x

    twin = torch.nn.Sequential(torch.nn.Linear(6, 6), torch.nn.ReLU(),
                               TorchResidual(torch.nn.Sequential(torch.nn.Linear(6, 6),
                                                                 torch.nn.Tanh())))
    check_module(net, twin, randn(rng, 5, 6), device)


@pytest.mark.parametrize("ndl_cls,torch_cls,shape", [
    (nn.BatchNorm1d, torch.nn.BatchNorm1d, (6, 4)),
    (nn.BatchNorm2d, torch.nn.BatchNorm2d, (3, 4, 5, 3)),
])
def test_batchnorm_train_then_eval(device, rng, ndl_cls, torch_cls, shape):
    layer, twin = ndl_cls(4, momentum=0.2, device=device), torch_cls(4, momentum=0.2)
    layer.load_state_dict({**layer.state_dict(), "weight": randn(rng, 4), "bias": randn(rng, 4)})
    for step in range(2):  # running stats move twice; each step is compared
        x = randn(rng, *shape) * 3 + 1
        check_module(layer, twin, x, device, rtol=1e-4, seed=step)
        assert_close(layer.running_mean.numpy(), twin.running_mean.numpy(), 1e-5, "running_mean")
        assert_close(layer.running_var.numpy(), twin.running_var.numpy(), 1e-5, "running_var")
    layer.eval()
    twin.eval()
    check_module(layer, twin, randn(rng, *shape), device, rtol=1e-4)


def test_batchnorm_running_stats_build_no_graph(device, rng):
    layer = nn.BatchNorm2d(3, device=device)
    layer(ndl.Tensor(randn(rng, 2, 3, 4, 4), device=device, requires_grad=True))
    assert layer.running_mean.is_leaf() and not layer.running_mean.requires_grad
    assert layer.running_var.is_leaf() and not layer.running_var.requires_grad


def test_layernorm(device, rng):
    layer = nn.LayerNorm1d(6, device=device)
    layer.load_state_dict({"weight": randn(rng, 6), "bias": randn(rng, 6)})
    check_module(layer, torch.nn.LayerNorm(6), randn(rng, 4, 6) * 2 + 1, device, rtol=1e-4)


# ------------------------------------------------------------ dropout


def test_dropout_train_scales_survivors_and_eval_is_identity(device, rng):
    np.random.seed(0)
    x = ndl.Tensor(randn(rng, 40, 50) + 5, device=device, requires_grad=True)
    layer = nn.Dropout(0.3)
    y = layer(x)
    kept = y.numpy() != 0
    assert abs(kept.mean() - 0.7) < 0.03
    np.testing.assert_allclose(y.numpy()[kept], x.numpy()[kept] / 0.7, rtol=1e-6)
    y.backward(ndl.Tensor(np.ones(x.shape), device=device))
    np.testing.assert_allclose(x.grad.numpy(), kept / 0.7, rtol=1e-6)
    layer.eval()
    assert layer(x) is x
    assert nn.Dropout(0.0)(x) is x
    assert not nn.Dropout(1.0)(x).numpy().any()
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        nn.Dropout(1.5)


# ------------------------------------------------------------ losses


def test_softmax_loss(device, rng):
    logits = randn(rng, 5, 7) * 3
    labels = rng.integers(0, 7, 5)
    for y in (labels, ndl.Tensor(labels, device=device)):  # numpy ints or a Tensor of floats
        check = torch.tensor(logits, requires_grad=True)
        want = torch.nn.functional.cross_entropy(check, torch.tensor(labels))
        want.backward()
        z = ndl.Tensor(logits, device=device, requires_grad=True)
        loss = nn.SoftmaxLoss()(z, y)
        loss.backward()
        assert_close(loss.numpy(), want.detach().numpy(), 1e-5, "loss")
        assert_close(z.grad.numpy(), check.grad.numpy(), 1e-5, "logits gradient")
    with pytest.raises(ValueError, match="labels"):
        nn.SoftmaxLoss()(ndl.Tensor(logits, device=device), labels[:3])


@pytest.mark.parametrize("ndl_cls,torch_fn", [(nn.L1Loss, torch.nn.functional.l1_loss),
                                              (nn.MSELoss, torch.nn.functional.mse_loss)])
def test_regression_losses(device, rng, ndl_cls, torch_fn):
    pred, target = randn(rng, 3, 4, 5), randn(rng, 3, 4, 5)
    p = ndl.Tensor(pred, device=device, requires_grad=True)
    t = torch.tensor(pred, requires_grad=True)
    loss, want = ndl_cls()(p, ndl.Tensor(target, device=device)), torch_fn(t, torch.tensor(target))
    loss.backward()
    want.backward()
    assert_close(loss.numpy(), want.detach().numpy(), 1e-5, "loss")
    assert_close(p.grad.numpy(), t.grad.numpy(), 1e-5, "gradient")
    with pytest.raises(ValueError, match=r"target shape \(3, 4\) does not match"):
        ndl_cls()(p, target[:, :, 0])


# ------------------------------------------------------------ initialisation


@pytest.mark.parametrize("make,fan_in", [
    (lambda: nn.Conv2d(16, 32, 3, device=REF), 16 * 9),
    (lambda: nn.Linear(200, 100, device=REF), 200),
])
def test_default_init_matches_torch(make, fan_in):
    """weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)), torch's default."""
    np.random.seed(0)
    layer = make()
    bound = 1 / np.sqrt(fan_in)
    for p in (layer.weight.numpy(), layer.bias.numpy()):
        assert p.dtype == np.float32 and np.abs(p).max() <= bound
    w = layer.weight.numpy()
    assert abs(w.std() - bound / np.sqrt(3)) < 0.05 * bound
    assert np.abs(w).max() > 0.95 * bound


def test_conv2d_defaults_like_torch():
    conv = nn.Conv2d(3, 8, 3, device=REF)
    assert (conv.stride, conv.padding, conv.kernel_size) == (1, 0, (3, 3))
    assert conv(ndl.Tensor(np.zeros((1, 3, 5, 5)), device=conv.weight.device)).shape == (1, 8, 3, 3)


# ------------------------------------------------------------ Module machinery


class Block(nn.Module):
    def __init__(self, shared):
        super().__init__()
        self.first = shared
        self.layers = [nn.Linear(3, 4, device=REF), {"norm": nn.BatchNorm1d(4, device=REF)}]
        self.again = shared  # the same module twice: its parameters count once


def test_parameters_children_modules_in_definition_order():
    shared = nn.Linear(3, 3, device=REF)
    block = Block(shared)
    names = [n for n, _ in block.named_parameters()]
    assert names == ["first.weight", "first.bias", "layers.0.weight", "layers.0.bias",
                     "layers.1.norm.weight", "layers.1.norm.bias"]
    assert len(block.parameters()) == 6
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in block.parameters())
    assert [type(c).__name__ for c in block.children()] == ["Linear", "Linear", "BatchNorm1d",
                                                             "Linear"]
    assert [type(m).__name__ for m in block.modules()] == ["Block", "Linear", "Linear",
                                                            "BatchNorm1d"]
    assert [n for n, _ in block.named_buffers()] == ["layers.1.norm.running_mean",
                                                     "layers.1.norm.running_var"]


def test_train_eval_recurse():
    net = nn.Sequential(nn.Linear(2, 2, device=REF),
                        nn.Sequential(nn.Dropout(0.5), nn.BatchNorm1d(2, device=REF)))
    net.eval()
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())
    assert len(net) == 2 and isinstance(net[1][1], nn.BatchNorm1d)


def test_state_dict_round_trip_keeps_parameter_objects(device, rng):
    net = nn.Sequential(nn.Conv2d(2, 3, 3, device=device), nn.BatchNorm2d(3, device=device))
    state = {k: randn(rng, *v.shape) for k, v in net.state_dict().items()}
    assert set(state) == {"0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean",
                          "1.running_var"}
    params = net.parameters()
    net.load_state_dict({k: ndl.Tensor(v, device=device) for k, v in state.items()})
    assert all(a is b for a, b in zip(params, net.parameters()))
    for k, v in net.state_dict().items():
        assert v.dtype == np.float32
        np.testing.assert_array_equal(v, state[k])
        assert dict(net.named_parameters() + net.named_buffers())[k].device == device


def test_load_state_dict_errors():
    net = nn.Sequential(nn.Linear(3, 2, device=REF), nn.BatchNorm1d(2, device=REF))
    state = net.state_dict()
    with pytest.raises(ValueError, match=r"missing keys \['1.running_var'\], unexpected keys "
                                         r"\['extra'\]"):
        net.load_state_dict({**{k: v for k, v in state.items() if k != "1.running_var"},
                             "extra": np.zeros(1)})
    with pytest.raises(ValueError, match=r"0.weight: expected \(3, 2\), got \(2, 3\)"):
        net.load_state_dict({**state, "0.weight": np.zeros((2, 3))})
    with pytest.raises(TypeError, match="must be an array"):
        net.load_state_dict({**state, "0.bias": [1.0, 2.0]})
    missing, unexpected = net.load_state_dict({"0.bias": np.ones(2), "zzz": np.ones(1)},
                                              strict=False)
    assert "0.weight" in missing and unexpected == ["zzz"]
    np.testing.assert_array_equal(net[0].bias.numpy(), np.ones(2))


def test_to_moves_parameters_and_buffers():
    net = nn.Sequential(nn.Linear(3, 2, device=REF), nn.BatchNorm1d(2, device=REF))
    target = other_device()
    before = net.state_dict()
    assert net.to(target) is net
    for _, t in net.named_parameters() + net.named_buffers():
        assert t.device == target
    for k, v in net.state_dict().items():
        np.testing.assert_array_equal(v, before[k])
    assert net(ndl.Tensor(np.ones((4, 3)), device=target)).device == target


@pytest.mark.parametrize("layer,shape,message", [
    (lambda: nn.Linear(5, 3, device=REF), (2, 4), r"in_features=5, got shape \(2, 4\)"),
    (lambda: nn.Conv2d(3, 4, 3, device=REF), (1, 2, 8, 8), r"3 channels, got shape \(1, 2, 8, 8\)"),
    (lambda: nn.Conv2d(3, 4, 3, device=REF), (3, 8, 8), r"3 channels, got shape \(3, 8, 8\)"),
    (lambda: nn.BatchNorm2d(3, device=REF), (2, 4, 5, 5),
     r"3 channels on axis 1, got shape \(2, 4, 5, 5\)"),
    (lambda: nn.BatchNorm1d(3, device=REF), (1, 3), r"more than one value per channel"),
    (lambda: nn.LayerNorm1d(3, device=REF), (2, 4), r"last dimension of 3, got shape \(2, 4\)"),
])
def test_wrong_input_shapes_say_expected_and_got(layer, shape, message):
    module = layer()
    with pytest.raises(ValueError, match=message):
        module(ndl.Tensor(np.zeros(shape), device=module.weight.device))
