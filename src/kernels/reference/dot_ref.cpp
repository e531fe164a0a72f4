// Scalar dot products of every weight format with its activation format (see dot_ref.h), and
// the scalar kernel table built on them. Each block's integer sum is exact; the scales are
// applied per block (per sub-block for the k-quants) in float.
#include "kernels/reference/dot_ref.h"

#include <cstring>

#include "kernels/matmul.h"
#include "kernels/matmul_kernels.h"
#include "kernels/quant_blocks.h"
#include "kernels/quants.h"

namespace minnow::kernels {
namespace {

template <typename Block>
Block load(const uint8_t* p) {
  Block b;
  std::memcpy(&b, p, sizeof b);
  return b;
}

float h2f(f16_bits h) { return fp16_to_fp32(h); }

// 32-wide nibble layout: element i < 16 in the low nibble of qs[i], i >= 16 in the high
// nibble of qs[i - 16].
int nibble(const uint8_t* qs, int i) { return i < 16 ? qs[i] & 0xF : qs[i - 16] >> 4; }

// Fifth bit of element i of Q5_0 / Q5_1: bit i of the little-endian u32 qh.
int fifth_bit(const uint8_t* qh, int i) { return (qh[i / 8] >> (i % 8)) & 1; }

int q8_sum(const BlockQ8_0& a) {
  int s = 0;
  for (int i = 0; i < kQK; ++i) s += a.qs[i];
  return s;
}

// ---- 32-wide formats against Q8_0 ----

float block_dot(const BlockQ4_0& w, const BlockQ8_0& a) {
  int isum = 0;
  for (int i = 0; i < kQK; ++i) isum += (nibble(w.qs, i) - 8) * a.qs[i];
  return h2f(w.d) * h2f(a.d) * static_cast<float>(isum);
}

float block_dot(const BlockQ4_1& w, const BlockQ8_0& a) {
  int isum = 0;
  for (int i = 0; i < kQK; ++i) isum += nibble(w.qs, i) * a.qs[i];
  const float da = h2f(a.d);
  return h2f(w.d) * da * static_cast<float>(isum) + h2f(w.m) * (da * static_cast<float>(q8_sum(a)));
}

float block_dot(const BlockQ5_0& w, const BlockQ8_0& a) {
  int isum = 0;
  for (int i = 0; i < kQK; ++i)
    isum += ((nibble(w.qs, i) | fifth_bit(w.qh, i) << 4) - 16) * a.qs[i];
  return h2f(w.d) * h2f(a.d) * static_cast<float>(isum);
}

float block_dot(const BlockQ5_1& w, const BlockQ8_0& a) {
  int isum = 0;
  for (int i = 0; i < kQK; ++i) isum += (nibble(w.qs, i) | fifth_bit(w.qh, i) << 4) * a.qs[i];
  const float da = h2f(a.d);
  return h2f(w.d) * da * static_cast<float>(isum) + h2f(w.m) * (da * static_cast<float>(q8_sum(a)));
}

float block_dot(const BlockQ8_0& w, const BlockQ8_0& a) {
  int isum = 0;
  for (int i = 0; i < kQK; ++i) isum += w.qs[i] * a.qs[i];
  return h2f(w.d) * h2f(a.d) * static_cast<float>(isum);
}

float block_dot(const BlockIQ4_NL& w, const BlockQ8_0& a) {
  int isum = 0;
  for (int i = 0; i < kQK; ++i) isum += kIQ4NLValues[nibble(w.qs, i)] * a.qs[i];
  return h2f(w.d) * h2f(a.d) * static_cast<float>(isum);
}

// ---- k-quants against Q8_K (256 elements; e is the element index in the super-block) ----

// Q4_K / Q5_K packed 6-bit scale and min of sub-block j (of 8): j < 4 in the low 6 bits of
// bytes j and j + 4; j >= 4 has its low 4 bits in byte j + 4 (scale low nibble, min high
// nibble) and its top 2 bits in the top bits of bytes j - 4 (scale) and j (min).
void scale_min_k4(const uint8_t* s, int j, int* sc, int* m) {
  if (j < 4) {
    *sc = s[j] & 63;
    *m = s[j + 4] & 63;
  } else {
    *sc = (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4);
    *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

// Q3_K signed 6-bit scale of sub-block j (of 16), stored + 32: low nibble in byte j % 8
// (low nibble for j < 8, high for j >= 8), top 2 bits in byte 8 + j % 4 at bit 2 * (j / 4).
int scale_q3k(const uint8_t* s, int j) {
  const int low = j < 8 ? s[j] & 0xF : s[j - 8] >> 4;
  const int high = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
  return (low | (high << 4)) - 32;
}

// 2-bit fields of Q2_K / Q3_K: each 128-element half uses 32 bytes, element e in byte
// 32 * (e / 128) + e % 32 at bit 2 * ((e % 128) / 32).
int q2_field(const uint8_t* qs, int e) {
  return (qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3;
}

// Q4_K / Q5_K nibbles: sub-blocks 2p and 2p + 1 share bytes 32p..32p+31 (low / high nibble).
int q4k_nibble(const uint8_t* qs, int e) {
  return (qs[32 * (e / 64) + e % 32] >> (4 * ((e / 32) % 2))) & 0xF;
}

float block_dot(const BlockQ2_K& w, const BlockQ8_K& a) {
  int scaled = 0, mins = 0;
  for (int g = 0; g < 16; ++g) {
    int isum = 0;
    for (int e = 16 * g; e < 16 * g + 16; ++e) isum += q2_field(w.qs, e) * a.qs[e];
    scaled += (w.scales[g] & 0xF) * isum;
    mins += (w.scales[g] >> 4) * a.bsums[g];
  }
  return a.d * (h2f(w.d) * static_cast<float>(scaled) - h2f(w.dmin) * static_cast<float>(mins));
}

float block_dot(const BlockQ3_K& w, const BlockQ8_K& a) {
  int scaled = 0;
  for (int g = 0; g < 16; ++g) {
    int isum = 0;
    for (int e = 16 * g; e < 16 * g + 16; ++e) {
      const int high = (w.hmask[e % 32] >> (e / 32)) & 1;
      isum += (q2_field(w.qs, e) - (high ? 0 : 4)) * a.qs[e];
    }
    scaled += scale_q3k(w.scales, g) * isum;
  }
  return a.d * h2f(w.d) * static_cast<float>(scaled);
}

float block_dot(const BlockQ4_K& w, const BlockQ8_K& a) {
  int scaled = 0, mins = 0;
  for (int j = 0; j < 8; ++j) {
    int sc, m;
    scale_min_k4(w.scales, j, &sc, &m);
    int isum = 0;
    for (int e = 32 * j; e < 32 * j + 32; ++e) isum += q4k_nibble(w.qs, e) * a.qs[e];
    scaled += sc * isum;
    mins += m * (a.bsums[2 * j] + a.bsums[2 * j + 1]);
  }
  return a.d * (h2f(w.d) * static_cast<float>(scaled) - h2f(w.dmin) * static_cast<float>(mins));
}

float block_dot(const BlockQ5_K& w, const BlockQ8_K& a) {
  int scaled = 0, mins = 0;
  for (int j = 0; j < 8; ++j) {
    int sc, m;
    scale_min_k4(w.scales, j, &sc, &m);
    int isum = 0;
    for (int e = 32 * j; e < 32 * j + 32; ++e) {
      const int q = q4k_nibble(w.qs, e) | (((w.qh[e % 32] >> (e / 32)) & 1) << 4);
      isum += q * a.qs[e];
    }
    scaled += sc * isum;
    mins += m * (a.bsums[2 * j] + a.bsums[2 * j + 1]);
  }
  return a.d * (h2f(w.d) * static_cast<float>(scaled) - h2f(w.dmin) * static_cast<float>(mins));
}

// Q6_K: per 128-element half, quarter k = (e % 128) / 32 takes its low 4 bits from ql byte
// 64 * half + 32 * (k % 2) + e % 32 (low nibble for k < 2, high for k >= 2) and its top 2
// bits from qh byte 32 * half + e % 32 at bit 2k.
float block_dot(const BlockQ6_K& w, const BlockQ8_K& a) {
  int scaled = 0;
  for (int g = 0; g < 16; ++g) {
    int isum = 0;
    for (int e = 16 * g; e < 16 * g + 16; ++e) {
      const int half = e / 128, k = (e % 128) / 32, l = e % 32;
      const int low = (w.ql[64 * half + 32 * (k % 2) + l] >> (4 * (k / 2))) & 0xF;
      const int high = (w.qh[32 * half + l] >> (2 * k)) & 3;
      isum += ((low | (high << 4)) - 32) * a.qs[e];
    }
    scaled += w.scales[g] * isum;
  }
  return a.d * h2f(w.d) * static_cast<float>(scaled);
}

float block_dot(const BlockIQ4_XS& w, const BlockQ8_K& a) {
  int scaled = 0;
  for (int j = 0; j < 8; ++j) {
    const int ls =
        ((w.scales_l[j / 2] >> (4 * (j % 2))) & 0xF) | (((w.scales_h >> (2 * j)) & 3) << 4);
    int isum = 0;
    for (int i = 0; i < 32; ++i) isum += kIQ4NLValues[nibble(w.qs + 16 * j, i)] * a.qs[32 * j + i];
    scaled += (ls - 32) * isum;
  }
  return a.d * h2f(w.d) * static_cast<float>(scaled);
}

template <typename WBlock, typename ABlock>
float dot_blocks(int64_t n, const void* w_row, const void* act_row) {
  constexpr int64_t kElems = sizeof(ABlock) == sizeof(BlockQ8_K) ? kQK_K : kQK;
  const auto* w = static_cast<const uint8_t*>(w_row);
  const auto* a = static_cast<const uint8_t*>(act_row);
  float sum = 0.0f;
  for (int64_t b = 0; b < n / kElems; ++b) {
    sum += block_dot(load<WBlock>(w + b * sizeof(WBlock)), load<ABlock>(a + b * sizeof(ABlock)));
  }
  return sum;
}

// ---- float weights against f32 activations (double accumulation: the oracle) ----

float f32_elem(const uint8_t* p, int64_t i) { return load<float>(p + 4 * i); }
float f16_elem(const uint8_t* p, int64_t i) { return fp16_to_fp32(load<uint16_t>(p + 2 * i)); }
float bf16_elem(const uint8_t* p, int64_t i) { return bf16_to_fp32(load<uint16_t>(p + 2 * i)); }

template <float (*kElem)(const uint8_t*, int64_t)>
float dot_float(int64_t n, const void* w_row, const void* act_row) {
  const auto* w = static_cast<const uint8_t*>(w_row);
  const auto* x = static_cast<const float*>(act_row);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(kElem(w, i)) * x[i];
  return static_cast<float>(sum);
}

using DotFn = float (*)(int64_t n, const void* w_row, const void* act_row);

struct DotEntry {
  TensorType type;
  DotFn dot;
};

constexpr DotEntry kDots[] = {
    {TensorType::F32, &dot_float<f32_elem>},
    {TensorType::F16, &dot_float<f16_elem>},
    {TensorType::BF16, &dot_float<bf16_elem>},
    {TensorType::Q4_0, &dot_blocks<BlockQ4_0, BlockQ8_0>},
    {TensorType::Q4_1, &dot_blocks<BlockQ4_1, BlockQ8_0>},
    {TensorType::Q5_0, &dot_blocks<BlockQ5_0, BlockQ8_0>},
    {TensorType::Q5_1, &dot_blocks<BlockQ5_1, BlockQ8_0>},
    {TensorType::Q8_0, &dot_blocks<BlockQ8_0, BlockQ8_0>},
    {TensorType::IQ4_NL, &dot_blocks<BlockIQ4_NL, BlockQ8_0>},
    {TensorType::Q2_K, &dot_blocks<BlockQ2_K, BlockQ8_K>},
    {TensorType::Q3_K, &dot_blocks<BlockQ3_K, BlockQ8_K>},
    {TensorType::Q4_K, &dot_blocks<BlockQ4_K, BlockQ8_K>},
    {TensorType::Q5_K, &dot_blocks<BlockQ5_K, BlockQ8_K>},
    {TensorType::Q6_K, &dot_blocks<BlockQ6_K, BlockQ8_K>},
    {TensorType::IQ4_XS, &dot_blocks<BlockIQ4_XS, BlockQ8_K>},
};

DotFn find_dot(TensorType type) {
  for (const auto& e : kDots) {
    if (e.type == type) return e.dot;
  }
  return nullptr;
}

// ---- the scalar kernel table ----

template <TensorType kType>
void gemm_ref(int64_t cols, const uint8_t* w, size_t w_row_bytes, int64_t n_rows,
              const detail::Activations& a, int64_t n_batch, float* y, int64_t ldy) {
  static const DotFn dot = find_dot(kType);
  for (int64_t b = 0; b < n_batch; ++b) {
    for (int64_t r = 0; r < n_rows; ++r) {
      y[b * ldy + r] = dot(cols, w + r * w_row_bytes, a.q + b * a.row_bytes);
    }
  }
}

void quantize_q8_0_ref(const float* x, int64_t cols, int64_t side_stride, uint8_t* q, float* d,
                       float* s, int32_t* sum) {
  quantize_row_ref(TensorType::Q8_0, x, q, cols);
  for (int64_t b = cols / kQK; b < side_stride; ++b) d[b] = s[b] = 0.0f, sum[b] = 0;
  for (int64_t b = 0; b < cols / kQK; ++b) {
    const auto blk = load<BlockQ8_0>(q + b * sizeof(BlockQ8_0));
    d[b] = fp16_to_fp32(blk.d);
    sum[b] = q8_sum(blk);
    s[b] = d[b] * static_cast<float>(sum[b]);
  }
}

void quantize_q8_k_ref(const float* x, int64_t cols, uint8_t* q) {
  quantize_row_ref(TensorType::Q8_K, x, q, cols);
}

}  // namespace

bool has_dot_ref(TensorType weight_type) { return find_dot(weight_type) != nullptr; }

float dot_ref(TensorType weight_type, int64_t n, const void* w_row, const void* act_row) {
  const DotFn dot = find_dot(weight_type);
  return dot ? dot(n, w_row, act_row) : 0.0f;
}

void quantize_activation_ref(TensorType weight_type, const float* x, int64_t n, void* act_row) {
  const TensorType at = activation_type(weight_type);
  if (at == TensorType::F32) {
    std::memcpy(act_row, x, n * sizeof(float));
  } else {
    quantize_row_ref(at, x, act_row, n);
  }
}

namespace detail {

void fill_scalar_kernels(KernelTable& table) {
  table.target = KernelTarget::kScalar;
  table.gemm[slot(TensorType::F32)] = &gemm_ref<TensorType::F32>;
  table.gemm[slot(TensorType::F16)] = &gemm_ref<TensorType::F16>;
  table.gemm[slot(TensorType::BF16)] = &gemm_ref<TensorType::BF16>;
  table.gemm[slot(TensorType::Q4_0)] = &gemm_ref<TensorType::Q4_0>;
  table.gemm[slot(TensorType::Q4_1)] = &gemm_ref<TensorType::Q4_1>;
  table.gemm[slot(TensorType::Q5_0)] = &gemm_ref<TensorType::Q5_0>;
  table.gemm[slot(TensorType::Q5_1)] = &gemm_ref<TensorType::Q5_1>;
  table.gemm[slot(TensorType::Q8_0)] = &gemm_ref<TensorType::Q8_0>;
  table.gemm[slot(TensorType::IQ4_NL)] = &gemm_ref<TensorType::IQ4_NL>;
  table.gemm[slot(TensorType::Q2_K)] = &gemm_ref<TensorType::Q2_K>;
  table.gemm[slot(TensorType::Q3_K)] = &gemm_ref<TensorType::Q3_K>;
  table.gemm[slot(TensorType::Q4_K)] = &gemm_ref<TensorType::Q4_K>;
  table.gemm[slot(TensorType::Q5_K)] = &gemm_ref<TensorType::Q5_K>;
  table.gemm[slot(TensorType::Q6_K)] = &gemm_ref<TensorType::Q6_K>;
  table.gemm[slot(TensorType::IQ4_XS)] = &gemm_ref<TensorType::IQ4_XS>;
  table.quantize_q8_0 = &quantize_q8_0_ref;
  table.quantize_q8_k = &quantize_q8_k_ref;
}

}  // namespace detail
}  // namespace minnow::kernels
