// The GEMM operand policy of batched matmul (see gemm.cuh): z is the batch
// entry, A = a[z] (m x n), B = b[z] (n x p), C = out[z] (m x p), row-major.
#pragma once

#include "gemm.cuh"

namespace needle_cuda {

struct MatmulOp {
  const float* a;
  const float* b;
  float* out;
  int m, n, p;  // batch * (m*n, n*p and m*p) are checked to fit int32

  struct Col {
    int c;
  };
  __host__ __device__ int k_begin(int) const { return 0; }
  __host__ __device__ int k_end(int) const { return n; }
  __host__ __device__ Col col(int, int c) const { return {c}; }
  __host__ __device__ float load_a(int z, int r, int k) const { return load(a + (z * m + r) * n + k); }
  __host__ __device__ float load_b(int z, int k, const Col& col) const { return load(b + (z * n + k) * p + col.c); }
  __host__ __device__ void store(int z, int r, int c, float v) const { out[(z * m + r) * p + c] = v; }
};

}  // namespace needle_cuda
