#include "model/model.h"

#include <chrono>

#include "model/arch.h"
#include "model/gguf_keys.h"

namespace minnow::model {

Result<std::unique_ptr<Model>> Model::load(const std::string& path, const LoadOptions& options) {
  const auto t0 = std::chrono::steady_clock::now();
  auto file = gguf::File::open(path);
  if (!file.ok()) return Status::error(file.error());
  std::unique_ptr<Model> m(new Model());
  m->file_ = std::move(*file);
  auto config = read_config(*m->file_);
  if (!config.ok()) return Status::error(config.error());
  m->config_ = std::move(*config);
  auto weights = load_weights(*m->file_, m->config_);
  if (!weights.ok()) return Status::error(weights.error());
  m->weights_ = std::move(*weights);
  if (options.tokenizer && m->file_->has(gguf_key(Key::kTokenizerModel))) {
    auto tok = text::Tokenizer::load(*m->file_);
    if (!tok.ok()) return Status::error(tok.error());
    m->tokenizer_ = std::move(*tok);
  }
  m->load_ms_ =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  return m;
}

uint64_t Model::n_params() const {
  uint64_t n = 0;
  for (const auto& t : file_->tensors()) n += t.n_elements;
  return n;
}

}  // namespace minnow::model
