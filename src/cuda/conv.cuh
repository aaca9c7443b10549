// Convolution as implicit GEMM: the three GEMM operand policies (gemm.cuh).
// x (n,c,h,w), weight (o,c,kh,kw), y and dy (n,o,ho,wo), all NCHW / OIHW.
// A "window index" k = (ci*kh + i)*kw + j runs over a filter's taps; an
// "output position" m = (b*ho + yo)*wo + xo over the output pixels of the
// batch; input tap (i, j) of output pixel (yo, xo) is the input pixel
// (yo*stride - pad + i, xo*stride - pad + j), zero when outside the image.
//
//   forward          C (o x n*ho*wo)  = W (o x c*kh*kw)  @ im2col(x)
//   backward_weight  C (o x c*kh*kw)  = dY (o x n*ho*wo) @ im2col(x)^T
//   backward_input   C (c x n*h*w)    = W^T (c x o*kh*kw) @ gather(dy):
//     input pixel (hi, wi) receives dy[b, oc, yo, xo] * w[oc, ci, i, j] for
//     every tap with hi + pad - i = yo*stride and wi + pad - j = xo*stride,
//     0 <= yo < ho, 0 <= xo < wo: an exact gather, no atomics, any stride.
//
// Each policy may split K over z (KSplit): z sums K indices
// [z*chunk, min(K, (z+1)*chunk)) and writes its partial result, laid out
// like the final one, at out + z*slice (conv.cu sums the slices).
#pragma once

#include "gemm.cuh"

namespace needle_cuda {

// Sizes of one convolution, validated on the host (conv.cu): every index
// formed below is non-negative where it is used and fits in int32.
struct ConvShape {
  int n, c, h, w, o, kh, kw, stride, pad, ho, wo;
  FastDiv div_taps;    // kh * kw
  FastDiv div_kw;      // kw
  FastDiv div_out_hw;  // ho * wo
  FastDiv div_wo;      // wo
  FastDiv div_in_hw;   // h * w
  FastDiv div_w;       // w
  FastDiv div_stride;  // stride

  __host__ __device__ int taps() const { return kh * kw; }
  __host__ __device__ int out_hw() const { return ho * wo; }
  __host__ __device__ int in_hw() const { return h * w; }
  // x[b, ci, hi, wi] when (hi, wi) lies inside the image, else 0 (zero padding).
  __host__ __device__ float input_at(const float* x, int b, int ci, int hi, int wi) const {
    return (hi >= 0 && hi < h && wi >= 0 && wi < w) ? load(x + ((b * c + ci) * h + hi) * w + wi) : 0.0f;
  }
};

// The K range of split z.
struct KSplit {
  int total;  // K
  int chunk;  // K indices per split, a multiple of kTileK
  __host__ __device__ int begin(int z) const { return z * chunk; }
  __host__ __device__ int end(int z) const {
    const int left = total - z * chunk;  // > 0: the host launches only non-empty splits
    return z * chunk + (left < chunk ? left : chunk);
  }
};

// Window index k -> (ci, i, j).
__host__ __device__ __forceinline__ void split_window(const ConvShape& s, int k, int& ci, int& i, int& j) {
  int ij = 0;
  ci = s.div_taps.divmod(k, ij);
  i = s.div_kw.divmod(ij, j);
}

// Output position m -> (b, yo, xo).
__host__ __device__ __forceinline__ void split_output(const ConvShape& s, int m, int& b, int& yo, int& xo) {
  int yx = 0;
  b = s.div_out_hw.divmod(m, yx);
  yo = s.div_wo.divmod(yx, xo);
}

// rows: output channels; columns: output positions; K: window indices.
struct ConvForwardOp {
  ConvShape s;
  const float* x;
  const float* weight;
  const float* bias;  // may be null; added by split 0
  float* out;         // y (n, o, ho, wo), or the slices of the split K
  KSplit split;
  int slice;

  struct Col {
    int b, hi0, wi0;  // image, and the input pixel under tap (0, 0)
  };
  __host__ __device__ int k_begin(int z) const { return split.begin(z); }
  __host__ __device__ int k_end(int z) const { return split.end(z); }
  __host__ __device__ Col col(int, int m) const {
    int b, yo, xo;
    split_output(s, m, b, yo, xo);
    return {b, yo * s.stride - s.pad, xo * s.stride - s.pad};
  }
  __host__ __device__ float load_a(int, int oc, int k) const { return load(weight + oc * split.total + k); }
  __host__ __device__ float load_b(int, int k, const Col& col) const {
    int ci, i, j;
    split_window(s, k, ci, i, j);
    return s.input_at(x, col.b, ci, col.hi0 + i, col.wi0 + j);
  }
  __host__ __device__ void store(int z, int oc, int m, float v) const {
    int yx = 0;
    const int b = s.div_out_hw.divmod(m, yx);
    out[z * slice + (b * s.o + oc) * s.out_hw() + yx] = v + (bias != nullptr && z == 0 ? load(bias + oc) : 0.0f);
  }
};

// rows: output channels; columns: window indices; K: output positions.
struct ConvBackwardWeightOp {
  ConvShape s;
  const float* x;
  const float* dy;
  float* out;  // dw (o, c, kh, kw), or the slices of the split K
  KSplit split;
  int slice;

  struct Col {
    int ci, i, j;
  };
  __host__ __device__ int k_begin(int z) const { return split.begin(z); }
  __host__ __device__ int k_end(int z) const { return split.end(z); }
  __host__ __device__ Col col(int, int k) const {
    Col col;
    split_window(s, k, col.ci, col.i, col.j);
    return col;
  }
  __host__ __device__ float load_a(int, int oc, int m) const {
    int yx = 0;
    const int b = s.div_out_hw.divmod(m, yx);
    return load(dy + (b * s.o + oc) * s.out_hw() + yx);
  }
  __host__ __device__ float load_b(int, int m, const Col& col) const {
    int b, yo, xo;
    split_output(s, m, b, yo, xo);
    return s.input_at(x, b, col.ci, yo * s.stride - s.pad + col.i, xo * s.stride - s.pad + col.j);
  }
  __host__ __device__ void store(int z, int oc, int k, float v) const {
    out[z * slice + oc * (s.c * s.taps()) + k] = v;
  }
};

// rows: input channels; columns: input pixels q = (b*h + hi)*w + wi;
// K: (oc, i, j) = (oc*kh + i)*kw + j.
struct ConvBackwardInputOp {
  ConvShape s;
  const float* dy;
  const float* weight;
  float* out;  // dx (n, c, h, w), or the slices of the split K
  KSplit split;
  int slice;

  struct Col {
    int b, hp, wp;  // image, and the input pixel's coordinates in the padded image
  };
  __host__ __device__ int k_begin(int z) const { return split.begin(z); }
  __host__ __device__ int k_end(int z) const { return split.end(z); }
  __host__ __device__ Col col(int, int q) const {
    int hw = 0, wi = 0;
    const int b = s.div_in_hw.divmod(q, hw);
    const int hi = s.div_w.divmod(hw, wi);
    return {b, hi + s.pad, wi + s.pad};
  }
  __host__ __device__ float load_a(int, int ci, int k) const {
    int ij = 0;
    const int oc = s.div_taps.divmod(k, ij);
    return load(weight + (oc * s.c + ci) * s.taps() + ij);
  }
  __host__ __device__ float load_b(int, int k, const Col& col) const {
    int oc, i, j;
    split_window(s, k, oc, i, j);  // same split, with oc in place of ci
    const int th = col.hp - i, tw = col.wp - j;  // = yo*stride, xo*stride when the tap is used
    if (th < 0 || tw < 0) return 0.0f;
    int rh = 0, rw = 0;
    const int yo = s.div_stride.divmod(th, rh), xo = s.div_stride.divmod(tw, rw);
    if (rh != 0 || rw != 0 || yo >= s.ho || xo >= s.wo) return 0.0f;
    return load(dy + ((col.b * s.o + oc) * s.ho + yo) * s.wo + xo);
  }
  __host__ __device__ void store(int z, int ci, int q, float v) const {
    int hw = 0;
    const int b = s.div_in_hw.divmod(q, hw);
    out[z * slice + (b * s.c + ci) * s.in_hw() + hw] = v;
  }
};

}  // namespace needle_cuda
