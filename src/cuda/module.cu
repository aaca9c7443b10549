// The ndarray_backend_cuda module: the Array class, the runtime functions,
// errors, device memory, and the registration of every kernel family.
//
// Importing the module touches no CUDA API, so it imports (and
// device_count() answers 0) on a machine without a GPU or driver.
//
// Memory comes from the stream-ordered allocator (cudaMallocAsync on the
// default stream) with its release threshold lifted: freed blocks stay in
// the pool and are reused without a device-wide synchronisation, which a
// cudaFree per temporary array would cost.  Every kernel and copy runs on
// the legacy default stream, so pool reuse is ordered with all of them.
#include <cstdlib>

#include "common.cuh"

namespace needle_cuda {

[[noreturn]] void throw_cuda_error(cudaError_t err, const char* call, const char* file, int line) {
  throw std::runtime_error(std::string("CUDA error: ") + cudaGetErrorString(err) + " (" +
                           cudaGetErrorName(err) + ") in " + call + " at " + file + ":" +
                           std::to_string(line));
}

void check_launch(const char* kernel) {
  static const bool sync_each = [] {
    const char* env = std::getenv("NEEDLE_CUDA_SYNC");
    return env != nullptr && std::string(env) != "0";
  }();
  cudaError_t err = cudaGetLastError();
  if (err == cudaSuccess && sync_each) err = cudaDeviceSynchronize();
  if (err != cudaSuccess)
    throw std::runtime_error(std::string("CUDA error in kernel ") + kernel + ": " +
                             cudaGetErrorString(err) + " (" + cudaGetErrorName(err) + ")");
}

int sm_count() {
  static int count = 0;
  if (count == 0) {
    int dev = 0;
    CUDA_CHECK(cudaGetDevice(&dev));
    CUDA_CHECK(cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, dev));
  }
  return count;
}

int grid_for(int64_t n, int threads) {
  int64_t blocks = (n + threads - 1) / threads;
  int64_t cap = int64_t{sm_count()} * 16;
  if (blocks > cap) blocks = cap;
  return blocks < 1 ? 1 : static_cast<int>(blocks);
}

void check_size(const char* name, const CudaArray& arr, int64_t needed) {
  if (arr.size < needed)
    throw py::value_error(std::string(name) + " holds " + std::to_string(arr.size) +
                          " elements, the call needs " + std::to_string(needed));
}

int64_t checked_mul(int64_t a, int64_t b, const char* what) {
  int64_t r = 0;
  if (a < 0 || b < 0 || __builtin_mul_overflow(a, b, &r))
    throw py::value_error(std::string(what) + ": bad or overflowing size " + std::to_string(a) +
                          " * " + std::to_string(b));
  return r;
}

void check_int32(const char* what, int64_t value) {
  if (value < 0 || value > kIndexLimit)
    throw py::value_error(std::string(what) + " = " + std::to_string(value) +
                          " is outside the range of the CUDA kernels' 32-bit indices");
}

// ---------------------------------------------------------------- device memory

namespace {

// 1 when the device supports memory pools (set up on first use), 0 when not.
bool use_pool() {
  static int state = -1;
  if (state < 0) {
    int dev = 0, supported = 0;
    CUDA_CHECK(cudaGetDevice(&dev));
    CUDA_CHECK(cudaDeviceGetAttribute(&supported, cudaDevAttrMemoryPoolsSupported, dev));
    if (supported) {
      cudaMemPool_t pool;
      CUDA_CHECK(cudaDeviceGetDefaultMemPool(&pool, dev));
      uint64_t keep_all = UINT64_MAX;
      CUDA_CHECK(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep_all));
    }
    state = supported ? 1 : 0;
  }
  return state == 1;
}

cudaError_t try_alloc(void** p, size_t bytes) {
  return use_pool() ? cudaMallocAsync(p, bytes, 0) : cudaMalloc(p, bytes);
}

// Never throws: at interpreter exit the runtime may already be unloading.
// A failure is cleared so that the next launch check does not report it.
void release(void* p) noexcept {
  cudaError_t err = use_pool() ? cudaFreeAsync(p, 0) : cudaFree(p);
  if (err != cudaSuccess) cudaGetLastError();
}

float* device_alloc(int64_t size) {
  size_t bytes = static_cast<size_t>(checked_mul(size, sizeof(float), "Array size"));
  void* p = nullptr;
  cudaError_t err = try_alloc(&p, bytes);
  if (err == cudaErrorMemoryAllocation && use_pool()) {
    // The pool may hold freed blocks of other sizes: return them and retry once.
    cudaGetLastError();
    int dev = 0;
    cudaMemPool_t pool;
    CUDA_CHECK(cudaDeviceSynchronize());
    CUDA_CHECK(cudaGetDevice(&dev));
    CUDA_CHECK(cudaDeviceGetDefaultMemPool(&pool, dev));
    CUDA_CHECK(cudaMemPoolTrimTo(pool, 0));
    err = try_alloc(&p, bytes);
  }
  if (err == cudaErrorMemoryAllocation) {
    cudaGetLastError();
    throw OutOfMemory("CUDA out of memory: cannot allocate an Array of " + std::to_string(size) +
                      " float32 elements (" + std::to_string(bytes >> 20) + " MiB)");
  }
  CUDA_CHECK(err);
  // The kernels' float4 accesses start at Array bases: this is their guarantee.
  if (reinterpret_cast<uintptr_t>(p) % 16 != 0) {
    release(p);
    throw std::runtime_error("device allocation not 16-byte aligned");
  }
  return static_cast<float*>(p);
}

}  // namespace

CudaArray::CudaArray(int64_t n) {
  if (n < 0) throw py::value_error("Array size must be >= 0, got " + std::to_string(n));
  if (n > 0) ptr = device_alloc(n);
  size = n;
}

CudaArray::~CudaArray() {
  if (ptr != nullptr) release(ptr);
}

// ---------------------------------------------------------------- runtime functions

namespace {

int device_count() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // no driver or no device: not an error, just none
    return 0;
  }
  return count;
}

void set_num_threads(int64_t n) {
  if (n < 1) throw py::value_error("thread count must be >= 1, got " + std::to_string(n));
}

}  // namespace

}  // namespace needle_cuda

PYBIND11_MODULE(ndarray_backend_cuda, m) {
  using namespace needle_cuda;
  m.doc() = "needle's CUDA backend: every function of needle/backend_ndarray/contract.py";
  m.attr("__device_name__") = "cuda";
  // The edge of the SGEMM block tile (informational, as in the course's backends).
  m.attr("__tile_size__") = 128;

  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const OutOfMemory& e) {
      PyErr_SetString(PyExc_MemoryError, e.what());
    }
  });

  py::class_<CudaArray>(m, "Array", "A flat float32 buffer in GPU memory.")
      .def(py::init<int64_t>(), py::arg("size"))
      .def_property_readonly("size", [](const CudaArray& a) { return a.size; });

  m.def("set_num_threads", &set_num_threads, py::arg("n"),
        "Accepted for the contract; the GPU's parallelism is not set by host threads.");
  m.def("get_num_threads", [] { return 1; });
  m.def("synchronize", [] { CUDA_CHECK(cudaDeviceSynchronize()); },
        "Wait for every queued kernel; raises the first asynchronous error.");
  m.def("device_count", &device_count, "CUDA devices present; 0 without a driver or GPU.");

  register_memory(m);
  register_elementwise(m);
  register_matmul(m);
  register_reduce(m);
  register_conv(m);
  register_upsample(m);
  register_concat(m);
  register_colorspace(m);
}
