// Vector operations of the forward pass outside the matmuls: attention over an f16 KV cache,
// the gated-FFN activations and softmax. They are a small share of the flops but run over
// every element of every layer, so the exponentials and the f16 conversions must be
// vectorized: each operation has a scalar reference (vec_ref_*, the test oracle) and an AVX2 +
// F16C path, picked once from selected_kernel_target() like matmul (no dispatch in loops).
#pragma once

#include <cstdint>

#include "util/cpu_features.h"

namespace minnow::kernels {

using f16_t = uint16_t;  // IEEE half, as stored in GGUF and in the KV cache

struct VecOps {
  // Σ x[i]·y[i] with x in f16.
  float (*dot_f16)(const f16_t* x, const float* y, int64_t n);
  // y[i] += a·x[i] with x in f16.
  void (*axpy_f16)(int64_t n, float a, const f16_t* x, float* y);
  // y[i] = f16(x[i]), round to nearest even.
  void (*to_f16)(const float* x, f16_t* y, int64_t n);
  // x[i] = exp(x[i] - max); returns Σ of the results (the caller normalizes).
  float (*exp_shifted)(float* x, int64_t n, float max);
  // g[i] = silu(g[i])·u[i]  (SiLU-gated FFN: llama, qwen2, phi3).
  void (*silu_mul)(float* g, const float* u, int64_t n);
  // g[i] = gelu_tanh(g[i])·u[i]  (GELU-gated FFN: gemma).
  void (*gelu_mul)(float* g, const float* u, int64_t n);
  // y[i] = x[i]·w[i]·scale  (the second half of RMSNorm); x and y may be the same.
  void (*scale_mul)(const float* x, const float* w, float scale, float* y, int64_t n);
  // Σ x[i]² in double-free f32 with several accumulators.
  float (*sum_sq)(const float* x, int64_t n);
};

// The ops of the selected kernel target (AVX2 or scalar).
const VecOps& vec_ops();
// The ops of a given target, for tests; nullptr when this CPU cannot run it.
const VecOps* vec_ops(KernelTarget target);

}  // namespace minnow::kernels
