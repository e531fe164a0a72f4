// Scalar references of the vector ops (vec.h) and the dispatch to the fast ones.
#include "kernels/vec.h"

#include <cmath>

#include "kernels/quants.h"

namespace minnow::kernels {
namespace detail {
void fill_avx2_vec_ops(VecOps& ops);  // x86/avx2_vec.cpp
}

namespace {

float dot_f16_ref(const f16_t* x, const float* y, int64_t n) {
  float s = 0;
  for (int64_t i = 0; i < n; ++i) s += fp16_to_fp32(x[i]) * y[i];
  return s;
}

void axpy_f16_ref(int64_t n, float a, const f16_t* x, float* y) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * fp16_to_fp32(x[i]);
}

void to_f16_ref(const float* x, f16_t* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = fp32_to_fp16(x[i]);
}

float exp_shifted_ref(float* x, int64_t n, float max) {
  float sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - max);
    sum += x[i];
  }
  return sum;
}

void silu_mul_ref(float* g, const float* u, int64_t n) {
  for (int64_t i = 0; i < n; ++i) g[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
}

// GELU with the tanh approximation, as Gemma was trained:
// 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
void gelu_mul_ref(float* g, const float* u, int64_t n) {
  constexpr float kSqrt2OverPi = 0.7978845608028654f;
  for (int64_t i = 0; i < n; ++i) {
    const float x = g[i];
    g[i] = 0.5f * x * (1.0f + std::tanh(kSqrt2OverPi * x * (1.0f + 0.044715f * x * x))) * u[i];
  }
}

void scale_mul_ref(const float* x, const float* w, float scale, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * scale * w[i];
}

float sum_sq_ref(const float* x, int64_t n) {
  float s = 0;
  for (int64_t i = 0; i < n; ++i) s += x[i] * x[i];
  return s;
}

VecOps make_scalar() {
  return VecOps{dot_f16_ref,  axpy_f16_ref, to_f16_ref,    exp_shifted_ref,
                silu_mul_ref, gelu_mul_ref, scale_mul_ref, sum_sq_ref};
}

}  // namespace

const VecOps* vec_ops(KernelTarget target) {
  static const VecOps scalar = make_scalar();
  static const VecOps avx2 = [] {
    VecOps ops = make_scalar();
    if (cpu_supports(KernelTarget::kAvx2)) detail::fill_avx2_vec_ops(ops);
    return ops;
  }();
  if (target == KernelTarget::kScalar) return &scalar;
  if (!cpu_supports(target)) return nullptr;
  return &avx2;  // the wider targets add nothing here: these ops are memory-bound
}

const VecOps& vec_ops() {
  static const VecOps* ops = vec_ops(selected_kernel_target());
  return *ops;
}

}  // namespace minnow::kernels
