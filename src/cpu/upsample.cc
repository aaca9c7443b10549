// Upsample family: nearest-neighbour upsampling by an integer scale of a
// stack of planes (N*C planes of h x w), and its backward (the sum of each
// scale x scale block).  Both treat the planes as rows = N*C*h input rows of
// w; input row r owns output rows r*scale .. r*scale+scale-1.
//
// Fast path: threads split the rows into one contiguous range each.  Scale 2
// (the network's only scale) is written with GCC vector extensions, compiled
// three times at 16, 8 and 4 floats (AVX-512, AVX2, baseline SSE2) and
// chosen at run time by active_isa(), so the tests can force every width.
// Forward duplicates each input vector with two permutes and stores the
// result straight into both output rows; backward adds the two rows, then
// adjacent pairs, prefetching dy ahead.  Row tails go through halving vector
// widths down to one float, so no width needs a scalar loop.  Other scales
// widen a row with a plain loop and copy it, or add the rows vertically into
// a scratch row and then each group of `scale` across.  When a call moves
// more than the cache keeps (streaming_pays), the scale-2 steps write with
// streaming stores wherever the rows are vector-aligned.  The streaming copy
// that concat.cc uses lives here too, beside the vector code it is built from.
//
// Reference path (module.reference): plain serial loops over every output
// element, for the tests.  Backward sums each block column by column and
// then across, the order the fast path adds in, so the two agree exactly.
#include <immintrin.h>
#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include <pybind11/pybind11.h>

#include "array.h"
#include "simd.h"

namespace py = pybind11;

namespace needle {

namespace {

// Past a quarter of the last-level cache, a call's arrays are not in cache
// the next time anything reads them (the cache also holds the rest of the
// step, and other processes), so write-allocate only adds a read of every
// output line.  On a 48 MiB L3, calls moving 10 MiB ran 10-30% faster with
// plain stores and calls moving 16 MiB 1.3-1.5x faster streamed.
i64 default_stream_threshold() {
  long llc = 0;
#ifdef _SC_LEVEL3_CACHE_SIZE
  llc = sysconf(_SC_LEVEL3_CACHE_SIZE);
#endif
  return static_cast<i64>(llc > 0 ? llc : 32l << 20) / 4 / static_cast<i64>(sizeof(float));
}

i64 g_stream_threshold = default_stream_threshold();

struct UpsampleSizes {
  i64 in, out;  // elements of x and of the upsampled array
};

UpsampleSizes upsample_sizes(i64 planes, i64 h, i64 w, i64 scale) {
  if (std::min({planes, h, w}) < 0 || scale < 1)
    fail("bad upsample sizes planes=" + std::to_string(planes) + " h=" + std::to_string(h) +
         " w=" + std::to_string(w) + " scale=" + std::to_string(scale));
  const i64 in = product({planes, h, w}, "upsample");
  return {in, product({in, scale, scale}, "upsample")};
}

// src: the array read (x forward, dy backward); dst: the one written; rows =
// planes * h input rows of w.
using UpsampleKernel = void (*)(const float* src, float* dst, i64 rows, i64 w, i64 scale);

// Validation and aliasing shared by every kernel, fast or reference.
template <UpsampleKernel kernel, bool forward>
void upsample_nearest(const Array& src, Array& dst, i64 planes, i64 h, i64 w, i64 scale) {
  const UpsampleSizes s = upsample_sizes(planes, h, w, scale);
  check_size(forward ? "x" : "dy", src, forward ? s.in : s.out);
  check_size(forward ? "out" : "dx", dst, forward ? s.out : s.in);
  std::vector<float> keep;
  kernel(distinct_input(src, dst, keep), dst.ptr, planes * h, w, scale);
}

// ---------------------------------------------------------------- reference

void forward_reference(const float* x, float* out, i64 rows, i64 w, i64 scale) {
  const i64 ws = w * scale;
  for (i64 r = 0; r < rows; ++r)
    for (i64 a = 0; a < scale; ++a)
      for (i64 j = 0; j < ws; ++j) out[(r * scale + a) * ws + j] = x[r * w + j / scale];
}

void backward_reference(const float* dy, float* dx, i64 rows, i64 w, i64 scale) {
  const i64 ws = w * scale;
  for (i64 r = 0; r < rows; ++r)
    for (i64 j = 0; j < w; ++j) {
      const float* block = dy + r * scale * ws + j * scale;
      float sum = 0.0f;
      for (i64 b = 0; b < scale; ++b) {
        float column = block[b];
        for (i64 a = 1; a < scale; ++a) column += block[a * ws + b];
        sum = b == 0 ? column : sum + column;
      }
      dx[r * w + j] = sum;
    }
}

// ---------------------------------------------------------------- fast

#define NEEDLE_INLINE inline __attribute__((always_inline))

// K floats, loaded and stored at any float alignment.
template <int K>
struct Lanes {
  typedef float f __attribute__((vector_size(4 * K), aligned(4), may_alias));
  typedef int i __attribute__((vector_size(4 * K)));
};
template <int K>
using vf = typename Lanes<K>::f;
template <int K>
using vi = typename Lanes<K>::i;

// The K floats at p (references: vectors passed by value would cross the
// ABI of the default target).
template <int K>
NEEDLE_INLINE const vf<K>& lanes(const float* p) {
  return *reinterpret_cast<const vf<K>*>(p);
}
template <int K>
NEEDLE_INLINE vf<K>& lanes(float* p) {
  return *reinterpret_cast<vf<K>*>(p);
}

// Stores K floats at p, which must be aligned to their size, bypassing the
// caches.  GCC's builtins rather than the _mm*_stream_ps intrinsics: those
// are target-specific functions GCC will not inline into this template,
// which is compiled for every width; a builtin is only checked where it is
// expanded, inside the function of its ISA.
template <int K>
NEEDLE_INLINE void stream(float* p, const vf<K>& v) {
  if constexpr (K == 16)
    __builtin_ia32_movntps512(p, v);
  else if constexpr (K == 8)
    __builtin_ia32_movntps256(p, v);
  else
    __builtin_ia32_movntps(p, v);
}

// K floats to p: streamed when asked and a vector store exists (p aligned).
template <bool streamed, int K>
NEEDLE_INLINE void put(float* p, const vf<K>& v) {
  if constexpr (streamed && K >= 4)
    stream<K>(p, v);
  else
    lanes<K>(p) = v;
}

template <int K>
NEEDLE_INLINE void stream_copy_at(float* dst, const float* src, i64 n) {
  i64 i = 0;
  for (; i < n && reinterpret_cast<std::uintptr_t>(dst + i) % sizeof(vf<K>) != 0; ++i) dst[i] = src[i];
  for (; i + K <= n; i += K) stream<K>(dst + i, lanes<K>(src + i));
  for (; i < n; ++i) dst[i] = src[i];
}

// x[0..K) -> both output rows' [0..2K): x0 x0 x1 x1 ...
template <bool streamed>
struct Duplicate {
  const float* x;
  float *row0, *row1;
  template <int K, int... I>
  NEEDLE_INLINE void step(i64 j, std::integer_sequence<int, I...>) const {
    const vf<K> v = lanes<K>(x + j);
    const vf<K> lo = __builtin_shuffle(v, vi<K>{(I / 2)...});
    const vf<K> hi = __builtin_shuffle(v, vi<K>{(K / 2 + I / 2)...});
    put<streamed, K>(row0 + 2 * j, lo);
    put<streamed, K>(row0 + 2 * j + K, hi);
    put<streamed, K>(row1 + 2 * j, lo);
    put<streamed, K>(row1 + 2 * j + K, hi);
  }
};

// How far ahead backward asks for dy (floats): the hardware prefetcher
// alone left one core at 11 GB/s on this read-mostly stream, against 14 GB/s
// with it.
constexpr i64 kPrefetchAhead = 2048;

// dx[0..K) = (row0[2i] + row1[2i]) + (row0[2i+1] + row1[2i+1])
template <bool streamed>
struct PairSum {
  const float *row0, *row1;
  float* dx;
  template <int K, int... I>
  NEEDLE_INLINE void step(i64 j, std::integer_sequence<int, I...>) const {
    for (i64 line = 0; line < 2 * K; line += 16) {
      __builtin_prefetch(row0 + 2 * j + line + kPrefetchAhead);
      __builtin_prefetch(row1 + 2 * j + line + kPrefetchAhead);
    }
    const vf<K> s0 = lanes<K>(row0 + 2 * j) + lanes<K>(row1 + 2 * j);
    const vf<K> s1 = lanes<K>(row0 + 2 * j + K) + lanes<K>(row1 + 2 * j + K);
    put<streamed, K>(dx + j, __builtin_shuffle(s0, s1, vi<K>{(2 * I)...}) +
                                 __builtin_shuffle(s0, s1, vi<K>{(2 * I + 1)...}));
  }
};

// Runs op.step over [0, n): K at a time, then the remainder (< K) at K/2,
// K/4, ... 1, each at most once.  Every step of width k stays aligned to k
// floats when row starts are aligned to K.
template <int K, class Op>
NEEDLE_INLINE void for_chunks(i64 n, const Op& op, i64 j = 0) {
  for (; j + K <= n; j += K) op.template step<K>(j, std::make_integer_sequence<int, K>());
  if constexpr (K > 1) for_chunks<K / 2>(n, op, j);
}

// x: rows input rows; out: their rows * scale output rows.
template <int K, bool streamed>
NEEDLE_INLINE void forward_rows(const float* x, float* out, i64 rows, i64 w, i64 scale) {
  const i64 ws = w * scale;
  for (i64 r = 0; r < rows; ++r) {
    const float* src = x + r * w;
    float* dst = out + r * scale * ws;
    if (scale == 2) {
      for_chunks<K>(w, Duplicate<streamed>{src, dst, dst + ws});
      continue;
    }
    for (i64 j = 0; j < w; ++j)
      for (i64 b = 0; b < scale; ++b) dst[j * scale + b] = src[j];
    for (i64 a = 1; a < scale; ++a) std::memcpy(dst + a * ws, dst, ws * sizeof(float));
  }
}

// dy: the rows * scale output rows of rows input rows; dx: those rows.
template <int K, bool streamed>
NEEDLE_INLINE void backward_rows(const float* dy, float* dx, i64 rows, i64 w, i64 scale) {
  const i64 ws = w * scale;
  thread_local Scratch scratch;
  float* column = scale == 2 ? nullptr : scratch.get(ws);
  for (i64 r = 0; r < rows; ++r) {
    const float* block = dy + r * scale * ws;
    float* dst = dx + r * w;
    if (scale == 2) {
      for_chunks<K>(w, PairSum<streamed>{block, block + ws, dst});
      continue;
    }
    std::memcpy(column, block, ws * sizeof(float));
    for (i64 a = 1; a < scale; ++a)
      for (i64 i = 0; i < ws; ++i) column[i] += block[a * ws + i];
    for (i64 j = 0; j < w; ++j) {
      float sum = column[j * scale];
      for (i64 b = 1; b < scale; ++b) sum += column[j * scale + b];
      dst[j] = sum;
    }
  }
}

// What every thread does in one call: the direction, whether the output is
// to be streamed, and the row lengths that follow.
struct Pass {
  bool forward, streamed;
  i64 w, scale;
  i64 src_row() const { return forward ? w : w * scale * scale; }
  i64 dst_row() const { return forward ? w * scale * scale : w; }
  i64 dst_line() const { return forward ? w * scale : w; }  // one written row
};

template <int K, bool streamed>
NEEDLE_INLINE void rows_with(const Pass& p, const float* src, float* dst, i64 rows) {
  if (p.forward)
    forward_rows<K, streamed>(src, dst, rows, p.w, p.scale);
  else
    backward_rows<K, streamed>(src, dst, rows, p.w, p.scale);
}

// Streaming stores skip write-allocate, which would read every output line
// from memory before overwriting it once the arrays no longer fit in cache.
// They need each vector aligned to its size, so every written row must start
// aligned (the network's widths do); other widths keep plain stores.  The
// scale-2 vector steps are where the stores stream; other scales never do.
template <int K>
NEEDLE_INLINE void rows_at(const Pass& p, const float* src, float* dst, i64 rows) {
  const bool aligned = reinterpret_cast<std::uintptr_t>(dst) % sizeof(vf<K>) == 0 && p.dst_line() % K == 0;
  if (p.streamed && aligned)
    rows_with<K, true>(p, src, dst, rows);
  else
    rows_with<K, false>(p, src, dst, rows);
}

// Per ISA: the row passes, and a streaming copy (concat.cc uses it too).
using RowsKernel = void (*)(const Pass& p, const float* src, float* dst, i64 rows);

__attribute__((target("avx512f"))) void rows_avx512(const Pass& p, const float* src, float* dst, i64 rows) {
  rows_at<16>(p, src, dst, rows);
}
__attribute__((target("avx2"))) void rows_avx2(const Pass& p, const float* src, float* dst, i64 rows) {
  rows_at<8>(p, src, dst, rows);
}
void rows_generic(const Pass& p, const float* src, float* dst, i64 rows) { rows_at<4>(p, src, dst, rows); }
__attribute__((target("avx512f"))) void copy_avx512(float* dst, const float* src, i64 n) {
  stream_copy_at<16>(dst, src, n);
}
__attribute__((target("avx2"))) void copy_avx2(float* dst, const float* src, i64 n) {
  stream_copy_at<8>(dst, src, n);
}
void copy_generic(float* dst, const float* src, i64 n) { stream_copy_at<4>(dst, src, n); }

template <class Kernel>
Kernel for_isa(Kernel avx512, Kernel avx2, Kernel generic) {
  const Isa isa = active_isa();
  return isa == Isa::avx512 ? avx512 : isa == Isa::avx2 ? avx2 : generic;
}

// One contiguous range of rows per thread, so the ISA is chosen once.
template <bool forward>
void upsample_fast(const float* src, float* dst, i64 rows, i64 w, i64 scale) {
  const RowsKernel kernel = for_isa(rows_avx512, rows_avx2, rows_generic);
  const i64 out = rows * w * scale * scale;
  if (out == 0) return;
  const Pass p{forward, streaming_pays(out + rows * w), w, scale};
  const int teams = out >= kParallelGrain ? std::max(1, omp_get_max_threads()) : 1;
  const i64 each = rows / teams, extra = rows % teams;
#pragma omp parallel for schedule(static) num_threads(teams)
  for (int t = 0; t < teams; ++t) {
    const i64 r0 = t * each + std::min<i64>(t, extra), r1 = (t + 1) * each + std::min<i64>(t + 1, extra);
    kernel(p, src + r0 * p.src_row(), dst + r0 * p.dst_row(), r1 - r0);
    // Streamed stores are weakly ordered: drain them before the join.
    if (p.streamed) _mm_sfence();
  }
}

template <UpsampleKernel fwd, UpsampleKernel bwd>
void define(py::module_& m) {
  using release = py::call_guard<py::gil_scoped_release>;
  m.def("upsample_nearest_forward", &upsample_nearest<fwd, true>, py::arg("x"), py::arg("out"),
        py::arg("planes"), py::arg("h"), py::arg("w"), py::arg("scale"), release());
  m.def("upsample_nearest_backward", &upsample_nearest<bwd, false>, py::arg("dy"), py::arg("dx"),
        py::arg("planes"), py::arg("h"), py::arg("w"), py::arg("scale"), release());
}

}  // namespace

bool streaming_pays(i64 floats_moved) { return floats_moved > g_stream_threshold; }

void stream_copy(float* dst, const float* src, i64 n) {
  for_isa(copy_avx512, copy_avx2, copy_generic)(dst, src, n);
}

void register_upsample(py::module_& m, py::module_& reference) {
  define<upsample_fast<true>, upsample_fast<false>>(m);
  // Test hook, like _set_isa: streaming above `floats` moved per call (-1:
  // this machine's default), so the tests reach both store paths anywhere.
  m.def("_set_stream_threshold", [](i64 floats) {
    g_stream_threshold = floats < 0 ? default_stream_threshold() : floats;
  });
  define<forward_reference, backward_reference>(reference);
}

}  // namespace needle
