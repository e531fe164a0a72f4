// The k-quants: super-blocks of 256 elements split into sub-blocks of 16 or 32, each with a
// small integer scale (and min) that multiplies one f16 super-scale. Dequantization repeats
// ggml's float operations in ggml's order, so results are bit-identical. Quantization is our
// own: fit each sub-block (quant_fit.cpp), quantize the sub-block scales against the f16
// super-scale, then try the neighbouring integer scales and keep the one with the smallest
// squared error. Q8_K (the activation format) follows ggml's quantizer exactly instead.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/reference/quant_ref_internal.h"

namespace minnow::kernels::ref {
namespace {

// ---- Element positions inside the packed arrays (e = element index in the super-block). ----

// Q2_K / Q3_K low bits: each 128-element half uses 32 bytes; element e sits in byte
// 32*(e/128) + e%32 at bit 2*((e%128)/32).
int q2_byte(int e) { return 32 * (e / 128) + e % 32; }
int q2_shift(int e) { return 2 * ((e % 128) / 32); }

// Q4_K / Q5_K: sub-block pairs share 32 bytes, the even sub-block in the low nibbles.
int q4k_byte(int e) { return 32 * (e / 64) + e % 32; }
int q4k_shift(int e) { return 4 * ((e / 32) % 2); }

// Q6_K low 4 bits: per 128-element half, 64 bytes of ql; the four 32-element quarters take
// the low nibbles of bytes 0..31, 32..63, then the high nibbles of the same bytes.
int q6k_ql_byte(int e) { return 64 * (e / 128) + 32 * (((e % 128) / 32) % 2) + e % 32; }
int q6k_ql_shift(int e) { return 4 * (((e % 128) / 32) / 2); }
// Q6_K high 2 bits: per half, 32 bytes of qh, quarter k at bits 2k.
int q6k_qh_byte(int e) { return 32 * (e / 128) + e % 32; }
int q6k_qh_shift(int e) { return 2 * ((e % 128) / 32); }

// ---- Packed sub-block scales ----

// Q4_K / Q5_K: eight 6-bit (scale, min) pairs in 12 bytes. Pairs 0..3 sit in the low 6 bits
// of bytes 0..3 (scale) and 4..7 (min); pairs 4..7 keep their low 4 bits in bytes 8..11
// (scale low nibble, min high nibble) and their top 2 bits in the spare top bits of bytes
// 0..3 (scale) and 4..7 (min).
void unpack_scale_min_k4(const uint8_t* s, int j, int* sc, int* m) {
  if (j < 4) {
    *sc = s[j] & 63;
    *m = s[j + 4] & 63;
  } else {
    *sc = (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4);
    *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

void pack_scale_min_k4(const int* sc, const int* m, uint8_t* s) {
  for (int j = 0; j < 4; ++j) {
    s[j] = static_cast<uint8_t>(sc[j] | ((sc[j + 4] >> 4) << 6));
    s[j + 4] = static_cast<uint8_t>(m[j] | ((m[j + 4] >> 4) << 6));
    s[j + 8] = static_cast<uint8_t>((sc[j + 4] & 0xF) | ((m[j + 4] & 0xF) << 4));
  }
}

// Q3_K: sixteen 6-bit scales (stored +32) in 12 bytes: low nibbles of scales 0..7 in the low
// nibbles of bytes 0..7, of scales 8..15 in the high nibbles; top 2 bits of scale j in byte
// 8 + j%4 at bit 2*(j/4).
int unpack_scale_q3k(const uint8_t* s, int j) {
  const int low = j < 8 ? s[j] & 0xF : s[j - 8] >> 4;
  const int high = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
  return (low | (high << 4)) - 32;
}

void pack_scales_q3k(const int* sc, uint8_t* s) {
  std::memset(s, 0, 12);
  for (int j = 0; j < 16; ++j) {
    const int v = sc[j] + 32;
    s[j % 8] |= static_cast<uint8_t>((v & 0xF) << (4 * (j / 8)));
    s[8 + j % 4] |= static_cast<uint8_t>((v >> 4) << (2 * (j / 4)));
  }
}

// ---- Choosing a sub-block's integer scale once the f16 super-scale is fixed ----

float max_of(const float* x, int n) {
  float max = 0.0f;
  for (int i = 0; i < n; ++i) max = std::fmax(max, x[i]);
  return max;
}

// Squared error of x ~ (d*sc) * q - (dmin*m) with the best q for that (sc, m); fills q.
double affine_sub_block(const float* x, int n, int nmax, float d, float dmin, int sc, int m,
                        uint8_t* q) {
  const float scale = d * static_cast<float>(sc), offset = dmin * static_cast<float>(m);
  const float inv = scale != 0.0f ? 1.0f / scale : 0.0f;
  double err = 0;
  for (int i = 0; i < n; ++i) {
    q[i] = static_cast<uint8_t>(round_even_clamped((x[i] + offset) * inv, 0, nmax));
    const double diff = static_cast<double>(scale * static_cast<float>(q[i]) - offset) - x[i];
    err += diff * diff;
  }
  return err;
}

// Integer (sc, m) in [0, kmax] for a sub-block fitted as x ~ s * q - min: round s/d and
// min/dmin, then search the neighbouring scales, each with the neighbouring mins and the
// least-squares min for that scale (which rescues sub-blocks whose fit the f16 super-scales
// cannot hold, e.g. when d underflows). Writes q; returns sc, m.
void choose_affine(const float* x, int n, int nmax, float d, float dmin, float s, float min,
                   int kmax, int* sc_out, int* m_out, uint8_t* q) {
  const int sc0 = d > 0.0f ? round_even_clamped(s / d, 0, kmax) : 0;
  const int m0 = dmin > 0.0f ? round_even_clamped(min / dmin, 0, kmax) : 0;
  int best_sc = sc0, best_m = m0;
  double best_err = affine_sub_block(x, n, nmax, d, dmin, sc0, m0, q);
  uint8_t trial[32];
  auto consider = [&](int sc, int m) {
    if (sc < 0 || sc > kmax || m < 0 || m > kmax) return;
    const double err = affine_sub_block(x, n, nmax, d, dmin, sc, m, trial);
    if (err < best_err) {
      best_err = err;
      best_sc = sc;
      best_m = m;
      std::copy_n(trial, n, q);
    }
  };
  for (int sc = sc0 - 1; sc <= sc0 + 1; ++sc) {
    if (sc != 0 && d == 0.0f) continue;
    for (int m = m0 - 1; m <= m0 + 1; ++m) {
      if (m == 0 || dmin > 0.0f) consider(sc, m);
    }
    if (dmin > 0.0f) {  // offset = mean(scale * q - x) for the levels this scale picks
      affine_sub_block(x, n, nmax, d, dmin, sc, m0, trial);
      const float scale = d * static_cast<float>(sc);
      double mean = 0;
      for (int i = 0; i < n; ++i)
        mean += static_cast<double>(scale * static_cast<float>(trial[i])) - x[i];
      const double m_fit = std::clamp(mean / n / dmin, 0.0, static_cast<double>(kmax));
      consider(sc, round_even_clamped(static_cast<float>(m_fit), 0, kmax));
    }
  }
  *sc_out = best_sc;
  *m_out = best_m;
}

// Levels q - offset for the uniform signed grids of Q3_K (offset 4) and Q6_K (offset 32).
auto uniform_level(int offset) {
  return [offset](uint8_t q) { return static_cast<float>(q - offset); };
}
auto uniform_nearest(int offset) {
  return [offset](float v) { return round_even_clamped(v, -offset, offset - 1) + offset; };
}

}  // namespace

// Q2_K: 16 sub-blocks of 16; x = (d * sc) * q - (dmin * m), sc / m 4-bit in scales[j]
// (low / high nibble), q 2-bit.
void dequantize_block(const BlockQ2_K& b, float* y) {
  const float d = fp16_to_fp32(b.d), dmin = fp16_to_fp32(b.dmin);
  for (int e = 0; e < kQK_K; ++e) {
    const uint8_t sc = b.scales[e / 16];
    const float dl = d * static_cast<float>(sc & 0xF), ml = dmin * static_cast<float>(sc >> 4);
    const int q = (b.qs[q2_byte(e)] >> q2_shift(e)) & 3;
    y[e] = dl * static_cast<float>(q) - ml;
  }
}

void quantize_block(const float* x, BlockQ2_K& b) {
  constexpr int kSub = 16, kN = kQK_K / kSub;
  float s[kN], min[kN];
  uint8_t q[kQK_K];
  for (int j = 0; j < kN; ++j) s[j] = fit_affine(x + kSub * j, kSub, 3, q + kSub * j, &min[j]);
  const float d = fp16_rounded(max_of(s, kN) / 15.0f);
  const float dmin = fp16_rounded(max_of(min, kN) / 15.0f);
  b.d = fp32_to_fp16(d);
  b.dmin = fp32_to_fp16(dmin);
  for (int j = 0; j < kN; ++j) {
    int sc, m;
    choose_affine(x + kSub * j, kSub, 3, d, dmin, s[j], min[j], 15, &sc, &m, q + kSub * j);
    b.scales[j] = static_cast<uint8_t>(sc | (m << 4));
  }
  std::memset(b.qs, 0, sizeof b.qs);
  for (int e = 0; e < kQK_K; ++e) b.qs[q2_byte(e)] |= static_cast<uint8_t>(q[e] << q2_shift(e));
}

// Q3_K: 16 sub-blocks of 16; x = (d * sc) * (q - 4), sc signed 6-bit (packed, see above),
// q 3-bit: low 2 bits as Q2_K, third bit in hmask[e%32] bit e/32.
void dequantize_block(const BlockQ3_K& b, float* y) {
  const float d = fp16_to_fp32(b.d);
  for (int e = 0; e < kQK_K; ++e) {
    const float dl = d * static_cast<float>(unpack_scale_q3k(b.scales, e / 16));
    const int low = (b.qs[q2_byte(e)] >> q2_shift(e)) & 3;
    const bool high = (b.hmask[e % 32] >> (e / 32)) & 1;
    y[e] = dl * static_cast<float>(low - (high ? 0 : 4));
  }
}

void quantize_block(const float* x, BlockQ3_K& b) {
  constexpr int kSub = 16, kN = kQK_K / kSub;
  float s[kN];
  int8_t fitted[kSub];
  for (int j = 0; j < kN; ++j) s[j] = fit_symmetric(x + kSub * j, kSub, -4, 3, fitted);
  // The largest sub-scale takes sc = -32, the end of the signed 6-bit range with more room.
  const float d = fp16_rounded(signed_absmax(s, kN) / -32.0f);
  b.d = fp32_to_fp16(d);
  int sc[kN];
  uint8_t q[kQK_K];  // q in [0, 8)
  for (int j = 0; j < kN; ++j) {
    sc[j] = choose_symmetric(x + kSub * j, kSub, d, s[j], -32, 31, q + kSub * j, uniform_level(4),
                             uniform_nearest(4));
  }
  pack_scales_q3k(sc, b.scales);
  std::memset(b.qs, 0, sizeof b.qs);
  std::memset(b.hmask, 0, sizeof b.hmask);
  for (int e = 0; e < kQK_K; ++e) {
    b.qs[q2_byte(e)] |= static_cast<uint8_t>((q[e] & 3) << q2_shift(e));
    b.hmask[e % 32] |= static_cast<uint8_t>((q[e] >> 2) << (e / 32));
  }
}

// Q4_K: 8 sub-blocks of 32; x = (d * sc) * q - (dmin * m), sc / m 6-bit (packed, see
// above), q 4-bit.
void dequantize_block(const BlockQ4_K& b, float* y) {
  const float d = fp16_to_fp32(b.d), dmin = fp16_to_fp32(b.dmin);
  for (int e = 0; e < kQK_K; ++e) {
    int sc, m;
    unpack_scale_min_k4(b.scales, e / 32, &sc, &m);
    const float d1 = d * static_cast<float>(sc), m1 = dmin * static_cast<float>(m);
    const int q = (b.qs[q4k_byte(e)] >> q4k_shift(e)) & 0xF;
    y[e] = d1 * static_cast<float>(q) - m1;
  }
}

namespace {

// Shared by Q4_K and Q5_K: fit the 8 sub-blocks, pick d / dmin so the largest scale and
// min land on 63, then the integer scales. Fills q (levels 0..nmax) and the packed scales.
void quantize_k4_scales(const float* x, int nmax, f16_bits* d16, f16_bits* dmin16, uint8_t* scales,
                        uint8_t* q) {
  constexpr int kSub = 32, kN = kQK_K / kSub;
  float s[kN], min[kN];
  for (int j = 0; j < kN; ++j) s[j] = fit_affine(x + kSub * j, kSub, nmax, q + kSub * j, &min[j]);
  const float d = fp16_rounded(max_of(s, kN) / 63.0f);
  const float dmin = fp16_rounded(max_of(min, kN) / 63.0f);
  *d16 = fp32_to_fp16(d);
  *dmin16 = fp32_to_fp16(dmin);
  int sc[kN], m[kN];
  for (int j = 0; j < kN; ++j) {
    choose_affine(x + kSub * j, kSub, nmax, d, dmin, s[j], min[j], 63, &sc[j], &m[j], q + kSub * j);
  }
  pack_scale_min_k4(sc, m, scales);
}

}  // namespace

void quantize_block(const float* x, BlockQ4_K& b) {
  uint8_t q[kQK_K];
  quantize_k4_scales(x, 15, &b.d, &b.dmin, b.scales, q);
  std::memset(b.qs, 0, sizeof b.qs);
  for (int e = 0; e < kQK_K; ++e) b.qs[q4k_byte(e)] |= static_cast<uint8_t>(q[e] << q4k_shift(e));
}

// Q5_K: as Q4_K with q 5-bit; the fifth bit of element e is bit e/32 of qh[e%32].
void dequantize_block(const BlockQ5_K& b, float* y) {
  const float d = fp16_to_fp32(b.d), dmin = fp16_to_fp32(b.dmin);
  for (int e = 0; e < kQK_K; ++e) {
    int sc, m;
    unpack_scale_min_k4(b.scales, e / 32, &sc, &m);
    const float d1 = d * static_cast<float>(sc), m1 = dmin * static_cast<float>(m);
    const int low = (b.qs[q4k_byte(e)] >> q4k_shift(e)) & 0xF;
    const int high = ((b.qh[e % 32] >> (e / 32)) & 1) ? 16 : 0;
    y[e] = d1 * static_cast<float>(low + high) - m1;
  }
}

void quantize_block(const float* x, BlockQ5_K& b) {
  uint8_t q[kQK_K];
  quantize_k4_scales(x, 31, &b.d, &b.dmin, b.scales, q);
  std::memset(b.qs, 0, sizeof b.qs);
  std::memset(b.qh, 0, sizeof b.qh);
  for (int e = 0; e < kQK_K; ++e) {
    b.qs[q4k_byte(e)] |= static_cast<uint8_t>((q[e] & 0xF) << q4k_shift(e));
    b.qh[e % 32] |= static_cast<uint8_t>((q[e] >> 4) << (e / 32));
  }
}

// Q6_K: 16 sub-blocks of 16; x = (d * sc) * (q - 32), sc int8, q 6-bit (low 4 bits in ql,
// high 2 in qh; positions above).
void dequantize_block(const BlockQ6_K& b, float* y) {
  const float d = fp16_to_fp32(b.d);
  for (int e = 0; e < kQK_K; ++e) {
    const int low = (b.ql[q6k_ql_byte(e)] >> q6k_ql_shift(e)) & 0xF;
    const int high = (b.qh[q6k_qh_byte(e)] >> q6k_qh_shift(e)) & 3;
    y[e] = d * static_cast<float>(b.scales[e / 16]) * static_cast<float>((low | (high << 4)) - 32);
  }
}

void quantize_block(const float* x, BlockQ6_K& b) {
  constexpr int kSub = 16, kN = kQK_K / kSub;
  float s[kN];
  int8_t fitted[kSub];
  for (int j = 0; j < kN; ++j) s[j] = fit_symmetric(x + kSub * j, kSub, -32, 31, fitted);
  const float d = fp16_rounded(signed_absmax(s, kN) / -128.0f);
  b.d = fp32_to_fp16(d);
  uint8_t q[kQK_K];  // q in [0, 64)
  for (int j = 0; j < kN; ++j) {
    b.scales[j] =
        static_cast<int8_t>(choose_symmetric(x + kSub * j, kSub, d, s[j], -128, 127, q + kSub * j,
                                             uniform_level(32), uniform_nearest(32)));
  }
  std::memset(b.ql, 0, sizeof b.ql);
  std::memset(b.qh, 0, sizeof b.qh);
  for (int e = 0; e < kQK_K; ++e) {
    b.ql[q6k_ql_byte(e)] |= static_cast<uint8_t>((q[e] & 0xF) << q6k_ql_shift(e));
    b.qh[q6k_qh_byte(e)] |= static_cast<uint8_t>((q[e] >> 4) << q6k_qh_shift(e));
  }
}

// Q8_K: x = d * q, d f32. ggml's quantizer: d = max / -127 where max is the signed element of
// largest magnitude, q = round-half-even(x / d) (computed as x * (-127 / max)), bsums[i] =
// sum of q over elements 16i..16i+15.
void dequantize_block(const BlockQ8_K& b, float* y) {
  for (int e = 0; e < kQK_K; ++e) y[e] = b.d * static_cast<float>(b.qs[e]);
}

void quantize_block(const float* x, BlockQ8_K& b) {
  const float max = signed_absmax(x, kQK_K);
  const float iscale = max != 0.0f ? -127.0f / max : 0.0f;
  // Blocks too small for -127 / max to be finite (|max| < 4e-37) are stored as zero, as
  // all-zero blocks are; ggml's output for them is not defined.
  if (!std::isfinite(iscale) || iscale == 0.0f) {
    b.d = 0.0f;
    std::memset(b.qs, 0, sizeof b.qs);
    std::memset(b.bsums, 0, sizeof b.bsums);
    return;
  }
  for (int e = 0; e < kQK_K; ++e)
    b.qs[e] = static_cast<int8_t>(round_even_clamped(iscale * x[e], -127, 127));
  for (int g = 0; g < kQK_K / 16; ++g) {
    int sum = 0;
    for (int e = 16 * g; e < 16 * g + 16; ++e) sum += b.qs[e];
    b.bsums[g] = static_cast<int16_t>(sum);
  }
  b.d = 1.0f / iscale;
}

}  // namespace minnow::kernels::ref
