"""The autograd engine: graph order, accumulation, detach, no_grad, requires_grad, freed graphs."""

import gc

import numpy as np
import pytest

import needle as ndl
from needle import autograd


def tensor(device, values, requires_grad=True):
    return ndl.Tensor(np.asarray(values, dtype=np.float32), device=device,
                      requires_grad=requires_grad)


def test_topological_order_visits_inputs_first(device):
    a = tensor(device, [1.0, 2.0])
    b = ndl.exp(a)
    c = b * a
    d = c + b
    order = autograd.find_topo_sort([d])
    position = {id(n): i for i, n in enumerate(order)}
    for node in order:
        for inp in node.inputs:
            assert position[id(inp)] < position[id(node)]
    assert [id(n) for n in order].count(id(b)) == 1


def test_diamond_graph_gradient(device):
    # d = exp(a) * a + exp(a): a reaches d along three paths.
    a = tensor(device, [0.5, -1.0])
    b = ndl.exp(a)
    (b * a + b).backward(tensor(device, [1.0, 2.0], False))
    x = np.array([0.5, -1.0])
    np.testing.assert_allclose(a.grad.numpy(), np.array([1.0, 2.0]) * np.exp(x) * (x + 2.0),
                               rtol=1e-6)


def test_gradient_accumulates_across_uses(device):
    x = tensor(device, [3.0])
    (x * x * x + x).backward()  # 3x^2 + 1
    np.testing.assert_allclose(x.grad.numpy(), [28.0])


def test_deep_chain_does_not_recurse(device):
    x = tensor(device, [1.0])
    y = x
    for _ in range(3000):
        y = y + 0.001
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), [1.0])


def test_backward_twice_accumulates(device):
    x = tensor(device, [1.0, 2.0])
    w = tensor(device, [3.0, -1.0])
    (x * w).sum().backward()
    (x * w).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [6.0, -2.0])
    np.testing.assert_allclose(w.grad.numpy(), [2.0, 4.0])


def test_backward_default_and_explicit_out_grad(device):
    x = tensor(device, [1.0, 2.0])
    (x * 2.0).backward()
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 2.0])
    with pytest.raises(ValueError, match=r"out_grad has shape \(3,\)"):
        (x * 2.0).backward(tensor(device, [1.0, 1.0, 1.0], False))


def test_detach_cuts_the_graph(device):
    x = tensor(device, [2.0])
    y = x * x
    z = y.detach() * x  # d/dx = y = 4, not 3x^2 = 12
    assert y.detach().requires_grad is False and y.detach().is_leaf()
    z.backward()
    np.testing.assert_allclose(x.grad.numpy(), [4.0])


def test_no_grad_records_nothing(device):
    x = tensor(device, [1.0])
    with ndl.no_grad():
        y = ndl.exp(x) * 2.0
        assert not ndl.is_grad_enabled()
    assert ndl.is_grad_enabled()
    assert y.requires_grad is False and y.is_leaf() and y.inputs == ()
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.backward()


def test_no_grad_restored_after_exception(device):
    with pytest.raises(KeyError):
        with ndl.no_grad():
            raise KeyError
    assert ndl.is_grad_enabled()


def test_requires_grad_propagates(device):
    a = tensor(device, [1.0], requires_grad=False)
    b = tensor(device, [1.0], requires_grad=True)
    assert (a + a).requires_grad is False
    assert (a + b).requires_grad is True
    assert ndl.exp(a * b).requires_grad is True
    c = a + b
    c.backward()
    assert a.grad is None and b.grad is not None


def test_grads_are_not_graphs(device):
    x = tensor(device, [1.0, 2.0])
    (ndl.exp(x) * x).sum().backward()
    assert x.grad.is_leaf() and not x.grad.requires_grad


def test_create_graph_gives_second_derivative(device):
    x = tensor(device, [0.5, 2.0])
    (x * x * x).sum().backward(create_graph=True)
    first = x.grad
    np.testing.assert_allclose(first.numpy(), 3.0 * np.array([0.25, 4.0]), rtol=1e-6)
    x.grad = None
    first.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 12.0], rtol=1e-6)


def test_live_tensors_do_not_grow_over_training_steps(device, rng):
    x = ndl.Tensor(rng.standard_normal((8, 5)), device=device)
    w = ndl.Tensor(rng.standard_normal((5, 3)), device=device, requires_grad=True)

    def step():
        loss = ndl.relu(x @ w).sum()
        loss.backward()
        with ndl.no_grad():
            w.data = w.data - w.grad * 0.01
        w.grad = None
        return loss.item()

    for _ in range(3):
        step()
    gc.collect()
    before = autograd.TENSOR_COUNTER
    losses = [step() for _ in range(50)]
    gc.collect()
    assert autograd.TENSOR_COUNTER <= before, (before, autograd.TENSOR_COUNTER)
    assert losses[-1] < losses[0]


def test_counter_survives_failed_construction(device):
    gc.collect()
    before = autograd.TENSOR_COUNTER
    for _ in range(3):
        with pytest.raises(TypeError):
            ndl.Tensor([1.0], device=device, dtype="float64")
    gc.collect()
    assert autograd.TENSOR_COUNTER == before


def test_ops_reject_non_tensors(device):
    with pytest.raises(TypeError, match="takes Tensors"):
        ndl.add(tensor(device, [1.0]), np.ones(1))
