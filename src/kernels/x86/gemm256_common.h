// Shared pieces of the 256-bit kernels: loads, the integer dot-product primitive of each
// target, horizontal sums, and the walk over an output in register tiles with prefetching.
// Included only by the x86 kernel headers (gemm256_legacy.h, gemm256_kquants.h).
//
// These headers are compiled once per target: avx2_*.cpp includes them as they are
// (maddubs + madd), avxvnni_*.cpp defines MINNOW_DOT_AVXVNNI and avx512_*.cpp
// MINNOW_DOT_AVX512VNNI (one vpdpbusd / vpdpwssd; the AVX512 build also has 32 vector
// registers, so it uses wider tiles). Everything has internal linkage: each including file
// gets its own copy compiled for its own instruction set, and the linker can never mix them.
//
// Shapes: W is (rows, cols) in GGUF layout, one row = cols / block_elems blocks; the
// activations are `batch` rows of quantized blocks (matmul_kernels.h). The output element
// y[b * ldy + r] = dot(W row r, activation row b).
//
// Register tiling: a tile computes R weight rows × C activation rows at once. Each weight
// block is unpacked into registers once and multiplied with C activation blocks; each
// activation block is loaded once and used by R weight rows. With C = 1 this is the decode
// matrix × vector (R rows in flight hide the latency); with C > 1 (prefill) the weights of a
// few rows are unpacked once per call and reused for every activation tile, so prefill is
// bound by the multiply-add rate instead of memory bandwidth.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "kernels/matmul_kernels.h"
#include "kernels/quant_blocks.h"
#include "kernels/x86/simd256_util.h"

#if !defined(__AVX2__) || !defined(__FMA__) || !defined(__F16C__)
#error "the 256-bit kernels must be compiled with -mavx2 -mfma -mf16c"
#endif

namespace minnow::kernels::detail {
namespace {

// ---------------------------------------------------------------------------------------
// Small helpers

inline uint16_t load_u16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}
inline uint32_t load_u32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
inline float h2f(const uint8_t* p) { return _cvtsh_ss(load_u16(p)); }
inline __m256i loadu256(const uint8_t* p) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
}
inline __m128i loadu128(const uint8_t* p) {
  return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
}

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// acc + Σ u·s over each group of 4 bytes (u unsigned, s signed) into 8 i32 lanes. Without
// VNNI this is maddubs (pairs into i16) + madd with ones (pairs of pairs into i32); the
// i16 step cannot saturate for our operands (|u·s + u·s| <= 128·127·2 = 32512).
inline __m256i dot_u8s8(__m256i acc, __m256i u, __m256i s) {
#if defined(MINNOW_DOT_AVX512VNNI)
  return _mm256_dpbusd_epi32(acc, u, s);
#elif defined(MINNOW_DOT_AVXVNNI)
  return _mm256_dpbusd_avx_epi32(acc, u, s);
#else
  const __m256i p16 = _mm256_maddubs_epi16(u, s);
  return _mm256_add_epi32(acc, _mm256_madd_epi16(p16, _mm256_set1_epi16(1)));
#endif
}

// i16 pairs p (from maddubs) times i16 scales, summed in pairs into i32 and added to acc.
inline __m256i dot_i16(__m256i acc, __m256i p, __m256i scales) {
#if defined(MINNOW_DOT_AVX512VNNI)
  return _mm256_dpwssd_epi32(acc, p, scales);
#elif defined(MINNOW_DOT_AVXVNNI)
  return _mm256_dpwssd_avx_epi32(acc, p, scales);
#else
  return _mm256_add_epi32(acc, _mm256_madd_epi16(p, scales));
#endif
}

// 16 bytes of packed nibbles (32-wide layout) -> 32 bytes: element i < 16 from the low
// nibble of byte i (lower 128-bit lane), element 16 + i from its high nibble (upper lane).
inline __m256i unpack_nibbles32(const uint8_t* qs) {
  const __m128i x = loadu128(qs);
  const __m256i both = _mm256_set_m128i(_mm_srli_epi16(x, 4), x);
  return _mm256_and_si256(both, _mm256_set1_epi8(0x0F));
}

#if defined(MINNOW_DOT_AVX512VNNI) || defined(MINNOW_DOT_AVXVNNI)
constexpr bool kHasVnni = true;
#else
constexpr bool kHasVnni = false;
#endif

// Walks an (n_rows × n_batch) output in R × C tiles, finishing the edges with smaller tiles.
// K::tile<R, C>(w, a, y) computes one tile at the given corner.
template <class K, int R>
inline void tile_row(const uint8_t* w, const Activations& a, int64_t n_batch, float* y, int64_t ldy,
                     const K& k) {
  constexpr int C = K::kC;
  int64_t c = 0;
  for (; c + C <= n_batch; c += C) k.template tile<R, C>(w, a.from_row(c), y + c * ldy);
  switch (n_batch - c) {
    case 0:
      break;
    case 1:
      k.template tile<R, 1>(w, a.from_row(c), y + c * ldy);
      break;
    case 2:
      if constexpr (C > 2) k.template tile<R, 2>(w, a.from_row(c), y + c * ldy);
      break;
    case 3:
      if constexpr (C > 3) k.template tile<R, 3>(w, a.from_row(c), y + c * ldy);
      break;
    case 4:
      if constexpr (C > 4) k.template tile<R, 4>(w, a.from_row(c), y + c * ldy);
      break;
    case 5:
      if constexpr (C > 5) k.template tile<R, 5>(w, a.from_row(c), y + c * ldy);
      break;
    default:
      break;
  }
}

// Bytes of weights requested ahead of the tile being computed. A decode step reads every
// weight once, from DRAM; the kernels do enough arithmetic per cache line that the
// out-of-order window alone keeps too few lines in flight, so the next rows are prefetched
// explicitly, about a memory latency's worth of bandwidth ahead.
constexpr int64_t kPrefetchBytes = 4096;

inline void prefetch_range(const uint8_t* p, int64_t n) {
  for (int64_t i = 0; i < n; i += 64)
    _mm_prefetch(reinterpret_cast<const char*>(p + i), _MM_HINT_T0);
}

template <class K>
void drive(const uint8_t* w, size_t w_row_bytes, int64_t n_rows, const Activations& a,
           int64_t n_batch, float* y, int64_t ldy, const K& k) {
  // Decode and small batches use tall tiles (more weight rows in flight), prefill wide ones.
  constexpr int R = K::kR;
  const int64_t tile_bytes = R * static_cast<int64_t>(w_row_bytes);
  const int64_t end_bytes = n_rows * static_cast<int64_t>(w_row_bytes);
  // The start of the range is needed at once: request it all together, not line by line.
  prefetch_range(w, std::min(kPrefetchBytes, end_bytes));
  int64_t r = 0;
  for (; r + R <= n_rows; r += R) {
    const int64_t ahead = r * static_cast<int64_t>(w_row_bytes) + kPrefetchBytes;
    if (ahead < end_bytes) prefetch_range(w + ahead, std::min(tile_bytes, end_bytes - ahead));
    tile_row<K, R>(w + r * w_row_bytes, a, n_batch, y + r, ldy, k);
  }
  switch (n_rows - r) {
    case 0:
      break;
    case 1:
      tile_row<K, 1>(w + r * w_row_bytes, a, n_batch, y + r, ldy, k);
      break;
    case 2:
      if constexpr (R > 2) tile_row<K, 2>(w + r * w_row_bytes, a, n_batch, y + r, ldy, k);
      break;
    case 3:
      if constexpr (R > 3) tile_row<K, 3>(w + r * w_row_bytes, a, n_batch, y + r, ldy, k);
      break;
    case 4:
      if constexpr (R > 4) tile_row<K, 4>(w + r * w_row_bytes, a, n_batch, y + r, ldy, k);
      break;
    case 5:
      if constexpr (R > 5) tile_row<K, 5>(w + r * w_row_bytes, a, n_batch, y + r, ldy, k);
      break;
    default:
      break;
  }
}

// Tile shapes per format family. AVX2 has 16 vector registers; the AVX512 build 32.
#if defined(MINNOW_DOT_AVX512VNNI)
constexpr int kRegs = 32;
#else
constexpr int kRegs = 16;
#endif

}  // namespace
}  // namespace minnow::kernels::detail
