"""needle.optim against torch.optim: 20-step trajectories, no graph, exact resume."""

import gc

import numpy as np
import pytest
import torch

import needle as ndl
import needle.nn as nn
from needle import autograd
from torch_compare import assert_close

STEPS = 20
CONFIGS = [
    (ndl.optim.SGD, torch.optim.SGD, dict(lr=0.1)),
    (ndl.optim.SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.9, weight_decay=0.01)),
    (ndl.optim.Adam, torch.optim.Adam, dict(lr=0.01)),
    (ndl.optim.Adam, torch.optim.Adam, dict(lr=0.02, beta1=0.8, beta2=0.99, eps=1e-6,
                                            weight_decay=0.05)),
]


def torch_kwargs(kwargs):
    out = {k: v for k, v in kwargs.items() if k not in ("beta1", "beta2")}
    if "beta1" in kwargs:
        out["betas"] = (kwargs["beta1"], kwargs["beta2"])
    return out


def make_problem(device, seed=0):
    """A small MLP and a fixed regression batch."""
    rng = np.random.default_rng(seed)
    np.random.seed(seed)
    model = nn.Sequential(nn.Linear(6, 8, device=device), nn.Tanh(), nn.Linear(8, 3, device=device))
    x = rng.standard_normal((10, 6)).astype(np.float32)
    y = rng.standard_normal((10, 3)).astype(np.float32)
    return model, ndl.Tensor(x, device=device), ndl.Tensor(y, device=device)


def train_steps(model, opt, x, y, steps):
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = nn.MSELoss()(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


@pytest.mark.parametrize("ndl_opt,torch_opt,kwargs", CONFIGS,
                         ids=["sgd", "sgd_momentum_wd", "adam", "adam_wd"])
def test_trajectory_matches_torch(device, ndl_opt, torch_opt, kwargs):
    model, x, y = make_problem(device)
    twin = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    twin.load_state_dict({k: torch.tensor(v.T if k.endswith("weight") else v)
                          for k, v in model.state_dict().items()})
    losses = train_steps(model, ndl_opt(model.parameters(), **kwargs), x, y, STEPS)

    topt = torch_opt(twin.parameters(), **torch_kwargs(kwargs))
    xt, yt = torch.tensor(x.numpy()), torch.tensor(y.numpy())
    want = []
    for _ in range(STEPS):
        topt.zero_grad()
        loss = torch.nn.functional.mse_loss(twin(xt), yt)
        loss.backward()
        topt.step()
        want.append(loss.item())
    assert_close(losses, want, 1e-4, "loss curve")
    assert losses[-1] < losses[0]
    for k, v in twin.state_dict().items():
        got = model.state_dict()[k]
        assert_close(got, v.numpy().T if k.endswith("weight") else v.numpy(), 1e-4, k)


@pytest.mark.parametrize("opt_cls", [ndl.optim.SGD, ndl.optim.Adam])
def test_steps_build_no_graph(opt_cls):
    model, x, y = make_problem(ndl.cpu_numpy())
    opt = opt_cls(model.parameters(), lr=0.01)
    train_steps(model, opt, x, y, 2)  # optimizer state exists from here on
    # Collect first: cyclic garbage left by earlier tests would otherwise be
    # freed mid-loop and move the counter for reasons of its own.
    gc.collect()
    before = autograd.TENSOR_COUNTER
    for _ in range(5):
        train_steps(model, opt, x, y, 1)
        gc.collect()
        assert autograd.TENSOR_COUNTER == before
    assert all(p.is_leaf() and p.requires_grad for p in model.parameters())


def test_zero_grad_and_params_without_grad():
    p = nn.Parameter(np.ones(3, dtype=np.float32), device=ndl.cpu_numpy())
    q = nn.Parameter(np.ones(2, dtype=np.float32), device=ndl.cpu_numpy())
    opt = ndl.optim.Adam([p, q, p], lr=0.1)
    assert len(opt.params) == 2  # the repeated parameter is updated once
    (p * p).sum().backward()
    opt.step()
    assert not np.allclose(p.numpy(), 1) and np.array_equal(q.numpy(), np.ones(2))
    opt.zero_grad()
    assert p.grad is None and q.grad is None


@pytest.mark.parametrize("ndl_opt,torch_opt,kwargs", CONFIGS[1:3], ids=["sgd_momentum", "adam"])
def test_resume_from_saved_state_is_exact(tmp_path, ndl_opt, torch_opt, kwargs):
    device = ndl.cpu_numpy()
    model, x, y = make_problem(device)
    opt = ndl_opt(model.parameters(), **kwargs)
    straight = train_steps(model, opt, x, y, 8)

    model, x, y = make_problem(device)
    opt = ndl_opt(model.parameters(), **kwargs)
    first = train_steps(model, opt, x, y, 4)
    ndl.save({"model": model.state_dict(), "optim": opt.state_dict()}, tmp_path / "ckpt.npz")

    model = make_problem(device, seed=1)[0]  # other weights, overwritten by the checkpoint
    ckpt = ndl.load(tmp_path / "ckpt.npz")
    model.load_state_dict(ckpt["model"])
    opt = ndl_opt(model.parameters(), lr=123.0)  # hyperparameters come back too
    opt.load_state_dict(ckpt["optim"])
    assert opt.lr == kwargs["lr"]
    assert first + train_steps(model, opt, x, y, 4) == straight


def test_load_state_dict_errors():
    model, _, _ = make_problem(ndl.cpu_numpy())
    opt = ndl.optim.Adam(model.parameters())
    for p in model.parameters():
        p.grad = ndl.Tensor(np.ones(p.shape), device=p.device)
    opt.step()
    state = opt.state_dict()
    with pytest.raises(ValueError, match="for optimizer 'Adam', not SGD"):
        ndl.optim.SGD(model.parameters()).load_state_dict(state)
    with pytest.raises(ValueError, match="the optimizer has 2 parameters"):
        ndl.optim.Adam(model.parameters()[:2]).load_state_dict(state)
    bad = {**state, "state": {**state["state"], "0": {**state["state"]["0"],
                                                      "exp_avg": np.zeros((1, 1))}}}
    with pytest.raises(ValueError, match=r"'exp_avg' of parameter 0 has shape \(1, 1\)"):
        ndl.optim.Adam(model.parameters()).load_state_dict(bad)
