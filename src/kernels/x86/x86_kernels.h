// Entry points shared between the x86 kernel files (each compiled for its own target).
#pragma once

#include <cstdint>

#include "kernels/matmul_kernels.h"

namespace minnow::kernels::detail {

// AVX2 activation quantizers (x86/avx2_quantize.cpp), bit-identical to the reference
// quantize_row_ref(Q8_0 / Q8_K): same f32 operations, same rounding (ties away from zero for
// Q8_0, to even for Q8_K), same clamping. Inputs are expected to be finite.
// Q8_0 is written in the transposed layout (Q8Layout::kTransposed).
void quantize_q8_0_avx2(const float* x, int64_t cols, int64_t side_stride, uint8_t* q, float* d,
                        float* s, int32_t* sum);
void quantize_q8_k_avx2(const float* x, int64_t cols, uint8_t* q);

}  // namespace minnow::kernels::detail
