// What one routed request went through: the confidence signals of each tier's answer, the
// decision to keep or escalate it, and the record the server returns (x-minnow-route header,
// "minnow" field) and appends to the route log that `minnow router report` summarises.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "router/config.h"
#include "util/status.h"

namespace minnow::router {

// How sure a tier's answer looks. Log-probabilities are the model's raw ones (before
// temperature and constraint) over sampled tokens; tokens a constraint forced are left out.
struct Signals {
  int n_tokens = 0;              // sampled tokens the means are over
  double mean_logprob = 0;       // 0 when n_tokens == 0
  double min_logprob = 0;
  std::optional<double> choice_mass;  // choice tasks: P(chosen label) among the choices
  bool invalid = false;          // structured output that is cut off or does not match
  bool refusal = false;          // a refusal pattern matched the answer
  bool truncated = false;        // stopped by the token limit
};

// The reason to escalate `s` under `t` ("mean logprob -1.93 < -1.2", "invalid structured
// output", ...), or nullopt when the answer is kept. A choice answer (choice_mass set) is
// judged by min_choice_mass, not by the logprob thresholds.
std::optional<std::string> escalation_reason(const Thresholds& t, const Signals& s);

// One tier's try.
struct Attempt {
  std::string tier;
  // "answered" (kept), "escalated" (low confidence / invalid / refusal), "failed" (error,
  // timeout, circuit open), "skipped" (the tier cannot take this request).
  std::string outcome;
  std::string reason;
  Signals signals;
  int prompt_tokens = 0, output_tokens = 0;
  double ms = 0;
  double cost_usd = 0;
};

struct RouteRecord {
  std::string ts;      // RFC 3339
  std::string router;  // the virtual model's name
  std::string api;     // "ollama" or "openai"
  std::string tier;    // the tier that answered ("" when every tier failed)
  int tier_index = -1;
  bool local = true;   // that tier is a local model
  bool escalated = false;
  std::string rule;    // the rule that chose the start ("" : default)
  bool streamed = false;
  std::vector<Attempt> attempts;
  int prompt_tokens = 0, output_tokens = 0;  // of the answering tier
  double latency_ms = 0;
  double cost_usd = 0;           // all attempts
  double top_tier_cost_usd = 0;  // the same tokens at the last tier's prices
};

nlohmann::json route_record_json(const RouteRecord& r);
Result<RouteRecord> route_record_from_json(const nlohmann::json& j);
// The x-minnow-route header: "tier=gemma3:270m; escalated=1; reason=...; ms=...; cost=..."
std::string route_header(const RouteRecord& r);

}  // namespace minnow::router
