// The names that stand for model files. A name is looked up first in the model store
// ($MINNOW_MODELS, see store.h), then among the known models of the cache (`smollm2:135m` ->
// $MINNOW_CACHE/SmolLM2-135M-Instruct.Q4_1.gguf, from scripts/models.tsv, the table setup
// fetches from); a path to a .gguf file resolves to itself.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "store/modelfile.h"
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
  const KnownModel* known = nullptr;  // set when resolved by a known name outside the store
  // What the store adds (empty for plain paths and the cache's known models): what a loaded
  // model applies on top of the GGUF, from the Modelfile it was created with.
  std::string name;       // the store's name ("smollm2:135m", "me/helper:latest"); empty for paths
  std::string digest;     // "sha256:<hex>" of the GGUF (the table's sha256 for known models)
  Parameters parameters;  // name -> values as text ("temperature" -> {"0.7"}; "stop" repeats)
  std::string template_text;      // TEMPLATE, a Go template kept as given (not rendered by minnow)
  std::string system;             // SYSTEM
  std::vector<Message> messages;  // MESSAGE lines, in order
  std::vector<std::string> licenses;  // LICENSE texts
  bool from_store = false;
};

// A name in the model store resolves to its GGUF blob, with its settings. Otherwise a known
// name resolves to its file in the cache, which must be there with the expected size
// (else the error says to run setup). Anything else is taken as a path and must be a readable
// regular file. An argument that is neither a known name nor an existing file nor looks like a
// path is reported as an unknown name, listing the known ones.
Result<ResolvedModel> resolve_model(std::string_view name_or_path);

}  // namespace minnow::store
