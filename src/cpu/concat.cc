// Concat family: inputs k of shape (outer, widths[k]) side by side into
// (outer, sum(widths)), and the inverse split for the backward.  Concat along
// any axis reduces to this form (outer = product of the leading dimensions,
// widths = the inputs' sizes along the axis times the trailing dimensions).
//
// Fast path: the joined array is cut into one equal contiguous range per
// thread, whatever the shape (one huge row or many thin ones), and each
// thread copies the runs of its range where they meet the pieces: memcpy,
// or when the call moves more than the cache keeps (streaming_pays), a copy
// with streaming stores, which skips reading the destination lines first.
//
// Reference path (module.reference): one serial loop over every element of
// the joined array, for the tests.
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "array.h"
#include "simd.h"

namespace py = pybind11;

namespace needle {

namespace {

// Checks the arrays against (outer, widths) and returns sum(widths).
i64 check_concat(const std::vector<Array*>& arrays, i64 outer, const std::vector<i64>& widths,
                 const char* role) {
  if (arrays.size() != widths.size())
    fail(std::to_string(arrays.size()) + " " + role + " arrays but " + std::to_string(widths.size()) +
         " widths");
  require_at_least("outer", outer, 0);
  i64 total = 0;
  for (std::size_t k = 0; k < arrays.size(); ++k) {
    const std::string name = std::string(role) + "[" + std::to_string(k) + "]";
    if (arrays[k] == nullptr) fail(name + " is None");
    require_at_least("concat width", widths[k], 0);
    check_size(name.c_str(), *arrays[k], mul(outer, widths[k], "concat"));
    total = add(total, widths[k], "concat");
  }
  mul(outer, total, "concat");
  return total;
}

// The checked arguments of one call: pieces[k] is (outer, widths[k]), joined
// is (outer, total).  split: joined -> pieces (backward), else pieces -> joined.
struct Join {
  std::vector<float*> pieces;
  float* joined;
  i64 outer, total;
  const std::vector<i64>& widths;
  bool split;
};

using ConcatKernel = void (*)(const Join& j);

// Validation shared by every kernel, fast or reference.  The kernels never
// copy a buffer onto itself: a piece that is the joined array is refused.
template <ConcatKernel kernel, bool split>
void concat(const std::vector<Array*>& pieces, const Array& joined, i64 outer,
            const std::vector<i64>& widths) {
  const i64 total = check_concat(pieces, outer, widths, split ? "outs" : "inputs");
  check_size(split ? "dy" : "out", joined, outer * total);
  std::vector<float*> ptrs;
  for (const Array* p : pieces) {
    if (p == &joined)
      fail(split ? "concat_backward: dy must not be one of the outputs"
                 : "concat_forward: out must not be one of the inputs");
    ptrs.push_back(p->ptr);
  }
  kernel(Join{std::move(ptrs), joined.ptr, outer, total, widths, split});
}

// ---------------------------------------------------------------- reference

void concat_reference(const Join& j) {
  for (i64 r = 0; r < j.outer; ++r) {
    i64 at = r * j.total;
    for (std::size_t k = 0; k < j.pieces.size(); ++k)
      for (i64 i = 0; i < j.widths[k]; ++i, ++at) {
        float& piece = j.pieces[k][r * j.widths[k] + i];
        if (j.split)
          piece = j.joined[at];
        else
          j.joined[at] = piece;
      }
  }
}

// ---------------------------------------------------------------- fast

// The piece holding column col of a joined row: the last one starting at or
// before it (pieces of width zero start where the next one does).
std::size_t piece_at(const std::vector<i64>& start, i64 col) {
  return std::upper_bound(start.begin(), start.end(), col) - start.begin() - 1;
}

using Copy = void (*)(float* dst, const float* src, i64 n);

// Copies joined elements [lo, hi) to or from the pieces, one call of copy per
// run of a piece's row that the range covers.
void copy_range(const Join& j, const std::vector<i64>& start, i64 lo, i64 hi, Copy copy) {
  i64 r = lo / j.total, col = lo % j.total;
  std::size_t k = piece_at(start, col);
  while (lo < hi) {
    const i64 w = j.widths[k], n = std::min(hi - lo, start[k] + w - col);
    float* piece = j.pieces[k] + r * w + (col - start[k]);
    if (j.split)
      copy(piece, j.joined + lo, n);
    else
      copy(j.joined + lo, piece, n);
    lo += n;
    col += n;
    if (col == j.total) {
      ++r;
      col = 0;
    }
    k = piece_at(start, col);
  }
}

void concat_fast(const Join& j) {
  const i64 size = j.outer * j.total;
  if (size == 0) return;
  std::vector<i64> start(j.pieces.size());
  for (std::size_t k = 1; k < start.size(); ++k) start[k] = start[k - 1] + j.widths[k - 1];
  const bool streamed = streaming_pays(2 * size);
  const Copy copy = streamed ? stream_copy : [](float* dst, const float* src, i64 n) {
    std::memcpy(dst, src, n * sizeof(float));
  };
  // Equal ranges of the joined array rather than whole rows: balanced for
  // any shape, including a single row (concat along the first axis).
  const int teams = size >= kParallelGrain ? std::max(1, omp_get_max_threads()) : 1;
  const i64 each = size / teams, extra = size % teams;
#pragma omp parallel for schedule(static) num_threads(teams)
  for (int t = 0; t < teams; ++t) {
    const i64 lo = t * each + std::min<i64>(t, extra), hi = (t + 1) * each + std::min<i64>(t + 1, extra);
    copy_range(j, start, lo, hi, copy);
    // Streamed stores are weakly ordered: drain them before the join.
    if (streamed) _mm_sfence();
  }
}

template <ConcatKernel kernel>
void define(py::module_& m) {
  using release = py::call_guard<py::gil_scoped_release>;
  m.def(
      "concat_forward",
      [](const std::vector<Array*>& inputs, Array& out, i64 outer, const std::vector<i64>& widths) {
        concat<kernel, false>(inputs, out, outer, widths);
      },
      py::arg("inputs"), py::arg("out"), py::arg("outer"), py::arg("widths"), release());
  m.def(
      "concat_backward",
      [](const Array& dy, const std::vector<Array*>& outs, i64 outer, const std::vector<i64>& widths) {
        concat<kernel, true>(outs, dy, outer, widths);
      },
      py::arg("dy"), py::arg("outs"), py::arg("outer"), py::arg("widths"), release());
}

}  // namespace

void register_concat(py::module_& m, py::module_& reference) {
  define<concat_fast>(m);
  define<concat_reference>(reference);
}

}  // namespace needle
