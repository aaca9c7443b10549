"""The backend contract: the one list of functions every array backend exports.

A backend is a module (``ndarray_backend_numpy``, the C++ ``ndarray_backend_cpu``,
the CUDA ``ndarray_backend_cuda``) that holds flat float32 buffers and runs
kernels on them.  ``NDArray`` (ndarray.py) keeps shape, strides and offset in
Python and calls these functions; nothing else talks to a backend.

Conventions shared by every function:

* ``Array(size)`` is a flat, uninitialised float32 buffer of ``size`` elements;
  ``a.size`` reads it back.  Every other argument named ``a``, ``b``, ``x``,
  ``w``, ``dy`` ... is such an Array; ``out`` (or ``dx``, ``dw``) is the Array
  the result is written to.  Results overwrite ``out``; nothing accumulates.
* Unless a function takes ``shape, strides, offset``, its Array arguments are
  *compact*: row-major, contiguous, starting at element 0.
* ``shape`` and ``strides`` are tuples of ints, strides counted in elements
  (not bytes) and possibly negative or zero; ``offset`` counts elements.
* Images and activations are NCHW, convolution weights OIHW.  The sizes a
  kernel needs are passed explicitly; a backend checks that every Array it is
  handed is at least as large as those sizes imply and that every strided
  index stays inside its buffer, and raises ``ValueError`` (``IndexError``
  for out-of-range views) instead of reading or writing out of bounds.
* Comparison results (eq, ge, gt) are 1.0 / 0.0 floats.

``FUNCTIONS`` below is checked by the test suite against every built backend:
each must export exactly this set of public callables, besides the ``Array``
class and the attributes ``__device_name__`` and ``__tile_size__``.
"""

MEMORY = {
    "from_numpy": "(a: numpy float32 array, out) copy a.size elements, in C order, into out",
    "to_numpy": "(a, shape, strides, offset) -> new numpy float32 array of the strided view",
    "fill": "(out, val) set every element of out to val",
    "compact": "(a, out, shape, strides, offset) out[i] = a[offset + sum(idx_k * strides_k)], "
    "i running over shape in row-major order",
    "ewise_setitem": "(a, out, shape, strides, offset) the strided view of out = compact a",
    "scalar_setitem": "(size, val, out, shape, strides, offset) the strided view of out = val",
}

ELEMENTWISE = {
    # binary, a and b of equal size
    "ewise_add": "(a, b, out) out = a + b",
    "ewise_mul": "(a, b, out) out = a * b",
    "ewise_div": "(a, b, out) out = a / b",
    "ewise_pow": "(a, b, out) out = a ** b",
    "ewise_maximum": "(a, b, out) out = max(a, b)",
    "ewise_eq": "(a, b, out) out = a == b",
    "ewise_ge": "(a, b, out) out = a >= b",
    "ewise_gt": "(a, b, out) out = a > b",
    # with a Python float
    "scalar_add": "(a, val, out) out = a + val",
    "scalar_mul": "(a, val, out) out = a * val",
    "scalar_div": "(a, val, out) out = a / val",
    "scalar_rdiv": "(a, val, out) out = val / a",
    "scalar_power": "(a, val, out) out = a ** val",
    "scalar_maximum": "(a, val, out) out = max(a, val)",
    "scalar_eq": "(a, val, out) out = a == val",
    "scalar_ge": "(a, val, out) out = a >= val",
    "scalar_gt": "(a, val, out) out = a > val",
    # unary
    "ewise_log": "(a, out) natural log",
    "ewise_exp": "(a, out)",
    "ewise_tanh": "(a, out)",
    "ewise_sqrt": "(a, out)",
    "ewise_abs": "(a, out)",
    "ewise_sign": "(a, out) -1, 0 or 1",
}

LINEAR_ALGEBRA = {
    "matmul": "(a, b, out, batch, m, n, p) out[k] = a[k] @ b[k] for k < batch; "
    "a is (batch, m, n), b (batch, n, p), out (batch, m, p)",
}

REDUCTIONS = {
    "reduce_sum": "(a, out, reduce_size) out[i] = sum(a[i*reduce_size:(i+1)*reduce_size])",
    "reduce_max": "(a, out, reduce_size) out[i] = max(a[i*reduce_size:(i+1)*reduce_size])",
}

# Kernel families of the colorization network.  Sizes: n batch, c input
# channels, h, w input height and width, o output channels, kh, kw kernel
# size; ho = (h + 2*padding - kh) // stride + 1, likewise wo.
CONV = {
    "conv2d_forward": "(x, w, bias, out, n, c, h, w, o, kh, kw, stride, padding) "
    "x (n,c,h,w), w (o,c,kh,kw), bias (o,) or None, out (n,o,ho,wo); zero padding",
    "conv2d_backward_input": "(dy, w, dx, n, c, h, w, o, kh, kw, stride, padding) "
    "dy (n,o,ho,wo) -> dx (n,c,h,w), exact for every h, w, stride",
    "conv2d_backward_weight": "(x, dy, dw, n, c, h, w, o, kh, kw, stride, padding) "
    "x (n,c,h,w), dy (n,o,ho,wo) -> dw (o,c,kh,kw)",
}

UPSAMPLE = {
    "upsample_nearest_forward": "(x, out, planes, h, w, scale) x (planes,h,w) -> "
    "out (planes, h*scale, w*scale), out[p,i,j] = x[p, i//scale, j//scale]",
    "upsample_nearest_backward": "(dy, dx, planes, h, w, scale) dy (planes, h*scale, w*scale) "
    "-> dx (planes,h,w), the sum of each scale x scale block",
}

CONCAT = {
    "concat_forward": "(inputs: list of Arrays, out, outer, widths: list of ints) input k is "
    "(outer, widths[k]); out is (outer, sum(widths)), the inputs side by side",
    "concat_backward": "(dy, outs: list of Arrays, outer, widths) the inverse: split dy "
    "(outer, sum(widths)) into outs[k] (outer, widths[k])",
}

# sRGB (D65) <-> CIELAB with scikit-image's constants: x is (n, 3, hw), channel
# planes contiguous.  No clipping anywhere, so the Jacobian is exact and
# finite for every input, in gamut or not.  The vjp functions take the
# forward *input* x and the upstream gradient dy, and write dx = J(x)^T dy.
COLORSPACE = {
    "rgb_to_lab": "(x, out, n, hw) sRGB in [0,1] -> L in [0,100], a, b",
    "rgb_to_lab_vjp": "(x, dy, dx, n, hw)",
    "lab_to_rgb": "(x, out, n, hw) Lab -> sRGB (unclipped)",
    "lab_to_rgb_vjp": "(x, dy, dx, n, hw)",
}

RUNTIME = {
    "set_num_threads": "(n) threads the backend's kernels may use (no-op where meaningless)",
    "get_num_threads": "() -> int",
    "synchronize": "() wait until every queued kernel has finished (no-op on the CPU)",
    "device_count": "() -> int, devices of this kind present (1 for CPU backends)",
}

FUNCTIONS = {
    **RUNTIME,
    **MEMORY,
    **ELEMENTWISE,
    **LINEAR_ALGEBRA,
    **REDUCTIONS,
    **CONV,
    **UPSAMPLE,
    **CONCAT,
    **COLORSPACE,
}

# Names a backend module exports besides FUNCTIONS.
ATTRIBUTES = ("Array", "__device_name__", "__tile_size__")


def exported_functions(mod):
    """The public callables of a backend module other than Array: must equal FUNCTIONS."""
    return {n for n in dir(mod)
            if not n.startswith("_") and n != "Array" and callable(getattr(mod, n))}
