// Row-level entry points of the reference (de)quantizers: one table row per tensor type,
// pointing at the per-block functions of its format. Blocks are copied in and out with memcpy
// so that rows may start at any byte address (GGUF only promises the tensor's alignment).
#include <cstring>

#include "kernels/quants.h"
#include "kernels/reference/quant_ref_internal.h"

namespace minnow::kernels {
namespace {

using DequantizeRow = void (*)(const void* src, float* dst, int64_t n);
using QuantizeRow = void (*)(const float* src, void* dst, int64_t n);

template <typename Block, int kElems>
void dequantize_blocks(const void* src, float* dst, int64_t n) {
  const auto* bytes = static_cast<const uint8_t*>(src);
  for (int64_t i = 0; i < n / kElems; ++i) {
    Block b;
    std::memcpy(&b, bytes + i * sizeof(Block), sizeof(Block));
    ref::dequantize_block(b, dst + i * kElems);
  }
}

template <typename Block, int kElems>
void quantize_blocks(const float* src, void* dst, int64_t n) {
  auto* bytes = static_cast<uint8_t*>(dst);
  for (int64_t i = 0; i < n / kElems; ++i) {
    Block b;
    ref::quantize_block(src + i * kElems, b);
    std::memcpy(bytes + i * sizeof(Block), &b, sizeof(Block));
  }
}

// Plain element types: F32 is a copy, F16 / BF16 convert each 2-byte element.
void dequantize_f32(const void* src, float* dst, int64_t n) {
  std::memcpy(dst, src, n * sizeof(float));
}
void quantize_f32(const float* src, void* dst, int64_t n) {
  std::memcpy(dst, src, n * sizeof(float));
}

template <float (*kToF32)(uint16_t)>
void dequantize_16bit(const void* src, float* dst, int64_t n) {
  const auto* bytes = static_cast<const uint8_t*>(src);
  for (int64_t i = 0; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, bytes + 2 * i, 2);
    dst[i] = kToF32(h);
  }
}

template <uint16_t (*kFromF32)(float)>
void quantize_16bit(const float* src, void* dst, int64_t n) {
  auto* bytes = static_cast<uint8_t*>(dst);
  for (int64_t i = 0; i < n; ++i) {
    const uint16_t h = kFromF32(src[i]);
    std::memcpy(bytes + 2 * i, &h, 2);
  }
}

struct RefKernels {
  TensorType type;
  DequantizeRow dequantize;
  QuantizeRow quantize;
};

template <typename Block, int kElems>
constexpr RefKernels blocks_of(TensorType type) {
  return {type, &dequantize_blocks<Block, kElems>, &quantize_blocks<Block, kElems>};
}

constexpr RefKernels kRefKernels[] = {
    {TensorType::F32, &dequantize_f32, &quantize_f32},
    {TensorType::F16, &dequantize_16bit<fp16_to_fp32>, &quantize_16bit<fp32_to_fp16>},
    {TensorType::BF16, &dequantize_16bit<bf16_to_fp32>, &quantize_16bit<fp32_to_bf16>},
    blocks_of<BlockQ4_0, kQK>(TensorType::Q4_0),
    blocks_of<BlockQ4_1, kQK>(TensorType::Q4_1),
    blocks_of<BlockQ5_0, kQK>(TensorType::Q5_0),
    blocks_of<BlockQ5_1, kQK>(TensorType::Q5_1),
    blocks_of<BlockQ8_0, kQK>(TensorType::Q8_0),
    blocks_of<BlockQ8_1, kQK>(TensorType::Q8_1),
    blocks_of<BlockQ2_K, kQK_K>(TensorType::Q2_K),
    blocks_of<BlockQ3_K, kQK_K>(TensorType::Q3_K),
    blocks_of<BlockQ4_K, kQK_K>(TensorType::Q4_K),
    blocks_of<BlockQ5_K, kQK_K>(TensorType::Q5_K),
    blocks_of<BlockQ6_K, kQK_K>(TensorType::Q6_K),
    blocks_of<BlockQ8_K, kQK_K>(TensorType::Q8_K),
    blocks_of<BlockIQ4_NL, kQK>(TensorType::IQ4_NL),
    blocks_of<BlockIQ4_XS, kQK_K>(TensorType::IQ4_XS),
};

const RefKernels* find(TensorType type) {
  for (const auto& k : kRefKernels) {
    if (k.type == type) return &k;
  }
  return nullptr;
}

}  // namespace

bool has_reference_dequantize(TensorType type) { return find(type) != nullptr; }
bool has_reference_quantize(TensorType type) { return find(type) != nullptr; }

void dequantize_row_ref(TensorType type, const void* src, float* dst, int64_t n) {
  if (const RefKernels* k = find(type)) k->dequantize(src, dst, n);
}

void quantize_row_ref(TensorType type, const float* src, void* dst, int64_t n) {
  if (const RefKernels* k = find(type)) k->quantize(src, dst, n);
}

}  // namespace minnow::kernels
