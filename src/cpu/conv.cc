// Convolution family (NCHW activations, OIHW weights, zero padding, any
// stride >= 1): every direction is one implicit GEMM (matmul.h) whose B
// packer gathers image windows on the fly.
//
//   forward          out (o x n*P)  = W (o x c*kh*kw) * windows(x)      + bias
//   backward_weight  dw (o x c*kh*kw) = dy (o x n*P) * windows(x)^T
//   backward_input   for each of the stride^2 output phases (y mod s, x mod s),
//                    dx_phase (c x n*P_phase) = W_phase (c x o*taps) * windows(dy)
//
// The phase split makes backward_input exact for every (h + 2p - k) mod s
// (no dilation trick), writes every dx element exactly once (no scatter-add,
// no races) and spends no multiply on the zeros a dilated dy would hold.
#include <omp.h>

#include <algorithm>
#include <string>

#include <pybind11/pybind11.h>

#include "array.h"
#include "matmul.h"

namespace py = pybind11;

namespace needle {

static i64 floor_div(i64 a, i64 b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

struct ConvGeom {
  i64 n, c, h, w, o, kh, kw, stride, pad, ho, wo;
  i64 x_size, w_size, y_size;
};

static ConvGeom conv_geom(i64 n, i64 c, i64 h, i64 w, i64 o, i64 kh, i64 kw, i64 stride, i64 pad) {
  auto bad = [&] {
    fail("bad convolution sizes n=" + std::to_string(n) + " c=" + std::to_string(c) +
         " h=" + std::to_string(h) + " w=" + std::to_string(w) + " o=" + std::to_string(o) +
         " k=" + std::to_string(kh) + "x" + std::to_string(kw) + " stride=" + std::to_string(stride) +
         " padding=" + std::to_string(pad));
  };
  if (std::min({n, c, h, w, o, kh, kw}) <= 0 || stride < 1 || pad < 0) bad();
  const i64 hp = add(h, mul(2, pad, "padding"), "padding"), wp = add(w, mul(2, pad, "padding"), "padding");
  if (hp < kh || wp < kw)
    fail("kernel " + std::to_string(kh) + "x" + std::to_string(kw) + " larger than the padded input " +
         std::to_string(h) + "x" + std::to_string(w) + " (padding " + std::to_string(pad) + ")");
  ConvGeom g{n, c, h, w, o, kh, kw, stride, pad, (hp - kh) / stride + 1, (wp - kw) / stride + 1, 0, 0, 0};
  g.x_size = product({n, c, h, w}, "conv input");
  g.w_size = product({o, c, kh, kw}, "conv weight");
  g.y_size = product({n, o, g.ho, g.wo}, "conv output");
  return g;
}

// Windows of a stack of images src (imgs, C, H, W) as a (C*th*tw) x (imgs*gh*gw)
// matrix: row (ch, ty, tx), column (img, gy, gx) holds
//   src[img, ch, gy*step + off_y + ty*tap, gx*step + off_x + tx*tap]   (0 outside).
// Forward reads x with step = stride, off = -pad, tap = +1; backward_input
// reads dy with step 1 and tap -1 (output pixel gy receives dy[gy + q - ty]).
struct Windows {
  const float* src;
  i64 C, H, W;       // source planes
  i64 gh, gw;        // output grid per image
  i64 th, tw;        // taps
  i64 step, off_y, off_x, tap;

  // For tap column tx: x = gx * step + xbase, inside the image for gx in [gx_lo, gx_hi).
  struct Columns {
    i64 xbase, gx_lo, gx_hi;
  };
  Columns columns(i64 tx) const {
    const i64 xbase = off_x + tx * tap;
    return {xbase, -floor_div(xbase, step), floor_div(W - 1 - xbase, step) + 1};
  }

  // Grid row (img, gy), columns gx0 .. gx0 + len, tap (ch, ty) and the tap column of `cols`:
  // d[t * dstride] for t < len (zero outside the image).
  void gather(i64 img, i64 gy, i64 gx0, i64 len, i64 ch, i64 ty, const Columns& cols, float* d,
              i64 dstride) const {
    const i64 y = gy * step + off_y + ty * tap;
    i64 t_lo = len, t_hi = len;
    if (y >= 0 && y < H) {
      t_lo = std::clamp(cols.gx_lo - gx0, i64(0), len);
      t_hi = std::clamp(cols.gx_hi - gx0, t_lo, len);
    }
    for (i64 t = 0; t < t_lo; ++t) d[t * dstride] = 0.0f;
    if (t_hi > t_lo) {
      const float* s = src + ((img * C + ch) * H + y) * W + (gx0 + t_lo) * step + cols.xbase;
      float* e = d + t_lo * dstride;
      if (step == 1 && dstride == 1) {
        std::copy(s, s + (t_hi - t_lo), e);
      } else {
        for (i64 t = 0; t < t_hi - t_lo; ++t) e[t * dstride] = s[t * step];
      }
    }
    for (i64 t = t_hi; t < len; ++t) d[t * dstride] = 0.0f;
  }

  // Splits grid points [j0, j0 + count) into runs that share (img, gy).
  struct Run {
    i64 at, len, img, gy, gx0;
  };
  int runs(i64 j0, i64 count, std::vector<Run>& out) const {
    out.clear();
    const i64 plane = gh * gw;
    for (i64 j = j0; j < j0 + count;) {
      const i64 gx = j % gw, len = std::min(gw - gx, j0 + count - j);
      out.push_back(Run{j - j0, len, j / plane, (j % plane) / gw, gx});
      j += len;
    }
    return static_cast<int>(out.size());
  }
};

// B = Windows: K runs over taps, N over grid points.
struct WindowsB final : PackB {
  explicit WindowsB(const Windows& win) : win(win) {}
  void pack(i64 k0, i64 kc, i64 j0, i64 cols, int nr, float* dst) const override {
    thread_local std::vector<Windows::Run> runs;
    const int nruns = win.runs(j0, cols, runs);
    const i64 taps = win.th * win.tw;
    i64 ch = k0 / taps, ty = (k0 % taps) / win.tw, tx = k0 % win.tw;
    Windows::Columns columns = win.columns(tx);
    for (i64 kk = 0; kk < kc; ++kk) {
      float* d = dst + kk * nr;
      for (int r = 0; r < nruns; ++r) {
        const Windows::Run& run = runs[r];
        win.gather(run.img, run.gy, run.gx0, run.len, ch, ty, columns, d + run.at, 1);
      }
      std::fill(d + cols, d + nr, 0.0f);
      if (++tx == win.tw) {
        tx = 0;
        if (++ty == win.th) {
          ty = 0;
          ++ch;
        }
      }
      columns = win.columns(tx);
    }
  }
  Windows win;
};

// B = Windows^T: K runs over grid points, N over taps (backward_weight).
struct WindowsTB final : PackB {
  explicit WindowsTB(const Windows& win) : win(win) {}
  void pack(i64 k0, i64 kc, i64 j0, i64 cols, int nr, float* dst) const override {
    thread_local std::vector<Windows::Run> runs;
    const int nruns = win.runs(k0, kc, runs);
    const i64 taps = win.th * win.tw;
    for (i64 jj = 0; jj < cols; ++jj) {
      const i64 j = j0 + jj, ch = j / taps, ty = (j % taps) / win.tw;
      const Windows::Columns columns = win.columns(j % win.tw);
      for (int r = 0; r < nruns; ++r) {
        const Windows::Run& run = runs[r];
        win.gather(run.img, run.gy, run.gx0, run.len, ch, ty, columns, dst + run.at * nr + jj, nr);
      }
    }
    for (i64 kk = 0; kk < kc; ++kk) std::fill(dst + kk * nr + cols, dst + kk * nr + nr, 0.0f);
  }
  Windows win;
};

static void conv2d_forward(const Array& x, const Array& w, const Array* bias, Array& out, i64 n, i64 c,
                           i64 h, i64 w_, i64 o, i64 kh, i64 kw, i64 stride, i64 padding) {
  const ConvGeom g = conv_geom(n, c, h, w_, o, kh, kw, stride, padding);
  check_size("x", x, g.x_size);
  check_size("w", w, g.w_size);
  check_size("out", out, g.y_size);
  if (bias) check_size("bias", *bias, o);
  std::vector<float> kx, kw_, kb;
  const float* px = distinct_input(x, out, kx);
  const float* pw = distinct_input(w, out, kw_);
  const float* pb = bias ? distinct_input(*bias, out, kb) : nullptr;

  const i64 taps = c * kh * kw, P = g.ho * g.wo;
  const Windows win{px, c, h, w_, g.ho, g.wo, kh, kw, stride, -padding, -padding, 1};
  const GridC dst{out.ptr, P, o * P, g.ho, g.wo, 0, g.wo, 1};
  gemm(o, n * P, taps, SegmentedA(pw, taps, taps, 0), WindowsB(win), dst, pb, true);
}

static void conv2d_backward_weight(const Array& x, const Array& dy, Array& dw, i64 n, i64 c, i64 h,
                                   i64 w_, i64 o, i64 kh, i64 kw, i64 stride, i64 padding) {
  const ConvGeom g = conv_geom(n, c, h, w_, o, kh, kw, stride, padding);
  check_size("x", x, g.x_size);
  check_size("dy", dy, g.y_size);
  check_size("dw", dw, g.w_size);
  std::vector<float> kx, kd;
  const float* px = distinct_input(x, dw, kx);
  const float* pd = distinct_input(dy, dw, kd);

  const i64 taps = c * kh * kw, P = g.ho * g.wo;
  const Windows win{px, c, h, w_, g.ho, g.wo, kh, kw, stride, -padding, -padding, 1};
  gemm(o, taps, n * P, SegmentedA(pd, P, P, o * P), WindowsTB(win), row_major_c(dw.ptr, taps),
       nullptr, true);
}

static void conv2d_backward_input(const Array& dy, const Array& w, Array& dx, i64 n, i64 c, i64 h,
                                  i64 w_, i64 o, i64 kh, i64 kw, i64 stride, i64 padding) {
  const ConvGeom g = conv_geom(n, c, h, w_, o, kh, kw, stride, padding);
  check_size("dy", dy, g.y_size);
  check_size("w", w, g.w_size);
  check_size("dx", dx, g.x_size);
  std::vector<float> kd, kw_;
  const float* pd = distinct_input(dy, dx, kd);
  const float* pw = distinct_input(w, dx, kw_);

  const i64 s = stride;
  std::vector<float> wphase;
  for (i64 ry = 0; ry < std::min(s, h); ++ry) {
    for (i64 rx = 0; rx < std::min(s, w_); ++rx) {
      // Output pixels y = ry + s*gy take taps i = iy0 + s*ty, from dy row gy + qy - ty.
      const i64 gh = (h - ry + s - 1) / s, gw = (w_ - rx + s - 1) / s;
      const i64 iy0 = (ry + padding) % s, ix0 = (rx + padding) % s;
      const i64 th = iy0 < kh ? (kh - iy0 + s - 1) / s : 0, tw = ix0 < kw ? (kw - ix0 + s - 1) / s : 0;
      const i64 qy = (ry + padding - iy0) / s, qx = (rx + padding - ix0) / s;
      const i64 K = o * th * tw;
      // W_phase (c x K): row ci, column (oc, ty, tx) = W[oc, ci, iy0 + s*ty, ix0 + s*tx].
      wphase.resize(std::max<i64>(c * K, 1));
      for (i64 ci = 0; ci < c; ++ci)
        for (i64 oc = 0; oc < o; ++oc)
          for (i64 ty = 0; ty < th; ++ty)
            for (i64 tx = 0; tx < tw; ++tx)
              wphase[ci * K + (oc * th + ty) * tw + tx] =
                  pw[((oc * c + ci) * kh + iy0 + s * ty) * kw + ix0 + s * tx];
      const Windows win{pd, o, g.ho, g.wo, gh, gw, th, tw, 1, qy, qx, -1};
      const GridC dst{dx.ptr, h * w_, c * h * w_, gh, gw, ry * w_ + rx, s * w_, s};
      gemm(c, n * gh * gw, K, SegmentedA(wphase.data(), K, std::max<i64>(K, 1), 0), WindowsB(win), dst,
           nullptr, true);
    }
  }
}

void register_conv(py::module_& m) {
  using release = py::call_guard<py::gil_scoped_release>;
  m.def("conv2d_forward", &conv2d_forward, py::arg("x"), py::arg("w"), py::arg("bias").none(true),
        py::arg("out"), py::arg("n"), py::arg("c"), py::arg("h"), py::arg("width"), py::arg("o"),
        py::arg("kh"), py::arg("kw"), py::arg("stride"), py::arg("padding"), release());
  m.def("conv2d_backward_input", &conv2d_backward_input, py::arg("dy"), py::arg("w"), py::arg("dx"),
        py::arg("n"), py::arg("c"), py::arg("h"), py::arg("width"), py::arg("o"), py::arg("kh"),
        py::arg("kw"), py::arg("stride"), py::arg("padding"), release());
  m.def("conv2d_backward_weight", &conv2d_backward_weight, py::arg("x"), py::arg("dy"), py::arg("dw"),
        py::arg("n"), py::arg("c"), py::arg("h"), py::arg("width"), py::arg("o"), py::arg("kh"),
        py::arg("kw"), py::arg("stride"), py::arg("padding"), release());
}

}  // namespace needle
