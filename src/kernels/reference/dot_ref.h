// Scalar reference of the dot products behind matmul: one weight row (GGUF layout) against one
// quantized activation row, summed exactly in integers per block and combined with the block
// scales in float. This is the oracle the fast kernels are tested against (they see the same
// quantized activations, so they must agree to float rounding) and the portable fallback.
#pragma once

#include <cstdint>

#include "gguf/tensor_type.h"

namespace minnow::kernels {

bool has_dot_ref(TensorType weight_type);

// dot(w_row, act_row) over n elements. act_row is in activation_type(weight_type) layout
// (matmul.h): Q8_0 blocks, Q8_K blocks, or f32 for float weights. n must be a multiple of
// the block sizes of both.
float dot_ref(TensorType weight_type, int64_t n, const void* w_row, const void* act_row);

// Quantizes an activation row of n floats into activation_type(weight_type) blocks with the
// reference quantizers (for float weight types, copies x).
void quantize_activation_ref(TensorType weight_type, const float* x, int64_t n, void* act_row);

}  // namespace minnow::kernels
