// Reduction family: sum and max over the last reduce_size elements of each
// output position (NDArray permutes the reduced axes last and compacts).
// Rows are split between threads when there are many; a single long row is
// reduced in parallel instead.  Sums accumulate in double, so the result is
// the correctly rounded float32 of the exact sum for any realistic length.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include <pybind11/pybind11.h>

#include "array.h"
#include "simd.h"

namespace py = pybind11;

namespace needle {

struct SumOp {
  using Acc = double;
  static Acc identity() { return 0.0; }
  static Acc combine(Acc a, Acc b) { return a + b; }
  NEEDLE_CLONES static Acc run(const float* p, i64 n) {
    double s = 0.0;
#pragma omp simd reduction(+ : s)
    for (i64 i = 0; i < n; ++i) s += p[i];
    return s;
  }
  static float result(Acc a) { return static_cast<float>(a); }
};

// NaN anywhere gives NaN, as numpy.max does; the SIMD max itself ignores it.
struct MaxOp {
  using Acc = float;
  static Acc identity() { return -std::numeric_limits<float>::infinity(); }
  static Acc combine(Acc a, Acc b) { return a != a ? a : (b != b ? b : std::max(a, b)); }
  NEEDLE_CLONES static Acc run(const float* p, i64 n) {
    float m = -std::numeric_limits<float>::infinity();
    int nan = 0;
#pragma omp simd reduction(max : m) reduction(| : nan)
    for (i64 i = 0; i < n; ++i) {
      m = std::max(m, p[i]);
      nan |= p[i] != p[i];
    }
    return nan ? std::numeric_limits<float>::quiet_NaN() : m;
  }
  static float result(Acc a) { return a; }
};

template <class Op>
static void reduce(const Array& a, Array& out, i64 reduce_size) {
  if (reduce_size <= 0) fail("reduce_size must be positive, got " + std::to_string(reduce_size));
  const i64 rows = out.size;
  check_size("a", a, mul(rows, reduce_size, "reduce"));
  const int threads = omp_get_max_threads();
  const bool big = rows * reduce_size >= kParallelGrain && threads > 1;
  if (!big || rows >= threads) {
#pragma omp parallel for schedule(static) if (big)
    for (i64 r = 0; r < rows; ++r) out.ptr[r] = Op::result(Op::run(a.ptr + r * reduce_size, reduce_size));
    return;
  }
  // Fewer rows than threads: split each row between the threads.
  for (i64 r = 0; r < rows; ++r) {
    const float* row = a.ptr + r * reduce_size;
    std::vector<typename Op::Acc> part(threads, Op::identity());
#pragma omp parallel num_threads(threads)
    {
      const i64 nt = omp_get_num_threads(), t = omp_get_thread_num();
      const i64 lo = reduce_size * t / nt, hi = reduce_size * (t + 1) / nt;
      part[t] = Op::run(row + lo, hi - lo);
    }
    typename Op::Acc acc = Op::identity();
    for (auto v : part) acc = Op::combine(acc, v);
    out.ptr[r] = Op::result(acc);
  }
}

void register_reduce(py::module_& m) {
  using release = py::call_guard<py::gil_scoped_release>;
  m.def("reduce_sum", &reduce<SumOp>, py::arg("a"), py::arg("out"), py::arg("reduce_size"), release());
  m.def("reduce_max", &reduce<MaxOp>, py::arg("a"), py::arg("out"), py::arg("reduce_size"), release());
}

}  // namespace needle
