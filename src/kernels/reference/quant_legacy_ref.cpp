// The 32-wide formats: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 and Q8_1. Dequantization reproduces
// ggml's float operations one for one (same products, same order), so results are
// bit-identical; quantization follows ggml's reference quantizers (the ones gguf-py mirrors),
// which are closed-form: a scale from the block's extremes, then rounding.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/reference/quant_ref_internal.h"

namespace minnow::kernels::ref {
namespace {

// Fifth bits of the Q5 formats: bit i of the little-endian u32 qh belongs to element i.
uint32_t load_qh(const uint8_t* qh) {
  return qh[0] | (qh[1] << 8) | (qh[2] << 16) | (static_cast<uint32_t>(qh[3]) << 24);
}

void pack_q5(const uint8_t* q, uint8_t* qs, uint8_t* qh) {
  pack_nibbles32(q, qs);
  uint32_t bits = 0;
  for (int i = 0; i < kQK; ++i) bits |= static_cast<uint32_t>((q[i] >> 4) & 1) << i;
  for (int k = 0; k < 4; ++k) qh[k] = static_cast<uint8_t>(bits >> (8 * k));
}

float absmax(const float* x, int n) {
  float amax = 0.0f;
  for (int i = 0; i < n; ++i) amax = std::max(amax, std::fabs(x[i]));
  return amax;
}

float inverse_or_zero(float d) { return d != 0.0f ? 1.0f / d : 0.0f; }

// Symmetric 4/5-bit: d = max / -(2^(bits-1)) so the largest-magnitude element lands on the
// most negative level; q = trunc(x / d + offset + 0.5), clamped.
void quantize_symmetric(const float* x, int levels, f16_bits* d_out, uint8_t* q) {
  const int offset = levels / 2;
  const float d = signed_absmax(x, kQK) / static_cast<float>(-offset);
  const float id = inverse_or_zero(d);
  *d_out = fp32_to_fp16(d);
  for (int i = 0; i < kQK; ++i) {
    q[i] = static_cast<uint8_t>(trunc_clamped(x[i] * id + (offset + 0.5f), 0, levels - 1));
  }
}

// Affine 4/5-bit: d = (max - min) / (levels - 1), m = min; q = trunc((x - min) / d + 0.5).
void quantize_affine(const float* x, int levels, f16_bits* d_out, f16_bits* m_out, uint8_t* q) {
  float min = x[0], max = x[0];
  for (int i = 1; i < kQK; ++i) {
    min = std::min(min, x[i]);
    max = std::max(max, x[i]);
  }
  const float d = (max - min) / static_cast<float>(levels - 1);
  const float id = inverse_or_zero(d);
  *d_out = fp32_to_fp16(d);
  *m_out = fp32_to_fp16(min);
  for (int i = 0; i < kQK; ++i) {
    q[i] = static_cast<uint8_t>(trunc_clamped((x[i] - min) * id + 0.5f, 0, levels - 1));
  }
}

// Q8: d = amax / 127, q = roundf(x / d); returns the unrounded d (Q8_1 needs it for s).
float quantize_q8(const float* x, f16_bits* d_out, int8_t* q) {
  const float d = absmax(x, kQK) / 127.0f;
  const float id = inverse_or_zero(d);
  *d_out = fp32_to_fp16(d);
  for (int i = 0; i < kQK; ++i)
    q[i] = static_cast<int8_t>(round_away_clamped(x[i] * id, -127, 127));
  return d;
}

}  // namespace

// Q4_0: x = d * (q - 8).
void dequantize_block(const BlockQ4_0& b, float* y) {
  const float d = fp16_to_fp32(b.d);
  for (int i = 0; i < kQK; ++i) y[i] = static_cast<float>(nibble32(b.qs, i) - 8) * d;
}

void quantize_block(const float* x, BlockQ4_0& b) {
  uint8_t q[kQK];
  quantize_symmetric(x, 16, &b.d, q);
  pack_nibbles32(q, b.qs);
}

// Q4_1: x = d * q + m.
void dequantize_block(const BlockQ4_1& b, float* y) {
  const float d = fp16_to_fp32(b.d), m = fp16_to_fp32(b.m);
  for (int i = 0; i < kQK; ++i) y[i] = static_cast<float>(nibble32(b.qs, i)) * d + m;
}

void quantize_block(const float* x, BlockQ4_1& b) {
  uint8_t q[kQK];
  quantize_affine(x, 16, &b.d, &b.m, q);
  pack_nibbles32(q, b.qs);
}

// Q5_0: x = d * (q - 16), q = nibble | fifth bit << 4.
void dequantize_block(const BlockQ5_0& b, float* y) {
  const float d = fp16_to_fp32(b.d);
  const uint32_t qh = load_qh(b.qh);
  for (int i = 0; i < kQK; ++i) {
    const int q = nibble32(b.qs, i) | static_cast<int>(((qh >> i) & 1) << 4);
    y[i] = static_cast<float>(q - 16) * d;
  }
}

void quantize_block(const float* x, BlockQ5_0& b) {
  uint8_t q[kQK];
  quantize_symmetric(x, 32, &b.d, q);
  pack_q5(q, b.qs, b.qh);
}

// Q5_1: x = d * q + m, q 5-bit as Q5_0.
void dequantize_block(const BlockQ5_1& b, float* y) {
  const float d = fp16_to_fp32(b.d), m = fp16_to_fp32(b.m);
  const uint32_t qh = load_qh(b.qh);
  for (int i = 0; i < kQK; ++i) {
    const int q = nibble32(b.qs, i) | static_cast<int>(((qh >> i) & 1) << 4);
    y[i] = static_cast<float>(q) * d + m;
  }
}

void quantize_block(const float* x, BlockQ5_1& b) {
  uint8_t q[kQK];
  quantize_affine(x, 32, &b.d, &b.m, q);
  pack_q5(q, b.qs, b.qh);
}

// Q8_0: x = d * q.
void dequantize_block(const BlockQ8_0& b, float* y) {
  const float d = fp16_to_fp32(b.d);
  for (int i = 0; i < kQK; ++i) y[i] = static_cast<float>(b.qs[i]) * d;
}

void quantize_block(const float* x, BlockQ8_0& b) { quantize_q8(x, &b.d, b.qs); }

// Q8_1: x = d * q; s = fp16(sum(q) * d) with the f32 d, as ggml computes it.
void dequantize_block(const BlockQ8_1& b, float* y) {
  const float d = fp16_to_fp32(b.d);
  for (int i = 0; i < kQK; ++i) y[i] = static_cast<float>(b.qs[i]) * d;
}

void quantize_block(const float* x, BlockQ8_1& b) {
  const float d = quantize_q8(x, &b.d, b.qs);
  int sum = 0;
  for (int i = 0; i < kQK; ++i) sum += b.qs[i];
  b.s = fp32_to_fp16(static_cast<float>(sum) * d);
}

}  // namespace minnow::kernels::ref
