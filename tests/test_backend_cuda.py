"""The CUDA backend module, function by function, against the numpy reference.

Every contract function runs on random inputs (odd sizes, every code path of
its kernels: vectorised and scalar, each GEMM tile shape, split reductions)
and must match ndarray_backend_numpy; bad arguments must raise Python
exceptions, never reach a kernel.  Every test takes the `cuda` fixture, which
skips with the reason when the module is not built or no GPU is present.
"""

import importlib

import numpy as np
import pytest

from needle.backend_ndarray import ndarray_backend_numpy as ref
from backend_helpers import get, put


@pytest.fixture(scope="module")
def cuda():
    try:
        mod = importlib.import_module("needle.backend_ndarray.ndarray_backend_cuda")
    except ImportError as err:
        pytest.skip(f"the CUDA backend is not built ({err}); build it with `make` where nvcc is installed")
    if mod.device_count() == 0:
        pytest.skip("the CUDA backend is built but no CUDA GPU is present")
    return mod


def pair(cuda, values):
    """The same values on the reference and on cuda."""
    return put(ref, values), put(cuda, values)


def assert_close(got, want, rtol=1e-5, atol=1e-6, scaled=False):
    """Compare; with scaled=True atol is relative to the largest magnitude of want."""
    want = np.asarray(want, dtype=np.float64)
    if scaled and want.size:
        atol = atol * max(1.0, float(np.nanmax(np.abs(want))))
    np.testing.assert_allclose(np.asarray(got, dtype=np.float64), want, rtol=rtol, atol=atol, equal_nan=True)


# ---------------------------------------------------------------- runtime and memory


def test_runtime_functions(cuda):
    assert cuda.device_count() >= 1
    assert cuda.get_num_threads() >= 1
    cuda.set_num_threads(4)
    with pytest.raises(ValueError):
        cuda.set_num_threads(0)
    cuda.synchronize()
    assert cuda.__device_name__ == "cuda"


def test_array_sizes(cuda):
    assert cuda.Array(0).size == 0
    assert cuda.Array(5).size == 5
    with pytest.raises(ValueError):
        cuda.Array(-1)


def test_out_of_memory_is_memory_error_and_recoverable(cuda):
    with pytest.raises(MemoryError):
        cuda.Array(1 << 36)  # 256 GiB: more than any H100 / H200 holds
    np.testing.assert_array_equal(get(cuda, put(cuda, np.arange(5))), np.arange(5))


@pytest.mark.parametrize("size", [0, 1, 3, 4, 5, 1000, (1 << 20) + 3])
def test_numpy_round_trip(cuda, rng, size):
    values = rng.standard_normal(size).astype(np.float32)
    np.testing.assert_array_equal(get(cuda, put(cuda, values)), values)


def test_from_numpy_converts_dtype_and_layout(cuda):
    values = np.arange(12, dtype=np.float64).reshape(3, 4).T  # float64, Fortran order
    arr = cuda.Array(12)
    cuda.from_numpy(values, arr)
    np.testing.assert_array_equal(get(cuda, arr), np.ascontiguousarray(values, dtype=np.float32).reshape(-1))
    big = cuda.Array(20)
    cuda.from_numpy(np.ones(3, dtype=np.int64), big)  # a prefix of a larger buffer
    np.testing.assert_array_equal(get(cuda, big, 3), np.ones(3))
    with pytest.raises(ValueError):
        cuda.from_numpy(np.ones(6, dtype=np.float32), cuda.Array(5))


@pytest.mark.parametrize("size", [0, 1, 6, 4097])
def test_fill(cuda, size):
    arr = cuda.Array(size)
    cuda.fill(arr, -2.5)
    np.testing.assert_array_equal(get(cuda, arr), np.full(size, -2.5, dtype=np.float32))


# Views (shape, strides, offset) into a buffer of 240 elements: permutations,
# broadcasts (stride 0), negative strides, slices with steps, 0-d, empty.
VIEWS = [
    ((240,), (1,), 0),
    ((4, 5, 6), (30, 6, 1), 0),
    ((6, 5, 4), (1, 6, 30), 0),
    ((2, 3, 4, 5), (1, 2, 6, 24), 100),
    ((3, 4), (0, 1), 7),
    ((5, 1, 3), (0, 9, 0), 11),
    ((8, 6), (-20, -3), 239),
    ((4, 5), (-30, 2), 150),
    ((3, 2, 2, 2, 2, 3), (60, 30, 10, 5, 2, 1), 3),
    ((3, 2, 2, 2, 2, 3), (72, 36, 18, 9, 3, 1), 3),
    ((), (), 17),
    ((1, 1, 1), (5, 3, 1), 239),
    ((0, 4), (4, 1), 0),
    ((7,), (33,), 20),
    ((2, 2, 2, 2, 2, 2, 2), (-64, 32, 16, -8, 4, 2, 1), 100),
]


def positions(shape, strides, offset):
    """Buffer position of every element of a view."""
    return offset + sum(i * st for i, st in zip(np.indices(shape), strides))


# Views whose elements are distinct buffer positions (targets for setitem).
INJECTIVE = [v for v in VIEWS if np.unique(positions(*v)).size == np.prod(v[0])]


@pytest.mark.parametrize("shape,strides,offset", VIEWS)
def test_to_numpy_and_compact_views(cuda, rng, shape, strides, offset):
    values = rng.standard_normal(240).astype(np.float32)
    r, c = pair(cuda, values)
    want = ref.to_numpy(r, shape, strides, offset)
    got = cuda.to_numpy(c, shape, strides, offset)
    assert got.shape == want.shape and got.dtype == np.float32
    np.testing.assert_array_equal(got, want)
    size = want.size
    out = cuda.Array(size + 3)
    cuda.compact(c, out, shape, strides, offset)
    np.testing.assert_array_equal(get(cuda, out, size), want.reshape(-1))


@pytest.mark.parametrize("shape,strides,offset", INJECTIVE)
def test_setitem_views(cuda, rng, shape, strides, offset):
    base = rng.standard_normal(240).astype(np.float32)
    size = int(np.prod(shape))
    src = rng.standard_normal(size).astype(np.float32)
    r_out, c_out = pair(cuda, base)
    r_src, c_src = pair(cuda, src)
    ref.ewise_setitem(r_src, r_out, shape, strides, offset)
    cuda.ewise_setitem(c_src, c_out, shape, strides, offset)
    np.testing.assert_array_equal(get(cuda, c_out), r_out.array)
    r_out, c_out = pair(cuda, base)
    ref.scalar_setitem(size, 3.25, r_out, shape, strides, offset)
    cuda.scalar_setitem(size, 3.25, c_out, shape, strides, offset)
    np.testing.assert_array_equal(get(cuda, c_out), r_out.array)


def test_large_compact_uses_every_element(cuda):
    # A transpose of a 1500 x 1000 matrix: more elements than a single grid-stride pass.
    values = np.arange(1_500_000, dtype=np.float32)
    c = put(cuda, values)
    out = cuda.Array(values.size)
    cuda.compact(c, out, (1000, 1500), (1, 1000), 0)
    np.testing.assert_array_equal(get(cuda, out), values.reshape(1500, 1000).T.reshape(-1))


def test_bad_views_raise(cuda):
    c = put(cuda, np.zeros(10))
    out = cuda.Array(10)
    with pytest.raises(IndexError):
        cuda.to_numpy(c, (11,), (1,), 0)
    with pytest.raises(IndexError):
        cuda.compact(c, out, (2, 3), (5, 1), 3)  # reaches 5 + 2 + 3 = 10
    with pytest.raises(IndexError):
        cuda.compact(c, out, (3,), (-1,), 1)  # reaches -1
    with pytest.raises(IndexError):
        cuda.ewise_setitem(put(cuda, np.zeros(4)), out, (4,), (3,), 1)
    with pytest.raises(IndexError):
        cuda.scalar_setitem(2, 1.0, out, (2,), (1,), -1)
    with pytest.raises(ValueError):
        cuda.compact(c, out, (2, 3), (1,), 0)  # shape and strides differ in length
    with pytest.raises(ValueError):
        cuda.compact(c, out, (-1,), (1,), 0)
    with pytest.raises(ValueError):
        cuda.compact(c, cuda.Array(5), (6,), (1,), 0)  # out too small
    with pytest.raises(ValueError):
        cuda.ewise_setitem(put(cuda, np.zeros(3)), out, (4,), (1,), 0)  # a too small
    with pytest.raises(ValueError):
        cuda.scalar_setitem(3, 1.0, out, (4,), (1,), 0)  # size disagrees with the view
    # The failed calls touched nothing.
    np.testing.assert_array_equal(get(cuda, c), np.zeros(10))


# ---------------------------------------------------------------- element-wise

BINARY = ["ewise_add", "ewise_mul", "ewise_div", "ewise_pow", "ewise_maximum", "ewise_eq", "ewise_ge", "ewise_gt"]
SCALAR = ["scalar_add", "scalar_mul", "scalar_div", "scalar_rdiv", "scalar_power", "scalar_maximum",
          "scalar_eq", "scalar_ge", "scalar_gt"]
UNARY = ["ewise_log", "ewise_exp", "ewise_tanh", "ewise_sqrt", "ewise_abs", "ewise_sign"]
SIZES = [0, 1, 7, 1027]


def operands(rng, name, size):
    """Inputs in the function's domain, with ties and special values mixed in."""
    if name in ("ewise_pow", "scalar_power", "ewise_log", "ewise_sqrt"):
        a = rng.uniform(0.1, 3.0, size)
    else:
        a = rng.standard_normal(size) * 3
        if size > 6:
            a[:6] = [0.0, -0.0, np.nan, np.inf, -np.inf, 1.0]
    b = rng.standard_normal(size) * 3 if name != "ewise_pow" else rng.uniform(-2, 2, size)
    if size > 8:
        b[6:8] = a[6:8]  # ties for eq / ge / maximum
    return a.astype(np.float32), b.astype(np.float32)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("name", BINARY)
def test_binary(cuda, rng, name, size):
    a, b = operands(rng, name, size)
    out_ref, out = ref.Array(size), cuda.Array(size + 1)
    getattr(ref, name)(put(ref, a), put(ref, b), out_ref)
    getattr(cuda, name)(put(cuda, a), put(cuda, b), out)
    assert_close(get(cuda, out, size), out_ref.array)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("name", SCALAR)
def test_scalar(cuda, rng, name, size):
    a, _ = operands(rng, name, size)
    for val in (0.5, -1.75, 2.0, 3):
        out_ref, out = ref.Array(size), cuda.Array(size)
        getattr(ref, name)(put(ref, a), val, out_ref)
        getattr(cuda, name)(put(cuda, a), val, out)
        assert_close(get(cuda, out), out_ref.array)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("name", UNARY)
def test_unary(cuda, rng, name, size):
    a, _ = operands(rng, name, size)
    out_ref, out = ref.Array(size), cuda.Array(size)
    getattr(ref, name)(put(ref, a), out_ref)
    getattr(cuda, name)(put(cuda, a), out)
    assert_close(get(cuda, out), out_ref.array)


def test_elementwise_in_place(cuda, rng):
    a = rng.standard_normal(1001).astype(np.float32)
    c = put(cuda, a)
    cuda.ewise_mul(c, c, c)
    cuda.scalar_add(c, 1.0, c)
    assert_close(get(cuda, c), a * a + 1)


def test_elementwise_bad_sizes(cuda):
    with pytest.raises(ValueError):
        cuda.ewise_add(cuda.Array(4), cuda.Array(5), cuda.Array(5))
    with pytest.raises(ValueError):
        cuda.ewise_add(cuda.Array(4), cuda.Array(4), cuda.Array(3))
    with pytest.raises(ValueError):
        cuda.scalar_mul(cuda.Array(4), 2.0, cuda.Array(3))
    with pytest.raises(ValueError):
        cuda.ewise_exp(cuda.Array(4), cuda.Array(3))


# ---------------------------------------------------------------- matmul

MATMUL_SHAPES = [  # batch, m, n, p: every tile shape, ragged edges, empty inner dimension
    (1, 1, 1, 1), (3, 17, 33, 65), (2, 128, 64, 256), (1, 300, 7, 5), (1, 5, 7, 300),
    (1, 130, 129, 131), (5, 64, 64, 64), (1, 513, 257, 129), (2, 40, 0, 3), (0, 4, 4, 4),
    (70000, 2, 3, 2),
]


@pytest.mark.parametrize("batch,m,n,p", MATMUL_SHAPES)
def test_matmul(cuda, rng, batch, m, n, p):
    a = rng.standard_normal(batch * m * n).astype(np.float32)
    b = rng.standard_normal(batch * n * p).astype(np.float32)
    out_ref, out = ref.Array(batch * m * p), cuda.Array(batch * m * p)
    ref.matmul(put(ref, a), put(ref, b), out_ref, batch, m, n, p)
    cuda.matmul(put(cuda, a), put(cuda, b), out, batch, m, n, p)
    assert_close(get(cuda, out), out_ref.array, rtol=1e-4, atol=1e-4 * np.sqrt(max(n, 1)))


def test_matmul_bad_sizes(cuda):
    with pytest.raises(ValueError):
        cuda.matmul(cuda.Array(5), cuda.Array(6), cuda.Array(4), 1, 2, 3, 2)
    with pytest.raises(ValueError):
        cuda.matmul(cuda.Array(6), cuda.Array(6), cuda.Array(3), 1, 2, 3, 2)
    with pytest.raises(ValueError):
        cuda.matmul(cuda.Array(6), cuda.Array(6), cuda.Array(4), 1, -2, 3, 2)


# ---------------------------------------------------------------- reductions

REDUCE_SHAPES = [  # rows, reduce_size: thread-, warp- and block-per-row, split rows
    (1000, 1), (17, 31), (33, 32), (5, 33), (7, 4096), (3, 4097), (1, 1 << 20), (2, 3_000_001),
    (700, 5000), (0, 3),
]


@pytest.mark.parametrize("rows,size", REDUCE_SHAPES)
@pytest.mark.parametrize("name", ["reduce_sum", "reduce_max"])
def test_reduce(cuda, rng, name, rows, size):
    a = rng.standard_normal(rows * size).astype(np.float32)
    out_ref, out = ref.Array(rows), cuda.Array(rows)
    getattr(ref, name)(put(ref, a), out_ref, size)
    getattr(cuda, name)(put(cuda, a), out, size)
    bound = np.abs(a).reshape(rows, size).sum(axis=1) if rows else np.zeros(0)
    np.testing.assert_allclose(get(cuda, out), out_ref.array, rtol=0, atol=1e-6 * (1 + bound.max(initial=0)))


def test_reduce_max_propagates_nan(cuda):
    a = np.arange(3 * 5000, dtype=np.float32)
    a[5000 + 1234] = np.nan
    out = cuda.Array(3)
    cuda.reduce_max(put(cuda, a), out, 5000)
    got = get(cuda, out)
    assert got[0] == 4999 and np.isnan(got[1]) and got[2] == 14999


def test_reduce_bad_sizes(cuda):
    with pytest.raises(ValueError):
        cuda.reduce_sum(cuda.Array(10), cuda.Array(2), 0)
    with pytest.raises(ValueError):
        cuda.reduce_max(cuda.Array(9), cuda.Array(2), 5)


# ---------------------------------------------------------------- conv

CONV_SHAPES = [  # n, c, h, w, o, kh, kw, stride, padding
    (2, 3, 9, 9, 5, 3, 3, 1, 1), (1, 1, 5, 7, 2, 3, 3, 2, 1), (2, 4, 8, 8, 3, 3, 3, 2, 0),
    (1, 2, 7, 6, 4, 2, 3, 2, 2), (3, 5, 6, 5, 33, 1, 1, 1, 0), (1, 3, 11, 10, 2, 5, 4, 3, 2),
    (2, 2, 6, 6, 3, 1, 1, 2, 0), (1, 70, 5, 5, 130, 3, 3, 1, 1), (2, 3, 12, 13, 7, 4, 4, 2, 1),
    (1, 2, 4, 4, 3, 4, 4, 1, 0), (1, 1, 3, 3, 1, 5, 5, 1, 2), (1, 2, 9, 9, 2, 3, 3, 3, 0),
    (4, 32, 16, 16, 64, 3, 3, 1, 1), (8, 64, 8, 8, 128, 3, 3, 2, 1), (2, 16, 32, 32, 2, 3, 3, 1, 1),
    (2, 256, 4, 4, 512, 3, 3, 1, 1),  # a deep layer: few tiles, K split over many z
]


def conv_case(rng, shape):
    n, c, h, w, o, kh, kw, stride, padding = shape
    ho, wo = (h + 2 * padding - kh) // stride + 1, (w + 2 * padding - kw) // stride + 1
    x = rng.standard_normal(n * c * h * w).astype(np.float32)
    weight = (rng.standard_normal(o * c * kh * kw) / np.sqrt(c * kh * kw)).astype(np.float32)
    bias = rng.standard_normal(o).astype(np.float32)
    dy = rng.standard_normal(n * o * ho * wo).astype(np.float32)
    return x, weight, bias, dy, n * o * ho * wo


def run_both(cuda, kernel, inputs, out_size, *sizes):
    """kernel on the reference and on cuda with the same inputs (None passes as None).

    Returns (cuda's output, the reference output) as numpy arrays.
    """
    outs = []
    for mod in (ref, cuda):
        out = mod.Array(out_size)
        getattr(mod, kernel)(*[None if v is None else put(mod, v) for v in inputs], out, *sizes)
        outs.append(get(mod, out))
    return outs[1], outs[0]


@pytest.mark.parametrize("shape", CONV_SHAPES)
def test_conv2d_forward(cuda, rng, shape):
    x, weight, bias, _, y_size = conv_case(rng, shape)
    for b in (bias, None):
        got, want = run_both(cuda, "conv2d_forward", (x, weight, b), y_size, *shape)
        assert_close(got, want, rtol=1e-4, atol=1e-5, scaled=True)


@pytest.mark.parametrize("shape", CONV_SHAPES)
def test_conv2d_backward_input(cuda, rng, shape):
    x, weight, _, dy, _ = conv_case(rng, shape)
    got, want = run_both(cuda, "conv2d_backward_input", (dy, weight), x.size, *shape)
    assert_close(got, want, rtol=1e-4, atol=1e-5, scaled=True)


@pytest.mark.parametrize("shape", CONV_SHAPES)
def test_conv2d_backward_weight(cuda, rng, shape):
    x, weight, _, dy, _ = conv_case(rng, shape)
    got, want = run_both(cuda, "conv2d_backward_weight", (x, dy), weight.size, *shape)
    assert_close(got, want, rtol=1e-4, atol=1e-5, scaled=True)


def test_conv2d_bad_arguments(cuda):
    shape = (1, 2, 5, 5, 3, 3, 3, 1, 0)  # y is 1 x 3 x 3 x 3
    x, w, y = cuda.Array(50), cuda.Array(54), cuda.Array(27)
    cuda.conv2d_forward(x, w, None, y, *shape)
    with pytest.raises(ValueError):
        cuda.conv2d_forward(cuda.Array(49), w, None, y, *shape)
    with pytest.raises(ValueError):
        cuda.conv2d_forward(x, cuda.Array(53), None, y, *shape)
    with pytest.raises(ValueError):
        cuda.conv2d_forward(x, w, cuda.Array(2), y, *shape)  # bias too small
    with pytest.raises(ValueError):
        cuda.conv2d_forward(x, w, None, cuda.Array(26), *shape)
    with pytest.raises(ValueError):
        cuda.conv2d_forward(x, w, None, y, 1, 2, 2, 2, 3, 3, 3, 1, 0)  # kernel larger than input
    with pytest.raises(ValueError):
        cuda.conv2d_forward(x, w, None, y, 1, 2, 5, 5, 3, 3, 3, 0, 0)  # stride 0
    with pytest.raises(ValueError):
        cuda.conv2d_backward_input(cuda.Array(26), w, x, *shape)
    with pytest.raises(ValueError):
        cuda.conv2d_backward_input(y, w, cuda.Array(49), *shape)
    with pytest.raises(ValueError):
        cuda.conv2d_backward_weight(x, y, cuda.Array(53), *shape)
    with pytest.raises(ValueError):
        cuda.conv2d_backward_weight(x, cuda.Array(26), w, *shape)


# ---------------------------------------------------------------- upsample

UPSAMPLE_SHAPES = [(3, 4, 6, 2), (2, 5, 7, 2), (1, 3, 5, 3), (4, 2, 4, 1), (2, 3, 3, 4), (0, 3, 3, 2),
                   (64, 32, 32, 2)]


@pytest.mark.parametrize("planes,h,w,scale", UPSAMPLE_SHAPES)
def test_upsample(cuda, rng, planes, h, w, scale):
    x = rng.standard_normal(planes * h * w).astype(np.float32)
    dy = rng.standard_normal(x.size * scale * scale).astype(np.float32)
    out_ref, out = ref.Array(dy.size), cuda.Array(dy.size)
    ref.upsample_nearest_forward(put(ref, x), out_ref, planes, h, w, scale)
    cuda.upsample_nearest_forward(put(cuda, x), out, planes, h, w, scale)
    np.testing.assert_array_equal(get(cuda, out), out_ref.array)
    dx_ref, dx = ref.Array(x.size), cuda.Array(x.size)
    ref.upsample_nearest_backward(put(ref, dy), dx_ref, planes, h, w, scale)
    cuda.upsample_nearest_backward(put(cuda, dy), dx, planes, h, w, scale)
    assert_close(get(cuda, dx), dx_ref.array)


def test_upsample_bad_arguments(cuda):
    with pytest.raises(ValueError):
        cuda.upsample_nearest_forward(cuda.Array(11), cuda.Array(48), 1, 3, 4, 2)
    with pytest.raises(ValueError):
        cuda.upsample_nearest_forward(cuda.Array(12), cuda.Array(47), 1, 3, 4, 2)
    with pytest.raises(ValueError):
        cuda.upsample_nearest_forward(cuda.Array(12), cuda.Array(48), 1, 3, 4, 0)
    with pytest.raises(ValueError):
        cuda.upsample_nearest_backward(cuda.Array(47), cuda.Array(12), 1, 3, 4, 2)
    with pytest.raises(ValueError):
        cuda.upsample_nearest_backward(cuda.Array(48), cuda.Array(11), 1, 3, 4, 2)


# ---------------------------------------------------------------- concat

CONCAT_CASES = [(2, [4, 8]), (3, [3, 5, 1]), (5, [0, 4, 0, 7]), (0, [2, 3]), (1, [1]), (64, [16384, 8192]),
                (7, [12, 4, 8, 16])]


@pytest.mark.parametrize("outer,widths", CONCAT_CASES)
def test_concat(cuda, rng, outer, widths):
    parts = [rng.standard_normal(outer * wd).astype(np.float32) for wd in widths]
    total = outer * sum(widths)
    out_ref, out = ref.Array(total), cuda.Array(total)
    ref.concat_forward([put(ref, p) for p in parts], out_ref, outer, widths)
    cuda.concat_forward([put(cuda, p) for p in parts], out, outer, widths)
    np.testing.assert_array_equal(get(cuda, out), out_ref.array)
    dy = rng.standard_normal(total).astype(np.float32)
    outs_ref = [ref.Array(outer * wd) for wd in widths]
    outs = [cuda.Array(outer * wd) for wd in widths]
    ref.concat_backward(put(ref, dy), outs_ref, outer, widths)
    cuda.concat_backward(put(cuda, dy), outs, outer, widths)
    for got, want in zip(outs, outs_ref):
        np.testing.assert_array_equal(get(cuda, got), want.array)


def test_concat_bad_arguments(cuda):
    a, b, out = cuda.Array(4), cuda.Array(6), cuda.Array(10)
    cuda.concat_forward([a, b], out, 2, [2, 3])
    with pytest.raises(ValueError):
        cuda.concat_forward([a, b], out, 2, [2])
    with pytest.raises(ValueError):
        cuda.concat_forward([a, b], out, 2, [3, 3])  # a too small
    with pytest.raises(ValueError):
        cuda.concat_forward([a, b], cuda.Array(9), 2, [2, 3])
    with pytest.raises(ValueError):
        cuda.concat_forward([a, b], out, 2, [2, -3])
    with pytest.raises((ValueError, TypeError)):
        cuda.concat_forward([a, None], out, 2, [2, 3])
    with pytest.raises(ValueError):
        cuda.concat_backward(cuda.Array(9), [a, b], 2, [2, 3])
    with pytest.raises(ValueError):
        cuda.concat_backward(out, [a, cuda.Array(5)], 2, [2, 3])


# ---------------------------------------------------------------- colorspace


def colour_inputs(rng, n, hw):
    rgb = rng.uniform(-0.2, 1.2, (n, 3, hw))
    near = min(12, rgb.size)
    rgb.reshape(-1)[:near] = 0.04045 + rng.uniform(-1e-3, 1e-3, near)  # around the gamma threshold
    lab = np.stack([rng.uniform(-5, 105, (n, hw)), rng.uniform(-120, 120, (n, hw)),
                    rng.uniform(-120, 120, (n, hw))], axis=1)
    return {"rgb_to_lab": rgb.astype(np.float32), "lab_to_rgb": lab.astype(np.float32)}


@pytest.mark.parametrize("n,hw", [(2, 64), (3, 35), (1, 1), (0, 8), (4, 1024)])
@pytest.mark.parametrize("name", ["rgb_to_lab", "lab_to_rgb"])
def test_colorspace(cuda, rng, name, n, hw):
    x = colour_inputs(rng, n, hw)[name]
    dy = rng.standard_normal(x.size).astype(np.float32)
    out_ref, out = ref.Array(x.size), cuda.Array(x.size)
    getattr(ref, name)(put(ref, x), out_ref, n, hw)
    getattr(cuda, name)(put(cuda, x), out, n, hw)
    assert_close(get(cuda, out), out_ref.array, rtol=1e-4, atol=1e-5, scaled=True)
    dx_ref, dx = ref.Array(x.size), cuda.Array(x.size)
    getattr(ref, name + "_vjp")(put(ref, x), put(ref, dy), dx_ref, n, hw)
    getattr(cuda, name + "_vjp")(put(cuda, x), put(cuda, dy), dx, n, hw)
    assert_close(get(cuda, dx), dx_ref.array, rtol=1e-3, atol=1e-5, scaled=True)


def test_colorspace_bad_arguments(cuda):
    with pytest.raises(ValueError):
        cuda.rgb_to_lab(cuda.Array(11), cuda.Array(12), 1, 4)
    with pytest.raises(ValueError):
        cuda.lab_to_rgb(cuda.Array(12), cuda.Array(11), 1, 4)
    with pytest.raises(ValueError):
        cuda.rgb_to_lab_vjp(cuda.Array(12), cuda.Array(11), cuda.Array(12), 1, 4)
    with pytest.raises(ValueError):
        cuda.lab_to_rgb_vjp(cuda.Array(12), cuda.Array(12), cuda.Array(12), -1, 4)
