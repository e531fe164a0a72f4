// AVX512 kernel set: the 256-bit kernels compiled with AVX512VL + VNNI, so they use the
// EVEX vpdpbusd and 32 vector registers (larger register tiles for prefill).
#define MINNOW_DOT_AVX512VNNI 1
#include "kernels/x86/gemm256_impl.h"
#include "kernels/x86/x86_kernels.h"

namespace minnow::kernels::detail {

void fill_avx512_kernels(KernelTable& table) {
  table.target = KernelTarget::kAvx512;
  fill_gemm256(table);
}

}  // namespace minnow::kernels::detail
