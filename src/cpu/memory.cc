// Memory family: numpy in/out, fill, and the strided gather/scatter behind
// NDArray views (compact, ewise_setitem, scalar_setitem).
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <numeric>

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "array.h"
#include "simd.h"

namespace py = pybind11;

namespace needle {

static std::string describe(const std::vector<i64>& v) {
  std::string s = "(";
  for (std::size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + (v.size() == 1 ? ",)" : ")");
}

// Conservative: false only when the view provably reaches each element once
// (dimensions sorted by |stride|, each stride clears the span of the smaller ones).
static bool may_overlap(const std::vector<i64>& shape, const std::vector<i64>& strides) {
  std::vector<std::size_t> order(shape.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(),
            [&](std::size_t a, std::size_t b) { return std::abs(strides[a]) < std::abs(strides[b]); });
  i64 span = 1;
  for (std::size_t d : order) {
    i64 st = std::abs(strides[d]);
    if (st < span) return true;
    span += st * (shape[d] - 1);  // bounded by the buffer size (checked before)
  }
  return false;
}

View make_view(const std::vector<i64>& shape, const std::vector<i64>& strides, i64 offset,
               i64 buffer_size) {
  if (shape.size() != strides.size())
    fail("shape " + describe(shape) + " and strides " + describe(strides) + " differ in length");
  View v;
  v.offset = offset;
  v.size = 1;
  bool empty = false;
  for (i64 n : shape) {
    if (n < 0) fail("negative dimension in shape " + describe(shape));
    empty = empty || n == 0;
  }
  if (empty) {
    v.size = 0;
    v.shape = {0};
    v.strides = {1};
    return v;
  }
  for (i64 n : shape) v.size = mul(v.size, n, "view size");

  i64 lo = offset, hi = offset;
  bool overflow = false;
  for (std::size_t d = 0; d < shape.size(); ++d) {
    i64 reach;
    overflow |= __builtin_mul_overflow(strides[d], shape[d] - 1, &reach);
    overflow |= __builtin_add_overflow(reach < 0 ? lo : hi, reach, reach < 0 ? &lo : &hi);
  }
  if (overflow || lo < 0 || hi >= buffer_size)
    fail_index("view shape=" + describe(shape) + " strides=" + describe(strides) +
               " offset=" + std::to_string(offset) + " reaches " +
               (overflow ? std::string("beyond int64") :
                           "[" + std::to_string(lo) + ", " + std::to_string(hi) + "]") +
               " outside a buffer of " + std::to_string(buffer_size) + " elements");

  // Drop size-1 dimensions and merge neighbours that step like one dimension.
  for (std::size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    i64 merged;
    if (!v.shape.empty() && !__builtin_mul_overflow(shape[d], strides[d], &merged) &&
        v.strides.back() == merged) {
      v.shape.back() *= shape[d];
      v.strides.back() = strides[d];
    } else {
      v.shape.push_back(shape[d]);
      v.strides.push_back(strides[d]);
    }
  }
  if (v.shape.empty()) {
    v.shape = {1};
    v.strides = {1};
  }
  v.overlapping = may_overlap(v.shape, v.strides);
  return v;
}

// Calls fn(linear, index, len, stride) for every innermost row of the view:
// `linear` is the row-major position of the row's first element, `index` its
// place in the buffer.  Rows are split between threads when `parallel`.
template <class Fn>
static void for_each_row(const View& v, bool parallel, Fn fn) {
  if (v.size == 0) return;
  const int nd = static_cast<int>(v.shape.size());
  const i64 len = v.shape[nd - 1], st = v.strides[nd - 1], rows = v.size / len;
  auto run = [&](i64 r0, i64 r1) {
    std::vector<i64> idx(nd, 0);
    i64 src = v.offset, rem = r0;
    for (int d = nd - 2; d >= 0; --d) {
      idx[d] = rem % v.shape[d];
      rem /= v.shape[d];
      src += idx[d] * v.strides[d];
    }
    for (i64 r = r0; r < r1; ++r) {
      fn(r * len, src, len, st);
      for (int d = nd - 2; d >= 0; --d) {
        src += v.strides[d];
        if (++idx[d] < v.shape[d]) break;
        src -= v.strides[d] * v.shape[d];
        idx[d] = 0;
      }
    }
  };
  if (parallel && v.size >= kParallelGrain && rows > 1) {
#pragma omp parallel
    {
      const i64 nt = omp_get_num_threads(), t = omp_get_thread_num();
      run(rows * t / nt, rows * (t + 1) / nt);
    }
  } else {
    run(0, rows);
  }
}

NEEDLE_CLONES static void gather_row(float* dst, const float* src, i64 len, i64 st) {
  if (st == 1) {
    std::memcpy(dst, src, len * sizeof(float));
  } else {
    for (i64 t = 0; t < len; ++t) dst[t] = src[t * st];
  }
}

NEEDLE_CLONES static void scatter_row(float* dst, const float* src, i64 len, i64 st) {
  if (st == 1) {
    std::memcpy(dst, src, len * sizeof(float));
  } else {
    for (i64 t = 0; t < len; ++t) dst[t * st] = src[t];
  }
}

NEEDLE_CLONES static void fill_row(float* dst, float val, i64 len, i64 st) {
  for (i64 t = 0; t < len; ++t) dst[t * st] = val;
}

static void gather(const float* a, const View& v, float* out) {
  for_each_row(v, true, [&](i64 lin, i64 src, i64 len, i64 st) { gather_row(out + lin, a + src, len, st); });
}

static void compact(const Array& a, Array& out, const std::vector<i64>& shape,
                    const std::vector<i64>& strides, i64 offset) {
  View v = make_view(shape, strides, offset, a.size);
  check_size("out", out, v.size);
  std::vector<float> keep;
  gather(distinct_input(a, out, keep), v, out.ptr);
}

static void ewise_setitem(const Array& a, Array& out, const std::vector<i64>& shape,
                          const std::vector<i64>& strides, i64 offset) {
  View v = make_view(shape, strides, offset, out.size);
  check_size("a", a, v.size);
  std::vector<float> keep;
  const float* src = distinct_input(a, out, keep);
  // Overlapping views write some elements twice: keep the sequential order.
  for_each_row(v, !v.overlapping, [&](i64 lin, i64 dst, i64 len, i64 st) {
    scatter_row(out.ptr + dst, src + lin, len, st);
  });
}

static void scalar_setitem(i64 size, float val, Array& out, const std::vector<i64>& shape,
                           const std::vector<i64>& strides, i64 offset) {
  View v = make_view(shape, strides, offset, out.size);
  if (size != v.size)
    fail("scalar_setitem size " + std::to_string(size) + " differs from the view's " +
         std::to_string(v.size) + " elements");
  for_each_row(v, !v.overlapping, [&](i64, i64 dst, i64 len, i64 st) { fill_row(out.ptr + dst, val, len, st); });
}

NEEDLE_CLONES static void fill(Array& out, float val) {
  float* p = out.ptr;
  const i64 n = out.size;
#pragma omp parallel for schedule(static) if (n >= 4 * kParallelGrain)
  for (i64 i = 0; i < n; ++i) p[i] = val;
}

using FloatArray = py::array_t<float, py::array::c_style | py::array::forcecast>;

static void from_numpy(const FloatArray& a, Array& out) {
  const i64 n = static_cast<i64>(a.size());
  check_size("out", out, n);
  if (n > 0) std::memcpy(out.ptr, a.data(), n * sizeof(float));
}

static py::array_t<float> to_numpy(const Array& a, const std::vector<i64>& shape,
                                   const std::vector<i64>& strides, i64 offset) {
  View v = make_view(shape, strides, offset, a.size);
  py::array_t<float> result(std::vector<py::ssize_t>(shape.begin(), shape.end()));
  float* dst = result.mutable_data();
  {
    py::gil_scoped_release release;
    gather(a.ptr, v, dst);
  }
  return result;
}

void register_memory(py::module_& m) {
  using release = py::call_guard<py::gil_scoped_release>;
  m.def("from_numpy", &from_numpy, py::arg("a"), py::arg("out"));
  m.def("to_numpy", &to_numpy, py::arg("a"), py::arg("shape"), py::arg("strides"), py::arg("offset"));
  m.def("fill", &fill, py::arg("out"), py::arg("val"), release());
  m.def("compact", &compact, py::arg("a"), py::arg("out"), py::arg("shape"), py::arg("strides"),
        py::arg("offset"), release());
  m.def("ewise_setitem", &ewise_setitem, py::arg("a"), py::arg("out"), py::arg("shape"),
        py::arg("strides"), py::arg("offset"), release());
  m.def("scalar_setitem", &scalar_setitem, py::arg("size"), py::arg("val"), py::arg("out"),
        py::arg("shape"), py::arg("strides"), py::arg("offset"), release());
}

}  // namespace needle
