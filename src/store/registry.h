// The model cache and the names that stand for files in it. `smollm2:135m` resolves to
// $MINNOW_CACHE/SmolLM2-135M-Instruct.Q4_1.gguf; a path to a .gguf file resolves to itself.
// The list of names comes from scripts/models.tsv (the table setup fetches from).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "util/status.h"

namespace minnow::store {

struct KnownModel {
  std::string_view name;          // "smollm2:135m"
  std::string_view architecture;  // "llama"
  std::string_view file;          // file name in the model cache
  uint64_t bytes;                 // expected size, checked before use
  std::string_view sha256;        // checked by setup (scripts/fetch_models.py), not at run time
};

std::span<const KnownModel> known_models();
const KnownModel& default_model();  // the first row of scripts/models.tsv
const KnownModel* find_model(std::string_view name);
std::string known_model_names();  // "smollm2:135m, gemma3:270m"

// $MINNOW_CACHE when set and non-empty, else $HOME/.cache/minnow/models.
Result<std::string> model_cache_dir();

struct ResolvedModel {
  std::string path;
  const KnownModel* known = nullptr;  // set when resolved by name
};

// A known name resolves to its file in the cache, which must be there with the expected size
// (else the error says to run setup). Anything else is taken as a path and must be a readable
// regular file. An argument that is neither a known name nor an existing file nor looks like a
// path is reported as an unknown name, listing the known ones.
Result<ResolvedModel> resolve_model(std::string_view name_or_path);

}  // namespace minnow::store
