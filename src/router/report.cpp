#include "router/report.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <map>

#include "router/route.h"

namespace minnow::router {

namespace {

// Nearest-rank percentile of unsorted values (0 when empty).
double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t rank = size_t(std::ceil(p * double(v.size())));
  return v[std::min(v.size() - 1, rank == 0 ? 0 : rank - 1)];
}

// Reasons carry the values that triggered them ("mean logprob -1.93 < -1.2"); numbers become
// '#' so that the same reason is counted as one.
std::string normalize_reason(const std::string& r) {
  std::string out;
  for (size_t i = 0; i < r.size();) {
    const auto digit = [&](size_t k) {
      return k < r.size() && std::isdigit(static_cast<unsigned char>(r[k]));
    };
    const bool sign = (r[i] == '-' || r[i] == '+') && digit(i + 1) &&
                      (i == 0 || !std::isalnum(static_cast<unsigned char>(r[i - 1])));
    if (digit(i) || sign) {
      i += sign ? 1 : 0;
      while (digit(i) || ((r[i] == '.' || r[i] == 'e') && digit(i + 1))) ++i;
      out += '#';
    } else {
      out += r[i++];
    }
  }
  if (out.size() > 100) out = out.substr(0, 97) + "...";
  return out;
}

std::vector<std::pair<std::string, size_t>> by_count(const std::map<std::string, size_t>& m) {
  std::vector<std::pair<std::string, size_t>> v(m.begin(), m.end());
  std::stable_sort(v.begin(), v.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  return v;
}

struct TierAcc {
  TierSummary s;
  std::vector<double> latency_ms, attempt_ms;
};

}  // namespace

Result<double> parse_duration_s(const std::string& text) {
  size_t end = 0;
  double v = 0;
  try {
    v = std::stod(text, &end);
  } catch (const std::exception&) {
    return Status::error("duration \"" + text + "\": expected e.g. 24h, 30m, 7d, 90s");
  }
  const std::string unit = text.substr(end);
  double scale = 0;
  if (unit.empty() || unit == "s")
    scale = 1;
  else if (unit == "m" || unit == "min")
    scale = 60;
  else if (unit == "h")
    scale = 3600;
  else if (unit == "d")
    scale = 86400;
  else if (unit == "w")
    scale = 7 * 86400;
  if (scale == 0 || !(v >= 0) || !std::isfinite(v)) {
    return Status::error("duration \"" + text + "\": expected e.g. 24h, 30m, 7d, 90s");
  }
  return v * scale;
}

std::optional<double> parse_rfc3339(const std::string& ts) {
  int y, mo, d, h, mi, s, n = 0;
  if (std::sscanf(ts.c_str(), "%4d-%2d-%2d%*1[Tt ]%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &s, &n) !=
          6 ||
      n == 0) {
    return std::nullopt;
  }
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = s;
  double t = double(timegm(&tm));
  size_t i = size_t(n);
  if (i < ts.size() && ts[i] == '.') {
    double scale = 0.1;
    for (++i; i < ts.size() && std::isdigit(static_cast<unsigned char>(ts[i])); ++i) {
      t += (ts[i] - '0') * scale;
      scale /= 10;
    }
  }
  if (i < ts.size() && (ts[i] == 'Z' || ts[i] == 'z') && i + 1 == ts.size()) return t;
  int oh = 0, om = 0;
  if (i < ts.size() && (ts[i] == '+' || ts[i] == '-') &&
      std::sscanf(ts.c_str() + i + 1, "%2d:%2d", &oh, &om) == 2 && ts.size() == i + 6) {
    const double offset = (oh * 3600 + om * 60) * (ts[i] == '+' ? 1 : -1);
    return t - offset;
  }
  return std::nullopt;
}

RouteReport summarize_route_log(std::istream& in, std::optional<double> since_epoch_s) {
  RouteReport rep;
  std::map<std::string, TierAcc> tiers;
  std::map<std::string, size_t> reasons, rules;
  std::vector<double> latency;
  auto tier = [&](const std::string& name) -> TierAcc& {
    TierAcc& t = tiers[name];
    t.s.name = name;
    return t;
  };
  std::string line;
  size_t number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    ++rep.lines;
    const nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    auto rec = j.is_discarded() ? Result<RouteRecord>(Status::error("not JSON"))
                                : route_record_from_json(j);
    if (!rec.ok()) {
      ++rep.malformed;
      if (rep.malformed_lines.size() < 10) rep.malformed_lines.push_back(number);
      continue;
    }
    if (since_epoch_s) {
      const auto t = parse_rfc3339(rec->ts);
      if (!t || *t < *since_epoch_s) {
        ++rep.skipped_old;
        continue;
      }
    }
    const RouteRecord& r = *rec;
    ++rep.requests;
    if (!r.ts.empty()) {
      if (rep.first_ts.empty() || r.ts < rep.first_ts) rep.first_ts = r.ts;
      if (rep.last_ts.empty() || r.ts > rep.last_ts) rep.last_ts = r.ts;
    }
    latency.push_back(r.latency_ms);
    if (r.tier.empty()) {
      ++rep.unanswered;
    } else {
      TierAcc& t = tier(r.tier);
      ++t.s.answered;
      t.s.index = r.tier_index;
      t.s.local = r.local;
      t.latency_ms.push_back(r.latency_ms);
      if (r.local) ++rep.answered_locally;
    }
    if (r.escalated) ++rep.escalated;
    if (r.streamed) ++rep.streamed;
    ++rules[r.rule.empty() ? "(default)" : r.rule];
    for (const Attempt& a : r.attempts) {
      TierAcc& t = tier(a.tier);
      t.attempt_ms.push_back(a.ms);
      t.s.cost_usd += a.cost_usd;
      if (a.outcome == "escalated") ++t.s.escalated;
      if (a.outcome == "failed") ++t.s.failed;
      if (a.outcome == "skipped") ++t.s.skipped;
      if (a.outcome != "answered") {
        ++reasons[a.tier + " " + a.outcome + ": " + normalize_reason(a.reason)];
      }
    }
    rep.cost_usd += r.cost_usd;
    rep.top_tier_cost_usd += r.top_tier_cost_usd;
  }
  const double n = double(std::max<size_t>(rep.requests, 1));
  rep.share_local = double(rep.answered_locally) / n;
  rep.escalation_rate = double(rep.escalated) / n;
  rep.saving_usd = rep.top_tier_cost_usd - rep.cost_usd;
  rep.saving_share = rep.top_tier_cost_usd > 0 ? rep.saving_usd / rep.top_tier_cost_usd : 0;
  rep.p50_ms = percentile(latency, 0.5);
  rep.p95_ms = percentile(latency, 0.95);
  for (auto& [name, t] : tiers) {
    t.s.share = double(t.s.answered) / n;
    t.s.p50_ms = percentile(t.latency_ms, 0.5);
    t.s.p95_ms = percentile(t.latency_ms, 0.95);
    t.s.attempt_p50_ms = percentile(t.attempt_ms, 0.5);
    t.s.attempt_p95_ms = percentile(t.attempt_ms, 0.95);
    rep.tiers.push_back(t.s);
  }
  // Tiers in the router's order; one that never answered (no index logged) goes last.
  std::stable_sort(
      rep.tiers.begin(), rep.tiers.end(), [](const TierSummary& a, const TierSummary& b) {
        const int ia = a.index < 0 ? 1 << 30 : a.index, ib = b.index < 0 ? 1 << 30 : b.index;
        return ia < ib;
      });
  rep.reasons = by_count(reasons);
  rep.rules = by_count(rules);
  return rep;
}

Result<RouteReport> read_route_log(const std::string& path, std::optional<double> since_epoch_s) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::error(path + ": cannot open the route log");
  return summarize_route_log(in, since_epoch_s);
}

nlohmann::json route_report_json(const RouteReport& r) {
  nlohmann::json tiers = nlohmann::json::array();
  for (const TierSummary& t : r.tiers) {
    tiers.push_back({{"name", t.name},
                     {"index", t.index},
                     {"local", t.answered == 0 ? nlohmann::json() : nlohmann::json(t.local)},
                     {"answered", t.answered},
                     {"share", t.share},
                     {"escalated", t.escalated},
                     {"failed", t.failed},
                     {"skipped", t.skipped},
                     {"latency_ms", {{"p50", t.p50_ms}, {"p95", t.p95_ms}}},
                     {"attempt_ms", {{"p50", t.attempt_p50_ms}, {"p95", t.attempt_p95_ms}}},
                     {"cost_usd", t.cost_usd}});
  }
  auto counted = [](const std::vector<std::pair<std::string, size_t>>& v) {
    nlohmann::json a = nlohmann::json::array();
    for (const auto& [k, n] : v) a.push_back({{"what", k}, {"count", n}});
    return a;
  };
  return {{"requests", r.requests},
          {"lines", r.lines},
          {"malformed", r.malformed},
          {"malformed_lines", r.malformed_lines},
          {"outside_since", r.skipped_old},
          {"first_ts", r.first_ts},
          {"last_ts", r.last_ts},
          {"answered_locally", r.answered_locally},
          {"share_local", r.share_local},
          {"escalated", r.escalated},
          {"escalation_rate", r.escalation_rate},
          {"unanswered", r.unanswered},
          {"streamed", r.streamed},
          {"latency_ms", {{"p50", r.p50_ms}, {"p95", r.p95_ms}}},
          {"tiers", tiers},
          {"reasons", counted(r.reasons)},
          {"rules", counted(r.rules)},
          {"cost_usd", r.cost_usd},
          {"top_tier_cost_usd", r.top_tier_cost_usd},
          {"saving_usd", r.saving_usd},
          {"saving_share", r.saving_share}};
}

std::string render_route_report(const RouteReport& r, const std::string& log_path) {
  std::string out;
  char b[512];
  std::snprintf(b, sizeof b, "route log %s: %zu requests", log_path.c_str(), r.requests);
  out += b;
  if (!r.first_ts.empty()) out += " (" + r.first_ts + " .. " + r.last_ts + ")";
  out += "\n";
  if (r.skipped_old > 0) {
    std::snprintf(b, sizeof b, "  (%zu older records left out by --since)\n", r.skipped_old);
    out += b;
  }
  if (r.requests > 0) {
    std::snprintf(b, sizeof b,
                  "answered locally %.1f%%, escalated %.1f%% (%zu), unanswered %zu, streamed "
                  "%zu; latency p50 %.0f ms, p95 %.0f ms\n\n",
                  100 * r.share_local, 100 * r.escalation_rate, r.escalated, r.unanswered,
                  r.streamed, r.p50_ms, r.p95_ms);
    out += b;
    std::snprintf(b, sizeof b, "%-16s %-6s %9s %7s %9s %9s %10s %7s %8s %12s\n", "tier", "kind",
                  "answered", "share", "p50 ms", "p95 ms", "escalated", "failed", "skipped",
                  "cost USD");
    out += b;
    for (const TierSummary& t : r.tiers) {
      // Only records say where a tier runs: one that never answered is shown as unknown.
      const char* kind = t.answered == 0 ? "?" : t.local ? "local" : "remote";
      std::snprintf(b, sizeof b, "%-16s %-6s %9zu %6.1f%% %9.0f %9.0f %10zu %7zu %8zu %12.6f\n",
                    t.name.substr(0, 16).c_str(), kind, t.answered, 100 * t.share, t.p50_ms,
                    t.p95_ms, t.escalated, t.failed, t.skipped, t.cost_usd);
      out += b;
    }
    out += "\nescalations and failures (per attempt):\n";
    if (r.reasons.empty()) out += "  none\n";
    for (const auto& [what, n] : r.reasons) {
      std::snprintf(b, sizeof b, "  %7zu  %s\n", n, what.c_str());
      out += b;
    }
    out += "\nstarting rule:\n";
    for (const auto& [what, n] : r.rules) {
      std::snprintf(b, sizeof b, "  %7zu  %s\n", n, what.c_str());
      out += b;
    }
    std::snprintf(b, sizeof b,
                  "\ncost: $%.6f routed; $%.6f had every request gone to %s; saved $%.6f "
                  "(%.1f%%)\n",
                  r.cost_usd, r.top_tier_cost_usd, "the top tier", r.saving_usd,
                  100 * r.saving_share);
    out += b;
  }
  if (r.malformed > 0) {
    std::snprintf(b, sizeof b, "malformed lines: %zu (not route records; line%s", r.malformed,
                  r.malformed == 1 ? "" : "s");
    out += b;
    for (size_t i = 0; i < r.malformed_lines.size(); ++i) {
      out += (i ? ", " : " ") + std::to_string(r.malformed_lines[i]);
    }
    out += r.malformed > r.malformed_lines.size() ? ", ...)\n" : ")\n";
  }
  return out;
}

}  // namespace minnow::router
