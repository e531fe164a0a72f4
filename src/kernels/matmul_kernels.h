// Internals of matmul: the quantized-activation layout every kernel target shares, and the
// per-target function table matmul.cpp dispatches through. Not part of the kernels API.
#pragma once

#include <cstddef>
#include <cstdint>

#include "gguf/tensor_type.h"
#include "util/cpu_features.h"

namespace minnow::kernels::detail {

// One matmul call's activations after quantization, `batch` rows of `cols` elements.
//
// 32-wide weight formats (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL) pair with Q8_0 activation
// blocks; the three side arrays carry, per block, what the kernels would otherwise recompute
// for every weight row: the f16 scale widened to f32, the exact integer sum of the 32 q (for
// the offsets of Q4_0/Q5_0 and the minimum of Q4_1/Q5_1), and d * sum as f32.
// K-quant formats pair with Q8_K blocks (f32 d and the 16-element sums are in the block).
// Float weights (F32/F16/BF16) read x itself: q points at the f32 rows.
struct Activations {
  const uint8_t* q = nullptr;    // row b at q + b * row_bytes
  size_t row_bytes = 0;
  int64_t n_blocks = 0;          // blocks per row (32-wide formats)
  const float* d = nullptr;      // (batch, n_blocks) block scale as f32
  const float* s = nullptr;      // (batch, n_blocks) d * sum(q) as f32
  const int32_t* sum = nullptr;  // (batch, n_blocks) sum(q)

  // The same activations starting at row b.
  Activations from_row(int64_t b) const {
    Activations a = *this;
    a.q += b * row_bytes;
    if (d) a.d += b * n_blocks;
    if (s) a.s += b * n_blocks;
    if (sum) a.sum += b * n_blocks;
    return a;
  }
};

// y[b * ldy + r] = dot(row r of W, activation row b) for r < n_rows, b < n_batch. W's first
// row is at w, rows w_row_bytes apart; cols is the dot product length.
using GemmFn = void (*)(int64_t cols, const uint8_t* w, size_t w_row_bytes, int64_t n_rows,
                        const Activations& a, int64_t n_batch, float* y, int64_t ldy);

// Quantizes one activation row of `cols` floats into Q8_0 blocks at q, filling the side
// arrays d, s, sum (n = cols / 32 entries each).
using QuantizeQ8_0Fn = void (*)(const float* x, int64_t cols, uint8_t* q, float* d, float* s,
                                int32_t* sum);
// Quantizes one activation row into Q8_K blocks at q (no side arrays).
using QuantizeQ8_KFn = void (*)(const float* x, int64_t cols, uint8_t* q);

constexpr int kTypeSlots = 40;  // TensorType values are below this

struct KernelTable {
  KernelTarget target = KernelTarget::kScalar;
  GemmFn gemm[kTypeSlots] = {};
  QuantizeQ8_0Fn quantize_q8_0 = nullptr;
  QuantizeQ8_KFn quantize_q8_k = nullptr;
};

inline int slot(TensorType t) { return static_cast<int>(t); }

// The table of a target; nullptr when this CPU cannot run it. Built once, on first use.
const KernelTable* kernel_table(KernelTarget target);

// Each target fills the entries it accelerates, on top of the table of the target below it
// (scalar for avx2; avx2 for avxvnni and avx512). Only called when the CPU supports the
// target: the fill functions live in files compiled for it.
void fill_scalar_kernels(KernelTable& table);   // reference/dot_ref.cpp
void fill_avx2_kernels(KernelTable& table);     // x86/avx2_*.cpp
void fill_avxvnni_kernels(KernelTable& table);  // x86/avxvnni_*.cpp
void fill_avx512_kernels(KernelTable& table);   // x86/avx512_*.cpp

}  // namespace minnow::kernels::detail
