#include "router/route.h"

#include <cstdio>

namespace minnow::router {

namespace {

std::string fmt(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.3g", v);
  return b;
}

}  // namespace

std::optional<std::string> escalation_reason(const Thresholds& t, const Signals& s) {
  // Order: what makes the answer unusable first, then how sure the model was.
  if (t.escalate_on_invalid && s.invalid) return "invalid structured output";
  if (t.escalate_on_refusal && s.refusal) return "refusal";
  if (t.min_choice_mass && s.choice_mass && *s.choice_mass < *t.min_choice_mass)
    return "choice mass " + fmt(*s.choice_mass) + " < " + fmt(*t.min_choice_mass);
  // A choice task is judged by its label's probability alone: the raw logprob of a label's
  // tokens says how much the model wanted to write a label at all, not which one.
  if (s.n_tokens > 0 && !s.choice_mass) {
    if (t.min_mean_logprob && s.mean_logprob < *t.min_mean_logprob)
      return "mean logprob " + fmt(s.mean_logprob) + " < " + fmt(*t.min_mean_logprob);
    if (t.min_token_logprob && s.min_logprob < *t.min_token_logprob)
      return "token logprob " + fmt(s.min_logprob) + " < " + fmt(*t.min_token_logprob);
  }
  return std::nullopt;
}

namespace {

nlohmann::json signals_json(const Signals& s) {
  nlohmann::json j{{"n_tokens", s.n_tokens},
                   {"mean_logprob", s.mean_logprob},
                   {"min_logprob", s.min_logprob}};
  if (s.choice_mass) j["choice_mass"] = *s.choice_mass;
  if (s.invalid) j["invalid"] = true;
  if (s.refusal) j["refusal"] = true;
  if (s.truncated) j["truncated"] = true;
  return j;
}

Signals signals_from(const nlohmann::json& j) {
  Signals s;
  if (!j.is_object()) return s;
  s.n_tokens = j.value("n_tokens", 0);
  s.mean_logprob = j.value("mean_logprob", 0.0);
  s.min_logprob = j.value("min_logprob", 0.0);
  if (auto it = j.find("choice_mass"); it != j.end() && it->is_number())
    s.choice_mass = it->get<double>();
  s.invalid = j.value("invalid", false);
  s.refusal = j.value("refusal", false);
  s.truncated = j.value("truncated", false);
  return s;
}

}  // namespace

nlohmann::json route_record_json(const RouteRecord& r) {
  nlohmann::json attempts = nlohmann::json::array();
  for (const Attempt& a : r.attempts) {
    attempts.push_back({{"tier", a.tier},
                        {"outcome", a.outcome},
                        {"reason", a.reason},
                        {"signals", signals_json(a.signals)},
                        {"prompt_tokens", a.prompt_tokens},
                        {"output_tokens", a.output_tokens},
                        {"ms", a.ms},
                        {"cost_usd", a.cost_usd}});
  }
  return {{"ts", r.ts},
          {"router", r.router},
          {"api", r.api},
          {"tier", r.tier},
          {"tier_index", r.tier_index},
          {"local", r.local},
          {"escalated", r.escalated},
          {"rule", r.rule},
          {"streamed", r.streamed},
          {"attempts", attempts},
          {"prompt_tokens", r.prompt_tokens},
          {"output_tokens", r.output_tokens},
          {"latency_ms", r.latency_ms},
          {"cost_usd", r.cost_usd},
          {"top_tier_cost_usd", r.top_tier_cost_usd}};
}

Result<RouteRecord> route_record_from_json(const nlohmann::json& j) {
  if (!j.is_object()) return Status::error("a route record must be a JSON object");
  RouteRecord r;
  try {
    r.ts = j.value("ts", "");
    r.router = j.value("router", "");
    r.api = j.value("api", "");
    r.tier = j.at("tier").get<std::string>();
    r.tier_index = j.value("tier_index", -1);
    r.local = j.value("local", true);
    r.escalated = j.value("escalated", false);
    r.rule = j.value("rule", "");
    r.streamed = j.value("streamed", false);
    if (auto it = j.find("attempts"); it != j.end()) {
      if (!it->is_array()) return Status::error("route record: 'attempts' must be a list");
      for (const auto& a : *it) {
        if (!a.is_object()) return Status::error("route record: an attempt must be an object");
        Attempt x;
        x.tier = a.value("tier", "");
        x.outcome = a.value("outcome", "");
        x.reason = a.value("reason", "");
        if (auto s = a.find("signals"); s != a.end()) x.signals = signals_from(*s);
        x.prompt_tokens = a.value("prompt_tokens", 0);
        x.output_tokens = a.value("output_tokens", 0);
        x.ms = a.value("ms", 0.0);
        x.cost_usd = a.value("cost_usd", 0.0);
        r.attempts.push_back(std::move(x));
      }
    }
    r.prompt_tokens = j.value("prompt_tokens", 0);
    r.output_tokens = j.value("output_tokens", 0);
    r.latency_ms = j.value("latency_ms", 0.0);
    r.cost_usd = j.value("cost_usd", 0.0);
    r.top_tier_cost_usd = j.value("top_tier_cost_usd", 0.0);
  } catch (const nlohmann::json::exception& e) {
    return Status::error(std::string("route record: ") + e.what());
  }
  return r;
}

std::string route_header(const RouteRecord& r) {
  std::string h = "tier=" + r.tier + "; escalated=" + (r.escalated ? "1" : "0");
  for (const Attempt& a : r.attempts) {
    if (!a.reason.empty()) {  // escalated, failed, skipped, or answered as a fallback
      h += "; " + a.tier + "=" + a.outcome + " (" + a.reason + ")";
    }
  }
  h += "; ms=" + fmt(r.latency_ms) + "; cost_usd=" + fmt(r.cost_usd);
  // Header values must not carry control characters.
  for (char& c : h)
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';
  return h;
}

}  // namespace minnow::router
