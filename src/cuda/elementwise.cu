// Element-wise and scalar operations: one functor per arity, instantiated
// with a functor per operation.  Operands are compact buffers starting at a
// cudaMalloc'd (256-byte aligned) address, so each index covers a float4
// and only the last n % 4 elements go one by one.
//
// Semantics follow numpy on float32: IEEE division, NaN-propagating
// maximum, comparisons giving 1.0 / 0.0 (false for NaN), sign(NaN) = NaN.
// No __restrict__: out may be one of the operands.
#include <cmath>

#include "common.cuh"

namespace needle_cuda {
namespace {

struct Add { __host__ __device__ float operator()(float x, float y) const { return x + y; } };
struct Mul { __host__ __device__ float operator()(float x, float y) const { return x * y; } };
struct Div { __host__ __device__ float operator()(float x, float y) const { return x / y; } };
struct Pow { __host__ __device__ float operator()(float x, float y) const { return powf(x, y); } };
struct Maximum {
  __host__ __device__ float operator()(float x, float y) const { return (x > y || is_nan(x)) ? x : y; }
};
struct Eq { __host__ __device__ float operator()(float x, float y) const { return x == y ? 1.0f : 0.0f; } };
struct Ge { __host__ __device__ float operator()(float x, float y) const { return x >= y ? 1.0f : 0.0f; } };
struct Gt { __host__ __device__ float operator()(float x, float y) const { return x > y ? 1.0f : 0.0f; } };

struct Log { __host__ __device__ float operator()(float x) const { return logf(x); } };
struct Exp { __host__ __device__ float operator()(float x) const { return expf(x); } };
struct Tanh { __host__ __device__ float operator()(float x) const { return tanhf(x); } };
struct Sqrt { __host__ __device__ float operator()(float x) const { return sqrtf(x); } };
struct Abs { __host__ __device__ float operator()(float x) const { return fabsf(x); } };
struct Sign {
  __host__ __device__ float operator()(float x) const { return x > 0.0f ? 1.0f : (x < 0.0f ? -1.0f : x); }
};

// op(x, val): a binary functor with a scalar right operand.
template <class Op>
struct ScalarRight {
  float val;
  __host__ __device__ float operator()(float x) const { return Op()(x, val); }
};
// op(val, x): for scalar_rdiv.
template <class Op>
struct ScalarLeft {
  float val;
  __host__ __device__ float operator()(float x) const { return Op()(val, x); }
};

template <class F>
struct UnaryFn {
  const float* a;
  float* out;
  int64_t n;
  F f;
  __host__ __device__ void operator()(int64_t t) const {
    if (4 * t + 4 <= n) {
      const float4 v = reinterpret_cast<const float4*>(a)[t];
      reinterpret_cast<float4*>(out)[t] = make_float4(f(v.x), f(v.y), f(v.z), f(v.w));
    } else {
      for (int64_t i = 4 * t; i < n; ++i) out[i] = f(a[i]);
    }
  }
};

template <class F>
struct BinaryFn {
  const float* a;
  const float* b;
  float* out;
  int64_t n;
  F f;
  __host__ __device__ void operator()(int64_t t) const {
    if (4 * t + 4 <= n) {
      const float4 u = reinterpret_cast<const float4*>(a)[t], v = reinterpret_cast<const float4*>(b)[t];
      reinterpret_cast<float4*>(out)[t] = make_float4(f(u.x, v.x), f(u.y, v.y), f(u.z, v.z), f(u.w, v.w));
    } else {
      for (int64_t i = 4 * t; i < n; ++i) out[i] = f(a[i], b[i]);
    }
  }
};

template <class F>
void launch_unary(const CudaArray& a, CudaArray& out, F f) {
  check_size("out", out, a.size);
  launch_for_each((a.size + 3) / 4, UnaryFn<F>{a.ptr, out.ptr, a.size, f}, "element-wise unary");
}

template <class Op>
void ewise(const CudaArray& a, const CudaArray& b, CudaArray& out) {
  if (a.size != b.size)
    throw py::value_error("element-wise operands differ in size: " + std::to_string(a.size) + " vs " +
                          std::to_string(b.size));
  check_size("out", out, a.size);
  launch_for_each((a.size + 3) / 4, BinaryFn<Op>{a.ptr, b.ptr, out.ptr, a.size, Op()}, "element-wise binary");
}

template <class Op>
void scalar(const CudaArray& a, double val, CudaArray& out) {
  launch_unary(a, out, ScalarRight<Op>{static_cast<float>(val)});
}

template <class Op>
void unary(const CudaArray& a, CudaArray& out) {
  launch_unary(a, out, Op());
}

}  // namespace

void register_elementwise(py::module_& m) {
  auto ab = [&](const char* name, void (*fn)(const CudaArray&, const CudaArray&, CudaArray&)) {
    m.def(name, fn, py::arg("a"), py::arg("b"), py::arg("out"));
  };
  ab("ewise_add", &ewise<Add>);
  ab("ewise_mul", &ewise<Mul>);
  ab("ewise_div", &ewise<Div>);
  ab("ewise_pow", &ewise<Pow>);
  ab("ewise_maximum", &ewise<Maximum>);
  ab("ewise_eq", &ewise<Eq>);
  ab("ewise_ge", &ewise<Ge>);
  ab("ewise_gt", &ewise<Gt>);

  auto av = [&](const char* name, void (*fn)(const CudaArray&, double, CudaArray&)) {
    m.def(name, fn, py::arg("a"), py::arg("val"), py::arg("out"));
  };
  av("scalar_add", &scalar<Add>);
  av("scalar_mul", &scalar<Mul>);
  av("scalar_div", &scalar<Div>);
  av("scalar_rdiv", [](const CudaArray& a, double val, CudaArray& out) {
    launch_unary(a, out, ScalarLeft<Div>{static_cast<float>(val)});
  });
  av("scalar_power", &scalar<Pow>);
  av("scalar_maximum", &scalar<Maximum>);
  av("scalar_eq", &scalar<Eq>);
  av("scalar_ge", &scalar<Ge>);
  av("scalar_gt", &scalar<Gt>);

  auto a1 = [&](const char* name, void (*fn)(const CudaArray&, CudaArray&)) {
    m.def(name, fn, py::arg("a"), py::arg("out"));
  };
  a1("ewise_log", &unary<Log>);
  a1("ewise_exp", &unary<Exp>);
  a1("ewise_tanh", &unary<Tanh>);
  a1("ewise_sqrt", &unary<Sqrt>);
  a1("ewise_abs", &unary<Abs>);
  a1("ewise_sign", &unary<Sign>);
}

}  // namespace needle_cuda
