// Blocked SGEMM (matmul.h) and the contract's batched matmul.
//
// Structure (BLIS-like): the work is cut into tasks of whole NR-wide column
// panels, and of row ranges where M is the larger side or N alone cannot
// feed every thread; each task walks K in KC-deep blocks, packs its B block
// once, then for each MC-row A slab packs the slab (or takes it from an A
// packed once for all tasks) and runs the MR x NR register-blocked
// micro-kernel with a B micro-panel held in L1 and the A slab in L2.  The
// micro-kernel is chosen at run time (simd.h).
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cstring>

#include <pybind11/pybind11.h>

#include "array.h"
#include "matmul.h"
#include "simd.h"

namespace py = pybind11;

namespace needle {

// ---------------------------------------------------------------- transposes

// d[j * ds + i] = rows[i][at + j] for an 8 x 8 tile: unpack pairs, then
// quads, then swap 128-bit halves.
__attribute__((target("avx2"))) static void transpose8x8(const float* const* rows, i64 at, float* d,
                                                        i64 ds) {
  __m256 r[8], t[8];
  for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(rows[i] + at);
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {
    r[i] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
    r[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
    r[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
    r[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  for (int i = 0; i < 4; ++i) {
    _mm256_storeu_ps(d + i * ds, _mm256_permute2f128_ps(r[i], r[i + 4], 0x20));
    _mm256_storeu_ps(d + (i + 4) * ds, _mm256_permute2f128_ps(r[i], r[i + 4], 0x31));
  }
}

void transpose_blocks(const float* src, i64 rows, i64 cols, i64 block, i64 src_stride, float* dst,
                      i64 dst_stride) {
  // Strips of 16 source columns, each walked down all the rows 8 at a time:
  // every source line read is used whole at once, and the strip's 16
  // destination rows fill up in cache.  The rows of both sides are often a
  // power of two apart (whole planes), where any 16 of them share one L1
  // set: 8 at a time fit its ways.
  constexpr i64 kStrip = 16, kReg = 8;
  auto strip = [&](i64 js) {
    for (i64 r1 = 0; r1 < rows; r1 += kReg)
      for (i64 j1 = js * kStrip; j1 < std::min(cols, (js + 1) * kStrip); j1 += kReg) {
        const float* s = src + r1 * src_stride + j1 * block;
        float* d = dst + j1 * dst_stride + r1 * block;
        if (block == 1 && r1 + kReg <= rows) {  // eight whole rows: the register tiles
          const float* tile[kReg];
          for (i64 r = 0; r < kReg; ++r) tile[r] = s + r * src_stride;
          transpose_rows8(tile, std::min(kReg, cols - j1), d, dst_stride);
          continue;
        }
        for (i64 j = 0; j < std::min(kReg, cols - j1); ++j)
          for (i64 r = 0; r < std::min(kReg, rows - r1); ++r) {
            if (block == 1)
              d[j * dst_stride + r] = s[r * src_stride + j];
            else
              std::copy_n(s + r * src_stride + j * block, block, d + j * dst_stride + r * block);
          }
      }
  };
  const i64 strips = (cols + kStrip - 1) / kStrip;
  // Small transposes (packing an A micro-panel) skip the OpenMP region
  // entirely: even a one-thread region costs a runtime call.
  if (rows * cols * block < kParallelGrain || omp_in_parallel()) {
    for (i64 js = 0; js < strips; ++js) strip(js);
    return;
  }
#pragma omp parallel for schedule(static)
  for (i64 js = 0; js < strips; ++js) strip(js);
}

void transpose_rows8(const float* const* rows, i64 len, float* dst, i64 dst_stride) {
  i64 j = 0;
  if (active_isa() != Isa::generic)
    for (; j + 8 <= len; j += 8) transpose8x8(rows, j, dst + j * dst_stride, dst_stride);
  for (; j < len; ++j)
    for (int i = 0; i < 8; ++i) dst[j * dst_stride + i] = rows[i][j];
}

// ---------------------------------------------------------------- operands

void SegmentedA::pack(i64 i0, i64 rows, i64 k0, i64 kc, int mr, float* dst) const {
  for (i64 k = k0; k < k0 + kc;) {
    const i64 s = k / seg, r = k % seg, len = std::min(seg - r, k0 + kc - k);
    float* d = dst + (k - k0) * mr;
    const float* src = p + s * seg_stride + i0 * row_stride + r;
    if (rows == mr) {  // a whole micro-panel: an (mr x len) transpose
      transpose_blocks(src, rows, len, 1, row_stride, d, mr);
    } else {
      for (i64 ii = 0; ii < rows; ++ii)
        for (i64 t = 0; t < len; ++t) d[t * mr + ii] = src[ii * row_stride + t];
      for (i64 t = 0; t < len; ++t)
        for (i64 ii = rows; ii < mr; ++ii) d[t * mr + ii] = 0.0f;
    }
    k += len;
  }
}

void SegmentedB::pack(i64 k0, i64 kc, i64 j0, i64 cols, int nr, float* dst) const {
  for (i64 kk = 0; kk < kc; ++kk) {
    float* d = dst + kk * nr;
    for (i64 j = j0; j < j0 + cols;) {
      const i64 s = j / seg, r = j % seg, len = std::min(seg - r, j0 + cols - j);
      std::memcpy(d + (j - j0), p + s * seg_stride + (k0 + kk) * row_stride + r, len * sizeof(float));
      j += len;
    }
    std::fill(d + cols, d + nr, 0.0f);
  }
}

void GridC::col_offsets(i64 j0, i64 cols, i64* dst) const {
  const i64 plane = height * width;
  i64 img = j0 / plane, y = (j0 % plane) / width, x = j0 % width;
  for (i64 jj = 0; jj < cols; ++jj) {
    dst[jj] = img * img_stride + base + y * y_stride + x * x_stride;
    if (++x == width) {
      x = 0;
      if (++y == height) {
        y = 0;
        ++img;
      }
    }
  }
}

GridC row_major_c(float* c, i64 n) { return GridC{c, n, 0, 1, n, 0, 0, 1}; }

// ---------------------------------------------------------------- micro-kernels
// Each computes one MR x NR tile from packed panels: c = init + a * b, or
// c += a * b when `acc`.  `init` (MR values, may be null) seeds row i.  The
// tile's left and right NR/2 columns go to c0 and c1 (row stride ldc), so a
// tile straddling two images of a conv output (P = 16 at 4x4) stores directly.

using KernelFn = void (*)(i64 kc, const float* a, const float* b, float* c0, float* c1, i64 ldc,
                          const float* init, bool acc);

struct MicroKernel {
  int mr, nr;
  KernelFn fn;
};

__attribute__((target("avx512f"))) static void kernel_avx512(i64 kc, const float* a, const float* b,
                                                             float* c0, float* c1, i64 ldc,
                                                             const float* init, bool acc) {
  // 16 accumulators and 2 B registers of the 32: a 12-row tile (24
  // accumulators) ran 10% faster alone but no faster inside the GEMM.
  constexpr int MR = 8;
  __m512 lo[MR], hi[MR];
  // The C tile is read (acc) or written after the loop; its rows lie a
  // whole row of C apart, usually out of cache: start fetching them now.
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i) {
    _mm_prefetch(reinterpret_cast<const char*>(c0 + i * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c1 + i * ldc), _MM_HINT_T0);
  }
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i) lo[i] = hi[i] = init ? _mm512_set1_ps(init[i]) : _mm512_setzero_ps();
  for (i64 k = 0; k < kc; ++k) {
    const __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      const __m512 ai = _mm512_set1_ps(a[i]);
      lo[i] = _mm512_fmadd_ps(ai, b0, lo[i]);
      hi[i] = _mm512_fmadd_ps(ai, b1, hi[i]);
    }
    a += MR;
    b += 32;
  }
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i) {
    float *left = c0 + i * ldc, *right = c1 + i * ldc;
    if (acc) {
      lo[i] = _mm512_add_ps(lo[i], _mm512_loadu_ps(left));
      hi[i] = _mm512_add_ps(hi[i], _mm512_loadu_ps(right));
    }
    _mm512_storeu_ps(left, lo[i]);
    _mm512_storeu_ps(right, hi[i]);
  }
}

__attribute__((target("avx2,fma"))) static void kernel_avx2(i64 kc, const float* a, const float* b,
                                                           float* c0, float* c1, i64 ldc,
                                                           const float* init, bool acc) {
  constexpr int MR = 6;
  __m256 lo[MR], hi[MR];
#pragma GCC unroll 6
  for (int i = 0; i < MR; ++i) _mm_prefetch(reinterpret_cast<const char*>(c0 + i * ldc), _MM_HINT_T0);
#pragma GCC unroll 6
  for (int i = 0; i < MR; ++i) lo[i] = hi[i] = init ? _mm256_set1_ps(init[i]) : _mm256_setzero_ps();
  for (i64 k = 0; k < kc; ++k) {
    const __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
#pragma GCC unroll 6
    for (int i = 0; i < MR; ++i) {
      const __m256 ai = _mm256_broadcast_ss(a + i);
      lo[i] = _mm256_fmadd_ps(ai, b0, lo[i]);
      hi[i] = _mm256_fmadd_ps(ai, b1, hi[i]);
    }
    a += MR;
    b += 16;
  }
#pragma GCC unroll 6
  for (int i = 0; i < MR; ++i) {
    float *left = c0 + i * ldc, *right = c1 + i * ldc;
    if (acc) {
      lo[i] = _mm256_add_ps(lo[i], _mm256_loadu_ps(left));
      hi[i] = _mm256_add_ps(hi[i], _mm256_loadu_ps(right));
    }
    _mm256_storeu_ps(left, lo[i]);
    _mm256_storeu_ps(right, hi[i]);
  }
}

// Portable reference path (baseline x86-64 / any CPU): plain loops the
// compiler vectorizes with SSE.
static void kernel_generic(i64 kc, const float* a, const float* b, float* c0, float* c1, i64 ldc,
                           const float* init, bool acc) {
  constexpr int MR = 4, NR = 16;
  float t[MR][NR];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) t[i][j] = init ? init[i] : 0.0f;
  for (i64 k = 0; k < kc; ++k) {
    for (int i = 0; i < MR; ++i)
      for (int j = 0; j < NR; ++j) t[i][j] += a[i] * b[j];
    a += MR;
    b += NR;
  }
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) {
      float* dst = (j < NR / 2 ? c0 + j : c1 + (j - NR / 2)) + i * ldc;
      *dst = acc ? *dst + t[i][j] : t[i][j];
    }
}

static const MicroKernel& micro_kernel() {
  static const MicroKernel avx512{8, 32, kernel_avx512}, avx2{6, 16, kernel_avx2},
      generic{4, 16, kernel_generic};
  switch (active_isa()) {
    case Isa::avx512: return avx512;
    case Isa::avx2: return avx2;
    default: return generic;
  }
}

// ---------------------------------------------------------------- gemm

constexpr i64 kKC = 256;         // depth of a packed block: a B micro-panel fills ~L1
constexpr i64 kMC = 256;         // rows of an A slab: kMC x kKC floats stay in L2
constexpr i64 kNC = 1024;        // columns per task (before balancing across threads)
constexpr i64 kMinParallelFlops = 1 << 21;
constexpr i64 kMaxSharedA = i64(1) << 22;  // floats of A packed once for every column task

static i64 ceil_div(i64 a, i64 b) { return (a + b - 1) / b; }

static void fill_c(i64 M, i64 N, const GridC& c, const float* row_init) {
  std::vector<i64> offs(N);
  c.col_offsets(0, N, offs.data());
  for (i64 i = 0; i < M; ++i)
    for (i64 j = 0; j < N; ++j) c.c[i * c.row_stride + offs[j]] = row_init ? row_init[i] : 0.0f;
}

void gemm(i64 M, i64 N, i64 K, const PackA& a, const PackB& b, const GridC& c,
          const float* row_init, bool parallel) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) return fill_c(M, N, c, row_init);
  const MicroKernel& uk = micro_kernel();
  const int MR = uk.mr, NR = uk.nr;

  int threads = parallel ? omp_get_max_threads() : 1;
  if (2.0 * M * N * K < kMinParallelFlops) threads = 1;

  // Task grid: m_tasks row ranges x n_tasks groups of whole NR panels,
  // balanced so that every thread gets the same number of tasks.  Tasks on
  // the same columns each pack (gather, for a convolution) the same B, tasks
  // on the same rows the same A: the threads split the larger of the two
  // sides, so that what is packed twice is the small one.
  const i64 n_panels = ceil_div(N, NR);
  i64 task_rows = M, m_tasks = 1;
  i64 n_tasks = std::min(n_panels, ceil_div(N, kNC));
  if (threads > 1) {
    const i64 row_parts = M > N ? threads : (n_panels < threads ? ceil_div(threads, n_panels) : 1);
    if (row_parts > 1) {
      task_rows = ceil_div(ceil_div(M, row_parts), MR) * MR;
      m_tasks = ceil_div(M, task_rows);
    }
    n_tasks = std::max(n_tasks, ceil_div(threads, m_tasks));
    while ((m_tasks * n_tasks) % threads != 0 && n_tasks < n_panels) ++n_tasks;
  }
  const i64 panels_per_task = ceil_div(n_panels, n_tasks);
  n_tasks = ceil_div(n_panels, panels_per_task);
  const i64 tasks = m_tasks * n_tasks;
  const i64 mc = std::min(ceil_div(task_rows, MR), kMC / MR) * MR;  // A slab: whole micro-panels

  // K blocks of at most kKC, cut at every multiple of B's segment.
  const i64 segment = b.k_segment();
  std::vector<i64> k_starts;
  for (i64 pc = 0; pc < K;) {
    k_starts.push_back(pc);
    pc += segment > 0 ? std::min(kKC, segment - pc % segment) : kKC;
  }
  k_starts.push_back(K);
  const i64 blocks = static_cast<i64>(k_starts.size()) - 1;

  // When several column tasks share the same rows, a small A (weights) is
  // packed once for all of them (block pc, micro-panel i0 at pc * m_pad +
  // i0 * kc) instead of once per task: packing A costs as much as a few
  // hundred columns of work.
  const i64 m_pad = ceil_div(M, MR) * MR;
  thread_local Scratch shared_a;
  float* a_all = n_tasks > 1 && m_pad * K <= kMaxSharedA ? shared_a.get(m_pad * K) : nullptr;
  if (a_all) {
    const i64 panels = m_pad / MR;
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
    for (i64 t = 0; t < blocks * panels; ++t) {
      const i64 pc = k_starts[t / panels], kc = k_starts[t / panels + 1] - pc, i0 = (t % panels) * MR;
      a.pack(i0, std::min<i64>(MR, M - i0), pc, kc, MR, a_all + pc * m_pad + i0 * kc);
    }
  }

  auto run_task = [&](i64 task) {
    thread_local Scratch a_buf, b_buf;
    thread_local std::vector<i64> offs;
    thread_local std::vector<char> live, written;
    alignas(64) float tile[kMaxMR * kMaxNR];
    alignas(64) float init_tile[kMaxMR];

    const i64 i_begin = (task / n_tasks) * task_rows, i_end = std::min(M, i_begin + task_rows);
    const i64 p_begin = (task % n_tasks) * panels_per_task;
    const i64 p_end = std::min(n_panels, p_begin + panels_per_task);
    const i64 j_begin = p_begin * NR, j_end = std::min(N, p_end * NR);
    float* ap = a_all ? nullptr : a_buf.get(mc * std::min(K, kKC));
    float* bp = b_buf.get((p_end - p_begin) * NR * std::min(K, kKC));
    offs.resize(j_end - j_begin);
    c.col_offsets(j_begin, j_end - j_begin, offs.data());
    live.assign(p_end - p_begin, 0);
    written.assign(p_end - p_begin, 0);

    // C(rows [ic, ic_end), panel pn) (+)= A slab * B panel over K block blk,
    // where micro-panel i0 of the slab is at aslab + (i0 - ic) * kc.
    auto multiply = [&](i64 pn, i64 blk, const float* aslab, i64 ic, i64 ic_end, const float* bpanel) {
      const i64 kc = k_starts[blk + 1] - k_starts[blk];
      const bool first = !written[pn - p_begin];
      const i64 j0 = pn * NR, cols = std::min<i64>(NR, N - j0);
      const i64* off = offs.data() + (j0 - j_begin);
      const int half = NR / 2;
      bool contiguous = cols == NR;  // within each half
      for (i64 jj = 1; contiguous && jj < NR; ++jj) contiguous = jj == half || off[jj] == off[jj - 1] + 1;
      for (i64 i0 = ic; i0 < ic_end; i0 += MR) {
        const i64 rows = std::min<i64>(MR, ic_end - i0);
        const float* apanel = aslab + (i0 - ic) * kc;
        const float* init = nullptr;
        if (first && row_init) {
          for (i64 ii = 0; ii < MR; ++ii) init_tile[ii] = ii < rows ? row_init[i0 + ii] : 0.0f;
          init = init_tile;
        }
        float* crow = c.c + i0 * c.row_stride;
        if (contiguous && rows == MR) {
          uk.fn(kc, apanel, bpanel, crow + off[0], crow + off[half], c.row_stride, init, !first);
          continue;
        }
        uk.fn(kc, apanel, bpanel, tile, tile + half, NR, init, false);
        for (i64 ii = 0; ii < rows; ++ii)
          for (i64 jj = 0; jj < cols; ++jj) {
            float& dst = crow[ii * c.row_stride + off[jj]];
            dst = first ? tile[ii * NR + jj] : dst + tile[ii * NR + jj];
          }
      }
    };

    // A's rows [ic, ic_end) for K block (pc, kc): from the shared packed A,
    // or packed into this task's slab now.
    auto a_slab = [&](i64 pc, i64 kc, i64 ic, i64 ic_end) -> const float* {
      if (a_all) return a_all + pc * m_pad + ic * kc;
      for (i64 i0 = ic; i0 < ic_end; i0 += MR)
        a.pack(i0, std::min<i64>(MR, ic_end - i0), pc, kc, MR, ap + (i0 - ic) * kc);
      return ap;
    };

    // With one A slab (M small), each B panel is packed right before its
    // only use, while it is in L1, instead of the whole block first.
    const bool one_slab = i_end - i_begin <= mc;
    for (i64 blk = 0; blk < blocks; ++blk) {
      const i64 pc = k_starts[blk], kc = k_starts[blk + 1] - pc;
      if (one_slab) {
        const float* aslab = nullptr;  // packed for the first panel that needs it
        for (i64 pn = p_begin; pn < p_end; ++pn) {
          const i64 j0 = pn * NR, cols = std::min<i64>(NR, N - j0);
          if (b.zero(pc, kc, j0, cols)) continue;
          if (!aslab) aslab = a_slab(pc, kc, i_begin, i_end);
          b.pack(pc, kc, j0, cols, NR, bp);
          multiply(pn, blk, aslab, i_begin, i_end, bp);
          written[pn - p_begin] = 1;
        }
        continue;
      }
      bool any = false;
      for (i64 pn = p_begin; pn < p_end; ++pn) {
        const i64 j0 = pn * NR, cols = std::min<i64>(NR, N - j0);
        live[pn - p_begin] = !b.zero(pc, kc, j0, cols);
        if (!live[pn - p_begin]) continue;
        any = true;
        b.pack(pc, kc, j0, cols, NR, bp + (pn - p_begin) * kc * NR);
      }
      if (!any) continue;
      for (i64 ic = i_begin; ic < i_end; ic += mc) {
        const i64 ic_end = std::min(i_end, ic + mc);
        const float* aslab = a_slab(pc, kc, ic, ic_end);
        for (i64 pn = p_begin; pn < p_end; ++pn)
          if (live[pn - p_begin]) multiply(pn, blk, aslab, ic, ic_end, bp + (pn - p_begin) * kc * NR);
      }
      for (i64 pn = p_begin; pn < p_end; ++pn) written[pn - p_begin] |= live[pn - p_begin];
    }
    // Columns whose every block was zero: C = row_init (or 0).
    for (i64 pn = p_begin; pn < p_end; ++pn) {
      if (written[pn - p_begin]) continue;
      const i64 j0 = pn * NR, cols = std::min<i64>(NR, N - j0);
      for (i64 i = i_begin; i < i_end; ++i)
        for (i64 jj = 0; jj < cols; ++jj)
          c.c[i * c.row_stride + offs[j0 - j_begin + jj]] = row_init ? row_init[i] : 0.0f;
    }
  };

  if (threads > 1 && tasks > 1) {
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
    for (i64 t = 0; t < tasks; ++t) run_task(t);
  } else {
    for (i64 t = 0; t < tasks; ++t) run_task(t);
  }
}

// ---------------------------------------------------------------- matmul

// Validates the sizes of a batch of (m x n) * (n x p) products.
static void check_matmul(const Array& a, const Array& b, const Array& out, i64 batch, i64 m, i64 n,
                         i64 p) {
  require_at_least("batch", batch, 0);
  require_at_least("m", m, 0);
  require_at_least("n", n, 0);
  require_at_least("p", p, 0);
  check_size("a", a, product({batch, m, n}, "matmul"));
  check_size("b", b, product({batch, n, p}, "matmul"));
  check_size("out", out, product({batch, m, p}, "matmul"));
}

static void matmul(const Array& a, const Array& b, Array& out, i64 batch, i64 m, i64 n, i64 p) {
  check_matmul(a, b, out, batch, m, n, p);
  if (batch * m * p == 0) return;
  std::vector<float> keep_a, keep_b;
  const float* pa = distinct_input(a, out, keep_a);
  const float* pb = distinct_input(b, out, keep_b);

  auto one = [&](i64 k, bool parallel) {
    gemm(m, p, n, SegmentedA(pa + k * m * n, n, std::max<i64>(n, 1), 0),
         SegmentedB(pb + k * n * p, p, std::max<i64>(p, 1), 0), row_major_c(out.ptr + k * m * p, p),
         nullptr, parallel);
  };
  // Many small products: one per thread; few large ones: threads inside each.
  const int threads = omp_get_max_threads();
  const double flops = 2.0 * m * n * p;
  if (batch > 1 && threads > 1 && (batch >= 2 * threads || flops < (1 << 22)) &&
      flops * batch >= kMinParallelFlops) {
#pragma omp parallel for schedule(dynamic, 1)
    for (i64 k = 0; k < batch; ++k) one(k, false);
  } else {
    for (i64 k = 0; k < batch; ++k) one(k, true);
  }
}

// The definition, for the tests: each element one dot product, in order.
static void reference_matmul(const Array& a, const Array& b, Array& out, i64 batch, i64 m, i64 n, i64 p) {
  check_matmul(a, b, out, batch, m, n, p);
  std::vector<float> c(batch * m * p);
  for (i64 k = 0; k < batch; ++k)
    for (i64 i = 0; i < m; ++i)
      for (i64 j = 0; j < p; ++j) {
        float sum = 0.0f;
        for (i64 t = 0; t < n; ++t) sum += a.ptr[(k * m + i) * n + t] * b.ptr[(k * n + t) * p + j];
        c[(k * m + i) * p + j] = sum;
      }
  std::copy(c.begin(), c.end(), out.ptr);
}

void register_matmul(py::module_& m, py::module_& reference) {
  for (py::module_* mod : {&m, &reference})
    mod->def("matmul", mod == &m ? &matmul : &reference_matmul, py::arg("a"), py::arg("b"),
             py::arg("out"), py::arg("batch"), py::arg("m"), py::arg("n"), py::arg("p"),
             py::call_guard<py::gil_scoped_release>());
}

}  // namespace needle
