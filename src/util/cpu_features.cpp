#include "util/cpu_features.h"

#include <cstdint>
#include <cstdlib>
#include <string>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define MINNOW_X86 1
#endif

namespace minnow {
namespace {

#ifdef MINNOW_X86
struct Regs {
  uint32_t eax = 0, ebx = 0, ecx = 0, edx = 0;
};

Regs cpuid(uint32_t leaf, uint32_t subleaf) {
  Regs r;
  __cpuid_count(leaf, subleaf, r.eax, r.ebx, r.ecx, r.edx);
  return r;
}

// XCR0: which register states the OS saves. Read with the xgetbv instruction, encoded by
// hand so that this file needs no -mxsave flag.
uint64_t xgetbv0() {
  uint32_t lo = 0, hi = 0;
  __asm__ volatile(".byte 0x0f, 0x01, 0xd0" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<uint64_t>(hi) << 32) | lo;
}

bool bit(uint32_t reg, int n) { return (reg >> n) & 1u; }
#endif

CpuFeatures detect() {
  CpuFeatures f;
#ifdef MINNOW_X86
  uint32_t max_leaf = cpuid(0, 0).eax;
  if (max_leaf < 1) return f;
  Regs l1 = cpuid(1, 0);
  bool osxsave = bit(l1.ecx, 27);
  bool avx = bit(l1.ecx, 28);
  if (!osxsave || !avx) return f;
  uint64_t xcr0 = xgetbv0();
  bool ymm_state = (xcr0 & 0x6) == 0x6;    // SSE (bit 1) + AVX (bit 2)
  bool zmm_state = (xcr0 & 0xe6) == 0xe6;  // + opmask (5), ZMM_Hi256 (6), Hi16_ZMM (7)
  if (!ymm_state) return f;

  f.fma = bit(l1.ecx, 12);
  f.f16c = bit(l1.ecx, 29);
  if (max_leaf >= 7) {
    Regs l7 = cpuid(7, 0);
    f.avx2 = bit(l7.ebx, 5);
    f.bmi2 = bit(l7.ebx, 8);
    if (zmm_state) {
      f.avx512f = bit(l7.ebx, 16);
      f.avx512dq = bit(l7.ebx, 17);
      f.avx512bw = bit(l7.ebx, 30);
      f.avx512vl = bit(l7.ebx, 31);
      f.avx512vnni = bit(l7.ecx, 11);
    }
    if (l7.eax >= 1) {
      Regs l71 = cpuid(7, 1);
      f.avxvnni = bit(l71.eax, 4);
    }
  }
#endif
  return f;
}

}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = detect();
  return features;
}

std::string_view kernel_target_name(KernelTarget target) {
  switch (target) {
    case KernelTarget::kScalar:
      return "scalar";
    case KernelTarget::kAvx2:
      return "avx2";
    case KernelTarget::kAvxVnni:
      return "avxvnni";
    case KernelTarget::kAvx512:
      return "avx512";
  }
  return "unknown";
}

std::optional<KernelTarget> kernel_target_from_name(std::string_view name) {
  for (int i = 0; i < kNumKernelTargets; ++i) {
    auto t = static_cast<KernelTarget>(i);
    if (kernel_target_name(t) == name) return t;
  }
  return std::nullopt;
}

bool supports(const CpuFeatures& cpu, KernelTarget target) {
  bool avx2 = cpu.avx2 && cpu.fma && cpu.f16c && cpu.bmi2;
  switch (target) {
    case KernelTarget::kScalar:
      return true;
    case KernelTarget::kAvx2:
      return avx2;
    case KernelTarget::kAvxVnni:
      return avx2 && cpu.avxvnni;
    case KernelTarget::kAvx512:
      return avx2 && cpu.avx512f && cpu.avx512bw && cpu.avx512vl && cpu.avx512dq && cpu.avx512vnni;
  }
  return false;
}

bool cpu_supports(KernelTarget target) { return supports(cpu_features(), target); }

KernelTarget choose_kernel_target(const CpuFeatures& cpu, const char* env_value) {
  int best = 0;
  for (int i = kNumKernelTargets - 1; i > 0; --i) {
    if (supports(cpu, static_cast<KernelTarget>(i))) {
      best = i;
      break;
    }
  }
  if (env_value != nullptr) {
    if (auto wanted = kernel_target_from_name(env_value)) {
      // Lower to the requested target, or the widest supported one below it.
      for (int i = static_cast<int>(*wanted); i >= 0; --i) {
        if (i <= best && supports(cpu, static_cast<KernelTarget>(i)))
          return static_cast<KernelTarget>(i);
      }
    }
  }
  return static_cast<KernelTarget>(best);
}

KernelTarget selected_kernel_target() {
  static const KernelTarget target =
      choose_kernel_target(cpu_features(), std::getenv("MINNOW_KERNELS"));
  return target;
}

}  // namespace minnow
