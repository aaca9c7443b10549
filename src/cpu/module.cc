// ndarray_backend_cpu: the C++ backend of needle (contract.py lists every
// function).  This file holds the Array type, the shared argument checks,
// the runtime functions, ISA dispatch state and the module definition; each
// kernel family registers its own functions from its own file.
#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <unordered_map>

#include <pybind11/pybind11.h>

#include "array.h"
#include "simd.h"

namespace py = pybind11;

namespace needle {

void register_memory(py::module_& m);
void register_elementwise(py::module_& m);
void register_matmul(py::module_& m, py::module_& reference);
void register_reduce(py::module_& m);
void register_conv(py::module_& m, py::module_& reference);
void register_upsample(py::module_& m, py::module_& reference);
void register_concat(py::module_& m, py::module_& reference);
void register_colorspace(py::module_& m, py::module_& reference);

// ---------------------------------------------------------------- Array

static std::size_t padded_bytes(i64 count) {
  if (count > (INT64_MAX - static_cast<i64>(kAlignment)) / static_cast<i64>(sizeof(float)))
    fail("Array of " + std::to_string(count) + " floats is too large");
  const std::size_t bytes = static_cast<std::size_t>(std::max<i64>(count, 1)) * sizeof(float);
  return (bytes + kAlignment - 1) / kAlignment * kAlignment;
}

static float* aligned_floats(i64 count) {
  void* p = std::aligned_alloc(kAlignment, padded_bytes(count));
  if (p == nullptr) throw std::bad_alloc();
  return static_cast<float*>(p);
}

// Freed Array buffers of at least kMinPooled bytes, kept for reuse by exact
// size.  A training step allocates the same few dozen sizes every step; glibc
// maps each buffer beyond its mmap threshold afresh, and the kernels then pay
// a page fault per 4 KiB on first touch (a third of a memory-bound kernel's
// time at these sizes).  Bounded by kMaxCached; beyond that buffers go back
// to the system.
class BufferPool {
 public:
  static constexpr std::size_t kMinPooled = std::size_t(1) << 16;
  static constexpr std::size_t kMaxCached = std::size_t(2) << 30;

  float* take(i64 count) {
    const std::size_t bytes = padded_bytes(count);
    if (bytes >= kMinPooled) {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = free_.find(bytes);
      if (it != free_.end()) {
        float* p = it->second;
        free_.erase(it);
        cached_ -= bytes;
        return p;
      }
    }
    return aligned_floats(count);
  }

  void give(float* p, i64 count) {
    const std::size_t bytes = padded_bytes(count);
    if (bytes >= kMinPooled) {
      std::lock_guard<std::mutex> lock(mu_);
      if (cached_ + bytes <= kMaxCached) {
        free_.emplace(bytes, p);
        cached_ += bytes;
        return;
      }
    }
    std::free(p);
  }

 private:
  std::mutex mu_;
  std::unordered_multimap<std::size_t, float*> free_;
  std::size_t cached_ = 0;
};

static BufferPool& pool() {
  static BufferPool* p = new BufferPool;  // never destroyed: Arrays may outlive static teardown
  return *p;
}

Array::Array(i64 size_) {
  if (size_ < 0) fail("Array size must be >= 0, got " + std::to_string(size_));
  ptr = pool().take(size_);
  size = size_;
}

Array::~Array() { pool().give(ptr, size); }

Scratch::~Scratch() { std::free(ptr_); }

float* Scratch::get(i64 count) {
  if (count > capacity_) {
    float* fresh = aligned_floats(count);
    std::free(ptr_);
    ptr_ = fresh;
    capacity_ = count;
  }
  return ptr_;
}

// ---------------------------------------------------------------- checks

void fail(const std::string& message) { throw std::invalid_argument(message); }

void fail_index(const std::string& message) { throw std::out_of_range(message); }

i64 mul(i64 a, i64 b, const char* what) {
  i64 r;
  if (__builtin_mul_overflow(a, b, &r)) fail(std::string(what) + ": sizes overflow int64");
  return r;
}

i64 add(i64 a, i64 b, const char* what) {
  i64 r;
  if (__builtin_add_overflow(a, b, &r)) fail(std::string(what) + ": sizes overflow int64");
  return r;
}

i64 product(std::initializer_list<i64> xs, const char* what) {
  i64 r = 1;
  for (i64 x : xs) r = mul(r, x, what);
  return r;
}

void require_at_least(const char* name, i64 value, i64 minimum) {
  if (value < minimum)
    fail(std::string(name) + " must be >= " + std::to_string(minimum) + ", got " +
         std::to_string(value));
}

void check_size(const char* name, const Array& arr, i64 needed) {
  if (arr.size < needed)
    fail(std::string(name) + " holds " + std::to_string(arr.size) +
         " elements, the call needs " + std::to_string(needed));
}

const float* distinct_input(const Array& in, const Array& out, std::vector<float>& keep) {
  if (&in != &out) return in.ptr;
  keep.assign(in.ptr, in.ptr + in.size);
  return keep.data();
}

// ---------------------------------------------------------------- ISA dispatch

Isa detected_isa() {
  static const Isa isa = [] {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return Isa::avx512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Isa::avx2;
    return Isa::generic;
  }();
  return isa;
}

static Isa g_active_isa = detected_isa();

Isa active_isa() { return g_active_isa; }

void set_active_isa(Isa isa) {
  if (static_cast<int>(isa) > static_cast<int>(detected_isa()))
    fail(std::string("this CPU does not support ") + isa_name(isa));
  g_active_isa = isa;
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::avx512: return "avx512";
    case Isa::avx2: return "avx2";
    default: return "generic";
  }
}

static Isa parse_isa(const std::string& name) {
  for (Isa isa : {Isa::generic, Isa::avx2, Isa::avx512})
    if (name == isa_name(isa)) return isa;
  fail("unknown ISA '" + name + "' (expected generic, avx2 or avx512)");
}

}  // namespace needle

PYBIND11_MODULE(ndarray_backend_cpu, m) {
  using namespace needle;
  m.doc() = "needle's C++ CPU backend (the functions of needle/backend_ndarray/contract.py)";
  m.attr("__device_name__") = "cpu";
  m.attr("__tile_size__") = 8;

  py::class_<Array>(m, "Array", "A flat, uninitialised float32 buffer")
      .def(py::init<i64>(), py::arg("size"))
      .def_property_readonly("size", [](const Array& a) { return a.size; });

  m.def("set_num_threads", [](i64 n) {
    require_at_least("thread count", n, 1);
    omp_set_num_threads(static_cast<int>(std::min<i64>(n, 1 << 16)));
  });
  m.def("get_num_threads", [] { return omp_get_max_threads(); });
  m.def("synchronize", [] {});
  m.def("device_count", [] { return 1; });

  // Private (not part of the contract): which SGEMM micro-kernel runs.
  m.def("_isa", [] { return std::string(isa_name(active_isa())); });
  m.def("_detected_isa", [] { return std::string(isa_name(detected_isa())); });
  m.def("_set_isa", [](const std::string& name) { set_active_isa(parse_isa(name)); });

  // Plain portable C++ versions of the SGEMM and the four kernel families,
  // with the same signatures: what the tests validate each fast path against.
  py::module_ reference = m.def_submodule(
      "reference", "plain C++ reference kernels (same signatures as the fast ones), for tests");
  register_memory(m);
  register_elementwise(m);
  register_matmul(m, reference);
  register_reduce(m);
  register_conv(m, reference);
  register_upsample(m, reference);
  register_concat(m, reference);
  register_colorspace(m, reference);
}
