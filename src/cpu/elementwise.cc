// Element-wise family: binary (array, array), scalar (array, float) and
// unary functions on compact arrays.  Each op is a small functor; one
// templated loop per arity, cloned per ISA (simd.h), runs it over a chunk,
// and OpenMP splits large arrays into one chunk per thread.
#include <omp.h>

#include <cmath>
#include <string>

#include <pybind11/pybind11.h>

#include "array.h"
#include "simd.h"

namespace py = pybind11;

namespace needle {

namespace op {
struct Add { float operator()(float a, float b) const { return a + b; } };
struct Mul { float operator()(float a, float b) const { return a * b; } };
struct Div { float operator()(float a, float b) const { return a / b; } };
struct RDiv { float operator()(float a, float b) const { return b / a; } };
struct Pow { float operator()(float a, float b) const { return std::pow(a, b); } };
// NaN in either operand gives NaN, as numpy.maximum does.
struct Maximum { float operator()(float a, float b) const { return (a > b || a != a) ? a : b; } };
struct Eq { float operator()(float a, float b) const { return a == b ? 1.0f : 0.0f; } };
struct Ge { float operator()(float a, float b) const { return a >= b ? 1.0f : 0.0f; } };
struct Gt { float operator()(float a, float b) const { return a > b ? 1.0f : 0.0f; } };

struct Log { float operator()(float a) const { return std::log(a); } };
struct Exp { float operator()(float a) const { return std::exp(a); } };
struct Tanh { float operator()(float a) const { return std::tanh(a); } };
struct Sqrt { float operator()(float a) const { return std::sqrt(a); } };
struct Abs { float operator()(float a) const { return std::fabs(a); } };
// numpy.sign: -1, 0 or 1, NaN stays NaN.
struct Sign {
  float operator()(float a) const { return a > 0.0f ? 1.0f : (a < 0.0f ? -1.0f : a); }
};
}  // namespace op

// Splits [0, n) into one contiguous chunk per thread when n is large.
template <class Body>
static void parallel_chunks(i64 n, Body body) {
  if (n < kParallelGrain) {
    body(0, n);
    return;
  }
#pragma omp parallel
  {
    const i64 nt = omp_get_num_threads(), t = omp_get_thread_num();
    body(n * t / nt, n * (t + 1) / nt);
  }
}

template <class Op>
NEEDLE_CLONES void binary_loop(const float* a, const float* b, float* out, i64 n) {
  Op f;
  for (i64 i = 0; i < n; ++i) out[i] = f(a[i], b[i]);
}

template <class Op>
NEEDLE_CLONES void scalar_loop(const float* a, float val, float* out, i64 n) {
  Op f;
  for (i64 i = 0; i < n; ++i) out[i] = f(a[i], val);
}

template <class Op>
NEEDLE_CLONES void unary_loop(const float* a, float* out, i64 n) {
  Op f;
  for (i64 i = 0; i < n; ++i) out[i] = f(a[i]);
}

template <class Op>
static void ewise(const Array& a, const Array& b, Array& out) {
  if (a.size != b.size)
    fail("element-wise operands differ in size: " + std::to_string(a.size) + " vs " +
         std::to_string(b.size));
  check_size("out", out, a.size);
  parallel_chunks(a.size, [&](i64 lo, i64 hi) {
    binary_loop<Op>(a.ptr + lo, b.ptr + lo, out.ptr + lo, hi - lo);
  });
}

template <class Op>
static void scalar(const Array& a, float val, Array& out) {
  check_size("out", out, a.size);
  parallel_chunks(a.size, [&](i64 lo, i64 hi) { scalar_loop<Op>(a.ptr + lo, val, out.ptr + lo, hi - lo); });
}

template <class Op>
static void unary(const Array& a, Array& out) {
  check_size("out", out, a.size);
  parallel_chunks(a.size, [&](i64 lo, i64 hi) { unary_loop<Op>(a.ptr + lo, out.ptr + lo, hi - lo); });
}

void register_elementwise(py::module_& m) {
  using release = py::call_guard<py::gil_scoped_release>;
  m.def("ewise_add", &ewise<op::Add>, release());
  m.def("ewise_mul", &ewise<op::Mul>, release());
  m.def("ewise_div", &ewise<op::Div>, release());
  m.def("ewise_pow", &ewise<op::Pow>, release());
  m.def("ewise_maximum", &ewise<op::Maximum>, release());
  m.def("ewise_eq", &ewise<op::Eq>, release());
  m.def("ewise_ge", &ewise<op::Ge>, release());
  m.def("ewise_gt", &ewise<op::Gt>, release());

  m.def("scalar_add", &scalar<op::Add>, release());
  m.def("scalar_mul", &scalar<op::Mul>, release());
  m.def("scalar_div", &scalar<op::Div>, release());
  m.def("scalar_rdiv", &scalar<op::RDiv>, release());
  m.def("scalar_power", &scalar<op::Pow>, release());
  m.def("scalar_maximum", &scalar<op::Maximum>, release());
  m.def("scalar_eq", &scalar<op::Eq>, release());
  m.def("scalar_ge", &scalar<op::Ge>, release());
  m.def("scalar_gt", &scalar<op::Gt>, release());

  m.def("ewise_log", &unary<op::Log>, release());
  m.def("ewise_exp", &unary<op::Exp>, release());
  m.def("ewise_tanh", &unary<op::Tanh>, release());
  m.def("ewise_sqrt", &unary<op::Sqrt>, release());
  m.def("ewise_abs", &unary<op::Abs>, release());
  m.def("ewise_sign", &unary<op::Sign>, release());
}

}  // namespace needle
