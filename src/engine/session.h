// A Session is one conversation with a model: a Context (KV cache) plus the tokens in it, so a
// follow-up prompt that starts with the same tokens (a chat turn that repeats the history)
// evaluates only what is new. generate() runs prompt -> tokens with the sampler chain:
//
//   prompt tokens ─ eval (prefix reuse, batches) ─> logits ─ Sampler ─> token
//        ▲                                                              │
//        └──────────── eval(token) <── stop? (EOG, stop string, limit) ─┘
//                                        └─> StreamDecoder -> on_text(piece)
//
// Text reaches the caller through on_text as soon as it is final (whole UTF-8 characters,
// never part of a stop string). Timings follow Ollama's fields.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/generation.h"
#include "model/context.h"
#include "model/model.h"
#include "sampling/sampler.h"
#include "util/status.h"
#include "util/thread_pool.h"

namespace minnow::engine {

class Session {
 public:
  static Result<std::unique_ptr<Session>> create(const model::Model& model, ThreadPool& pool,
                                                 const model::ContextOptions& options = {});

  // on_text gets each piece of final text; on_token (optional) each sampled token. Either
  // returning false, or *cancel becoming true, stops generation (done_reason "cancel").
  Result<GenerateResult> generate(std::span<const int32_t> prompt, const GenerateOptions& options,
                                  const std::function<bool(std::string_view)>& on_text,
                                  const std::function<bool(const TokenEvent&)>& on_token = {},
                                  const std::atomic<bool>* cancel = nullptr);

  // Forgets the conversation (the next prompt is evaluated from scratch).
  void clear();
  // An embedding of the tokens (model::Context::embed); forgets the conversation.
  Result<std::vector<float>> embed(std::span<const int32_t> tokens);
  const model::Model& model() const { return model_; }
  model::Context& context() { return *ctx_; }
  int n_ctx() const { return ctx_->n_ctx(); }
  const std::vector<int32_t>& tokens() const { return tokens_; }

 private:
  Session(const model::Model& model, std::unique_ptr<model::Context> ctx)
      : model_(model), ctx_(std::move(ctx)) {}
  // Brings the context to hold exactly `prompt` (reusing the common prefix) and returns the
  // logits of its last token.
  Result<std::span<const float>> load_prompt(std::span<const int32_t> prompt, GenerateResult& r);
  Status shift_if_full(const GenerateOptions& options);

  const model::Model& model_;
  std::unique_ptr<model::Context> ctx_;
  std::vector<int32_t> tokens_;  // what the context holds, in order
};

}  // namespace minnow::engine
