// `minnow pull`: a GGUF from Hugging Face (`hf.co/USER/REPO[:QUANT]`, QUANT picking the .gguf
// file whose name contains it, default Q4_K_M) or from an `https://…/file.gguf` URL, into the
// store. The download goes to blobs/sha256-<hex>-partial, resumes from there with an HTTP
// Range request (after a dropped connection, and on the next pull), is checked against the
// size and sha256 that Hugging Face publishes (its tree API's LFS fields; for a URL, the
// X-Linked-Size / X-Linked-Etag headers when the server sends them), opened with the GGUF
// reader, and only then renamed into blobs/ and given a manifest.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "store/store.h"
#include "util/status.h"

namespace minnow::store {

// Ollama's progress shape: {"status", "digest", "total", "completed"}.
struct PullProgress {
  std::string status;
  std::string digest;  // "sha256:<hex>" while downloading, when known
  uint64_t total = 0;
  uint64_t completed = 0;
};

struct PullOptions {
  std::string hf_endpoint;  // empty: $MINNOW_HF_ENDPOINT, else https://huggingface.co
  std::string name;         // the store name to register (default: from the spec)
  int max_attempts = 5;     // connections tried for one file before giving up (resuming each)
  // Hears every step; returning false cancels (the partial file stays, for a later resume).
  std::function<bool(const PullProgress&)> progress;
};

// $MINNOW_HF_ENDPOINT when set, else https://huggingface.co (no trailing slash).
std::string hf_endpoint();

// What a spec names: the store name it is registered as and where the file comes from.
struct PullSource {
  ModelName name;
  bool huggingface = false;
  std::string user, repo, quant;  // huggingface
  std::string url;                // a direct URL
};
Result<PullSource> parse_pull_spec(std::string_view spec);

Result<StoredModel> pull(Store& store, std::string_view spec, const PullOptions& options = {});

}  // namespace minnow::store
