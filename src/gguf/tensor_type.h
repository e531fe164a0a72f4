// Tensor element types as numbered in GGUF files (the ggml type ids), with the block
// geometry every reader needs to size tensor data. This is a property of the file
// format, so it lives in gguf/; kernels/ builds the block structs and math on top of it.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace minnow {

enum class TensorType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  // 4, 5: Q4_2 / Q4_3, removed from the format long ago.
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  IQ2_XXS = 16,
  IQ2_XS = 17,
  IQ3_XXS = 18,
  IQ1_S = 19,
  IQ4_NL = 20,
  IQ3_S = 21,
  IQ2_S = 22,
  IQ4_XS = 23,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  IQ1_M = 29,
  BF16 = 30,
  // 31..33: repacked Q4_0 variants, removed.
  TQ1_0 = 34,
  TQ2_0 = 35,
  // 36..38: repacked IQ4_NL variants, removed.
  MXFP4 = 39,
};

struct TensorTypeTraits {
  TensorType type;
  std::string_view name;   // as llama.cpp / gguf-py print it, e.g. "Q4_K"
  uint32_t block_elems;    // elements per block (1 for plain types)
  uint32_t block_bytes;    // bytes per block
};

// Traits for a raw type id read from a file; nullopt for ids that are not (or no longer) valid.
std::optional<TensorTypeTraits> tensor_type_traits(uint32_t raw_type);
const TensorTypeTraits& traits(TensorType type);  // type must be valid
std::string_view tensor_type_name(TensorType type);
std::optional<TensorType> tensor_type_from_name(std::string_view name);  // case-insensitive

// Bytes of a row of n elements; n must be a multiple of block_elems.
inline uint64_t row_bytes(const TensorTypeTraits& t, uint64_t n) {
  return n / t.block_elems * t.block_bytes;
}

}  // namespace minnow
