// Run-time detection of the x86 SIMD extensions the kernels can use, and the kernel target
// (the widest instruction set a fast path may use) derived from them.
//
// A feature counts as present only when the CPU reports it (cpuid) *and* the OS saves the
// matching register state on context switch (xgetbv): a CPU with AVX512 under an OS or
// hypervisor that does not enable ZMM state must not run AVX512 code.
#pragma once

#include <optional>
#include <string_view>

namespace minnow {

struct CpuFeatures {
  bool avx2 = false;
  bool fma = false;
  bool f16c = false;
  bool bmi2 = false;
  bool avxvnni = false;  // VEX-encoded vpdpbusd on 256-bit registers (Alder Lake, SPR...)
  bool avx512f = false;
  bool avx512bw = false;
  bool avx512vl = false;
  bool avx512dq = false;
  bool avx512vnni = false;
};

// Detected once and cached; safe to call from any thread.
const CpuFeatures& cpu_features();

// The kernel targets, in order of preference:
//   kScalar  - portable C++
//   kAvx2    - AVX2 + FMA + F16C + BMI2 (Haswell and later)
//   kAvxVnni - kAvx2 + AVX-VNNI (vpdpbusd on ymm)
//   kAvx512  - kAvx2 + AVX512 F/BW/VL/DQ/VNNI (vpdpbusd on zmm)
// kAvx512 does not require AVX-VNNI (Ice Lake / Zen 4 have AVX512-VNNI without it), so a
// CPU may support kAvx512 but not kAvxVnni.
enum class KernelTarget { kScalar = 0, kAvx2 = 1, kAvxVnni = 2, kAvx512 = 3 };
constexpr int kNumKernelTargets = 4;

std::string_view kernel_target_name(KernelTarget target);  // "scalar", "avx2", ...
std::optional<KernelTarget> kernel_target_from_name(std::string_view name);

// Whether this CPU (and OS) can run code compiled for `target`.
bool cpu_supports(KernelTarget target);

// The widest supported target, lowered to $MINNOW_KERNELS when that names a supported
// target (scalar|avx2|avxvnni|avx512). Asking for a target the CPU lacks falls back to the
// widest supported one below it; an unknown name is ignored. Read once and cached.
KernelTarget selected_kernel_target();

// The same choice without the cache, for tests: `env_value` plays the role of $MINNOW_KERNELS
// (nullptr = unset).
KernelTarget choose_kernel_target(const CpuFeatures& cpu, const char* env_value);
bool supports(const CpuFeatures& cpu, KernelTarget target);

}  // namespace minnow
