// IQ4_NL and IQ4_XS: 4-bit indices into the non-linear code book kIQ4NLValues (-127 .. 113).
// Dequantization repeats ggml's float operations in ggml's order (bit-identical results);
// quantization is our own least-squares scale search (quant_fit.cpp).
#include <cmath>
#include <cstring>

#include "kernels/reference/quant_ref_internal.h"

namespace minnow::kernels::ref {
namespace {

float level(uint8_t q) { return static_cast<float>(kIQ4NLValues[q]); }

}  // namespace

// IQ4_NL: block of 32; x = d * kIQ4NLValues[q].
void dequantize_block(const BlockIQ4_NL& b, float* y) {
  const float d = fp16_to_fp32(b.d);
  for (int i = 0; i < kQK; ++i) y[i] = d * static_cast<float>(kIQ4NLValues[nibble32(b.qs, i)]);
}

void quantize_block(const float* x, BlockIQ4_NL& b) {
  uint8_t q[kQK];
  const float d = fp16_rounded(fit_iq4(x, kQK, q));
  b.d = fp32_to_fp16(d);
  symmetric_sub_block(x, kQK, d, 1, q, level, nearest_iq4_index);  // indices for the stored d
  pack_nibbles32(q, b.qs);
}

// IQ4_XS: 8 sub-blocks of 32; x = (d * (ls - 32)) * kIQ4NLValues[q], ls 6-bit: low 4 bits in
// scales_l[j/2] (nibble j%2), high 2 bits in scales_h at bit 2j.
void dequantize_block(const BlockIQ4_XS& b, float* y) {
  const float d = fp16_to_fp32(b.d);
  for (int j = 0; j < kQK_K / 32; ++j) {
    const int ls =
        ((b.scales_l[j / 2] >> (4 * (j % 2))) & 0xF) | (((b.scales_h >> (2 * j)) & 3) << 4);
    const float dl = d * static_cast<float>(ls - 32);
    for (int i = 0; i < 32; ++i) {
      y[32 * j + i] = dl * static_cast<float>(kIQ4NLValues[nibble32(b.qs + 16 * j, i)]);
    }
  }
}

void quantize_block(const float* x, BlockIQ4_XS& b) {
  constexpr int kN = kQK_K / 32;
  float s[kN];
  uint8_t q[kQK_K];
  float amax = 0.0f, max = 0.0f;
  for (int j = 0; j < kN; ++j) {
    s[j] = fit_iq4(x + 32 * j, 32, q + 32 * j);
    if (std::fabs(s[j]) > amax) {
      amax = std::fabs(s[j]);
      max = s[j];
    }
  }
  // The largest sub-scale takes ls - 32 = -32, the end of the range with more room.
  const float d = fp16_rounded(max / -32.0f);
  b.d = fp32_to_fp16(d);
  b.scales_h = 0;
  std::memset(b.scales_l, 0, sizeof b.scales_l);
  for (int j = 0; j < kN; ++j) {
    const int ls = 32 + choose_symmetric(x + 32 * j, 32, d, s[j], -32, 31, q + 32 * j, level,
                                         nearest_iq4_index);
    b.scales_l[j / 2] |= static_cast<uint8_t>((ls & 0xF) << (4 * (j % 2)));
    b.scales_h |= static_cast<uint16_t>((ls >> 4) << (2 * j));
    pack_nibbles32(q + 32 * j, b.qs + 16 * j);
  }
}

}  // namespace minnow::kernels::ref
