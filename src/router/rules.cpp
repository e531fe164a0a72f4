#include "router/rules.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>

namespace minnow::router {

namespace {

// Bounds on one search: enough for any sensible pattern over a long prompt, and a pattern that
// backtracks catastrophically stops here instead of taking seconds.
constexpr uint32_t kMatchLimit = 2'000'000;
constexpr uint32_t kHeapLimitKiB = 16 * 1024;

std::string pcre2_message(int code) {
  PCRE2_UCHAR buf[256];
  const int n = pcre2_get_error_message(code, buf, sizeof buf);
  return n < 0 ? "error " + std::to_string(code) : std::string(reinterpret_cast<char*>(buf));
}

char ascii_lower(char c) { return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c; }

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = ascii_lower(c);
  return out;
}

}  // namespace

struct Pattern::Code {
  pcre2_code* code = nullptr;
  pcre2_match_context* context = nullptr;
  ~Code() {
    pcre2_match_context_free(context);
    pcre2_code_free(code);
  }
};

Result<Pattern> Pattern::compile(std::string_view pattern, bool caseless) {
  // UTF with invalid-UTF tolerance: prompts are UTF-8 from clients, and a stray byte must not
  // turn a search into an error. UCP: \w, \b and case folding know non-ASCII letters.
  uint32_t options = PCRE2_UTF | PCRE2_MATCH_INVALID_UTF | PCRE2_UCP;
  if (caseless) options |= PCRE2_CASELESS;
  int err = 0;
  PCRE2_SIZE offset = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                   options, &err, &offset, nullptr);
  if (code == nullptr) {
    return Status::error("regex \"" + std::string(pattern) + "\": " + pcre2_message(err) +
                         " at offset " + std::to_string(offset));
  }
  auto c = std::make_shared<Code>();
  c->code = code;
  // JIT where the platform allows it (a failure leaves the interpreter, which is correct too).
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
  c->context = pcre2_match_context_create(nullptr);
  if (c->context == nullptr) return Status::error("regex: out of memory");
  pcre2_set_match_limit(c->context, kMatchLimit);
  pcre2_set_heap_limit(c->context, kHeapLimitKiB);
  Pattern p;
  p.code_ = std::move(c);
  p.source_ = std::string(pattern);
  return p;
}

bool Pattern::search(std::string_view text) const {
  if (!code_) return false;
  // Match data per call: the compiled code and context are shared read-only between threads.
  pcre2_match_data* md = pcre2_match_data_create_from_pattern(code_->code, nullptr);
  if (md == nullptr) return false;
  const int rc = pcre2_match(code_->code, reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(), 0,
                             0, md, code_->context);
  pcre2_match_data_free(md);
  return rc >= 0;
}

const std::vector<std::string>& default_refusal_patterns() {
  // Answers that say the model does not know or will not answer; written for small instruct
  // models' habits. Apostrophes straight or typographic.
  static const std::vector<std::string> k = {
      R"(\bI\s+(?:do\s+not|don['’]?t|really\s+don['’]?t)\s+know\b)",
      R"(\bI(?:['’]m|\s+am)\s+not\s+(?:sure|certain)\b)",
      R"(\bI\s+(?:cannot|can['’]?t|am\s+unable\s+to|am\s+not\s+able\s+to)\s+)"
      R"((?:help|assist|answer|provide|determine|say)\b)",
      R"(\bI['’]m\s+unable\s+to\s+(?:help|assist|answer|provide|determine)\b)",
      R"(\bas\s+an\s+AI\b)",
      R"(\bI\s+(?:do\s+not|don['’]?t)\s+have\s+(?:enough\s+)?(?:information|access|the\s+ability))",
      R"(\bI(?:['’]m|\s+am)\s+sorry,?\s+but\s+I\s+(?:cannot|can['’]?t|am\s+unable))",
      R"(\bno\s+(?:way\s+to\s+know|idea)\b)",
  };
  return k;
}

const std::vector<std::string>& known_tasks() {
  static const std::vector<std::string> k = {"chat",   "completion", "choice", "json",
                                             "schema", "grammar",    "regex",  "tools"};
  return k;
}

Result<Rules> Rules::compile(const RouterConfig& config) {
  if (config.tiers.empty()) return Status::error("router: no tiers");
  Rules r;
  for (size_t i = 0; i < config.rules.size(); ++i) {
    const Rule& rule = config.rules[i];
    const std::string where = "rule[" + std::to_string(i) + "] (" + rule.name + ")";
    CompiledRule c;
    c.rule = rule;
    if (rule.tier) {
      auto it = std::find_if(config.tiers.begin(), config.tiers.end(),
                             [&](const TierConfig& t) { return t.name == *rule.tier; });
      if (it == config.tiers.end()) {
        return Status::error(where + ".tier: no tier named \"" + *rule.tier + "\"");
      }
      c.tier = size_t(it - config.tiers.begin());
    }
    if (rule.regex) {
      auto p = Pattern::compile(*rule.regex, false);
      if (!p.ok()) return Status::error(where + ".regex: " + p.error());
      c.regex = std::move(*p);
    }
    for (const std::string& k : rule.keywords) {
      if (!k.empty()) c.keywords.push_back(lower(k));
    }
    r.any_keywords_ = r.any_keywords_ || !c.keywords.empty();
    r.rules_.push_back(std::move(c));
  }
  const std::vector<std::string>& patterns =
      config.refusal_patterns.empty() ? default_refusal_patterns() : config.refusal_patterns;
  for (size_t i = 0; i < patterns.size(); ++i) {
    auto p = Pattern::compile(patterns[i], true);
    if (!p.ok()) return Status::error("refusal_patterns[" + std::to_string(i) + "]: " + p.error());
    r.refusals_.push_back(std::move(*p));
  }
  return r;
}

bool Rules::matches(const CompiledRule& c, const RequestFeatures& f,
                    const std::string& lower_text) const {
  const Rule& r = c.rule;
  if (r.tag && f.tag != *r.tag) return false;
  if (r.task && f.task != *r.task) return false;
  if (r.min_prompt_chars && f.prompt_chars < size_t(*r.min_prompt_chars)) return false;
  if (r.max_prompt_chars && f.prompt_chars > size_t(*r.max_prompt_chars)) return false;
  if (r.has_tools && f.has_tools != *r.has_tools) return false;
  if (r.has_schema && f.has_schema != *r.has_schema) return false;
  if (!c.keywords.empty()) {
    const bool any = std::any_of(c.keywords.begin(), c.keywords.end(), [&](const std::string& k) {
      return lower_text.find(k) != std::string::npos;
    });
    if (!any) return false;
  }
  // The regex last: the most expensive condition, skipped when a cheap one already failed.
  if (c.regex && !c.regex->search(f.text)) return false;
  return true;
}

RouteStart Rules::choose(const RequestFeatures& f) const {
  const std::string lower_text = any_keywords_ ? lower(f.text) : std::string();
  for (const CompiledRule& c : rules_) {
    if (matches(c, f, lower_text)) return RouteStart{c.tier, c.rule.pin, c.rule.name};
  }
  return RouteStart{};
}

bool Rules::is_refusal(std::string_view answer) const {
  return std::any_of(refusals_.begin(), refusals_.end(),
                     [&](const Pattern& p) { return p.search(answer); });
}

}  // namespace minnow::router
