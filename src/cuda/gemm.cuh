// The tiled SGEMM core shared by matmul and the three implicit-GEMM
// convolutions:  C[r][c] = sum over k in [op.k_begin(z), op.k_end(z)) of
// A(r, k) * B(k, c),  for r < M, c < N, and z < Z (batch, or K split).
//
// An operand policy `Op` says where A, B and C live, so that convolution
// gathers its input on the fly instead of materialising im2col:
//   struct Op {
//     struct Col;                               per-column state, computed once per z
//     int k_begin(int z), k_end(int z);
//     Col col(int z, int c);                    c < N
//     float load_a(int z, int r, int k);           r < M, k in range
//     float load_b(int z, int k, const Col& col);  k in range
//     void store(int z, int r, int c, float v); r < M, c < N
//   };
// The kernel only calls them with in-range indices; outside, it uses 0.
//
// A block computes a BM x BN tile of C with (BM/8)*(BN/8) threads, each
// accumulating an 8 x 8 register block in fp32.  K advances in steps of
// kTileK: the next step's operands are loaded into registers while the
// current step is multiplied out of shared memory.  Thread (tx, ty) owns
// rows ty*4 + {0..3} and BM/2 + ty*4 + {0..3}, and columns likewise, so its
// shared-memory reads are float4s without bank conflicts.
//
// The per-thread steps are __host__ __device__ so that the tiling can be
// checked on a machine without a GPU by running them thread by thread.
#pragma once

#include "common.cuh"

namespace needle_cuda {

constexpr int kTileK = 8;

__host__ __device__ __forceinline__ float load(const float* p) {
#ifdef __CUDA_ARCH__
  return __ldg(p);
#else
  return *p;
#endif
}

template <int BM, int BN>
struct GemmTile {
  static_assert(BM % 8 == 0 && BN % 8 == 0, "tiles are made of 8 x 8 register blocks");
  static constexpr int kThreadsX = BN / 8;
  static constexpr int kThreads = (BM / 8) * (BN / 8);
  static constexpr int kALoads = BM * kTileK / kThreads;  // A elements each thread loads per step
  static constexpr int kBLoads = BN * kTileK / kThreads;
  static_assert(BM * kTileK % kThreads == 0 && BN * kTileK % kThreads == 0, "loads must split evenly");

  struct alignas(16) Shared {
    // A is stored transposed (a[k][r]) so that a thread's rows are one float4;
    // the 4 extra columns make the transposing stores hit distinct banks.
    float a[kTileK][BM + 4];
    float b[kTileK][BN];
  };

  // Offsets inside the tile of the i-th row / j-th column of a thread.
  static __host__ __device__ int row_of(int ty, int i) { return (i < 4 ? 0 : BM / 2 - 4) + ty * 4 + i; }
  static __host__ __device__ int col_of(int tx, int j) { return (j < 4 ? 0 : BN / 2 - 4) + tx * 4 + j; }
};

template <int BM, int BN, class Op>
struct GemmThread {
  using Tile = GemmTile<BM, BN>;
  int tid = 0, row0 = 0, col0 = 0;  // thread index; the tile's first row and column
  float acc[8][8];
  float ra[Tile::kALoads], rb[Tile::kBLoads];
  typename Op::Col cols[Tile::kBLoads];
  bool col_ok[Tile::kBLoads];

  // Load e of A covers tile element (idx / kTileK, idx % kTileK), of B
  // (idx / BN, idx % BN), with idx = tid + e * kThreads: consecutive threads
  // read consecutive k of A and consecutive columns of B.
  __host__ __device__ int load_index(int e) const { return tid + e * Tile::kThreads; }

  __host__ __device__ void begin(const Op& op, int z, int N) {
#pragma unroll
    for (int i = 0; i < 8; ++i)
#pragma unroll
      for (int j = 0; j < 8; ++j) acc[i][j] = 0.0f;
#pragma unroll
    for (int e = 0; e < Tile::kBLoads; ++e) {
      const int c = col0 + load_index(e) % BN;
      col_ok[e] = c < N;
      if (col_ok[e]) cols[e] = op.col(z, c);
    }
  }

  __host__ __device__ void fetch(const Op& op, int z, int M, int k0, int k_end) {
#pragma unroll
    for (int e = 0; e < Tile::kALoads; ++e) {
      const int r = row0 + load_index(e) / kTileK, k = k0 + load_index(e) % kTileK;
      ra[e] = (r < M && k < k_end) ? op.load_a(z, r, k) : 0.0f;
    }
#pragma unroll
    for (int e = 0; e < Tile::kBLoads; ++e) {
      const int k = k0 + load_index(e) / BN;
      rb[e] = (col_ok[e] && k < k_end) ? op.load_b(z, k, cols[e]) : 0.0f;
    }
  }

  __host__ __device__ void stage(typename Tile::Shared& s) const {
#pragma unroll
    for (int e = 0; e < Tile::kALoads; ++e) s.a[load_index(e) % kTileK][load_index(e) / kTileK] = ra[e];
#pragma unroll
    for (int e = 0; e < Tile::kBLoads; ++e) s.b[load_index(e) / BN][load_index(e) % BN] = rb[e];
  }

  __host__ __device__ void multiply(const typename Tile::Shared& s) {
    const int tx = tid % Tile::kThreadsX, ty = tid / Tile::kThreadsX;
#pragma unroll
    for (int kk = 0; kk < kTileK; ++kk) {
      const float4 a0 = *reinterpret_cast<const float4*>(&s.a[kk][Tile::row_of(ty, 0)]);
      const float4 a1 = *reinterpret_cast<const float4*>(&s.a[kk][Tile::row_of(ty, 4)]);
      const float4 b0 = *reinterpret_cast<const float4*>(&s.b[kk][Tile::col_of(tx, 0)]);
      const float4 b1 = *reinterpret_cast<const float4*>(&s.b[kk][Tile::col_of(tx, 4)]);
      const float av[8] = {a0.x, a0.y, a0.z, a0.w, a1.x, a1.y, a1.z, a1.w};
      const float bv[8] = {b0.x, b0.y, b0.z, b0.w, b1.x, b1.y, b1.z, b1.w};
#pragma unroll
      for (int i = 0; i < 8; ++i)
#pragma unroll
        for (int j = 0; j < 8; ++j) acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
    }
  }

  __host__ __device__ void finish(const Op& op, int z, int M, int N) const {
    const int tx = tid % Tile::kThreadsX, ty = tid / Tile::kThreadsX;
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const int r = row0 + Tile::row_of(ty, i);
      if (r >= M) continue;
#pragma unroll
      for (int j = 0; j < 8; ++j) {
        const int c = col0 + Tile::col_of(tx, j);
        if (c < N) op.store(z, r, c, acc[i][j]);
      }
    }
  }
};

// blockIdx.x enumerates the tiles of C (row-tile major), blockIdx.z strides over z.
template <int BM, int BN, class Op>
__global__ void __launch_bounds__(GemmTile<BM, BN>::kThreads) gemm_kernel(Op op, int M, int N, int Z) {
  using Tile = GemmTile<BM, BN>;
  __shared__ typename Tile::Shared smem;
  const int tiles_n = (N + BN - 1) / BN;
  GemmThread<BM, BN, Op> t;
  t.tid = threadIdx.x;
  t.row0 = static_cast<int>(blockIdx.x / tiles_n) * BM;
  t.col0 = static_cast<int>(blockIdx.x % tiles_n) * BN;
  for (int z = blockIdx.z; z < Z; z += gridDim.z) {
    const int k_begin = op.k_begin(z), k_end = op.k_end(z);
    t.begin(op, z, N);
    if (k_begin < k_end) t.fetch(op, z, M, k_begin, k_end);
    for (int k0 = k_begin; k0 < k_end; k0 += kTileK) {
      t.stage(smem);
      __syncthreads();
      if (k0 + kTileK < k_end) t.fetch(op, z, M, k0 + kTileK, k_end);
      t.multiply(smem);
      __syncthreads();  // everyone is done reading smem before the next stage
    }
    t.finish(op, z, M, N);
  }
}

// The block tiles compiled, by shape of C: large square, small square, and
// the two thin ones for C with at most 32 rows or columns.
enum class Tiles { k128x128, k64x64, k32x128, k128x32 };

inline Tiles pick_tiles(int64_t M, int64_t N, int64_t Z) {
  if (M <= 32 && N >= 128) return Tiles::k32x128;
  if (N <= 32 && M >= 128) return Tiles::k128x32;
  const int64_t big_tiles = (M + 127) / 128 * ((N + 127) / 128) * Z;
  if (M >= 128 && N >= 128 && big_tiles >= sm_count()) return Tiles::k128x128;
  return Tiles::k64x64;
}

struct TileDims {
  int64_t rows, cols;
};

inline TileDims tile_dims(Tiles t) {
  switch (t) {
    case Tiles::k128x128: return {128, 128};
    case Tiles::k32x128: return {32, 128};
    case Tiles::k128x32: return {128, 32};
    case Tiles::k64x64: break;
  }
  return {64, 64};
}

inline int64_t tile_count(Tiles t, int64_t M, int64_t N) {
  const TileDims d = tile_dims(t);
  return (M + d.rows - 1) / d.rows * ((N + d.cols - 1) / d.cols);
}

inline int tile_threads(Tiles t) {
  const TileDims d = tile_dims(t);
  return static_cast<int>(d.rows / 8 * (d.cols / 8));
}

template <int BM, int BN, class Op>
void launch_gemm_tiles(const Op& op, int M, int N, int Z) {
  const int64_t blocks = (int64_t{M} + BM - 1) / BM * ((int64_t{N} + BN - 1) / BN);
  const dim3 grid(static_cast<unsigned>(blocks), 1, static_cast<unsigned>(Z < 65535 ? Z : 65535));
  gemm_kernel<BM, BN, Op><<<grid, GemmTile<BM, BN>::kThreads>>>(op, M, N, Z);
  check_launch("gemm_kernel");
}

// Runs C = A B for the policy op; the caller has checked that every index
// the policy computes fits in int32 (so M * N < 2^31 and blocks fit grid.x).
template <class Op>
void launch_gemm(const Op& op, int64_t M, int64_t N, int64_t Z, Tiles tiles) {
  if (M == 0 || N == 0 || Z == 0) return;
  const int m = static_cast<int>(M), n = static_cast<int>(N), z = static_cast<int>(Z);
  switch (tiles) {
    case Tiles::k128x128: launch_gemm_tiles<128, 128>(op, m, n, z); break;
    case Tiles::k64x64: launch_gemm_tiles<64, 64>(op, m, n, z); break;
    case Tiles::k32x128: launch_gemm_tiles<32, 128>(op, m, n, z); break;
    case Tiles::k128x32: launch_gemm_tiles<128, 32>(op, m, n, z); break;
  }
}

}  // namespace needle_cuda
