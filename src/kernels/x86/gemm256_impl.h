// The 256-bit kernel set of one target: included by exactly one file per target
// (avx2_matmul.cpp, avxvnni_matmul.cpp, avx512_matmul.cpp), which sets the target macro
// first (see gemm256_common.h).
#pragma once

#include "kernels/x86/gemm256_kquants.h"
#include "kernels/x86/gemm256_legacy.h"

namespace minnow::kernels::detail {
namespace {

// Fills the 256-bit kernels of this target into a table.
inline void fill_gemm256(KernelTable& t) {
  t.q8_0_layout = Q8Layout::kTransposed;
  t.gemm[slot(TensorType::Q4_0)] = &gemm32<FmtQ4_0>;
  t.gemm[slot(TensorType::Q4_1)] = &gemm32<FmtQ4_1>;
  t.gemm[slot(TensorType::Q5_0)] = &gemm32<FmtQ5_0>;
  t.gemm[slot(TensorType::Q5_1)] = &gemm32<FmtQ5_1>;
  t.gemm[slot(TensorType::Q8_0)] = &gemm32<FmtQ8_0>;
  t.gemm[slot(TensorType::IQ4_NL)] = &gemm32<FmtIQ4_NL>;
  t.gemm[slot(TensorType::Q2_K)] = &gemm_k<FmtQ2_K>;
  t.gemm[slot(TensorType::Q3_K)] = &gemm_k<FmtQ3_K>;
  t.gemm[slot(TensorType::Q4_K)] = &gemm_k<FmtK4<false>>;
  t.gemm[slot(TensorType::Q5_K)] = &gemm_k<FmtK4<true>>;
  t.gemm[slot(TensorType::Q6_K)] = &gemm_k<FmtQ6_K>;
  t.gemm[slot(TensorType::IQ4_XS)] = &gemm_k<FmtIQ4_XS>;
  t.gemm[slot(TensorType::F32)] = &gemm_float<FloatF32>;
  t.gemm[slot(TensorType::F16)] = &gemm_float<FloatF16>;
  t.gemm[slot(TensorType::BF16)] = &gemm_float<FloatBF16>;
}

}  // namespace
}  // namespace minnow::kernels::detail
