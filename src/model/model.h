// A loaded model: the mapped GGUF, its config (arch.h), its weights (weights.h) and, when the
// file has one, its tokenizer. Immutable after load and shared by every sequence (a
// Context, context.h, holds the per-sequence state).
#pragma once

#include <memory>
#include <string>

#include "gguf/gguf.h"
#include "model/config.h"
#include "model/weights.h"
#include "text/tokenizer.h"
#include "util/status.h"

namespace minnow::model {

struct LoadOptions {
  // Read the tokenizer too. A file without tokenizer metadata still loads (token-id use only).
  bool tokenizer = true;
  // Copy the tensor data out of the file mapping into memory backed by 2 MiB pages (see
  // model.cpp). Off: weights are read from the page cache through the mapping.
  bool huge_pages = true;
};

class Model {
 public:
  static Result<std::unique_ptr<Model>> load(const std::string& path,
                                             const LoadOptions& options = {});

  const ModelConfig& config() const { return config_; }
  const Weights& weights() const { return weights_; }
  const gguf::File& file() const { return *file_; }
  const std::string& path() const { return file_->path(); }
  // nullptr when not loaded or the file has no tokenizer.
  const text::Tokenizer* tokenizer() const { return tokenizer_.get(); }
  double load_ms() const { return load_ms_; }
  uint64_t n_params() const;

 private:
  Model() = default;
  void move_to_huge_pages();
  std::unique_ptr<gguf::File> file_;
  ModelConfig config_;
  Weights weights_;
  std::unique_ptr<text::Tokenizer> tokenizer_;
  struct Unmap {
    size_t bytes = 0;
    void operator()(void* p) const;
  };
  std::unique_ptr<void, Unmap> weight_copy_{nullptr, Unmap{}};
  double load_ms_ = 0;
};

}  // namespace minnow::model
