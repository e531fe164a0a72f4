// 256-bit k-quant kernels (Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_XS) × Q8_K activations. Part of
// the per-target kernel set: included by gemm256_impl.h only.
//
// Every k-quant super-block (256 weights) is first unpacked into one shared form, KBlock:
//   q[k]      32 weights 32k..32k+31 as bytes, in activation order (unsigned, or signed
//             for IQ4_XS's code book),
//   scale[k]  the integer sub-block scale of each of their maddubs lanes (i16): lanes 0..7
//             cover elements 0..15, lanes 8..15 elements 16..31, so sub-blocks of 16 (Q2_K,
//             Q3_K, Q6_K) and of 32 (Q4_K, Q5_K, IQ4_XS) look the same,
//   off16     per 16-element group, the integer offset coefficient (Q6_K's -32, Q3_K's -4,
//             times the scale), applied through the activation's group sums (bsums),
//   min16     per 16-element group, the minimum coefficient (Q2_K / Q4_K / Q5_K), times dmin,
//   d, dmin.
// One kernel then multiplies KBlocks with activations: per 32 weights one maddubs (pairs of
// products into i16) and one madd / vpdpwssd against the scale vector (pairs of pairs into
// i32, already scaled), so the sub-block scales cost nothing extra; a super-block ends as 8
// i32 lanes, converted and scaled by d_w·d_a once, and the offsets and minimums cost one madd
// with the bsums each. Decode unpacks a KBlock and uses it at once; prefill unpacks the
// KBlocks of a few weight rows once and reuses them for every tile of activation rows.
#pragma once

#include "kernels/x86/gemm256_common.h"

namespace minnow::kernels::detail {
namespace {

struct KBlock {
  __m256i q[8];
  __m256i scale[8];
  __m256i off16;  // used when the format's kOffShift >= 0
  __m256i min16;  // used when the format's kHasMin
  float d, dmin;
};

inline float q8k_d(const uint8_t* ab) {
  float d;
  std::memcpy(&d, ab, 4);
  return d;
}
inline const uint8_t* q8k_qs(const uint8_t* ab) { return ab + 4; }
inline __m256i q8k_bsums(const uint8_t* ab) { return loadu256(ab + 4 + kQK_K); }

// Broadcast i16 lane j of each 128-bit half of v to the whole half (a byte shuffle).
inline __m256i broadcast_i16(__m256i v, int j) {
  return _mm256_shuffle_epi8(v,
                             _mm256_set1_epi16(static_cast<int16_t>(((2 * j + 1) << 8) | (2 * j))));
}

// Scales of a chunk of 32 covering sub-blocks 2k and 2k+1 of 16, from the 16 i16 scales in
// order: the pair is dword k; broadcast it, then keep its low i16 in the lower 128-bit half
// (elements 0..15) and its high i16 in the upper half.
inline __m256i pair_scales(__m256i sc16, int k) {
  const __m256i pair = _mm256_permutevar8x32_epi32(sc16, _mm256_set1_epi32(k));
  return _mm256_shuffle_epi8(pair, _mm256_set_epi64x(0x0302030203020302, 0x0302030203020302,
                                                     0x0100010001000100, 0x0100010001000100));
}

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

// Each format: block bytes, kSigned (q holds signed values: |w|, sign(a, w) in the kernel),
// kOffShift (off16 is used, shifted left by this; -1 = none), kHasMin, and unpack().

// Q4_K / Q5_K: 8 sub-blocks of 32, x = d·sc·q - dmin·m. Layout: d, dmin (f16), 12 bytes of
// scales, [Q5_K: qh 32 bytes], qs 128 bytes: sub-blocks 2p and 2p+1 share qs[32p..32p+31]
// (low / high nibbles); Q5_K's fifth bit of element l of sub-block j is bit j of qh[l].
template <bool kFifthBit>
struct FmtK4 {
  static constexpr size_t kBytes = kFifthBit ? sizeof(BlockQ5_K) : sizeof(BlockQ4_K);
  static constexpr bool kSigned = false, kHasMin = true;
  static constexpr int kOffShift = -1;
  static constexpr size_t kQs = kFifthBit ? 48 : 16;

  static void unpack(const uint8_t* b, KBlock& k) {
    uint64_t sc, m;
    unpack_k4_scales(b + 4, &sc, &m);
    const __m256i scales =
        _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(_mm_cvtsi64_si128(static_cast<int64_t>(sc))));
    const __m128i m16 = _mm_cvtepu8_epi16(_mm_cvtsi64_si128(static_cast<int64_t>(m)));
    k.min16 = _mm256_set_m128i(_mm_unpackhi_epi16(m16, m16), _mm_unpacklo_epi16(m16, m16));
    const __m256i mask = _mm256_set1_epi8(0x0F);
    for (int p = 0; p < 4; ++p) {
      const __m256i qv = loadu256(b + kQs + 32 * p);
      k.q[2 * p] = _mm256_and_si256(qv, mask);
      k.q[2 * p + 1] = _mm256_and_si256(_mm256_srli_epi16(qv, 4), mask);
      if constexpr (kFifthBit) {
        // bit j of qh[l] -> 0x10 of element l of sub-block j
        const __m256i qh = loadu256(b + 16);
        for (int j = 2 * p; j < 2 * p + 2; ++j) {
          const __m256i bit = _mm256_and_si256(_mm256_slli_epi16(_mm256_srli_epi16(qh, j), 4),
                                               _mm256_set1_epi8(0x10));
          k.q[j] = _mm256_or_si256(k.q[j], bit);
        }
      }
      k.scale[2 * p] = broadcast_i16(scales, 2 * p);
      k.scale[2 * p + 1] = broadcast_i16(scales, 2 * p + 1);
    }
    k.d = h2f(b);
    k.dmin = h2f(b + 2);
  }
};

// Q6_K: 16 sub-blocks of 16, x = d·sc·(q - 32), q 6-bit, sc int8. Layout: ql 128, qh 64,
// scales 16, d. Per 128-element half h, chunk 4h + j (32 elements) has its low 4 bits in
// ql[64h + 32(j%2) + l] (low nibble for j < 2, high for j >= 2) and its top 2 bits in
// qh[32h + l] at bit 2j.
struct FmtQ6_K {
  static constexpr size_t kBytes = sizeof(BlockQ6_K);
  static constexpr bool kSigned = false, kHasMin = false;
  static constexpr int kOffShift = 5;  // -32·Σ sc·bsum

  static void unpack(const uint8_t* b, KBlock& k) {
    const __m256i sc16 = _mm256_cvtepi8_epi16(loadu128(b + 192));
    k.off16 = sc16;
    for (int h = 0; h < 2; ++h) {
      const __m256i ql0 = loadu256(b + 64 * h), ql1 = loadu256(b + 64 * h + 32);
      const __m256i qh = loadu256(b + 128 + 32 * h);
      for (int j = 0; j < 4; ++j) {
        const __m256i ql = j % 2 ? ql1 : ql0;
        const __m256i low =
            j < 2 ? _mm256_and_si256(ql, _mm256_set1_epi8(0x0F))
                  : _mm256_and_si256(_mm256_srli_epi16(ql, 4), _mm256_set1_epi8(0x0F));
        // bits 2j, 2j+1 of qh -> bits 4, 5
        const __m256i high =
            2 * j <= 4 ? _mm256_slli_epi16(qh, 4 - 2 * j) : _mm256_srli_epi16(qh, 2 * j - 4);
        k.q[4 * h + j] = _mm256_or_si256(low, _mm256_and_si256(high, _mm256_set1_epi8(0x30)));
        k.scale[4 * h + j] = pair_scales(sc16, 4 * h + j);
      }
    }
    k.d = h2f(b + 208);
    k.dmin = 0.0f;
  }
};

// Q2_K: 16 sub-blocks of 16, x = d·sc·q - dmin·m, q 2-bit, sc / m the low / high nibble of
// scales[g]. Layout: scales 16, qs 64, d, dmin. Chunk 4h + j is bits 2j..2j+1 of qs[32h + l].
struct FmtQ2_K {
  static constexpr size_t kBytes = sizeof(BlockQ2_K);
  static constexpr bool kSigned = false, kHasMin = true;
  static constexpr int kOffShift = -1;

  static void unpack(const uint8_t* b, KBlock& k) {
    const __m128i raw = loadu128(b);
    const __m256i sc16 = _mm256_cvtepu8_epi16(_mm_and_si128(raw, _mm_set1_epi8(0x0F)));
    k.min16 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(raw, 4), _mm_set1_epi8(0x0F)));
    for (int h = 0; h < 2; ++h) {
      const __m256i qv = loadu256(b + 16 + 32 * h);
      for (int j = 0; j < 4; ++j) {
        k.q[4 * h + j] = _mm256_and_si256(_mm256_srli_epi16(qv, 2 * j), _mm256_set1_epi8(3));
        k.scale[4 * h + j] = pair_scales(sc16, 4 * h + j);
      }
    }
    k.d = h2f(b + 80);
    k.dmin = h2f(b + 82);
  }
};

// Q3_K: 16 sub-blocks of 16, x = d·sc·(q - 4), q = 2 low bits (as Q2_K) + 4·hbit, sc signed
// 6-bit stored + 32. Layout: hmask 32, qs 64, scales 12, d. Element 128h + 32j + l has its
// hbit at bit 4h + j of hmask[l].
struct FmtQ3_K {
  static constexpr size_t kBytes = sizeof(BlockQ3_K);
  static constexpr bool kSigned = false, kHasMin = false;
  static constexpr int kOffShift = 2;  // -4·Σ sc·bsum

  // Sixteen 6-bit scales: low nibbles of bytes 0..7 (scales 0..7) and their high nibbles
  // (scales 8..15); the top 2 bits of scale j sit in byte 8 + j % 4 at bit 2·(j / 4).
  static __m256i scales(const uint8_t* s) {
    const uint64_t lo8 = load_u32(s) | (static_cast<uint64_t>(load_u32(s + 4)) << 32);
    const uint32_t hi = load_u32(s + 8);
    const __m128i low = _mm_set_epi64x(static_cast<int64_t>((lo8 >> 4) & 0x0F0F0F0F0F0F0F0FULL),
                                       static_cast<int64_t>(lo8 & 0x0F0F0F0F0F0F0F0FULL));
    // Byte j of `top` needs bits 2(j/4)..2(j/4)+1 of byte j%4 of hi: shift the word by 2(j/4)
    // for each group of 4 scales and keep 2 bits per byte.
    uint32_t top[4];
    for (int g = 0; g < 4; ++g) top[g] = ((hi >> (2 * g)) & 0x03030303u) << 4;
    const __m128i high = _mm_setr_epi32(static_cast<int>(top[0]), static_cast<int>(top[1]),
                                        static_cast<int>(top[2]), static_cast<int>(top[3]));
    return _mm256_sub_epi16(_mm256_cvtepu8_epi16(_mm_or_si128(low, high)), _mm256_set1_epi16(32));
  }

  static void unpack(const uint8_t* b, KBlock& k) {
    const __m256i sc16 = scales(b + 96);
    k.off16 = sc16;
    const __m256i hm = loadu256(b);
    for (int h = 0; h < 2; ++h) {
      const __m256i qv = loadu256(b + 32 + 32 * h);
      for (int j = 0; j < 4; ++j) {
        const int bit = 4 * h + j;  // -> bit 2 of each byte
        const __m256i hb =
            bit >= 2 ? _mm256_srli_epi16(hm, bit - 2) : _mm256_slli_epi16(hm, 2 - bit);
        k.q[bit] =
            _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(qv, 2 * j), _mm256_set1_epi8(3)),
                            _mm256_and_si256(hb, _mm256_set1_epi8(4)));
        k.scale[bit] = pair_scales(sc16, bit);
      }
    }
    k.d = h2f(b + 108);
    k.dmin = 0.0f;
  }
};

// IQ4_XS: 8 sub-blocks of 32, x = d·(ls - 32)·kIQ4NLValues[q]; ls 6-bit (low 4 bits in
// scales_l, nibble j % 2 of byte j / 2; top 2 bits at bit 2j of scales_h). Layout: d,
// scales_h (u16), scales_l 4, qs 128 (sub-block j: qs[16j..16j+15] in the 32-wide nibble
// layout). The code book values are signed.
struct FmtIQ4_XS {
  static constexpr size_t kBytes = sizeof(BlockIQ4_XS);
  static constexpr bool kSigned = true, kHasMin = false;
  static constexpr int kOffShift = -1;

  static void unpack(const uint8_t* b, KBlock& k) {
    const __m256i table = _mm256_broadcastsi128_si256(
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(kIQ4NLValues)));
    const uint32_t sh = load_u16(b + 2);
    const uint32_t sl = load_u32(b + 4);
    for (int j = 0; j < 8; ++j) {
      const int ls = static_cast<int>(((sl >> (4 * j)) & 0xF) | (((sh >> (2 * j)) & 3) << 4)) - 32;
      k.scale[j] = _mm256_set1_epi16(static_cast<int16_t>(ls));
      k.q[j] = _mm256_shuffle_epi8(table, unpack_nibbles32(b + 8 + 16 * j));
    }
    k.d = h2f(b);
    k.dmin = 0.0f;
  }
};

// acc[r][c] += KBlocks kb[r] · activation super-block ab[c].
template <class F, int R, int C>
inline void kblock_dot(const KBlock* const (&kb)[R], const uint8_t* const (&ab)[C],
                       __m256 (&acc)[R][C]) {
  __m256i iacc[R][C];
  for (int c = 0; c < C; ++c) {
    for (int r = 0; r < R; ++r) {
      if constexpr (F::kOffShift >= 0) {
        const __m256i off = _mm256_madd_epi16(q8k_bsums(ab[c]), kb[r]->off16);
        iacc[r][c] = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(off, F::kOffShift));
      } else {
        iacc[r][c] = _mm256_setzero_si256();
      }
    }
  }
  for (int j = 0; j < 8; ++j) {
    for (int c = 0; c < C; ++c) {
      const __m256i av = loadu256(q8k_qs(ab[c]) + 32 * j);
      for (int r = 0; r < R; ++r) {
        const __m256i q = kb[r]->q[j];
        __m256i p16;
        if constexpr (F::kSigned) {
          p16 = _mm256_maddubs_epi16(_mm256_sign_epi8(q, q), _mm256_sign_epi8(av, q));
        } else {
          p16 = _mm256_maddubs_epi16(q, av);
        }
        iacc[r][c] = dot_i16(iacc[r][c], p16, kb[r]->scale[j]);
      }
    }
  }
  for (int c = 0; c < C; ++c) {
    const float da = q8k_d(ab[c]);
    for (int r = 0; r < R; ++r) {
      acc[r][c] =
          _mm256_fmadd_ps(_mm256_cvtepi32_ps(iacc[r][c]), _mm256_set1_ps(kb[r]->d * da), acc[r][c]);
      if constexpr (F::kHasMin) {
        const __m256 mins = _mm256_cvtepi32_ps(_mm256_madd_epi16(q8k_bsums(ab[c]), kb[r]->min16));
        acc[r][c] = _mm256_fnmadd_ps(mins, _mm256_set1_ps(kb[r]->dmin * da), acc[r][c]);
      }
    }
  }
}

// R weight rows × C activation rows, unpacking each super-block as it goes (decode, small
// batches).
template <class F, int R, int C>
void tile_k(const uint8_t* w, size_t w_row_bytes, const Activations& a, int64_t nsb, float* y,
            int64_t ldy) {
  __m256 acc[R][C];
  for (int r = 0; r < R; ++r) {
    for (int c = 0; c < C; ++c) acc[r][c] = _mm256_setzero_ps();
  }
  for (int64_t sb = 0; sb < nsb; ++sb) {
    KBlock kbs[R];
    const KBlock* kb[R];
    const uint8_t* ab[C];
    for (int r = 0; r < R; ++r) {
      F::unpack(w + r * w_row_bytes + sb * F::kBytes, kbs[r]);
      kb[r] = &kbs[r];
    }
    for (int c = 0; c < C; ++c) ab[c] = a.q + c * a.row_bytes + sb * sizeof(BlockQ8_K);
    kblock_dot<F, R, C>(kb, ab, acc);
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

// Prefill: the KBlocks of R weight rows, kPackSuperBlocks at a time (~9 KB for R = 2, in
// L1), are unpacked once and multiplied with every tile of C activation rows.
constexpr int kPackSuperBlocks = 8;

template <class F, int R, int C>
void rows_packed_k(const uint8_t* w, size_t w_row_bytes, const Activations& a, int64_t nsb,
                   int64_t n_batch, float* y, int64_t ldy) {
  KBlock kbuf[kPackSuperBlocks][R];
  for (int64_t s0 = 0; s0 < nsb; s0 += kPackSuperBlocks) {
    const int n = static_cast<int>(nsb - s0 < kPackSuperBlocks ? nsb - s0 : kPackSuperBlocks);
    for (int i = 0; i < n; ++i) {
      for (int r = 0; r < R; ++r) F::unpack(w + r * w_row_bytes + (s0 + i) * F::kBytes, kbuf[i][r]);
    }
    auto run = [&](auto cols_const, int64_t c0) {
      constexpr int CC = decltype(cols_const)::value;
      __m256 acc[R][CC];
      for (int r = 0; r < R; ++r) {
        for (int c = 0; c < CC; ++c) acc[r][c] = _mm256_setzero_ps();
      }
      for (int i = 0; i < n; ++i) {
        const KBlock* kb[R];
        const uint8_t* ab[CC];
        for (int r = 0; r < R; ++r) kb[r] = &kbuf[i][r];
        for (int c = 0; c < CC; ++c)
          ab[c] = a.q + (c0 + c) * a.row_bytes + (s0 + i) * sizeof(BlockQ8_K);
        kblock_dot<F, R, CC>(kb, ab, acc);
      }
      for (int r = 0; r < R; ++r) {
        for (int c = 0; c < CC; ++c) {
          float* out = y + (c0 + c) * ldy + r;
          *out = (s0 == 0 ? 0.0f : *out) + hsum(acc[r][c]);
        }
      }
    };
    int64_t c = 0;
    for (; c + C <= n_batch; c += C) run(std::integral_constant<int, C>{}, c);
    for (; c < n_batch; ++c) run(std::integral_constant<int, 1>{}, c);
  }
}

template <class F>
void gemm_k(int64_t cols, const uint8_t* w, size_t w_row_bytes, int64_t n_rows,
            const Activations& a, int64_t n_batch, float* y, int64_t ldy) {
  const int64_t nsb = cols / kQK_K;
  // Prefill tile: 2·R·C accumulators (i32 and f32) in registers.
  constexpr int kPR = 2, kPC = kRegs == 32 ? 6 : 3;
  if (n_batch == 1) {
    drive(w, w_row_bytes, n_rows, a, n_batch, y, ldy, KernelK<F, 2, 1>{w_row_bytes, nsb, ldy});
  } else if (n_batch < kPC) {
    drive(w, w_row_bytes, n_rows, a, n_batch, y, ldy, KernelK<F, 2, kPC>{w_row_bytes, nsb, ldy});
  } else {
    int64_t r = 0;
    for (; r + kPR <= n_rows; r += kPR) {
      rows_packed_k<F, kPR, kPC>(w + r * w_row_bytes, w_row_bytes, a, nsb, n_batch, y + r, ldy);
    }
    for (; r < n_rows; ++r)
      rows_packed_k<F, 1, kPC>(w + r * w_row_bytes, w_row_bytes, a, nsb, n_batch, y + r, ldy);
  }
}

}  // namespace
}  // namespace minnow::kernels::detail
