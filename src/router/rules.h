// Where a routed request starts: the config's rules compiled once (regexes with PCRE2, keywords
// lower-cased), then matched per request; and the refusal patterns searched in answers.
// Regexes are PCRE2 with match and depth limits, so a long prompt or a pathological pattern
// costs a bounded amount of work and cannot overflow the stack (std::regex can); a search that
// hits a limit counts as no match.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "router/config.h"
#include "util/status.h"

namespace minnow::router {

// What the rules look at, taken from the request by the server (or eval).
struct RequestFeatures {
  std::string tag;          // header x-minnow-tag or the body's "tag" field
  std::string task;         // chat, completion, choice, json, schema, grammar, regex, tools
  std::string text;         // the prompt text regexes and keywords are searched in (last user turn)
  size_t prompt_chars = 0;  // the whole prompt's length in bytes
  bool has_tools = false, has_schema = false;
};

// The rules' decision.
struct RouteStart {
  size_t tier = 0;   // index into RouterConfig::tiers
  bool pin = false;  // answer there, never escalate
  std::string rule;  // the matching rule's name; "" when none matched (the default)
};

// A compiled regular expression (PCRE2 syntax, UTF-8; invalid UTF-8 in the subject is
// tolerated). Immutable after compile: search() may be called from any number of threads.
class Pattern {
 public:
  // `caseless`: as if the pattern began with (?i). Errors name the offset in the pattern.
  static Result<Pattern> compile(std::string_view pattern, bool caseless);
  // Whether the pattern matches somewhere in `text`. False as well when the match or depth
  // limit is hit.
  bool search(std::string_view text) const;
  const std::string& source() const { return source_; }

 private:
  struct Code;
  std::shared_ptr<const Code> code_;
  std::string source_;
};

// The refusal patterns used when the config lists none (English, searched case-insensitively):
// "I don't know", "I'm not sure", "I cannot help/answer ...", "As an AI", ...
const std::vector<std::string>& default_refusal_patterns();

// The valid values of Rule::task.
const std::vector<std::string>& known_tasks();

class Rules {
 public:
  // Compiles every rule's regex and the refusal patterns (the config's, else the defaults)
  // and resolves rule tiers by name. The config should have been validated (load_router_config
  // does); errors here are the same as its.
  static Result<Rules> compile(const RouterConfig& config);

  // The first rule whose conditions all hold decides; none: the first tier, not pinned.
  // Thread-safe.
  RouteStart choose(const RequestFeatures& request) const;
  // Whether a refusal pattern matches the answer. Thread-safe.
  bool is_refusal(std::string_view answer) const;

 private:
  struct CompiledRule {
    Rule rule;
    size_t tier = 0;
    std::optional<Pattern> regex;
    std::vector<std::string> keywords;  // lower-cased (ASCII)
  };
  bool matches(const CompiledRule& r, const RequestFeatures& f, const std::string& lower) const;

  std::vector<CompiledRule> rules_;
  std::vector<Pattern> refusals_;
  bool any_keywords_ = false;
};

}  // namespace minnow::router
