// Convolution family (NCHW activations, OIHW weights, zero padding, any
// stride >= 1).  Each direction picks among a few formulations by shape;
// every choice below was measured against the others on the network's nine
// layers (benchmarks/NOTES.md).
//
// Implicit GEMMs (matmul.h), whose B packer copies image windows from a
// zero-bordered, phase-split copy of the image:
//   forward            out (o x n*P) = W (o x c*kh*kw) * windows(x) + bias
//   backward_weight    dw (o x c*kh*kw) = dy (o x n*P) * windows(x)^T
//   backward_input     stride 1: dx (c x n*H*W) = W_t (c x o*kh*kw) * windows(dy)
// Other formulations where those fit badly:
//   forward and        batches of 16 and up on planes of 16x16 and below
//   backward_input     (and every strided backward_input): a pixel-major
//                      GEMM (images innermost) that skips the taps reading
//                      padding
//   backward_input     stride > 1 or few input channels: cols = W^T dy (one
//                      tall GEMM), then col2im adds the columns into dx
//   backward_weight    stride 1 at 32x32 and up: one GEMM over a pixel-major
//                      copy where each tap is a shift (contiguous packing)
//   thin layers        (fewer than 8 output channels, or 8 input channels for
//                      backward_weight): direct vector loops, no GEMM
// Below the fast paths, a plain reference (the definition, one multiply-add
// at a time) is registered as module.reference for the tests.
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <type_traits>
#include <utility>

#include <pybind11/pybind11.h>

#include "array.h"
#include "matmul.h"
#include "simd.h"

namespace py = pybind11;

namespace needle {

// Below this many channels on a GEMM's row side, a direction switches to a
// formulation that puts a larger dimension there.
constexpr i64 kFewChannels = 8;

static i64 floor_div(i64 a, i64 b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

// The output positions o in [lo, hi) of a row of `count` whose source
// position o * step + base lies inside [0, size).
struct Span {
  i64 lo, hi;
};
static Span inside(i64 base, i64 step, i64 size, i64 count) {
  const i64 lo = std::max<i64>(0, -floor_div(base, step));
  return {lo, std::max(lo, std::min(count, floor_div(size - 1 - base, step) + 1))};
}

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

// A contiguous (rows x cols blocks) matrix transposed.
static void transpose_blocks(const float* src, i64 rows, i64 cols, i64 block, float* dst) {
  transpose_blocks(src, rows, cols, block, cols * block, dst, rows * block);
}

// The three directions' arrays: which is which, for the checks below.
enum class Direction { forward, backward_input, backward_weight };

// The geometry of a call after checking that its two inputs and its output
// hold it (and the bias, forward): the checks every fast and reference
// kernel of the family runs before touching memory.
static ConvGeom checked_geom(Direction d, const Array& in0, const Array& in1, const Array& out,
                             const Array* bias, i64 n, i64 c, i64 h, i64 w, i64 o, i64 kh, i64 kw,
                             i64 stride, i64 pad) {
  const ConvGeom g = conv_geom(n, c, h, w, o, kh, kw, stride, pad);
  switch (d) {
    case Direction::forward:
      check_size("x", in0, g.x_size);
      check_size("w", in1, g.w_size);
      check_size("out", out, g.y_size);
      if (bias) check_size("bias", *bias, o);
      break;
    case Direction::backward_input:
      check_size("dy", in0, g.y_size);
      check_size("w", in1, g.w_size);
      check_size("dx", out, g.x_size);
      break;
    case Direction::backward_weight:
      check_size("x", in0, g.x_size);
      check_size("dy", in1, g.y_size);
      check_size("dw", out, g.w_size);
      break;
  }
  return g;
}

// d[0, len) = s[0, len) for the short runs of packing (a few to a few dozen
// floats), where a call to memmove costs more than the copy: fixed-size
// pieces that the compiler turns into vector moves.
static inline void copy_short(const float* s, i64 len, float* d) {
  i64 t = 0;
  for (; t + 8 <= len; t += 8) std::memcpy(d + t, s + t, 8 * sizeof(float));
  for (; t < len; ++t) std::memcpy(d + t, s + t, sizeof(float));
}

// One axis of a window read: grid coordinate gi and tap k read source
// coordinate gi * step + off + k * tap.  The source is copied with `lo`
// zeros before it (and zeros after, to q * step), split into `step` phases
// of q: then tap k reads phase phase[k], from position gi + shift[k] on.
struct WindowAxis {
  i64 lo, q;
  std::vector<i64> phase, shift;
};
static WindowAxis window_axis(i64 size, i64 grid, i64 taps, i64 step, i64 off, i64 tap) {
  const i64 first = off + std::min<i64>(0, (taps - 1) * tap);
  const i64 last = (grid - 1) * step + off + std::max<i64>(0, (taps - 1) * tap);
  WindowAxis a{std::max<i64>(0, -first), 0, {}, {}};
  a.q = (std::max(a.lo + size, a.lo + last + 1) + step - 1) / step;
  for (i64 k = 0; k < taps; ++k) {
    const i64 at = off + a.lo + k * tap;  // >= 0
    a.phase.push_back(at % step);
    a.shift.push_back(at / step);
  }
  return a;
}

// Windows of a stack of images src (imgs, C, H, W) as a (C*th*tw) x (imgs*gh*gw)
// matrix: row (ch, ty, tx), column (img, gy, gx) holds
//   src[img, ch, gy*step + off_y + ty*tap, gx*step + off_x + tx*tap]   (0 outside).
// Forward reads x with step = stride, off = -pad, tap = +1; backward_input
// reads dy with step 1 and tap -1 (input pixel gy receives dy[gy + pad - ty]).
// They are read from a zero-bordered copy of src split into step x step
// phase planes, where every window row is one contiguous run: packing is
// then copies, with no bounds checks and no strided reads.
struct Windows {
  Windows(const float* src, i64 imgs, i64 C, i64 H, i64 W, i64 gh, i64 gw, i64 th, i64 tw, i64 step,
          i64 off_y, i64 off_x, i64 tap)
      : C(C), gh(gh), gw(gw), th(th), tw(tw), y(window_axis(H, gh, th, step, off_y, tap)),
        x(window_axis(W, gw, tw, step, off_x, tap)), plane(y.q * x.q), block(step * step * plane),
        planes(imgs * C * block) {
    for (i64 ty = 0; ty < th; ++ty)
      for (i64 tx = 0; tx < tw; ++tx)
        tap_at.push_back((y.phase[ty] * step + x.phase[tx]) * plane + y.shift[ty] * x.q + x.shift[tx]);
    std::vector<Span> cols;  // per column phase px: its columns inside the source
    for (i64 px = 0; px < step; ++px) cols.push_back(inside(px - x.lo, step, W, x.q));
#pragma omp parallel for schedule(static) if (planes.size >= kParallelGrain)
    for (i64 t = 0; t < imgs * C; ++t) {
      const float* s = src + t * H * W;
      for (i64 py = 0; py < step; ++py)
        for (i64 r = 0; r < y.q; ++r)
          for (i64 px = 0; px < step; ++px) {  // the phases of one source row, while it is in L1
            const i64 sy = r * step + py - y.lo;
            float* drow = planes.ptr + t * block + (py * step + px) * plane + r * x.q;
            const bool in = sy >= 0 && sy < H;
            phase_row(in ? s + sy * W + px - x.lo : nullptr, step, in ? cols[px] : Span{0, 0}, x.q, drow);
          }
    }
  }

  // d[c] = s[c * step] for the columns c in `in`, zero for the rest of [0, q):
  // rows of a few dozen floats, where calls to memset and memcpy would cost
  // more than the copy.
  __attribute__((optimize("no-tree-loop-distribute-patterns"))) NEEDLE_CLONES static void phase_row(
      const float* s, i64 step, Span in, i64 q, float* d) {
    for (i64 c = 0; c < in.lo; ++c) d[c] = 0.0f;
    if (step == 1)
      for (i64 c = in.lo; c < in.hi; ++c) d[c] = s[c];
    else if (step == 2)
      for (i64 c = in.lo; c < in.hi; ++c) d[c] = s[2 * c];
    else
      for (i64 c = in.lo; c < in.hi; ++c) d[c] = s[c * step];
    for (i64 c = in.hi; c < q; ++c) d[c] = 0.0f;
  }

  // Grid points [j0, j0 + count) as runs that share (img, gy): the run
  // starting at grid point j0 + at reads window row (ch, tap) from
  // row(ch, tap) + base on.
  struct Run {
    i64 at, len, base;
  };
  int runs(i64 j0, i64 count, std::vector<Run>& out) const {
    out.clear();
    const i64 grid = gh * gw;
    for (i64 j = j0; j < j0 + count;) {
      const i64 gx = j % gw, len = std::min(gw - gx, j0 + count - j);
      out.push_back(Run{j - j0, len, (j / grid) * C * block + ((j % grid) / gw) * x.q + gx});
      j += len;
    }
    return static_cast<int>(out.size());
  }
  const float* row(i64 ch, i64 tap) const { return planes.ptr + ch * block + tap_at[tap]; }

  i64 C, gh, gw, th, tw;
  WindowAxis y, x;
  i64 plane, block;  // floats per phase plane, per (img, ch)
  std::vector<i64> tap_at;
  Array planes;
};

// B = Windows: K runs over (channel, tap), N over grid points.
struct WindowsB final : PackB {
  explicit WindowsB(const Windows& win) : win(win) {}
  void pack(i64 k0, i64 kc, i64 j0, i64 cols, int nr, float* dst) const override {
    const i64 taps = win.th * win.tw;
    thread_local std::vector<Windows::Run> runs;
    const int nruns = win.runs(j0, cols, runs);
    for (i64 kk = 0, ch = k0 / taps, tap = k0 % taps; kk < kc; ++kk) {
      float* d = dst + kk * nr;
      const float* row = win.row(ch, tap);
      for (int r = 0; r < nruns; ++r) copy_short(row + runs[r].base, runs[r].len, d + runs[r].at);
      std::fill(d + cols, d + nr, 0.0f);
      if (++tap == taps) {
        tap = 0;
        ++ch;
      }
    }
  }
  const Windows& win;
};

// B = Windows^T: K runs over grid points, N over (channel, tap) (backward_weight).
struct WindowsTB final : PackB {
  explicit WindowsTB(const Windows& win) : win(win) {}
  void pack(i64 k0, i64 kc, i64 j0, i64 cols, int nr, float* dst) const override {
    const i64 taps = win.th * win.tw;
    thread_local std::vector<Windows::Run> runs;
    const int nruns = win.runs(k0, kc, runs);
    const float* rows[kMaxNR];  // window row of each panel column
    for (i64 jj = 0, ch = j0 / taps, tap = j0 % taps; jj < cols; ++jj) {
      rows[jj] = win.row(ch, tap);
      if (++tap == taps) {
        tap = 0;
        ++ch;
      }
    }
    // Each run is a (columns x len) block of contiguous window rows, which
    // goes in transposed 8 columns at a time.
    for (int r = 0; r < nruns; ++r) {
      const Windows::Run& run = runs[r];
      float* d = dst + run.at * nr;
      i64 jj = 0;
      for (; jj + 8 <= cols; jj += 8) {
        const float* tile[8];
        for (int i = 0; i < 8; ++i) tile[i] = rows[jj + i] + run.base;
        transpose_rows8(tile, run.len, d + jj, nr);
      }
      for (; jj < cols; ++jj)
        for (i64 t = 0; t < run.len; ++t) d[t * nr + jj] = rows[jj][run.base + t];
    }
    for (i64 kk = 0; kk < kc; ++kk) std::fill(dst + kk * nr + cols, dst + kk * nr + nr, 0.0f);
  }
  const Windows& win;
};

// ---------------------------------------------------------------- direct kernels
// For the thin convolutions (few output channels: the 128->2 head; few
// input channels: the 1->64 stem) a GEMM would pad its short side to a full
// register tile and re-gather every window for a handful of rows.  These
// kernels instead copy input rows once into a zero-bordered buffer and slide
// 16-wide vectors (GCC vector extensions: one clone per ISA, NEEDLE_CLONES)
// over it, with the accumulators in registers for the whole reduction.

using v16 = float __attribute__((vector_size(64)));
// v16 never crosses a function boundary that is not inlined into one clone,
// so the ABI note GCC gives for it on the baseline target does not apply.
#pragma GCC diagnostic ignored "-Wpsabi"
constexpr i64 kLanes = 16;

// Lanes p[0], p[step], ..., p[15 * step]; Unit makes step 1 known at
// compile time, so that the unit-stride loops are plain vector loads.
template <bool Unit>
__attribute__((always_inline)) inline v16 load_lanes(const float* p, i64 step) {
  v16 v;
  if (Unit) {
    std::memcpy(&v, p, sizeof v);
  } else {
    for (i64 l = 0; l < kLanes; ++l) v[l] = p[l * step];
  }
  return v;
}

// Input rows [iy0, iy0 + rows) of every channel of one image, zero outside
// the image, as (c, rows, wp) with the padding columns on both sides; the
// buffer ends with slack so that a 16-lane load at the end of a row stays
// inside it.
struct PaddedRows {
  float* p;
  i64 rows, wp;
};
static PaddedRows pad_rows(const float* x_img, const ConvGeom& g, i64 iy0, i64 rows, Scratch& buf) {
  const i64 wp = g.w + 2 * g.pad;
  float* p = buf.get(g.c * rows * wp + kLanes * g.stride + g.kw);
  std::fill(p, p + g.c * rows * wp + kLanes * g.stride + g.kw, 0.0f);
  for (i64 ci = 0; ci < g.c; ++ci)
    for (i64 r = 0; r < rows; ++r) {
      const i64 iy = iy0 + r;
      if (iy >= 0 && iy < g.h)
        std::copy_n(x_img + (ci * g.h + iy) * g.w, g.w, p + (ci * rows + r) * wp + g.pad);
    }
  return {p, rows, wp};
}

// Output rows [y0, y1) of one image for O output channels.
template <int O, bool Unit>
__attribute__((always_inline)) inline void forward_rows(const ConvGeom& g, const PaddedRows& xp,
                                                        const float* pw, const float* bias, i64 y0,
                                                        i64 y1, float* out_img) {
  const i64 s = g.stride, taps = g.kh * g.kw, wtaps = g.c * taps;
  for (i64 y = y0; y < y1; ++y)
    for (i64 ox0 = 0; ox0 < g.wo; ox0 += kLanes) {
      v16 acc[O];
      for (int oc = 0; oc < O; ++oc) acc[oc] = v16{} + (bias ? bias[oc] : 0.0f);
      for (i64 ci = 0; ci < g.c; ++ci)
        for (i64 ky = 0; ky < g.kh; ++ky) {
          const float* row = xp.p + (ci * xp.rows + (y - y0) * s + ky) * xp.wp + ox0 * s;
          const float* wrow = pw + ci * taps + ky * g.kw;
          for (i64 kx = 0; kx < g.kw; ++kx) {
            const v16 xv = load_lanes<Unit>(row + kx, s);
            for (int oc = 0; oc < O; ++oc) acc[oc] += wrow[oc * wtaps + kx] * xv;
          }
        }
      const i64 lanes = std::min(kLanes, g.wo - ox0);
      for (int oc = 0; oc < O; ++oc)
        std::memcpy(out_img + (oc * g.ho + y) * g.wo + ox0, &acc[oc], lanes * sizeof(float));
    }
}

NEEDLE_CLONES static void direct_forward_rows(const ConvGeom& g, const PaddedRows& xp, const float* pw,
                                              const float* bias, i64 y0, i64 y1, float* out_img) {
  static_assert(kFewChannels == 8, "one case per thin output channel count");
  const auto rows = [&](auto unit) {
    constexpr bool U = decltype(unit)::value;
    switch (g.o) {
      case 1: return forward_rows<1, U>(g, xp, pw, bias, y0, y1, out_img);
      case 2: return forward_rows<2, U>(g, xp, pw, bias, y0, y1, out_img);
      case 3: return forward_rows<3, U>(g, xp, pw, bias, y0, y1, out_img);
      case 4: return forward_rows<4, U>(g, xp, pw, bias, y0, y1, out_img);
      case 5: return forward_rows<5, U>(g, xp, pw, bias, y0, y1, out_img);
      case 6: return forward_rows<6, U>(g, xp, pw, bias, y0, y1, out_img);
      default: return forward_rows<7, U>(g, xp, pw, bias, y0, y1, out_img);
    }
  };
  if (g.stride == 1) return rows(std::true_type{});
  rows(std::false_type{});
}

static void direct_forward(const float* px, const float* pw, const float* pb, float* out,
                           const ConvGeom& g) {
  constexpr i64 kRowsPerTask = 8;
  const i64 blocks = (g.ho + kRowsPerTask - 1) / kRowsPerTask;
#pragma omp parallel for schedule(dynamic, 1) if (g.y_size * g.c >= kParallelGrain)
  for (i64 t = 0; t < g.n * blocks; ++t) {
    thread_local Scratch buf;
    const i64 img = t / blocks, y0 = (t % blocks) * kRowsPerTask, y1 = std::min(g.ho, y0 + kRowsPerTask);
    const PaddedRows xp = pad_rows(px + img * g.c * g.h * g.w, g, y0 * g.stride - g.pad,
                                   (y1 - y0 - 1) * g.stride + g.kh, buf);
    direct_forward_rows(g, xp, pw, pb, y0, y1, out + img * g.o * g.ho * g.wo);
  }
}

// dw[oc, ci, tap] for output channels [o0, o1) and one input channel, summed
// over the images: a vector accumulator per (oc, tap) slides over dy and the
// padded input plane; the lanes are summed at the end.
template <bool Unit>
__attribute__((always_inline)) inline void weight_task(const ConvGeom& g, const float* px, const float* pd,
                                                       i64 ci, i64 o0, i64 o1, Scratch& buf,
                                                       Scratch& sums, float* dw) {
  const i64 s = g.stride, taps = g.kh * g.kw, rows = (g.ho - 1) * s + g.kh;
  const i64 tail = g.wo % kLanes, full = g.wo - tail;
  // Scratch is 64-byte aligned, as v16 needs (std::allocator need not be).
  v16* total = reinterpret_cast<v16*>(sums.get((o1 - o0) * taps * kLanes));
  std::fill(total, total + (o1 - o0) * taps, v16{});
  for (i64 img = 0; img < g.n; ++img) {
    ConvGeom one = g;
    one.c = 1;
    const PaddedRows xp = pad_rows(px + (img * g.c + ci) * g.h * g.w, one, -g.pad, rows, buf);
    for (i64 ky = 0; ky < g.kh; ++ky)
      for (i64 kx = 0; kx < g.kw; ++kx)
        for (i64 oc = o0; oc < o1; ++oc) {
          const float* d = pd + (img * g.o + oc) * g.ho * g.wo;
          v16 acc0{}, acc1{};
          for (i64 y = 0; y < g.ho; ++y) {
            const float* row = xp.p + (y * s + ky) * xp.wp + kx;
            const float* drow = d + y * g.wo;
            i64 ox = 0;
            for (; ox + 2 * kLanes <= full; ox += 2 * kLanes) {
              acc0 += load_lanes<true>(drow + ox, 1) * load_lanes<Unit>(row + ox * s, s);
              acc1 += load_lanes<true>(drow + ox + kLanes, 1) *
                      load_lanes<Unit>(row + (ox + kLanes) * s, s);
            }
            for (; ox < full; ox += kLanes)
              acc0 += load_lanes<true>(drow + ox, 1) * load_lanes<Unit>(row + ox * s, s);
            if (tail) {  // zero both factors past the row: 0 * inf would be NaN
              v16 dv{}, xv{};
              for (i64 l = 0; l < tail; ++l) {
                dv[l] = drow[full + l];
                xv[l] = row[(full + l) * s];
              }
              acc1 += dv * xv;
            }
          }
          total[(oc - o0) * taps + ky * g.kw + kx] += acc0 + acc1;
        }
  }
  for (i64 oc = o0; oc < o1; ++oc)
    for (i64 tap = 0; tap < taps; ++tap) {
      const v16 v = total[(oc - o0) * taps + tap];
      float sum = 0.0f;
      for (i64 l = 0; l < kLanes; ++l) sum += v[l];
      dw[(oc * g.c + ci) * taps + tap] = sum;
    }
}

NEEDLE_CLONES static void direct_weight_task(const ConvGeom& g, const float* px, const float* pd, i64 ci,
                                             i64 o0, i64 o1, Scratch& buf, Scratch& sums, float* dw) {
  if (g.stride == 1) return weight_task<true>(g, px, pd, ci, o0, o1, buf, sums, dw);
  weight_task<false>(g, px, pd, ci, o0, o1, buf, sums, dw);
}

static void direct_backward_weight(const float* px, const float* pd, float* dw, const ConvGeom& g) {
  // Tasks: (input channel, block of output channels), enough to share out.
  const i64 want = 8 * omp_get_max_threads();
  const i64 block = std::clamp<i64>((g.o * g.c + want - 1) / want, 1, g.o);
  const i64 blocks = (g.o + block - 1) / block;
#pragma omp parallel for schedule(dynamic, 1) if (g.w_size * g.n * g.ho * g.wo >= kParallelGrain)
  for (i64 t = 0; t < g.c * blocks; ++t) {
    thread_local Scratch buf, sums;
    const i64 ci = t / blocks, o0 = (t % blocks) * block;
    direct_weight_task(g, px, pd, ci, o0, std::min(g.o, o0 + block), buf, sums, dw);
  }
}

// ---------------------------------------------------------------- pixel-major implicit GEMM
// With the images innermost, activations laid out (pixel, channel, image),
// every B row of a panel (32 images at one grid pixel) is one contiguous run,
// whatever the stride, and whether a tap reads padding depends only on the
// (tap, pixel) pair.  K is ordered (tap, channel), so a block of K within one
// tap is zero for the whole panel where that tap reads padding, and the GEMM
// skips it: at 4x4 a 3x3 kernel reads padding in 31% of the products, and a
// stride-2 backward_input (each input pixel takes about a quarter of the
// taps) in 75%.  The price is two layout passes, in and out.

// The source pixel of every (tap, grid pixel), or -1 where the tap reads
// padding.  source(grid coordinate, tap coordinate, source size) does one
// axis: the source coordinate, or -1 outside.
template <class Source>
static std::vector<i64> source_pixels(const ConvGeom& g, i64 gh, i64 gw, i64 sh, i64 sw, Source source) {
  std::vector<i64> table(g.kh * g.kw * gh * gw);
  for (i64 ky = 0; ky < g.kh; ++ky)
    for (i64 kx = 0; kx < g.kw; ++kx)
      for (i64 gy = 0; gy < gh; ++gy)
        for (i64 gx = 0; gx < gw; ++gx) {
          const i64 sy = source(gy, ky, sh), sx = source(gx, kx, sw);
          table[((ky * g.kw + kx) * gh + gy) * gw + gx] = sy < 0 || sx < 0 ? -1 : sy * sw + sx;
        }
  return table;
}

// B((t, ch), (p, img)) = src[(table[t * P + p] * seg + ch) * n + img], zero
// where the table says -1: src is (pixels, seg channels, n images).
struct TapPixelsB final : PackB {
  TapPixelsB(const float* src, i64 seg, i64 n, i64 P, std::vector<i64> table)
      : src(src), seg(seg), n(n), P(P), table(std::move(table)) {}
  i64 k_segment() const override { return seg; }
  bool zero(i64 k0, i64 kc, i64 j0, i64 cols) const override {
    for (i64 t = k0 / seg; t <= (k0 + kc - 1) / seg; ++t)
      for (i64 p = j0 / n; p <= (j0 + cols - 1) / n; ++p)
        if (table[t * P + p] >= 0) return false;
    return true;
  }
  void pack(i64 k0, i64 kc, i64 j0, i64 cols, int nr, float* dst) const override {
    for (i64 j = j0; j < j0 + cols;) {  // runs of one grid pixel
      const i64 p = j / n, img = j % n, len = std::min(n - img, j0 + cols - j);
      pack_run(table.data() + p, P, src + img, seg, n, k0, kc, len, dst + (j - j0), nr);
      j += len;
    }
    for (i64 kk = 0; kk < kc; ++kk) std::fill(dst + kk * nr + cols, dst + kk * nr + nr, 0.0f);
  }
  // d[kk * nr + i] for i < len: the run of images at one grid pixel, for the
  // (tap, channel) rows k0 .. k0 + kc.
  NEEDLE_CLONES static void pack_run(const i64* pixel, i64 P, const float* src, i64 seg, i64 n, i64 k0,
                                     i64 kc, i64 len, float* d, i64 nr) {
    i64 t = k0 / seg, ch = k0 % seg;
    for (i64 kk = 0; kk < kc; ++kk, d += nr) {
      const i64 at = pixel[t * P];
      if (at < 0)
        std::fill(d, d + len, 0.0f);
      else
        copy_short(src + (at * seg + ch) * n, len, d);
      if (++ch == seg) {
        ch = 0;
        ++t;
      }
    }
  }
  const float* src;
  i64 seg, n, P;
  std::vector<i64> table;
};

// (n, ch, P) -> (P, ch, n), and back.
static void to_images_inner(const float* src, i64 n, i64 ch, i64 P, float* dst) {
#pragma omp parallel for schedule(static) if (n * ch * P >= kParallelGrain)
  for (i64 c = 0; c < ch; ++c) transpose_blocks(src + c * P, n, P, 1, ch * P, dst + c * n, ch * n);
}
static void from_images_inner(const float* src, i64 n, i64 ch, i64 P, float* dst) {
#pragma omp parallel for schedule(static) if (n * ch * P >= kParallelGrain)
  for (i64 c = 0; c < ch; ++c) transpose_blocks(src + c * P * n, P, n, 1, n, dst + c * P, ch * P);
}

// out (n, rows, grid) = A (rows x taps*seg) * B, with B's source src (n,
// seg, src pixels) taken pixel-major through `table` (taps x grid pixels).
static void pixel_major_gemm(const float* src, i64 src_pixels, i64 seg, const float* a, i64 rows,
                             std::vector<i64> table, i64 taps, i64 grid, const float* bias, i64 n,
                             float* out) {
  Array srct(n * seg * src_pixels), outt(rows * grid * n);
  to_images_inner(src, n, seg, src_pixels, srct.ptr);
  gemm(rows, grid * n, taps * seg, SegmentedA(a, taps * seg, taps * seg, 0),
       TapPixelsB(srct.ptr, seg, n, grid, std::move(table)), row_major_c(outt.ptr, grid * n), bias, true);
  from_images_inner(outt.ptr, n, rows, grid, out);
}

// Measured (benchmarks/NOTES.md): ahead where a panel is whole images at
// one pixel and both planes are small (16x16 and below).  At 32x32 the
// layout passes cost more than the gathers they save, except for a strided
// backward_input, where the alternative (col2im) is slower still.
static bool pixel_major_fits(Direction d, const ConvGeom& g) {
  if (g.n < 16) return false;
  return std::max(g.h * g.w, g.ho * g.wo) <= 256 || (d == Direction::backward_input && g.stride > 1);
}

// Forward: grid = output pixels, source = x; A = W with K ordered (tap, channel).
static void forward_pixel_major(const float* px, const float* pw, const float* pb, float* out,
                                const ConvGeom& g) {
  const i64 taps = g.kh * g.kw, K = taps * g.c;
  Array wt(g.o * K);
#pragma omp parallel for schedule(static) if (g.w_size >= kParallelGrain)
  for (i64 oc = 0; oc < g.o; ++oc) transpose_blocks(pw + oc * K, g.c, taps, 1, wt.ptr + oc * K);
  auto table = source_pixels(g, g.ho, g.wo, g.h, g.w, [&](i64 at, i64 k, i64 size) -> i64 {
    const i64 i = at * g.stride - g.pad + k;
    return i >= 0 && i < size ? i : -1;
  });
  pixel_major_gemm(px, g.h * g.w, g.c, wt.ptr, g.o, std::move(table), taps, g.ho * g.wo, pb, g.n, out);
}

// backward_input: grid = input pixels, source = dy (input pixel i takes tap
// k from output pixel (i + pad - k) / stride, where that divides); A = W^T
// with K ordered (tap, output channel).
static void backward_input_pixel_major(const float* pd, const float* pw, float* px, const ConvGeom& g) {
  const i64 taps = g.kh * g.kw;
  Array wt(g.c * taps * g.o);
  transpose_blocks(pw, g.o, g.c * taps, 1, wt.ptr);
  auto table = source_pixels(g, g.h, g.w, g.ho, g.wo, [&](i64 at, i64 k, i64 size) -> i64 {
    const i64 i = at + g.pad - k;
    return i >= 0 && i % g.stride == 0 && i / g.stride < size ? i / g.stride : -1;
  });
  pixel_major_gemm(pd, g.ho * g.wo, g.o, wt.ptr, g.c, std::move(table), taps, g.h * g.w, nullptr, g.n,
                   px);
}

static void conv2d_forward(const Array& x, const Array& w, const Array* bias, Array& out, i64 n, i64 c,
                           i64 h, i64 w_, i64 o, i64 kh, i64 kw, i64 stride, i64 padding) {
  const ConvGeom g =
      checked_geom(Direction::forward, x, w, out, bias, n, c, h, w_, o, kh, kw, stride, padding);
  std::vector<float> kx, kw_, kb;
  const float* px = distinct_input(x, out, kx);
  const float* pw = distinct_input(w, out, kw_);
  const float* pb = bias ? distinct_input(*bias, out, kb) : nullptr;

  if (o < kFewChannels) return direct_forward(px, pw, pb, out.ptr, g);
  if (pixel_major_fits(Direction::forward, g)) return forward_pixel_major(px, pw, pb, out.ptr, g);
  const i64 taps = c * kh * kw, P = g.ho * g.wo;
  const Windows win(px, n, c, h, w_, g.ho, g.wo, kh, kw, stride, -padding, -padding, 1);
  const GridC dst{out.ptr, P, o * P, g.ho, g.wo, 0, g.wo, 1};
  gemm(o, n * P, taps, SegmentedA(pw, taps, taps, 0), WindowsB(win), dst, pb, true);
}

// ---------------------------------------------------------------- pixel-major backward_weight
// With stride 1, a tap (ky, kx) only shifts the image: on a zero-bordered
// pixel-major copy xt (pixels of the padded grid, channels contiguous) and dy
// laid out on the same padded grid (zero where no output pixel is), the
// input under output pixel k for tap t is pixel k + shift(t).  So
//   dw^T (taps*c x o) = A (taps*c x pixels) * dyt (pixels x o),
//   A(t*c + ci, k) = xt[(k + shift(t)) * c + ci],
// one GEMM whose operands pack by contiguous copies (8 channels, 32 output
// channels at a pixel) instead of a strided gather per element, at the price
// of the border pixels' wasted products.

struct ShiftedPixelsA final : PackA {
  ShiftedPixelsA(const float* xt, i64 c, std::vector<i64> shifts) : xt(xt), c(c), shifts(std::move(shifts)) {}
  void pack(i64 i0, i64 rows, i64 k0, i64 kc, int mr, float* dst) const override {
    for (i64 ii = 0; ii < rows;) {  // runs of rows that share a tap
      const i64 tap = (i0 + ii) / c, ci = (i0 + ii) % c, len = std::min(rows - ii, c - ci);
      const float* src = xt + (k0 + shifts[tap]) * c + ci;
      for (i64 kk = 0; kk < kc; ++kk) copy_short(src + kk * c, len, dst + kk * mr + ii);
      ii += len;
    }
    if (rows < mr)
      for (i64 kk = 0; kk < kc; ++kk) std::fill(dst + kk * mr + rows, dst + kk * mr + mr, 0.0f);
  }
  const float* xt;
  i64 c;
  std::vector<i64> shifts;
};

// planes (n, ch, rows, cols) -> pixel-major (n, rows + 2*pad, cols + 2*pad
// + extra, ch) at offset (pad, pad), zero elsewhere and for `slack` pixels
// past the end.
static void to_pixel_major(const float* src, i64 n, i64 ch, i64 rows, i64 cols, i64 pad, i64 gh, i64 gw,
                           i64 slack, float* dst) {
  const i64 total = (n * gh * gw + slack) * ch;
#pragma omp parallel for schedule(static) if (total >= kParallelGrain)
  for (i64 r = 0; r < n * gh; ++r) {
    const i64 img = r / gh, y = r % gh - pad;
    float* drow = dst + r * gw * ch;
    std::fill(drow, drow + gw * ch, 0.0f);
    if (y < 0 || y >= rows) continue;
    for (i64 c = 0; c < ch; ++c) {
      const float* srow = src + ((img * ch + c) * rows + y) * cols;
      for (i64 x = 0; x < cols; ++x) drow[(x + pad) * ch + c] = srow[x];
    }
  }
  std::fill(dst + n * gh * gw * ch, dst + total, 0.0f);
}

// Measured (benchmarks/NOTES.md): ahead of the gathering GEMM at 32x32 (13%
// more products), behind it at 16x16 (27%).
static bool shifted_weight_fits(const ConvGeom& g) {
  const i64 gh = g.h + 2 * g.pad, gw = g.w + 2 * g.pad;
  return g.stride == 1 && gh * gw * 100 <= g.ho * g.wo * 115;
}

static void backward_weight_shifted(const float* px, const float* pd, float* dw, const ConvGeom& g) {
  const i64 gh = g.h + 2 * g.pad, gw = g.w + 2 * g.pad, taps = g.kh * g.kw;
  const i64 pixels = g.n * gh * gw, slack = (g.kh - 1) * gw + g.kw - 1;
  Array xt((pixels + slack) * g.c), dyt(pixels * g.o), dwt(taps * g.c * g.o);
  to_pixel_major(px, g.n, g.c, g.h, g.w, g.pad, gh, gw, slack, xt.ptr);
  to_pixel_major(pd, g.n, g.o, g.ho, g.wo, 0, gh, gw, 0, dyt.ptr);
  std::vector<i64> shifts;
  for (i64 ky = 0; ky < g.kh; ++ky)
    for (i64 kx = 0; kx < g.kw; ++kx) shifts.push_back(ky * gw + kx);
  gemm(taps * g.c, g.o, pixels, ShiftedPixelsA(xt.ptr, g.c, std::move(shifts)),
       SegmentedB(dyt.ptr, g.o, std::max<i64>(g.o, 1), 0), row_major_c(dwt.ptr, g.o), nullptr, true);
#pragma omp parallel for schedule(static) if (g.w_size >= kParallelGrain)
  for (i64 oc = 0; oc < g.o; ++oc)
    for (i64 ci = 0; ci < g.c; ++ci)
      for (i64 t = 0; t < taps; ++t) dw[(oc * g.c + ci) * taps + t] = dwt.ptr[(t * g.c + ci) * g.o + oc];
}

static void conv2d_backward_weight(const Array& x, const Array& dy, Array& dw, i64 n, i64 c, i64 h,
                                   i64 w_, i64 o, i64 kh, i64 kw, i64 stride, i64 padding) {
  const ConvGeom g = checked_geom(Direction::backward_weight, x, dy, dw, nullptr, n, c, h, w_, o, kh, kw,
                                  stride, padding);
  std::vector<float> kx, kd;
  const float* px = distinct_input(x, dw, kx);
  const float* pd = distinct_input(dy, dw, kd);

  if (o < kFewChannels || c < kFewChannels) return direct_backward_weight(px, pd, dw.ptr, g);
  if (shifted_weight_fits(g)) return backward_weight_shifted(px, pd, dw.ptr, g);
  const i64 taps = c * kh * kw, P = g.ho * g.wo;
  const Windows win(px, n, c, h, w_, g.ho, g.wo, kh, kw, stride, -padding, -padding, 1);
  gemm(o, taps, n * P, SegmentedA(pd, P, P, o * P), WindowsTB(win), row_major_c(dw.ptr, taps),
       nullptr, true);
}

// Stride 1: dx = W_t * windows(dy), one GEMM straight into dx, where W_t
// (c x o*kh*kw) is W with its first two axes swapped and dx's pixel y takes
// tap ky from dy row y + pad - ky (a window read with tap step -1).
static void backward_input_gemm(const float* pd, const float* pw, float* px, const ConvGeom& g) {
  const i64 taps = g.kh * g.kw, K = g.o * taps;
  Array wt(g.c * K);
  transpose_blocks(pw, g.o, g.c, taps, wt.ptr);
  const Windows win(pd, g.n, g.o, g.ho, g.wo, g.h, g.w, g.kh, g.kw, 1, g.pad, g.pad, -1);
  const GridC dst{px, g.h * g.w, g.c * g.h * g.w, g.h, g.w, 0, g.w, 1};
  gemm(g.c, g.n * g.h * g.w, K, SegmentedA(wt.ptr, K, std::max<i64>(K, 1), 0), WindowsB(win), dst,
       nullptr, true);
}

// Adds every column of cols (rows (ci, ky, kx), columns (img, oy, ox) for
// `imgs` images) into the input pixel it came from.
static void col2im(const float* cols, float* px, i64 imgs, const ConvGeom& g) {
  const i64 P = g.ho * g.wo, ncols = imgs * P, plane = g.h * g.w;
#pragma omp parallel for schedule(static) if (imgs * g.c * plane >= kParallelGrain)
  for (i64 t = 0; t < imgs * g.c; ++t) {
    const i64 img = t / g.c, ci = t % g.c;
    float* dst = px + t * plane;
    std::fill(dst, dst + plane, 0.0f);
    for (i64 ky = 0; ky < g.kh; ++ky)
      for (i64 kx = 0; kx < g.kw; ++kx) {
        const float* src = cols + ((ci * g.kh + ky) * g.kw + kx) * ncols + img * P;
        const Span cols_in = inside(kx - g.pad, g.stride, g.w, g.wo);
        for (i64 oy = 0; oy < g.ho; ++oy) {
          const i64 y = oy * g.stride - g.pad + ky;
          if (y < 0 || y >= g.h) continue;
          float* drow = dst + y * g.w - g.pad + kx;
          const float* srow = src + oy * g.wo;
          if (g.stride == 1) {
            for (i64 ox = cols_in.lo; ox < cols_in.hi; ++ox) drow[ox] += srow[ox];
          } else {
            for (i64 ox = cols_in.lo; ox < cols_in.hi; ++ox) drow[ox * g.stride] += srow[ox];
          }
        }
      }
  }
}

// dx = col2im(W^T dy), a chunk of images at a time: one tall GEMM
// (c*kh*kw rows) with a contiguous output, whatever the stride.
static void backward_input_col2im(const float* pd, const float* pw, float* px, const ConvGeom& g) {
  const i64 taps = g.c * g.kh * g.kw, P = g.ho * g.wo;
  Array wt(taps * g.o);  // W^T, taps x o
  transpose_blocks(pw, g.o, taps, 1, wt.ptr);
  constexpr i64 kChunkFloats = i64(1) << 21;  // 8 MiB of columns per chunk
  const i64 chunk = std::clamp<i64>(kChunkFloats / std::max<i64>(taps * P, 1), 1, g.n);
  thread_local Scratch cols_buf;
  float* cols = cols_buf.get(taps * chunk * P);
  for (i64 img0 = 0; img0 < g.n; img0 += chunk) {
    const i64 imgs = std::min(chunk, g.n - img0);
    gemm(taps, imgs * P, g.o, SegmentedA(wt.ptr, g.o, std::max<i64>(g.o, 1), 0),
         SegmentedB(pd + img0 * g.o * P, P, P, g.o * P), row_major_c(cols, imgs * P), nullptr, true);
    col2im(cols, px + img0 * g.c * g.h * g.w, imgs, g);
  }
}

static void conv2d_backward_input(const Array& dy, const Array& w, Array& dx, i64 n, i64 c, i64 h,
                                  i64 w_, i64 o, i64 kh, i64 kw, i64 stride, i64 padding) {
  const ConvGeom g = checked_geom(Direction::backward_input, dy, w, dx, nullptr, n, c, h, w_, o, kh, kw,
                                  stride, padding);
  std::vector<float> kd, kw_;
  const float* pd = distinct_input(dy, dx, kd);
  const float* pw = distinct_input(w, dx, kw_);
  // The pixel-major GEMM and backward_input_gemm have c rows, which a few
  // input channels (the network's grey input, an RGB image) would leave
  // mostly padding in the MR-row micro-kernel; col2im's GEMM has c*kh*kw.
  // With stride > 1 and a small batch, col2im's GEMM reads dy rows whole,
  // where splitting dx into stride^2 phases (one GEMM each) was measured
  // slower (benchmarks/NOTES.md).
  if (c >= kFewChannels && pixel_major_fits(Direction::backward_input, g))
    backward_input_pixel_major(pd, pw, dx.ptr, g);
  else if (c < kFewChannels || stride > 1)
    backward_input_col2im(pd, pw, dx.ptr, g);
  else
    backward_input_gemm(pd, pw, dx.ptr, g);
}

// ---------------------------------------------------------------- reference
// The definition, one multiply-add at a time: what the tests hold the fast
// paths above to, on random shapes.

// Calls f(img, oc, ci, y, x, ky, kx, input index, output index, weight index)
// for every (output pixel, tap) pair whose input pixel lies inside the image.
template <class F>
static void for_each_tap(const ConvGeom& g, F f) {
  for (i64 img = 0; img < g.n; ++img)
    for (i64 oc = 0; oc < g.o; ++oc)
      for (i64 y = 0; y < g.ho; ++y)
        for (i64 x = 0; x < g.wo; ++x)
          for (i64 ci = 0; ci < g.c; ++ci)
            for (i64 ky = 0; ky < g.kh; ++ky)
              for (i64 kx = 0; kx < g.kw; ++kx) {
                const i64 iy = y * g.stride - g.pad + ky, ix = x * g.stride - g.pad + kx;
                if (iy < 0 || iy >= g.h || ix < 0 || ix >= g.w) continue;
                f(((img * g.c + ci) * g.h + iy) * g.w + ix, ((img * g.o + oc) * g.ho + y) * g.wo + x,
                  ((oc * g.c + ci) * g.kh + ky) * g.kw + kx);
              }
}

// Every (output pixel, tap) pair adds one product into the direction's
// result, in a float accumulator per element.
template <Direction d>
static void reference_conv(const Array& in0, const Array& in1, const Array* bias, Array& out, i64 n, i64 c,
                           i64 h, i64 w, i64 o, i64 kh, i64 kw, i64 stride, i64 padding) {
  const ConvGeom g = checked_geom(d, in0, in1, out, bias, n, c, h, w, o, kh, kw, stride, padding);
  const i64 size = d == Direction::forward ? g.y_size : d == Direction::backward_input ? g.x_size : g.w_size;
  std::vector<float> r(size);
  for (std::size_t i = 0; i < r.size(); ++i) r[i] = bias ? bias->ptr[(i / (g.ho * g.wo)) % o] : 0.0f;
  for_each_tap(g, [&](i64 xi, i64 yi, i64 wi) {
    if constexpr (d == Direction::forward) r[yi] += in1.ptr[wi] * in0.ptr[xi];          // w * x
    if constexpr (d == Direction::backward_input) r[xi] += in1.ptr[wi] * in0.ptr[yi];   // w * dy
    if constexpr (d == Direction::backward_weight) r[wi] += in1.ptr[yi] * in0.ptr[xi];  // dy * x
  });
  std::copy(r.begin(), r.end(), out.ptr);
}

static void reference_forward(const Array& x, const Array& w, const Array* bias, Array& out, i64 n, i64 c,
                              i64 h, i64 w_, i64 o, i64 kh, i64 kw, i64 stride, i64 padding) {
  reference_conv<Direction::forward>(x, w, bias, out, n, c, h, w_, o, kh, kw, stride, padding);
}

static void reference_backward_input(const Array& dy, const Array& w, Array& dx, i64 n, i64 c, i64 h,
                                     i64 w_, i64 o, i64 kh, i64 kw, i64 stride, i64 padding) {
  reference_conv<Direction::backward_input>(dy, w, nullptr, dx, n, c, h, w_, o, kh, kw, stride, padding);
}

static void reference_backward_weight(const Array& x, const Array& dy, Array& dw, i64 n, i64 c, i64 h,
                                      i64 w_, i64 o, i64 kh, i64 kw, i64 stride, i64 padding) {
  reference_conv<Direction::backward_weight>(x, dy, nullptr, dw, n, c, h, w_, o, kh, kw, stride, padding);
}

void register_conv(py::module_& m, py::module_& reference) {
  using release = py::call_guard<py::gil_scoped_release>;
  for (py::module_* mod : {&m, &reference}) {
    const bool fast = mod == &m;
    mod->def("conv2d_forward", fast ? &conv2d_forward : &reference_forward, py::arg("x"), py::arg("w"),
             py::arg("bias").none(true), py::arg("out"), py::arg("n"), py::arg("c"), py::arg("h"),
             py::arg("width"), py::arg("o"), py::arg("kh"), py::arg("kw"), py::arg("stride"),
             py::arg("padding"), release());
    mod->def("conv2d_backward_input", fast ? &conv2d_backward_input : &reference_backward_input,
             py::arg("dy"), py::arg("w"), py::arg("dx"), py::arg("n"), py::arg("c"), py::arg("h"),
             py::arg("width"), py::arg("o"), py::arg("kh"), py::arg("kw"), py::arg("stride"),
             py::arg("padding"), release());
    mod->def("conv2d_backward_weight", fast ? &conv2d_backward_weight : &reference_backward_weight,
             py::arg("x"), py::arg("dy"), py::arg("dw"), py::arg("n"), py::arg("c"), py::arg("h"),
             py::arg("width"), py::arg("o"), py::arg("kh"), py::arg("kw"), py::arg("stride"),
             py::arg("padding"), release());
  }
}

}  // namespace needle
