// AVX512 kernel set: the 256-bit kernels compiled with AVX512VL + VNNI, so they use the
// EVEX vpdpbusd / vpdpwssd and 32 vector registers (wider register tiles for prefill), plus
// 512-bit prefill kernels for the 32-wide formats and the unsigned k-quants.
#define MINNOW_DOT_AVX512VNNI 1
// GCC 12's AVX512 intrinsics start several results from a self-initialized "undefined"
// register (avx512fintrin.h: `__m512i __Y = __Y;`), which -W(maybe-)uninitialized reports at
// every inlined use, e.g. of a 256 -> 512-bit cast whose upper half is then inserted.
// Silenced for this file only.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include "kernels/x86/gemm256_impl.h"
#include "kernels/x86/x86_kernels.h"

namespace minnow::kernels::detail {
namespace {

// The activation rows left after the full tiles of C go through one tile of their count (a
// batch of 8 is 6 + 2, not 6 + 1 + 1): each row's arithmetic is the same whatever the tile,
// so results stay batch-invariant, and small batches (continuous batching's decode steps of a
// few sequences) keep the weights in registers for all of their rows.
template <int C, class Run>
void run_tail(Run& run, int64_t c, int64_t n_batch) {
  if constexpr (C > 1) {
    if (n_batch - c == C - 1) {
      run(std::integral_constant<int, C - 1>{}, c);
      return;
    }
    run_tail<C - 1>(run, c, n_batch);
  } else {
    for (; c < n_batch; ++c) run(std::integral_constant<int, 1>{}, c);
  }
}

// Prefill of the 32-wide formats on 512-bit registers. The layout is that of the 256-bit
// kernel (one block per 32-bit lane, groups of 8 blocks, gemm256_legacy.h) with two weight
// rows side by side in a zmm: lanes 0..7 hold a group of row r, lanes 8..15 the same group
// of row r + 1. Activations are broadcast to both halves (a load-only vbroadcasti64x4), so
// one vpdpbusd covers two rows' worth of 8 blocks. RP row pairs × C activation rows: 2·RP·C
// zmm accumulators + RP weights + 1 activation fit the 32 registers for RP = 2, C = 6.
template <class F, int RP, int C>
void rows_packed512(const uint8_t* w, size_t w_row_bytes, const Activations& a, int64_t nb,
                    int64_t n_batch, float* y, int64_t ldy) {
  using D = Dot32<F>;
  static_assert(D::kXor || !F::kSigned, "the 512-bit kernel assumes VNNI");
  const int64_t ng = (nb + 7) / 8;
  alignas(64) __m512i wbuf[kPackGroups][RP][8];
  __m512 dbuf[kPackGroups][RP], mbuf[kPackGroups][RP];
  for (int64_t g0 = 0; g0 < ng; g0 += kPackGroups) {
    const int n = static_cast<int>(ng - g0 < kPackGroups ? ng - g0 : kPackGroups);
    for (int i = 0; i < n; ++i) {
      for (int rp = 0; rp < RP; ++rp) {
        __m256i w0[8], w1[8];
        __m256 d0, m0, d1, m1;
        D::unpack(w + (2 * rp) * w_row_bytes, nb, g0 + i, w0, &d0, &m0);
        D::unpack(w + (2 * rp + 1) * w_row_bytes, nb, g0 + i, w1, &d1, &m1);
        for (int u = 0; u < 8; ++u)
          wbuf[i][rp][u] = _mm512_inserti64x4(_mm512_castsi256_si512(w0[u]), w1[u], 1);
        dbuf[i][rp] = _mm512_insertf32x8(_mm512_castps256_ps512(d0), d1, 1);
        mbuf[i][rp] = _mm512_insertf32x8(_mm512_castps256_ps512(m0), m1, 1);
      }
    }
    auto run = [&](auto cols_const, int64_t c0) {
      constexpr int CC = decltype(cols_const)::value;
      __m512 acc[RP][CC];
      for (int rp = 0; rp < RP; ++rp) {
        for (int c = 0; c < CC; ++c) acc[rp][c] = _mm512_setzero_ps();
      }
      for (int i = 0; i < n; ++i) {
        const int64_t g = g0 + i;
        const uint8_t* aq[CC];
        __m512i iacc[RP][CC];
        for (int c = 0; c < CC; ++c) {
          aq[c] = a.q + (c0 + c) * a.row_bytes + 256 * g;
          __m512i start = _mm512_setzero_si512();
          if constexpr (D::kIntOffset) {
            const __m256i sum = _mm256_loadu_si256(
                reinterpret_cast<const __m256i*>(a.sum + (c0 + c) * a.side_stride + 8 * g));
            start =
                _mm512_sub_epi32(start, _mm512_slli_epi32(_mm512_broadcast_i64x4(sum), D::kShift));
          }
          for (int rp = 0; rp < RP; ++rp) iacc[rp][c] = start;
        }
        for (int u = 0; u < 8; ++u) {
          for (int c = 0; c < CC; ++c) {
            const __m512i av = _mm512_broadcast_i64x4(loadu256(aq[c] + 32 * u));
            for (int rp = 0; rp < RP; ++rp)
              iacc[rp][c] = _mm512_dpbusd_epi32(iacc[rp][c], wbuf[i][rp][u], av);
          }
        }
        // A short last group is summed from zero and then added, as the 256-bit kernels do
        // with their paired tails, so a row's result does not depend on the batch size.
        const bool short_tail = g == ng - 1 && nb % 8 != 0 && nb % 8 <= 4;
        for (int c = 0; c < CC; ++c) {
          const __m512 da =
              _mm512_broadcast_f32x8(_mm256_loadu_ps(a.d + (c0 + c) * a.side_stride + 8 * g));
          __m512 part[RP];
          for (int rp = 0; rp < RP; ++rp) part[rp] = short_tail ? _mm512_setzero_ps() : acc[rp][c];
          for (int rp = 0; rp < RP; ++rp) {
            part[rp] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(iacc[rp][c]),
                                       _mm512_mul_ps(dbuf[i][rp], da), part[rp]);
          }
          if constexpr (F::kOffset == Offset::kAffine) {
            const __m512 sa =
                _mm512_broadcast_f32x8(_mm256_loadu_ps(a.s + (c0 + c) * a.side_stride + 8 * g));
            for (int rp = 0; rp < RP; ++rp) part[rp] = _mm512_fmadd_ps(mbuf[i][rp], sa, part[rp]);
          }
          for (int rp = 0; rp < RP; ++rp) {
            acc[rp][c] = short_tail ? _mm512_add_ps(acc[rp][c], part[rp]) : part[rp];
          }
        }
      }
      for (int rp = 0; rp < RP; ++rp) {
        for (int c = 0; c < CC; ++c) {
          float* out = y + (c0 + c) * ldy + 2 * rp;
          const float lo = hsum(_mm512_castps512_ps256(acc[rp][c]));
          const float hi = hsum(_mm512_extractf32x8_ps(acc[rp][c], 1));
          out[0] = (g0 == 0 ? 0.0f : out[0]) + lo;
          out[1] = (g0 == 0 ? 0.0f : out[1]) + hi;
        }
      }
    };
    int64_t c = 0;
    for (; c + C <= n_batch; c += C) run(std::integral_constant<int, C>{}, c);
    run_tail<C>(run, c, n_batch);
  }
}

// Decode and small batches: the 256-bit kernel; prefill: row pairs on 512-bit registers
// (an odd last row goes through the 256-bit kernel).
template <class F>
void gemm32_512(int64_t cols, const uint8_t* w, size_t w_row_bytes, int64_t n_rows,
                const Activations& a, int64_t n_batch, float* y, int64_t ldy) {
  constexpr int kRP = 2, kC = 6;
  if (n_batch < 2) {  // decode: the 256-bit kernel; two rows and more: register tiles
    gemm32<F>(cols, w, w_row_bytes, n_rows, a, n_batch, y, ldy);
    return;
  }
  const int64_t nb = cols / kQK;
  int64_t r = 0;
  for (; r + 2 * kRP <= n_rows; r += 2 * kRP) {
    rows_packed512<F, kRP, kC>(w + r * w_row_bytes, w_row_bytes, a, nb, n_batch, y + r, ldy);
  }
  if (r + 2 <= n_rows) {
    rows_packed512<F, 1, kC>(w + r * w_row_bytes, w_row_bytes, a, nb, n_batch, y + r, ldy);
    r += 2;
  }
  if (r < n_rows)
    gemm32<F>(cols, w + r * w_row_bytes, w_row_bytes, n_rows - r, a, n_batch, y + r, ldy);
}

// Prefill of the k-quants on 512-bit registers, as rows_packed512: the KBlocks (see
// gemm256_kquants.h) of two weight rows side by side in zmm registers, activations broadcast
// to both halves. Unsigned formats only (AVX512 has no vpsignb for IQ4_XS's signed values).
struct KBlock2 {
  __m512i q[8];
  __m512i scale[8];
  __m512i off16, min16;
  __m512 d, dmin;  // lanes 0..7 the first row's, 8..15 the second's
};

inline __m512i pair512(__m256i lo, __m256i hi) {
  return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

template <class F>
void unpack_pair(const uint8_t* b0, const uint8_t* b1, KBlock2& k) {
  KBlock k0, k1;
  F::unpack(b0, k0);
  F::unpack(b1, k1);
  for (int j = 0; j < 8; ++j) {
    k.q[j] = pair512(k0.q[j], k1.q[j]);
    k.scale[j] = pair512(k0.scale[j], k1.scale[j]);
  }
  if constexpr (F::kOffShift >= 0) k.off16 = pair512(k0.off16, k1.off16);
  if constexpr (F::kHasMin) k.min16 = pair512(k0.min16, k1.min16);
  k.d = _mm512_insertf32x8(_mm512_set1_ps(k0.d), _mm256_set1_ps(k1.d), 1);
  k.dmin = _mm512_insertf32x8(_mm512_set1_ps(k0.dmin), _mm256_set1_ps(k1.dmin), 1);
}

template <class F, int RP, int C>
void rows_packed_k512(const uint8_t* w, size_t w_row_bytes, const Activations& a, int64_t nsb,
                      int64_t n_batch, float* y, int64_t ldy) {
  static_assert(!F::kSigned, "signed k-quant weights need vpsignb (256-bit only)");
  KBlock2 kbuf[kPackSuperBlocks][RP];
  for (int64_t s0 = 0; s0 < nsb; s0 += kPackSuperBlocks) {
    const int n = static_cast<int>(nsb - s0 < kPackSuperBlocks ? nsb - s0 : kPackSuperBlocks);
    for (int i = 0; i < n; ++i) {
      for (int rp = 0; rp < RP; ++rp) {
        const uint8_t* b0 = w + (2 * rp) * w_row_bytes + (s0 + i) * F::kBytes;
        unpack_pair<F>(b0, b0 + w_row_bytes, kbuf[i][rp]);
      }
    }
    auto run = [&](auto cols_const, int64_t c0) {
      constexpr int CC = decltype(cols_const)::value;
      __m512 acc[RP][CC];
      for (int rp = 0; rp < RP; ++rp) {
        for (int c = 0; c < CC; ++c) acc[rp][c] = _mm512_setzero_ps();
      }
      for (int i = 0; i < n; ++i) {
        const uint8_t* ab[CC];
        __m512i iacc[RP][CC];
        for (int c = 0; c < CC; ++c) {
          ab[c] = a.q + (c0 + c) * a.row_bytes + (s0 + i) * sizeof(BlockQ8_K);
          const __m512i bsums = _mm512_broadcast_i64x4(q8k_bsums(ab[c]));
          for (int rp = 0; rp < RP; ++rp) {
            if constexpr (F::kOffShift >= 0) {
              const __m512i off = _mm512_madd_epi16(bsums, kbuf[i][rp].off16);
              iacc[rp][c] =
                  _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_slli_epi32(off, F::kOffShift));
            } else {
              iacc[rp][c] = _mm512_setzero_si512();
            }
          }
        }
        for (int j = 0; j < 8; ++j) {
          for (int c = 0; c < CC; ++c) {
            const __m512i av = _mm512_broadcast_i64x4(loadu256(q8k_qs(ab[c]) + 32 * j));
            for (int rp = 0; rp < RP; ++rp) {
              iacc[rp][c] = _mm512_dpwssd_epi32(
                  iacc[rp][c], _mm512_maddubs_epi16(kbuf[i][rp].q[j], av), kbuf[i][rp].scale[j]);
            }
          }
        }
        for (int c = 0; c < CC; ++c) {
          const __m512 da = _mm512_set1_ps(q8k_d(ab[c]));
          for (int rp = 0; rp < RP; ++rp) {
            acc[rp][c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(iacc[rp][c]),
                                         _mm512_mul_ps(kbuf[i][rp].d, da), acc[rp][c]);
            if constexpr (F::kHasMin) {
              const __m512i bsums = _mm512_broadcast_i64x4(q8k_bsums(ab[c]));
              const __m512 mins = _mm512_cvtepi32_ps(_mm512_madd_epi16(bsums, kbuf[i][rp].min16));
              acc[rp][c] = _mm512_fnmadd_ps(mins, _mm512_mul_ps(kbuf[i][rp].dmin, da), acc[rp][c]);
            }
          }
        }
      }
      for (int rp = 0; rp < RP; ++rp) {
        for (int c = 0; c < CC; ++c) {
          float* out = y + (c0 + c) * ldy + 2 * rp;
          const float lo = hsum(_mm512_castps512_ps256(acc[rp][c]));
          const float hi = hsum(_mm512_extractf32x8_ps(acc[rp][c], 1));
          out[0] = (s0 == 0 ? 0.0f : out[0]) + lo;
          out[1] = (s0 == 0 ? 0.0f : out[1]) + hi;
        }
      }
    };
    int64_t c = 0;
    for (; c + C <= n_batch; c += C) run(std::integral_constant<int, C>{}, c);
    run_tail<C>(run, c, n_batch);
  }
}

template <class F>
void gemm_k512(int64_t cols, const uint8_t* w, size_t w_row_bytes, int64_t n_rows,
               const Activations& a, int64_t n_batch, float* y, int64_t ldy) {
  constexpr int kRP = 2, kC = 6;
  if (n_batch < 2) {  // decode: the 256-bit kernel; two rows and more: register tiles
    gemm_k<F>(cols, w, w_row_bytes, n_rows, a, n_batch, y, ldy);
    return;
  }
  const int64_t nsb = cols / kQK_K;
  int64_t r = 0;
  for (; r + 2 * kRP <= n_rows; r += 2 * kRP) {
    rows_packed_k512<F, kRP, kC>(w + r * w_row_bytes, w_row_bytes, a, nsb, n_batch, y + r, ldy);
  }
  if (r + 2 <= n_rows) {
    rows_packed_k512<F, 1, kC>(w + r * w_row_bytes, w_row_bytes, a, nsb, n_batch, y + r, ldy);
    r += 2;
  }
  if (r < n_rows)
    gemm_k<F>(cols, w + r * w_row_bytes, w_row_bytes, n_rows - r, a, n_batch, y + r, ldy);
}

}  // namespace

void fill_avx512_kernels(KernelTable& table) {
  table.target = KernelTarget::kAvx512;
  fill_gemm256(table);
  table.gemm[slot(TensorType::Q4_0)] = &gemm32_512<FmtQ4_0>;
  table.gemm[slot(TensorType::Q4_1)] = &gemm32_512<FmtQ4_1>;
  table.gemm[slot(TensorType::Q5_0)] = &gemm32_512<FmtQ5_0>;
  table.gemm[slot(TensorType::Q5_1)] = &gemm32_512<FmtQ5_1>;
  table.gemm[slot(TensorType::Q8_0)] = &gemm32_512<FmtQ8_0>;
  table.gemm[slot(TensorType::IQ4_NL)] = &gemm32_512<FmtIQ4_NL>;
  table.gemm[slot(TensorType::Q2_K)] = &gemm_k512<FmtQ2_K>;
  table.gemm[slot(TensorType::Q3_K)] = &gemm_k512<FmtQ3_K>;
  table.gemm[slot(TensorType::Q4_K)] = &gemm_k512<FmtK4<false>>;
  table.gemm[slot(TensorType::Q5_K)] = &gemm_k512<FmtK4<true>>;
  table.gemm[slot(TensorType::Q6_K)] = &gemm_k512<FmtQ6_K>;
}

}  // namespace minnow::kernels::detail
