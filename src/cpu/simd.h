// Instruction-set dispatch for the CPU backend.
//
// The module is compiled for baseline x86-64 (no -march=native), so one .so
// built on an AVX-512 machine loads and runs on any x86-64 CPU.  Two
// mechanisms pick the widest ISA the running CPU has.  Plain loops that the
// compiler vectorizes on its own (element-wise ops, copies, the thin
// convolutions' vector loops) carry NEEDLE_CLONES: GCC's target_clones
// compiles one copy per ISA and an ifunc resolver chooses at load time, with
// no source duplication.  Two families instead have one function per ISA,
// marked __attribute__((target(...))), which active_isa() picks at run time
// with __builtin_cpu_supports: the SGEMM micro-kernels behind convolution
// and matmul, because register blocking (8x32 for AVX-512, 6x16 for
// AVX2+FMA) is chosen per ISA and changes the packing layout too; and the
// colour-space kernels, whose vector width is chosen per ISA so that their
// vectors stay in registers.  The private hook _set_isa lets the tests force
// a narrower path of those two on a wide machine, so every one is checked here.
#pragma once

#include <cstdint>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(NEEDLE_NO_CLONES)
#define NEEDLE_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define NEEDLE_CLONES
#endif

namespace needle {

enum class Isa { generic = 0, avx2 = 1, avx512 = 2 };

// The widest ISA this CPU supports.
Isa detected_isa();
// The ISA the micro-kernels currently use (detected unless forced narrower).
Isa active_isa();
// Force a narrower ISA (tests); throws std::invalid_argument if unsupported.
void set_active_isa(Isa isa);
const char* isa_name(Isa isa);

// Streaming (non-temporal) stores for copy-like kernels, defined in
// upsample.cc beside the vector code they are built from; concat.cc uses
// them too.  Whether a kernel that reads and writes floats_moved floats in
// all should stream its output (the arrays outgrow the cache):
bool streaming_pays(std::int64_t floats_moved);
// dst[0, n) = src[0, n), streamed where dst is vector-aligned.
void stream_copy(float* dst, const float* src, std::int64_t n);

}  // namespace needle
