// conv2d_forward / conv2d_backward_input / conv2d_backward_weight: host-side
// validation and launches of the implicit-GEMM policies in conv.cuh.
//
// backward_weight reduces over every output position (n*ho*wo, often tens
// of thousands) into a small o x c*kh*kw result, so it splits that
// reduction over z to give the GPU enough blocks; each split writes its own
// slice of a workspace and a second kernel sums the slices (deterministic).
#include <algorithm>

#include "conv.cuh"

namespace needle_cuda {
namespace {

ConvShape conv_shape(int64_t n, int64_t c, int64_t h, int64_t w, int64_t o, int64_t kh, int64_t kw,
                     int64_t stride, int64_t padding) {
  const std::string sizes = "n=" + std::to_string(n) + " c=" + std::to_string(c) + " h=" + std::to_string(h) +
                            " w=" + std::to_string(w) + " o=" + std::to_string(o) + " k=" + std::to_string(kh) +
                            "x" + std::to_string(kw) + " stride=" + std::to_string(stride) +
                            " padding=" + std::to_string(padding);
  if (n <= 0 || c <= 0 || h <= 0 || w <= 0 || o <= 0 || kh <= 0 || kw <= 0 || stride < 1 || padding < 0)
    throw py::value_error("bad convolution sizes " + sizes);
  for (int64_t v : {n, c, h, w, o, kh, kw, stride, padding}) check_int32(("convolution " + sizes).c_str(), v);
  check_int32("convolution padded height", h + 2 * padding);
  check_int32("convolution padded width", w + 2 * padding);
  const int64_t ho = (h + 2 * padding - kh) / stride + 1, wo = (w + 2 * padding - kw) / stride + 1;
  if (h + 2 * padding < kh || w + 2 * padding < kw)
    throw py::value_error("kernel larger than the padded input: " + sizes);
  // The largest index of every buffer and every GEMM dimension.
  check_int32("conv input size", checked_mul(checked_mul(n, c, "conv"), h * w, "conv"));
  check_int32("conv output size", checked_mul(checked_mul(n, o, "conv"), ho * wo, "conv"));
  check_int32("conv weight size", checked_mul(checked_mul(o, c, "conv"), kh * kw, "conv"));
  ConvShape s;
  s.n = static_cast<int>(n), s.c = static_cast<int>(c), s.h = static_cast<int>(h), s.w = static_cast<int>(w);
  s.o = static_cast<int>(o), s.kh = static_cast<int>(kh), s.kw = static_cast<int>(kw);
  s.stride = static_cast<int>(stride), s.pad = static_cast<int>(padding);
  s.ho = static_cast<int>(ho), s.wo = static_cast<int>(wo);
  s.div_taps = FastDiv(kh * kw);
  s.div_kw = FastDiv(kw);
  s.div_out_hw = FastDiv(ho * wo);
  s.div_wo = FastDiv(wo);
  s.div_in_hw = FastDiv(h * w);
  s.div_w = FastDiv(w);
  s.div_stride = FastDiv(stride);
  return s;
}

int64_t x_size(const ConvShape& s) { return int64_t{s.n} * s.c * s.h * s.w; }
int64_t y_size(const ConvShape& s) { return int64_t{s.n} * s.o * s.ho * s.wo; }
int64_t w_size(const ConvShape& s) { return int64_t{s.o} * s.c * s.kh * s.kw; }

void conv2d_forward(const CudaArray& x, const CudaArray& w, const CudaArray* bias, CudaArray& out, int64_t n,
                    int64_t c, int64_t h, int64_t w_, int64_t o, int64_t kh, int64_t kw, int64_t stride,
                    int64_t padding) {
  const ConvShape s = conv_shape(n, c, h, w_, o, kh, kw, stride, padding);
  check_size("x", x, x_size(s));
  check_size("w", w, w_size(s));
  check_size("out", out, y_size(s));
  if (bias != nullptr) check_size("bias", *bias, o);
  const ConvForwardOp op{s, x.ptr, w.ptr, bias != nullptr ? bias->ptr : nullptr, out.ptr};
  const int64_t M = o, N = int64_t{s.n} * s.ho * s.wo;
  launch_gemm(op, M, N, 1, pick_tiles(M, N, 1));
}

void conv2d_backward_input(const CudaArray& dy, const CudaArray& w, CudaArray& dx, int64_t n, int64_t c,
                           int64_t h, int64_t w_, int64_t o, int64_t kh, int64_t kw, int64_t stride,
                           int64_t padding) {
  const ConvShape s = conv_shape(n, c, h, w_, o, kh, kw, stride, padding);
  check_size("dy", dy, y_size(s));
  check_size("w", w, w_size(s));
  check_size("dx", dx, x_size(s));
  const ConvBackwardInputOp op{s, dy.ptr, w.ptr, dx.ptr};
  const int64_t M = c, N = int64_t{s.n} * s.h * s.w;
  launch_gemm(op, M, N, 1, pick_tiles(M, N, 1));
}

// out[i] = sum over z < count of slices[z * size + i]; count * size fits int32.
struct SumSlicesFn {
  const float* slices;
  float* out;
  int size, count;
  __host__ __device__ void operator()(int64_t i) const {
    float acc = 0.0f;
    for (int z = 0; z < count; ++z) acc += slices[z * size + static_cast<int>(i)];
    out[i] = acc;
  }
};

void conv2d_backward_weight(const CudaArray& x, const CudaArray& dy, CudaArray& dw, int64_t n, int64_t c,
                            int64_t h, int64_t w_, int64_t o, int64_t kh, int64_t kw, int64_t stride,
                            int64_t padding) {
  const ConvShape s = conv_shape(n, c, h, w_, o, kh, kw, stride, padding);
  check_size("x", x, x_size(s));
  check_size("dy", dy, y_size(s));
  check_size("dw", dw, w_size(s));
  const int64_t M = o, N = int64_t{s.c} * s.kh * s.kw, K = int64_t{s.n} * s.ho * s.wo;
  const Tiles tiles = pick_tiles(M, N, 1);
  // About two blocks per multiprocessor, each reducing at least 512 positions,
  // with the workspace's indices inside int32.
  int64_t splits = (2 * int64_t{sm_count()} + tile_count(tiles, M, N) - 1) / tile_count(tiles, M, N);
  splits = std::min({splits, (K + 511) / 512, kIndexLimit / w_size(s)});
  splits = std::max<int64_t>(splits, 1);
  const int64_t chunk = ((K + splits - 1) / splits + kTileK - 1) / kTileK * kTileK;
  splits = (K + chunk - 1) / chunk;  // every split non-empty
  if (splits == 1) {
    const ConvBackwardWeightOp op{s, x.ptr, dy.ptr, dw.ptr, static_cast<int>(chunk)};
    launch_gemm(op, M, N, 1, tiles);
    return;
  }
  CudaArray workspace(splits * w_size(s));
  const ConvBackwardWeightOp op{s, x.ptr, dy.ptr, workspace.ptr, static_cast<int>(chunk)};
  launch_gemm(op, M, N, splits, tiles);
  const int size = static_cast<int>(w_size(s));
  launch_for_each(size, SumSlicesFn{workspace.ptr, dw.ptr, size, static_cast<int>(splits)}, "conv2d_backward_weight sum");
}

}  // namespace

void register_conv(py::module_& m) {
  m.def("conv2d_forward", &conv2d_forward, py::arg("x"), py::arg("w"), py::arg("bias").none(true), py::arg("out"),
        py::arg("n"), py::arg("c"), py::arg("h"), py::arg("w_"), py::arg("o"), py::arg("kh"), py::arg("kw"),
        py::arg("stride"), py::arg("padding"));
  m.def("conv2d_backward_input", &conv2d_backward_input, py::arg("dy"), py::arg("w"), py::arg("dx"), py::arg("n"),
        py::arg("c"), py::arg("h"), py::arg("w_"), py::arg("o"), py::arg("kh"), py::arg("kw"), py::arg("stride"),
        py::arg("padding"));
  m.def("conv2d_backward_weight", &conv2d_backward_weight, py::arg("x"), py::arg("dy"), py::arg("dw"),
        py::arg("n"), py::arg("c"), py::arg("h"), py::arg("w_"), py::arg("o"), py::arg("kh"), py::arg("kw"),
        py::arg("stride"), py::arg("padding"));
}

}  // namespace needle_cuda
