// Colour-space family: sRGB (D65) <-> CIELAB with scikit-image's constants,
// forward and exact vector-Jacobian products, each fused into one pass over
// the pixels of x (n, 3, hw).  No clipping: the Jacobian is exact and finite
// for any finite input.
//
// Both paths compute in double, like the numpy reference, and round once to
// float32: in float, a = 500 (fx - fy) and the vjp's sums of opposite terms
// lose up to ~1e-4 absolutely, far outside what the backend tests allow.
// The pixel formulas (matrices, Lab, chain rule) are written once, templated
// on the value type; only the piecewise curves differ between the paths.
//
// Reference (module.reference): one pixel at a time in scalar double; each
// curve evaluates only the branch it takes, with std::pow and std::cbrt.
//
// Fast (the module's own functions): one register of pixels at a time in
// GCC vector extensions (8 with AVX-512, 4 with AVX2 + FMA, 2 with SSE2),
// the ISA picked at run time like the SGEMM kernels' (simd.h).  A vector
// evaluates both branches of a curve and selects; each branch sees its input
// clamped to its own domain, so the lanes not taken never iterate on the
// garbage a root of a negative number gives (NaN, Inf, denormals, which cost
// microcode assists).  The powers are algebraic
// (t^(1/3), b^(12/5), l^(5/12)), so they come from inverse roots refined by
// division-free Newton steps from a bit-level estimate: double precision
// without pow, log or exp.  The two paths differ by at most one float32 ulp
// (4 values in 1e8 on random pixels).
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>

#include <pybind11/pybind11.h>

#include "array.h"
#include "simd.h"

// The vector code must be inlined into the per-ISA entry points to be
// compiled for their ISA (and to keep its vectors in registers).
#define NEEDLE_INLINE inline __attribute__((always_inline))

namespace py = pybind11;

namespace needle {

namespace {

constexpr double kRgbToXyz[3][3] = {{0.412453, 0.357580, 0.180423},
                                    {0.212671, 0.715160, 0.072169},
                                    {0.019334, 0.119193, 0.950227}};
constexpr double kWhite[3] = {0.95047, 1.0, 1.08883};
constexpr double kEpsilon = 0.008856, kKappa = 7.787, kOffset = 16.0 / 116.0;
constexpr double kFinvThreshold = 0.2068966, kGammaThreshold = 0.0031308, kLinearThreshold = 0.04045;

// The matrices with the white point folded in: linear RGB -> XYZ / white
// and its inverse (computed once in double, as numpy.linalg.inv would).
struct Matrices {
  double rgb_to_t[3][3], t_to_rgb[3][3];
  Matrices() {
    const double(&m)[3][3] = kRgbToXyz;
    double inv[3][3];
    for (int i = 0; i < 3; ++i)
      for (int j = 0; j < 3; ++j)  // cofactor (j, i) / det
        inv[i][j] = m[(j + 1) % 3][(i + 1) % 3] * m[(j + 2) % 3][(i + 2) % 3] -
                    m[(j + 1) % 3][(i + 2) % 3] * m[(j + 2) % 3][(i + 1) % 3];
    const double det = m[0][0] * inv[0][0] + m[0][1] * inv[1][0] + m[0][2] * inv[2][0];
    for (int i = 0; i < 3; ++i)
      for (int j = 0; j < 3; ++j) {
        rgb_to_t[i][j] = m[i][j] / kWhite[i];
        t_to_rgb[i][j] = inv[i][j] / det * kWhite[j];
      }
  }
};
const Matrices M;

// ---------------------------------------------------------------- shared

// Both paths check the same things and raise the same errors; returns the
// number of pixels.
i64 check_colour(const Array& x, const Array* dy, const Array& out, i64 n, i64 hw) {
  if (n < 0 || hw < 0) fail("bad colour sizes n=" + std::to_string(n) + " hw=" + std::to_string(hw));
  const i64 size = product({n, 3, hw}, "colour");
  check_size("x", x, size);
  if (dy) check_size("dy", *dy, size);
  check_size(dy ? "dx" : "out", out, size);
  return n * hw;
}

// ---------------------------------------------------------------- reference

// sRGB gamma expansion: value and derivative.
void linearize(double v, double& lin, double& dlin) {
  if (v > kLinearThreshold) {
    const double base = (v + 0.055) / 1.055;
    const double p = std::pow(base, 1.4);
    lin = p * base;
    dlin = (2.4 / 1.055) * p;
  } else {
    lin = v / 12.92;
    dlin = 1.0 / 12.92;
  }
}

// CIELAB f(t): value and derivative.
void lab_f(double t, double& f, double& df) {
  if (t > kEpsilon) {
    f = std::cbrt(t);
    df = 1.0 / (3.0 * f * f);
  } else {
    f = kKappa * t + kOffset;
    df = kKappa;
  }
}

// Inverse of f: value and derivative.
void lab_finv(double f, double& t, double& dt) {
  if (f > kFinvThreshold) {
    t = f * f * f;
    dt = 3.0 * f * f;
  } else {
    t = (f - kOffset) / kKappa;
    dt = 1.0 / kKappa;
  }
}

// sRGB gamma compression: value and derivative.
void compress(double lin, double& c, double& dc) {
  if (lin > kGammaThreshold) {
    const double p = std::pow(lin, 1.0 / 2.4 - 1.0);
    c = 1.055 * p * lin - 0.055;
    dc = (1.055 / 2.4) * p;
  } else {
    c = 12.92 * lin;
    dc = 12.92;
  }
}

// ---------------------------------------------------------------- fast

// Vectors of W doubles.  Values of these types pass only between
// always-inline functions, so the calling convention GCC warns about (it
// differs with and without AVX) never applies; parameters are references
// because GCC's note on their alignment ignores the pragma.
#pragma GCC diagnostic ignored "-Wpsabi"
template <int W>
struct Vec {
  typedef double type __attribute__((vector_size(8 * W)));
};
template <int W>
using vd = typename Vec<W>::type;
// The lane mask of a comparison: all ones or zero per 64-bit lane.
template <class V>
using Mask = decltype(V{} < V{});
template <class V>
constexpr int kLanes = sizeof(V) / sizeof(double);

template <class V>
NEEDLE_INLINE V splat(double v) { return V{} + v; }
// max(a, b), b finite, also where a is NaN: the input of a branch clamped to its domain.
template <class V>
NEEDLE_INLINE V at_least(const V& a, double b) { return a > b ? a : splat<V>(b); }

template <int k, class V>
NEEDLE_INLINE V ipow(const V& u) {
  if constexpr (k == 1) {
    return u;
  } else if constexpr (k % 2 == 0) {
    const V h = ipow<k / 2>(u);
    return h * h;
  } else {
    return ipow<k - 1>(u) * u;
  }
}

// x^c for x > 0 (normal), within 4%: the high word of a double is a
// piecewise-linear log2 of it (exponent + mantissa, offset by the bias), so
// scaling the word by c scales the logarithm.  0.0430357 centres the error
// of log2(1 + m) ~ m.  The int <-> double conversions go through 2^52 so
// that SSE2 and AVX2 need no 64-bit conversion instructions.
template <class V>
NEEDLE_INLINE V pow_estimate(const V& x, double c) {
  using I = Mask<V>;
  const I word = (I)x >> 32;
  const V w = (V)(word | (I)splat<V>(0x1p52)) - 0x1p52;
  const V y = w * c + (1.0 - c) * (1023.0 - 0.0430357) * 0x1p20;
  return (V)(((I)(y + 0x1p52) & 0xffffffff) << 32);
}

// x^(-1/k) for normal x > 0, to double precision.  Each step multiplies u
// by (1 - e)^(-1/k) to second order, where e = 1 - x u^k, so it cubes the
// error; from the 4% estimate, three steps leave at most 2e-16 for k = 3, 5
// and 12, measured over each curve's whole input range (two leave 1e-6).
template <int k, class V>
NEEDLE_INLINE V inv_root(const V& x) {
  V u = pow_estimate(x, -1.0 / k);
  for (int step = 0; step < 3; ++step) {
    const V e = 1.0 - x * ipow<k>(u);
    u += u * e * (1.0 / k + (k + 1.0) / (2.0 * k * k) * e);
  }
  return u;
}

// The curves of the reference above, on a vector of pixels.
template <class V>
NEEDLE_INLINE void linearize(const V& v, V& lin, V& dlin) {
  const Mask<V> high = v > kLinearThreshold;
  const V base = (at_least(v, kLinearThreshold) + 0.055) * (1.0 / 1.055);
  const V s = inv_root<5>(base * base);       // base^(-2/5)
  const V p = ipow<3>(base * s) * s;          // base^1.4
  lin = high ? p * base : v * (1.0 / 12.92);
  dlin = high ? (2.4 / 1.055) * p : splat<V>(1.0 / 12.92);
}

template <class V>
NEEDLE_INLINE void lab_f(const V& t, V& f, V& df) {
  const Mask<V> high = t > kEpsilon;
  const V tc = at_least(t, kEpsilon);
  const V q2 = ipow<2>(inv_root<3>(tc));      // t^(-2/3)
  f = high ? tc * q2 : kKappa * t + kOffset;
  df = high ? q2 * (1.0 / 3.0) : splat<V>(kKappa);
}

template <class V>
NEEDLE_INLINE void lab_finv(const V& f, V& t, V& dt) {
  const Mask<V> high = f > kFinvThreshold;
  const V f2 = f * f;
  t = high ? f2 * f : (f - kOffset) * (1.0 / kKappa);
  dt = high ? 3.0 * f2 : splat<V>(1.0 / kKappa);
}

template <class V>
NEEDLE_INLINE void compress(const V& lin, V& c, V& dc) {
  const Mask<V> high = lin > kGammaThreshold;
  const V l = at_least(lin, kGammaThreshold);
  const V p = ipow<7>(inv_root<12>(l));       // l^(1/2.4 - 1)
  c = high ? 1.055 * p * l - 0.055 : 12.92 * lin;
  dc = high ? (1.055 / 2.4) * p : splat<V>(12.92);
}

// ---------------------------------------------------------------- pixels

// y = A x and y = A^T x for 3-vectors.
template <class T>
NEEDLE_INLINE void apply(const double (&a)[3][3], const T* x, T* y) {
  for (int i = 0; i < 3; ++i) y[i] = a[i][0] * x[0] + a[i][1] * x[1] + a[i][2] * x[2];
}
template <class T>
NEEDLE_INLINE void apply_t(const double (&a)[3][3], const T* x, T* y) {
  for (int j = 0; j < 3; ++j) y[j] = a[0][j] * x[0] + a[1][j] * x[1] + a[2][j] * x[2];
}

// One pixel (T = double) or a vector of them (T = vd<W>) in each direction, given
// the curves linearize, lab_f, lab_finv, compress for T; g is the upstream
// gradient (vjp only).  Constant divisors are reciprocals: a vector division
// costs as much as ~16 multiplications.
template <class T>
NEEDLE_INLINE void rgb_to_lab_pixel(const T* rgb, const T* g, T* res) {
  T lin[3], dlin[3], t[3], f[3], df[3];
  for (int ch = 0; ch < 3; ++ch) linearize(rgb[ch], lin[ch], dlin[ch]);
  apply(M.rgb_to_t, lin, t);
  for (int ch = 0; ch < 3; ++ch) lab_f(t[ch], f[ch], df[ch]);
  if (g == nullptr) {
    res[0] = 116.0 * f[1] - 16.0;
    res[1] = 500.0 * (f[0] - f[1]);
    res[2] = 200.0 * (f[1] - f[2]);
    return;
  }
  const T dt[3] = {500.0 * g[1] * df[0], (116.0 * g[0] - 500.0 * g[1] + 200.0 * g[2]) * df[1],
                   -200.0 * g[2] * df[2]};
  apply_t(M.rgb_to_t, dt, res);
  for (int ch = 0; ch < 3; ++ch) res[ch] *= dlin[ch];
}

template <class T>
NEEDLE_INLINE void lab_to_rgb_pixel(const T* lab, const T* g, T* res) {
  const T fy = (lab[0] + 16.0) * (1.0 / 116.0);
  const T f[3] = {fy + lab[1] * (1.0 / 500.0), fy, fy - lab[2] * (1.0 / 200.0)};
  T t[3], dt[3], lin[3], c[3], dc[3];
  for (int ch = 0; ch < 3; ++ch) lab_finv(f[ch], t[ch], dt[ch]);
  apply(M.t_to_rgb, t, lin);
  for (int ch = 0; ch < 3; ++ch) compress(lin[ch], c[ch], dc[ch]);
  if (g == nullptr) {
    for (int ch = 0; ch < 3; ++ch) res[ch] = c[ch];
    return;
  }
  const T dlin[3] = {g[0] * dc[0], g[1] * dc[1], g[2] * dc[2]};
  T df[3];
  apply_t(M.t_to_rgb, dlin, df);
  for (int ch = 0; ch < 3; ++ch) df[ch] *= dt[ch];
  res[0] = (df[0] + df[1] + df[2]) * (1.0 / 116.0);
  res[1] = df[0] * (1.0 / 500.0);
  res[2] = df[2] * (-1.0 / 200.0);
}

// ---------------------------------------------------------------- drivers

using PixelFn = void (*)(const double* x, const double* g, double* res);

// Runs pixel on every pixel of x (n, 3, hw) (with dy's pixel when dy is
// given) and writes out; a pixel is read whole before it is written, so out
// may be x.
template <PixelFn pixel>
void map_pixels(const Array& x, const Array* dy, Array& out, i64 n, i64 hw) {
  const i64 pixels = check_colour(x, dy, out, n, hw);
#pragma omp parallel for schedule(static) if (pixels >= kParallelGrain / 16)
  for (i64 i = 0; i < pixels; ++i) {
    const i64 at = (i / hw) * 3 * hw + i % hw;
    double in[3], g[3], res[3];
    for (int ch = 0; ch < 3; ++ch) {
      in[ch] = x.ptr[at + ch * hw];
      if (dy) g[ch] = dy->ptr[at + ch * hw];
    }
    pixel(in, dy ? g : nullptr, res);
    for (int ch = 0; ch < 3; ++ch) out.ptr[at + ch * hw] = static_cast<float>(res[ch]);
  }
}

// kLanes<V> floats <-> doubles.
template <class V>
NEEDLE_INLINE V load(const float* p) {
  typedef float F __attribute__((vector_size(sizeof(V) / 2)));
  F v;
  std::memcpy(&v, p, sizeof v);
  return __builtin_convertvector(v, V);
}

template <class V>
NEEDLE_INLINE void store(float* p, const V& v) {
  typedef float F __attribute__((vector_size(sizeof(V) / 2)));
  const F f = __builtin_convertvector(v, F);
  std::memcpy(p, &f, sizeof f);
}

enum class Direction { to_lab, to_rgb };

// kLanes<V> pixels whose channel planes are `stride` floats apart, all read
// before any is written.
template <class V, Direction dir, bool kVjp>
NEEDLE_INLINE void block(const float* x, const float* dy, float* out, i64 stride) {
  V in[3], g[3], res[3];
  for (int ch = 0; ch < 3; ++ch) {
    in[ch] = load<V>(x + ch * stride);
    if (kVjp) g[ch] = load<V>(dy + ch * stride);
  }
  if constexpr (dir == Direction::to_lab) rgb_to_lab_pixel(in, kVjp ? g : nullptr, res);
  else lab_to_rgb_pixel(in, kVjp ? g : nullptr, res);
  for (int ch = 0; ch < 3; ++ch) store(out + ch * stride, res[ch]);
}

// Pixels [0, count) of one image (planes hw floats apart); the last
// count % kLanes go through a zero-padded copy, which every curve accepts.
template <class V, Direction dir, bool kVjp>
NEEDLE_INLINE void span(const float* x, const float* dy, float* out, i64 hw, i64 count) {
  constexpr int lanes = kLanes<V>;
  i64 i = 0;
  for (; i + lanes <= count; i += lanes) block<V, dir, kVjp>(x + i, kVjp ? dy + i : nullptr, out + i, hw);
  if (i == count) return;
  float tx[3][lanes] = {}, tg[3][lanes] = {}, to[3][lanes];
  const std::size_t bytes = (count - i) * sizeof(float);
  for (int ch = 0; ch < 3; ++ch) {
    std::memcpy(tx[ch], x + ch * hw + i, bytes);
    if (kVjp) std::memcpy(tg[ch], dy + ch * hw + i, bytes);
  }
  block<V, dir, kVjp>(tx[0], tg[0], to[0], lanes);
  for (int ch = 0; ch < 3; ++ch) std::memcpy(out + ch * hw + i, to[ch], bytes);
}

template <class V, Direction dir>
NEEDLE_INLINE void run_span(const float* x, const float* dy, float* out, i64 hw, i64 count) {
  if (dy) span<V, dir, true>(x, dy, out, hw, count);
  else span<V, dir, false>(x, dy, out, hw, count);
}

// One entry per ISA, each with vectors of one register: a pixel keeps ~30
// vectors live, and wider ones (split over 2 or 4 registers) spill, which
// made the AVX2 code 2-4x slower.  Chosen at run time by active_isa(), so
// the tests reach every path on one machine.
template <Direction dir>
__attribute__((target("avx512f"))) void span_avx512(const float* x, const float* dy, float* out, i64 hw,
                                                    i64 count) {
  run_span<vd<8>, dir>(x, dy, out, hw, count);
}

template <Direction dir>
__attribute__((target("avx2,fma"))) void span_avx2(const float* x, const float* dy, float* out, i64 hw,
                                                   i64 count) {
  run_span<vd<4>, dir>(x, dy, out, hw, count);
}

template <Direction dir>
void span_generic(const float* x, const float* dy, float* out, i64 hw, i64 count) {
  run_span<vd<2>, dir>(x, dy, out, hw, count);
}

using SpanFn = void (*)(const float* x, const float* dy, float* out, i64 hw, i64 count);

// Pixels per task: long enough to hide the call, short enough that two
// threads share a batch of small images evenly.
constexpr i64 kSpan = 1024;

// map_pixels with spans of one image as the unit of work.
template <Direction dir>
void map_spans(const Array& x, const Array* dy, Array& out, i64 n, i64 hw) {
  const i64 pixels = check_colour(x, dy, out, n, hw);
  const Isa isa = active_isa();
  const SpanFn run = isa == Isa::avx512 ? span_avx512<dir>
                     : isa == Isa::avx2 ? span_avx2<dir>
                                        : span_generic<dir>;
  const i64 per_image = (hw + kSpan - 1) / kSpan, spans = n * per_image;
  // A pixel (three or six roots in double) costs tens of element-wise
  // operations, so 2048 pixels already outweigh waking the team.
#pragma omp parallel for schedule(static) if (pixels >= kParallelGrain / 16)
  for (i64 s = 0; s < spans; ++s) {
    const i64 start = s % per_image * kSpan, at = s / per_image * 3 * hw + start;
    run(x.ptr + at, dy ? dy->ptr + at : nullptr, out.ptr + at, hw, std::min(kSpan, hw - start));
  }
}

// ---------------------------------------------------------------- bindings

using Kernel = void (*)(const Array& x, const Array* dy, Array& out, i64 n, i64 hw);

// name (forward, dy absent) and name_vjp, with the contract's argument names.
void define(py::module_& mod, const std::string& name, Kernel kernel) {
  using release = py::call_guard<py::gil_scoped_release>;
  mod.def(name.c_str(), [kernel](const Array& x, Array& out, i64 n, i64 hw) {
    kernel(x, nullptr, out, n, hw);
  }, py::arg("x"), py::arg("out"), py::arg("n"), py::arg("hw"), release());
  mod.def((name + "_vjp").c_str(), [kernel](const Array& x, const Array& dy, Array& dx, i64 n, i64 hw) {
    kernel(x, &dy, dx, n, hw);
  }, py::arg("x"), py::arg("dy"), py::arg("dx"), py::arg("n"), py::arg("hw"), release());
}

}  // namespace

void register_colorspace(py::module_& m, py::module_& reference) {
  define(m, "rgb_to_lab", map_spans<Direction::to_lab>);
  define(m, "lab_to_rgb", map_spans<Direction::to_rgb>);
  define(reference, "rgb_to_lab", map_pixels<rgb_to_lab_pixel<double>>);
  define(reference, "lab_to_rgb", map_pixels<lab_to_rgb_pixel<double>>);
}

}  // namespace needle
