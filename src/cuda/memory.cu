// Host <-> device copies, fill, and the strided-view kernels (compact,
// ewise_setitem, scalar_setitem).
//
// A view (shape, strides, offset) is validated on the host: its lowest and
// highest reachable element must lie inside the buffer (IndexError), as in
// the numpy reference.  It is then simplified (size-1 axes dropped, axes
// that step like one merged) so that the kernels decompose each linear index
// over as few axes as possible.
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include "common.cuh"

namespace needle_cuda {
namespace {

constexpr int kMaxDims = 12;

struct View {
  int ndim = 0;
  int64_t shape[kMaxDims] = {};
  int64_t strides[kMaxDims] = {};
  int64_t offset = 0;
  int64_t size = 1;  // number of elements
};

std::string describe(const std::vector<int64_t>& shape, const std::vector<int64_t>& strides,
                     int64_t offset) {
  auto list = [](const std::vector<int64_t>& v) {
    std::string s = "(";
    for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
    return s + ")";
  };
  return "view shape=" + list(shape) + " strides=" + list(strides) + " offset=" + std::to_string(offset);
}

// Validates the view against a buffer of buf_size elements and simplifies it.
View make_view(const std::vector<int64_t>& shape, const std::vector<int64_t>& strides,
               int64_t offset, int64_t buf_size) {
  if (shape.size() != strides.size())
    throw py::value_error("shape and strides differ in length: " + describe(shape, strides, offset));
  View v;
  v.offset = offset;
  for (int64_t n : shape) {
    if (n < 0) throw py::value_error("negative dimension in " + describe(shape, strides, offset));
    v.size = checked_mul(v.size, n, "view size");
  }
  if (v.size == 0) return v;  // nothing is read or written, as in the reference
  int64_t lo = offset, hi = offset;
  for (size_t d = 0; d < shape.size(); ++d) {
    int64_t reach = 0;
    bool overflow = __builtin_mul_overflow(strides[d], shape[d] - 1, &reach);
    int64_t& end = reach < 0 ? lo : hi;  // negative strides extend the low end
    overflow = overflow || __builtin_add_overflow(end, reach, &end);
    if (overflow) throw py::index_error("overflowing " + describe(shape, strides, offset));
  }
  if (lo < 0 || hi >= buf_size)
    throw py::index_error(describe(shape, strides, offset) + " reaches [" + std::to_string(lo) +
                          ", " + std::to_string(hi) + "] outside a buffer of " +
                          std::to_string(buf_size) + " elements");
  // Drop size-1 axes; merge an axis into the one before it when stepping the
  // outer axis once equals stepping the inner one through its whole length.
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    if (v.ndim > 0 && v.strides[v.ndim - 1] == strides[d] * shape[d]) {
      v.shape[v.ndim - 1] *= shape[d];
      v.strides[v.ndim - 1] = strides[d];
    } else {
      if (v.ndim == kMaxDims)
        throw py::value_error("views of more than " + std::to_string(kMaxDims) +
                              " non-mergeable axes are not supported: " +
                              describe(shape, strides, offset));
      v.shape[v.ndim] = shape[d];
      v.strides[v.ndim] = strides[d];
      ++v.ndim;
    }
  }
  return v;
}

bool is_contiguous(const View& v) { return v.ndim == 0 || (v.ndim == 1 && v.strides[0] == 1); }

// Buffer index of the i-th element (row-major) of the view.  Index is
// uint32_t when the view has fewer than 2^31 elements (cheap division),
// int64_t otherwise; the address itself is always computed in int64.
template <typename Index>
__host__ __device__ __forceinline__ int64_t element_at(const View& v, Index i) {
  int64_t at = v.offset;
#pragma unroll
  for (int d = kMaxDims - 1; d >= 0; --d) {
    if (d < v.ndim) {
      Index n = static_cast<Index>(v.shape[d]);
      at += static_cast<int64_t>(i % n) * v.strides[d];
      i /= n;
    }
  }
  return at;
}

// out[i] = element i of the view of a.
template <typename Index>
struct CompactFn {
  const float* a;
  float* out;
  View v;
  __host__ __device__ void operator()(int64_t i) const { out[i] = a[element_at(v, static_cast<Index>(i))]; }
};

// Element i of the view of out = a[i].
template <typename Index>
struct SetitemFn {
  const float* a;
  float* out;
  View v;
  __host__ __device__ void operator()(int64_t i) const { out[element_at(v, static_cast<Index>(i))] = a[i]; }
};

// Element i of the view of out = val.
template <typename Index>
struct ScalarSetitemFn {
  float val;
  float* out;
  View v;
  __host__ __device__ void operator()(int64_t i) const { out[element_at(v, static_cast<Index>(i))] = val; }
};

// Runs Fn<uint32_t> or Fn<int64_t> (see element_at) over the view's elements.
template <template <typename> class Fn, class... Args>
void launch_view(const View& v, const char* name, Args... args) {
  if (v.size <= INT32_MAX)
    launch_for_each(v.size, Fn<uint32_t>{args..., v}, name);
  else
    launch_for_each(v.size, Fn<int64_t>{args..., v}, name);
}

// out[4t .. 4t+3] = val, as one float4 (buffers start cudaMalloc-aligned)
// unless the group runs past n.
struct FillFn {
  float* out;
  int64_t n;
  float val;
  __host__ __device__ void operator()(int64_t t) const {
    if (4 * t + 4 <= n) {
      reinterpret_cast<float4*>(out)[t] = make_float4(val, val, val, val);
    } else {
      for (int64_t i = 4 * t; i < n; ++i) out[i] = val;
    }
  }
};

// out[:size] = compact copy of the view of a.
void compact_into(const CudaArray& a, float* out, const View& v) {
  if (v.size == 0) return;
  if (is_contiguous(v)) {
    CUDA_CHECK(cudaMemcpyAsync(out, a.ptr + v.offset, v.size * sizeof(float), cudaMemcpyDeviceToDevice, 0));
    return;
  }
  launch_view<CompactFn>(v, "compact", static_cast<const float*>(a.ptr), out);
}

// ---------------------------------------------------------------- contract functions

void from_numpy(py::array_t<float, py::array::c_style | py::array::forcecast> a, CudaArray& out) {
  const int64_t n = a.size();
  check_size("out", out, n);
  if (n > 0) CUDA_CHECK(cudaMemcpy(out.ptr, a.data(), n * sizeof(float), cudaMemcpyHostToDevice));
}

py::array_t<float> to_numpy(const CudaArray& a, std::vector<int64_t> shape, std::vector<int64_t> strides,
                            int64_t offset) {
  View v = make_view(shape, strides, offset, a.size);
  py::array_t<float> result(std::vector<py::ssize_t>(shape.begin(), shape.end()));
  if (v.size == 0) return result;
  if (is_contiguous(v)) {
    CUDA_CHECK(cudaMemcpy(result.mutable_data(), a.ptr + v.offset, v.size * sizeof(float),
                          cudaMemcpyDeviceToHost));
  } else {
    CudaArray tmp(v.size);
    compact_into(a, tmp.ptr, v);
    CUDA_CHECK(cudaMemcpy(result.mutable_data(), tmp.ptr, v.size * sizeof(float), cudaMemcpyDeviceToHost));
  }
  return result;
}

void fill(CudaArray& out, double val) {
  launch_for_each((out.size + 3) / 4, FillFn{out.ptr, out.size, static_cast<float>(val)}, "fill");
}

void compact(const CudaArray& a, CudaArray& out, std::vector<int64_t> shape, std::vector<int64_t> strides,
             int64_t offset) {
  View v = make_view(shape, strides, offset, a.size);
  check_size("out", out, v.size);
  compact_into(a, out.ptr, v);
}

void ewise_setitem(const CudaArray& a, CudaArray& out, std::vector<int64_t> shape,
                   std::vector<int64_t> strides, int64_t offset) {
  View v = make_view(shape, strides, offset, out.size);
  check_size("a", a, v.size);
  if (v.size == 0) return;
  if (is_contiguous(v)) {
    CUDA_CHECK(cudaMemcpyAsync(out.ptr + v.offset, a.ptr, v.size * sizeof(float), cudaMemcpyDeviceToDevice, 0));
    return;
  }
  launch_view<SetitemFn>(v, "ewise_setitem", static_cast<const float*>(a.ptr), out.ptr);
}

void scalar_setitem(int64_t size, double val, CudaArray& out, std::vector<int64_t> shape,
                    std::vector<int64_t> strides, int64_t offset) {
  View v = make_view(shape, strides, offset, out.size);
  if (size != v.size)
    throw py::value_error("scalar_setitem: size " + std::to_string(size) + " differs from the view's " +
                          std::to_string(v.size) + " elements");
  if (v.size == 0) return;
  launch_view<ScalarSetitemFn>(v, "scalar_setitem", static_cast<float>(val), out.ptr);
}

}  // namespace

void register_memory(py::module_& m) {
  m.def("from_numpy", &from_numpy, py::arg("a"), py::arg("out"));
  m.def("to_numpy", &to_numpy, py::arg("a"), py::arg("shape"), py::arg("strides"), py::arg("offset"));
  m.def("fill", &fill, py::arg("out"), py::arg("val"));
  m.def("compact", &compact, py::arg("a"), py::arg("out"), py::arg("shape"), py::arg("strides"),
        py::arg("offset"));
  m.def("ewise_setitem", &ewise_setitem, py::arg("a"), py::arg("out"), py::arg("shape"), py::arg("strides"),
        py::arg("offset"));
  m.def("scalar_setitem", &scalar_setitem, py::arg("size"), py::arg("val"), py::arg("out"), py::arg("shape"),
        py::arg("strides"), py::arg("offset"));
}

}  // namespace needle_cuda
