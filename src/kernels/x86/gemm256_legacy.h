// 256-bit kernels of the 32-wide formats (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL) × Q8_0
// activations, and of the float formats (F32, F16, BF16) × f32. Part of the per-target
// kernel set: included by gemm256_impl.h only (see gemm256_common.h).
#pragma once

#include "kernels/x86/gemm256_common.h"

namespace minnow::kernels::detail {
namespace {

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

// The 8 blocks of a group: p[j] is block j, or kZeroBlock past the row's end; block j is at
// base + index[j] where valid[j] is set (for the header gather).
struct GroupPtrs {
  const uint8_t* p[8];
  const uint8_t* base;
  __m256i index;
  __m256i valid;
};

// Bytes [off, off + 16) of 8 blocks -> 4 vectors, vector t holding in lane j the 4 bytes
// off + 4t .. off + 4t + 3 of block j (a 4x8 dword transpose: two blocks per register, then
// the two unpack levels of a 4x4 transpose in each 128-bit half).
inline void load_transposed16(const GroupPtrs& g, int off, __m256i (&w)[4]) {
  __m256i y[4];
  for (int j = 0; j < 4; ++j) {
    y[j] = _mm256_inserti128_si256(_mm256_castsi128_si256(loadu128(g.p[j] + off)),
                                   loadu128(g.p[j + 4] + off), 1);
  }
  const __m256i t0 = _mm256_unpacklo_epi32(y[0], y[1]), t1 = _mm256_unpackhi_epi32(y[0], y[1]);
  const __m256i t2 = _mm256_unpacklo_epi32(y[2], y[3]), t3 = _mm256_unpackhi_epi32(y[2], y[3]);
  w[0] = _mm256_unpacklo_epi64(t0, t2);
  w[1] = _mm256_unpackhi_epi64(t0, t2);
  w[2] = _mm256_unpacklo_epi64(t1, t3);
  w[3] = _mm256_unpackhi_epi64(t1, t3);
}

// The 32-bit word at `off` of each of the group's blocks (0 past the row's end): one masked
// gather instead of 8 scalar loads and inserts.
inline __m256i load_words(const GroupPtrs& g, int off) {
  return _mm256_mask_i32gather_epi32(
      _mm256_setzero_si256(), reinterpret_cast<const int*>(g.base + off), g.index, g.valid, 1);
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
inline void unpack_nibble_group(const GroupPtrs& g, int off, __m256i (&w)[8]) {
  __m256i t[4];
  load_transposed16(g, off, t);
  const __m256i mask = _mm256_set1_epi8(0x0F);
  for (int i = 0; i < 4; ++i) {
    w[i] = _mm256_and_si256(t[i], mask);
    w[4 + i] = _mm256_and_si256(_mm256_srli_epi16(t[i], 4), mask);
  }
}

// ORs the fifth bits of Q5_0 / Q5_1 into the 8 weight vectors. Lane j of vector u needs bits
// 4u..4u+3 of block j's qh: byte u/2 of it, low or high nibble. Broadcast that byte to the
// lane's 4 bytes, test one bit per byte, turn set bits into 0x10.
inline void add_fifth_bits(const GroupPtrs& g, int off, __m256i (&w)[8]) {
  const __m256i qh = load_words(g, off);
  const __m256i lane_base = _mm256_setr_epi8(0, 0, 0, 0, 4, 4, 4, 4, 8, 8, 8, 8, 12, 12, 12, 12, 0,
                                             0, 0, 0, 4, 4, 4, 4, 8, 8, 8, 8, 12, 12, 12, 12);
  const __m256i bits[2] = {_mm256_set1_epi32(0x08040201),
                           _mm256_set1_epi32(static_cast<int>(0x80402010u))};
  for (int byte = 0; byte < 4; ++byte) {
    const __m256i b = _mm256_shuffle_epi8(
        qh, _mm256_add_epi8(lane_base, _mm256_set1_epi8(static_cast<char>(byte))));
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
  static constexpr int kIntShift = 3;  // q - 8
  static constexpr bool kSigned = false;
  static constexpr int kI16Depth = 8;  // 8 · 2 · 15 · 127 < 2^15
  static void group(const GroupPtrs& g, __m256i (&w)[8], __m256* d, __m256* m) {
    unpack_nibble_group(g, 2, w);
    f16_pairs_to_f32(load_words(g, 0), d, m);
  }
};

struct FmtQ4_1 {
  static constexpr size_t kBytes = sizeof(BlockQ4_1);
  static constexpr Offset kOffset = Offset::kAffine;
  static constexpr int kIntShift = 0;
  static constexpr bool kSigned = false;
  static constexpr int kI16Depth = 8;
  static void group(const GroupPtrs& g, __m256i (&w)[8], __m256* d, __m256* m) {
    unpack_nibble_group(g, 4, w);
    f16_pairs_to_f32(load_words(g, 0), d, m);
  }
};

struct FmtQ5_0 {
  static constexpr size_t kBytes = sizeof(BlockQ5_0);
  static constexpr Offset kOffset = Offset::kInt;
  static constexpr int kIntShift = 4;  // q - 16
  static constexpr bool kSigned = false;
  static constexpr int kI16Depth = 4;  // 4 · 2 · 31 · 127 < 2^15
  static void group(const GroupPtrs& g, __m256i (&w)[8], __m256* d, __m256* m) {
    unpack_nibble_group(g, 6, w);
    add_fifth_bits(g, 2, w);
    f16_pairs_to_f32(load_words(g, 0), d, m);
  }
};

struct FmtQ5_1 {
  static constexpr size_t kBytes = sizeof(BlockQ5_1);
  static constexpr Offset kOffset = Offset::kAffine;
  static constexpr int kIntShift = 0;
  static constexpr bool kSigned = false;
  static constexpr int kI16Depth = 4;
  static void group(const GroupPtrs& g, __m256i (&w)[8], __m256* d, __m256* m) {
    unpack_nibble_group(g, 8, w);
    add_fifth_bits(g, 4, w);
    f16_pairs_to_f32(load_words(g, 0), d, m);
  }
};

struct FmtQ8_0 {
  static constexpr size_t kBytes = sizeof(BlockQ8_0);
  static constexpr Offset kOffset = Offset::kNone;
  static constexpr int kIntShift = 0;
  static constexpr bool kSigned = true;
  static constexpr int kI16Depth = 1;  // 2 · 128 · 127 already fills an i16
  static void group(const GroupPtrs& g, __m256i (&w)[8], __m256* d, __m256* m) {
    for (int j = 0; j < 8; ++j) w[j] = loadu256(g.p[j] + 2);
    transpose8x8_epi32(w);
    f16_pairs_to_f32(load_words(g, 0), d, m);
  }
};

// IQ4_NL: the nibble indexes the 16-entry code book (a vpshufb table lookup).
struct FmtIQ4_NL {
  static constexpr size_t kBytes = sizeof(BlockIQ4_NL);
  static constexpr Offset kOffset = Offset::kNone;
  static constexpr int kIntShift = 0;
  static constexpr bool kSigned = true;
  static constexpr int kI16Depth = 1;
  static void group(const GroupPtrs& g, __m256i (&w)[8], __m256* d, __m256* m) {
    unpack_nibble_group(g, 2, w);
    const __m256i table = _mm256_broadcastsi128_si256(
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(kIQ4NLValues)));
    for (int u = 0; u < 8; ++u) w[u] = _mm256_shuffle_epi8(table, w[u]);
    f16_pairs_to_f32(load_words(g, 0), d, m);
  }
};

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
  static void unpack(const uint8_t* row, int64_t nb, int64_t g, __m256i (&wv)[8], __m256* dw,
                     __m256* mw) {
    const int n_valid = static_cast<int>(nb - 8 * g < 8 ? nb - 8 * g : 8);
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    GroupPtrs ptrs;
    ptrs.base = row + 8 * g * F::kBytes;
    ptrs.index = _mm256_mullo_epi32(lane, _mm256_set1_epi32(static_cast<int>(F::kBytes)));
    ptrs.valid = _mm256_cmpgt_epi32(_mm256_set1_epi32(n_valid), lane);
    for (int j = 0; j < 8; ++j) ptrs.p[j] = j < n_valid ? ptrs.base + j * F::kBytes : kZeroBlock;
    finish(ptrs, wv, dw, mw);
  }

  // The last group of two rows whose rows end with at most 4 blocks in it (576 or 640
  // columns: 2 or 4 blocks): both tails in one group, row0's in lanes 0..3 and row1's in
  // lanes 4..7, so that the padding does not cost a whole group per row.
  static void unpack_tails(const uint8_t* row0, const uint8_t* row1, int64_t nb, __m256i (&wv)[8],
                           __m256* dw, __m256* mw) {
    const int64_t g = nb / 8;
    const int n = static_cast<int>(nb - 8 * g);
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i in_half = _mm256_and_si256(lane, _mm256_set1_epi32(3));
    const uint8_t* first0 = row0 + 8 * g * F::kBytes;
    const uint8_t* first1 = row1 + 8 * g * F::kBytes;
    GroupPtrs ptrs;
    ptrs.base = first0;
    ptrs.index = _mm256_add_epi32(
        _mm256_mullo_epi32(in_half, _mm256_set1_epi32(static_cast<int>(F::kBytes))),
        _mm256_and_si256(_mm256_cmpgt_epi32(lane, _mm256_set1_epi32(3)),
                         _mm256_set1_epi32(static_cast<int>(first1 - first0))));
    ptrs.valid = _mm256_cmpgt_epi32(_mm256_set1_epi32(n), in_half);
    for (int j = 0; j < 4; ++j) {
      ptrs.p[j] = j < n ? first0 + j * F::kBytes : kZeroBlock;
      ptrs.p[4 + j] = j < n ? first1 + j * F::kBytes : kZeroBlock;
    }
    finish(ptrs, wv, dw, mw);
  }

  static void finish(const GroupPtrs& ptrs, __m256i (&wv)[8], __m256* dw, __m256* mw) {
    F::group(ptrs, wv, dw, mw);
    if constexpr (kXor) {
      for (int u = 0; u < 8; ++u)
        wv[u] = _mm256_xor_si256(wv[u], _mm256_set1_epi8(static_cast<char>(0x80)));
    }
  }

  // acc[r][c] += the 8 blocks of group g: weights wv[r][0..7] with scales dw[r], mw[r],
  // against activation row c (a starts at that tile's first row). kTails: the weights come
  // from unpack_tails, so the activation's lanes 0..3 (its last blocks) are duplicated into
  // lanes 4..7 (128-bit broadcasts) to meet the second row's tail.
  template <int R, int C, bool kTails = false>
  static void group(const __m256i* const (&wv)[R], const __m256* dw, const __m256* mw,
                    const Activations& a, int64_t g, __m256 (&acc)[R][C]) {
    auto load_i = [](const void* p) {
      if constexpr (kTails)
        return _mm256_broadcastsi128_si256(_mm_loadu_si128(static_cast<const __m128i*>(p)));
      else
        return _mm256_loadu_si256(static_cast<const __m256i*>(p));
    };
    auto load_f = [](const float* p) {
      if constexpr (kTails)
        return _mm256_broadcast_ps(reinterpret_cast<const __m128*>(p));
      else
        return _mm256_loadu_ps(p);
    };
    // Decode (C == 1) has few independent accumulators: split each in two (even / odd u)
    // so that the multiply-add latency does not serialize the loop.
    constexpr int S = (C == 1 && kHasVnni) ? 2 : 1;
    const uint8_t* aq[C];
    for (int c = 0; c < C; ++c) aq[c] = a.q + c * a.row_bytes + 256 * g;
    __m256i iacc[S][R][C];
    for (int c = 0; c < C; ++c) {
      __m256i start = _mm256_setzero_si256();
      if constexpr (kIntOffset) {
        const __m256i sum = load_i(a.sum + c * a.side_stride + 8 * g);
        start = _mm256_sub_epi32(start, _mm256_slli_epi32(sum, kShift));
      }
      for (int r = 0; r < R; ++r) {
        iacc[0][r][c] = start;
        if constexpr (S == 2) iacc[1][r][c] = _mm256_setzero_si256();
      }
    }
    for (int u0 = 0; u0 < 8; u0 += kDepth) {
      __m256i t16[R][C] = {};  // set at u == u0; zeroed for GCC -Wmaybe-uninitialized
      for (int u = u0; u < u0 + kDepth; ++u) {
        __m256i w[R];
        for (int r = 0; r < R; ++r) w[r] = wv[r][u];
        for (int c = 0; c < C; ++c) {
          const __m256i av = load_i(aq[c] + 32 * u);
          for (int r = 0; r < R; ++r) {
            if constexpr (kHasVnni) {
              iacc[u % S][r][c] = dot_u8s8(iacc[u % S][r][c], w[r], av);
            } else if constexpr (kSignTrick) {
              const __m256i p16 =
                  _mm256_maddubs_epi16(_mm256_sign_epi8(w[r], w[r]), _mm256_sign_epi8(av, w[r]));
              iacc[0][r][c] =
                  _mm256_add_epi32(iacc[0][r][c], _mm256_madd_epi16(p16, _mm256_set1_epi16(1)));
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
            iacc[0][r][c] =
                _mm256_add_epi32(iacc[0][r][c], _mm256_madd_epi16(t16[r][c], _mm256_set1_epi16(1)));
          }
        }
      }
    }
    for (int c = 0; c < C; ++c) {
      const __m256 da = load_f(a.d + c * a.side_stride + 8 * g);
      for (int r = 0; r < R; ++r) {
        __m256i isum = iacc[0][r][c];
        if constexpr (S == 2) isum = _mm256_add_epi32(isum, iacc[1][r][c]);
        acc[r][c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_mul_ps(dw[r], da), acc[r][c]);
      }
      if constexpr (F::kOffset == Offset::kAffine) {
        const __m256 sa = load_f(a.s + c * a.side_stride + 8 * g);
        for (int r = 0; r < R; ++r) acc[r][c] = _mm256_fmadd_ps(mw[r], sa, acc[r][c]);
      }
    }
  }
};

// Groups of 8 blocks summed between horizontal sums (rows_packed's buffer size; tile32 follows).
constexpr int kPackGroups = 4;

// R weight rows × C activation rows, unpacking each weight group as it goes (decode and
// small batches: each group is used by C rows only).
template <class F, int R, int C>
void tile32(const uint8_t* w, size_t w_row_bytes, const Activations& a, int64_t nb, float* y,
            int64_t ldy) {
  using D = Dot32<F>;
  __m256 acc[R][C];
  for (int r = 0; r < R; ++r) {
    for (int c = 0; c < C; ++c) acc[r][c] = _mm256_setzero_ps();
  }
  const int64_t ng = (nb + 7) / 8;
  // Rows ending with a short group (<= 4 blocks) share it pairwise (Dot32::unpack_tails); the
  // tail's products are summed from zero and then added, which rows_packed mirrors, so that a
  // row's result never depends on the batch it came in with (the engine relies on it: a prompt
  // gives the same logits however it is split into calls, bit for bit).
  constexpr int kPairs = R / 2;
  constexpr bool kPairTails = true;
  const bool pair_tails = kPairTails && kPairs > 0 && nb % 8 != 0 && nb % 8 <= 4;
  // The sums are taken per kPackGroups groups, as rows_packed does, for the same reason.
  float partial[R][C] = {};
  for (int64_t g = 0; g < ng; ++g) {
    if (g > 0 && g % kPackGroups == 0) {
      for (int r = 0; r < R; ++r) {
        for (int c = 0; c < C; ++c) {
          partial[r][c] = partial[r][c] + hsum(acc[r][c]);
          acc[r][c] = _mm256_setzero_ps();
        }
      }
    }
    const bool tail_pass = pair_tails && g == ng - 1;
    __m256i wv[R][8];
    __m256 dw[R], mw[R];
    const __m256i* rows[R];
    if (!tail_pass) {
      if constexpr (C == 1) {
        // Decode: each row's group goes from unpacking straight into its multiply-adds, so
        // its 8 weight vectors stay in registers (the activation is a memory operand); the
        // rows are independent, which lets the core overlap one row's unpacking with the
        // previous row's multiply-adds.
        for (int r = 0; r < R; ++r) {
          __m256i one[8];
          __m256 d1, m1;
          D::unpack(w + r * w_row_bytes, nb, g, one, &d1, &m1);
          const __m256i* row[1] = {one};
          __m256 acc1[1][C] = {{acc[r][0]}};
          D::template group<1, C>(row, &d1, &m1, a, g, acc1);
          acc[r][0] = acc1[0][0];
        }
      } else {
        for (int r = 0; r < R; ++r) {
          D::unpack(w + r * w_row_bytes, nb, g, wv[r], &dw[r], &mw[r]);
          rows[r] = wv[r];
        }
        D::template group<R, C>(rows, dw, mw, a, g, acc);
      }
      continue;
    }
    if constexpr (kPairTails && kPairs > 0) {
      __m256 tail_acc[kPairs][C];
      const __m256i* pair_rows[kPairs];
      for (int p = 0; p < kPairs; ++p) {
        D::unpack_tails(w + 2 * p * w_row_bytes, w + (2 * p + 1) * w_row_bytes, nb, wv[p], &dw[p],
                        &mw[p]);
        pair_rows[p] = wv[p];
        for (int c = 0; c < C; ++c) tail_acc[p][c] = _mm256_setzero_ps();
      }
      D::template group<kPairs, C, true>(pair_rows, dw, mw, a, g, tail_acc);
      // Lanes 0..3 belong to row 2p, lanes 4..7 to row 2p + 1: fold each half into its row's
      // accumulator (zeros in the other half keep the later horizontal sums right).
      for (int p = 0; p < kPairs; ++p) {
        for (int c = 0; c < C; ++c) {
          const __m256 lo =
              _mm256_permute2f128_ps(tail_acc[p][c], tail_acc[p][c], 0x80);  // (lo, 0)
          const __m256 hi =
              _mm256_permute2f128_ps(tail_acc[p][c], tail_acc[p][c], 0x81);  // (hi, 0)
          acc[2 * p][c] = _mm256_add_ps(acc[2 * p][c], lo);
          acc[2 * p + 1][c] = _mm256_add_ps(acc[2 * p + 1][c], hi);
        }
      }
      if constexpr (R % 2 == 1) {
        D::unpack(w + (R - 1) * w_row_bytes, nb, g, wv[0], &dw[0], &mw[0]);
        const __m256i* last[1] = {wv[0]};
        __m256 last_acc[1][C];
        for (int c = 0; c < C; ++c) last_acc[0][c] = acc[R - 1][c];
        D::template group<1, C>(last, dw, mw, a, g, last_acc);
        for (int c = 0; c < C; ++c) acc[R - 1][c] = last_acc[0][c];
      }
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int c = 0; c < C; ++c) y[c * ldy + r] = partial[r][c] + hsum(acc[r][c]);
  }
}

// Prefill: the groups of R weight rows are unpacked once into a buffer (in L1) and then
// multiplied with every tile of C activation rows, so unpacking costs nothing per activation
// row. The columns are taken kPackGroups groups (1024 elements) at a time to bound the buffer.

template <class F, int R, int C>
void rows_packed(const uint8_t* w, size_t w_row_bytes, const Activations& a, int64_t nb,
                 int64_t n_batch, float* y, int64_t ldy) {
  const int64_t ng = (nb + 7) / 8;
  alignas(32) __m256i wbuf[kPackGroups][R][8];
  __m256 dbuf[kPackGroups][R], mbuf[kPackGroups][R];
  for (int64_t g0 = 0; g0 < ng; g0 += kPackGroups) {
    const int n = static_cast<int>(ng - g0 < kPackGroups ? ng - g0 : kPackGroups);
    for (int i = 0; i < n; ++i) {
      for (int r = 0; r < R; ++r)
        Dot32<F>::unpack(w + r * w_row_bytes, nb, g0 + i, wbuf[i][r], &dbuf[i][r], &mbuf[i][r]);
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
        if (R >= 2 && g0 + i == ng - 1 && nb % 8 != 0 && nb % 8 <= 4) {
          // A short last group: summed from zero, then added (as tile32's paired tails are).
          __m256 tail[R][CC];
          for (int r = 0; r < R; ++r) {
            for (int c = 0; c < CC; ++c) tail[r][c] = _mm256_setzero_ps();
          }
          Dot32<F>::template group<R, CC>(rows, dbuf[i], mbuf[i], at, g0 + i, tail);
          for (int r = 0; r < R; ++r) {
            for (int c = 0; c < CC; ++c) acc[r][c] = _mm256_add_ps(acc[r][c], tail[r][c]);
          }
        } else {
          Dot32<F>::template group<R, CC>(rows, dbuf[i], mbuf[i], at, g0 + i, acc);
        }
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
  // Register tiles: prefill R × C with 2·R·C accumulators + R weights in registers (16 on
  // AVX2 / AVX-VNNI, 32 with AVX512VL).
  // Decode rows per tile: 4, except plain AVX2, whose |w|/sign(a, w) and i16 partial sums
  // need more registers (measured: Q8_0 decode 35 vs 24 GFLOP/s with 2 rows rather than 4).
  constexpr int kPR = 2, kPC = kRegs == 32 ? 6 : (kHasVnni ? 3 : 2);
  constexpr int kDecodeRows = (kRegs == 32 || kHasVnni) ? 4 : 2;
  if (n_batch == 1) {
    drive(w, w_row_bytes, n_rows, a, n_batch, y, ldy,
          Kernel32<F, kDecodeRows, 1>{w_row_bytes, nb, ldy});
  } else if (n_batch < kPC) {
    drive(w, w_row_bytes, n_rows, a, n_batch, y, ldy, Kernel32<F, 2, kPC>{w_row_bytes, nb, ldy});
  } else {
    int64_t r = 0;
    for (; r + kPR <= n_rows; r += kPR) {
      rows_packed<F, kPR, kPC>(w + r * w_row_bytes, w_row_bytes, a, nb, n_batch, y + r, ldy);
    }
    for (; r < n_rows; ++r)
      rows_packed<F, 1, kPC>(w + r * w_row_bytes, w_row_bytes, a, nb, n_batch, y + r, ldy);
  }
}

// ---------------------------------------------------------------------------------------
// Float weights × f32 activations: y = Σ w·x with 8-wide FMAs; F16 widens with vcvtph2ps,
// BF16 by shifting into the top half of an f32.

struct FloatF32 {
  static constexpr size_t kElemBytes = 4;
  static __m256 load8(const uint8_t* p) {
    return _mm256_loadu_ps(reinterpret_cast<const float*>(p));
  }
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
      for (int64_t j = i; j < cols; ++j)
        t += F::load1(w + r * w_row_bytes + j * F::kElemBytes) * x[c * ldx + j];
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

}  // namespace
}  // namespace minnow::kernels::detail
