// sRGB (D65) <-> CIELAB for one pixel, with exact vector-Jacobian products:
// the formulas and constants of the numpy reference (ndarray_backend_numpy,
// scikit-image's values), in float32, no clipping.  __host__ __device__ so
// that the formulas can be checked against the reference without a GPU.
#pragma once

#include <cmath>

namespace needle_cuda {
namespace color {

// RGB_TO_XYZ with row i divided by the D65 white point's component i
// (linear RGB -> XYZ / white), and its inverse (XYZ / white -> linear RGB).
__host__ __device__ __forceinline__ void rgb_to_t(const float v[3], float out[3]) {
  out[0] = 4.339463634e-01f * v[0] + 3.762138731e-01f * v[1] + 1.898250339e-01f * v[2];
  out[1] = 2.126710000e-01f * v[0] + 7.151600000e-01f * v[1] + 7.216900000e-02f * v[2];
  out[2] = 1.775667460e-02f * v[0] + 1.094688794e-01f * v[1] + 8.727046463e-01f * v[2];
}
// The transpose of rgb_to_t (for the vjp).
__host__ __device__ __forceinline__ void rgb_to_t_transposed(const float v[3], float out[3]) {
  out[0] = 4.339463634e-01f * v[0] + 2.126710000e-01f * v[1] + 1.775667460e-02f * v[2];
  out[1] = 3.762138731e-01f * v[0] + 7.151600000e-01f * v[1] + 1.094688794e-01f * v[2];
  out[2] = 1.898250339e-01f * v[0] + 7.216900000e-02f * v[1] + 8.727046463e-01f * v[2];
}
__host__ __device__ __forceinline__ void t_to_rgb(const float v[3], float out[3]) {
  out[0] = 3.079980302e+00f * v[0] - 1.537151516e+00f * v[1] - 5.428213080e-01f * v[2];
  out[1] = -9.212477523e-01f * v[0] + 1.875990001e+00f * v[1] + 4.524733951e-02f * v[2];
  out[2] = 5.289046110e-02f * v[0] - 2.040413384e-01f * v[1] + 1.151232012e+00f * v[2];
}
__host__ __device__ __forceinline__ void t_to_rgb_transposed(const float v[3], float out[3]) {
  out[0] = 3.079980302e+00f * v[0] - 9.212477523e-01f * v[1] + 5.289046110e-02f * v[2];
  out[1] = -1.537151516e+00f * v[0] + 1.875990001e+00f * v[1] - 2.040413384e-01f * v[2];
  out[2] = -5.428213080e-01f * v[0] + 4.524733951e-02f * v[1] + 1.151232012e+00f * v[2];
}

constexpr float kEpsilon = 0.008856f, kKappa = 7.787f, kOffset = 16.0f / 116.0f;
constexpr float kFinvThreshold = 0.2068966f;

// sRGB gamma expansion and its derivative.
__host__ __device__ __forceinline__ void expand(float c, float& lin, float& dlin) {
  if (c > 0.04045f) {
    const float base = (c + 0.055f) / 1.055f;  // > 0.09
    lin = powf(base, 2.4f);
    dlin = (2.4f / 1.055f) * (lin / base);  // (2.4/1.055) * base^1.4
  } else {
    lin = c / 12.92f;
    dlin = 1.0f / 12.92f;
  }
}

// Lab's f(t) and f'(t).
__host__ __device__ __forceinline__ void lab_f(float t, float& f, float& df) {
  if (t > kEpsilon) {
    const float cube = cbrtf(t);
    f = cube;
    df = 1.0f / (3.0f * cube * cube);
  } else {
    f = kKappa * t + kOffset;
    df = kKappa;
  }
}

// The inverse of f and its derivative.
__host__ __device__ __forceinline__ void lab_finv(float f, float& t, float& dt) {
  if (f > kFinvThreshold) {
    t = f * f * f;
    dt = 3.0f * f * f;
  } else {
    t = (f - kOffset) / kKappa;
    dt = 1.0f / kKappa;
  }
}

// sRGB gamma compression and its derivative.
__host__ __device__ __forceinline__ void compress(float lin, float& c, float& dc) {
  if (lin > 0.0031308f) {
    const float p = powf(lin, 1.0f / 2.4f);
    c = 1.055f * p - 0.055f;
    dc = (1.055f / 2.4f) * (p / lin);  // (1.055/2.4) * lin^(1/2.4 - 1)
  } else {
    c = 12.92f * lin;
    dc = 12.92f;
  }
}

// Linear RGB -> f(XYZ / white) and f' per component.
__host__ __device__ __forceinline__ void rgb_to_f(const float rgb[3], float f[3], float df[3], float dlin[3]) {
  float lin[3], t[3];
#pragma unroll
  for (int k = 0; k < 3; ++k) expand(rgb[k], lin[k], dlin[k]);
  rgb_to_t(lin, t);
#pragma unroll
  for (int k = 0; k < 3; ++k) lab_f(t[k], f[k], df[k]);
}

// Lab -> (fx, fy, fz).
__host__ __device__ __forceinline__ void lab_to_f(const float lab[3], float f[3]) {
  const float fy = (lab[0] + 16.0f) / 116.0f;
  f[0] = fy + lab[1] / 500.0f;
  f[1] = fy;
  f[2] = fy - lab[2] / 200.0f;
}

// Each functor maps one pixel: x (3 channels), and for a vjp (kVjp) the
// upstream gradient g, to out (3 channels).
struct RgbToLab {
  static constexpr bool kVjp = false;
  __host__ __device__ void operator()(const float x[3], const float*, float out[3]) const {
    float f[3], df[3], dlin[3];
    rgb_to_f(x, f, df, dlin);
    out[0] = 116.0f * f[1] - 16.0f;
    out[1] = 500.0f * (f[0] - f[1]);
    out[2] = 200.0f * (f[1] - f[2]);
  }
};

struct RgbToLabVjp {
  static constexpr bool kVjp = true;
  __host__ __device__ void operator()(const float x[3], const float* g, float out[3]) const {
    float f[3], df[3], dlin[3];
    rgb_to_f(x, f, df, dlin);
    // Gradient with respect to (fx, fy, fz), times f'(t): the gradient wrt t.
    const float dt[3] = {500.0f * g[1] * df[0], (116.0f * g[0] - 500.0f * g[1] + 200.0f * g[2]) * df[1],
                         -200.0f * g[2] * df[2]};
    float dl[3];
    rgb_to_t_transposed(dt, dl);
#pragma unroll
    for (int k = 0; k < 3; ++k) out[k] = dl[k] * dlin[k];
  }
};

struct LabToRgb {
  static constexpr bool kVjp = false;
  __host__ __device__ void operator()(const float x[3], const float*, float out[3]) const {
    float f[3], t[3], dt[3], lin[3], dc;
    lab_to_f(x, f);
#pragma unroll
    for (int k = 0; k < 3; ++k) lab_finv(f[k], t[k], dt[k]);
    t_to_rgb(t, lin);
#pragma unroll
    for (int k = 0; k < 3; ++k) compress(lin[k], out[k], dc);
  }
};

struct LabToRgbVjp {
  static constexpr bool kVjp = true;
  __host__ __device__ void operator()(const float x[3], const float* g, float out[3]) const {
    float f[3], t[3], dt[3], lin[3], c, dlin[3], df[3];
    lab_to_f(x, f);
#pragma unroll
    for (int k = 0; k < 3; ++k) lab_finv(f[k], t[k], dt[k]);
    t_to_rgb(t, lin);
#pragma unroll
    for (int k = 0; k < 3; ++k) {
      float dc;
      compress(lin[k], c, dc);
      dlin[k] = g[k] * dc;
    }
    t_to_rgb_transposed(dlin, df);
#pragma unroll
    for (int k = 0; k < 3; ++k) df[k] *= dt[k];
    out[0] = (df[0] + df[1] + df[2]) / 116.0f;
    out[1] = df[0] / 500.0f;
    out[2] = -df[2] / 200.0f;
  }
};

}  // namespace color
}  // namespace needle_cuda
