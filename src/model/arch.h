// The architecture table: general.architecture -> the function that turns a GGUF's metadata
// into a ModelConfig. Each architecture lives in archs/<name>.cpp and states only what sets
// it apart (RoPE style, biases, norms, activation, sliding windows); adding one touches its
// file and the list in arch.cpp, nothing else.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "gguf/gguf.h"
#include "model/config.h"
#include "model/model_info.h"
#include "util/status.h"

namespace minnow::model {

struct ArchSpec {
  std::string_view name;
  // Fills the architecture's knobs into `config`, which already holds the common
  // hyper-parameters (read_common_config). Errors name the file and key.
  Status (*configure)(const gguf::File& file, const ModelInfo& info, ModelConfig& config);
};

// nullptr when the architecture is not supported.
const ArchSpec* find_arch(std::string_view name);
std::vector<std::string_view> supported_archs();

// The whole config of `file`: the hyper-parameters every transformer has (embedding size,
// layers, heads, head dims, FFN size, context, norm epsilon, RoPE base/dims/linear scaling,
// vocabulary from token_embd), then the architecture's own knobs. Fails with a message
// naming the file and the architecture when it is unknown, or the key that is missing.
Result<ModelConfig> read_config(const gguf::File& file);

// Optional f32 metadata value (any numeric type) or `fallback`; errors only on a wrong type.
Result<float> get_number_or(const gguf::File& file, std::string_view key, float fallback);

}  // namespace minnow::model
