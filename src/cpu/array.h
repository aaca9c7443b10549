// The flat float32 buffer every kernel works on, and the argument checks
// every kernel runs before touching memory (contract.py: sizes are checked,
// views must stay inside their buffer, errors are Python exceptions).
// std::invalid_argument becomes ValueError, std::out_of_range IndexError.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace needle {

using i64 = std::int64_t;

// Buffers are 64-byte aligned so that packed and streamed data start on a
// cache line (and on a full AVX-512 register).
constexpr std::size_t kAlignment = 64;

struct Array {
  explicit Array(i64 size);
  ~Array();
  Array(const Array&) = delete;
  Array& operator=(const Array&) = delete;

  float* ptr = nullptr;
  i64 size = 0;
};

// A 64-byte aligned scratch buffer that grows but never shrinks; one per
// thread (thread_local) for packing and temporaries.
class Scratch {
 public:
  Scratch() = default;
  ~Scratch();
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  float* get(i64 count);

 private:
  float* ptr_ = nullptr;
  i64 capacity_ = 0;
};

[[noreturn]] void fail(const std::string& message);        // ValueError
[[noreturn]] void fail_index(const std::string& message);  // IndexError

// Overflow-checked int64 arithmetic (ValueError naming `what` on overflow).
i64 mul(i64 a, i64 b, const char* what);
i64 add(i64 a, i64 b, const char* what);
i64 product(std::initializer_list<i64> xs, const char* what);

// ValueError unless value >= minimum.
void require_at_least(const char* name, i64 value, i64 minimum);
// ValueError unless `arr` holds at least `needed` elements.
void check_size(const char* name, const Array& arr, i64 needed);

// A strided view (shape, strides, offset) of a buffer, checked and reduced
// to the fewest dimensions that visit the same elements in the same order.
struct View {
  std::vector<i64> shape;    // collapsed; never empty
  std::vector<i64> strides;  // collapsed, same length as shape
  i64 offset = 0;
  i64 size = 0;               // number of elements (product of the shape)
  bool overlapping = false;   // some element is reached twice
};

// Validates lengths, non-negative dims and that every reachable index lies
// in [0, buffer_size); IndexError when the view leaves the buffer.
View make_view(const std::vector<i64>& shape, const std::vector<i64>& strides, i64 offset,
               i64 buffer_size);

// Run a loop in parallel only when it has at least this much work (elements
// touched); below it, waking the OpenMP team costs more than it saves.
constexpr i64 kParallelGrain = 1 << 15;

// `in` itself, or a private copy of it when it is the same buffer as `out`
// (kernels whose output would overwrite inputs they still have to read).
const float* distinct_input(const Array& in, const Array& out, std::vector<float>& keep);

}  // namespace needle
