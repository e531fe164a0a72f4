// Vocabulary-wide loops of the sampler, written so that the compiler vectorises them at the
// baseline ISA (no intrinsics, no -ffast-math): a branch-free exp and an "any above" test.
#pragma once

#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>

namespace minnow::sampling {

// exp(x) for x <= 0 (what softmax feeds it after subtracting the max), relative error below
// 2e-7. Cody-Waite reduction x = n ln2 + f, |f| <= ln2/2, then a degree-7 Taylor polynomial of
// e^f and the exponent n put in by hand. x below -87 is clamped (the result is ~1e-38, nothing
// next to the max's 1); NaN stays NaN. Rounding to the nearest n uses the 1.5 * 2^23 trick so
// the loop needs no round instruction.
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
  float p = 1.0f / 5040.0f;
  p = p * f + 1.0f / 720.0f;
  p = p * f + 1.0f / 120.0f;
  p = p * f + 1.0f / 24.0f;
  p = p * f + 1.0f / 6.0f;
  p = p * f + 0.5f;
  p = p * f + 1.0f;
  p = p * f + 1.0f;
  return p * std::bit_cast<float>((ni + 127) << 23);
}

// Whether any of x[0..n) is > thr (NaN is not).
inline bool any_greater(const float* x, size_t n, float thr) {
  int any = 0;
  for (size_t i = 0; i < n; ++i) any |= x[i] > thr;
  return any != 0;
}

// The largest value (NaN skipped; -inf when there is none).
inline float max_value(std::span<const float> x) {
  // 8 running maxima so that the loop carries no dependence across lanes.
  float m[8];
  for (float& v : m) v = -std::numeric_limits<float>::infinity();
  size_t i = 0;
  for (; i + 8 <= x.size(); i += 8)
    for (size_t j = 0; j < 8; ++j) m[j] = x[i + j] > m[j] ? x[i + j] : m[j];
  for (; i < x.size(); ++i) m[0] = x[i] > m[0] ? x[i] : m[0];
  float r = m[0];
  for (float v : m) r = v > r ? v : r;
  return r;
}

// log(sum(exp(x))) over the whole row: the normaliser of the raw log-softmax. Blocks of 1024
// are summed in float (vectorised) and the blocks in double, so the error does not grow with
// a 262,144-entry vocabulary.
inline float log_sum_exp(std::span<const float> x) {
  const float m = max_value(x);
  if (!(m > -std::numeric_limits<float>::infinity())) return m;  // all -inf (or NaN)
  double total = 0.0;
  constexpr size_t kBlock = 1024;  // a multiple of the 8 lanes
  size_t i = 0;
  for (; i + kBlock <= x.size(); i += kBlock) {
    float s[8] = {};  // 8 independent sums: no reassociation needed to vectorise
    for (size_t j = i; j < i + kBlock; j += 8)
      for (size_t l = 0; l < 8; ++l) s[l] += exp_nonpositive(x[j + l] - m);
    total += double((s[0] + s[1]) + (s[2] + s[3])) + double((s[4] + s[5]) + (s[6] + s[7]));
  }
  for (; i < x.size(); ++i) total += exp_nonpositive(x[i] - m);
  return m + float(std::log(total));
}

}  // namespace minnow::sampling
