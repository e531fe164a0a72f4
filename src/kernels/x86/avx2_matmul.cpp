// AVX2 (+FMA, F16C) kernel set: the 256-bit kernels with maddubs/madd integer dots.
#include "kernels/x86/gemm256_impl.h"
#include "kernels/x86/x86_kernels.h"

namespace minnow::kernels::detail {

void fill_avx2_kernels(KernelTable& table) {
  table.target = KernelTarget::kAvx2;
  fill_gemm256(table);
  table.quantize_q8_0 = &quantize_q8_0_avx2;
  table.quantize_q8_k = &quantize_q8_k_avx2;
}

}  // namespace minnow::kernels::detail
