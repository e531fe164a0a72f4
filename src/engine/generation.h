// The output side of one generation, whatever evaluates the model: the sampler chain (with
// its constraint), end of generation, stop strings, the token limit, streaming text and the
// timings. Session (one sequence) and Scheduler (many sequences in one batch) feed it the
// logits after the prompt and after each token it returns, and evaluate what it returns:
//
//   logits ─> step() ─ sample, emit text/token ─> {token, forced tokens...} ─> evaluate ─┐
//     ▲                    └─ EOG, stop string, limit, cancel: {} (done)                  │
//     └───────────────────────────────────────────────────────────────────────────────────┘
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "model/model.h"
#include "sampling/sampler.h"
#include "util/status.h"

namespace minnow::engine {

struct GenerateOptions {
  sampling::SamplingParams sampling;
  int num_predict = -1;  // tokens to generate at most; -1: until end of generation or context full
  std::vector<std::string> stop;
  // When the prompt plus generation outgrows the context: false stops with done_reason
  // "length" (and a prompt that does not fit is an error); true drops the oldest half of the
  // tokens after the first n_keep and goes on.
  bool context_shift = false;
  int n_keep = 0;
  bool emit_special = false;  // render control tokens in the text
  // Scheduler: a request still running after this many seconds (queue included) is stopped
  // and answered with an error; 0: no limit.
  double timeout_s = 0;
  // Scheduler: asked every 100 ms while the caller waits; false (the client went away)
  // cancels the request, queued or running. Empty: not asked.
  std::function<bool()> alive;
  // Not owned; must outlive the generation. Tokens it forces (Constraint::forced) are
  // appended without sampling; their events carry a SampleResult with logprob 0.
  sampling::Constraint* constraint = nullptr;
};

struct TokenEvent {
  int32_t token;
  const sampling::SampleResult* sample;  // logprobs of this token
};

struct GenerateResult {
  std::string done_reason;   // "stop" (end of generation or stop string), "length", "cancel"
  int prompt_tokens = 0;     // tokens of the prompt
  int prompt_evaluated = 0;  // of which evaluated now (the rest was reused from the cache)
  int generated_tokens = 0;
  double prompt_ms = 0;         // evaluating the prompt (up to the first logits)
  double generate_ms = 0;       // the decode steps after the first token
  double ttft_ms = 0;           // from the call to the first token sampled
  std::vector<int32_t> tokens;  // generated ids
};

using TextFn = std::function<bool(std::string_view)>;
using TokenFn = std::function<bool(const TokenEvent&)>;

// The prompt as it will be evaluated in a context of n_ctx positions: itself when it fits
// (leaving room for at least one generated token), else an error naming both numbers, or
// with context_shift its first n_keep tokens and as many of its last ones as leave a quarter
// of the context for the answer.
Result<std::vector<int32_t>> fit_prompt(std::span<const int32_t> prompt, int n_ctx,
                                        const GenerateOptions& options);

class Generation {
 public:
  using Clock = std::chrono::steady_clock;

  // on_text gets each piece of final text, on_token (optional) each token. Either returning
  // false, or *cancel becoming true, ends the generation with done_reason "cancel". t0: when
  // the request started (for ttft_ms and prompt_ms).
  static Result<std::unique_ptr<Generation>> create(const model::Model& model,
                                                    std::span<const int32_t> prompt,
                                                    const GenerateOptions& options, TextFn on_text,
                                                    TokenFn on_token,
                                                    const std::atomic<bool>* cancel,
                                                    Clock::time_point t0);
  ~Generation();

  // The prompt's logits are ready; `evaluated` of its tokens were evaluated now.
  void prompt_done(int evaluated);
  // Samples from the logits of the last evaluated token and emits it. Returns the tokens to
  // evaluate next (the sampled one, then any the constraint forces), or none when the
  // generation is over (done() and result().done_reason say so). context_left: positions still
  // free in the context for what it returns (-1: no bound, e.g. the context shifts); with the
  // token limit it makes the constraint's budget (Constraint::set_budget), so that constrained
  // output is closed before it would be cut off.
  Result<std::span<const int32_t>> step(std::span<const float> logits, int context_left = -1);
  // Ends it now with `reason` ("length": the context is full; "cancel").
  void stop(std::string_view reason);
  bool done() const { return done_; }
  const GenerateResult& result() const { return r_; }
  GenerateResult take_result() { return std::move(r_); }

 private:
  struct State;
  explicit Generation(std::unique_ptr<State> s);
  // Counts and emits one token; false when that ended the generation.
  bool emit(int32_t id, const sampling::SampleResult* sample);
  void finish(std::string_view reason);

  std::unique_ptr<State> s_;
  GenerateResult r_;
  bool done_ = false;
};

}  // namespace minnow::engine
