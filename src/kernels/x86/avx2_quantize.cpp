// AVX2 activation quantizers. They must produce exactly the values of the reference
// quantizers (tests compare them bit for bit), so they repeat the reference's f32
// operations in the same order: the scale is computed in scalar code exactly as the
// reference does, and only the per-element multiply / round / clamp is vectorized.
// Q8_0 is written in the transposed group layout (matmul_kernels.h), Q8_K as blocks.
//
// Packing 32 f32 (integral values) into 32 int8: packs_epi32 and packs_epi16 interleave the
// two 128-bit lanes, which a final dword permutation [0 4 1 5 2 6 3 7] undoes.
#include <immintrin.h>

#include <cmath>
#include <cstring>

#include "kernels/quant_blocks.h"
#include "kernels/x86/simd256_util.h"
#include "kernels/x86/x86_kernels.h"

namespace minnow::kernels::detail {
namespace {

inline __m256 abs_ps(__m256 v) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v); }

inline float hmax(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_movehdup_ps(m));
  return _mm_cvtss_f32(m);
}

inline int hsum_i32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
  return _mm_cvtsi128_si32(s);
}

// Round half away from zero (C roundf): truncate, then step away from zero when the dropped
// fraction (exact: v - trunc(v)) is at least one half.
inline __m256 round_away(__m256 v) {
  const __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
  const __m256 frac = abs_ps(_mm256_sub_ps(v, t));
  const __m256 one = _mm256_or_ps(_mm256_set1_ps(1.0f), _mm256_and_ps(v, _mm256_set1_ps(-0.0f)));
  return _mm256_add_ps(t,
                       _mm256_and_ps(_mm256_cmp_ps(frac, _mm256_set1_ps(0.5f), _CMP_GE_OQ), one));
}

// Clamp to [-127, 127]; NaN becomes 0 as in the reference.
inline __m256i clamp_to_i32(__m256 v) {
  v = _mm256_and_ps(v, _mm256_cmp_ps(v, v, _CMP_ORD_Q));
  v = _mm256_min_ps(_mm256_max_ps(v, _mm256_set1_ps(-127.0f)), _mm256_set1_ps(127.0f));
  return _mm256_cvttps_epi32(v);
}

inline __m256i pack_i32_to_i8(__m256i v0, __m256i v1, __m256i v2, __m256i v3) {
  const __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(v0, v1), _mm256_packs_epi32(v2, v3));
  return _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

}  // namespace

void quantize_q8_0_avx2(const float* x, int64_t cols, int64_t side_stride, uint8_t* q, float* d_out,
                        float* s_out, int32_t* sum_out) {
  // Quantize 8 blocks at a time, then transpose their 8x8 dwords into the group layout.
  const int64_t nb = cols / kQK;
  for (int64_t g = 0; g < side_stride / 8; ++g) {
    __m256i packed[8];
    for (int j = 0; j < 8; ++j) {
      const int64_t b = 8 * g + j;
      if (b >= nb) {
        packed[j] = _mm256_setzero_si256();
        d_out[b] = s_out[b] = 0.0f;
        sum_out[b] = 0;
        continue;
      }
      const float* xb = x + b * kQK;
      __m256 v[4];
      __m256 amax = _mm256_setzero_ps();
      for (int k = 0; k < 4; ++k) {
        v[k] = _mm256_loadu_ps(xb + 8 * k);
        amax = _mm256_max_ps(amax, abs_ps(v[k]));
      }
      const float d = hmax(amax) / 127.0f;
      const float id = d != 0.0f ? 1.0f / d : 0.0f;
      const __m256 idv = _mm256_set1_ps(id);
      __m256i qi[4];
      for (int k = 0; k < 4; ++k) qi[k] = clamp_to_i32(round_away(_mm256_mul_ps(v[k], idv)));
      packed[j] = pack_i32_to_i8(qi[0], qi[1], qi[2], qi[3]);
      const int sum = hsum_i32(
          _mm256_add_epi32(_mm256_add_epi32(qi[0], qi[1]), _mm256_add_epi32(qi[2], qi[3])));
      // The stored scale is f16; the kernels and the reference use its f32 value.
      const float df = _cvtsh_ss(_cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT));
      d_out[b] = df;
      sum_out[b] = sum;
      s_out[b] = df * static_cast<float>(sum);
    }
    transpose8x8_epi32(packed);
    for (int u = 0; u < 8; ++u) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + 256 * g + 32 * u), packed[u]);
    }
  }
}

void quantize_q8_k_avx2(const float* x, int64_t cols, uint8_t* q) {
  for (int64_t b = 0; b < cols / kQK_K; ++b) {
    const float* xb = x + b * kQK_K;
    uint8_t* blk = q + b * sizeof(BlockQ8_K);
    __m256 amax = _mm256_setzero_ps();
    for (int k = 0; k < kQK_K / 8; ++k)
      amax = _mm256_max_ps(amax, abs_ps(_mm256_loadu_ps(xb + 8 * k)));
    const float am = hmax(amax);
    // The signed element of largest magnitude, the first one on ties (the reference's choice).
    float max = 0.0f;
    if (am > 0.0f) {
      const __m256 amv = _mm256_set1_ps(am);
      for (int k = 0; k < kQK_K / 8; ++k) {
        const int mask =
            _mm256_movemask_ps(_mm256_cmp_ps(abs_ps(_mm256_loadu_ps(xb + 8 * k)), amv, _CMP_EQ_OQ));
        if (mask != 0) {
          max = xb[8 * k + __builtin_ctz(static_cast<unsigned>(mask))];
          break;
        }
      }
    }
    const float iscale = max != 0.0f ? -127.0f / max : 0.0f;
    float dk;
    if (!std::isfinite(iscale) || iscale == 0.0f) {
      dk = 0.0f;
      std::memset(blk, 0, sizeof(BlockQ8_K));
    } else {
      const __m256 isv = _mm256_set1_ps(iscale);
      int16_t bsums[kQK_K / 16];
      for (int k = 0; k < kQK_K / 32; ++k) {
        __m256i qi[4];
        for (int j = 0; j < 4; ++j) {
          const __m256 v = _mm256_mul_ps(isv, _mm256_loadu_ps(xb + 32 * k + 8 * j));
          qi[j] = clamp_to_i32(_mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        }
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(blk + offsetof(BlockQ8_K, qs) + 32 * k),
                            pack_i32_to_i8(qi[0], qi[1], qi[2], qi[3]));
        bsums[2 * k] = static_cast<int16_t>(hsum_i32(_mm256_add_epi32(qi[0], qi[1])));
        bsums[2 * k + 1] = static_cast<int16_t>(hsum_i32(_mm256_add_epi32(qi[2], qi[3])));
      }
      std::memcpy(blk + offsetof(BlockQ8_K, bsums), bsums, sizeof bsums);
      dk = 1.0f / iscale;
    }
    std::memcpy(blk + offsetof(BlockQ8_K, d), &dk, sizeof dk);
  }
}

}  // namespace minnow::kernels::detail
