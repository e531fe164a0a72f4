// `minnow router report` (src/router/report.h): counts, shares, reasons, percentiles and cost
// from a route log written with route_record_json; malformed lines counted; --since.
#include "router/report.h"

#include <gtest/gtest.h>

#include <sstream>

#include "router/route.h"

namespace minnow::router {
namespace {

Attempt attempt(const std::string& tier, const std::string& outcome, const std::string& reason,
                double ms, double cost) {
  Attempt a;
  a.tier = tier;
  a.outcome = outcome;
  a.reason = reason;
  a.ms = ms;
  a.cost_usd = cost;
  return a;
}

RouteRecord record(const std::string& ts, const std::string& tier, int index, bool local,
                   std::vector<Attempt> attempts, double latency_ms, double top_cost) {
  RouteRecord r;
  r.ts = ts;
  r.router = "auto";
  r.api = "openai";
  r.tier = tier;
  r.tier_index = index;
  r.local = local;
  r.attempts = std::move(attempts);
  r.escalated = r.attempts.size() > 1;
  r.latency_ms = latency_ms;
  for (const Attempt& a : r.attempts) r.cost_usd += a.cost_usd;
  r.top_tier_cost_usd = top_cost;
  return r;
}

std::string log_text() {
  std::vector<RouteRecord> rs;
  // Six answered by small, two escalated to medium, one to cloud, one with no answer.
  for (int i = 0; i < 6; ++i) {
    rs.push_back(record("2026-11-20T10:00:0" + std::to_string(i) + "Z", "small", 0, true,
                        {attempt("small", "answered", "", 100.0 * (i + 1), 0)}, 100.0 * (i + 1),
                        0.001));
  }
  rs.push_back(record("2026-11-21T10:00:00Z", "medium", 1, true,
                      {attempt("small", "escalated", "choice mass 0.41 < 0.6", 50, 0),
                       attempt("medium", "answered", "", 300, 0)},
                      350, 0.001));
  rs.push_back(record("2026-11-21T11:00:00Z", "medium", 1, true,
                      {attempt("small", "escalated", "choice mass 0.2 < 0.6", 40, 0),
                       attempt("medium", "answered", "", 500, 0)},
                      540, 0.001));
  RouteRecord cloud = record("2026-11-21T12:00:00.250+02:00", "cloud", 2, false,
                             {attempt("small", "escalated", "mean logprob -1.93 < -1.2", 30, 0),
                              attempt("medium", "escalated", "refusal", 200, 0),
                              attempt("cloud", "failed", "HTTP 500 from upstream", 10, 0),
                              attempt("cloud", "answered", "", 900, 0.002)},
                             1140, 0.002);
  cloud.rule = "legal";
  cloud.streamed = true;
  rs.push_back(cloud);
  RouteRecord none =
      record("2026-11-21T12:30:00Z", "", -1, true,
             {attempt("cloud", "failed", "timeout after 3000 ms", 3000, 0)}, 3000, 0);
  none.escalated = false;
  none.rule = "legal";
  rs.push_back(none);
  std::string text;
  for (size_t i = 0; i < rs.size(); ++i) {
    text += route_record_json(rs[i]).dump() + "\n";
    if (i == 2) text += "not json at all\n";
    if (i == 4) text += "\n[1, 2]\n";
    if (i == 6) text += "{\"ts\": \"2026-11-21T10:00:00Z\"}\n";  // no tier: not a record
  }
  return text;
}

TEST(RouterReport, Summarises) {
  std::istringstream in(log_text());
  const RouteReport r = summarize_route_log(in);
  EXPECT_EQ(r.requests, 10u);
  EXPECT_EQ(r.malformed, 3u);
  ASSERT_EQ(r.malformed_lines.size(), 3u);
  EXPECT_EQ(r.malformed_lines[0], 4u);  // line numbers count the blank line too
  EXPECT_EQ(r.malformed_lines[1], 8u);
  EXPECT_EQ(r.malformed_lines[2], 11u);
  EXPECT_EQ(r.answered_locally, 8u);
  EXPECT_DOUBLE_EQ(r.share_local, 0.8);
  EXPECT_EQ(r.escalated, 3u);
  EXPECT_DOUBLE_EQ(r.escalation_rate, 0.3);
  EXPECT_EQ(r.unanswered, 1u);
  EXPECT_EQ(r.streamed, 1u);
  EXPECT_EQ(r.first_ts, "2026-11-20T10:00:00Z");
  EXPECT_EQ(r.last_ts, "2026-11-21T12:30:00Z");

  ASSERT_EQ(r.tiers.size(), 3u);
  EXPECT_EQ(r.tiers[0].name, "small");
  EXPECT_EQ(r.tiers[0].answered, 6u);
  EXPECT_EQ(r.tiers[0].escalated, 3u);
  EXPECT_DOUBLE_EQ(r.tiers[0].share, 0.6);
  // Nearest rank over 100..600: p50 = 300, p95 = 600.
  EXPECT_DOUBLE_EQ(r.tiers[0].p50_ms, 300);
  EXPECT_DOUBLE_EQ(r.tiers[0].p95_ms, 600);
  EXPECT_TRUE(r.tiers[0].local);
  EXPECT_EQ(r.tiers[1].name, "medium");
  EXPECT_EQ(r.tiers[1].answered, 2u);
  EXPECT_EQ(r.tiers[1].escalated, 1u);
  EXPECT_DOUBLE_EQ(r.tiers[1].p50_ms, 350);
  EXPECT_DOUBLE_EQ(r.tiers[1].p95_ms, 540);
  EXPECT_EQ(r.tiers[2].name, "cloud");
  EXPECT_FALSE(r.tiers[2].local);
  EXPECT_EQ(r.tiers[2].failed, 2u);
  EXPECT_DOUBLE_EQ(r.tiers[2].cost_usd, 0.002);

  // Reasons with their numbers folded together, most frequent first.
  ASSERT_GE(r.reasons.size(), 5u);
  EXPECT_EQ(r.reasons[0].first, "small escalated: choice mass # < #");
  EXPECT_EQ(r.reasons[0].second, 2u);
  std::map<std::string, size_t> reasons(r.reasons.begin(), r.reasons.end());
  EXPECT_EQ(reasons["small escalated: mean logprob # < #"], 1u);
  EXPECT_EQ(reasons["medium escalated: refusal"], 1u);
  EXPECT_EQ(reasons["cloud failed: HTTP # from upstream"], 1u);
  EXPECT_EQ(reasons["cloud failed: timeout after # ms"], 1u);
  ASSERT_EQ(r.rules.size(), 2u);
  EXPECT_EQ(r.rules[0], (std::pair<std::string, size_t>("(default)", 8)));
  EXPECT_EQ(r.rules[1], (std::pair<std::string, size_t>("legal", 2)));

  EXPECT_DOUBLE_EQ(r.cost_usd, 0.002);
  EXPECT_DOUBLE_EQ(r.top_tier_cost_usd, 0.010);
  EXPECT_DOUBLE_EQ(r.saving_usd, 0.008);
  EXPECT_NEAR(r.saving_share, 0.8, 1e-12);

  const std::string text = render_route_report(r, "route.jsonl");
  for (const char* want : {"10 requests", "answered locally 80.0%", "escalated 30.0%", "small",
                           "remote", "choice mass # < #", "saved $0.008000 (80.0%)",
                           "malformed lines: 3 (not route records; lines 4, 8, 11)"}) {
    EXPECT_NE(text.find(want), std::string::npos) << "missing: " << want << "\n" << text;
  }
  const nlohmann::json j = route_report_json(r);
  EXPECT_EQ(j["requests"], 10);
  EXPECT_EQ(j["malformed"], 3);
  EXPECT_EQ(j["tiers"][0]["name"], "small");
  EXPECT_EQ(j["tiers"][2]["local"], false);
  EXPECT_DOUBLE_EQ(j["share_local"].get<double>(), 0.8);
}

TEST(RouterReport, Since) {
  const double cut = *parse_rfc3339("2026-11-21T10:30:00Z");
  std::istringstream in(log_text());
  const RouteReport r = summarize_route_log(in, cut);
  // 11:00Z, 12:00+02:00 (= 10:00Z, before the cut) and 12:30Z: two after it.
  EXPECT_EQ(r.requests, 2u);
  EXPECT_EQ(r.skipped_old, 8u);
  EXPECT_EQ(r.malformed, 3u);
  std::istringstream empty("");
  const RouteReport e = summarize_route_log(empty);
  EXPECT_EQ(e.requests, 0u);
  EXPECT_NE(render_route_report(e, "x").find("0 requests"), std::string::npos);
  EXPECT_FALSE(read_route_log("/nonexistent/route.jsonl").ok());
}

TEST(RouterReport, TimesAndDurations) {
  EXPECT_EQ(parse_rfc3339("1970-01-01T00:00:00Z"), 0.0);
  EXPECT_EQ(parse_rfc3339("1970-01-01T01:00:00+01:00"), 0.0);
  EXPECT_EQ(parse_rfc3339("1970-01-01T00:00:00-00:30"), 1800.0);
  EXPECT_NEAR(*parse_rfc3339("2026-11-21T17:08:56.125Z"), 1795280936.125, 1e-6);
  EXPECT_FALSE(parse_rfc3339("yesterday").has_value());
  EXPECT_FALSE(parse_rfc3339("2026-11-21T17:08:56").has_value());  // no zone
  EXPECT_FALSE(parse_rfc3339("2026-11-21T17:08:56Zjunk").has_value());
  EXPECT_EQ(*parse_duration_s("24h"), 86400);
  EXPECT_EQ(*parse_duration_s("30m"), 1800);
  EXPECT_EQ(*parse_duration_s("7d"), 7 * 86400);
  EXPECT_EQ(*parse_duration_s("90"), 90);
  EXPECT_EQ(*parse_duration_s("1.5h"), 5400);
  EXPECT_FALSE(parse_duration_s("h").ok());
  EXPECT_FALSE(parse_duration_s("3 parsecs").ok());
  EXPECT_FALSE(parse_duration_s("-1h").ok());
}

}  // namespace
}  // namespace minnow::router
