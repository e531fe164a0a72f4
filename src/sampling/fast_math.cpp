#include "sampling/fast_math.h"

namespace minnow::sampling {

// Both loops stream the whole vocabulary; an AVX2 clone of each (picked once, when the program
// is loaded, by the ifunc resolver GCC emits) does twice the lanes of the baseline SSE2 one.
// The results are the same bits: no FMA contraction (ISO C++ mode), same operation order.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define MINNOW_SAMPLING_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define MINNOW_SAMPLING_CLONES
#endif

MINNOW_SAMPLING_CLONES float max_value(std::span<const float> x) {
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

MINNOW_SAMPLING_CLONES float log_sum_exp(std::span<const float> x) {
  const float m = max_value(x);
  if (!(m > -std::numeric_limits<float>::infinity())) return m;  // all -inf (or NaN)
  double total = 0.0;
  constexpr size_t kBlock = 1024;
  float e[kBlock];  // exp of one block: an element-wise loop, then a lane-wise sum
  size_t i = 0;
  for (; i < x.size(); i += kBlock) {
    const size_t len = x.size() - i < kBlock ? x.size() - i : kBlock;
    for (size_t j = 0; j < len; ++j) e[j] = exp_nonpositive(x[i + j] - m);
    float s[8] = {};  // 8 independent sums: no reassociation needed to vectorise
    size_t j = 0;
    for (; j + 8 <= len; j += 8)
      for (size_t l = 0; l < 8; ++l) s[l] += e[j + l];
    for (; j < len; ++j) s[0] += e[j];
    total += double((s[0] + s[1]) + (s[2] + s[3])) + double((s[4] + s[5]) + (s[6] + s[7]));
  }
  return m + float(std::log(total));
}

}  // namespace minnow::sampling
