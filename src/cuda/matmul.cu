// Batched matmul: out[k] = a[k] @ b[k], a (batch, m, n), b (batch, n, p),
// on the tiled SGEMM core (gemm.cuh) with one z per batch entry.
#include "gemm.cuh"
#include "matmul.cuh"

namespace needle_cuda {
namespace {

void matmul(const CudaArray& a, const CudaArray& b, CudaArray& out, int64_t batch, int64_t m, int64_t n,
            int64_t p) {
  if (batch < 0 || m < 0 || n < 0 || p < 0)
    throw py::value_error("bad matmul sizes batch=" + std::to_string(batch) + " m=" + std::to_string(m) +
                          " n=" + std::to_string(n) + " p=" + std::to_string(p));
  const int64_t a_size = checked_mul(checked_mul(batch, m, "matmul"), n, "matmul");
  const int64_t b_size = checked_mul(checked_mul(batch, n, "matmul"), p, "matmul");
  const int64_t out_size = checked_mul(checked_mul(batch, m, "matmul"), p, "matmul");
  check_size("a", a, a_size);
  check_size("b", b, b_size);
  check_size("out", out, out_size);
  check_int32("matmul a size", a_size);
  check_int32("matmul b size", b_size);
  check_int32("matmul out size", out_size);
  const MatmulOp op{a.ptr, b.ptr, out.ptr, static_cast<int>(m), static_cast<int>(n), static_cast<int>(p)};
  launch_gemm(op, m, p, batch, pick_tiles(m, p, batch));
}

}  // namespace

void register_matmul(py::module_& m) {
  m.def("matmul", &matmul, py::arg("a"), py::arg("b"), py::arg("out"), py::arg("batch"), py::arg("m"),
        py::arg("n"), py::arg("p"));
}

}  // namespace needle_cuda
