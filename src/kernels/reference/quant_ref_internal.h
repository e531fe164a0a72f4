// Internals shared by the scalar reference (de)quantizers: per-block entry points of each
// format (one dequantize_block / quantize_block overload per block struct), the rounding
// rules ggml uses, and the scale searches of the quantizers that have no closed form.
// Not part of the kernels API; include only from src/kernels/reference/.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "kernels/quant_blocks.h"
#include "kernels/quants.h"

namespace minnow::kernels::ref {

// ---- Per-block conversions (one pair per format; x / y hold the block's elements). ----

void dequantize_block(const BlockQ4_0& b, float* y);
void dequantize_block(const BlockQ4_1& b, float* y);
void dequantize_block(const BlockQ5_0& b, float* y);
void dequantize_block(const BlockQ5_1& b, float* y);
void dequantize_block(const BlockQ8_0& b, float* y);
void dequantize_block(const BlockQ8_1& b, float* y);
void dequantize_block(const BlockQ2_K& b, float* y);
void dequantize_block(const BlockQ3_K& b, float* y);
void dequantize_block(const BlockQ4_K& b, float* y);
void dequantize_block(const BlockQ5_K& b, float* y);
void dequantize_block(const BlockQ6_K& b, float* y);
void dequantize_block(const BlockQ8_K& b, float* y);
void dequantize_block(const BlockIQ4_NL& b, float* y);
void dequantize_block(const BlockIQ4_XS& b, float* y);

void quantize_block(const float* x, BlockQ4_0& b);
void quantize_block(const float* x, BlockQ4_1& b);
void quantize_block(const float* x, BlockQ5_0& b);
void quantize_block(const float* x, BlockQ5_1& b);
void quantize_block(const float* x, BlockQ8_0& b);
void quantize_block(const float* x, BlockQ8_1& b);
void quantize_block(const float* x, BlockQ2_K& b);
void quantize_block(const float* x, BlockQ3_K& b);
void quantize_block(const float* x, BlockQ4_K& b);
void quantize_block(const float* x, BlockQ5_K& b);
void quantize_block(const float* x, BlockQ6_K& b);
void quantize_block(const float* x, BlockQ8_K& b);
void quantize_block(const float* x, BlockIQ4_NL& b);
void quantize_block(const float* x, BlockIQ4_XS& b);

// ---- Rounding. Inputs may be NaN/Inf on degenerate blocks; these never invoke UB. ----

// round-half-away-from-zero (C roundf), clamped to [lo, hi]; NaN gives 0 clamped.
inline int round_away_clamped(float v, int lo, int hi) {
  if (std::isnan(v)) v = 0.0f;
  if (v <= static_cast<float>(lo)) return lo;
  if (v >= static_cast<float>(hi)) return hi;
  return static_cast<int>(std::round(v));
}

// round-half-to-even (ggml's nearest_int, the FPU default mode), clamped to [lo, hi].
inline int round_even_clamped(float v, int lo, int hi) {
  if (std::isnan(v)) v = 0.0f;
  if (v <= static_cast<float>(lo)) return lo;
  if (v >= static_cast<float>(hi)) return hi;
  return static_cast<int>(std::nearbyint(v));
}

// truncation toward zero (a C cast), clamped to [lo, hi]; the legacy quantizers add 0.5 or
// 8.5 and truncate.
inline int trunc_clamped(float v, int lo, int hi) {
  if (std::isnan(v)) v = 0.0f;
  if (v <= static_cast<float>(lo)) return lo;
  if (v >= static_cast<float>(hi)) return hi;
  return static_cast<int>(v);
}

// The element of largest magnitude, with its sign (the first one on ties; 0 for all-zero x).
inline float signed_absmax(const float* x, int n) {
  float amax = 0.0f, max = 0.0f;
  for (int i = 0; i < n; ++i) {
    if (std::fabs(x[i]) > amax) {
      amax = std::fabs(x[i]);
      max = x[i];
    }
  }
  return max;
}

// The 32-element nibble layout of Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL and of each IQ4_XS
// sub-block: the low nibble of qs[j] is element j, the high nibble element j + 16.
inline int nibble32(const uint8_t* qs, int i) { return i < 16 ? qs[i] & 0xF : qs[i - 16] >> 4; }
inline void pack_nibbles32(const uint8_t* q, uint8_t* qs) {
  for (int j = 0; j < 16; ++j)
    qs[j] = static_cast<uint8_t>((q[j] & 0xF) | ((q[j + 16] & 0xF) << 4));
}

// The value a float takes once stored in an f16 field.
inline float fp16_rounded(float f) { return fp16_to_fp32(fp32_to_fp16(f)); }

// ---- Scale searches (quant_fit.cpp). All minimise the plain squared error. ----

// x[i] ~ s * q[i] with integer q[i] in [lo, hi], lo < 0 < hi. Returns s (0 for an all-zero x).
float fit_symmetric(const float* x, int n, int lo, int hi, int8_t* q);

// x[i] ~ s * q[i] - m with q[i] in [0, nmax], s >= 0 and m >= 0 (the formats store only a
// subtracted, non-negative offset). Returns s; *m_out receives m.
float fit_affine(const float* x, int n, int nmax, uint8_t* q, float* m_out);

// x[i] ~ s * kIQ4NLValues[q[i]] with q[i] in [0, 16). Returns s.
float fit_iq4(const float* x, int n, uint8_t* q);

// Index of the code book entry nearest to v (lowest index on ties).
int nearest_iq4_index(float v);

// ---- Choosing a sub-block's integer scale once the f16 super-scale d is fixed ----
// `level(q)` maps a stored index to its grid value (q - offset, or a code book entry);
// `nearest(v)` gives the index whose level is nearest to v.

// Squared error of x ~ (d*sc) * level(q) with the best q for that sc; fills q.
template <typename Level, typename Nearest>
double symmetric_sub_block(const float* x, int n, float d, int sc, uint8_t* q, Level level,
                           Nearest nearest) {
  const float scale = d * static_cast<float>(sc);
  const float inv = scale != 0.0f ? 1.0f / scale : 0.0f;
  double err = 0;
  for (int i = 0; i < n; ++i) {
    q[i] = static_cast<uint8_t>(nearest(x[i] * inv));
    const double diff = static_cast<double>(scale * level(q[i])) - x[i];
    err += diff * diff;
  }
  return err;
}

// Integer sc in [sc_lo, sc_hi] for a sub-block fitted as x ~ s * level: round s/d, then keep
// the best of that and its two neighbours. q holds level indices; returns sc.
template <typename Level, typename Nearest>
int choose_symmetric(const float* x, int n, float d, float s, int sc_lo, int sc_hi, uint8_t* q,
                     Level level, Nearest nearest) {
  const int sc0 = d != 0.0f ? round_even_clamped(s / d, sc_lo, sc_hi) : 0;
  int best_sc = sc0;
  double best_err = symmetric_sub_block(x, n, d, sc0, q, level, nearest);
  uint8_t trial[32];
  for (int sc : {sc0 - 1, sc0 + 1}) {
    if (sc < sc_lo || sc > sc_hi || d == 0.0f) continue;
    const double err = symmetric_sub_block(x, n, d, sc, trial, level, nearest);
    if (err < best_err) {
      best_err = err;
      best_sc = sc;
      std::copy_n(trial, n, q);
    }
  }
  return best_sc;
}

}  // namespace minnow::kernels::ref
