// Nearest-neighbour upsampling by an integer scale s, on (planes, h, w).
// Output row R (counted over all planes) copies input row R / s, because
// plane p's rows start at p*h*s = (p*h)*s; so no plane index is needed.
//
// forward: one thread per output float4 when a row (w*s) holds whole
// float4s, else per element.  backward: dx[q] sums an s x s block of dy;
// for s == 2 and even w a thread reads two float4s (one per dy row) and
// writes two dx elements.
#include "common.cuh"

namespace needle_cuda {
namespace {

// Output elements V*t .. V*t + V-1, all in one output row.
template <int V>
struct UpsampleForwardFn {
  const float* x;
  float* out;
  FastDiv div_out_w, div_scale;
  int w;
  __host__ __device__ void operator()(int64_t t) const {
    int col = 0;
    const int row = div_out_w.divmod(static_cast<int>(t) * V, col);
    const float* in_row = x + div_scale.div(row) * w;
    float v[V];
#pragma unroll
    for (int u = 0; u < V; ++u) v[u] = in_row[div_scale.div(col + u)];
    if constexpr (V == 4)
      reinterpret_cast<float4*>(out)[t] = make_float4(v[0], v[1], v[2], v[3]);
    else
      out[t] = v[0];
  }
};

// dx[q] = sum of dy[(R*s + a) * w*s + j*s + b] over a, b < s, with q = R*w + j.
struct UpsampleBackwardFn {
  const float* dy;
  float* dx;
  FastDiv div_w;
  int scale;
  __host__ __device__ void operator()(int64_t q) const {
    int j = 0;
    const int row = div_w.divmod(static_cast<int>(q), j);
    const int out_w = static_cast<int>(div_w.d) * scale;
    float acc = 0.0f;
    for (int a = 0; a < scale; ++a) {
      const float* src = dy + (row * scale + a) * out_w + j * scale;
      for (int b = 0; b < scale; ++b) acc += src[b];
    }
    dx[q] = acc;
  }
};

// Scale 2, even w: pair t is dx[2t], dx[2t + 1] = dx[R*w + 2jp], dx[R*w + 2jp + 1];
// their 2 x 2 blocks are one float4 in each of dy rows 2R and 2R + 1.
struct Upsample2BackwardFn {
  const float* dy;
  float* dx;
  FastDiv div_half_w;
  __host__ __device__ void operator()(int64_t t) const {
    int jp = 0;
    const int row = div_half_w.divmod(static_cast<int>(t), jp);
    const int out_w4 = static_cast<int>(div_half_w.d);  // float4s per dy row: 2w / 4
    const float4* dy4 = reinterpret_cast<const float4*>(dy);
    const float4 top = dy4[2 * row * out_w4 + jp];
    const float4 bottom = dy4[(2 * row + 1) * out_w4 + jp];
    reinterpret_cast<float2*>(dx)[t] =
        make_float2(top.x + top.y + bottom.x + bottom.y, top.z + top.w + bottom.z + bottom.w);
  }
};

// Returns planes*h*w after validating the sizes and both buffers.
int64_t check_upsample(const CudaArray& small, const char* small_name, const CudaArray& big, const char* big_name,
                       int64_t planes, int64_t h, int64_t w, int64_t scale) {
  if (planes < 0 || h < 0 || w < 0 || scale < 1)
    throw py::value_error("bad upsample sizes planes=" + std::to_string(planes) + " h=" + std::to_string(h) +
                          " w=" + std::to_string(w) + " scale=" + std::to_string(scale));
  const int64_t in_size = checked_mul(checked_mul(planes, h, "upsample"), w, "upsample");
  const int64_t out_size = checked_mul(in_size, checked_mul(scale, scale, "upsample"), "upsample");
  check_size(small_name, small, in_size);
  check_size(big_name, big, out_size);
  check_int32("upsample output size", out_size);
  return in_size;
}

void upsample_nearest_forward(const CudaArray& x, CudaArray& out, int64_t planes, int64_t h, int64_t w,
                              int64_t scale) {
  const int64_t in_size = check_upsample(x, "x", out, "out", planes, h, w, scale);
  if (in_size == 0) return;
  const int out_size = static_cast<int>(in_size * scale * scale), out_w = static_cast<int>(w * scale);
  const FastDiv div_out_w(out_w), div_scale(scale);
  if (out_w % 4 == 0)
    launch_for_each(out_size / 4, UpsampleForwardFn<4>{x.ptr, out.ptr, div_out_w, div_scale, static_cast<int>(w)},
                    "upsample_nearest_forward");
  else
    launch_for_each(out_size, UpsampleForwardFn<1>{x.ptr, out.ptr, div_out_w, div_scale, static_cast<int>(w)},
                    "upsample_nearest_forward");
}

void upsample_nearest_backward(const CudaArray& dy, CudaArray& dx, int64_t planes, int64_t h, int64_t w,
                               int64_t scale) {
  const int64_t in_size = check_upsample(dx, "dx", dy, "dy", planes, h, w, scale);
  if (in_size == 0) return;
  if (scale == 2 && w % 2 == 0)
    launch_for_each(in_size / 2, Upsample2BackwardFn{dy.ptr, dx.ptr, FastDiv(w / 2)}, "upsample_nearest_backward");
  else
    launch_for_each(in_size, UpsampleBackwardFn{dy.ptr, dx.ptr, FastDiv(w), static_cast<int>(scale)},
                    "upsample_nearest_backward");
}

}  // namespace

void register_upsample(py::module_& m) {
  m.def("upsample_nearest_forward", &upsample_nearest_forward, py::arg("x"), py::arg("out"), py::arg("planes"),
        py::arg("h"), py::arg("w"), py::arg("scale"));
  m.def("upsample_nearest_backward", &upsample_nearest_backward, py::arg("dy"), py::arg("dx"), py::arg("planes"),
        py::arg("h"), py::arg("w"), py::arg("scale"));
}

}  // namespace needle_cuda
