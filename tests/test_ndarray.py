"""NDArray views and reductions against numpy semantics (hypothesis), on every device.

NDArray keeps integer-indexed axes as size 1 (course semantics), so the numpy
reference indexes with slice(i, i + 1) where NDArray gets the int i.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from needle.backend_ndarray import NDArray

SETTINGS = settings(max_examples=25, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])

shapes = st.lists(st.integers(1, 5), min_size=1, max_size=4).map(tuple)


@st.composite
def arrays(draw, shape=None):
    shape = draw(shapes) if shape is None else shape
    seed = draw(st.integers(0, 2 ** 16))
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


@st.composite
def index_for(draw, n):
    """One index for an axis of length n: an int (possibly negative) or a slice."""
    if draw(st.booleans()) and n > 0 and draw(st.booleans()):
        return draw(st.integers(-n, n - 1))
    bound = st.none() | st.integers(-n - 2, n + 2)
    return slice(draw(bound), draw(bound), draw(st.none() | st.integers(1, 3)))


@st.composite
def indices(draw, shape):
    count = draw(st.integers(1, len(shape)))
    idx = tuple(draw(index_for(n)) for n in shape[:count])
    return idx[0] if count == 1 and draw(st.booleans()) else idx


def numpy_index(idx, shape):
    """The numpy index that keeps integer-indexed axes as size 1."""
    idx = idx if isinstance(idx, tuple) else (idx,)
    return tuple(slice(i % n, i % n + 1) if isinstance(i, int) else i for i, n in zip(idx, shape))


@st.composite
def permutations(draw, ndim):
    return tuple(draw(st.permutations(range(ndim))))


def nd(x, device):
    return NDArray(x, device=device)


@SETTINGS
@given(data=st.data())
def test_roundtrip_and_compact(device, data):
    x = data.draw(arrays())
    a = nd(x, device)
    assert a.shape == x.shape and a.is_compact()
    np.testing.assert_array_equal(a.numpy(), x)
    assert a.compact() is a


@SETTINGS
@given(data=st.data())
def test_reshape(device, data):
    x = data.draw(arrays())
    perm = data.draw(permutations(x.ndim))
    new = data.draw(st.permutations(list(x.shape)))  # same size, other factorisation
    a = nd(x, device).permute(perm)  # reshape of a non-compact view must compact first
    np.testing.assert_array_equal(a.reshape(new).numpy(), x.transpose(perm).reshape(new))
    np.testing.assert_array_equal(a.reshape((-1,)).numpy(), x.transpose(perm).reshape(-1))


@SETTINGS
@given(data=st.data())
def test_permute_and_compact(device, data):
    x = data.draw(arrays())
    perm = data.draw(permutations(x.ndim))
    a = nd(x, device).permute(perm)
    c = a.compact()
    assert c.is_compact() and c.shape == x.transpose(perm).shape
    np.testing.assert_array_equal(c.numpy(), x.transpose(perm))
    np.testing.assert_array_equal(a.numpy(), x.transpose(perm))


@SETTINGS
@given(data=st.data())
def test_broadcast_to(device, data):
    x = data.draw(arrays())
    x = x[tuple(slice(0, 1) if data.draw(st.booleans()) else slice(None) for _ in x.shape)]
    lead = tuple(data.draw(st.lists(st.integers(1, 3), max_size=2)))
    target = lead + tuple(data.draw(st.integers(1, 4)) if n == 1 else n for n in x.shape)
    a = nd(x, device).broadcast_to(target)
    np.testing.assert_array_equal(a.numpy(), np.broadcast_to(x, target))
    np.testing.assert_array_equal(a.compact().numpy(), np.broadcast_to(x, target))


@SETTINGS
@given(data=st.data())
def test_getitem_views_of_views(device, data):
    x = data.draw(arrays())
    idx = data.draw(indices(x.shape))
    a = nd(x, device)[idx]
    want = x[numpy_index(idx, x.shape)]
    np.testing.assert_array_equal(a.numpy(), want)
    idx2 = data.draw(indices(want.shape))
    np.testing.assert_array_equal(a[idx2].numpy(), want[numpy_index(idx2, want.shape)])


@SETTINGS
@given(data=st.data())
def test_setitem(device, data):
    x = data.draw(arrays())
    perm = data.draw(permutations(x.ndim))
    base, want = nd(x, device), x.copy()
    view, want_view = base.permute(perm), want.transpose(perm)  # writes go through the view
    idx = data.draw(indices(want_view.shape))
    slot = want_view[numpy_index(idx, want_view.shape)]
    if data.draw(st.booleans()):
        value = data.draw(arrays(slot.shape))
        view[idx] = nd(value, device)
    else:
        value = data.draw(st.floats(-5, 5, width=32))
        view[idx] = value
    slot[...] = value
    np.testing.assert_array_equal(base.numpy(), want)


@SETTINGS
@given(data=st.data())
def test_flip(device, data):
    x = data.draw(arrays())
    axes = tuple(data.draw(st.sets(st.integers(0, x.ndim - 1), min_size=1)))
    a = nd(x, device)[::2] if data.draw(st.booleans()) else nd(x, device)
    ref = x[::2] if a.shape != x.shape else x
    np.testing.assert_array_equal(a.flip(axes).numpy(), np.flip(ref, axes))


@SETTINGS
@given(data=st.data())
def test_pad(device, data):
    x = data.draw(arrays())
    pads = tuple((data.draw(st.integers(0, 2)), data.draw(st.integers(0, 2))) for _ in x.shape)
    np.testing.assert_array_equal(nd(x, device).pad(pads).numpy(), np.pad(x, pads))


@st.composite
def reduce_axes(draw, ndim):
    kind = draw(st.sampled_from(["none", "int", "tuple"]))
    if kind == "none":
        return None
    if kind == "int":
        return draw(st.integers(-ndim, ndim - 1))
    return tuple(sorted(draw(st.sets(st.integers(0, ndim - 1)))))


@SETTINGS
@given(data=st.data(), keepdims=st.booleans(), reduction=st.sampled_from(["sum", "max"]))
def test_reductions(device, data, keepdims, reduction):
    x = data.draw(arrays())
    perm = data.draw(permutations(x.ndim))
    axes = data.draw(reduce_axes(x.ndim))
    a = nd(x, device).permute(perm)
    got = getattr(a, reduction)(axes, keepdims=keepdims).numpy()
    want = getattr(np, reduction)(x.transpose(perm), axis=axes, keepdims=keepdims)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@SETTINGS
@given(data=st.data())
def test_elementwise_on_views(device, data):
    x = data.draw(arrays())
    perm = data.draw(permutations(x.ndim))
    a = nd(x, device).permute(perm)
    b = nd(x.transpose(perm).copy(), device)
    xt = x.transpose(perm)
    np.testing.assert_allclose((a + b * 2.0).numpy(), xt + xt * 2.0, rtol=1e-6)
    np.testing.assert_array_equal(a.maximum(b * 0.5).numpy(), np.maximum(xt, xt * 0.5))
    np.testing.assert_array_equal((a >= 0.0).numpy(), (xt >= 0).astype(np.float32))


@SETTINGS
@given(m=st.integers(1, 6), n=st.integers(1, 6), p=st.integers(1, 6),
       batch_a=st.sampled_from([(), (2,), (1, 3), (2, 3)]),
       batch_b=st.sampled_from([(), (2,), (2, 1)]), seed=st.integers(0, 1000))
def test_matmul_broadcasts_batch_dims(device, m, n, p, batch_a, batch_b, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(batch_a + (m, n)).astype(np.float32)
    y = rng.standard_normal(batch_b + (n, p)).astype(np.float32)
    try:
        want = x @ y
    except ValueError:
        with pytest.raises(ValueError):
            nd(x, device) @ nd(y, device)
        return
    np.testing.assert_allclose((nd(x, device) @ nd(y, device)).numpy(), want, rtol=1e-5, atol=1e-5)


def test_zero_dim_and_dtype_boundary(device):
    assert nd(np.float32(2.5), device).shape == ()
    assert nd(np.float32(2.5), device).numpy() == np.float32(2.5)
    np.testing.assert_array_equal(nd(np.arange(3), device).numpy(), [0.0, 1.0, 2.0])
    with pytest.raises(TypeError, match="float32"):
        nd(np.array(["a"]), device)


def test_view_errors(device):
    a = nd(np.zeros((2, 3)), device)
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(4,\)"):
        a.reshape((4,))
    with pytest.raises(ValueError, match="cannot broadcast"):
        a.broadcast_to((2, 4))
    with pytest.raises(ValueError, match="permutation"):
        a.permute((0, 0))
    with pytest.raises(IndexError, match="out of range"):
        a[2]
    with pytest.raises(ValueError, match="step must be positive"):
        a[::-1]
    with pytest.raises(ValueError, match="pad needs"):
        a.pad(((1, 1),))
    with pytest.raises(ValueError, match="out of range"):
        a.sum(2)
