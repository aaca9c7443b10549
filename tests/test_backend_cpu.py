"""The C++ CPU backend against the numpy reference, function by function.

Every contract function runs on both modules with the same random inputs
(odd sizes, negative and zero strides, strides 1..3, paddings 0..2, kernel
sizes 1, 3, 5); the SGEMM-based kernels run once per micro-kernel ISA the
machine supports (the module's private _set_isa hook).  The robustness tests
hand the C++ module bad arguments and expect a Python exception every time.
"""

import importlib

import numpy as np
import pytest

import needle.backend_ndarray.ndarray_backend_numpy as ref
from backend_helpers import get, put
from needle.backend_ndarray.contract import COLORSPACE, ELEMENTWISE

try:
    cpu = importlib.import_module("needle.backend_ndarray.ndarray_backend_cpu")
except ImportError as err:  # pragma: no cover - depends on the build
    pytest.skip(f"ndarray_backend_cpu is not built ({err}); run `make build`", allow_module_level=True)

def both(fn):
    """fn(mod) -> result for the cpu and the reference module."""
    return fn(cpu), fn(ref)


# ---------------------------------------------------------------- views


def random_view(rng):
    """Any in-bounds view (shape, strides, offset, buffer size): negative, zero, overlapping strides."""
    ndim = int(rng.integers(1, 5))
    shape = tuple(int(s) for s in rng.integers(1, 6, ndim))
    strides = tuple(int(s) for s in rng.integers(-7, 8, ndim))
    low = sum(st * (n - 1) for n, st in zip(shape, strides) if st < 0)
    high = sum(st * (n - 1) for n, st in zip(shape, strides) if st > 0)
    offset = -low + int(rng.integers(0, 4))
    return shape, strides, offset, offset + high + 1 + int(rng.integers(0, 4))


def sliced_view(rng):
    """A non-overlapping view as NDArray makes them: permute, step slices, flips."""
    ndim = int(rng.integers(1, 5))
    shape = tuple(int(s) for s in rng.integers(1, 7, ndim))
    base = np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape)
    view = base.transpose(rng.permutation(ndim))
    slices = []
    for n in view.shape:
        start, step = int(rng.integers(0, n)), int(rng.integers(1, 4))
        slices.append(slice(start, None, step) if rng.random() < 0.5 else slice(None, None, -step))
    view = view[tuple(slices)]
    offset = (view.__array_interface__["data"][0] - base.__array_interface__["data"][0]) // 4
    return view.shape, tuple(s // 4 for s in view.strides), offset, base.size


@pytest.mark.parametrize("seed", range(40))
def test_to_numpy_and_compact(seed):
    rng = np.random.default_rng(seed)
    shape, strides, offset, size = (random_view if seed % 2 else sliced_view)(rng)
    data = rng.standard_normal(size).astype(np.float32)
    got, want = both(lambda m: m.to_numpy(put(m, data), shape, strides, offset))
    np.testing.assert_array_equal(got, want)

    n = int(np.prod(shape))
    outs = both(lambda m: (out := m.Array(n + 2), m.compact(put(m, data), out, shape, strides, offset))[0])
    np.testing.assert_array_equal(get(cpu, outs[0], n), get(ref, outs[1], n))


@pytest.mark.parametrize("seed", range(40))
def test_setitem(seed):
    rng = np.random.default_rng(seed)
    shape, strides, offset, size = sliced_view(rng)
    n = int(np.prod(shape))
    data, values = rng.standard_normal(size).astype(np.float32), rng.standard_normal(n).astype(np.float32)
    ew = both(lambda m: (out := put(m, data), m.ewise_setitem(put(m, values), out, shape, strides, offset))[0])
    np.testing.assert_array_equal(get(cpu, ew[0]), get(ref, ew[1]))

    # Scalar writes may use any view, overlapping or not.
    shape, strides, offset, size = random_view(rng) if seed % 2 else (shape, strides, offset, size)
    data = rng.standard_normal(size).astype(np.float32)
    n = int(np.prod(shape))
    sc = both(lambda m: (out := put(m, data), m.scalar_setitem(n, 2.5, out, shape, strides, offset))[0])
    np.testing.assert_array_equal(get(cpu, sc[0]), get(ref, sc[1]))


def test_large_strided_copies_use_threads_and_agree():
    rng = np.random.default_rng(1)
    data = rng.standard_normal(300 * 401).astype(np.float32)
    shape, strides, offset = (150, 200), (-401 * 2, 2), 401 * 299
    got, want = both(lambda m: m.to_numpy(put(m, data), shape, strides, offset))
    np.testing.assert_array_equal(got, want)
    values = rng.standard_normal(150 * 200).astype(np.float32)
    ew = both(lambda m: (out := put(m, data), m.ewise_setitem(put(m, values), out, shape, strides, offset))[0])
    np.testing.assert_array_equal(get(cpu, ew[0]), get(ref, ew[1]))


def test_empty_views_and_buffers():
    a = cpu.Array(0)
    assert a.size == 0
    assert cpu.to_numpy(a, (0, 3), (3, 1), 0).shape == (0, 3)
    cpu.compact(a, cpu.Array(0), (2, 0), (0, 1), 0)
    cpu.scalar_setitem(0, 1.0, a, (0,), (1,), 0)


def test_zero_dim_views():
    data = np.arange(5, dtype=np.float32)
    got, want = both(lambda m: m.to_numpy(put(m, data), (), (), 3))
    assert got.shape == () and got == want == 3.0
    outs = both(lambda m: (h := put(m, data), m.scalar_setitem(1, -1.0, h, (), (), 4))[0])
    np.testing.assert_array_equal(get(cpu, outs[0]), get(ref, outs[1]))
    with pytest.raises(IndexError):
        cpu.to_numpy(put(cpu, data), (), (), 5)


def test_aliased_setitem_reads_before_writing():
    data = np.arange(10, dtype=np.float32)
    out = both(lambda m: (h := put(m, data), m.ewise_setitem(h, h, (10,), (-1,), 9))[0])
    np.testing.assert_array_equal(get(cpu, out[0]), data[::-1])
    np.testing.assert_array_equal(get(cpu, out[0]), get(ref, out[1]))


def test_from_numpy_converts_dtype_and_fill():
    h = cpu.Array(6)
    cpu.from_numpy(np.arange(6, dtype=np.float64).reshape(2, 3), h)
    np.testing.assert_array_equal(get(cpu, h), np.arange(6, dtype=np.float32))
    cpu.fill(h, -1.5)
    np.testing.assert_array_equal(get(cpu, h), np.full(6, -1.5, np.float32))
    big = cpu.Array(100_003)
    cpu.fill(big, 3.0)
    assert (get(cpu, big) == 3.0).all()


# ---------------------------------------------------------------- element-wise

POSITIVE = {"ewise_log", "ewise_sqrt", "ewise_pow", "scalar_power"}
SIZES = [1, 7, 1000, 70_001]


@pytest.mark.parametrize("name", sorted(ELEMENTWISE))
@pytest.mark.parametrize("size", SIZES)
def test_elementwise(name, size):
    rng = np.random.default_rng(size)
    a = rng.standard_normal(size).astype(np.float32)
    b = rng.standard_normal(size).astype(np.float32)
    if name in POSITIVE:
        a = np.abs(a) + 0.1
    if name in ("ewise_eq", "ewise_ge"):
        b[::3] = a[::3]  # exercise equality
    val = 1.7 if name != "scalar_eq" else float(a[size // 2])
    fns = {m: getattr(m, name) for m in (cpu, ref)}

    def run(m):
        out = m.Array(size)
        if name.startswith("scalar_"):
            fns[m](put(m, a), val, out)
        elif name in ("ewise_log", "ewise_exp", "ewise_tanh", "ewise_sqrt", "ewise_abs", "ewise_sign"):
            fns[m](put(m, a), out)
        else:
            fns[m](put(m, a), put(m, b), out)
        return get(m, out)

    got, want = both(run)
    np.testing.assert_allclose(got, want, rtol=2e-6, atol=1e-7)


def test_nan_semantics_match_numpy():
    a = np.array([np.nan, 1.0, -2.0, 0.0, np.nan], np.float32)
    b = np.array([1.0, np.nan, -3.0, -0.0, np.nan], np.float32)
    for name in ("ewise_maximum",):
        got, want = both(lambda m: (o := m.Array(5), getattr(m, name)(put(m, a), put(m, b), o), get(m, o))[2])
        np.testing.assert_array_equal(got, want)
    for name in ("ewise_sign", "ewise_abs"):
        got, want = both(lambda m: (o := m.Array(5), getattr(m, name)(put(m, a), o), get(m, o))[2])
        np.testing.assert_array_equal(got, want)
    got, want = both(lambda m: (o := m.Array(1), m.reduce_max(put(m, a), o, 5), get(m, o))[2])
    np.testing.assert_array_equal(got, want)


# ---------------------------------------------------------------- matmul, reductions


@pytest.mark.parametrize("dims", [(1, 1, 1, 1), (1, 5, 7, 3), (3, 33, 17, 65), (2, 9, 300, 70),
                                  (1, 300, 40, 130), (40, 6, 5, 4), (2, 0, 3, 4), (2, 3, 0, 4)])
def test_matmul(isa, dims):
    batch, m_, n, p = dims
    rng = np.random.default_rng(sum(dims))
    a = rng.standard_normal(batch * m_ * n).astype(np.float32)
    b = rng.standard_normal(batch * n * p).astype(np.float32)

    def run(m):
        out = m.Array(batch * m_ * p)
        m.matmul(put(m, a), put(m, b), out, batch, m_, n, p)
        return get(m, out)

    got, want = both(run)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_matmul_output_may_alias_an_input():
    rng = np.random.default_rng(3)
    a = rng.standard_normal(16).astype(np.float32)
    b = rng.standard_normal(16).astype(np.float32)
    h = put(cpu, a)
    cpu.matmul(h, put(cpu, b), h, 1, 4, 4, 4)
    np.testing.assert_allclose(get(cpu, h), (a.reshape(4, 4) @ b.reshape(4, 4)).reshape(-1), rtol=1e-5)


@pytest.mark.parametrize("name", ["reduce_sum", "reduce_max"])
@pytest.mark.parametrize("rows,size", [(1, 1), (7, 13), (1, 200_001), (3, 50_000), (5000, 9)])
def test_reductions(name, rows, size):
    rng = np.random.default_rng(rows + size)
    a = rng.standard_normal(rows * size).astype(np.float32)

    def run(m):
        out = m.Array(rows)
        getattr(m, name)(put(m, a), out, size)
        return get(m, out)

    got, want = both(run)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.sqrt(size))


# ---------------------------------------------------------------- conv

CONV_CASES = [
    # n, c, h, w, o, kh, kw, stride, padding
    (2, 3, 7, 9, 5, 3, 3, 1, 1),
    (3, 4, 8, 7, 6, 3, 3, 2, 0),
    (2, 5, 9, 10, 7, 5, 5, 3, 2),
    (1, 1, 5, 5, 1, 1, 1, 2, 0),
    (2, 6, 11, 13, 9, 1, 1, 1, 2),
    (2, 3, 10, 10, 4, 3, 3, 2, 1),
    (2, 3, 11, 11, 4, 3, 3, 2, 1),
    (1, 2, 12, 9, 3, 5, 5, 2, 2),
    (2, 4, 7, 6, 3, 3, 5, 3, 1),
    (1, 3, 4, 4, 2, 5, 5, 1, 2),
    (1, 2, 3, 3, 2, 3, 3, 3, 0),
    (3, 5, 4, 4, 9, 3, 3, 1, 1),  # 16-pixel images: tiles straddle two images
    (3, 3, 8, 8, 10, 3, 3, 2, 1),
]


def conv_all(m, x, w, b, dy, case):
    n, c, h, w_, o, kh, kw, s, p = case
    args = (n, c, h, w_, o, kh, kw, s, p)
    out, dx, dw = m.Array(dy.size), m.Array(x.size), m.Array(w.size)
    m.conv2d_forward(put(m, x), put(m, w), None if b is None else put(m, b), out, *args)
    m.conv2d_backward_input(put(m, dy), put(m, w), dx, *args)
    m.conv2d_backward_weight(put(m, x), put(m, dy), dw, *args)
    return get(m, out), get(m, dx), get(m, dw)


def conv_inputs(case, seed, bias=True):
    n, c, h, w_, o, kh, kw, s, p = case
    ho, wo = (h + 2 * p - kh) // s + 1, (w_ + 2 * p - kw) // s + 1
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(n * c * h * w_).astype(np.float32)
    w = rng.standard_normal(o * c * kh * kw).astype(np.float32)
    b = rng.standard_normal(o).astype(np.float32) if bias else None
    dy = rng.standard_normal(n * o * ho * wo).astype(np.float32)
    return x, w, b, dy


def assert_conv_close(got, want):
    for g, r, what in zip(got, want, ("forward", "backward_input", "backward_weight")):
        scale = max(1.0, float(np.abs(r).max()))
        np.testing.assert_allclose(g, r, rtol=1e-4, atol=1e-5 * scale, err_msg=what)


@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: "x".join(map(str, c)))
def test_conv(isa, case):
    x, w, b, dy = conv_inputs(case, sum(case), bias=case[0] % 2 == 0)
    assert_conv_close(*both(lambda m: conv_all(m, x, w, b, dy, case)))


@pytest.mark.parametrize("case", [(3, 37, 9, 11, 300, 3, 3, 1, 1), (4, 70, 6, 7, 20, 3, 3, 2, 1)],
                         ids=["deep-k-wide-m", "stride2-k>kc"])
def test_conv_multi_block(isa, case):
    """Sizes past one K block (c*kh*kw > 256) and one M slab (o > 256), threaded."""
    x, w, b, dy = conv_inputs(case, 5)
    assert_conv_close(*both(lambda m: conv_all(m, x, w, b, dy, case)))


def test_conv_is_deterministic_across_thread_counts():
    case = (4, 16, 12, 12, 24, 3, 3, 1, 1)
    x, w, b, dy = conv_inputs(case, 9)
    threads = cpu.get_num_threads()
    try:
        cpu.set_num_threads(1)
        one = conv_all(cpu, x, w, b, dy, case)
        cpu.set_num_threads(max(2, threads))
        many = conv_all(cpu, x, w, b, dy, case)
    finally:
        cpu.set_num_threads(threads)
    for a, b_ in zip(one, many):
        np.testing.assert_array_equal(a, b_)


# ---------------------------------------------------------------- upsample, concat


@pytest.mark.parametrize("planes,h,w,scale", [(1, 1, 1, 1), (3, 5, 7, 2), (2, 4, 3, 3), (64, 17, 9, 2),
                                              (0, 4, 4, 2)])
def test_upsample(planes, h, w, scale):
    rng = np.random.default_rng(planes + h)
    x = rng.standard_normal(planes * h * w).astype(np.float32)
    dy = rng.standard_normal(planes * h * w * scale * scale).astype(np.float32)

    def run(m):
        out, dx = m.Array(dy.size), m.Array(x.size)
        m.upsample_nearest_forward(put(m, x), out, planes, h, w, scale)
        m.upsample_nearest_backward(put(m, dy), dx, planes, h, w, scale)
        return get(m, out), get(m, dx)

    (fo, bo), (fr, br) = both(run)
    np.testing.assert_array_equal(fo, fr)
    np.testing.assert_allclose(bo, br, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("outer,widths", [(1, [3]), (5, [2, 0, 7]), (0, [3, 4]), (33, [64, 128, 1, 5]),
                                          (200, [300, 77])])
def test_concat(outer, widths):
    rng = np.random.default_rng(outer + len(widths))
    parts = [rng.standard_normal(outer * wd).astype(np.float32) for wd in widths]
    total = sum(widths)
    dy = rng.standard_normal(outer * total).astype(np.float32)

    def run(m):
        out = m.Array(outer * total)
        m.concat_forward([put(m, p) for p in parts], out, outer, widths)
        outs = [m.Array(outer * wd) for wd in widths]
        m.concat_backward(put(m, dy), outs, outer, widths)
        return get(m, out), [get(m, o) for o in outs]

    (fo, bo), (fr, br) = both(run)
    np.testing.assert_array_equal(fo, fr)
    for g, r in zip(bo, br):
        np.testing.assert_array_equal(g, r)


# ---------------------------------------------------------------- colour space

KINKS_RGB = [0.0, 1.0, 0.04045, np.nextafter(np.float32(0.04045), 1), -0.1, 1.3, 0.5]
KINKS_LAB = [[0.0, 0.0, 0.0], [100.0, 0.0, 0.0], [8.0, 0.0, 0.0], [8.0000001, 0.0, 0.0],
             [50.0, 120.0, -130.0], [-5.0, 0.0, 0.0], [110.0, -150.0, 150.0],
             [116 * 0.2068966 - 16, 0.0, 0.0], [0.0, 500 * 0.2068966, -200 * 0.2068966]]


def colour_inputs(name, n, hw, rng):
    if name.startswith("rgb"):
        x = rng.uniform(-0.2, 1.2, (n, 3, hw))
        x.reshape(-1)[: len(KINKS_RGB)] = KINKS_RGB
    else:
        x = np.stack([rng.uniform(-10, 110, (n, hw)), rng.uniform(-150, 150, (n, hw)),
                      rng.uniform(-150, 150, (n, hw))], axis=1)
        for i, lab in enumerate(KINKS_LAB[: hw]):
            x[0, :, i] = lab
    return x.astype(np.float32), rng.standard_normal((n, 3, hw)).astype(np.float32)


@pytest.mark.parametrize("name", sorted(COLORSPACE))
@pytest.mark.parametrize("n,hw", [(1, 9), (2, 37), (4, 4099)])
def test_colorspace(name, n, hw):
    x, dy = colour_inputs(name, n, hw, np.random.default_rng(n * hw))

    def run(m):
        out = m.Array(x.size)
        if name.endswith("_vjp"):
            getattr(m, name)(put(m, x), put(m, dy), out, n, hw)
        else:
            getattr(m, name)(put(m, x), out, n, hw)
        return get(m, out)

    got, want = both(run)
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_colorspace_in_place():
    x, _ = colour_inputs("rgb_to_lab", 2, 50, np.random.default_rng(2))
    h = put(cpu, x)
    cpu.rgb_to_lab(h, h, 2, 50)
    want = ref.Array(x.size)
    ref.rgb_to_lab(put(ref, x), want, 2, 50)
    np.testing.assert_allclose(get(cpu, h), get(ref, want), rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------- runtime


def test_runtime_functions():
    threads = cpu.get_num_threads()
    try:
        cpu.set_num_threads(1)
        assert cpu.get_num_threads() == 1
    finally:
        cpu.set_num_threads(threads)
    cpu.synchronize()
    assert cpu.device_count() == 1
    assert cpu.__device_name__ == "cpu"
    assert cpu._isa() in ("avx512", "avx2", "generic")
    with pytest.raises(ValueError):
        cpu._set_isa("sse9")


# ---------------------------------------------------------------- robustness

A = cpu.Array
HUGE = 2 ** 62
BAD_CALLS = {
    "array-negative": lambda: A(-1),
    "threads-zero": lambda: cpu.set_num_threads(0),
    "from_numpy-small-out": lambda: cpu.from_numpy(np.zeros(10, np.float32), A(5)),
    "to_numpy-past-end": lambda: cpu.to_numpy(A(10), (11,), (1,), 0),
    "to_numpy-negative-offset": lambda: cpu.to_numpy(A(10), (2,), (1,), -1),
    "to_numpy-negative-stride-before-start": lambda: cpu.to_numpy(A(10), (6,), (-1,), 4),
    "to_numpy-huge-stride": lambda: cpu.to_numpy(A(10), (3,), (HUGE,), 0),
    "to_numpy-huge-offset": lambda: cpu.to_numpy(A(10), (1,), (1,), 2 ** 63 - 1),
    "to_numpy-stride-overflow": lambda: cpu.to_numpy(A(10), (4, 4), (HUGE, HUGE), 0),
    "to_numpy-negative-dim": lambda: cpu.to_numpy(A(10), (-2,), (1,), 0),
    "to_numpy-length-mismatch": lambda: cpu.to_numpy(A(10), (2, 2), (1,), 0),
    "to_numpy-size-overflow": lambda: cpu.to_numpy(A(10), (2 ** 40, 2 ** 40), (0, 0), 0),
    "compact-small-out": lambda: cpu.compact(A(10), A(3), (2, 2), (2, 1), 0),
    "compact-outside": lambda: cpu.compact(A(10), A(30), (3, 4), (4, 1), 0),
    "compact-huge-zero-stride": lambda: cpu.compact(A(10), A(10), (HUGE,), (0,), 0),
    "ewise_setitem-small-a": lambda: cpu.ewise_setitem(A(3), A(10), (2, 2), (2, 1), 0),
    "ewise_setitem-outside": lambda: cpu.ewise_setitem(A(12), A(10), (3, 4), (-4, 1), 7),
    "scalar_setitem-outside": lambda: cpu.scalar_setitem(4, 1.0, A(10), (4,), (3,), 2),
    "scalar_setitem-size-mismatch": lambda: cpu.scalar_setitem(5, 1.0, A(10), (4,), (1,), 0),
    "ewise_add-size-mismatch": lambda: cpu.ewise_add(A(4), A(5), A(5)),
    "ewise_mul-small-out": lambda: cpu.ewise_mul(A(4), A(4), A(3)),
    "scalar_add-small-out": lambda: cpu.scalar_add(A(4), 1.0, A(3)),
    "ewise_exp-small-out": lambda: cpu.ewise_exp(A(4), A(0)),
    "matmul-small-a": lambda: cpu.matmul(A(5), A(6), A(4), 1, 2, 3, 2),
    "matmul-small-out": lambda: cpu.matmul(A(6), A(6), A(3), 1, 2, 3, 2),
    "matmul-negative": lambda: cpu.matmul(A(6), A(6), A(4), 1, -2, 3, 2),
    "matmul-overflow": lambda: cpu.matmul(A(6), A(6), A(4), 2 ** 40, 2 ** 40, 2 ** 40, 1),
    "reduce-zero": lambda: cpu.reduce_sum(A(6), A(2), 0),
    "reduce-negative": lambda: cpu.reduce_max(A(6), A(2), -3),
    "reduce-small-a": lambda: cpu.reduce_sum(A(5), A(2), 3),
    "reduce-overflow": lambda: cpu.reduce_sum(A(5), A(4), HUGE),
    "conv-stride-zero": lambda: cpu.conv2d_forward(A(50), A(9), None, A(50), 1, 1, 5, 5, 1, 3, 3, 0, 1),
    "conv-negative-padding": lambda: cpu.conv2d_forward(A(50), A(9), None, A(50), 1, 1, 5, 5, 1, 3, 3, 1, -1),
    "conv-zero-kernel": lambda: cpu.conv2d_forward(A(50), A(9), None, A(50), 1, 1, 5, 5, 1, 0, 3, 1, 1),
    "conv-negative-batch": lambda: cpu.conv2d_forward(A(50), A(9), None, A(50), -1, 1, 5, 5, 1, 3, 3, 1, 1),
    "conv-kernel-too-big": lambda: cpu.conv2d_forward(A(50), A(81), None, A(50), 1, 1, 5, 5, 1, 9, 9, 1, 1),
    "conv-small-x": lambda: cpu.conv2d_forward(A(24), A(9), None, A(25), 1, 1, 5, 5, 1, 3, 3, 1, 1),
    "conv-small-w": lambda: cpu.conv2d_forward(A(25), A(8), None, A(25), 1, 1, 5, 5, 1, 3, 3, 1, 1),
    "conv-small-out": lambda: cpu.conv2d_forward(A(25), A(9), None, A(24), 1, 1, 5, 5, 1, 3, 3, 1, 1),
    "conv-small-bias": lambda: cpu.conv2d_forward(A(25), A(18), A(1), A(50), 1, 1, 5, 5, 2, 3, 3, 1, 1),
    "conv-huge-padding": lambda: cpu.conv2d_forward(A(25), A(9), None, A(25), 1, 1, 5, 5, 1, 3, 3, 1, HUGE),
    "conv-size-overflow": lambda: cpu.conv2d_forward(A(25), A(9), None, A(25), HUGE, 4, 5, 5, 1, 3, 3, 1, 1),
    "conv-big-padding-small-out": lambda: cpu.conv2d_forward(A(25), A(9), None, A(25), 1, 1, 5, 5, 1, 3, 3, 1,
                                                              2 ** 20),
    "conv_bi-small-dy": lambda: cpu.conv2d_backward_input(A(8), A(9), A(25), 1, 1, 5, 5, 1, 3, 3, 2, 1),
    "conv_bi-small-dx": lambda: cpu.conv2d_backward_input(A(9), A(9), A(24), 1, 1, 5, 5, 1, 3, 3, 2, 1),
    "conv_bi-stride-zero": lambda: cpu.conv2d_backward_input(A(9), A(9), A(25), 1, 1, 5, 5, 1, 3, 3, 0, 1),
    "conv_bw-small-dw": lambda: cpu.conv2d_backward_weight(A(25), A(9), A(8), 1, 1, 5, 5, 1, 3, 3, 2, 1),
    "conv_bw-small-x": lambda: cpu.conv2d_backward_weight(A(20), A(9), A(9), 1, 1, 5, 5, 1, 3, 3, 2, 1),
    "conv_bw-negative-padding": lambda: cpu.conv2d_backward_weight(A(25), A(9), A(9), 1, 1, 5, 5, 1, 3, 3, 2,
                                                                    -2),
    "upsample-scale-zero": lambda: cpu.upsample_nearest_forward(A(4), A(16), 1, 2, 2, 0),
    "upsample-negative": lambda: cpu.upsample_nearest_forward(A(4), A(16), -1, 2, 2, 2),
    "upsample-small-out": lambda: cpu.upsample_nearest_forward(A(4), A(15), 1, 2, 2, 2),
    "upsample-small-x": lambda: cpu.upsample_nearest_forward(A(3), A(16), 1, 2, 2, 2),
    "upsample-overflow": lambda: cpu.upsample_nearest_forward(A(4), A(16), 1, 2, 2, 2 ** 31),
    "upsample_bw-small-dy": lambda: cpu.upsample_nearest_backward(A(15), A(4), 1, 2, 2, 2),
    "upsample_bw-small-dx": lambda: cpu.upsample_nearest_backward(A(16), A(3), 1, 2, 2, 2),
    "concat-list-lengths": lambda: cpu.concat_forward([A(4), A(4)], A(8), 2, [2]),
    "concat-negative-width": lambda: cpu.concat_forward([A(4), A(4)], A(8), 2, [2, -2]),
    "concat-negative-outer": lambda: cpu.concat_forward([A(4)], A(8), -2, [2]),
    "concat-small-input": lambda: cpu.concat_forward([A(4), A(3)], A(8), 2, [2, 2]),
    "concat-small-out": lambda: cpu.concat_forward([A(4), A(4)], A(7), 2, [2, 2]),
    "concat-none-input": lambda: cpu.concat_forward([A(4), None], A(8), 2, [2, 2]),
    "concat-overflow": lambda: cpu.concat_forward([A(4), A(4)], A(8), HUGE, [HUGE, HUGE]),
    "concat-out-is-input": lambda: (a := A(8), cpu.concat_forward([a], a, 2, [4])),
    "concat_bw-small-dy": lambda: cpu.concat_backward(A(7), [A(4), A(4)], 2, [2, 2]),
    "concat_bw-small-out": lambda: cpu.concat_backward(A(8), [A(4), A(3)], 2, [2, 2]),
    "concat_bw-list-lengths": lambda: cpu.concat_backward(A(8), [A(4)], 2, [2, 2]),
    "colour-negative": lambda: cpu.rgb_to_lab(A(6), A(6), -1, 2),
    "colour-small-x": lambda: cpu.lab_to_rgb(A(5), A(6), 1, 2),
    "colour-small-out": lambda: cpu.rgb_to_lab(A(6), A(5), 1, 2),
    "colour-small-dy": lambda: cpu.rgb_to_lab_vjp(A(6), A(5), A(6), 1, 2),
    "colour-small-dx": lambda: cpu.lab_to_rgb_vjp(A(6), A(6), A(5), 1, 2),
    "colour-overflow": lambda: cpu.lab_to_rgb(A(6), A(6), HUGE, HUGE),
}


@pytest.mark.parametrize("name", sorted(BAD_CALLS))
def test_bad_arguments_raise(name):
    with pytest.raises((ValueError, IndexError)):
        BAD_CALLS[name]()


def test_module_still_works_after_bad_calls():
    for call in BAD_CALLS.values():
        try:
            call()
        except (ValueError, IndexError):
            pass
    h = put(cpu, np.arange(4, dtype=np.float32))
    out = cpu.Array(4)
    cpu.ewise_add(h, h, out)
    np.testing.assert_array_equal(get(cpu, out), 2 * np.arange(4, dtype=np.float32))
