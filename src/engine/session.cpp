#include "engine/session.h"

#include <algorithm>
#include <chrono>


namespace minnow::engine {

namespace {
using Clock = std::chrono::steady_clock;
}  // namespace

Result<std::unique_ptr<Session>> Session::create(const model::Model& model, ThreadPool& pool,
                                                 const model::ContextOptions& options) {
  auto ctx = model::Context::create(model, pool, options);
  if (!ctx.ok()) return Status::error(ctx.error());
  return std::unique_ptr<Session>(new Session(model, std::move(*ctx)));
}

void Session::clear() {
  ctx_->truncate(0);
  tokens_.clear();
}

Result<std::vector<float>> Session::embed(std::span<const int32_t> tokens) {
  tokens_.clear();
  if (tokens.size() > size_t(ctx_->n_ctx())) {
    return Status::error("the input has " + std::to_string(tokens.size()) +
                         " tokens, more than fit in the context of " +
                         std::to_string(ctx_->n_ctx()) + " tokens");
  }
  return ctx_->embed(tokens);
}

Result<std::span<const float>> Session::load_prompt(std::span<const int32_t> prompt,
                                                    GenerateResult& r) {
  // Reuse the longest common prefix, but always evaluate at least the last prompt token:
  // its logits are what the first sample needs.
  size_t keep = 0;
  while (keep < tokens_.size() && keep < prompt.size() && tokens_[keep] == prompt[keep]) ++keep;
  keep = std::min(keep, prompt.size() - 1);
  keep = static_cast<size_t>(ctx_->truncate(static_cast<int>(keep)));
  tokens_.resize(keep);
  r.prompt_evaluated = static_cast<int>(prompt.size() - keep);
  auto logits = ctx_->eval(prompt.subspan(keep));
  if (!logits.ok()) {
    clear();  // a failed eval leaves the cache in an unknown state
    return Status::error(logits.error());
  }
  tokens_.assign(prompt.begin(), prompt.end());
  return *logits;
}

Status Session::shift_if_full(const GenerateOptions& options) {
  const int n_keep = std::clamp(options.n_keep, 0, ctx_->n_past() - 1);
  const int n_discard = std::max(1, (ctx_->n_past() - n_keep) / 2);
  MINNOW_RETURN_IF_ERROR(ctx_->shift(n_keep, n_discard));
  tokens_.erase(tokens_.begin() + n_keep, tokens_.begin() + n_keep + n_discard);
  return Status();
}

Result<GenerateResult> Session::generate(std::span<const int32_t> prompt_in,
                                         const GenerateOptions& options,
                                         const std::function<bool(std::string_view)>& on_text,
                                         const std::function<bool(const TokenEvent&)>& on_token,
                                         const std::atomic<bool>* cancel) {
  const auto t0 = Clock::now();
  const int n_ctx = ctx_->n_ctx();
  auto prompt = fit_prompt(prompt_in, n_ctx, options);
  if (!prompt.ok()) return Status::error(prompt.error());
  auto gen = Generation::create(model_, *prompt, options, on_text, on_token, cancel, t0);
  if (!gen.ok()) return Status::error(gen.error());
  GenerateResult r;
  auto logits = load_prompt(*prompt, r);
  if (!logits.ok()) return Status::error(logits.error());
  (*gen)->prompt_done(r.prompt_evaluated);
  while (true) {
    auto next = (*gen)->step(*logits, options.context_shift ? -1 : n_ctx - ctx_->n_past());
    if (!next.ok()) return Status::error(next.error());
    if (next->empty()) break;
    if (ctx_->n_past() + int(next->size()) > n_ctx) {
      if (!options.context_shift) {
        (*gen)->stop("length");
        break;
      }
      while (ctx_->n_past() + int(next->size()) > n_ctx) {
        MINNOW_RETURN_IF_ERROR(shift_if_full(options));
      }
    }
    logits = ctx_->eval(*next);
    if (!logits.ok()) {
      clear();
      return Status::error(logits.error());
    }
    tokens_.insert(tokens_.end(), next->begin(), next->end());
  }
  r = (*gen)->take_result();
  r.prompt_tokens = static_cast<int>(prompt_in.size());
  return r;
}

}  // namespace minnow::engine
