// The blocked SGEMM behind matmul and convolution.
//
// C (M x N) = A (M x K) * B (K x N), with A and B never read in place: the
// GEMM asks a packer for each block in its own panel layout (MR rows of A
// interleaved, NR columns of B interleaved).  That is what lets convolution
// be an implicit GEMM: the B packer of conv.cc gathers im2col windows
// straight from the image, so no im2col matrix is ever materialised.
#pragma once

#include "array.h"

namespace needle {

// The largest micro-kernel tile of any ISA: packers may size buffers by it.
constexpr int kMaxMR = 8, kMaxNR = 32;

struct PackA {
  virtual ~PackA() = default;
  // dst[kk * mr + ii] = A(i0 + ii, k0 + kk) for ii < rows, kk < kc; zero for rows <= ii < mr.
  virtual void pack(i64 i0, i64 rows, i64 k0, i64 kc, int mr, float* dst) const = 0;
};

struct PackB {
  virtual ~PackB() = default;
  // dst[kk * nr + jj] = B(k0 + kk, j0 + jj) for jj < cols, kk < kc; zero for cols <= jj < nr.
  virtual void pack(i64 k0, i64 kc, i64 j0, i64 cols, int nr, float* dst) const = 0;
  // A B that is zero on whole blocks (a convolution's taps that fall in the
  // padding) says so here, and the GEMM skips those blocks' products.  K
  // blocks never straddle a multiple of k_segment() (when nonzero), so that
  // a block covers whole segments of K that are zero together.
  virtual i64 k_segment() const { return 0; }
  virtual bool zero(i64 /*k0*/, i64 /*kc*/, i64 /*j0*/, i64 /*cols*/) const { return false; }
};

// A(i, k) = p[(k / seg) * seg_stride + i * row_stride + k % seg]: a row-major
// matrix (seg = K), or the rows of several images side by side along K
// (conv backward-weight reads dy (n, o, P) as o x (n * P) this way).
struct SegmentedA final : PackA {
  SegmentedA(const float* p, i64 row_stride, i64 seg, i64 seg_stride)
      : p(p), row_stride(row_stride), seg(seg), seg_stride(seg_stride) {}
  void pack(i64 i0, i64 rows, i64 k0, i64 kc, int mr, float* dst) const override;
  const float* p;
  i64 row_stride, seg, seg_stride;
};

// B(k, j) = p[(j / seg) * seg_stride + k * row_stride + j % seg]: a row-major
// matrix (seg = N), or several images' planes side by side along N (conv
// backward-input reads dy (n, o, P) as o x (n * P) this way).
struct SegmentedB final : PackB {
  SegmentedB(const float* p, i64 row_stride, i64 seg, i64 seg_stride)
      : p(p), row_stride(row_stride), seg(seg), seg_stride(seg_stride) {}
  void pack(i64 k0, i64 kc, i64 j0, i64 cols, int nr, float* dst) const override;
  const float* p;
  i64 row_stride, seg, seg_stride;
};

// dst (cols x rows blocks) = src (rows x cols blocks) transposed, each block
// `block` contiguous floats, where src row r starts at src + r * src_stride
// and dst row j at dst + j * dst_stride.  Single floats (block 1) go through
// 8 x 8 register tiles where the CPU has AVX2.
void transpose_blocks(const float* src, i64 rows, i64 cols, i64 block, i64 src_stride, float* dst,
                      i64 dst_stride);
// dst[j * dst_stride + i] = rows[i][j] for i < 8, j < len: eight rows from
// anywhere in memory, transposed (the same register tiles).
void transpose_rows8(const float* const* rows, i64 len, float* dst, i64 dst_stride);

// Where C lives: column j is a point (img, y, x) of an images x height x width
// grid, and C(i, j) = c[i * row_stride + img * img_stride + base + y * y_stride
// + x * x_stride].  A plain row-major matrix is one image of height 1.
struct GridC {
  float* c;
  i64 row_stride;
  i64 img_stride, height, width, base, y_stride, x_stride;
  void col_offsets(i64 j0, i64 cols, i64* dst) const;
};

GridC row_major_c(float* c, i64 n);

// C = A * B (+ row_init[i] on every element of row i when row_init is not
// null).  K == 0 writes row_init (or zeros).  `parallel` spreads the work
// over the OpenMP threads; pass false when called from a parallel region.
void gemm(i64 M, i64 N, i64 K, const PackA& a, const PackB& b, const GridC& c,
          const float* row_init, bool parallel);

}  // namespace needle
