// Block layouts of the quantized tensor types, byte-for-byte as stored in GGUF files.
// A row of n elements is n / block_elems consecutive blocks. `f16` fields hold IEEE
// half-precision bits (use fp16.h to convert). Sizes are checked against gguf/tensor_type.
#pragma once

#include <cstdint>

namespace minnow::kernels {

using f16_bits = uint16_t;

constexpr int kQK = 32;    // elements per block of the 32-wide formats
constexpr int kQK_K = 256; // elements per super-block of the k-quants
constexpr int kKScaleBytes = 12;  // packed 6-bit scales/mins of Q4_K and Q5_K

// x = d * (q - 8), q in [0, 16). Low nibbles hold elements 0..15, high nibbles 16..31.
struct BlockQ4_0 {
  f16_bits d;
  uint8_t qs[kQK / 2];
};

// x = d * q + m, q in [0, 16). Nibble order as Q4_0.
struct BlockQ4_1 {
  f16_bits d;
  f16_bits m;
  uint8_t qs[kQK / 2];
};

// x = d * (q - 16), q 5-bit: low 4 bits in qs (as Q4_0), bit 4 of element j in bit j of qh.
struct BlockQ5_0 {
  f16_bits d;
  uint8_t qh[4];
  uint8_t qs[kQK / 2];
};

// x = d * q + m, q 5-bit, bits split as Q5_0.
struct BlockQ5_1 {
  f16_bits d;
  f16_bits m;
  uint8_t qh[4];
  uint8_t qs[kQK / 2];
};

// x = d * q, q int8.
struct BlockQ8_0 {
  f16_bits d;
  int8_t qs[kQK];
};

// x = d * q; s = d * sum(q), kept so that dot products with Q4_1/Q5_1 can fold in the offset.
struct BlockQ8_1 {
  f16_bits d;
  f16_bits s;
  int8_t qs[kQK];
};

// 16 sub-blocks of 16: x = d * sc * q - dmin * m, sc/m 4-bit in scales (low nibble sc,
// high nibble m), q 2-bit.
struct BlockQ2_K {
  uint8_t scales[kQK_K / 16];
  uint8_t qs[kQK_K / 4];
  f16_bits d;
  f16_bits dmin;
};

// 16 sub-blocks of 16: x = d * (sc - 32) * (q - 4 * !hbit), q low 2 bits in qs, high bit in
// hmask, sc 6-bit packed in 12 bytes.
struct BlockQ3_K {
  uint8_t hmask[kQK_K / 8];
  uint8_t qs[kQK_K / 4];
  uint8_t scales[12];
  f16_bits d;
};

// 8 sub-blocks of 32: x = d * sc * q - dmin * m, sc/m 6-bit packed in 12 bytes, q 4-bit.
struct BlockQ4_K {
  f16_bits d;
  f16_bits dmin;
  uint8_t scales[kKScaleBytes];
  uint8_t qs[kQK_K / 2];
};

// As Q4_K with a fifth bit per element in qh.
struct BlockQ5_K {
  f16_bits d;
  f16_bits dmin;
  uint8_t scales[kKScaleBytes];
  uint8_t qh[kQK_K / 8];
  uint8_t qs[kQK_K / 2];
};

// 16 sub-blocks of 16: x = d * sc * (q - 32), q 6-bit (low 4 in ql, high 2 in qh), sc int8.
struct BlockQ6_K {
  uint8_t ql[kQK_K / 2];
  uint8_t qh[kQK_K / 4];
  int8_t scales[kQK_K / 16];
  f16_bits d;
};

// Activation format for k-quant dot products: x = d * q, d f32; bsums[i] = sum of q over
// the i-th group of 16.
struct BlockQ8_K {
  float d;
  int8_t qs[kQK_K];
  int16_t bsums[kQK_K / 16];
};

// x = d * kIQ4NLValues[q], q 4-bit, nibble order as Q4_0.
struct BlockIQ4_NL {
  f16_bits d;
  uint8_t qs[kQK / 2];
};

// 8 sub-blocks of 32 with 6-bit scales (low 4 in scales_l, high 2 in scales_h):
// x = d * (sc - 32) * kIQ4NLValues[q].
struct BlockIQ4_XS {
  f16_bits d;
  uint16_t scales_h;
  uint8_t scales_l[kQK_K / 64];
  uint8_t qs[kQK_K / 2];
};

// The non-linear 4-bit code book shared by IQ4_NL and IQ4_XS.
inline constexpr int8_t kIQ4NLValues[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                            1,    13,   25,  38,  53,  69,  89,  113};

static_assert(sizeof(BlockQ4_0) == 18);
static_assert(sizeof(BlockQ4_1) == 20);
static_assert(sizeof(BlockQ5_0) == 22);
static_assert(sizeof(BlockQ5_1) == 24);
static_assert(sizeof(BlockQ8_0) == 34);
static_assert(sizeof(BlockQ8_1) == 36);
static_assert(sizeof(BlockQ2_K) == 84);
static_assert(sizeof(BlockQ3_K) == 110);
static_assert(sizeof(BlockQ4_K) == 144);
static_assert(sizeof(BlockQ5_K) == 176);
static_assert(sizeof(BlockQ6_K) == 210);
static_assert(sizeof(BlockQ8_K) == 292);
static_assert(sizeof(BlockIQ4_NL) == 18);
static_assert(sizeof(BlockIQ4_XS) == 136);

}  // namespace minnow::kernels
