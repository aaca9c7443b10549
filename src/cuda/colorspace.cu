// rgb_to_lab, lab_to_rgb and their vjps on (n, 3, hw) buffers: one fused
// pass, each index converting V pixels (V = 4 when hw % 4 == 0, so that
// four neighbouring pixels of a channel plane are one aligned float4).
#include "colorspace.cuh"
#include "common.cuh"

namespace needle_cuda {
namespace {

// V consecutive floats from / to p (one float4 when V == 4, p 16-byte aligned).
template <int V>
__host__ __device__ __forceinline__ void load_pixels(const float* p, float (&v)[V]) {
  if constexpr (V == 4) {
    const float4 q = *reinterpret_cast<const float4*>(p);
    v[0] = q.x, v[1] = q.y, v[2] = q.z, v[3] = q.w;
  } else {
    v[0] = *p;
  }
}
template <int V>
__host__ __device__ __forceinline__ void store_pixels(float* p, const float (&v)[V]) {
  if constexpr (V == 4)
    *reinterpret_cast<float4*>(p) = make_float4(v[0], v[1], v[2], v[3]);
  else
    *p = v[0];
}

// Pixel group t (V pixels) of image b starts at plane offset i = t*V - b*hw;
// channel ch of it is at (b*3 + ch)*hw + i.  g, the upstream gradient, is
// read only by the vjp functors (F::kVjp).
template <int V, class F>
struct ColorspaceFn {
  const float* x;
  const float* g;
  float* out;
  FastDiv div_hw;
  F f;
  __host__ __device__ void operator()(int64_t t) const {
    const int hw = static_cast<int>(div_hw.d);
    int i = 0;
    const int b = div_hw.divmod(static_cast<int>(t) * V, i);
    float xs[3][V], gs[3][V] = {}, ys[3][V];
#pragma unroll
    for (int ch = 0; ch < 3; ++ch) {
      load_pixels<V>(x + (b * 3 + ch) * hw + i, xs[ch]);
      if constexpr (F::kVjp) load_pixels<V>(g + (b * 3 + ch) * hw + i, gs[ch]);
    }
#pragma unroll
    for (int u = 0; u < V; ++u) {
      const float px[3] = {xs[0][u], xs[1][u], xs[2][u]};
      const float pg[3] = {gs[0][u], gs[1][u], gs[2][u]};
      float py[3];
      f(px, pg, py);
#pragma unroll
      for (int ch = 0; ch < 3; ++ch) ys[ch][u] = py[ch];
    }
#pragma unroll
    for (int ch = 0; ch < 3; ++ch) store_pixels<V>(out + (b * 3 + ch) * hw + i, ys[ch]);
  }
};

template <class F>
void convert(const CudaArray& x, const CudaArray* g, CudaArray& out, int64_t n, int64_t hw, const char* out_name) {
  if (n < 0 || hw < 0)
    throw py::value_error("bad colour sizes n=" + std::to_string(n) + " hw=" + std::to_string(hw));
  const int64_t size = checked_mul(checked_mul(n, 3, "colour"), hw, "colour");
  check_size("x", x, size);
  if (g != nullptr) check_size("dy", *g, size);
  check_size(out_name, out, size);
  check_int32("colour buffer size", size);
  if (size == 0) return;
  const int pixels = static_cast<int>(n * hw);
  const float* gp = g != nullptr ? g->ptr : nullptr;
  if (hw % 4 == 0)
    launch_for_each(pixels / 4, ColorspaceFn<4, F>{x.ptr, gp, out.ptr, FastDiv(hw), F()}, "colorspace");
  else
    launch_for_each(pixels, ColorspaceFn<1, F>{x.ptr, gp, out.ptr, FastDiv(hw), F()}, "colorspace");
}

template <class F>
void forward(const CudaArray& x, CudaArray& out, int64_t n, int64_t hw) {
  convert<F>(x, nullptr, out, n, hw, "out");
}

template <class F>
void vjp(const CudaArray& x, const CudaArray& dy, CudaArray& dx, int64_t n, int64_t hw) {
  convert<F>(x, &dy, dx, n, hw, "dx");
}

}  // namespace

void register_colorspace(py::module_& m) {
  m.def("rgb_to_lab", &forward<color::RgbToLab>, py::arg("x"), py::arg("out"), py::arg("n"), py::arg("hw"));
  m.def("rgb_to_lab_vjp", &vjp<color::RgbToLabVjp>, py::arg("x"), py::arg("dy"), py::arg("dx"), py::arg("n"),
        py::arg("hw"));
  m.def("lab_to_rgb", &forward<color::LabToRgb>, py::arg("x"), py::arg("out"), py::arg("n"), py::arg("hw"));
  m.def("lab_to_rgb_vjp", &vjp<color::LabToRgbVjp>, py::arg("x"), py::arg("dy"), py::arg("dx"), py::arg("n"),
        py::arg("hw"));
}

}  // namespace needle_cuda
