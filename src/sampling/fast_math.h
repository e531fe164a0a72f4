// Vocabulary-wide loops of the sampler, written so that the compiler vectorises them at the
// baseline ISA (no -ffast-math; one SSE2 helper): a branch-free exp and an "any above" test.
// The library is built with -fno-trapping-math, without which GCC keeps the clamp and the
// compares as branches and vectorises nothing (the results are the same bits either way).
#pragma once

#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace minnow::sampling {

// exp(x) for x <= 0 (what softmax feeds it after subtracting the max), relative error below
// 2e-7. Cody-Waite reduction x = n ln2 + f, |f| <= ln2/2, then a degree-6 Taylor polynomial of
// e^f (truncation error below f^7/7! e^|f| = 1.7e-7) and the exponent n put in by hand. x below -87
// is clamped (the result is ~1e-38, nothing next to the max's 1); NaN stays NaN. Rounding to the
// nearest n uses the 1.5 * 2^23 trick so the loop needs no round instruction.
inline float exp_nonpositive(float x) {
  constexpr float kLog2e = 1.44269504088896341f;
  constexpr float kLn2Hi = 0.693145751953125f;  // ln 2 with 15 trailing zero bits: n * hi exact
  constexpr float kLn2Lo = 1.42860682030941723212e-6f;
  constexpr float kRound = 12582912.0f;  // 1.5 * 2^23
  x = x < -87.0f ? -87.0f : x;
  const float r = x * kLog2e + kRound;
  const float n = r - kRound;
  const int32_t ni = std::bit_cast<int32_t>(r) - std::bit_cast<int32_t>(kRound);
  const float f = (x - n * kLn2Hi) - n * kLn2Lo;
  float p = 1.0f / 720.0f;
  p = p * f + 1.0f / 120.0f;
  p = p * f + 1.0f / 24.0f;
  p = p * f + 1.0f / 6.0f;
  p = p * f + 0.5f;
  p = p * f + 1.0f;
  p = p * f + 1.0f;
  return p * std::bit_cast<float>((ni + 127) << 23);
}

// Whether any of x[0..16) is > thr (NaN is not). GCC does not vectorise this loop once it is
// inlined into the selection's block loop, hence the SSE2 version (baseline on x86-64).
inline bool any_greater16(const float* x, float thr) {
#if defined(__SSE2__)
  const __m128 t = _mm_set1_ps(thr);
  const __m128 a =
      _mm_or_ps(_mm_cmpgt_ps(_mm_loadu_ps(x), t), _mm_cmpgt_ps(_mm_loadu_ps(x + 4), t));
  const __m128 b =
      _mm_or_ps(_mm_cmpgt_ps(_mm_loadu_ps(x + 8), t), _mm_cmpgt_ps(_mm_loadu_ps(x + 12), t));
  return _mm_movemask_ps(_mm_or_ps(a, b)) != 0;
#else
  int any = 0;
  for (int i = 0; i < 16; ++i) any |= x[i] > thr;
  return any != 0;
#endif
}

// The largest value (NaN skipped; -inf when there is none).
float max_value(std::span<const float> x);

// log(sum(exp(x))) over the whole row: the normaliser of the raw log-softmax (-inf when every
// value is -inf). Blocks of 1024 are summed in float (vectorised) and the blocks in double, so
// the error does not grow with a 262,144-entry vocabulary.
float log_sum_exp(std::span<const float> x);

}  // namespace minnow::sampling
