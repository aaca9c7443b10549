// reduce_sum / reduce_max over the rows of a compact (rows, reduce_size)
// buffer, rows = out.size (as in the numpy reference).
//
// Three shapes of work, all reading the row in parallel and combining with
// warp shuffles (no atomics, deterministic):
//   reduce_size <= 32          one thread per row (a warp reads 32 adjacent rows)
//   reduce_size <= 4096        one warp per row
//   larger                     one block per row, or per slice of a row when
//                              there are too few rows to fill the GPU; the
//                              slices' results are then reduced again.
// max propagates NaN like numpy.
#include <cmath>

#include "common.cuh"

namespace needle_cuda {
namespace {

struct SumOp {
  static __device__ float identity() { return 0.0f; }
  static __device__ float combine(float x, float y) { return x + y; }
};

struct MaxOp {
  static __device__ float identity() { return -INFINITY; }
  static __device__ float combine(float x, float y) { return (x > y || isnan(x)) ? x : y; }
};

template <class Op>
__device__ __forceinline__ float warp_reduce(float v) {
#pragma unroll
  for (int delta = 16; delta > 0; delta /= 2) v = Op::combine(v, __shfl_down_sync(0xffffffffu, v, delta));
  return v;  // complete in lane 0
}

template <class Op>
__global__ void reduce_thread_per_row(const float* __restrict__ a, float* __restrict__ out, int64_t rows,
                                      int64_t len) {
  for (int64_t row = int64_t{blockIdx.x} * blockDim.x + threadIdx.x; row < rows;
       row += int64_t{gridDim.x} * blockDim.x) {
    const float* p = a + row * len;
    float acc = Op::identity();
    for (int64_t k = 0; k < len; ++k) acc = Op::combine(acc, p[k]);
    out[row] = acc;
  }
}

template <class Op>
__global__ void reduce_warp_per_row(const float* __restrict__ a, float* __restrict__ out, int64_t rows,
                                    int64_t len) {
  const int lane = threadIdx.x % 32;
  const int64_t warps = int64_t{gridDim.x} * (blockDim.x / 32);
  // Every lane of a warp takes the same rows, so the shuffles see all 32 lanes.
  for (int64_t row = int64_t{blockIdx.x} * (blockDim.x / 32) + threadIdx.x / 32; row < rows; row += warps) {
    const float* p = a + row * len;
    float acc = Op::identity();
    for (int64_t k = lane; k < len; k += 32) acc = Op::combine(acc, p[k]);
    acc = warp_reduce<Op>(acc);
    if (lane == 0) out[row] = acc;
  }
}

// Block b reduces slice b % slices of row b / slices, elements
// [slice * slice_len, min(len, (slice + 1) * slice_len)), into out[b].
template <class Op>
__global__ void reduce_block_per_slice(const float* __restrict__ a, float* __restrict__ out, int64_t rows,
                                       int64_t len, int64_t slices, int64_t slice_len) {
  __shared__ float partial[kThreads / 32];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  for (int64_t b = blockIdx.x; b < rows * slices; b += gridDim.x) {
    const int64_t row = b / slices, begin = (b % slices) * slice_len;
    const int64_t end = begin + slice_len < len ? begin + slice_len : len;
    const float* p = a + row * len;
    float acc = Op::identity();
    for (int64_t k = begin + threadIdx.x; k < end; k += kThreads) acc = Op::combine(acc, p[k]);
    acc = warp_reduce<Op>(acc);
    if (lane == 0) partial[warp] = acc;
    __syncthreads();
    if (warp == 0) {
      acc = lane < kThreads / 32 ? partial[lane] : Op::identity();
      acc = warp_reduce<Op>(acc);
      if (lane == 0) out[b] = acc;
    }
    __syncthreads();  // partial is reused by the next b
  }
}

// out[r] = op over a[r*len .. (r+1)*len) for r < rows; rows > 0 and len > 0.
template <class Op>
void reduce_rows(const float* a, float* out, int64_t rows, int64_t len) {
  if (len <= 32) {
    reduce_thread_per_row<Op><<<grid_for(rows, kThreads), kThreads>>>(a, out, rows, len);
    check_launch("reduce_thread_per_row");
  } else if (len <= 4096) {
    reduce_warp_per_row<Op><<<grid_for(rows * 32, kThreads), kThreads>>>(a, out, rows, len);
    check_launch("reduce_warp_per_row");
  } else {
    // Slice long rows until there are about 4 blocks per multiprocessor,
    // keeping slices of at least 16 K elements so each block streams enough.
    const int64_t min_slice = 16384;
    int64_t slices = (4 * int64_t{sm_count()} + rows - 1) / rows;
    const int64_t max_slices = (len + min_slice - 1) / min_slice;
    if (slices > max_slices) slices = max_slices;
    const int64_t slice_len = (len + slices - 1) / slices;
    slices = (len + slice_len - 1) / slice_len;  // no empty trailing slice
    const int64_t blocks = rows * slices;
    const int grid = static_cast<int>(blocks < INT32_MAX ? blocks : INT32_MAX);
    if (slices == 1) {
      reduce_block_per_slice<Op><<<grid, kThreads>>>(a, out, rows, len, 1, len);
      check_launch("reduce_block_per_slice");
      return;
    }
    CudaArray partial(blocks);
    reduce_block_per_slice<Op><<<grid, kThreads>>>(a, partial.ptr, rows, len, slices, slice_len);
    check_launch("reduce_block_per_slice");
    reduce_rows<Op>(partial.ptr, out, rows, slices);
  }
}

template <class Op>
void reduce(const CudaArray& a, CudaArray& out, int64_t reduce_size) {
  if (reduce_size <= 0) throw py::value_error("reduce_size must be positive, got " + std::to_string(reduce_size));
  check_size("a", a, checked_mul(out.size, reduce_size, "reduce"));
  if (out.size == 0) return;
  reduce_rows<Op>(a.ptr, out.ptr, out.size, reduce_size);
}

}  // namespace

void register_reduce(py::module_& m) {
  m.def("reduce_sum", &reduce<SumOp>, py::arg("a"), py::arg("out"), py::arg("reduce_size"));
  m.def("reduce_max", &reduce<MaxOp>, py::arg("a"), py::arg("out"), py::arg("reduce_size"));
}

}  // namespace needle_cuda
