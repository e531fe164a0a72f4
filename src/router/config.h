// The router's configuration as plain data: tiers ordered by cost, rules that pick where a
// request starts (or pin it), confidence thresholds per tier, and the streaming hold-back
// window. Read from a TOML file (`minnow serve --router router.toml`, or ~/.minnow/router.toml)
// by load_router_config(); `minnow eval --calibrate` writes the thresholds back with
// save_router_config(). docs/router.md documents every key.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "util/status.h"

namespace minnow::router {

// When a tier's answer is not trusted (any one condition escalates it to the next tier).
struct Thresholds {
  std::optional<double> min_mean_logprob;   // mean log-probability of the sampled tokens
  std::optional<double> min_token_logprob;  // the least likely sampled token
  std::optional<double> min_choice_mass;    // choice tasks: probability of the chosen label
  bool escalate_on_invalid = true;          // structured output cut off or not matching
  bool escalate_on_refusal = true;          // the answer matches a refusal pattern
  bool operator==(const Thresholds&) const = default;
};

struct TierConfig {
  std::string name;  // unique; defaults to the model name
  enum class Kind { kLocal, kRemote } kind = Kind::kLocal;
  std::string model;  // local: a minnow model name or path; remote: the upstream's model id
  // Remote (OpenAI-compatible) upstreams.
  std::string base_url;     // e.g. "https://api.openai.com/v1" or "http://127.0.0.1:11500/v1"
  std::string api_key_env;  // environment variable holding the key ("" : none sent)
  double timeout_s = 60;    // per attempt
  int max_retries = 2;      // further attempts after a retryable failure
  double backoff_ms = 250;  // base delay; doubled each retry, with full jitter, capped
  double backoff_max_ms = 4000;
  int breaker_failures = 5;        // consecutive failures that open the circuit
  double breaker_cooldown_s = 30;  // open this long, then one trial request (half-open)
  // The upstream is a minnow server: `choice`, `grammar` and `regex` are sent as they are
  // (otherwise choice becomes a JSON-schema enum, and grammar/regex requests skip the tier).
  bool minnow_extensions = false;
  // USD per million tokens (local tiers: energy and hardware, if you want them counted).
  double price_in_per_m = 0, price_out_per_m = 0;
  Thresholds thresholds;
  bool operator==(const TierConfig&) const = default;
};

// Conditions (all that are set must hold) and what a matching rule does.
struct Rule {
  std::string name;
  std::optional<std::string> tag;   // the request's tag: header x-minnow-tag or "tag" field
  std::optional<std::string> task;  // chat, completion, choice, json, schema, grammar, regex, tools
  std::optional<int> min_prompt_chars, max_prompt_chars;  // length of the prompt text
  std::optional<std::string> regex;   // PCRE2 regex searched in the prompt text
  std::vector<std::string> keywords;  // any of them in the prompt text (case-insensitive)
  std::optional<bool> has_tools, has_schema;  // schema: format / response_format / choice ...
  // Action: start at this tier (name) ...
  std::optional<std::string> tier;
  // ... and stay there (no escalation), or escalate as usual.
  bool pin = false;
  bool operator==(const Rule&) const = default;
};

struct RouterConfig {
  std::string name = "auto";  // the virtual model's name
  std::vector<TierConfig> tiers;
  std::vector<Rule> rules;    // first match wins; none: start at the first tier
  // Refusal / "I don't know" patterns (PCRE2, case-insensitive) searched in answers; none:
  // default_refusal_patterns() (rules.h).
  std::vector<std::string> refusal_patterns;
  // Streaming: tokens held back before the first tier's answer is judged (then sent, or the
  // request escalates and the client sees only the next tier's answer).
  int hold_tokens = 24;
  // JSONL record per routed request. Loading sets ~/.minnow/router.jsonl when the file has no
  // `log` key; "" (log = "") writes none.
  std::string log_path;
  std::string source_path;  // where it was read from
  bool operator==(const RouterConfig&) const = default;
};

// Reads and validates a TOML router file; errors name the file, the key and, for syntax
// errors, the line and column.
Result<RouterConfig> load_router_config(const std::string& path);
// Parses TOML text (`origin` names it in errors).
Result<RouterConfig> parse_router_config(std::string_view toml_text, const std::string& origin);
// Writes `config` as TOML (atomically: temp file + rename).
Status save_router_config(const RouterConfig& config, const std::string& path);
// The default location: $MINNOW_ROUTER, else ~/.minnow/router.toml.
std::string default_router_config_path();

}  // namespace minnow::router
