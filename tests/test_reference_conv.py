"""The C++ convolution and SGEMM fast paths against the module's plain C++ reference.

Each fast path (implicit GEMM, pixel-major GEMM, col2im backward-input,
the direct kernels for thin convolutions) is chosen by shape, so the random
shapes span both sides of every switch: channel counts below and above the
thin-convolution threshold, odd sizes, strides 1 and 2 (and 3), paddings
0..2, kernel sizes 1..5, once per micro-kernel ISA the CPU has.
"""

import importlib

import numpy as np
import pytest

from backend_helpers import get, put

try:
    cpu = importlib.import_module("needle.backend_ndarray.ndarray_backend_cpu")
except ImportError as err:  # pragma: no cover - depends on the build
    pytest.skip(f"ndarray_backend_cpu is not built ({err}); run `make build`", allow_module_level=True)

def random_conv(rng, batch=(1, 4), channels=(1, 2, 3, 7, 8, 9, 17)):
    """(n, c, h, w, o, k, stride, padding) with the kernel fitting the padded input."""
    while True:
        n = int(rng.integers(*batch))
        c, o = (int(rng.choice(channels)) for _ in range(2))
        k = int(rng.choice([1, 2, 3, 5]))
        stride, padding = int(rng.choice([1, 1, 2, 3])), int(rng.integers(0, 3))
        h, w = (int(v) for v in rng.integers(1, 20, 2))
        if h + 2 * padding >= k and w + 2 * padding >= k:
            return n, c, h, w, o, k, stride, padding


def run_conv(mod, direction, arrays, sizes, out_size):
    """direction of mod (the module or its reference) on the module's Arrays."""
    out = cpu.Array(out_size)
    handles = [put(cpu, a) if a is not None else None for a in arrays]
    getattr(mod, direction)(*handles, out, *sizes)
    return get(cpu, out)


def check_against_reference(isa, n, c, h, w, o, k, s, p, seed):
    rng = np.random.default_rng(seed)
    ho, wo = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    x = rng.standard_normal((n, c, h, w), dtype=np.float32)
    wt = rng.standard_normal((o, c, k, k), dtype=np.float32)
    bias = rng.standard_normal(o, dtype=np.float32) if seed % 2 else None
    dy = rng.standard_normal((n, o, ho, wo), dtype=np.float32)
    sizes = (n, c, h, w, o, k, k, s, p)
    cases = [("conv2d_forward", (x, wt, bias), n * o * ho * wo),
             ("conv2d_backward_input", (dy, wt), x.size),
             ("conv2d_backward_weight", (x, dy), wt.size)]
    for direction, arrays, out_size in cases:
        fast = run_conv(cpu, direction, arrays, sizes, out_size)
        slow = run_conv(cpu.reference, direction, arrays, sizes, out_size)
        # Sums of up to c*k*k (or n*ho*wo) products in another order.
        scale = np.sqrt(max(c * k * k, n * ho * wo))
        np.testing.assert_allclose(fast, slow, rtol=0, atol=2e-5 * scale,
                                   err_msg=f"{direction} sizes={sizes} isa={isa}")


@pytest.mark.parametrize("seed", range(40))
def test_conv_fast_paths_match_reference(isa, seed):
    check_against_reference(isa, *random_conv(np.random.default_rng(seed)), seed)


@pytest.mark.parametrize("seed", range(16))
def test_pixel_major_gemm_matches_reference(isa, seed):
    """Batches of 16 and more on small planes take the pixel-major GEMM, with
    its padding-tap skipping (strides up to 3, where some input pixels get
    no tap at all) and runs of images that do not fill a panel."""
    n, c, h, w, o, k, s, p = random_conv(np.random.default_rng(1000 + seed), batch=(16, 41),
                                         channels=(8, 9, 17))
    check_against_reference(isa, n, c, h, w, o, k, s, p, seed)


@pytest.mark.parametrize("sizes", [(2, 9, 32, 32, 8, 3, 1), (3, 17, 40, 33, 11, 3, 1), (1, 13, 36, 36, 9, 5, 2)])
def test_shifted_backward_weight_matches_reference(isa, sizes):
    """Planes of 32x32 and up take backward_weight's shift GEMM (pixel-major copies)."""
    n, c, h, w, o, k, p = sizes
    check_against_reference(isa, n, c, h, w, o, k, 1, p, seed=h + w)


def test_thin_convolutions_at_network_sizes():
    """The direct kernels at the stem's and head's shapes, with a tail of lanes (width 33)."""
    rng = np.random.default_rng(0)
    for c, o in [(1, 16), (24, 2)]:
        n, h, w, k, s, p = 2, 9, 33, 3, 1, 1
        x = rng.standard_normal((n, c, h, w), dtype=np.float32)
        wt = rng.standard_normal((o, c, k, k), dtype=np.float32)
        dy = rng.standard_normal((n, o, h, w), dtype=np.float32)
        sizes = (n, c, h, w, o, k, k, s, p)
        for direction, arrays, size in [("conv2d_forward", (x, wt, None), dy.size),
                                        ("conv2d_backward_input", (dy, wt), x.size),
                                        ("conv2d_backward_weight", (x, dy), wt.size)]:
            np.testing.assert_allclose(run_conv(cpu, direction, arrays, sizes, size),
                                       run_conv(cpu.reference, direction, arrays, sizes, size),
                                       rtol=0, atol=1e-4, err_msg=f"{direction} c={c} o={o}")


@pytest.mark.parametrize("seed", range(12))
def test_matmul_matches_reference(isa, seed):
    """Rows up to 300: one A slab (B packed panel by panel) and several."""
    rng = np.random.default_rng(seed)
    batch = int(rng.integers(1, 4))
    m, n, p = int(rng.integers(1, 300)), int(rng.integers(1, 70)), int(rng.integers(1, 70))
    a = rng.standard_normal((batch, m, n), dtype=np.float32)
    b = rng.standard_normal((batch, n, p), dtype=np.float32)
    got = run_conv(cpu, "matmul", (a, b), (batch, m, n, p), batch * m * p)
    want = run_conv(cpu.reference, "matmul", (a, b), (batch, m, n, p), batch * m * p)
    np.testing.assert_allclose(got, want, rtol=0, atol=2e-5 * np.sqrt(n))


@pytest.mark.parametrize("name", ["conv2d_forward", "conv2d_backward_input",
                                  "conv2d_backward_weight", "matmul"])
def test_reference_validates_like_the_fast_path(name):
    small = cpu.Array(4)
    args = {"matmul": (small, small, small, 1, 3, 3, 3)}.get(
        name, (small, small, small, 1, 1, 3, 3, 1, 3, 3, 1, 0))
    if name == "conv2d_forward":
        args = args[:2] + (None,) + args[2:]
    for mod in (cpu, cpu.reference):
        with pytest.raises(ValueError, match="holds 4 elements"):
            getattr(mod, name)(*args)
