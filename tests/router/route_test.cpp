// The router's decision: escalation_reason under each threshold, SignalMeter's folding of a
// token stream, and the route record's JSON and header. The cascade itself runs end to end in
// tests/python/test_router.py.
#include <gtest/gtest.h>

#include <cmath>

#include "router/route.h"
#include "router/router.h"

namespace minnow::router {
namespace {

TEST(RouterRoute, EscalationReasonPerThreshold) {
  Thresholds t;
  Signals s;
  s.n_tokens = 4;
  s.mean_logprob = -0.5;
  s.min_logprob = -3;
  EXPECT_FALSE(escalation_reason(t, s));  // nothing set: kept

  t.min_mean_logprob = -0.4;
  ASSERT_TRUE(escalation_reason(t, s));
  EXPECT_NE(escalation_reason(t, s)->find("mean logprob"), std::string::npos);
  t.min_mean_logprob = -0.6;
  EXPECT_FALSE(escalation_reason(t, s));

  t.min_token_logprob = -2;
  ASSERT_TRUE(escalation_reason(t, s));
  EXPECT_NE(escalation_reason(t, s)->find("token logprob"), std::string::npos);
  t.min_token_logprob = -3.5;
  EXPECT_FALSE(escalation_reason(t, s));

  t.min_choice_mass = 0.6;
  EXPECT_FALSE(escalation_reason(t, s));  // not a choice task: no mass, not judged by it
  s.choice_mass = 0.41;
  ASSERT_TRUE(escalation_reason(t, s));
  EXPECT_EQ(*escalation_reason(t, s), "choice mass 0.41 < 0.6");
  s.choice_mass = 0.6;
  EXPECT_FALSE(escalation_reason(t, s));
  t.min_mean_logprob = -0.1;  // a choice answer is not judged by its raw logprobs
  EXPECT_FALSE(escalation_reason(t, s));

  s.refusal = true;
  EXPECT_EQ(*escalation_reason(t, s), "refusal");
  t.escalate_on_refusal = false;
  EXPECT_FALSE(escalation_reason(t, s));
  s.invalid = true;
  EXPECT_EQ(*escalation_reason(t, s), "invalid structured output");
  t.escalate_on_invalid = false;
  EXPECT_FALSE(escalation_reason(t, s));
}

TEST(RouterRoute, LogprobThresholdsNeedSampledTokens) {
  // An answer made only of forced tokens (a one-label choice, a fixed grammar) has no
  // sampled tokens: the logprob thresholds do not apply to it.
  Thresholds t;
  t.min_mean_logprob = -0.1;
  t.min_token_logprob = -0.1;
  Signals s;
  EXPECT_FALSE(escalation_reason(t, s));
}

TEST(RouterRoute, SignalMeterLeavesForcedTokensOutAndMultipliesLabelMass) {
  SignalMeter m;
  // Sampled: logprob -1 with allowed mass 0.5 -> P(token | allowed) = e^-1 / 0.5.
  m.add(-1.0f, 0.5f, false);
  m.add(0.0f, 1.0f, true);  // forced: ignored
  m.add(-3.0f, 0.25f, false);
  const Signals s = m.signals(true);
  EXPECT_EQ(s.n_tokens, 2);
  EXPECT_DOUBLE_EQ(s.mean_logprob, -2.0);
  EXPECT_DOUBLE_EQ(s.min_logprob, -3.0);
  ASSERT_TRUE(s.choice_mass);
  EXPECT_NEAR(*s.choice_mass, std::exp(-1.0) / 0.5 * std::exp(-3.0) / 0.25, 1e-6);
  EXPECT_FALSE(m.signals(false).choice_mass);  // only for choice tasks
  // A certain label: all the allowed mass on it.
  SignalMeter sure;
  sure.add(std::log(0.3f), 0.3f, false);
  EXPECT_NEAR(*sure.signals(true).choice_mass, 1.0, 1e-6);
}

TEST(RouterRoute, RecordRoundTripsThroughJsonAndNamesAttemptsInTheHeader) {
  RouteRecord r;
  r.ts = "2026-11-21T12:00:00.000Z";
  r.router = "auto";
  r.api = "openai";
  r.tier = "medium";
  r.tier_index = 1;
  r.escalated = true;
  r.rule = "legal";
  r.streamed = true;
  Attempt a;
  a.tier = "small";
  a.outcome = "escalated";
  a.reason = "choice mass 0.41 < 0.6";
  a.signals.n_tokens = 1;
  a.signals.choice_mass = 0.41;
  a.prompt_tokens = 40;
  a.output_tokens = 1;
  a.ms = 12.5;
  r.attempts.push_back(a);
  Attempt b;
  b.tier = "medium";
  b.outcome = "answered";
  b.cost_usd = 1e-6;
  r.attempts.push_back(b);
  r.prompt_tokens = 40;
  r.output_tokens = 1;
  r.latency_ms = 30;
  r.cost_usd = 1e-6;
  r.top_tier_cost_usd = 2e-5;
  auto back = route_record_from_json(route_record_json(r));
  ASSERT_TRUE(back.ok()) << back.error();
  EXPECT_EQ(back->tier, "medium");
  EXPECT_EQ(back->rule, "legal");
  EXPECT_TRUE(back->escalated && back->streamed);
  ASSERT_EQ(back->attempts.size(), 2u);
  EXPECT_EQ(back->attempts[0].reason, a.reason);
  EXPECT_DOUBLE_EQ(*back->attempts[0].signals.choice_mass, 0.41);
  EXPECT_DOUBLE_EQ(back->top_tier_cost_usd, 2e-5);

  const std::string h = route_header(r);
  EXPECT_EQ(h.rfind("tier=medium; escalated=1; small=escalated (choice mass 0.41 < 0.6)", 0), 0u)
      << h;
  r.attempts[0].reason = "bad\r\nInjected: header";
  EXPECT_EQ(route_header(r).find_first_of("\r\n"), std::string::npos);

  EXPECT_FALSE(route_record_from_json(nlohmann::json::array()).ok());
  EXPECT_FALSE(route_record_from_json({{"attempts", 3}, {"tier", "x"}}).ok());
  EXPECT_FALSE(route_record_from_json({{"ts", "x"}}).ok());  // no tier
}

}  // namespace
}  // namespace minnow::router
