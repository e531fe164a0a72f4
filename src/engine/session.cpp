#include "engine/session.h"

#include <algorithm>
#include <chrono>

#include "sampling/stop_matcher.h"
#include "text/stream_decoder.h"

namespace minnow::engine {

namespace {
using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}
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
  if (ctx_->n_past() < ctx_->n_ctx()) return Status();
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
  const text::Tokenizer* tok = model_.tokenizer();
  if (!tok)
    return Status::error(model_.path() + ": the file has no tokenizer, cannot generate text");
  if (prompt_in.empty()) return Status::error("the prompt has no tokens");
  const auto t0 = Clock::now();
  GenerateResult r;
  r.prompt_tokens = static_cast<int>(prompt_in.size());

  // A prompt longer than the context: an error, or (context_shift) its first n_keep tokens
  // and as many of its last ones as leave a quarter of the context for the answer.
  std::vector<int32_t> shifted;
  std::span<const int32_t> prompt = prompt_in;
  const int n_ctx = ctx_->n_ctx();
  if (prompt.size() >= size_t(n_ctx)) {
    if (!options.context_shift) {
      return Status::error("the prompt has " + std::to_string(prompt.size()) +
                           " tokens, more than fit in the context of " + std::to_string(n_ctx) +
                           " tokens (raise num_ctx, or allow the context to shift)");
    }
    const size_t n_keep = std::clamp<size_t>(options.n_keep, 0, n_ctx / 2);
    const size_t tail = n_ctx - n_keep - n_ctx / 4;
    shifted.assign(prompt.begin(), prompt.begin() + n_keep);
    shifted.insert(shifted.end(), prompt.end() - tail, prompt.end());
    prompt = shifted;
  }

  auto sampler = sampling::Sampler::create(options.sampling, model_.config().n_vocab);
  if (!sampler.ok()) return Status::error(sampler.error());
  if (options.constraint) sampler->set_constraint(options.constraint);
  sampler->accept_prompt(prompt);
  // Token ids -> whole UTF-8 characters (StreamDecoder), then stop strings (StopMatcher: the
  // stop that completes first wins, however the text is split into tokens).
  text::StreamDecoder decoder(*tok, text::StreamOptions{options.emit_special, {}});
  sampling::StopMatcher stops(options.stop);

  auto logits = load_prompt(prompt, r);
  if (!logits.ok()) return Status::error(logits.error());
  r.prompt_ms = ms_since(t0);

  Clock::time_point t_first;
  bool stopped_by_caller = false;
  while (true) {
    if (options.num_predict >= 0 && r.generated_tokens >= options.num_predict) {
      r.done_reason = "length";
      break;
    }
    if (cancel && cancel->load(std::memory_order_relaxed)) {
      r.done_reason = "cancel";
      break;
    }
    const int32_t id = sampler->sample(*logits);
    if (!sampler->status().ok()) return Status::error(sampler->status().message());
    if (r.generated_tokens == 0) {
      r.ttft_ms = ms_since(t0);
      t_first = Clock::now();
    }
    // An end-of-generation token ends the answer without being part of it (not counted,
    // not shown, not in the token list).
    if (tok->is_eog(id)) {
      r.done_reason = "stop";
      break;
    }
    ++r.generated_tokens;
    r.tokens.push_back(id);
    if (on_token && !on_token(TokenEvent{id, &sampler->last()})) stopped_by_caller = true;
    const std::string_view piece = stops.feed(decoder.push(id));
    if (!piece.empty() && !on_text(piece)) stopped_by_caller = true;
    if (stops.stopped()) {
      r.done_reason = "stop";
      break;
    }
    if (stopped_by_caller) {
      r.done_reason = "cancel";
      break;
    }
    sampler->accept(id);
    if (ctx_->n_past() >= n_ctx) {
      if (!options.context_shift) {
        r.done_reason = "length";
        break;
      }
      MINNOW_RETURN_IF_ERROR(shift_if_full(options));
    }
    const int32_t one[1] = {id};
    logits = ctx_->eval(one);
    if (!logits.ok()) {
      clear();
      return Status::error(logits.error());
    }
    tokens_.push_back(id);
  }
  if (!stops.stopped()) {
    std::string_view rest = stops.feed(decoder.finish());
    if (!rest.empty()) on_text(rest);
    rest = stops.flush();
    if (!rest.empty()) on_text(rest);
  }
  if (r.generated_tokens > 0 || r.done_reason == "stop") r.generate_ms = ms_since(t_first);
  return r;
}

}  // namespace minnow::engine
