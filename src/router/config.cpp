// The router file in TOML (docs/router.md): parsed with toml++, then every key checked by hand
// so that a typo or a value out of range is an error naming the file, line, column and key
// path ("router.toml:14:1: tier[1].timeout_s: must be > 0") instead of a silent default.
// Saving writes the TOML text itself (every field, shortest round-trip numbers), parses it
// back as a check, and replaces the file atomically.
#include "router/config.h"

#include <pwd.h>
#include <toml++/toml.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <sstream>

#include "router/rules.h"

namespace minnow::router {

namespace {

std::string home_dir() {
  if (const char* h = std::getenv("HOME"); h != nullptr && *h != '\0') return h;
  if (const passwd* pw = getpwuid(getuid()); pw != nullptr && pw->pw_dir != nullptr)
    return pw->pw_dir;
  return ".";
}

// "~" and "~/x" only ("~user" is left alone).
std::string expand_home(const std::string& p) {
  if (p == "~") return home_dir();
  if (p.size() >= 2 && p[0] == '~' && p[1] == '/') return home_dir() + p.substr(1);
  return p;
}

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

const char* type_name(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a number";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::array:
      return "a list";
    case toml::node_type::table:
      return "a table";
    default:
      return "a date/time";
  }
}

// Keys that only a remote tier may have.
const std::vector<std::string> kRemoteKeys = {
    "base_url",       "api_key_env",      "timeout_s",          "max_retries",      "backoff_ms",
    "backoff_max_ms", "breaker_failures", "breaker_cooldown_s", "minnow_extensions"};

bool contains(const std::vector<std::string>& v, std::string_view s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

// Reads one document; every error names origin:line:column and the key path.
class Reader {
 public:
  explicit Reader(std::string origin) : origin_(std::move(origin)) {}

  Status error(const toml::source_region& at, const std::string& path,
               const std::string& message) const {
    std::string where = origin_;
    if (at.begin.line > 0) {
      // snprintf, not operator+ chains: GCC 12 warns falsely (-Wrestrict) on "lit" + string.
      char b[48];
      std::snprintf(b, sizeof b, ":%u:%u", unsigned(at.begin.line), unsigned(at.begin.column));
      where += b;
    }
    where += ": ";
    if (!path.empty()) where.append(path).append(": ");
    where += message;
    return Status::error(std::move(where));
  }
  Status error(const toml::node& n, const std::string& path, const std::string& message) const {
    return error(n.source(), path, message);
  }

  Status unknown(const toml::key& k, const std::string& path,
                 const std::vector<std::string>& allowed) const {
    std::string best;
    size_t best_d = 3;  // suggest only close misspellings
    for (const std::string& a : allowed) {
      const size_t d = edit_distance(k.str(), a);
      if (d < best_d) best_d = d, best = a;
    }
    return error(k.source(), path,
                 "unknown key" + (best.empty() ? "" : " (did you mean '" + best + "'?)"));
  }

  Status get(const toml::node& n, const std::string& path, std::string& out) const {
    if (!n.is_string()) return error(n, path, std::string("must be a string, not ") + type_name(n));
    out = n.as_string()->get();
    return {};
  }
  Status get(const toml::node& n, const std::string& path, double& out) const {
    if (n.is_integer()) {
      out = double(n.as_integer()->get());
    } else if (n.is_floating_point()) {
      out = n.as_floating_point()->get();
    } else {
      return error(n, path, std::string("must be a number, not ") + type_name(n));
    }
    if (!std::isfinite(out)) return error(n, path, "must be a finite number");
    return {};
  }
  Status get(const toml::node& n, const std::string& path, int& out) const {
    if (!n.is_integer()) {
      return error(n, path, std::string("must be an integer, not ") + type_name(n));
    }
    const int64_t v = n.as_integer()->get();
    if (v < std::numeric_limits<int>::min() || v > std::numeric_limits<int>::max()) {
      return error(n, path, "out of range");
    }
    out = int(v);
    return {};
  }
  Status get(const toml::node& n, const std::string& path, bool& out) const {
    if (!n.is_boolean())
      return error(n, path, std::string("must be true or false, not ") + type_name(n));
    out = n.as_boolean()->get();
    return {};
  }
  template <typename T>
  Status get(const toml::node& n, const std::string& path, std::optional<T>& out) const {
    T v{};
    MINNOW_RETURN_IF_ERROR(get(n, path, v));
    out = std::move(v);
    return {};
  }
  Status get(const toml::node& n, const std::string& path, std::vector<std::string>& out) const {
    const toml::array* a = n.as_array();
    if (a == nullptr)
      return error(n, path, std::string("must be a list of strings, not ") + type_name(n));
    out.clear();
    for (size_t i = 0; i < a->size(); ++i) {
      std::string s;
      MINNOW_RETURN_IF_ERROR(get((*a)[i], path + "[" + std::to_string(i) + "]", s));
      out.push_back(std::move(s));
    }
    return {};
  }

  // The table's array of tables under `key` ([[tier]]), or an error when it is something else.
  Result<const toml::array*> tables(const toml::table& root, const char* key) const {
    const toml::node* n = root.get(key);
    if (n == nullptr) return static_cast<const toml::array*>(nullptr);
    const toml::array* a = n->as_array();
    if (a == nullptr || !a->is_array_of_tables()) {
      return error(*n, key,
                   std::string("must be a list of tables, written [[") + key + "]] sections");
    }
    return a;
  }

 private:
  std::string origin_;
};

// A section's keys, each with what reads it: the one list that says which keys exist.
template <typename T>
struct Field {
  const char* key;
  std::function<Status(const Reader&, const toml::node&, const std::string&, T&)> read;
};

template <typename T, typename M>
Field<T> field(const char* key, M T::*member) {
  return {key, [member](const Reader& rd, const toml::node& n, const std::string& path, T& out) {
            return rd.get(n, path, out.*member);
          }};
}

template <typename M>
Field<TierConfig> threshold(const char* key, M Thresholds::*member) {
  return {key, [member](const Reader& rd, const toml::node& n, const std::string& path,
                        TierConfig& out) { return rd.get(n, path, out.thresholds.*member); }};
}

const std::vector<Field<RouterConfig>>& top_fields() {
  static const std::vector<Field<RouterConfig>> k = {
      field("name", &RouterConfig::name),
      field("hold_tokens", &RouterConfig::hold_tokens),
      field("log", &RouterConfig::log_path),
      field("refusal_patterns", &RouterConfig::refusal_patterns),
  };
  return k;
}

const std::vector<Field<TierConfig>>& tier_fields() {
  using T = TierConfig;
  static const std::vector<Field<T>> k = {
      field("name", &T::name),
      field("model", &T::model),
      field("base_url", &T::base_url),
      field("api_key_env", &T::api_key_env),
      field("timeout_s", &T::timeout_s),
      field("max_retries", &T::max_retries),
      field("backoff_ms", &T::backoff_ms),
      field("backoff_max_ms", &T::backoff_max_ms),
      field("breaker_failures", &T::breaker_failures),
      field("breaker_cooldown_s", &T::breaker_cooldown_s),
      field("minnow_extensions", &T::minnow_extensions),
      field("price_in_per_m", &T::price_in_per_m),
      field("price_out_per_m", &T::price_out_per_m),
      threshold("min_mean_logprob", &Thresholds::min_mean_logprob),
      threshold("min_token_logprob", &Thresholds::min_token_logprob),
      threshold("min_choice_mass", &Thresholds::min_choice_mass),
      threshold("escalate_on_invalid", &Thresholds::escalate_on_invalid),
      threshold("escalate_on_refusal", &Thresholds::escalate_on_refusal),
  };
  return k;
}

const std::vector<Field<Rule>>& rule_fields() {
  static const std::vector<Field<Rule>> k = {
      field("name", &Rule::name),
      field("tag", &Rule::tag),
      field("task", &Rule::task),
      field("min_prompt_chars", &Rule::min_prompt_chars),
      field("max_prompt_chars", &Rule::max_prompt_chars),
      field("regex", &Rule::regex),
      field("keywords", &Rule::keywords),
      field("has_tools", &Rule::has_tools),
      field("has_schema", &Rule::has_schema),
      field("tier", &Rule::tier),
      field("pin", &Rule::pin),
  };
  return k;
}

template <typename T>
std::vector<std::string> keys_of(const std::vector<Field<T>>& fields) {
  std::vector<std::string> k;
  for (const Field<T>& f : fields) k.emplace_back(f.key);
  return k;
}

// Reads `key` into `out` through its field; an unknown key is an error (with a suggestion).
template <typename T>
Status read_key(const Reader& rd, const std::vector<Field<T>>& fields, const toml::key& k,
                const toml::node& v, const std::string& path, T& out) {
  for (const Field<T>& f : fields) {
    if (k.str() == f.key) return f.read(rd, v, path, out);
  }
  return rd.unknown(k, path, keys_of(fields));
}

Status read_tier(const Reader& rd, const toml::table& t, size_t index, TierConfig& out) {
  const std::string p = "tier[" + std::to_string(index) + "]";
  const bool remote = t.contains("base_url");
  out.kind = remote ? TierConfig::Kind::kRemote : TierConfig::Kind::kLocal;
  for (auto&& [k, v] : t) {
    const std::string key(k.str());
    const std::string path = p + "." + key;
    if (!remote && contains(kRemoteKeys, key)) {
      return rd.error(k.source(), path, "only for remote tiers (those with a base_url)");
    }
    MINNOW_RETURN_IF_ERROR(read_key(rd, tier_fields(), k, v, path, out));
  }
  // Range checks, each reported at its key.
  auto bad = [&](const char* key, bool fails, const std::string& message) -> Status {
    if (!fails) return {};
    const toml::node* n = t.get(key);
    return rd.error(n ? n->source() : t.source(), p + "." + key, message);
  };
  if (out.model.empty()) {
    return rd.error(t.source(), p + ".model",
                    remote ? "missing: the upstream's model id" : "missing: a model name or path");
  }
  if (!remote) out.model = expand_home(out.model);
  if (!t.contains("name")) out.name = out.model;
  MINNOW_RETURN_IF_ERROR(bad("name", out.name.empty(), "must not be empty"));
  if (remote) {
    const std::string& u = out.base_url;
    const size_t scheme = u.rfind("http://", 0) == 0 ? 7 : u.rfind("https://", 0) == 0 ? 8 : 0;
    MINNOW_RETURN_IF_ERROR(bad("base_url", scheme == 0 || u.size() <= scheme || u[scheme] == '/',
                               "must be an http:// or https:// URL with a host, e.g. "
                               "\"https://api.openai.com/v1\""));
    const std::string& e = out.api_key_env;
    const bool env_ok =
        e.empty() || ((std::isalpha(static_cast<unsigned char>(e[0])) || e[0] == '_') &&
                      std::all_of(e.begin(), e.end(), [](char c) {
                        return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
                      }));
    MINNOW_RETURN_IF_ERROR(bad("api_key_env", !env_ok,
                               "must be the name of an environment variable (the key itself "
                               "does not belong in the file)"));
    MINNOW_RETURN_IF_ERROR(bad("timeout_s", !(out.timeout_s > 0 && out.timeout_s <= 86400),
                               "must be > 0 and at most 86400 seconds"));
    MINNOW_RETURN_IF_ERROR(bad("max_retries", out.max_retries < 0 || out.max_retries > 100,
                               "must be between 0 and 100"));
    MINNOW_RETURN_IF_ERROR(bad("backoff_ms", out.backoff_ms < 0, "must be >= 0"));
    MINNOW_RETURN_IF_ERROR(
        bad("backoff_max_ms", out.backoff_max_ms < out.backoff_ms, "must be >= backoff_ms"));
    MINNOW_RETURN_IF_ERROR(bad("breaker_failures", out.breaker_failures < 1, "must be >= 1"));
    MINNOW_RETURN_IF_ERROR(bad("breaker_cooldown_s", out.breaker_cooldown_s < 0, "must be >= 0"));
  }
  MINNOW_RETURN_IF_ERROR(bad("price_in_per_m", out.price_in_per_m < 0, "must be >= 0"));
  MINNOW_RETURN_IF_ERROR(bad("price_out_per_m", out.price_out_per_m < 0, "must be >= 0"));
  const Thresholds& th = out.thresholds;
  MINNOW_RETURN_IF_ERROR(bad("min_mean_logprob", th.min_mean_logprob && *th.min_mean_logprob > 0,
                             "a log-probability: must be <= 0"));
  MINNOW_RETURN_IF_ERROR(bad("min_token_logprob", th.min_token_logprob && *th.min_token_logprob > 0,
                             "a log-probability: must be <= 0"));
  MINNOW_RETURN_IF_ERROR(
      bad("min_choice_mass",
          th.min_choice_mass && !(*th.min_choice_mass >= 0 && *th.min_choice_mass <= 1),
          "a probability: must be between 0 and 1"));
  return {};
}

Status read_rule(const Reader& rd, const toml::table& t, size_t index,
                 const std::vector<TierConfig>& tiers, Rule& out) {
  const std::string p = "rule[" + std::to_string(index) + "]";
  for (auto&& [k, v] : t) {
    const std::string key(k.str());
    const std::string path = p + "." + key;
    MINNOW_RETURN_IF_ERROR(read_key(rd, rule_fields(), k, v, path, out));
  }
  auto bad = [&](const char* key, bool fails, const std::string& message) -> Status {
    if (!fails) return {};
    const toml::node* n = t.get(key);
    return rd.error(n ? n->source() : t.source(), p + "." + key, message);
  };
  if (!t.contains("name")) out.name = p;
  MINNOW_RETURN_IF_ERROR(bad("name", out.name.empty(), "must not be empty"));
  if (out.task) {
    std::string list;
    for (const std::string& k : known_tasks()) list += (list.empty() ? "" : ", ") + k;
    MINNOW_RETURN_IF_ERROR(
        bad("task", !contains(known_tasks(), *out.task), "must be one of " + list));
  }
  MINNOW_RETURN_IF_ERROR(
      bad("min_prompt_chars", out.min_prompt_chars && *out.min_prompt_chars < 0, "must be >= 0"));
  MINNOW_RETURN_IF_ERROR(
      bad("max_prompt_chars", out.max_prompt_chars && *out.max_prompt_chars < 0, "must be >= 0"));
  MINNOW_RETURN_IF_ERROR(bad(
      "max_prompt_chars",
      out.min_prompt_chars && out.max_prompt_chars && *out.max_prompt_chars < *out.min_prompt_chars,
      "must be >= min_prompt_chars"));
  for (size_t i = 0; i < out.keywords.size(); ++i) {
    MINNOW_RETURN_IF_ERROR(
        bad("keywords", out.keywords[i].empty(), "keyword " + std::to_string(i) + " is empty"));
  }
  if (out.regex) {
    auto compiled = Pattern::compile(*out.regex, false);
    MINNOW_RETURN_IF_ERROR(bad("regex", !compiled.ok(), compiled.ok() ? "" : compiled.error()));
  }
  if (out.tier) {
    const bool found = std::any_of(tiers.begin(), tiers.end(),
                                   [&](const TierConfig& x) { return x.name == *out.tier; });
    std::string names;
    for (const TierConfig& x : tiers) names += (names.empty() ? "\"" : ", \"") + x.name + "\"";
    MINNOW_RETURN_IF_ERROR(
        bad("tier", !found, "no tier named \"" + *out.tier + "\" (tiers: " + names + ")"));
  }
  return {};
}

bool has_conditions(const Rule& r) {
  return r.tag || r.task || r.min_prompt_chars || r.max_prompt_chars || r.regex ||
         !r.keywords.empty() || r.has_tools || r.has_schema;
}

Result<RouterConfig> read_document(const toml::table& root, const std::string& origin) {
  const Reader rd(origin);
  RouterConfig c;
  c.source_path = origin;
  for (auto&& [k, v] : root) {
    const std::string key(k.str());
    if (key == "tier" || key == "rule") continue;  // sections: below
    if (contains(keys_of(top_fields()), key)) {
      MINNOW_RETURN_IF_ERROR(read_key(rd, top_fields(), k, v, key, c));
    } else {
      std::vector<std::string> keys = keys_of(top_fields());
      keys.insert(keys.end(), {"tier", "rule"});
      return rd.unknown(k, key, keys);
    }
  }
  auto at = [&](const char* key) {
    const toml::node* n = root.get(key);
    return n ? n->source() : toml::source_region{};
  };
  if (c.name.empty()) return rd.error(at("name"), "name", "must not be empty");
  if (c.hold_tokens < 0 || c.hold_tokens > 65536) {
    return rd.error(at("hold_tokens"), "hold_tokens", "must be between 0 and 65536");
  }
  c.log_path =
      root.contains("log") ? expand_home(c.log_path) : home_dir() + "/.minnow/router.jsonl";
  for (size_t i = 0; i < c.refusal_patterns.size(); ++i) {
    auto p = Pattern::compile(c.refusal_patterns[i], true);
    if (!p.ok()) {
      return rd.error((*root.get("refusal_patterns")->as_array())[i].source(),
                      "refusal_patterns[" + std::to_string(i) + "]", p.error());
    }
  }

  auto tiers = rd.tables(root, "tier");
  MINNOW_RETURN_IF_ERROR(tiers);
  if (*tiers == nullptr || (*tiers)->empty()) {
    return rd.error(toml::source_region{}, "tier",
                    "no tiers: add at least one [[tier]] section (docs/router.md)");
  }
  for (size_t i = 0; i < (*tiers)->size(); ++i) {
    const toml::table& t = *(**tiers)[i].as_table();
    TierConfig tier;
    MINNOW_RETURN_IF_ERROR(read_tier(rd, t, i, tier));
    for (size_t j = 0; j < c.tiers.size(); ++j) {
      if (c.tiers[j].name == tier.name) {
        const toml::node* n = t.get("name");
        return rd.error(n ? n->source() : t.source(), "tier[" + std::to_string(i) + "].name",
                        "\"" + tier.name + "\" is already tier[" + std::to_string(j) +
                            "]'s name; tier names must be unique (name defaults to the model)");
      }
    }
    c.tiers.push_back(std::move(tier));
  }

  auto rules = rd.tables(root, "rule");
  MINNOW_RETURN_IF_ERROR(rules);
  if (*rules != nullptr) {
    for (size_t i = 0; i < (*rules)->size(); ++i) {
      const toml::table& t = *(**rules)[i].as_table();
      Rule rule;
      MINNOW_RETURN_IF_ERROR(read_rule(rd, t, i, c.tiers, rule));
      for (size_t j = 0; j < c.rules.size(); ++j) {
        if (c.rules[j].name == rule.name) {
          const toml::node* n = t.get("name");
          return rd.error(
              n ? n->source() : t.source(), "rule[" + std::to_string(i) + "].name",
              "\"" + rule.name + "\" is already rule[" + std::to_string(j) + "]'s name");
        }
      }
      c.rules.push_back(std::move(rule));
    }
    // A rule without conditions matches every request: the rules after it would never apply.
    for (size_t i = 0; i + 1 < c.rules.size(); ++i) {
      if (!has_conditions(c.rules[i])) {
        return rd.error((**rules)[i].source(), "rule[" + std::to_string(i) + "]",
                        "has no conditions, so it matches every request and the rules after it "
                        "never apply (put it last)");
      }
    }
  }
  return c;
}

// TOML basic string: quotes, backslashes and control characters escaped; UTF-8 as is.
std::string quote(std::string_view s) {
  std::string out = "\"";
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char b[8];
          std::snprintf(b, sizeof b, "\\u%04X", c);
          out += b;
        } else {
          out += ch;
        }
    }
  }
  return out + "\"";
}

// Shortest text that reads back as the same double ("0.6", "-1.2", "30", "1e-07").
std::string number(double v) {
  char b[64];
  const auto r = std::to_chars(b, b + sizeof b, v);
  std::string s(b, r.ptr);
  // TOML wants a digit before an exponent's sign only ("1e-07" is fine); "inf"/"nan" are
  // rejected on load, so never written.
  return s;
}

std::string list(const std::vector<std::string>& v) {
  std::string out = "[";
  for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + quote(v[i]);
  return out + "]";
}

std::string to_toml(const RouterConfig& c) {
  std::ostringstream o;
  o << "# minnow router file (docs/router.md describes every key).\n"
    << "name = " << quote(c.name) << "\n"
    << "hold_tokens = " << c.hold_tokens << "\n"
    << "log = " << quote(c.log_path) << "\n";
  if (!c.refusal_patterns.empty()) o << "refusal_patterns = " << list(c.refusal_patterns) << "\n";
  for (const TierConfig& t : c.tiers) {
    const bool remote = t.kind == TierConfig::Kind::kRemote;
    o << "\n[[tier]]\n"
      << "name = " << quote(t.name) << "\n"
      << "model = " << quote(t.model) << "\n";
    if (remote) {
      o << "base_url = " << quote(t.base_url) << "\n";
      if (!t.api_key_env.empty()) o << "api_key_env = " << quote(t.api_key_env) << "\n";
      o << "timeout_s = " << number(t.timeout_s) << "\n"
        << "max_retries = " << t.max_retries << "\n"
        << "backoff_ms = " << number(t.backoff_ms) << "\n"
        << "backoff_max_ms = " << number(t.backoff_max_ms) << "\n"
        << "breaker_failures = " << t.breaker_failures << "\n"
        << "breaker_cooldown_s = " << number(t.breaker_cooldown_s) << "\n"
        << "minnow_extensions = " << (t.minnow_extensions ? "true" : "false") << "\n";
    }
    o << "price_in_per_m = " << number(t.price_in_per_m) << "\n"
      << "price_out_per_m = " << number(t.price_out_per_m) << "\n";
    const Thresholds& th = t.thresholds;
    if (th.min_mean_logprob) o << "min_mean_logprob = " << number(*th.min_mean_logprob) << "\n";
    if (th.min_token_logprob) o << "min_token_logprob = " << number(*th.min_token_logprob) << "\n";
    if (th.min_choice_mass) o << "min_choice_mass = " << number(*th.min_choice_mass) << "\n";
    o << "escalate_on_invalid = " << (th.escalate_on_invalid ? "true" : "false") << "\n"
      << "escalate_on_refusal = " << (th.escalate_on_refusal ? "true" : "false") << "\n";
  }
  for (const Rule& r : c.rules) {
    o << "\n[[rule]]\n"
      << "name = " << quote(r.name) << "\n";
    if (r.tag) o << "tag = " << quote(*r.tag) << "\n";
    if (r.task) o << "task = " << quote(*r.task) << "\n";
    if (r.min_prompt_chars) o << "min_prompt_chars = " << *r.min_prompt_chars << "\n";
    if (r.max_prompt_chars) o << "max_prompt_chars = " << *r.max_prompt_chars << "\n";
    if (r.regex) o << "regex = " << quote(*r.regex) << "\n";
    if (!r.keywords.empty()) o << "keywords = " << list(r.keywords) << "\n";
    if (r.has_tools) o << "has_tools = " << (*r.has_tools ? "true" : "false") << "\n";
    if (r.has_schema) o << "has_schema = " << (*r.has_schema ? "true" : "false") << "\n";
    if (r.tier) o << "tier = " << quote(*r.tier) << "\n";
    o << "pin = " << (r.pin ? "true" : "false") << "\n";
  }
  return o.str();
}

}  // namespace

Result<RouterConfig> parse_router_config(std::string_view toml_text, const std::string& origin) {
  toml::table root;
  try {
    root = toml::parse(toml_text, origin);
  } catch (const toml::parse_error& e) {
    const auto& b = e.source().begin;
    return Status::error(origin + ":" + std::to_string(b.line) + ":" + std::to_string(b.column) +
                         ": TOML syntax: " + std::string(e.description()));
  }
  return read_document(root, origin);
}

Result<RouterConfig> load_router_config(const std::string& path) {
  const std::string file = expand_home(path);
  std::error_code ec;
  if (std::filesystem::is_directory(file, ec)) {
    return Status::error(file + ": is a directory, not a router file");
  }
  std::ifstream in(file, std::ios::binary);
  if (!in) return Status::error(file + ": cannot open the router file");
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return Status::error(file + ": cannot read the router file");
  return parse_router_config(text.str(), file);
}

Status save_router_config(const RouterConfig& config, const std::string& path) {
  const std::string file = expand_home(path);
  const std::string text = to_toml(config);
  // What is written must load again; a config that does not (an invalid regex, a rule naming
  // no tier) is refused here rather than leaving a file the server cannot start with.
  auto check = parse_router_config(text, file);
  if (!check.ok()) return Status::error("not saved: " + check.error());
  std::error_code ec;
  const auto dir = std::filesystem::path(file).parent_path();
  if (!dir.empty()) std::filesystem::create_directories(dir, ec);
  const std::string tmp = file + ".tmp." + std::to_string(getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    out.flush();
    if (!out) {
      std::remove(tmp.c_str());
      return Status::error(tmp + ": cannot write");
    }
  }
  if (std::rename(tmp.c_str(), file.c_str()) != 0) {
    std::remove(tmp.c_str());
    return Status::error(file + ": cannot replace the router file");
  }
  return {};
}

std::string default_router_config_path() {
  if (const char* p = std::getenv("MINNOW_ROUTER"); p != nullptr && *p != '\0') {
    return expand_home(p);
  }
  return home_dir() + "/.minnow/router.toml";
}

}  // namespace minnow::router
