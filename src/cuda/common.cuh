// Shared by every file of the CUDA backend: the device buffer, error checks,
// host-side argument validation and launch sizing.
//
// Every function validates its arguments on the host, in int64, before any
// launch: a kernel never sees an index that can leave its buffer.  Kernels
// that do heavy index arithmetic (GEMM, convolution, upsample, concat,
// colour) use 32-bit indices; their callers check with check_int32 that
// every buffer they touch holds at most kIndexLimit (about 2^31) elements.
#pragma once

#include <cuda_runtime.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <stdexcept>
#include <string>

namespace py = pybind11;

namespace needle_cuda {

// A failed device allocation; module.cu turns it into Python's MemoryError.
struct OutOfMemory : std::runtime_error {
  using std::runtime_error::runtime_error;
};

[[noreturn]] void throw_cuda_error(cudaError_t err, const char* call, const char* file, int line);

#define CUDA_CHECK(call)                                                        \
  do {                                                                          \
    cudaError_t needle_err_ = (call);                                           \
    if (needle_err_ != cudaSuccess)                                             \
      ::needle_cuda::throw_cuda_error(needle_err_, #call, __FILE__, __LINE__);  \
  } while (0)

// Call right after every kernel launch: reports a bad launch configuration at
// once; with NEEDLE_CUDA_SYNC=1 in the environment it also waits for the
// kernel, so an execution error names the kernel that caused it.
void check_launch(const char* kernel);

// A flat float32 buffer in device memory (the contract's Array).
struct CudaArray {
  explicit CudaArray(int64_t size);
  ~CudaArray();
  CudaArray(const CudaArray&) = delete;
  CudaArray& operator=(const CudaArray&) = delete;

  float* ptr = nullptr;
  int64_t size = 0;
};

// Multiprocessors of the current device (queried once).
int sm_count();

// Blocks for a grid-stride loop over n items: enough to fill the GPU a few
// times over, never more than the items need; at least 1.
int grid_for(int64_t n, int threads);

constexpr int kThreads = 256;

// The grid-stride loop of every memory-bound kernel: f(i) for 0 <= i < count,
// each i once.  f's operator() is __host__ __device__, so the same code can
// be run index by index on the host to check it without a GPU.
template <class F>
__global__ void for_each_kernel(int64_t count, F f) {
  for (int64_t i = int64_t{blockIdx.x} * blockDim.x + threadIdx.x; i < count; i += int64_t{gridDim.x} * blockDim.x)
    f(i);
}

template <class F>
void launch_for_each(int64_t count, const F& f, const char* name) {
  if (count == 0) return;
  for_each_kernel<<<grid_for(count, kThreads), kThreads>>>(count, f);
  check_launch(name);
}

// NaN test usable on host and device alike (IEEE comparisons: no fast math).
__host__ __device__ __forceinline__ bool is_nan(float x) { return x != x; }

// ---------------------------------------------------------------- validation

// ValueError unless arr holds at least `needed` elements.
void check_size(const char* name, const CudaArray& arr, int64_t needed);

// a * b, or ValueError naming `what` on int64 overflow or a negative factor.
int64_t checked_mul(int64_t a, int64_t b, const char* what);

// ValueError unless 0 <= value <= kIndexLimit.  The 32-bit-indexed kernels
// form indices up to a tile (< 2^16) past a checked size, which the margin
// below INT32_MAX keeps from overflowing.
constexpr int64_t kIndexLimit = INT32_MAX - (1 << 16);
void check_int32(const char* what, int64_t value);

// ---------------------------------------------------------------- fast division

// Division by a divisor fixed at launch, as a multiply-high and a shift
// (the method of PyTorch's IntDivider): exact for 0 <= n < 2^31 and
// 1 <= d < 2^31, which check_int32 guarantees for every use.  The divisor is
// set on the host; kernels receive it by value.
struct FastDiv {
  uint32_t d = 1, magic = 1, shift = 0;

  FastDiv() = default;
  explicit FastDiv(int64_t divisor) : d(static_cast<uint32_t>(divisor)) {
    if (divisor < 1 || divisor > INT32_MAX) throw std::invalid_argument("FastDiv divisor out of range");
    while ((uint64_t{1} << shift) < d) ++shift;
    magic = static_cast<uint32_t>(((uint64_t{1} << 32) * ((uint64_t{1} << shift) - d)) / d + 1);
  }

  __host__ __device__ __forceinline__ int div(int n) const {
#ifdef __CUDA_ARCH__
    uint32_t t = __umulhi(static_cast<uint32_t>(n), magic);
#else
    uint32_t t = static_cast<uint32_t>((uint64_t{static_cast<uint32_t>(n)} * magic) >> 32);
#endif
    return static_cast<int>((t + static_cast<uint32_t>(n)) >> shift);
  }
  // n = q * d + r: writes r, returns q.
  __host__ __device__ __forceinline__ int divmod(int n, int& r) const {
    int q = div(n);
    r = n - q * static_cast<int>(d);
    return q;
  }
};

// ---------------------------------------------------------------- registration

void register_memory(py::module_& m);
void register_elementwise(py::module_& m);
void register_matmul(py::module_& m);
void register_reduce(py::module_& m);
void register_conv(py::module_& m);
void register_upsample(py::module_& m);
void register_concat(py::module_& m);
void register_colorspace(py::module_& m);

}  // namespace needle_cuda
