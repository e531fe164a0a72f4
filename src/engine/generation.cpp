#include "engine/generation.h"

#include <algorithm>

#include "sampling/stop_matcher.h"
#include "text/stream_decoder.h"

namespace minnow::engine {

namespace {
double ms_since(Generation::Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Generation::Clock::now() - t0).count();
}
}  // namespace

Result<std::vector<int32_t>> fit_prompt(std::span<const int32_t> prompt, int n_ctx,
                                        const GenerateOptions& options) {
  if (prompt.empty()) return Status::error("the prompt has no tokens");
  if (prompt.size() < size_t(n_ctx)) return std::vector<int32_t>(prompt.begin(), prompt.end());
  if (!options.context_shift) {
    return Status::error("the prompt has " + std::to_string(prompt.size()) +
                         " tokens, more than fit in the context of " + std::to_string(n_ctx) +
                         " tokens (raise num_ctx, or allow the context to shift)");
  }
  const size_t n_keep = std::clamp<size_t>(options.n_keep, 0, n_ctx / 2);
  const size_t tail = n_ctx - n_keep - n_ctx / 4;
  std::vector<int32_t> out(prompt.begin(), prompt.begin() + n_keep);
  out.insert(out.end(), prompt.end() - tail, prompt.end());
  return out;
}

struct Generation::State {
  const text::Tokenizer& tok;
  GenerateOptions options;
  sampling::Sampler sampler;
  text::StreamDecoder decoder;
  sampling::StopMatcher stops;
  TextFn on_text;
  TokenFn on_token;
  const std::atomic<bool>* cancel;
  Clock::time_point t0, t_first;
  std::vector<int32_t> next;    // what step() returns
  std::vector<int32_t> forced;  // scratch for Constraint::forced
  sampling::SampleResult forced_sample;
};

Generation::Generation(std::unique_ptr<State> s) : s_(std::move(s)) {}
Generation::~Generation() = default;

Result<std::unique_ptr<Generation>> Generation::create(const model::Model& model,
                                                       std::span<const int32_t> prompt,
                                                       const GenerateOptions& options,
                                                       TextFn on_text, TokenFn on_token,
                                                       const std::atomic<bool>* cancel,
                                                       Clock::time_point t0) {
  const text::Tokenizer* tok = model.tokenizer();
  if (!tok)
    return Status::error(model.path() + ": the file has no tokenizer, cannot generate text");
  auto sampler = sampling::Sampler::create(options.sampling, model.config().n_vocab);
  if (!sampler.ok()) return Status::error(sampler.error());
  if (options.constraint) sampler->set_constraint(options.constraint);
  sampler->accept_prompt(prompt);
  // Token ids -> whole UTF-8 characters (StreamDecoder), then stop strings (StopMatcher: the
  // stop that completes first wins, however the text is split into tokens).
  auto s = std::unique_ptr<State>(new State{
      *tok, options, std::move(*sampler), text::StreamDecoder(*tok, {options.emit_special, {}}),
      sampling::StopMatcher(options.stop), std::move(on_text), std::move(on_token), cancel, t0,
      {}, {}, {}, {}});
  s->forced_sample.prob = s->forced_sample.sample_prob = 1.0f;
  s->forced_sample.n_candidates = 1;
  std::unique_ptr<Generation> g(new Generation(std::move(s)));
  g->r_.prompt_tokens = static_cast<int>(prompt.size());
  return g;
}

void Generation::prompt_done(int evaluated) {
  r_.prompt_evaluated = evaluated;
  r_.prompt_ms = ms_since(s_->t0);
}

bool Generation::emit(int32_t id, const sampling::SampleResult* sample) {
  State& s = *s_;
  ++r_.generated_tokens;
  r_.tokens.push_back(id);
  bool caller_stopped = false;
  if (s.on_token && !s.on_token(TokenEvent{id, sample})) caller_stopped = true;
  const std::string_view piece = s.stops.feed(s.decoder.push(id));
  if (!piece.empty() && !s.on_text(piece)) caller_stopped = true;
  if (s.stops.stopped()) {
    finish("stop");
    return false;
  }
  if (caller_stopped) {
    finish("cancel");
    return false;
  }
  return true;
}

Result<std::span<const int32_t>> Generation::step(std::span<const float> logits,
                                                  int context_left) {
  State& s = *s_;
  s.next.clear();
  if (done_) return std::span<const int32_t>();
  const int limit = s.options.num_predict;
  if (limit >= 0 && r_.generated_tokens >= limit) {
    finish("length");
    return std::span<const int32_t>();
  }
  if (s.cancel && s.cancel->load(std::memory_order_relaxed)) {
    finish("cancel");
    return std::span<const int32_t>();
  }
  if (s.options.constraint) {
    // Samples still possible, the end-of-generation one included: it takes a step of the limit
    // but no position in the context.
    int tokens_left = limit >= 0 ? limit - r_.generated_tokens : -1;
    if (context_left >= 0 && (tokens_left < 0 || context_left + 1 < tokens_left)) {
      tokens_left = context_left + 1;
    }
    s.options.constraint->set_budget(tokens_left);
  }
  const int32_t id = s.sampler.sample(logits);
  if (!s.sampler.status().ok()) return Status::error(s.sampler.status().message());
  if (r_.generated_tokens == 0) {
    r_.ttft_ms = ms_since(s.t0);
    s.t_first = Clock::now();
  }
  // An end-of-generation token ends the answer without being part of it (not counted,
  // not shown, not in the token list).
  if (s.tok.is_eog(id)) {
    finish("stop");
    return std::span<const int32_t>();
  }
  if (!emit(id, &s.sampler.last())) return std::span<const int32_t>();
  s.sampler.accept(id);
  s.next.push_back(id);
  // Tokens the constraint allows as the only continuation go in without sampling.
  if (s.options.constraint) {
    s.forced.clear();
    s.options.constraint->forced(s.forced);
    for (const int32_t f : s.forced) {
      if ((limit >= 0 && r_.generated_tokens >= limit) || s.tok.is_eog(f)) break;
      if (!emit(f, &s.forced_sample)) return std::span<const int32_t>();
      s.sampler.accept(f);
      s.next.push_back(f);
    }
  }
  return std::span<const int32_t>(s.next);
}

void Generation::stop(std::string_view reason) { finish(reason); }

void Generation::finish(std::string_view reason) {
  if (done_) return;
  State& s = *s_;
  done_ = true;
  r_.done_reason = std::string(reason);
  if (!s.stops.stopped()) {
    std::string_view rest = s.stops.feed(s.decoder.finish());
    if (!rest.empty()) s.on_text(rest);
    rest = s.stops.flush();
    if (!rest.empty()) s.on_text(rest);
  }
  if (r_.generated_tokens > 0 || r_.done_reason == "stop") r_.generate_ms = ms_since(s.t_first);
}

}  // namespace minnow::engine
