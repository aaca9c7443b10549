"""The CPU backend's fast upsample kernels against its plain C++ reference.

cpu.upsample_nearest_forward/_backward (vectorized for scale 2, compiled
once per ISA) must agree bit for bit with cpu.reference's serial loops: forward
only copies, and backward adds each block in the same order (columns, then
across).  Shapes are random: odd sizes, widths 1..17 and a few longer ones
(vector tails of every length), scales 1..3, planes 1..5, on every ISA this
CPU has, with plain and with streaming stores (a private hook forces each),
on both sides of the parallel threshold.  The reference itself is
checked against numpy.
"""

import importlib

import numpy as np
import pytest

from backend_helpers import get, put

try:
    cpu = importlib.import_module("needle.backend_ndarray.ndarray_backend_cpu")
except ImportError as err:  # pragma: no cover - depends on the build
    pytest.skip(f"ndarray_backend_cpu is not built ({err}); run `make build`", allow_module_level=True)

# Past the backend's parallel threshold (2**15 elements), so several threads
# split the rows; widths 8 and 16 keep every thread's rows vector-aligned,
# where streamed stores are used.
LARGE = [(37, 9, 13, 2), (11, 7, 33, 3), (1, 1, 40000, 1), (3, 5, 1031, 2), (130, 16, 33, 2),
         (150, 9, 23, 3), (2, 3, 11111, 2), (70, 8, 16, 2), (130, 9, 8, 2)]


@pytest.fixture(params=["plain", "streamed"])
def stores(request):
    """Both store paths, whatever this machine's cache size makes the default."""
    cpu._set_stream_threshold(0 if request.param == "streamed" else 1 << 62)
    yield request.param
    cpu._set_stream_threshold(-1)


@pytest.fixture(params=[1, 2, 3])
def threads(request):
    before = cpu.get_num_threads()
    cpu.set_num_threads(request.param)
    yield request.param
    cpu.set_num_threads(before)


def random_shapes(seed, count=40):
    rng = np.random.default_rng(seed)
    shapes = [(int(rng.integers(1, 6)), int(rng.integers(1, 8)), w, int(rng.integers(1, 4)))
              for w in range(1, 18)]
    shapes += [(int(rng.integers(1, 6)), int(rng.integers(1, 8)), int(rng.integers(18, 70)),
                int(rng.integers(1, 4))) for _ in range(count - len(shapes))]
    return shapes + [(p, h, w, 2) for p in (1, 4) for h in (1, 3) for w in (1, 2, 3, 5, 8, 16, 31)]


def same_bits(a, b):
    return a.shape == b.shape and np.array_equal(a.view(np.uint32), b.view(np.uint32))


def run(fn, src, dst_size, *sizes):
    dst = cpu.Array(dst_size)
    fn(put(cpu, src), dst, *sizes)
    return get(cpu, dst)


def numpy_forward(x, planes, h, w, scale):
    return x.reshape(planes, h, w).repeat(scale, 1).repeat(scale, 2).reshape(-1)


def numpy_backward(dy, planes, h, w, scale):
    return dy.reshape(planes, h, scale, w, scale).astype(np.float64).sum((2, 4)).reshape(-1)


def check_forward(rng, planes, h, w, scale):
    x = rng.standard_normal(planes * h * w).astype(np.float32)
    n = x.size * scale * scale
    fast = run(cpu.upsample_nearest_forward, x, n, planes, h, w, scale)
    ref = run(cpu.reference.upsample_nearest_forward, x, n, planes, h, w, scale)
    assert same_bits(fast, ref), (planes, h, w, scale)
    assert same_bits(ref, numpy_forward(x, planes, h, w, scale))


def check_backward(rng, planes, h, w, scale):
    dy = rng.standard_normal(planes * h * w * scale * scale).astype(np.float32)
    n = planes * h * w
    fast = run(cpu.upsample_nearest_backward, dy, n, planes, h, w, scale)
    ref = run(cpu.reference.upsample_nearest_backward, dy, n, planes, h, w, scale)
    assert same_bits(fast, ref), (planes, h, w, scale)
    np.testing.assert_allclose(ref, numpy_backward(dy, planes, h, w, scale), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("seed", range(3))
def test_forward_matches_reference(isa, stores, seed):
    rng = np.random.default_rng(100 + seed)
    for sizes in random_shapes(seed):
        check_forward(rng, *sizes)


@pytest.mark.parametrize("seed", range(3))
def test_backward_matches_reference(isa, stores, seed):
    rng = np.random.default_rng(200 + seed)
    for sizes in random_shapes(seed):
        check_backward(rng, *sizes)


@pytest.mark.parametrize("sizes", LARGE, ids=str)
def test_large_shapes_split_across_threads(isa, stores, threads, sizes):
    rng = np.random.default_rng(7)
    check_forward(rng, *sizes)
    check_backward(rng, *sizes)


def test_empty_sizes():
    for sizes in [(0, 3, 4, 2), (2, 0, 4, 2), (2, 3, 0, 3)]:
        for mod in (cpu, cpu.reference):
            out = cpu.Array(0)
            mod.upsample_nearest_forward(cpu.Array(0), out, *sizes)
            mod.upsample_nearest_backward(cpu.Array(0), out, *sizes)


@pytest.mark.parametrize("scale", [1, 2, 3])
def test_in_place_calls_agree(isa, stores, scale):
    """x (dy) may be the output array itself: both paths read a private copy first."""
    rng = np.random.default_rng(scale)
    planes, h, w = 3, 5, 7
    small, big = planes * h * w, planes * h * w * scale * scale
    values = rng.standard_normal(big).astype(np.float32)
    results = []
    for mod in (cpu, cpu.reference):
        fwd = put(cpu, values)
        mod.upsample_nearest_forward(fwd, fwd, planes, h, w, scale)
        bwd = put(cpu, values)
        mod.upsample_nearest_backward(bwd, bwd, planes, h, w, scale)
        results.append((get(cpu, fwd), get(cpu, bwd, small)))
    assert same_bits(results[0][0], results[1][0])
    assert same_bits(results[0][0], numpy_forward(values[:small], planes, h, w, scale))
    assert same_bits(results[0][1], results[1][1])
    np.testing.assert_allclose(results[0][1], numpy_backward(values, planes, h, w, scale), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("mod", ["fast", "reference"])
def test_both_paths_validate_alike(mod):
    m = cpu if mod == "fast" else cpu.reference
    with pytest.raises(ValueError, match="bad upsample sizes"):
        m.upsample_nearest_forward(cpu.Array(4), cpu.Array(16), 1, 2, 2, 0)
    with pytest.raises(ValueError, match="^out holds 15 elements"):
        m.upsample_nearest_forward(cpu.Array(4), cpu.Array(15), 1, 2, 2, 2)
    with pytest.raises(ValueError, match="^dy holds 15 elements"):
        m.upsample_nearest_backward(cpu.Array(15), cpu.Array(4), 1, 2, 2, 2)
    with pytest.raises(ValueError, match="overflow"):
        m.upsample_nearest_forward(cpu.Array(4), cpu.Array(16), 1 << 40, 1 << 20, 2, 2)


def test_signatures_match():
    for name in ("upsample_nearest_forward", "upsample_nearest_backward"):
        assert getattr(cpu, name).__doc__ == getattr(cpu.reference, name).__doc__
