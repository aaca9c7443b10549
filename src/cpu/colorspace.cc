// Colour-space family: sRGB (D65) <-> CIELAB with scikit-image's constants,
// forward and exact vector-Jacobian products, each fused into one pass over
// the pixels of x (n, 3, hw).  Arithmetic is in double, like the numpy
// reference, so both round the same value once to float32.
//
// No clipping: the Jacobian is exact and finite for any input.  Each
// piecewise curve evaluates only the branch it takes (a select over both
// would leak NaN/Inf from the unused one, e.g. the cube root's derivative at 0).
#include <omp.h>

#include <cmath>
#include <string>

#include <pybind11/pybind11.h>

#include "array.h"

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

// y = A x and y = A^T x for 3-vectors.
void apply(const double (&a)[3][3], const double* x, double* y) {
  for (int i = 0; i < 3; ++i) y[i] = a[i][0] * x[0] + a[i][1] * x[1] + a[i][2] * x[2];
}
void apply_t(const double (&a)[3][3], const double* x, double* y) {
  for (int j = 0; j < 3; ++j) y[j] = a[0][j] * x[0] + a[1][j] * x[1] + a[2][j] * x[2];
}

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

// One pixel in each direction; g is the upstream gradient (vjp only).
void rgb_to_lab_pixel(const double* rgb, const double* g, double* res) {
  double lin[3], dlin[3], t[3], f[3], df[3];
  for (int ch = 0; ch < 3; ++ch) linearize(rgb[ch], lin[ch], dlin[ch]);
  apply(M.rgb_to_t, lin, t);
  for (int ch = 0; ch < 3; ++ch) lab_f(t[ch], f[ch], df[ch]);
  if (g == nullptr) {
    res[0] = 116.0 * f[1] - 16.0;
    res[1] = 500.0 * (f[0] - f[1]);
    res[2] = 200.0 * (f[1] - f[2]);
    return;
  }
  const double dt[3] = {500.0 * g[1] * df[0], (116.0 * g[0] - 500.0 * g[1] + 200.0 * g[2]) * df[1],
                        -200.0 * g[2] * df[2]};
  apply_t(M.rgb_to_t, dt, res);
  for (int ch = 0; ch < 3; ++ch) res[ch] *= dlin[ch];
}

void lab_to_rgb_pixel(const double* lab, const double* g, double* res) {
  const double fy = (lab[0] + 16.0) / 116.0;
  const double f[3] = {fy + lab[1] / 500.0, fy, fy - lab[2] / 200.0};
  double t[3], dt[3], lin[3], c[3], dc[3];
  for (int ch = 0; ch < 3; ++ch) lab_finv(f[ch], t[ch], dt[ch]);
  apply(M.t_to_rgb, t, lin);
  for (int ch = 0; ch < 3; ++ch) compress(lin[ch], c[ch], dc[ch]);
  if (g == nullptr) {
    for (int ch = 0; ch < 3; ++ch) res[ch] = c[ch];
    return;
  }
  const double dlin[3] = {g[0] * dc[0], g[1] * dc[1], g[2] * dc[2]};
  double df[3];
  apply_t(M.t_to_rgb, dlin, df);
  for (int ch = 0; ch < 3; ++ch) df[ch] *= dt[ch];
  res[0] = (df[0] + df[1] + df[2]) / 116.0;
  res[1] = df[0] / 500.0;
  res[2] = -df[2] / 200.0;
}

using PixelFn = void (*)(const double* x, const double* g, double* res);

// Runs fn on every pixel of x (n, 3, hw) (with dy's pixel when dy is given)
// and writes out; a pixel is read whole before it is written, so out may be x.
void map_pixels(PixelFn fn, const Array& x, const Array* dy, Array& out, i64 n, i64 hw) {
  if (n < 0 || hw < 0) fail("bad colour sizes n=" + std::to_string(n) + " hw=" + std::to_string(hw));
  const i64 size = product({n, 3, hw}, "colour");
  check_size("x", x, size);
  if (dy) check_size("dy", *dy, size);
  check_size(dy ? "dx" : "out", out, size);
  const i64 pixels = n * hw;
#pragma omp parallel for schedule(static) if (pixels >= kParallelGrain / 16)
  for (i64 i = 0; i < pixels; ++i) {
    const i64 at = (i / hw) * 3 * hw + i % hw;
    double in[3], g[3], res[3];
    for (int ch = 0; ch < 3; ++ch) {
      in[ch] = x.ptr[at + ch * hw];
      if (dy) g[ch] = dy->ptr[at + ch * hw];
    }
    fn(in, dy ? g : nullptr, res);
    for (int ch = 0; ch < 3; ++ch) out.ptr[at + ch * hw] = static_cast<float>(res[ch]);
  }
}

}  // namespace

void register_colorspace(py::module_& m) {
  using release = py::call_guard<py::gil_scoped_release>;
  m.def("rgb_to_lab", [](const Array& x, Array& out, i64 n, i64 hw) {
    map_pixels(rgb_to_lab_pixel, x, nullptr, out, n, hw);
  }, py::arg("x"), py::arg("out"), py::arg("n"), py::arg("hw"), release());
  m.def("rgb_to_lab_vjp", [](const Array& x, const Array& dy, Array& dx, i64 n, i64 hw) {
    map_pixels(rgb_to_lab_pixel, x, &dy, dx, n, hw);
  }, py::arg("x"), py::arg("dy"), py::arg("dx"), py::arg("n"), py::arg("hw"), release());
  m.def("lab_to_rgb", [](const Array& x, Array& out, i64 n, i64 hw) {
    map_pixels(lab_to_rgb_pixel, x, nullptr, out, n, hw);
  }, py::arg("x"), py::arg("out"), py::arg("n"), py::arg("hw"), release());
  m.def("lab_to_rgb_vjp", [](const Array& x, const Array& dy, Array& dx, i64 n, i64 hw) {
    map_pixels(lab_to_rgb_pixel, x, &dy, dx, n, hw);
  }, py::arg("x"), py::arg("dy"), py::arg("dx"), py::arg("n"), py::arg("hw"), release());
}

}  // namespace needle
