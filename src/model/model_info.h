// What a GGUF model file declares about itself: architecture, hyper-parameters, tokenizer and
// the mix of tensor types. Read from metadata only (no weights are touched), so it is cheap
// enough for `minnow inspect` and for choosing how to load a model.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gguf/gguf.h"
#include "gguf/tensor_type.h"
#include "util/status.h"

namespace minnow::model {

// Tensors of one type: how many, and how much of the model they hold.
struct TensorTypeCount {
  TensorType type = TensorType::F32;
  uint64_t tensors = 0;
  uint64_t elements = 0;
  uint64_t bytes = 0;
};

// Absent keys stay empty: files differ in which optional keys they carry, and inspect reports
// what is there rather than guessing defaults.
struct ModelInfo {
  std::string architecture;                      // general.architecture, e.g. "llama", "gemma3"
  std::optional<std::string> name;               // general.name
  std::optional<uint32_t> file_type;             // general.file_type (the llama ftype id)
  std::optional<uint32_t> quantization_version;  // general.quantization_version

  uint64_t parameter_count = 0;  // elements over all tensors in the file
  uint64_t tensor_count = 0;
  uint64_t tensor_bytes = 0;
  std::vector<TensorTypeCount> tensor_types;  // ordered by type id

  std::optional<uint64_t> context_length;
  std::optional<uint64_t> embedding_length;
  std::optional<uint64_t> block_count;
  std::optional<uint64_t> feed_forward_length;  // first value when stored per layer
  // One value, or one per layer when the file stores per-layer counts; empty when absent.
  std::vector<uint64_t> head_count;
  std::vector<uint64_t> head_count_kv;
  std::optional<uint64_t> key_length;  // head dim of K when it is not embedding / heads
  std::optional<uint64_t> value_length;
  std::optional<uint64_t> sliding_window;
  std::optional<double> rms_norm_epsilon;

  std::optional<double> rope_freq_base;
  std::optional<uint64_t> rope_dimension_count;
  std::optional<std::string> rope_scaling_type;  // "none", "linear", "yarn"...
  std::optional<double> rope_scaling_factor;
  std::optional<uint64_t> rope_scaling_original_context_length;

  std::optional<std::string> tokenizer_model;  // "gpt2" (BPE), "llama" (SentencePiece)...
  std::optional<std::string> tokenizer_pre;
  std::optional<uint64_t> vocab_size;  // entries in tokenizer.ggml.tokens
  std::optional<uint64_t> bos_token_id;
  std::optional<uint64_t> eos_token_id;
  std::optional<uint64_t> chat_template_bytes;  // set when a chat template is embedded
};

// Reads the description from an opened file. A missing general.architecture, or a known key
// stored with a type that cannot hold its value, is an error naming the file and key.
Result<ModelInfo> describe(const gguf::File& file);

// "MOSTLY_Q4_K_M" for general.file_type 15, as llama.cpp names it; empty for unknown ids.
std::string_view file_type_name(uint32_t file_type);

}  // namespace minnow::model
