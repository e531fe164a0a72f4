// AVX-VNNI kernel set: the 256-bit kernels with one vpdpbusd (VEX) per 32-byte integer dot
// instead of maddubs + madd + add. Activation quantizers are the AVX2 ones.
#define MINNOW_DOT_AVXVNNI 1
#include "kernels/x86/gemm256_impl.h"
#include "kernels/x86/x86_kernels.h"

namespace minnow::kernels::detail {

void fill_avxvnni_kernels(KernelTable& table) {
  table.target = KernelTarget::kAvxVnni;
  fill_gemm256(table);
}

}  // namespace minnow::kernels::detail
