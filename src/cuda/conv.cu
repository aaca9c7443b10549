// conv2d_forward / conv2d_backward_input / conv2d_backward_weight: host-side
// validation and launches of the implicit-GEMM policies in conv.cuh.
//
// A GEMM with few output tiles and a long K (backward_weight always: it
// reduces over every output position into a small o x c*kh*kw result; the
// deep layers' forward and backward_input too) splits K over z to give the
// GPU enough blocks; each split writes its own slice of a workspace and a
// second kernel sums the slices (deterministic, no atomics).
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
  if (h + 2 * padding < kh || w + 2 * padding < kw)
    throw py::value_error("kernel larger than the padded input: " + sizes);
  const int64_t ho = (h + 2 * padding - kh) / stride + 1, wo = (w + 2 * padding - kw) / stride + 1;
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

// Runs the GEMM policy op (M x N, inner dimension K) into out (out_size
// elements).  When its tiles alone would leave the GPU short of about two
// waves of blocks, K is split over z (at least 128 indices per split) into
// a workspace of per-split slices, which are then summed.
template <class Op>
void run_conv_gemm(Op op, int64_t M, int64_t N, int64_t K, float* out, int64_t out_size) {
  const Tiles tiles = pick_tiles(M, N, 1);
  const int64_t wanted_blocks = 2 * int64_t{sm_count()} * (256 / tile_threads(tiles));
  int64_t splits = (wanted_blocks + tile_count(tiles, M, N) - 1) / tile_count(tiles, M, N);
  splits = std::max<int64_t>(1, std::min({splits, K / 128, kIndexLimit / out_size}));
  const int64_t chunk = ((K + splits - 1) / splits + kTileK - 1) / kTileK * kTileK;
  splits = (K + chunk - 1) / chunk;  // every split non-empty
  op.split = KSplit{static_cast<int>(K), static_cast<int>(chunk)};
  op.slice = static_cast<int>(out_size);
  if (splits == 1) {
    op.out = out;
    launch_gemm(op, M, N, 1, tiles);
    return;
  }
  CudaArray workspace(splits * out_size);
  op.out = workspace.ptr;
  launch_gemm(op, M, N, splits, tiles);
  launch_for_each(out_size, SumSlicesFn{workspace.ptr, out, static_cast<int>(out_size), static_cast<int>(splits)},
                  "conv split-K sum");
}

void conv2d_forward(const CudaArray& x, const CudaArray& w, const CudaArray* bias, CudaArray& out, int64_t n,
                    int64_t c, int64_t h, int64_t w_, int64_t o, int64_t kh, int64_t kw, int64_t stride,
                    int64_t padding) {
  const ConvShape s = conv_shape(n, c, h, w_, o, kh, kw, stride, padding);
  check_size("x", x, x_size(s));
  check_size("w", w, w_size(s));
  check_size("out", out, y_size(s));
  if (bias != nullptr) check_size("bias", *bias, o);
  ConvForwardOp op{};
  op.s = s, op.x = x.ptr, op.weight = w.ptr, op.bias = bias != nullptr ? bias->ptr : nullptr;
  run_conv_gemm(op, o, int64_t{s.n} * s.ho * s.wo, int64_t{s.c} * s.kh * s.kw, out.ptr, y_size(s));
}

void conv2d_backward_input(const CudaArray& dy, const CudaArray& w, CudaArray& dx, int64_t n, int64_t c,
                           int64_t h, int64_t w_, int64_t o, int64_t kh, int64_t kw, int64_t stride,
                           int64_t padding) {
  const ConvShape s = conv_shape(n, c, h, w_, o, kh, kw, stride, padding);
  check_size("dy", dy, y_size(s));
  check_size("w", w, w_size(s));
  check_size("dx", dx, x_size(s));
  ConvBackwardInputOp op{};
  op.s = s, op.dy = dy.ptr, op.weight = w.ptr;
  run_conv_gemm(op, c, int64_t{s.n} * s.h * s.w, int64_t{s.o} * s.kh * s.kw, dx.ptr, x_size(s));
}

void conv2d_backward_weight(const CudaArray& x, const CudaArray& dy, CudaArray& dw, int64_t n, int64_t c,
                            int64_t h, int64_t w_, int64_t o, int64_t kh, int64_t kw, int64_t stride,
                            int64_t padding) {
  const ConvShape s = conv_shape(n, c, h, w_, o, kh, kw, stride, padding);
  check_size("x", x, x_size(s));
  check_size("dy", dy, y_size(s));
  check_size("dw", dw, w_size(s));
  ConvBackwardWeightOp op{};
  op.s = s, op.x = x.ptr, op.dy = dy.ptr;
  run_conv_gemm(op, o, int64_t{s.c} * s.kh * s.kw, int64_t{s.n} * s.ho * s.wo, dw.ptr, w_size(s));
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
