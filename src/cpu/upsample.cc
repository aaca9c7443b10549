// Upsample family: nearest-neighbour upsampling by an integer scale of a
// stack of planes (N*C planes of h x w), and its backward (the sum of each
// scale x scale block).  Threads split the planes; each output row is built
// once and copied scale-1 more times.
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <string>

#include <pybind11/pybind11.h>

#include "array.h"
#include "simd.h"

namespace py = pybind11;

namespace needle {

struct UpsampleSizes {
  i64 in, out;  // elements of x and of the upsampled array
};

static UpsampleSizes upsample_sizes(i64 planes, i64 h, i64 w, i64 scale) {
  if (std::min({planes, h, w}) < 0 || scale < 1)
    fail("bad upsample sizes planes=" + std::to_string(planes) + " h=" + std::to_string(h) +
         " w=" + std::to_string(w) + " scale=" + std::to_string(scale));
  const i64 in = product({planes, h, w}, "upsample");
  return {in, product({in, scale, scale}, "upsample")};
}

NEEDLE_CLONES static void widen_row(const float* src, float* dst, i64 w, i64 scale) {
  for (i64 j = 0; j < w; ++j)
    for (i64 b = 0; b < scale; ++b) dst[j * scale + b] = src[j];
}

NEEDLE_CLONES static void narrow_rows(const float* src, float* dst, i64 w, i64 scale) {
  const i64 ws = w * scale;
  for (i64 j = 0; j < w; ++j) {
    float s = 0.0f;
    for (i64 a = 0; a < scale; ++a)
      for (i64 b = 0; b < scale; ++b) s += src[a * ws + j * scale + b];
    dst[j] = s;
  }
}

static void upsample_nearest_forward(const Array& x, Array& out, i64 planes, i64 h, i64 w, i64 scale) {
  const UpsampleSizes s = upsample_sizes(planes, h, w, scale);
  check_size("x", x, s.in);
  check_size("out", out, s.out);
  std::vector<float> keep;
  const float* px = distinct_input(x, out, keep);
  const i64 rows = planes * h, ws = w * scale;
#pragma omp parallel for schedule(static) if (s.out >= kParallelGrain)
  for (i64 r = 0; r < rows; ++r) {
    float* dst = out.ptr + r * scale * ws;
    widen_row(px + r * w, dst, w, scale);
    for (i64 a = 1; a < scale; ++a) std::memcpy(dst + a * ws, dst, ws * sizeof(float));
  }
}

static void upsample_nearest_backward(const Array& dy, Array& dx, i64 planes, i64 h, i64 w, i64 scale) {
  const UpsampleSizes s = upsample_sizes(planes, h, w, scale);
  check_size("dy", dy, s.out);
  check_size("dx", dx, s.in);
  std::vector<float> keep;
  const float* pd = distinct_input(dy, dx, keep);
  const i64 rows = planes * h, ws = w * scale;
#pragma omp parallel for schedule(static) if (s.out >= kParallelGrain)
  for (i64 r = 0; r < rows; ++r) narrow_rows(pd + r * scale * ws, dx.ptr + r * w, w, scale);
}

void register_upsample(py::module_& m) {
  using release = py::call_guard<py::gil_scoped_release>;
  m.def("upsample_nearest_forward", &upsample_nearest_forward, py::arg("x"), py::arg("out"),
        py::arg("planes"), py::arg("h"), py::arg("w"), py::arg("scale"), release());
  m.def("upsample_nearest_backward", &upsample_nearest_backward, py::arg("dy"), py::arg("dx"),
        py::arg("planes"), py::arg("h"), py::arg("w"), py::arg("scale"), release());
}

}  // namespace needle
