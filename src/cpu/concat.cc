// Concat family: inputs k of shape (outer, widths[k]) side by side into
// (outer, sum(widths)), and the inverse split for the backward.  Concat along
// any axis reduces to this form (outer = product of the leading dimensions,
// widths = the inputs' sizes along the axis times the trailing dimensions).
// Threads split the outer rows; each row is one memcpy per input.
#include <omp.h>

#include <cstring>
#include <string>
#include <vector>

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "array.h"

namespace py = pybind11;

namespace needle {

// Checks the arrays against (outer, widths) and returns sum(widths).
static i64 check_concat(const std::vector<Array*>& arrays, i64 outer, const std::vector<i64>& widths,
                        const char* role) {
  if (arrays.size() != widths.size())
    fail(std::to_string(arrays.size()) + " " + role + " arrays but " + std::to_string(widths.size()) +
         " widths");
  require_at_least("outer", outer, 0);
  i64 total = 0;
  for (std::size_t k = 0; k < arrays.size(); ++k) {
    const std::string name = std::string(role) + "[" + std::to_string(k) + "]";
    if (arrays[k] == nullptr) fail(name + " is None");
    require_at_least("concat width", widths[k], 0);
    check_size(name.c_str(), *arrays[k], mul(outer, widths[k], "concat"));
    total = add(total, widths[k], "concat");
  }
  mul(outer, total, "concat");
  return total;
}

// Copies row r of every piece between its own array and the joined row.
template <class Copy>
static void for_each_piece(i64 outer, i64 total, const std::vector<i64>& widths, Copy copy) {
  std::vector<i64> start(widths.size());
  for (std::size_t k = 1; k < widths.size(); ++k) start[k] = start[k - 1] + widths[k - 1];
#pragma omp parallel for schedule(static) if (outer * total >= kParallelGrain)
  for (i64 r = 0; r < outer; ++r)
    for (std::size_t k = 0; k < widths.size(); ++k) copy(k, r, r * total + start[k]);
}

static void concat_forward(const std::vector<Array*>& inputs, Array& out, i64 outer,
                           const std::vector<i64>& widths) {
  const i64 total = check_concat(inputs, outer, widths, "inputs");
  check_size("out", out, outer * total);
  for (const Array* in : inputs)
    if (in == &out) fail("concat_forward: out must not be one of the inputs");
  for_each_piece(outer, total, widths, [&](std::size_t k, i64 r, i64 at) {
    std::memcpy(out.ptr + at, inputs[k]->ptr + r * widths[k], widths[k] * sizeof(float));
  });
}

static void concat_backward(const Array& dy, const std::vector<Array*>& outs, i64 outer,
                            const std::vector<i64>& widths) {
  const i64 total = check_concat(outs, outer, widths, "outs");
  check_size("dy", dy, outer * total);
  for (const Array* o : outs)
    if (o == &dy) fail("concat_backward: dy must not be one of the outputs");
  for_each_piece(outer, total, widths, [&](std::size_t k, i64 r, i64 at) {
    std::memcpy(outs[k]->ptr + r * widths[k], dy.ptr + at, widths[k] * sizeof(float));
  });
}

void register_concat(py::module_& m) {
  using release = py::call_guard<py::gil_scoped_release>;
  m.def("concat_forward", &concat_forward, py::arg("inputs"), py::arg("out"), py::arg("outer"),
        py::arg("widths"), release());
  m.def("concat_backward", &concat_backward, py::arg("dy"), py::arg("outs"), py::arg("outer"),
        py::arg("widths"), release());
}

}  // namespace needle
