// The hybrid router: a virtual model (default "auto") that answers each request with the
// cheapest tier that is good enough. Tiers are local models (run by the caller through a
// LocalRunner: the server's scheduler, or eval's sessions) and remote OpenAI-compatible
// upstreams (run here, through Upstream: retries, backoff, circuit breaker).
//
//   route(request)
//     rules ─> start tier (or pinned)
//     for each tier from there:
//       run it; judge its answer (Signals -> escalation_reason under the tier's thresholds)
//       kept ─> the answer;  escalated / failed / skipped ─> the next tier
//     every tier failed ─> the best escalated answer held so far, else tiers below the start,
//                          else the error
//
// Streaming: the caller sees only the answer that is kept. A tier that may still be escalated
// has its text held back: a free-text answer is judged on its first hold_tokens sampled tokens
// (then sent, and the rest streams as it comes), a structured answer (grammar, schema, choice,
// tools) is judged whole. The last tier (or a pinned one) streams directly.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "constrain/constrain.h"
#include "router/config.h"
#include "router/route.h"
#include "router/rules.h"
#include "util/status.h"

namespace minnow::router {

class Upstream;

// What the router needs to know about a request.
struct RouteRequest {
  RequestFeatures features;   // for the rules
  nlohmann::json openai_body;  // the request as an OpenAI chat-completions body (remote tiers)
  // The structured output the answer must be (grammar / schema / choice / tools), or null.
  std::shared_ptr<const constrain::Grammar> grammar;
  bool choice = false;  // a choice task: judged by the chosen label's probability
  bool tools = false;   // tool calls: a remote tier's tool_calls are turned into text by
  std::function<std::string(const nlohmann::json&)> tool_calls_text;  // this
  bool stream = false;
  std::string api;  // "ollama" / "openai", for the record
};

// One local tier's generation reports into this.
class TokenSink {
 public:
  virtual ~TokenSink() = default;
  // Each generated token: its raw logprob, the allowed mass of its step (1 unless asked for),
  // and whether a constraint forced it (not sampled). False: stop generating.
  virtual bool token(float logprob, float allowed_mass, bool forced) = 0;
  // Final text as it comes. False: stop generating.
  virtual bool text(std::string_view piece) = 0;
};

struct LocalResult {
  int prompt_tokens = 0, output_tokens = 0;
  std::string done_reason;  // "stop", "length", "cancel"
};

// Runs the request on a local model (the caller's machinery).
class LocalRunner {
 public:
  virtual ~LocalRunner() = default;
  // want_mass: set SamplingParams::constraint_mass (choice tasks).
  virtual Result<LocalResult> run(const std::string& model, bool want_mass, TokenSink& sink,
                                  const std::atomic<bool>* cancel) = 0;
};

struct RouteOutcome {
  RouteRecord record;
  std::string text;         // the answer, as sent through on_text
  std::string done_reason;  // "stop" / "length" / "cancel"
  int prompt_tokens = 0, output_tokens = 0;
};

class Router {
 public:
  // Compiles the rules, builds one Upstream per remote tier.
  static Result<std::unique_ptr<Router>> create(RouterConfig config);
  ~Router();

  const RouterConfig& config() const { return config_; }
  const std::string& name() const { return config_.name; }

  // Routes one request. on_text gets the kept answer's text (false from it cancels). The
  // record is also counted in metrics() and appended to the log. An error only when no tier
  // could answer at all (each attempt's failure named).
  Result<RouteOutcome> route(const RouteRequest& request, LocalRunner& local,
                             const std::function<bool(std::string_view)>& on_text,
                             const std::atomic<bool>* cancel);

  // Prometheus text: requests answered, escalations and failures, tokens and cost per tier.
  std::string render_metrics() const;

 private:
  explicit Router(RouterConfig config);
  void account(const RouteRecord& r);

  RouterConfig config_;
  std::unique_ptr<Rules> rules_;
  std::vector<std::unique_ptr<Upstream>> upstreams_;  // per tier (null for local tiers)

  struct TierStats {
    uint64_t answered = 0, escalated = 0, failed = 0, skipped = 0;
    uint64_t prompt_tokens = 0, output_tokens = 0;
    double cost_usd = 0;
  };
  mutable std::mutex mu_;
  std::vector<TierStats> stats_;
  uint64_t requests_ = 0, unanswered_ = 0;
  double top_tier_cost_usd_ = 0;
  std::mutex log_mu_;
};

// Folds a local tier's token stream into Signals (forced tokens left out; choice mass as the
// product of prob / allowed_mass over sampled tokens).
class SignalMeter {
 public:
  void add(float logprob, float allowed_mass, bool forced);
  Signals signals(bool choice) const;
  int sampled() const { return n_; }

 private:
  int n_ = 0;
  double sum_ = 0, min_ = 0, log_mass_ = 0;
};

}  // namespace minnow::router
