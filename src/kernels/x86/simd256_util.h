// Small AVX2 helpers shared by the x86 kernel files. Internal linkage: each file compiled
// for its own target gets its own copy.
#pragma once

#include <immintrin.h>

namespace minnow::kernels::detail {
namespace {

// In-place transpose of an 8x8 matrix of 32-bit elements held in 8 vectors (row i = v[i]):
// afterwards lane j of v[i] is the former lane i of v[j]. 24 shuffles.
inline void transpose8x8_epi32(__m256i (&v)[8]) {
  __m256i t[8], u[8];
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_epi32(v[i], v[i + 1]);      // r_i0 r_i+1,0 r_i1 r_i+1,1 | ...4,5
    t[i + 1] = _mm256_unpackhi_epi32(v[i], v[i + 1]);  // r_i2 r_i+1,2 r_i3 r_i+1,3 | ...6,7
  }
  for (int i = 0; i < 8; i += 4) {
    u[i] = _mm256_unpacklo_epi64(t[i], t[i + 2]);          // column 0 (| 4) of rows i..i+3
    u[i + 1] = _mm256_unpackhi_epi64(t[i], t[i + 2]);      // column 1 (| 5)
    u[i + 2] = _mm256_unpacklo_epi64(t[i + 1], t[i + 3]);  // column 2 (| 6)
    u[i + 3] = _mm256_unpackhi_epi64(t[i + 1], t[i + 3]);  // column 3 (| 7)
  }
  for (int c = 0; c < 4; ++c) {
    v[c] = _mm256_permute2x128_si256(u[c], u[c + 4], 0x20);
    v[c + 4] = _mm256_permute2x128_si256(u[c], u[c + 4], 0x31);
  }
}

}  // namespace
}  // namespace minnow::kernels::detail
