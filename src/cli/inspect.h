// `minnow inspect`: what a GGUF model file holds, as text for people or as JSON for tools.
// The JSON schema is documented in docs/inspect-json.md; bump kInspectSchemaVersion on any
// change that is not a pure addition.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "gguf/gguf.h"
#include "model/model_info.h"

namespace minnow::cli {

constexpr int kInspectSchemaVersion = 1;

struct InspectOptions {
  std::string model_name;  // the registry name when resolved by name, else empty
  bool tensors = false;    // list every tensor
};

nlohmann::ordered_json inspect_json(const gguf::File& file, const model::ModelInfo& info,
                                    const InspectOptions& options);
std::string inspect_text(const gguf::File& file, const model::ModelInfo& info,
                         const InspectOptions& options);

}  // namespace minnow::cli
