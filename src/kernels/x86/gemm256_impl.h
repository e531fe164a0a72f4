// The 256-bit integer/float GEMM kernels, written once and compiled per target: avx2_*.cpp
// includes this file as is (maddubs + madd), avxvnni_*.cpp defines MINNOW_DOT_AVXVNNI and
// avx512_*.cpp MINNOW_DOT_AVX512VNNI (one vpdpbusd; the AVX512 build also has 32 vector
// registers, so it uses larger tiles). Everything here has internal linkage: each including
// file gets its own copy compiled for its own instruction set, and the linker can never mix
// them up.
//
// Shapes: W is (rows, cols) in GGUF layout, one row = cols / block_elems blocks; the
// activations are `batch` rows of quantized blocks (matmul_kernels.h). The output element
// y[b * ldy + r] = dot(W row r, activation row b).
//
// Register tiling: a tile computes R weight rows × C activation rows at once. Each weight
// block is unpacked into a register once and multiplied with C activation blocks; each
// activation block is loaded once and used by R weight rows. With C = 1 this is the decode
// matrix × vector (R rows in flight hide the load latency); with C > 1 the unpacking cost is
// shared and prefill becomes bound by the multiply-add rate instead of memory bandwidth.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <cstring>

#include "kernels/matmul_kernels.h"
#include "kernels/quant_blocks.h"
#include "kernels/x86/simd256_util.h"

#if !defined(__AVX2__) || !defined(__FMA__) || !defined(__F16C__)
#error "gemm256_impl.h must be compiled with -mavx2 -mfma -mf16c"
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
inline __m256i loadu256(const uint8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
inline __m128i loadu128(const uint8_t* p) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)); }

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

// The 32 fifth bits of Q5_0 / Q5_1 (bit i of qh = element i) -> 0x10 in byte i where set.
// Byte i takes byte i / 8 of qh (a shuffle of the broadcast word), then tests bit i % 8.
inline __m256i unpack_fifth_bits(uint32_t qh) {
  const __m256i bytes = _mm256_shuffle_epi8(
      _mm256_set1_epi32(static_cast<int>(qh)),
      _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0));
  const __m256i bit = _mm256_set1_epi64x(static_cast<int64_t>(0x8040201008040201ULL));
  const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(bytes, bit), bit);
  return _mm256_and_si256(set, _mm256_set1_epi8(0x10));
}

// ---------------------------------------------------------------------------------------
// 32-wide formats × Q8_0 activations: one block per 32-bit lane.
//
// Per block b of weight row r and activation row c the dot product is
//   dw·da·Σ q·a + mw·(da·Σ a)
// with q the weight's stored integer, mw its offset (m for Q4_1/Q5_1) and Σ a, da·Σ a the
// activation side arrays. Done one block at a time, the f16 scales cost as much as the
// integer work. Instead, 8 consecutive blocks of a row are transposed into 8 vectors (vector
// u holds in lane j the 4 weights 4u..4u+3 of block j) to match the transposed activation
// layout (matmul_kernels.h): 8 multiply-adds then leave block j's complete integer sum in
// lane j, and the scales are applied to 8 blocks with one convert + two FMAs, against the
// 8 weight scales (f16 headers gathered and widened together) and 8 activation scales (a
// plain load from the side array).
//
// Offsets that are multiples of the block's own scale (-8 for Q4_0, -16 for Q5_0, and -128
// when signed weights are shifted to unsigned for vpdpbusd) start the integer accumulator at
// -k·Σ a instead of costing anything per weight. Q4_1/Q5_1's m is an f32 FMA per 8 blocks.
//
// maddubs / vpdpbusd multiply unsigned by signed bytes: the nibble formats are unsigned as
// stored. Signed weights (Q8_0, IQ4_NL) use |w| and sign(a, w) on AVX2, and w + 128 on VNNI.

enum class Offset { kNone, kInt, kAffine };

// Stands in for the blocks past the end of a row in the last group: zero scales and q.
alignas(64) constexpr uint8_t kZeroBlock[64] = {};

// Bytes [off, off + 16) of 8 blocks -> 4 vectors, vector t holding in lane j the 4 bytes
// off + 4t .. off + 4t + 3 of block j (a 4x8 dword transpose: two blocks per register, then
// the two unpack levels of a 4x4 transpose in each 128-bit half).
inline void load_transposed16(const uint8_t* const* p, int off, __m256i (&w)[4]) {
  __m256i y[4];
  for (int j = 0; j < 4; ++j) {
    y[j] = _mm256_inserti128_si256(_mm256_castsi128_si256(loadu128(p[j] + off)), loadu128(p[j + 4] + off), 1);
  }
  const __m256i t0 = _mm256_unpacklo_epi32(y[0], y[1]), t1 = _mm256_unpackhi_epi32(y[0], y[1]);
  const __m256i t2 = _mm256_unpacklo_epi32(y[2], y[3]), t3 = _mm256_unpackhi_epi32(y[2], y[3]);
  w[0] = _mm256_unpacklo_epi64(t0, t2);
  w[1] = _mm256_unpackhi_epi64(t0, t2);
  w[2] = _mm256_unpacklo_epi64(t1, t3);
  w[3] = _mm256_unpackhi_epi64(t1, t3);
}

// The 32-bit word at `off` of each of 8 blocks.
inline __m256i load_words(const uint8_t* const* p, int off) {
  return _mm256_setr_epi32(static_cast<int>(load_u32(p[0] + off)), static_cast<int>(load_u32(p[1] + off)),
                           static_cast<int>(load_u32(p[2] + off)), static_cast<int>(load_u32(p[3] + off)),
                           static_cast<int>(load_u32(p[4] + off)), static_cast<int>(load_u32(p[5] + off)),
                           static_cast<int>(load_u32(p[6] + off)), static_cast<int>(load_u32(p[7] + off)));
}

// 8 words each holding two f16 (low half a, high half b) -> the 8 a and the 8 b as f32.
inline void f16_pairs_to_f32(__m256i v, __m256* lo, __m256* hi) {
  const __m256i a = _mm256_and_si256(v, _mm256_set1_epi32(0xFFFF));
  const __m256i b = _mm256_srli_epi32(v, 16);
  // packus interleaves per 128-bit half (a0-3 b0-3 | a4-7 b4-7); the permute restores order.
  const __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(a, b), 0xD8);
  *lo = _mm256_cvtph_ps(_mm256_castsi256_si128(packed));
  *hi = _mm256_cvtph_ps(_mm256_extracti128_si256(packed, 1));
}

// Nibble field of 8 blocks -> the 8 weight vectors: low nibbles are elements 0..15 (vectors
// 0..3), high nibbles elements 16..31 (vectors 4..7).
inline void unpack_nibble_group(const uint8_t* const* p, int off, __m256i (&w)[8]) {
  __m256i t[4];
  load_transposed16(p, off, t);
  const __m256i mask = _mm256_set1_epi8(0x0F);
  for (int i = 0; i < 4; ++i) {
    w[i] = _mm256_and_si256(t[i], mask);
    w[4 + i] = _mm256_and_si256(_mm256_srli_epi16(t[i], 4), mask);
  }
}

// ORs the fifth bits of Q5_0 / Q5_1 into the 8 weight vectors. Lane j of vector u needs bits
// 4u..4u+3 of block j's qh: byte u/2 of it, low or high nibble. Broadcast that byte to the
// lane's 4 bytes, test one bit per byte, turn set bits into 0x10.
inline void add_fifth_bits(const uint8_t* const* p, int off, __m256i (&w)[8]) {
  const __m256i qh = load_words(p, off);
  const __m256i lane_base = _mm256_setr_epi8(0, 0, 0, 0, 4, 4, 4, 4, 8, 8, 8, 8, 12, 12, 12, 12,
                                             0, 0, 0, 0, 4, 4, 4, 4, 8, 8, 8, 8, 12, 12, 12, 12);
  const __m256i bits[2] = {_mm256_set1_epi32(0x08040201), _mm256_set1_epi32(static_cast<int>(0x80402010u))};
  for (int byte = 0; byte < 4; ++byte) {
    const __m256i b = _mm256_shuffle_epi8(qh, _mm256_add_epi8(lane_base, _mm256_set1_epi8(static_cast<char>(byte))));
    for (int half = 0; half < 2; ++half) {
      const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(b, bits[half]), bits[half]);
      const int u = 2 * byte + half;
      w[u] = _mm256_or_si256(w[u], _mm256_and_si256(set, _mm256_set1_epi8(0x10)));
    }
  }
}

// Each format: block bytes, offset kind, -2^kIntShift offset for Offset::kInt, kSigned, how
// many maddubs results fit in an i16 lane before overflow (AVX2 path), and group(): 8 block
// pointers -> 8 weight vectors plus the 8 scales d (and m) as f32.
struct FmtQ4_0 {
  static constexpr size_t kBytes = sizeof(BlockQ4_0);
  static constexpr Offset kOffset = Offset::kInt;
  static constexpr int kIntShift = 3;    // q - 8
  static constexpr bool kSigned = false;
  static constexpr int kI16Depth = 8;    // 8 · 2 · 15 · 127 < 2^15
  static void group(const uint8_t* const* p, __m256i (&w)[8], __m256* d, __m256* m) {
    unpack_nibble_group(p, 2, w);
    f16_pairs_to_f32(load_words(p, 0), d, m);
  }
};

struct FmtQ4_1 {
  static constexpr size_t kBytes = sizeof(BlockQ4_1);
  static constexpr Offset kOffset = Offset::kAffine;
  static constexpr int kIntShift = 0;
  static constexpr bool kSigned = false;
  static constexpr int kI16Depth = 8;
  static void group(const uint8_t* const* p, __m256i (&w)[8], __m256* d, __m256* m) {
    unpack_nibble_group(p, 4, w);
    f16_pairs_to_f32(load_words(p, 0), d, m);
  }
};

struct FmtQ5_0 {
  static constexpr size_t kBytes = sizeof(BlockQ5_0);
  static constexpr Offset kOffset = Offset::kInt;
  static constexpr int kIntShift = 4;    // q - 16
  static constexpr bool kSigned = false;
  static constexpr int kI16Depth = 4;    // 4 · 2 · 31 · 127 < 2^15
  static void group(const uint8_t* const* p, __m256i (&w)[8], __m256* d, __m256* m) {
    unpack_nibble_group(p, 6, w);
    add_fifth_bits(p, 2, w);
    f16_pairs_to_f32(load_words(p, 0), d, m);
  }
};

struct FmtQ5_1 {
  static constexpr size_t kBytes = sizeof(BlockQ5_1);
  static constexpr Offset kOffset = Offset::kAffine;
  static constexpr int kIntShift = 0;
  static constexpr bool kSigned = false;
  static constexpr int kI16Depth = 4;
  static void group(const uint8_t* const* p, __m256i (&w)[8], __m256* d, __m256* m) {
    unpack_nibble_group(p, 8, w);
    add_fifth_bits(p, 4, w);
    f16_pairs_to_f32(load_words(p, 0), d, m);
  }
};

struct FmtQ8_0 {
  static constexpr size_t kBytes = sizeof(BlockQ8_0);
  static constexpr Offset kOffset = Offset::kNone;
  static constexpr int kIntShift = 0;
  static constexpr bool kSigned = true;
  static constexpr int kI16Depth = 1;    // 2 · 128 · 127 already fills an i16
  static void group(const uint8_t* const* p, __m256i (&w)[8], __m256* d, __m256* m) {
    for (int j = 0; j < 8; ++j) w[j] = loadu256(p[j] + 2);
    transpose8x8_epi32(w);
    f16_pairs_to_f32(load_words(p, 0), d, m);
  }
};

// IQ4_NL: the nibble indexes the 16-entry code book (a vpshufb table lookup).
struct FmtIQ4_NL {
  static constexpr size_t kBytes = sizeof(BlockIQ4_NL);
  static constexpr Offset kOffset = Offset::kNone;
  static constexpr int kIntShift = 0;
  static constexpr bool kSigned = true;
  static constexpr int kI16Depth = 1;
  static void group(const uint8_t* const* p, __m256i (&w)[8], __m256* d, __m256* m) {
    unpack_nibble_group(p, 2, w);
    const __m256i table = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kIQ4NLValues)));
    for (int u = 0; u < 8; ++u) w[u] = _mm256_shuffle_epi8(table, w[u]);
    f16_pairs_to_f32(load_words(p, 0), d, m);
  }
};

#if defined(MINNOW_DOT_AVX512VNNI) || defined(MINNOW_DOT_AVXVNNI)
constexpr bool kHasVnni = true;
#else
constexpr bool kHasVnni = false;
#endif

// How a format's weights enter the integer dot product on this target.
template <class F>
struct Dot32 {
  // Signed weights: +128 (xor) and a -128·Σa start with VNNI; |w|, sign(a, w) without.
  static constexpr bool kXor = F::kSigned && kHasVnni;
  static constexpr bool kSignTrick = F::kSigned && !kHasVnni;
  static constexpr int kShift = kXor ? 7 : F::kIntShift;  // integer offset -2^kShift·Σa
  static constexpr bool kIntOffset = kXor || F::kOffset == Offset::kInt;
  static constexpr int kDepth = kHasVnni ? 8 : F::kI16Depth;

  // Unpacks group g (8 blocks, the last one zero-padded) of one weight row.
  static void unpack(const uint8_t* row, int64_t nb, int64_t g, __m256i (&wv)[8], __m256* dw, __m256* mw) {
    const int n_valid = static_cast<int>(nb - 8 * g < 8 ? nb - 8 * g : 8);
    const uint8_t* p[8];
    const uint8_t* first = row + 8 * g * F::kBytes;
    for (int j = 0; j < 8; ++j) p[j] = j < n_valid ? first + j * F::kBytes : kZeroBlock;
    F::group(p, wv, dw, mw);
    if constexpr (kXor) {
      for (int u = 0; u < 8; ++u) wv[u] = _mm256_xor_si256(wv[u], _mm256_set1_epi8(static_cast<char>(0x80)));
    }
  }

  // acc[r][c] += the 8 blocks of group g: weights wv[r][0..7] with scales dw[r], mw[r],
  // against activation row c (a starts at that tile's first row).
  template <int R, int C>
  static void group(const __m256i* const (&wv)[R], const __m256* dw, const __m256* mw,
                    const Activations& a, int64_t g, __m256 (&acc)[R][C]) {
    // Decode (C == 1) has few independent accumulators: split each in two (even / odd u)
    // so that the multiply-add latency does not serialize the loop.
    constexpr int S = (C == 1 && kHasVnni) ? 2 : 1;
    const uint8_t* aq[C];
    for (int c = 0; c < C; ++c) aq[c] = a.q + c * a.row_bytes + 256 * g;
    __m256i iacc[S][R][C];
    for (int c = 0; c < C; ++c) {
      __m256i start = _mm256_setzero_si256();
      if constexpr (kIntOffset) {
        const __m256i sum = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.sum + c * a.side_stride + 8 * g));
        start = _mm256_sub_epi32(start, _mm256_slli_epi32(sum, kShift));
      }
      for (int r = 0; r < R; ++r) {
        iacc[0][r][c] = start;
        if constexpr (S == 2) iacc[1][r][c] = _mm256_setzero_si256();
      }
    }
    for (int u0 = 0; u0 < 8; u0 += kDepth) {
      __m256i t16[R][C];
      for (int u = u0; u < u0 + kDepth; ++u) {
        __m256i w[R];
        for (int r = 0; r < R; ++r) w[r] = wv[r][u];
        for (int c = 0; c < C; ++c) {
          const __m256i av = loadu256(aq[c] + 32 * u);
          for (int r = 0; r < R; ++r) {
            if constexpr (kHasVnni) {
              iacc[u % S][r][c] = dot_u8s8(iacc[u % S][r][c], w[r], av);
            } else if constexpr (kSignTrick) {
              const __m256i p16 = _mm256_maddubs_epi16(_mm256_sign_epi8(w[r], w[r]), _mm256_sign_epi8(av, w[r]));
              iacc[0][r][c] = _mm256_add_epi32(iacc[0][r][c], _mm256_madd_epi16(p16, _mm256_set1_epi16(1)));
            } else {
              const __m256i p16 = _mm256_maddubs_epi16(w[r], av);
              t16[r][c] = u == u0 ? p16 : _mm256_add_epi16(t16[r][c], p16);
            }
          }
        }
      }
      if constexpr (!kHasVnni && !kSignTrick) {
        for (int r = 0; r < R; ++r) {
          for (int c = 0; c < C; ++c) {
            iacc[0][r][c] = _mm256_add_epi32(iacc[0][r][c], _mm256_madd_epi16(t16[r][c], _mm256_set1_epi16(1)));
          }
        }
      }
    }
    for (int c = 0; c < C; ++c) {
      const __m256 da = _mm256_loadu_ps(a.d + c * a.side_stride + 8 * g);
      for (int r = 0; r < R; ++r) {
        __m256i isum = iacc[0][r][c];
        if constexpr (S == 2) isum = _mm256_add_epi32(isum, iacc[1][r][c]);
        acc[r][c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_mul_ps(dw[r], da), acc[r][c]);
      }
      if constexpr (F::kOffset == Offset::kAffine) {
        const __m256 sa = _mm256_loadu_ps(a.s + c * a.side_stride + 8 * g);
        for (int r = 0; r < R; ++r) acc[r][c] = _mm256_fmadd_ps(mw[r], sa, acc[r][c]);
      }
    }
  }
};

// R weight rows × C activation rows, unpacking each weight group as it goes (decode and
// small batches: each group is used by C rows only).
template <class F, int R, int C>
void tile32(const uint8_t* w, size_t w_row_bytes, const Activations& a, int64_t nb, float* y,
            int64_t ldy) {
  __m256 acc[R][C];
  for (int r = 0; r < R; ++r) {
    for (int c = 0; c < C; ++c) acc[r][c] = _mm256_setzero_ps();
  }
  const int64_t ng = (nb + 7) / 8;
  for (int64_t g = 0; g < ng; ++g) {
    __m256i wv[R][8];
    __m256 dw[R], mw[R];
    const __m256i* rows[R];
    for (int r = 0; r < R; ++r) {
      Dot32<F>::unpack(w + r * w_row_bytes, nb, g, wv[r], &dw[r], &mw[r]);
      rows[r] = wv[r];
    }
    Dot32<F>::template group<R, C>(rows, dw, mw, a, g, acc);
  }
  for (int r = 0; r < R; ++r) {
    for (int c = 0; c < C; ++c) y[c * ldy + r] = hsum(acc[r][c]);
  }
}

// Prefill: the groups of R weight rows are unpacked once into a buffer (in L1) and then
// multiplied with every tile of C activation rows, so unpacking costs nothing per activation
// row. The columns are taken kPackGroups groups (2048 elements) at a time to bound the buffer.
constexpr int kPackGroups = 4;

template <class F, int R, int C>
void rows_packed(const uint8_t* w, size_t w_row_bytes, const Activations& a, int64_t nb,
                 int64_t n_batch, float* y, int64_t ldy) {
  const int64_t ng = (nb + 7) / 8;
  alignas(32) __m256i wbuf[kPackGroups][R][8];
  __m256 dbuf[kPackGroups][R], mbuf[kPackGroups][R];
  for (int64_t g0 = 0; g0 < ng; g0 += kPackGroups) {
    const int n = static_cast<int>(ng - g0 < kPackGroups ? ng - g0 : kPackGroups);
    for (int i = 0; i < n; ++i) {
      for (int r = 0; r < R; ++r) Dot32<F>::unpack(w + r * w_row_bytes, nb, g0 + i, wbuf[i][r], &dbuf[i][r], &mbuf[i][r]);
    }
    auto run = [&](auto cols_const, int64_t c0) {
      constexpr int CC = decltype(cols_const)::value;
      const Activations at = a.from_row(c0);
      __m256 acc[R][CC];
      for (int r = 0; r < R; ++r) {
        for (int c = 0; c < CC; ++c) acc[r][c] = _mm256_setzero_ps();
      }
      for (int i = 0; i < n; ++i) {
        const __m256i* rows[R];
        for (int r = 0; r < R; ++r) rows[r] = wbuf[i][r];
        Dot32<F>::template group<R, CC>(rows, dbuf[i], mbuf[i], at, g0 + i, acc);
      }
      for (int r = 0; r < R; ++r) {
        for (int c = 0; c < CC; ++c) {
          float* out = y + (c0 + c) * ldy + r;
          *out = (g0 == 0 ? 0.0f : *out) + hsum(acc[r][c]);
        }
      }
    };
    int64_t c = 0;
    for (; c + C <= n_batch; c += C) run(std::integral_constant<int, C>{}, c);
    for (; c < n_batch; ++c) run(std::integral_constant<int, 1>{}, c);
  }
}

// Walks an (n_rows × n_batch) output in R × C tiles, finishing the edges with smaller tiles.
// K::tile<R, C>(w, a, y) computes one tile at the given corner.
template <class K, int R>
inline void tile_row(const uint8_t* w, const Activations& a, int64_t n_batch, float* y,
                     int64_t ldy, const K& k) {
  constexpr int C = K::kC;
  int64_t c = 0;
  for (; c + C <= n_batch; c += C) k.template tile<R, C>(w, a.from_row(c), y + c * ldy);
  switch (n_batch - c) {
    case 0: break;
    case 1: k.template tile<R, 1>(w, a.from_row(c), y + c * ldy); break;
    case 2: if constexpr (C > 2) k.template tile<R, 2>(w, a.from_row(c), y + c * ldy); break;
    case 3: if constexpr (C > 3) k.template tile<R, 3>(w, a.from_row(c), y + c * ldy); break;
    case 4: if constexpr (C > 4) k.template tile<R, 4>(w, a.from_row(c), y + c * ldy); break;
    case 5: if constexpr (C > 5) k.template tile<R, 5>(w, a.from_row(c), y + c * ldy); break;
    default: break;
  }
}

// Bytes of weights requested ahead of the tile being computed. A decode step reads every
// weight once, from DRAM; the kernels do enough arithmetic per cache line that the
// out-of-order window alone keeps too few lines in flight, so the next rows are prefetched
// explicitly, about a memory latency's worth of bandwidth ahead.
constexpr int64_t kPrefetchBytes = 4096;

inline void prefetch_range(const uint8_t* p, int64_t n) {
  for (int64_t i = 0; i < n; i += 64) _mm_prefetch(reinterpret_cast<const char*>(p + i), _MM_HINT_T0);
}

template <class K>
void drive(const uint8_t* w, size_t w_row_bytes, int64_t n_rows, const Activations& a,
           int64_t n_batch, float* y, int64_t ldy, const K& k) {
  // Decode and small batches use tall tiles (more weight rows in flight), prefill wide ones.
  constexpr int R = K::kR;
  const int64_t tile_bytes = R * static_cast<int64_t>(w_row_bytes);
  const int64_t end_bytes = n_rows * static_cast<int64_t>(w_row_bytes);
  int64_t r = 0;
  for (; r + R <= n_rows; r += R) {
    const int64_t ahead = r * static_cast<int64_t>(w_row_bytes) + kPrefetchBytes;
    if (ahead < end_bytes) prefetch_range(w + ahead, std::min(tile_bytes, end_bytes - ahead));
    tile_row<K, R>(w + r * w_row_bytes, a, n_batch, y + r, ldy, k);
  }
  switch (n_rows - r) {
    case 0: break;
    case 1: tile_row<K, 1>(w + r * w_row_bytes, a, n_batch, y + r, ldy, k); break;
    case 2: if constexpr (R > 2) tile_row<K, 2>(w + r * w_row_bytes, a, n_batch, y + r, ldy, k); break;
    case 3: if constexpr (R > 3) tile_row<K, 3>(w + r * w_row_bytes, a, n_batch, y + r, ldy, k); break;
    case 4: if constexpr (R > 4) tile_row<K, 4>(w + r * w_row_bytes, a, n_batch, y + r, ldy, k); break;
    case 5: if constexpr (R > 5) tile_row<K, 5>(w + r * w_row_bytes, a, n_batch, y + r, ldy, k); break;
    default: break;
  }
}

// Tile shapes per format family. AVX2 has 16 vector registers; the AVX512 build 32.
#if defined(MINNOW_DOT_AVX512VNNI)
constexpr int kRegs = 32;
#else
constexpr int kRegs = 16;
#endif

template <class F, int kRows, int kCols>
struct Kernel32 {
  static constexpr int kR = kRows, kC = kCols;
  size_t w_row_bytes;
  int64_t nb;
  int64_t ldy;
  template <int R, int C>
  void tile(const uint8_t* w, const Activations& a, float* y) const {
    tile32<F, R, C>(w, w_row_bytes, a, nb, y, ldy);
  }
};

template <class F>
void gemm32(int64_t cols, const uint8_t* w, size_t w_row_bytes, int64_t n_rows,
            const Activations& a, int64_t n_batch, float* y, int64_t ldy) {
  const int64_t nb = cols / kQK;
  // Register tiles: decode 4 rows × 1; prefill R × C with 2·R·C accumulators + R weights
  // in registers (16 on AVX2 / AVX-VNNI, 32 with AVX512VL).
  constexpr int kPR = 2, kPC = kRegs == 32 ? 6 : (kHasVnni ? 3 : 2);
  if (n_batch == 1) {
    drive(w, w_row_bytes, n_rows, a, n_batch, y, ldy, Kernel32<F, 4, 1>{w_row_bytes, nb, ldy});
  } else if (n_batch < kPC) {
    drive(w, w_row_bytes, n_rows, a, n_batch, y, ldy, Kernel32<F, 2, kPC>{w_row_bytes, nb, ldy});
  } else {
    int64_t r = 0;
    for (; r + kPR <= n_rows; r += kPR) {
      rows_packed<F, kPR, kPC>(w + r * w_row_bytes, w_row_bytes, a, nb, n_batch, y + r, ldy);
    }
    for (; r < n_rows; ++r) rows_packed<F, 1, kPC>(w + r * w_row_bytes, w_row_bytes, a, nb, n_batch, y + r, ldy);
  }
}

// ---------------------------------------------------------------------------------------
// Float weights × f32 activations: y = Σ w·x with 8-wide FMAs; F16 widens with vcvtph2ps,
// BF16 by shifting into the top half of an f32.

struct FloatF32 {
  static constexpr size_t kElemBytes = 4;
  static __m256 load8(const uint8_t* p) { return _mm256_loadu_ps(reinterpret_cast<const float*>(p)); }
  static float load1(const uint8_t* p) {
    float v;
    std::memcpy(&v, p, 4);
    return v;
  }
};
struct FloatF16 {
  static constexpr size_t kElemBytes = 2;
  static __m256 load8(const uint8_t* p) { return _mm256_cvtph_ps(loadu128(p)); }
  static float load1(const uint8_t* p) { return h2f(p); }
};
struct FloatBF16 {
  static constexpr size_t kElemBytes = 2;
  static __m256 load8(const uint8_t* p) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(loadu128(p)), 16));
  }
  static float load1(const uint8_t* p) {
    const uint32_t bits = static_cast<uint32_t>(load_u16(p)) << 16;
    float v;
    std::memcpy(&v, &bits, 4);
    return v;
  }
};

template <class F, int R, int C>
void tile_float(const uint8_t* w, size_t w_row_bytes, const Activations& a, int64_t cols, float* y,
                int64_t ldy) {
  __m256 acc[R][C];
  for (int r = 0; r < R; ++r) {
    for (int c = 0; c < C; ++c) acc[r][c] = _mm256_setzero_ps();
  }
  const auto* x = reinterpret_cast<const float*>(a.q);
  const int64_t ldx = static_cast<int64_t>(a.row_bytes / sizeof(float));
  int64_t i = 0;
  for (; i + 8 <= cols; i += 8) {
    __m256 wv[R];
    for (int r = 0; r < R; ++r) wv[r] = F::load8(w + r * w_row_bytes + i * F::kElemBytes);
    for (int c = 0; c < C; ++c) {
      const __m256 xv = _mm256_loadu_ps(x + c * ldx + i);
      for (int r = 0; r < R; ++r) acc[r][c] = _mm256_fmadd_ps(wv[r], xv, acc[r][c]);
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int c = 0; c < C; ++c) {
      float t = hsum(acc[r][c]);
      for (int64_t j = i; j < cols; ++j) t += F::load1(w + r * w_row_bytes + j * F::kElemBytes) * x[c * ldx + j];
      y[c * ldy + r] = t;
    }
  }
}

template <class F, int kRows, int kCols>
struct KernelFloat {
  static constexpr int kR = kRows, kC = kCols;
  size_t w_row_bytes;
  int64_t cols;
  int64_t ldy;
  template <int R, int C>
  void tile(const uint8_t* w, const Activations& a, float* y) const {
    tile_float<F, R, C>(w, w_row_bytes, a, cols, y, ldy);
  }
};

template <class F>
void gemm_float(int64_t cols, const uint8_t* w, size_t w_row_bytes, int64_t n_rows,
                const Activations& a, int64_t n_batch, float* y, int64_t ldy) {
  if (n_batch == 1) {
    drive(w, w_row_bytes, n_rows, a, n_batch, y, ldy, KernelFloat<F, 4, 1>{w_row_bytes, cols, ldy});
  } else if constexpr (kRegs == 32) {
    drive(w, w_row_bytes, n_rows, a, n_batch, y, ldy, KernelFloat<F, 4, 5>{w_row_bytes, cols, ldy});
  } else {
    drive(w, w_row_bytes, n_rows, a, n_batch, y, ldy, KernelFloat<F, 4, 2>{w_row_bytes, cols, ldy});
  }
}

// ---------------------------------------------------------------------------------------
// K-quant formats × Q8_K activations (super-blocks of 256).
//
// The sub-block scales are small integers, so they are applied in the integer domain: a
// sub-block's products are summed in pairs into i16 by maddubs (weights unsigned, activations
// signed), then multiplied by the sub-block scale and summed in pairs into i32 by one madd
// (or vpdpwssd) against a vector holding that scale in every i16 lane. One super-block thus
// ends as 8 i32 lanes, converted and scaled by d_w·d_a once. Offsets (the mins of Q4_K /
// Q5_K / Q2_K, the -32 of Q6_K, the -4 of Q3_K) need Σ a over each sub-block: the Q8_K block
// carries those sums (bsums), so they cost one madd per super-block instead of touching the
// weights' q.

// Broadcast i16 lane j of each 128-bit half of v to the whole half (a byte shuffle).
inline __m256i broadcast_i16(__m256i v, int j) {
  return _mm256_shuffle_epi8(v, _mm256_set1_epi16(static_cast<int16_t>(((2 * j + 1) << 8) | (2 * j))));
}

inline float q8k_d(const uint8_t* ab) {
  float d;
  std::memcpy(&d, ab, 4);
  return d;
}
inline const uint8_t* q8k_qs(const uint8_t* ab) { return ab + 4; }
inline __m256i q8k_bsums(const uint8_t* ab) { return loadu256(ab + 4 + kQK_K); }

// Q4_K / Q5_K packed scales (12 bytes) -> 8 scales and 8 mins as bytes. Pairs 0..3 are the
// low 6 bits of bytes 0..3 / 4..7; pairs 4..7 take their low 4 bits from bytes 8..11 and
// their top 2 bits from the top of bytes 0..3 / 4..7. Done on 32-bit words, 4 at a time.
inline void unpack_k4_scales(const uint8_t* s, uint64_t* sc, uint64_t* m) {
  const uint32_t a = load_u32(s), b = load_u32(s + 4), c = load_u32(s + 8);
  const uint32_t sc_lo = a & 0x3f3f3f3fu, m_lo = b & 0x3f3f3f3fu;
  const uint32_t sc_hi = (c & 0x0f0f0f0fu) | ((a >> 2) & 0x30303030u);
  const uint32_t m_hi = ((c >> 4) & 0x0f0f0f0fu) | ((b >> 2) & 0x30303030u);
  *sc = sc_lo | (static_cast<uint64_t>(sc_hi) << 32);
  *m = m_lo | (static_cast<uint64_t>(m_hi) << 32);
}

// Shared by Q4_K and Q5_K: 8 sub-blocks of 32, x = d·sc·q - dmin·m.
// Layout: d, dmin (f16), 12 bytes of scales, [Q5_K: qh 32 bytes], qs 128 bytes: sub-blocks
// 2p and 2p+1 share qs[32p..32p+31] (low / high nibbles); Q5_K's fifth bit of element l of
// sub-block j is bit j of qh[l].
template <bool kFifthBit>
struct FmtK4 {
  static constexpr size_t kBytes = kFifthBit ? sizeof(BlockQ5_K) : sizeof(BlockQ4_K);
  static constexpr size_t kQs = kFifthBit ? 48 : 16;

  template <int R, int C>
  static void superblock(const uint8_t* const* wb, const uint8_t* const* ab, __m256 (&acc)[R][C]) {
    __m256i scales[R];  // 8 i16 scales, in both halves
    __m256i iacc[R][C];
    for (int r = 0; r < R; ++r) {
      uint64_t sc, m;
      unpack_k4_scales(wb[r] + 4, &sc, &m);
      scales[r] = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(_mm_cvtsi64_si128(static_cast<int64_t>(sc))));
      // mins, each repeated for the two bsums (16 elements each) of its sub-block
      const __m128i m16 = _mm_cvtepu8_epi16(_mm_cvtsi64_si128(static_cast<int64_t>(m)));
      const __m256i mins = _mm256_set_m128i(_mm_unpackhi_epi16(m16, m16), _mm_unpacklo_epi16(m16, m16));
      for (int c = 0; c < C; ++c) {
        // The mins term -dmin·da·Σ m·bsum goes straight into the f32 accumulator.
        iacc[r][c] = _mm256_setzero_si256();
        const __m256 mins_f = _mm256_cvtepi32_ps(_mm256_madd_epi16(q8k_bsums(ab[c]), mins));
        const float dmin_da = h2f(wb[r] + 2) * q8k_d(ab[c]);
        acc[r][c] = _mm256_fnmadd_ps(mins_f, _mm256_set1_ps(dmin_da), acc[r][c]);
      }
    }
    for (int p = 0; p < 4; ++p) {
      __m256i lo[R], hi[R];
      for (int r = 0; r < R; ++r) {
        const __m256i qv = loadu256(wb[r] + kQs + 32 * p);
        lo[r] = _mm256_and_si256(qv, _mm256_set1_epi8(0x0F));
        hi[r] = _mm256_and_si256(_mm256_srli_epi16(qv, 4), _mm256_set1_epi8(0x0F));
        if constexpr (kFifthBit) {
          const __m256i qh = loadu256(wb[r] + 16);
          // bit 2p of qh[l] -> 0x10 of element l of sub-block 2p; bit 2p+1 -> sub-block 2p+1
          lo[r] = _mm256_or_si256(lo[r], _mm256_and_si256(_mm256_slli_epi16(_mm256_srli_epi16(qh, 2 * p), 4), _mm256_set1_epi8(0x10)));
          hi[r] = _mm256_or_si256(hi[r], _mm256_and_si256(_mm256_slli_epi16(_mm256_srli_epi16(qh, 2 * p + 1), 4), _mm256_set1_epi8(0x10)));
        }
      }
      for (int c = 0; c < C; ++c) {
        const __m256i a0 = loadu256(q8k_qs(ab[c]) + 64 * p);
        const __m256i a1 = loadu256(q8k_qs(ab[c]) + 64 * p + 32);
        for (int r = 0; r < R; ++r) {
          iacc[r][c] = dot_i16(iacc[r][c], _mm256_maddubs_epi16(lo[r], a0), broadcast_i16(scales[r], 2 * p));
          iacc[r][c] = dot_i16(iacc[r][c], _mm256_maddubs_epi16(hi[r], a1), broadcast_i16(scales[r], 2 * p + 1));
        }
      }
    }
    for (int r = 0; r < R; ++r) {
      const float dw = h2f(wb[r]);
      for (int c = 0; c < C; ++c) {
        acc[r][c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(iacc[r][c]), _mm256_set1_ps(dw * q8k_d(ab[c])), acc[r][c]);
      }
    }
  }
};

// Scales of a quarter (32 elements = sub-blocks 2qi and 2qi+1 of 16) from 16 i16 scales in
// order: the pair is dword qi; broadcast it, then keep its low i16 in the lower 128-bit half
// (maddubs lanes 0..7: elements 0..15) and its high i16 in the upper half.
inline __m256i quarter_scales(__m256i sc16, int qi) {
  const __m256i pair = _mm256_permutevar8x32_epi32(sc16, _mm256_set1_epi32(qi));
  return _mm256_shuffle_epi8(pair, _mm256_set_epi64x(0x0302030203020302, 0x0302030203020302,
                                                     0x0100010001000100, 0x0100010001000100));
}

// Q6_K: 16 sub-blocks of 16, x = d·sc·(q - 32), q 6-bit, sc int8.
// Layout: ql 128 bytes, qh 64 bytes, scales 16 bytes, d. Per 128-element half h, quarter k
// (32 elements) has its low 4 bits in ql[64h + 32(k%2) + l] (low nibble for k < 2, high for
// k >= 2) and its top 2 bits in qh[32h + l] at bit 2k. A quarter spans sub-blocks 2(4h+k) and
// 2(4h+k)+1: after maddubs its first 8 i16 lanes (elements 0..15, lower half) belong to the
// first, the upper half to the second, so its scale vector holds one scale per half.
struct FmtQ6_K {
  static constexpr size_t kBytes = sizeof(BlockQ6_K);

  template <int R, int C>
  static void superblock(const uint8_t* const* wb, const uint8_t* const* ab, __m256 (&acc)[R][C]) {
    __m256i sc16[R];  // 16 scales as i16, in order
    __m256i iacc[R][C];
    for (int r = 0; r < R; ++r) {
      sc16[r] = _mm256_cvtepi8_epi16(loadu128(wb[r] + 192));
      for (int c = 0; c < C; ++c) {
        // the -32 offset: -32·Σ sc·bsum
        const __m256i off = _mm256_madd_epi16(q8k_bsums(ab[c]), sc16[r]);
        iacc[r][c] = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(off, 5));
      }
    }
    for (int h = 0; h < 2; ++h) {
      for (int k = 0; k < 4; ++k) {
        __m256i q[R], scale[R];
        for (int r = 0; r < R; ++r) {
          const __m256i ql = loadu256(wb[r] + 64 * h + 32 * (k % 2));
          const __m256i qh = loadu256(wb[r] + 128 + 32 * h);
          const __m256i low = k < 2 ? _mm256_and_si256(ql, _mm256_set1_epi8(0x0F))
                                    : _mm256_and_si256(_mm256_srli_epi16(ql, 4), _mm256_set1_epi8(0x0F));
          // bits 2k, 2k+1 of qh -> bits 4, 5
          const __m256i high = 2 * k <= 4 ? _mm256_slli_epi16(qh, 4 - 2 * k) : _mm256_srli_epi16(qh, 2 * k - 4);
          q[r] = _mm256_or_si256(low, _mm256_and_si256(high, _mm256_set1_epi8(0x30)));
          scale[r] = quarter_scales(sc16[r], 4 * h + k);
        }
        for (int c = 0; c < C; ++c) {
          const __m256i av = loadu256(q8k_qs(ab[c]) + 128 * h + 32 * k);
          for (int r = 0; r < R; ++r) iacc[r][c] = dot_i16(iacc[r][c], _mm256_maddubs_epi16(q[r], av), scale[r]);
        }
      }
    }
    for (int r = 0; r < R; ++r) {
      const float dw = h2f(wb[r] + 208);
      for (int c = 0; c < C; ++c) {
        acc[r][c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(iacc[r][c]), _mm256_set1_ps(dw * q8k_d(ab[c])), acc[r][c]);
      }
    }
  }
};

// Q2_K: 16 sub-blocks of 16, x = d·sc·q - dmin·m, q 2-bit, sc / m the low / high nibble of
// scales[g]. Layout: scales 16, qs 64, d, dmin. Per 128-element half h, quarter k of the
// half is bits 2k..2k+1 of qs[32h + l].
struct FmtQ2_K {
  static constexpr size_t kBytes = sizeof(BlockQ2_K);

  template <int R, int C>
  static void superblock(const uint8_t* const* wb, const uint8_t* const* ab, __m256 (&acc)[R][C]) {
    __m256i sc16[R];
    __m256i iacc[R][C];
    for (int r = 0; r < R; ++r) {
      const __m128i raw = loadu128(wb[r]);
      sc16[r] = _mm256_cvtepu8_epi16(_mm_and_si128(raw, _mm_set1_epi8(0x0F)));
      const __m256i m16 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(raw, 4), _mm_set1_epi8(0x0F)));
      const float dmin = h2f(wb[r] + 82);
      for (int c = 0; c < C; ++c) {
        iacc[r][c] = _mm256_setzero_si256();
        const __m256 mins = _mm256_cvtepi32_ps(_mm256_madd_epi16(q8k_bsums(ab[c]), m16));
        acc[r][c] = _mm256_fnmadd_ps(mins, _mm256_set1_ps(dmin * q8k_d(ab[c])), acc[r][c]);
      }
    }
    for (int h = 0; h < 2; ++h) {
      for (int k = 0; k < 4; ++k) {
        __m256i q[R], scale[R];
        for (int r = 0; r < R; ++r) {
          const __m256i qv = loadu256(wb[r] + 16 + 32 * h);
          q[r] = _mm256_and_si256(_mm256_srli_epi16(qv, 2 * k), _mm256_set1_epi8(3));
          scale[r] = quarter_scales(sc16[r], 4 * h + k);
        }
        for (int c = 0; c < C; ++c) {
          const __m256i av = loadu256(q8k_qs(ab[c]) + 128 * h + 32 * k);
          for (int r = 0; r < R; ++r) iacc[r][c] = dot_i16(iacc[r][c], _mm256_maddubs_epi16(q[r], av), scale[r]);
        }
      }
    }
    for (int r = 0; r < R; ++r) {
      const float dw = h2f(wb[r] + 80);
      for (int c = 0; c < C; ++c) {
        acc[r][c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(iacc[r][c]), _mm256_set1_ps(dw * q8k_d(ab[c])), acc[r][c]);
      }
    }
  }
};

// Q3_K: 16 sub-blocks of 16, x = d·sc·(q - 4), q = 2 low bits (as Q2_K) + 4·hbit, sc signed
// 6-bit stored + 32. Layout: hmask 32, qs 64, scales 12, d. Element 128h + 32k + l has its
// hbit at bit 4h + k of hmask[l]. The -4 is folded in through the bsums.
struct FmtQ3_K {
  static constexpr size_t kBytes = sizeof(BlockQ3_K);

  // Sixteen 6-bit scales: low nibbles of bytes 0..7 (scales 0..7) and their high nibbles
  // (scales 8..15), top 2 bits of scale j in byte 8 + j % 4 at bit 2·(j / 4).
  static __m256i scales(const uint8_t* s) {
    const uint64_t lo8 = load_u32(s) | (static_cast<uint64_t>(load_u32(s + 4)) << 32);
    const uint32_t hi = load_u32(s + 8);
    const __m128i low = _mm_set_epi64x(static_cast<int64_t>((lo8 >> 4) & 0x0F0F0F0F0F0F0F0FULL),
                                       static_cast<int64_t>(lo8 & 0x0F0F0F0F0F0F0F0FULL));
    // byte j of `top`: bits 2(j/4).. of byte 8 + j%4, i.e. (hi >> 2(j/4)) byte j%4
    uint8_t top[16];
    for (int j = 0; j < 16; ++j) top[j] = static_cast<uint8_t>(((hi >> (8 * (j % 4) + 2 * (j / 4))) & 3) << 4);
    const __m128i all = _mm_or_si128(low, _mm_loadu_si128(reinterpret_cast<const __m128i*>(top)));
    return _mm256_sub_epi16(_mm256_cvtepu8_epi16(all), _mm256_set1_epi16(32));
  }

  template <int R, int C>
  static void superblock(const uint8_t* const* wb, const uint8_t* const* ab, __m256 (&acc)[R][C]) {
    __m256i sc16[R];
    __m256i iacc[R][C];
    for (int r = 0; r < R; ++r) {
      sc16[r] = scales(wb[r] + 96);
      for (int c = 0; c < C; ++c) {
        const __m256i off = _mm256_madd_epi16(q8k_bsums(ab[c]), sc16[r]);  // -4·Σ sc·bsum
        iacc[r][c] = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(off, 2));
      }
    }
    for (int h = 0; h < 2; ++h) {
      for (int k = 0; k < 4; ++k) {
        __m256i q[R], scale[R];
        for (int r = 0; r < R; ++r) {
          const __m256i qv = loadu256(wb[r] + 32 + 32 * h);
          const __m256i hm = loadu256(wb[r]);
          const int bit = 4 * h + k;
          // hbit -> 4: shift bit `bit` of each byte to bit 2
          const __m256i hb = bit >= 2 ? _mm256_srli_epi16(hm, bit - 2) : _mm256_slli_epi16(hm, 2 - bit);
          q[r] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(qv, 2 * k), _mm256_set1_epi8(3)),
                                 _mm256_and_si256(hb, _mm256_set1_epi8(4)));
          scale[r] = quarter_scales(sc16[r], 4 * h + k);
        }
        for (int c = 0; c < C; ++c) {
          const __m256i av = loadu256(q8k_qs(ab[c]) + 128 * h + 32 * k);
          for (int r = 0; r < R; ++r) iacc[r][c] = dot_i16(iacc[r][c], _mm256_maddubs_epi16(q[r], av), scale[r]);
        }
      }
    }
    for (int r = 0; r < R; ++r) {
      const float dw = h2f(wb[r] + 108);
      for (int c = 0; c < C; ++c) {
        acc[r][c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(iacc[r][c]), _mm256_set1_ps(dw * q8k_d(ab[c])), acc[r][c]);
      }
    }
  }
};

// IQ4_XS: 8 sub-blocks of 32, x = d·(ls - 32)·kIQ4NLValues[q]; ls 6-bit (low 4 bits in
// scales_l, nibble j % 2 of byte j / 2; top 2 bits at bit 2j of scales_h). Layout: d,
// scales_h (u16), scales_l 4, qs 128 (sub-block j: qs[16j..16j+15] in the 32-wide nibble
// layout). Code book values are signed: |w| and sign(a, w) on every target.
struct FmtIQ4_XS {
  static constexpr size_t kBytes = sizeof(BlockIQ4_XS);

  template <int R, int C>
  static void superblock(const uint8_t* const* wb, const uint8_t* const* ab, __m256 (&acc)[R][C]) {
    const __m256i table = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kIQ4NLValues)));
    __m256i scales[R];  // 8 i16 (ls - 32), in both halves
    __m256i iacc[R][C];
    for (int r = 0; r < R; ++r) {
      const uint32_t sh = load_u16(wb[r] + 2);
      const uint32_t sl = load_u32(wb[r] + 4);
      alignas(16) int16_t ls[8];
      for (int j = 0; j < 8; ++j) {
        ls[j] = static_cast<int16_t>((((sl >> (4 * j)) & 0xF) | (((sh >> (2 * j)) & 3) << 4)) - 32);
      }
      scales[r] = _mm256_broadcastsi128_si256(_mm_load_si128(reinterpret_cast<const __m128i*>(ls)));
      for (int c = 0; c < C; ++c) iacc[r][c] = _mm256_setzero_si256();
    }
    for (int j = 0; j < 8; ++j) {
      __m256i wv[R], wabs[R], scale[R];
      for (int r = 0; r < R; ++r) {
        wv[r] = _mm256_shuffle_epi8(table, unpack_nibbles32(wb[r] + 8 + 16 * j));
        wabs[r] = _mm256_sign_epi8(wv[r], wv[r]);
        scale[r] = broadcast_i16(scales[r], j);
      }
      for (int c = 0; c < C; ++c) {
        const __m256i av = loadu256(q8k_qs(ab[c]) + 32 * j);
        for (int r = 0; r < R; ++r) {
          iacc[r][c] = dot_i16(iacc[r][c], _mm256_maddubs_epi16(wabs[r], _mm256_sign_epi8(av, wv[r])), scale[r]);
        }
      }
    }
    for (int r = 0; r < R; ++r) {
      const float dw = h2f(wb[r]);
      for (int c = 0; c < C; ++c) {
        acc[r][c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(iacc[r][c]), _mm256_set1_ps(dw * q8k_d(ab[c])), acc[r][c]);
      }
    }
  }
};

template <class F, int R, int C>
void tile_k(const uint8_t* w, size_t w_row_bytes, const Activations& a, int64_t nsb, float* y,
            int64_t ldy) {
  __m256 acc[R][C];
  for (int r = 0; r < R; ++r) {
    for (int c = 0; c < C; ++c) acc[r][c] = _mm256_setzero_ps();
  }
  for (int64_t sb = 0; sb < nsb; ++sb) {
    const uint8_t* wb[R];
    const uint8_t* ab[C];
    for (int r = 0; r < R; ++r) wb[r] = w + r * w_row_bytes + sb * F::kBytes;
    for (int c = 0; c < C; ++c) ab[c] = a.q + c * a.row_bytes + sb * sizeof(BlockQ8_K);
    F::template superblock<R, C>(wb, ab, acc);
  }
  for (int r = 0; r < R; ++r) {
    for (int c = 0; c < C; ++c) y[c * ldy + r] = hsum(acc[r][c]);
  }
}

template <class F, int kRows, int kCols>
struct KernelK {
  static constexpr int kR = kRows, kC = kCols;
  size_t w_row_bytes;
  int64_t nsb;
  int64_t ldy;
  template <int R, int C>
  void tile(const uint8_t* w, const Activations& a, float* y) const {
    tile_k<F, R, C>(w, w_row_bytes, a, nsb, y, ldy);
  }
};

template <class F>
void gemm_k(int64_t cols, const uint8_t* w, size_t w_row_bytes, int64_t n_rows,
            const Activations& a, int64_t n_batch, float* y, int64_t ldy) {
  const int64_t nsb = cols / kQK_K;
  if (n_batch == 1) {
    drive(w, w_row_bytes, n_rows, a, n_batch, y, ldy, KernelK<F, 2, 1>{w_row_bytes, nsb, ldy});
  } else if constexpr (kRegs == 32) {
    drive(w, w_row_bytes, n_rows, a, n_batch, y, ldy, KernelK<F, 2, 4>{w_row_bytes, nsb, ldy});
  } else {
    drive(w, w_row_bytes, n_rows, a, n_batch, y, ldy, KernelK<F, 2, 2>{w_row_bytes, nsb, ldy});
  }
}

// Fills the 256-bit kernels of this target into a table.
inline void fill_gemm256(KernelTable& t) {
  t.q8_0_layout = Q8Layout::kTransposed;
  t.gemm[slot(TensorType::Q4_0)] = &gemm32<FmtQ4_0>;
  t.gemm[slot(TensorType::Q4_1)] = &gemm32<FmtQ4_1>;
  t.gemm[slot(TensorType::Q5_0)] = &gemm32<FmtQ5_0>;
  t.gemm[slot(TensorType::Q5_1)] = &gemm32<FmtQ5_1>;
  t.gemm[slot(TensorType::Q8_0)] = &gemm32<FmtQ8_0>;
  t.gemm[slot(TensorType::IQ4_NL)] = &gemm32<FmtIQ4_NL>;
  t.gemm[slot(TensorType::Q2_K)] = &gemm_k<FmtQ2_K>;
  t.gemm[slot(TensorType::Q3_K)] = &gemm_k<FmtQ3_K>;
  t.gemm[slot(TensorType::Q4_K)] = &gemm_k<FmtK4<false>>;
  t.gemm[slot(TensorType::Q5_K)] = &gemm_k<FmtK4<true>>;
  t.gemm[slot(TensorType::Q6_K)] = &gemm_k<FmtQ6_K>;
  t.gemm[slot(TensorType::IQ4_XS)] = &gemm_k<FmtIQ4_XS>;
  t.gemm[slot(TensorType::F32)] = &gemm_float<FloatF32>;
  t.gemm[slot(TensorType::F16)] = &gemm_float<FloatF16>;
  t.gemm[slot(TensorType::BF16)] = &gemm_float<FloatBF16>;
}

}  // namespace
}  // namespace minnow::kernels::detail
