// Scalar reference conversions between f32 and every supported tensor type. These are the
// oracle that every fast path (x86/, dispatch) is tested against; they favour clarity over
// speed. Block layouts are in quant_blocks.h.
#pragma once

#include <cstdint>

#include "gguf/tensor_type.h"
#include "kernels/quant_blocks.h"

namespace minnow::kernels {

// IEEE half <-> float, round-to-nearest-even, NaN/Inf/subnormals preserved.
float fp16_to_fp32(f16_bits h);
f16_bits fp32_to_fp16(float f);
// bfloat16 <-> float, round-to-nearest-even, NaN kept quiet.
float bf16_to_fp32(uint16_t h);
uint16_t fp32_to_bf16(float f);

bool has_reference_dequantize(TensorType type);
bool has_reference_quantize(TensorType type);

// n must be a multiple of the type's block size. src/dst are rows in GGUF byte layout.
void dequantize_row_ref(TensorType type, const void* src, float* dst, int64_t n);
void quantize_row_ref(TensorType type, const float* src, void* dst, int64_t n);

}  // namespace minnow::kernels
