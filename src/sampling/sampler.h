// The sampler chain: turns one row of logits into the next token, once per generated token.
//
// Order of the stages (llama.cpp's default chain, which Ollama's llama runner used):
//
//   logit_bias -> penalties (repeat, presence, frequency) -> constraint
//     -> greedy (temperature <= 0): argmax, ties to the lowest id
//     -> or top_k -> typical_p -> top_p -> min_p -> temperature -> draw (seeded PRNG)
//
// Why this order: bias and penalties say which tokens the caller wants (a ban must hold whatever
// the truncation does), so they come first. The constraint (a grammar, a JSON schema, a choice)
// comes after them so that it sees the logits the chain will use. top_k first bounds everything
// after it to k candidates, so typical/top_p/min_p cost O(k), not O(n_vocab). The three
// probability cuts use the temperature-1 distribution and temperature is applied last, as in
// llama.cpp: a temperature change then only reshapes the kept set, it does not change which
// tokens are kept. Ollama's newer Go sampler applies temperature before top_p/min_p; at the
// default temperature 0.8 the two orders keep slightly different sets.
//
// Cost on the hot path (no allocation after create()): one vectorised pass over the raw logits
// for the log-sum-exp (the logprob of the chosen token and the router's probability; an AVX2
// clone is picked at load time), one pass of partial selection for the top k (a k-heap fed only
// by 16-float blocks that hold a value above the heap's minimum, so most of the vocabulary
// costs one SSE compare), and, when asked for, one more selection pass for the top-n logprobs.
// Bias and penalties are applied sparsely: they touch at most |logit_bias| + |distinct tokens
// in the window| entries ("overrides"), and the selection over the raw logits takes
// k + |overrides| so that no copy of the vocabulary is made. A copy is made only when a
// constraint rejects the first draw, when there are more than 256 overrides, or when top_k is
// off. With top_k off, top_p first tries the best 256 tokens (enough on a peaked distribution);
// otherwise the whole vocabulary becomes the candidate list, top_p finds its cut with a
// histogram of the mass (1/32-nat buckets below the max; only the bucket holding the cut is
// sorted), and typical_p, which needs the order of |surprise - entropy|, sorts it all.
// Memory per sampler: the penalty counts (4 bytes x n_vocab, only with penalties on), plus
// buffers sized once and touched only by the paths that run: the masking copy and the distinct
// list (4 + 4 bytes x n_vocab) and, with top_k off, candidates (8 + 4, +12 for typical_p).
//
// Penalties follow llama.cpp: repeat_penalty divides a positive logit and multiplies a negative
// one, once per distinct token in the window; presence and frequency penalties (OpenAI) subtract
// presence + count x frequency. Prompt tokens enter the window only through accept_prompt().
//
// Constraint: the cheap path of llama.cpp's grammar sampling. The chain first samples without the
// constraint and asks `allows(token)`; only when it says no is the whole vocabulary masked
// (`mask`) and the chain run again on the masked logits. Without truncation (top_k/top_p/min_p
// off) the two-step draw has exactly the masked distribution (P(t) = p(t) + R p(t) / (1 - R) =
// p(t) / (1 - R) with R the rejected mass); with truncation it can differ slightly, because the
// truncated set of the masked logits is not the allowed part of the unmasked one. Greedy is
// exact either way. When the constraint allows no token at all, sample() returns kNoToken and
// status() says why.
//
// Thread-safety: one Sampler per sequence; nothing is shared.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include "util/status.h"

namespace minnow::sampling {

// Ollama's defaults (api/types.go DefaultOptions).
struct SamplingParams {
  float temperature = 0.8f;     // <= 0: greedy
  int32_t top_k = 40;           // 0: off (the whole vocabulary is a candidate)
  float top_p = 0.9f;           // (0, 1]; 1: off
  float min_p = 0.0f;           // [0, 1]; 0: off
  float typical_p = 1.0f;       // (0, 1]; 1: off
  float repeat_penalty = 1.1f;  // > 0; 1: off
  int32_t repeat_last_n = 64;   // window of the penalties: 0 = off, -1 = the whole history
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  // Added to the raw logit of the token; -inf (or a large negative value) bans it.
  std::vector<std::pair<int32_t, float>> logit_bias;
  std::optional<uint64_t> seed;  // unset: seeded from std::random_device
  int n_logprobs = 0;            // alternatives reported in SampleResult::top, 0..kMaxLogprobs
  // With a constraint: mask every step (not only when the first draw is rejected) and report
  // the raw probability mass of the allowed tokens in SampleResult::allowed_mass. The router
  // uses it for the probability of a chosen label (choice tasks); the tokens drawn are the same.
  bool constraint_mass = false;
};

inline constexpr int kMaxLogprobs = 20;
inline constexpr int32_t kNoToken = -1;

// Checks every field against n_vocab; the error names the field and its value.
Status validate(const SamplingParams& params, int32_t n_vocab);

struct TokenLogprob {
  int32_t id = kNoToken;
  float logprob = 0.0f;
};

// What the last sample() chose. The logprobs are the log-softmax of the model's raw logits,
// before bias, penalties, constraint and temperature: that is what OpenAI's `logprobs` reports
// (the model's belief, not the sampler's), and what a router comparing models needs.
struct SampleResult {
  int32_t token = kNoToken;
  float logprob = 0.0f;      // log p_raw(token)
  float prob = 0.0f;         // p_raw(token) = exp(logprob): the chosen token's raw probability
  float sample_prob = 0.0f;  // its probability in the distribution it was drawn from (1: greedy)
  int n_candidates = 0;      // tokens left after the truncation stages (1: greedy)
  bool resampled = false;    // the constraint rejected the first draw and the masked chain ran
  // Raw probability mass of the tokens the constraint allowed (SamplingParams::constraint_mass;
  // 1 when not computed): prob / allowed_mass is the token's probability among the allowed.
  float allowed_mass = 1.0f;
  int n_top = 0;
  std::array<TokenLogprob, kMaxLogprobs> top_storage{};  // the n_top most likely raw tokens

  std::span<const TokenLogprob> top() const { return {top_storage.data(), size_t(n_top)}; }
};

// One stage of the chain that forbids tokens (grammar, JSON schema, regex, choice).
class Constraint {
 public:
  virtual ~Constraint() = default;
  // Sets the logits of the tokens not allowed in the current state to -inf.
  virtual void mask(std::span<float> logits) = 0;
  // Whether `token` is allowed in the current state (the cheap check of the first draw).
  virtual bool allows(int32_t token) = 0;
  // Advances the state past `token` (called by Sampler::accept).
  virtual void accept(int32_t token) = 0;
  // Tokens the constraint forces next (exactly one continuation is possible), appended to
  // `out` without advancing; the engine evaluates them without sampling and accepts each.
  // The default forces nothing.
  virtual void forced(std::vector<int32_t>& out) { (void)out; }
  // How many more tokens may be sampled, this one and the end-of-generation token included
  // (the token limit or the context's room); -1: no limit. Called by the engine before each
  // sample, so that a constraint can steer the output to close before it is cut off. The
  // default ignores it.
  virtual void set_budget(int tokens_left) { (void)tokens_left; }
};

// A candidate of the truncation stages: a token and its (biased, penalised) logit.
struct Candidate {
  float logit;
  int32_t id;
};

class Sampler {
 public:
  // Validates `params` and allocates every buffer the chain may need.
  static Result<Sampler> create(const SamplingParams& params, int32_t n_vocab);

  Sampler(Sampler&&) noexcept;
  Sampler& operator=(Sampler&&) noexcept;
  ~Sampler();

  // Runs the chain on `logits` (n_vocab entries) and returns the token, or kNoToken when no
  // token can be produced (the constraint allows none, every logit is -inf/NaN, or the size is
  // wrong); status() then says why. Does not record the token: call accept().
  int32_t sample(std::span<const float> logits);
  const SampleResult& last() const { return last_; }
  // OK after a successful sample(); the reason of the last kNoToken otherwise.
  const Status& status() const { return status_; }

  // Records a generated token in the penalty window and advances the constraint.
  void accept(int32_t token);
  // Records prompt tokens in the penalty window only (not the constraint, which governs the
  // output), as llama.cpp's server does: the repeat penalty then also discourages copying the
  // prompt's tail. Engines that want penalties over the output only simply do not call it.
  void accept_prompt(std::span<const int32_t> tokens);
  // Forgets the history and re-seeds the PRNG with the same seed (a reset sampler replays the
  // same tokens for the same logits). The constraint is the caller's and is left as it is.
  void reset();

  // Not owned; nullptr removes it. Allocates the masking buffer on first use.
  void set_constraint(Constraint* constraint);

  const SamplingParams& params() const { return params_; }
  int32_t n_vocab() const { return n_vocab_; }
  uint64_t seed() const { return seed_; }

 private:
  struct Buffers;
  Sampler(const SamplingParams& params, int32_t n_vocab, uint64_t seed);

  bool penalties_on() const;
  void build_overrides(std::span<const float> base);
  int32_t run_chain(std::span<const float> base, bool apply_overrides);
  // log-sum-exp of the raw logits; fills last_.top.
  float compute_raw_logprobs(std::span<const float> raw);
  double next_uniform();

  SamplingParams params_;
  int32_t n_vocab_ = 0;
  uint64_t seed_ = 0;
  std::array<uint64_t, 4> rng_{};  // xoshiro256** state
  Constraint* constraint_ = nullptr;
  std::unique_ptr<Buffers> buf_;
  SampleResult last_;
  Status status_;
};

// Selects the k best entries of `logits` (highest value first, ties to the lowest id) into
// `out` (capacity >= k), sorted; returns how many were written (fewer when fewer than k
// values are > -inf). NaN never wins. Exposed for the tests and the benchmark.
int select_top_k(std::span<const float> logits, int k, Candidate* out);

}  // namespace minnow::sampling
