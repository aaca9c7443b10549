"""The reference backend: every function of the contract (contract.py) in plain numpy.

It is the definition the C++ and CUDA backends are tested against, so it is
written for clarity, not speed; arithmetic that must be exact (colour
conversion, convolution sums) is done in float64 and rounded once.
"""

import numpy as np

__device_name__ = "cpu_numpy"
__tile_size__ = 1


class Array:
    """A flat float32 buffer."""

    def __init__(self, size):
        if size < 0:
            raise ValueError(f"Array size must be >= 0, got {size}")
        self.array = np.empty(int(size), dtype=np.float32)

    @property
    def size(self):
        return self.array.size


def _check_size(name, arr, needed):
    if arr.size < needed:
        raise ValueError(f"{name} holds {arr.size} elements, the call needs {needed}")


def _view(a, shape, strides, offset):
    shape, strides = tuple(int(s) for s in shape), tuple(int(s) for s in strides)
    if len(shape) != len(strides):
        raise ValueError(f"shape {shape} and strides {strides} differ in length")
    if any(s < 0 for s in shape):
        raise ValueError(f"negative dimension in shape {shape}")
    if 0 in shape:
        return np.empty(shape, dtype=np.float32)
    lo = offset + sum(st * (n - 1) for n, st in zip(shape, strides) if st < 0)
    hi = offset + sum(st * (n - 1) for n, st in zip(shape, strides) if st > 0)
    if lo < 0 or hi >= a.size:
        raise IndexError(f"view shape={shape} strides={strides} offset={offset} "
                         f"reaches [{lo}, {hi}] outside a buffer of {a.size} elements")
    # as_strided cannot step before its base pointer: build the view with
    # |strides| from the lowest element, then flip the negative axes.
    base = np.lib.stride_tricks.as_strided(
        a.array[lo:], shape, tuple(abs(s) * a.array.itemsize for s in strides))
    # The trailing Ellipsis keeps a 0-d view a writable view rather than a scalar.
    return base[tuple(slice(None, None, -1) if s < 0 else slice(None) for s in strides) + (Ellipsis,)]


# ---------------------------------------------------------------- runtime


def set_num_threads(n):
    if n < 1:
        raise ValueError(f"thread count must be >= 1, got {n}")


def get_num_threads():
    return 1


def synchronize():
    pass


def device_count():
    return 1


# ---------------------------------------------------------------- memory


def from_numpy(a, out):
    a = np.ascontiguousarray(a, dtype=np.float32).reshape(-1)
    _check_size("out", out, a.size)
    out.array[: a.size] = a


def to_numpy(a, shape, strides, offset):
    return np.array(_view(a, shape, strides, offset), dtype=np.float32, copy=True)


def fill(out, val):
    out.array[:] = val


def compact(a, out, shape, strides, offset):
    size = int(np.prod(shape))
    _check_size("out", out, size)
    out.array[:size] = _view(a, shape, strides, offset).reshape(-1)


def ewise_setitem(a, out, shape, strides, offset):
    size = int(np.prod(shape))
    _check_size("a", a, size)
    _view(out, shape, strides, offset)[...] = a.array[:size].reshape(shape)


def scalar_setitem(size, val, out, shape, strides, offset):
    _view(out, shape, strides, offset)[...] = val


# ---------------------------------------------------------------- element-wise


def _binary(fn):
    def kernel(a, b, out):
        if a.size != b.size:
            raise ValueError(f"element-wise operands differ in size: {a.size} vs {b.size}")
        _check_size("out", out, a.size)
        out.array[: a.size] = fn(a.array, b.array)

    return kernel


def _scalar(fn):
    def kernel(a, val, out):
        _check_size("out", out, a.size)
        out.array[: a.size] = fn(a.array, np.float32(val))

    return kernel


def _unary(fn):
    def kernel(a, out):
        _check_size("out", out, a.size)
        out.array[: a.size] = fn(a.array)

    return kernel


ewise_add = _binary(np.add)
ewise_mul = _binary(np.multiply)
ewise_div = _binary(np.divide)
ewise_pow = _binary(np.power)
ewise_maximum = _binary(np.maximum)
ewise_eq = _binary(np.equal)
ewise_ge = _binary(np.greater_equal)
ewise_gt = _binary(np.greater)

scalar_add = _scalar(np.add)
scalar_mul = _scalar(np.multiply)
scalar_div = _scalar(np.divide)
scalar_rdiv = _scalar(lambda a, v: v / a)
scalar_power = _scalar(np.power)
scalar_maximum = _scalar(np.maximum)
scalar_eq = _scalar(np.equal)
scalar_ge = _scalar(np.greater_equal)
scalar_gt = _scalar(np.greater)

ewise_log = _unary(np.log)
ewise_exp = _unary(np.exp)
ewise_tanh = _unary(np.tanh)
ewise_sqrt = _unary(np.sqrt)
ewise_abs = _unary(np.abs)
ewise_sign = _unary(np.sign)


# ---------------------------------------------------------------- matmul, reductions


def matmul(a, b, out, batch, m, n, p):
    _check_size("a", a, batch * m * n)
    _check_size("b", b, batch * n * p)
    _check_size("out", out, batch * m * p)
    A = a.array[: batch * m * n].reshape(batch, m, n)
    B = b.array[: batch * n * p].reshape(batch, n, p)
    out.array[: batch * m * p] = np.matmul(A, B).reshape(-1)


def _reduce(fn):
    def kernel(a, out, reduce_size):
        if reduce_size <= 0:
            raise ValueError(f"reduce_size must be positive, got {reduce_size}")
        _check_size("a", a, out.size * reduce_size)
        out.array[:] = fn(a.array[: out.size * reduce_size].reshape(out.size, reduce_size), axis=1)

    return kernel


reduce_sum = _reduce(np.sum)
reduce_max = _reduce(np.max)


# ---------------------------------------------------------------- conv


def _conv_sizes(n, c, h, w, o, kh, kw, stride, padding):
    if min(n, c, h, w, o, kh, kw) <= 0 or stride < 1 or padding < 0:
        raise ValueError(f"bad convolution sizes n={n} c={c} h={h} w={w} o={o} "
                         f"k={kh}x{kw} stride={stride} padding={padding}")
    ho = (h + 2 * padding - kh) // stride + 1
    wo = (w + 2 * padding - kw) // stride + 1
    if ho <= 0 or wo <= 0:
        raise ValueError(f"kernel {kh}x{kw} larger than the padded input {h}x{w} (padding {padding})")
    return ho, wo


def _windows(xp, kh, kw, stride, ho, wo):
    """(n, c, ho, wo, kh, kw) view of the padded input xp."""
    sn, sc, sh, sw = xp.strides
    return np.lib.stride_tricks.as_strided(
        xp, (xp.shape[0], xp.shape[1], ho, wo, kh, kw),
        (sn, sc, sh * stride, sw * stride, sh, sw))


def _padded_input(x, n, c, h, w, padding):
    _check_size("x", x, n * c * h * w)
    X = x.array[: n * c * h * w].reshape(n, c, h, w).astype(np.float64)
    return np.pad(X, ((0, 0), (0, 0), (padding, padding), (padding, padding)))


def conv2d_forward(x, w, bias, out, n, c, h, w_, o, kh, kw, stride, padding):
    ho, wo = _conv_sizes(n, c, h, w_, o, kh, kw, stride, padding)
    _check_size("w", w, o * c * kh * kw)
    _check_size("out", out, n * o * ho * wo)
    cols = _windows(_padded_input(x, n, c, h, w_, padding), kh, kw, stride, ho, wo)
    W = w.array[: o * c * kh * kw].reshape(o, c, kh, kw).astype(np.float64)
    y = np.einsum("nchwij,ocij->nohw", cols, W, optimize=True)
    if bias is not None:
        _check_size("bias", bias, o)
        y += bias.array[:o].reshape(1, o, 1, 1)
    out.array[: y.size] = y.reshape(-1)


def conv2d_backward_input(dy, w, dx, n, c, h, w_, o, kh, kw, stride, padding):
    ho, wo = _conv_sizes(n, c, h, w_, o, kh, kw, stride, padding)
    _check_size("dy", dy, n * o * ho * wo)
    _check_size("w", w, o * c * kh * kw)
    _check_size("dx", dx, n * c * h * w_)
    DY = dy.array[: n * o * ho * wo].reshape(n, o, ho, wo).astype(np.float64)
    W = w.array[: o * c * kh * kw].reshape(o, c, kh, kw).astype(np.float64)
    dxp = np.zeros((n, c, h + 2 * padding, w_ + 2 * padding))
    # Each kernel tap (i, j) scatters into a strided sub-grid of the padded
    # input; no dilation trick, so every (h + 2p - k) mod stride is exact.
    for i in range(kh):
        for j in range(kw):
            dxp[:, :, i: i + stride * ho: stride, j: j + stride * wo: stride] += np.einsum(
                "nohw,oc->nchw", DY, W[:, :, i, j])
    dx.array[: n * c * h * w_] = dxp[:, :, padding: padding + h, padding: padding + w_].reshape(-1)


def conv2d_backward_weight(x, dy, dw, n, c, h, w_, o, kh, kw, stride, padding):
    ho, wo = _conv_sizes(n, c, h, w_, o, kh, kw, stride, padding)
    _check_size("dy", dy, n * o * ho * wo)
    _check_size("dw", dw, o * c * kh * kw)
    cols = _windows(_padded_input(x, n, c, h, w_, padding), kh, kw, stride, ho, wo)
    DY = dy.array[: n * o * ho * wo].reshape(n, o, ho, wo).astype(np.float64)
    dw.array[: o * c * kh * kw] = np.einsum("nchwij,nohw->ocij", cols, DY, optimize=True).reshape(-1)


# ---------------------------------------------------------------- upsample


def _check_upsample(planes, h, w, scale):
    if min(planes, h, w) < 0 or scale < 1:
        raise ValueError(f"bad upsample sizes planes={planes} h={h} w={w} scale={scale}")


def upsample_nearest_forward(x, out, planes, h, w, scale):
    _check_upsample(planes, h, w, scale)
    _check_size("x", x, planes * h * w)
    _check_size("out", out, planes * h * w * scale * scale)
    X = x.array[: planes * h * w].reshape(planes, h, w)
    out.array[: planes * h * w * scale * scale] = X.repeat(scale, 1).repeat(scale, 2).reshape(-1)


def upsample_nearest_backward(dy, dx, planes, h, w, scale):
    _check_upsample(planes, h, w, scale)
    _check_size("dy", dy, planes * h * w * scale * scale)
    _check_size("dx", dx, planes * h * w)
    DY = dy.array[: planes * h * w * scale * scale].reshape(planes, h, scale, w, scale)
    dx.array[: planes * h * w] = DY.sum(axis=(2, 4), dtype=np.float64).reshape(-1)


# ---------------------------------------------------------------- concat


def _check_concat(arrays, outer, widths, role):
    if len(arrays) != len(widths):
        raise ValueError(f"{len(arrays)} {role} arrays but {len(widths)} widths")
    if outer < 0 or any(wd < 0 for wd in widths):
        raise ValueError(f"bad concat sizes outer={outer} widths={list(widths)}")
    for k, (arr, wd) in enumerate(zip(arrays, widths)):
        _check_size(f"{role}[{k}]", arr, outer * wd)


def concat_forward(inputs, out, outer, widths):
    _check_concat(inputs, outer, widths, "inputs")
    total = sum(widths)
    _check_size("out", out, outer * total)
    O = out.array[: outer * total].reshape(outer, total)
    start = 0
    for arr, wd in zip(inputs, widths):
        O[:, start: start + wd] = arr.array[: outer * wd].reshape(outer, wd)
        start += wd


def concat_backward(dy, outs, outer, widths):
    _check_concat(outs, outer, widths, "outs")
    total = sum(widths)
    _check_size("dy", dy, outer * total)
    D = dy.array[: outer * total].reshape(outer, total)
    start = 0
    for arr, wd in zip(outs, widths):
        arr.array[: outer * wd] = D[:, start: start + wd].reshape(-1)
        start += wd


# ---------------------------------------------------------------- colorspace
# scikit-image's constants (skimage.color.colorconv), D65 white point.

RGB_TO_XYZ = np.array([[0.412453, 0.357580, 0.180423],
                       [0.212671, 0.715160, 0.072169],
                       [0.019334, 0.119193, 0.950227]])
XYZ_TO_RGB = np.linalg.inv(RGB_TO_XYZ)
WHITE = np.array([0.95047, 1.0, 1.08883])
# Matrices with the white point folded in: linear RGB -> XYZ/white and back.
RGB_TO_T = RGB_TO_XYZ / WHITE[:, None]
T_TO_RGB = XYZ_TO_RGB * WHITE[None, :]
LAB_EPSILON, LAB_KAPPA, LAB_OFFSET = 0.008856, 7.787, 16.0 / 116.0
FINV_THRESHOLD = 0.2068966


def _planes(x, n, hw, name="x"):
    if n < 0 or hw < 0:
        raise ValueError(f"bad colour sizes n={n} hw={hw}")
    _check_size(name, x, n * 3 * hw)
    return x.array[: n * 3 * hw].reshape(n, 3, hw).astype(np.float64)


def _store(out, values, name="out"):
    _check_size(name, out, values.size)
    out.array[: values.size] = values.reshape(-1)


def _rgb_to_t(rgb):
    """Gamma-expand sRGB and map to XYZ / white; also the two derivatives."""
    high = rgb > 0.04045
    base = np.where(high, (rgb + 0.055) / 1.055, 0.0)
    lin = np.where(high, base ** 2.4, rgb / 12.92)
    dlin = np.where(high, (2.4 / 1.055) * base ** 1.4, 1.0 / 12.92)
    t = np.einsum("ij,njk->nik", RGB_TO_T, lin)
    return t, dlin


def _f(t):
    high = t > LAB_EPSILON
    cube = np.cbrt(np.where(high, t, 1.0))
    f = np.where(high, cube, LAB_KAPPA * t + LAB_OFFSET)
    df = np.where(high, 1.0 / (3.0 * cube * cube), LAB_KAPPA)
    return f, df


def rgb_to_lab(x, out, n, hw):
    f, _ = _f(_rgb_to_t(_planes(x, n, hw))[0])
    fx, fy, fz = f[:, 0], f[:, 1], f[:, 2]
    _store(out, np.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], axis=1))


def rgb_to_lab_vjp(x, dy, dx, n, hw):
    t, dlin = _rgb_to_t(_planes(x, n, hw))
    _, df = _f(t)
    g = _planes(dy, n, hw, "dy")
    dL, da, db = g[:, 0], g[:, 1], g[:, 2]
    dfxyz = np.stack([500.0 * da, 116.0 * dL - 500.0 * da + 200.0 * db, -200.0 * db], axis=1)
    dlin_total = np.einsum("ij,nik->njk", RGB_TO_T, dfxyz * df)
    _store(dx, dlin_total * dlin, "dx")


def _lab_to_f(lab):
    L, a, b = lab[:, 0], lab[:, 1], lab[:, 2]
    fy = (L + 16.0) / 116.0
    return np.stack([fy + a / 500.0, fy, fy - b / 200.0], axis=1)


def _finv(f):
    high = f > FINV_THRESHOLD
    t = np.where(high, f ** 3, (f - LAB_OFFSET) / LAB_KAPPA)
    dt = np.where(high, 3.0 * f * f, 1.0 / LAB_KAPPA)
    return t, dt


def _gamma(lin):
    high = lin > 0.0031308
    base = np.where(high, lin, 1.0)
    c = np.where(high, 1.055 * base ** (1.0 / 2.4) - 0.055, 12.92 * lin)
    dc = np.where(high, (1.055 / 2.4) * base ** (1.0 / 2.4 - 1.0), 12.92)
    return c, dc


def lab_to_rgb(x, out, n, hw):
    t, _ = _finv(_lab_to_f(_planes(x, n, hw)))
    _store(out, _gamma(np.einsum("ij,njk->nik", T_TO_RGB, t))[0])


def lab_to_rgb_vjp(x, dy, dx, n, hw):
    f = _lab_to_f(_planes(x, n, hw))
    t, dt = _finv(f)
    _, dc = _gamma(np.einsum("ij,njk->nik", T_TO_RGB, t))
    dlin = _planes(dy, n, hw, "dy") * dc
    df = np.einsum("ij,nik->njk", T_TO_RGB, dlin) * dt
    dfx, dfy, dfz = df[:, 0], df[:, 1], df[:, 2]
    _store(dx, np.stack([(dfx + dfy + dfz) / 116.0, dfx / 500.0, -dfz / 200.0], axis=1), "dx")
