// Instruction-set dispatch for the CPU backend.
//
// The module is compiled for baseline x86-64 (no -march=native), so one .so
// built on an AVX-512 machine loads and runs on any x86-64 CPU.  Two
// mechanisms pick the widest ISA the running CPU has.  Plain loops that the
// compiler vectorizes on its own (element-wise ops, copies) carry
// NEEDLE_CLONES: GCC's target_clones compiles one copy per ISA and an ifunc
// resolver chooses at load time, with no source duplication.  The SGEMM
// micro-kernels behind convolution and matmul are written with intrinsics in
// functions marked __attribute__((target(...))), because register blocking
// (8x32 for AVX-512, 6x16 for AVX2+FMA) is chosen per ISA and changes the
// packing layout too; active_isa() picks one of them at run time with
// __builtin_cpu_supports.  The private hook _set_isa lets the tests force a
// narrower kernel on a wide machine, so every path is checked here.
#pragma once

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

}  // namespace needle
