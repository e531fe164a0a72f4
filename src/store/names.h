// Model names and blob digests as the store accepts them. A name is Ollama's
// `[host/][namespace/]model[:tag]` (defaults registry.ollama.ai, library, latest), so that
// `smollm2:135m`, `me/helper` and `hf.co/user/Repo-GGUF:Q4_K_M` all map to a manifest path
// manifests/<host>/<namespace>/<model>/<tag>. Every part is checked before it touches the file
// system: no `..`, no absolute paths, no separators inside a part, bounded lengths.
#pragma once

#include <string>
#include <string_view>

#include "util/status.h"

namespace minnow::store {

constexpr std::string_view kDefaultHost = "registry.ollama.ai";
constexpr std::string_view kDefaultNamespace = "library";
constexpr std::string_view kDefaultTag = "latest";

struct ModelName {
  std::string host = std::string(kDefaultHost);
  std::string ns = std::string(kDefaultNamespace);
  std::string model;
  std::string tag = std::string(kDefaultTag);

  // The short form users type: defaults left out ("smollm2:135m", "me/helper:latest").
  std::string display() const;
  // host/namespace/model/tag, relative to <store>/manifests.
  std::string manifest_path() const;
  bool operator==(const ModelName&) const = default;
};

// Parses and validates a name; the error says which part is wrong and why.
Result<ModelName> parse_model_name(std::string_view text);

// "sha256:<64 lowercase hex>" only; returns the hex part.
Result<std::string> parse_digest(std::string_view digest);
// The file name of a blob: "sha256-<hex>".
std::string blob_file_name(std::string_view hex);

}  // namespace minnow::store
