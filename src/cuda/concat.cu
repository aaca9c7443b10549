// concat_forward / concat_backward: input k is an (outer, widths[k]) block
// of the (outer, sum(widths)) output, starting at column sum(widths[:k]).
// Both directions are the same strided row copy, one launch per input:
// forward copies input k into its columns of out, backward copies those
// columns of dy out into outs[k].  Copies move float4s when every row start
// on both sides is 16-byte aligned (all of width, pitches and start column
// multiples of 4, buffers cudaMalloc-aligned), else single floats.
#include <type_traits>

#include <pybind11/stl.h>

#include "common.cuh"

namespace needle_cuda {
namespace {

// One side of a copy: element (r, c) lives at base[r * pitch + first + c].
struct RowBlock {
  float* base;
  int pitch, first;
};

// Vector t of the copy: row r = t / (width / V), vector c in the row.
template <int V>
struct CopyRowsFn {
  using Vec = typename std::conditional<V == 4, float4, float>::type;
  RowBlock src, dst;
  FastDiv div_row_vectors;  // width / V
  __host__ __device__ void operator()(int64_t t) const {
    int c = 0;
    const int r = div_row_vectors.divmod(static_cast<int>(t), c);
    reinterpret_cast<Vec*>(dst.base + r * dst.pitch + dst.first)[c] =
        reinterpret_cast<const Vec*>(src.base + r * src.pitch + src.first)[c];
  }
};

void copy_rows(RowBlock src, RowBlock dst, int rows, int width) {
  if (rows == 0 || width == 0) return;
  const bool vec = width % 4 == 0 && src.pitch % 4 == 0 && src.first % 4 == 0 && dst.pitch % 4 == 0 &&
                   dst.first % 4 == 0;
  if (vec)
    launch_for_each(int64_t{rows} * (width / 4), CopyRowsFn<4>{src, dst, FastDiv(width / 4)}, "concat copy");
  else
    launch_for_each(int64_t{rows} * width, CopyRowsFn<1>{src, dst, FastDiv(width)}, "concat copy");
}

// Validates like the reference; returns sum(widths).
int64_t check_concat(const std::vector<CudaArray*>& arrays, const CudaArray& whole, const char* whole_name,
                     int64_t outer, const std::vector<int64_t>& widths, const char* role) {
  if (arrays.size() != widths.size())
    throw py::value_error(std::to_string(arrays.size()) + " " + role + " arrays but " +
                          std::to_string(widths.size()) + " widths");
  if (outer < 0) throw py::value_error("bad concat outer size " + std::to_string(outer));
  int64_t total = 0;
  for (size_t k = 0; k < arrays.size(); ++k) {
    const std::string name = std::string(role) + "[" + std::to_string(k) + "]";
    if (widths[k] < 0) throw py::value_error("bad concat width " + std::to_string(widths[k]) + " for " + name);
    if (arrays[k] == nullptr) throw py::value_error(name + " is None");
    check_size(name.c_str(), *arrays[k], checked_mul(outer, widths[k], "concat"));
    total += widths[k];
    check_int32("concat total width", total);
  }
  const int64_t size = checked_mul(outer, total, "concat");
  check_size(whole_name, whole, size);
  check_int32("concat output size", size);
  return total;
}

void concat_forward(const std::vector<CudaArray*>& inputs, CudaArray& out, int64_t outer,
                    const std::vector<int64_t>& widths) {
  const int total = static_cast<int>(check_concat(inputs, out, "out", outer, widths, "inputs"));
  int first = 0;
  for (size_t k = 0; k < inputs.size(); ++k) {
    const int width = static_cast<int>(widths[k]);
    copy_rows({inputs[k]->ptr, width, 0}, {out.ptr, total, first}, static_cast<int>(outer), width);
    first += width;
  }
}

void concat_backward(const CudaArray& dy, const std::vector<CudaArray*>& outs, int64_t outer,
                     const std::vector<int64_t>& widths) {
  const int total = static_cast<int>(check_concat(outs, dy, "dy", outer, widths, "outs"));
  int first = 0;
  for (size_t k = 0; k < outs.size(); ++k) {
    const int width = static_cast<int>(widths[k]);
    copy_rows({dy.ptr, total, first}, {outs[k]->ptr, width, 0}, static_cast<int>(outer), width);
    first += width;
  }
}

}  // namespace

void register_concat(py::module_& m) {
  m.def("concat_forward", &concat_forward, py::arg("inputs"), py::arg("out"), py::arg("outer"), py::arg("widths"));
  m.def("concat_backward", &concat_backward, py::arg("dy"), py::arg("outs"), py::arg("outer"), py::arg("widths"));
}

}  // namespace needle_cuda
