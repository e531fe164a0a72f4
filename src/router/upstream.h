// Remote OpenAI-compatible upstreams (the router's "cloud" tiers): the HTTP client with its
// fault handling, and the pure JSON translations around it.
//
//   Ollama /api/chat, /api/generate ─ openai_chat_from_ollama ─┐
//   OpenAI /v1/completions ── openai_chat_from_completion ─────┤
//   OpenAI /v1/chat/completions ───────────────────────────────┴─> chat body
//     prepare_upstream_request(body, tier)  model, stream false, choice -> json_schema, ...
//     Upstream::chat(prepared.body)         retries, backoff + jitter, breaker, cancel
//     read_upstream_answer(reply, prepared) text (choice unwrapped), tool calls, usage, logprobs
//
// Faults: an attempt that fails with a refused / reset connection, a timeout, HTTP 408, 429 or
// 5xx, or a 2xx body that is not a chat completion is retried (exponential backoff with full
// jitter, Retry-After honoured up to the cap); any other 4xx is not. A call whose answer was
// read is never retried, so a request is answered at most once. Consecutive failed calls open
// the circuit breaker (calls fail at once, no network) until a trial call after the cooldown
// succeeds.
#pragma once

#include <atomic>
#include <chrono>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "router/config.h"
#include "util/status.h"

namespace minnow::router {

// Why a call failed: the router falls back on any of them, but metrics, logs and tests tell them
// apart. The kind of a failed call is its last attempt's.
enum class UpstreamErrorKind {
  kNone,         // no error
  kConfig,       // bad base_url, API key variable not set (no request made, not retried)
  kConnect,      // refused, reset, closed early, TLS handshake (retried)
  kTimeout,      // connect or read past timeout_s, or HTTP 408 (retried)
  kHttp5xx,      // HTTP 5xx (retried)
  kRateLimited,  // HTTP 429 (retried, Retry-After honoured up to backoff_max_ms)
  kClientError,  // other HTTP 4xx / 3xx: the request is at fault (not retried)
  kBadResponse,  // 2xx whose body is not a chat completion (retried); an unusable answer
  kCircuitOpen,  // the breaker is open: failed at once, no network
  kCancelled,    // the caller's cancel flag was set
};
const char* upstream_error_kind_name(UpstreamErrorKind kind);

// A chat completion that arrived.
struct UpstreamReply {
  nlohmann::json body;  // the upstream's parsed response (has choices[0].message)
  int attempts = 0;     // requests made, the answering one included
  double total_ms = 0;  // the whole call, backoff included
  int http_status = 0;
  std::string retries;  // what the failed attempts before it met ("" on a first-try answer)
};

// One per remote tier, shared by all server threads (thread-safe: per-call state is local,
// the breaker is behind a mutex).
class Upstream {
 public:
  enum class BreakerState { kClosed, kOpen, kHalfOpen };

  explicit Upstream(TierConfig tier);

  // POSTs `request` to {base_url}/chat/completions with "model" = the tier's model and
  // "stream": false; `Authorization: Bearer $api_key_env` when api_key_env is set. The
  // error message names the tier, the URL and each attempt; *error_kind (when given) says
  // what kind of failure it was (kNone on success). A set *cancel stops the call between
  // attempts and, by closing the socket, during one (not while a connect is pending: that
  // is bounded by timeout_s).
  Result<UpstreamReply> chat(const nlohmann::json& request,
                             const std::atomic<bool>* cancel = nullptr,
                             UpstreamErrorKind* error_kind = nullptr);

  // kHalfOpen: the cooldown is over and the next call is (or is being) the trial.
  BreakerState breaker_state() const;
  const TierConfig& tier() const { return tier_; }
  // The configuration problems chat() would report (base_url, API key variable), so that
  // they can be shown at start-up.
  Status check() const;

 private:
  using Clock = std::chrono::steady_clock;
  // Breaker bookkeeping: admit() decides whether a call may go out (and marks the half-open
  // trial); record() counts the call's outcome.
  bool admit(bool* trial, double* wait_s);
  void record(bool trial, bool healthy, bool counts);

  TierConfig tier_;
  mutable std::mutex mu_;
  int consecutive_failures_ = 0;
  bool open_ = false;
  bool trial_in_flight_ = false;
  Clock::time_point open_until_{};
};

// --- Request translation (pure, JSON only) ---------------------------------------------------

// An Ollama /api/chat (chat = true) or /api/generate body as an OpenAI chat-completions body:
// messages (generate: system + prompt as a user message; tool calls' arguments as JSON text,
// tool results tied to their call ids), options (temperature, top_p, seed, num_predict ->
// max_tokens, stop, presence/frequency penalty), format ("json" -> json_object, a schema ->
// json_schema), tools, and minnow's choice / grammar / regex as they are.
nlohmann::json openai_chat_from_ollama(const nlohmann::json& body, bool chat);
// An OpenAI /v1/completions body as a chat body (the prompt as one user message; max_tokens
// defaults to 16 as in /v1/completions; logprobs n -> logprobs + top_logprobs n).
nlohmann::json openai_chat_from_completion(const nlohmann::json& body);

struct Prepared {
  nlohmann::json body;               // what Upstream::chat sends
  std::vector<std::string> choices;  // non-empty: the answer is {"answer": label}, unwrapped
};

// The request for `tier`: its model, stream false, logprobs when want_logprobs (the router
// judges a non-final remote tier by them). A foreign upstream (!tier.minnow_extensions) gets
// `choice` as a strict JSON schema {"answer": enum}, and no minnow / Ollama-only fields;
// `grammar` / `regex` are an error (that tier cannot honour them). A minnow upstream gets the
// extensions as they are.
Result<Prepared> prepare_upstream_request(nlohmann::json chat_body, const TierConfig& tier,
                                          bool want_logprobs = false);

struct UpstreamAnswer {
  std::string text;                              // choices[0].message.content (choice: the label)
  nlohmann::json tool_calls;                     // the upstream's tool_calls array, or null
  std::string finish_reason;                     // "" when absent
  int prompt_tokens = 0, completion_tokens = 0;  // 0 when usage is absent
  // Over choices[0].logprobs.content (choice: only the label's tokens, the JSON wrapper around
  // it being forced by the schema). n_logprobs == 0: none sent.
  int n_logprobs = 0;
  double mean_logprob = 0, min_logprob = 0;
};

// Reads a reply to a request made by prepare_upstream_request. Errors (all of kind
// kBadResponse): no choices[0].message, a choice answer that is not one of the labels.
Result<UpstreamAnswer> read_upstream_answer(const nlohmann::json& reply, const Prepared& p);

}  // namespace minnow::router
