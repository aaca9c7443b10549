"""The CPU backend's fast colour-space kernels against its plain C++ reference.

cpu.rgb_to_lab, lab_to_rgb and their _vjp (a register of pixels per vector,
both branches of each piecewise curve evaluated, roots by Newton steps) must
agree with cpu.reference's scalar double loops (std::pow, std::cbrt, one
branch taken): forward within 1e-5 of the values' size, vjp within 1e-4,
everything finite.  Both compute in double and round once, so they differ by
at most one float32 ulp.  Every ISA path this CPU has runs (the module's
private _set_isa hook).  Inputs: random images of odd sizes (every vector
tail, several spans per image, both sides of the parallel threshold), the
points where the curves switch branch (and the floats next to them), zero,
negative and out-of-gamut values, and calls whose output array is an input.
The reference itself is checked against numpy.
"""

import importlib

import numpy as np
import pytest

import needle.backend_ndarray.ndarray_backend_numpy as numpy_ref
from backend_helpers import get, put

try:
    cpu = importlib.import_module("needle.backend_ndarray.ndarray_backend_cpu")
except ImportError as err:  # pragma: no cover - depends on the build
    pytest.skip(f"ndarray_backend_cpu is not built ({err}); run `make build`", allow_module_level=True)

KERNELS = ["rgb_to_lab", "lab_to_rgb"]
# hw: 1..17 (every tail of an 8- or 16-pixel vector), one span of 1024 pixels
# and its neighbours, several spans with a tail; n * hw >= 2048 runs threaded.
SIZES = ([(1, hw) for hw in range(1, 18)] + [(3, hw) for hw in (5, 15, 31, 33)] +
         [(2, 1023), (1, 1024), (3, 1025), (2, 2048 + 13), (40, 65), (2, 4099)])


@pytest.fixture(params=[1, 3])
def threads(request):
    before = cpu.get_num_threads()
    cpu.set_num_threads(request.param)
    yield request.param
    cpu.set_num_threads(before)


def nudged(values):
    """values and the float32 just below and above each."""
    v = np.asarray(values, np.float32)
    return np.concatenate([v, np.nextafter(v, np.float32(-np.inf)), np.nextafter(v, np.float32(np.inf))])


def special_pixels(kernel):
    """(k, 3) pixels on and around every branch switch, plus extremes."""
    if kernel == "rgb_to_lab":
        # The grey whose t = Y/Yn is epsilon, the cube root's switch.
        grey_epsilon = 1.055 * numpy_ref.LAB_EPSILON ** (1 / 2.4) - 0.055
        values = nudged([0.0, 0.04045, 0.0031308, 0.008856, 0.2068966, grey_epsilon, 1.0,
                         -0.1, -1.0, 1.3, 2.0, 10.0, 1e4, 1e-40, -0.0])
        return np.concatenate([np.stack([values] * 3, 1),
                               np.stack([values, np.full_like(values, 0.5), values[::-1]], 1)])
    # Greys (a = b = 0) whose f is the cube's switch 0.2068966, whose linear
    # RGB is the gamma switch 0.0031308 and whose L is 0; colours whose fx or
    # fz alone is at the cube's switch; colours far out of gamut.
    switch_f = 116 * 0.2068966 - 16
    switch_gamma = 116 * numpy_ref.LAB_KAPPA * 0.0031308
    grey = nudged([switch_f, switch_gamma, 0.0, 8.0, 100.0, -5.0, 1e3])
    lab = [[0.0, 500 * 0.2068966, -200 * 0.2068966], [50.0, 120.0, -130.0], [110.0, -150.0, 150.0],
           [60.0, 500 * (0.2068966 - 76 / 116), 0.0], [60.0, 0.0, 200 * (76 / 116 - 0.2068966)],
           [-20.0, 300.0, -300.0], [1e4, 1e4, -1e4], [0.0, -1e3, 1e3]]
    return np.concatenate([np.stack([grey, np.zeros_like(grey), np.zeros_like(grey)], 1),
                           np.asarray(lab, np.float32)])


def random_inputs(kernel, n, hw, rng, special=True):
    """x (n, 3, hw) in and beyond each kernel's usual range, and dy; the special
    pixels overwrite the first and the last ones (the vector body and the tail)."""
    if kernel == "rgb_to_lab":
        x = rng.uniform(-0.2, 1.3, (n, 3, hw))
    else:
        x = np.stack([rng.uniform(-10, 110, (n, hw)), rng.uniform(-150, 150, (n, hw)),
                      rng.uniform(-150, 150, (n, hw))], axis=1)
    if special:
        pixels = x.transpose(0, 2, 1).reshape(-1, 3)
        points = special_pixels(kernel)
        k = min(len(points), len(pixels) // 2)
        pixels[:k], pixels[len(pixels) - k:] = points[:k], points[len(points) - k:]
        x = pixels.reshape(n, hw, 3).transpose(0, 2, 1)
    return x.astype(np.float32), rng.standard_normal((n, 3, hw)).astype(np.float32)


def run(mod, name, x, dy=None, out_is=None):
    """mod.name on x (and dy) -> (n, 3, hw) result; out_is "x" or "dy" writes in place."""
    n, _, hw = x.shape
    hx = put(cpu, x)
    hdy = None if dy is None else put(cpu, dy)
    out = {"x": hx, "dy": hdy, None: cpu.Array(x.size)}[out_is]
    fn = getattr(mod, name if dy is None else name + "_vjp")
    fn(hx, out, n, hw) if dy is None else fn(hx, hdy, out, n, hw)
    return get(cpu, out).reshape(x.shape)


def assert_close(fast, ref, rel):
    """Within rel of each value or of the values' typical size (the median,
    which the extreme pixels do not move)."""
    assert np.isfinite(ref).all()
    assert np.isfinite(fast).all()
    np.testing.assert_allclose(fast, ref, rtol=rel, atol=rel * float(np.median(np.abs(ref))))


def check(kernel, x, dy):
    assert_close(run(cpu, kernel, x), run(cpu.reference, kernel, x), 1e-5)
    assert_close(run(cpu, kernel, x, dy), run(cpu.reference, kernel, x, dy), 1e-4)


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("n,hw", SIZES, ids=str)
def test_fast_matches_reference(isa, kernel, n, hw):
    x, dy = random_inputs(kernel, n, hw, np.random.default_rng(n * 10000 + hw))
    check(kernel, x, dy)


@pytest.mark.parametrize("kernel", KERNELS)
def test_split_across_threads(isa, kernel, threads):
    x, dy = random_inputs(kernel, 5, 3001, np.random.default_rng(threads))
    check(kernel, x, dy)


@pytest.mark.parametrize("kernel", KERNELS)
def test_branch_switches_and_extremes(isa, kernel):
    """Every special pixel alone, in a vector body and in a tail of each length."""
    points = special_pixels(kernel)
    rng = np.random.default_rng(3)
    for pad in range(16):
        x = np.concatenate([points, points[:pad]]).T[None].astype(np.float32)
        check(kernel, x, rng.standard_normal(x.shape).astype(np.float32))


@pytest.mark.parametrize("kernel", KERNELS)
def test_agree_to_one_ulp(isa, kernel):
    """Both paths are double-accurate: float32 results differ by one ulp at most,
    except values that are only the rounding noise of a cancellation (L = 116 f - 16
    of black is 0, or -2e-16 where the compiler fused it into an FMA)."""
    x, dy = random_inputs(kernel, 4, 20011, np.random.default_rng(11), special=False)
    for g in (None, dy):
        fast, ref = run(cpu, kernel, x, g), run(cpu.reference, kernel, x, g)
        sizable = np.abs(ref) > 1e-6 * np.median(np.abs(ref))
        np.testing.assert_array_max_ulp(fast[sizable], ref[sizable], maxulp=1)


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("out_is", ["x", "dy"])
def test_output_may_be_an_input(isa, kernel, out_is):
    x, dy = random_inputs(kernel, 3, 1029, np.random.default_rng(5))
    if out_is == "x":  # forward: out is x
        assert_close(run(cpu, kernel, x, out_is="x"), run(cpu.reference, kernel, x), 1e-5)
    want = run(cpu.reference, kernel, x, dy)
    assert_close(run(cpu, kernel, x, dy, out_is=out_is), want, 1e-4)
    assert_close(run(cpu.reference, kernel, x, dy, out_is=out_is), want, 1e-4)


@pytest.mark.parametrize("kernel", KERNELS)
def test_reference_matches_numpy(kernel):
    x, dy = random_inputs(kernel, 3, 517, np.random.default_rng(17))
    n, _, hw = x.shape
    for name, args in ((kernel, (x,)), (kernel + "_vjp", (x, dy))):
        want = numpy_ref.Array(x.size)
        getattr(numpy_ref, name)(*[put(numpy_ref, a) for a in args], want, n, hw)
        got = run(cpu.reference, kernel, *args)
        np.testing.assert_allclose(got.reshape(-1), get(numpy_ref, want), rtol=1e-5, atol=1e-5)


def test_empty_sizes():
    for mod in (cpu, cpu.reference):
        for name in KERNELS:
            for n, hw in ((0, 5), (3, 0)):
                getattr(mod, name)(cpu.Array(0), cpu.Array(0), n, hw)
                getattr(mod, name + "_vjp")(cpu.Array(0), cpu.Array(0), cpu.Array(0), n, hw)


@pytest.mark.parametrize("mod", ["fast", "reference"])
def test_both_paths_validate_alike(mod):
    m = cpu if mod == "fast" else cpu.reference
    A = cpu.Array
    with pytest.raises(ValueError, match="bad colour sizes"):
        m.rgb_to_lab(A(6), A(6), -1, 2)
    with pytest.raises(ValueError, match="x"):
        m.lab_to_rgb(A(5), A(6), 1, 2)
    with pytest.raises(ValueError, match="out"):
        m.rgb_to_lab(A(6), A(5), 1, 2)
    with pytest.raises(ValueError, match="dy"):
        m.rgb_to_lab_vjp(A(6), A(5), A(6), 1, 2)
    with pytest.raises(ValueError, match="dx"):
        m.lab_to_rgb_vjp(A(6), A(6), A(5), 1, 2)
    with pytest.raises(ValueError, match="overflow"):
        m.lab_to_rgb(A(6), A(6), 2 ** 62, 2 ** 62)


def test_signatures_match():
    for kernel in KERNELS:
        for name in (kernel, kernel + "_vjp"):
            assert getattr(cpu, name).__doc__ == getattr(cpu.reference, name).__doc__
    x = put(cpu, np.full(6, 0.5, np.float32))
    cpu.reference.rgb_to_lab(x=x, out=cpu.Array(6), n=1, hw=2)
    cpu.reference.lab_to_rgb_vjp(x=x, dy=x, dx=cpu.Array(6), n=1, hw=2)
