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
// 32-wide weight formats (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL) pair with Q8_0 activations.
// Three side arrays carry, per block, what the kernels would otherwise recompute for every
// weight row: the f16 scale widened to f32, the exact integer sum of the 32 q (for the
// offsets of Q4_0/Q5_0 and the minimum of Q4_1/Q5_1), and d * sum as f32. Each side-array
// row holds side_stride entries (the block count rounded up to 8, zero-padded).
// The q rows are in one of two layouts, chosen by the kernel table (KernelTable::q8_0_layout):
//   kBlocks      BlockQ8_0 after BlockQ8_0, as in a GGUF file (the scalar kernels);
//   kTransposed  per group of 8 blocks, 256 bytes: 8 vectors of 32 bytes, vector u holding
//                in its 32-bit lane j the four int8 of elements 4u..4u+3 of block j (no d:
//                it is in the side array). The last group is zero-padded. This puts one
//                block per lane, so a vector multiply-add accumulates 8 blocks' dot products
//                side by side and their scales are applied 8 at a time (x86/gemm256_impl.h).
// K-quant formats pair with Q8_K blocks (f32 d and the 16-element sums are in the block).
// Float weights (F32/F16/BF16) read x itself: q points at the f32 rows.
enum class Q8Layout { kBlocks, kTransposed };

struct Activations {
  const uint8_t* q = nullptr;  // row b at q + b * row_bytes
  size_t row_bytes = 0;
  int64_t side_stride = 0;       // entries per row of d, s, sum
  const float* d = nullptr;      // (batch, side_stride) block scale as f32
  const float* s = nullptr;      // (batch, side_stride) d * sum(q) as f32
  const int32_t* sum = nullptr;  // (batch, side_stride) sum(q)

  // The same activations starting at row b.
  Activations from_row(int64_t b) const {
    Activations a = *this;
    a.q += b * row_bytes;
    if (d) a.d += b * side_stride;
    if (s) a.s += b * side_stride;
    if (sum) a.sum += b * side_stride;
    return a;
  }
};

// y[b * ldy + r] = dot(row r of W, activation row b) for r < n_rows, b < n_batch. W's first
// row is at w, rows w_row_bytes apart; cols is the dot product length.
using GemmFn = void (*)(int64_t cols, const uint8_t* w, size_t w_row_bytes, int64_t n_rows,
                        const Activations& a, int64_t n_batch, float* y, int64_t ldy);

// Quantizes one activation row of `cols` floats into Q8_0 in the table's layout at q (room for
// side_stride blocks), filling the side arrays d, s, sum (side_stride entries each, those
// past cols / 32 set to zero).
using QuantizeQ8_0Fn = void (*)(const float* x, int64_t cols, int64_t side_stride, uint8_t* q,
                                float* d, float* s, int32_t* sum);
// Quantizes one activation row into Q8_K blocks at q (no side arrays).
using QuantizeQ8_KFn = void (*)(const float* x, int64_t cols, uint8_t* q);

constexpr int kTypeSlots = 40;  // TensorType values are below this

struct KernelTable {
  KernelTarget target = KernelTarget::kScalar;
  GemmFn gemm[kTypeSlots] = {};
  QuantizeQ8_0Fn quantize_q8_0 = nullptr;
  Q8Layout q8_0_layout = Q8Layout::kBlocks;
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
