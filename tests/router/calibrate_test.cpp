// Calibration (src/router/calibrate.h): the cascade replay on hand-worked cases, the threshold
// search against brute force, the curve, unreachable targets, and speed.
#include "router/calibrate.h"

#include <gtest/gtest.h>

#include <chrono>
#include <random>

namespace minnow::router {
namespace {

Observation mass(double m, double score, double cost = 0, double ms = 10) {
  Observation o;
  o.signals.n_tokens = 1;
  o.signals.mean_logprob = std::log(m);
  o.signals.min_logprob = std::log(m);
  o.signals.choice_mass = m;
  o.score = score;
  o.cost_usd = cost;
  o.ms = ms;
  return o;
}

Observation failed(double cost = 0, double ms = 5) {
  Observation o;
  o.failed = true;
  o.cost_usd = cost;
  o.ms = ms;
  return o;
}

RouterConfig tiers(std::initializer_list<const char*> names) {
  RouterConfig c;
  for (const char* n : names) {
    TierConfig t;
    t.name = n;
    t.model = n;
    c.tiers.push_back(t);
  }
  return c;
}

Thresholds at_mass(double m) {
  Thresholds t;
  t.min_choice_mass = m;
  return t;
}

TEST(RouterCalibrate, SimulateReplaysTheCascade) {
  Observation invalid = mass(0.99, 0, 0.0002);
  invalid.signals.invalid = true;
  const std::vector<std::vector<Observation>> obs = {
      // kept by the first tier
      {mass(0.9, 1, 0.0001, 10), mass(0.9, 1, 0.001, 20), mass(0.9, 1, 0.01, 30)},
      // escalated once
      {mass(0.3, 0, 0.0001, 10), mass(0.7, 1, 0.001, 20), mass(0.9, 1, 0.01, 30)},
      // escalated twice: the last tier answers whatever its signals (its thresholds unused)
      {mass(0.2, 0, 0.0001, 10), mass(0.1, 0, 0.001, 20), mass(0.05, 1, 0.01, 30)},
      // the tiers above failed: the escalated answer of tier 0 is the fallback
      {mass(0.2, 0.5, 0.0001, 10), failed(0, 1), failed(0.002, 2)},
      // everything failed: no answer, scored 0
      {failed(), failed(), failed()},
      // invalid structured output escalates whatever the mass
      {invalid, mass(0.8, 1, 0.001, 20), mass(0.9, 1, 0.01, 30)},
  };
  const std::vector<Thresholds> th = {at_mass(0.6), at_mass(0.5), at_mass(0.99)};
  const CalibrationPoint p = simulate(obs, th);
  EXPECT_DOUBLE_EQ(p.accuracy, (1 + 1 + 1 + 0.5 + 0 + 1) / 6.0);
  ASSERT_EQ(p.share_per_tier.size(), 3u);
  EXPECT_DOUBLE_EQ(p.share_per_tier[0], 2 / 6.0);  // the first task and the fallback
  EXPECT_DOUBLE_EQ(p.share_per_tier[1], 2 / 6.0);
  EXPECT_DOUBLE_EQ(p.share_per_tier[2], 1 / 6.0);
  EXPECT_DOUBLE_EQ(p.share_first_tier, 2 / 6.0);
  EXPECT_DOUBLE_EQ(p.escalation_rate, 3 / 6.0);
  // Cost and time: every tier tried, failures included.
  const double cost = 0.0001 + (0.0001 + 0.001) + (0.0001 + 0.001 + 0.01) + (0.0001 + 0 + 0.002) +
                      0 + (0.0002 + 0.001);
  EXPECT_NEAR(p.mean_cost_usd, cost / 6, 1e-15);
  const double ms = 10 + 30 + 60 + 13 + 15 + 30;
  EXPECT_NEAR(p.mean_ms, ms / 6, 1e-12);
  EXPECT_EQ(p.thresholds.size(), 3u);

  // Flags off: the invalid answer is kept by tier 0 (score 0).
  std::vector<Thresholds> lax = th;
  lax[0].escalate_on_invalid = false;
  const CalibrationPoint q = simulate(obs, lax);
  EXPECT_DOUBLE_EQ(q.accuracy, (1 + 1 + 1 + 0.5 + 0 + 0) / 6.0);
  EXPECT_DOUBLE_EQ(q.share_per_tier[0], 3 / 6.0);
}

// A choice task set: the small tier is right when sure (mostly), the big one always right.
std::vector<std::vector<Observation>> choice_set() {
  const double m[] = {0.95, 0.9, 0.85, 0.8, 0.7, 0.65, 0.6, 0.5, 0.4, 0.3};
  const int right[] = {1, 1, 1, 1, 0, 1, 0, 0, 0, 1};
  std::vector<std::vector<Observation>> obs;
  for (int i = 0; i < 10; ++i) obs.push_back({mass(m[i], right[i], 0), mass(0.9, 1, 0.01)});
  return obs;
}

TEST(RouterCalibrate, FindsTheCheapestThresholdReachingTheTarget) {
  const RouterConfig c = tiers({"small", "big"});
  auto cal = calibrate(choice_set(), c, 0.9);
  ASSERT_TRUE(cal.ok()) << cal.error();
  EXPECT_TRUE(cal->reached);
  // Keep mass >= 0.65: one wrong answer kept (0.7), four escalated.
  ASSERT_EQ(cal->chosen.thresholds.size(), 2u);
  EXPECT_EQ(cal->chosen.thresholds[0].min_choice_mass, 0.65);
  EXPECT_FALSE(cal->chosen.thresholds[0].min_mean_logprob.has_value());
  EXPECT_DOUBLE_EQ(cal->chosen.accuracy, 0.9);
  EXPECT_NEAR(cal->chosen.mean_cost_usd, 0.004, 1e-15);
  EXPECT_DOUBLE_EQ(cal->chosen.share_first_tier, 0.6);
  EXPECT_EQ(cal->signal, "small: choice_mass");

  cal = calibrate(choice_set(), c, 1.0);
  ASSERT_TRUE(cal.ok());
  EXPECT_TRUE(cal->reached);
  EXPECT_EQ(cal->chosen.thresholds[0].min_choice_mass, 0.8);
  EXPECT_DOUBLE_EQ(cal->chosen.accuracy, 1.0);

  // A low target: everything stays small; the threshold is set at the lowest mass seen (the
  // same outcome as off, and it still catches answers less sure than any seen).
  cal = calibrate(choice_set(), c, 0.5);
  ASSERT_TRUE(cal.ok());
  EXPECT_EQ(cal->chosen.thresholds[0].min_choice_mass, 0.3);
  EXPECT_DOUBLE_EQ(cal->chosen.share_first_tier, 1.0);
  EXPECT_DOUBLE_EQ(cal->chosen.mean_cost_usd, 0);
}

TEST(RouterCalibrate, ThresholdsAreShortDecimalsThatSplitTheSameWay) {
  const std::vector<std::vector<Observation>> obs = {
      {mass(0.5993885254793991, 1), mass(0.9, 1, 0.01)},
      {mass(0.41, 0), mass(0.9, 1, 0.01)},
      {mass(0.97, 1), mass(0.9, 1, 0.01)},
  };
  auto cal = calibrate(obs, tiers({"small", "big"}), 1.0);
  ASSERT_TRUE(cal.ok());
  // Any threshold in (0.41, 0.599...] keeps the same answers; the file gets 0.5.
  EXPECT_EQ(cal->chosen.thresholds[0].min_choice_mass, 0.5);
  EXPECT_DOUBLE_EQ(cal->chosen.accuracy, 1.0);
  EXPECT_NEAR(cal->chosen.mean_cost_usd, 0.01 / 3, 1e-15);
  // Free text: mean logprobs -1.93 (wrong) and -0.4 (right): -1 keeps only the second.
  Observation sure = mass(0.5, 1), unsure = mass(0.5, 0);
  sure.signals.choice_mass.reset();
  unsure.signals.choice_mass.reset();
  sure.signals.mean_logprob = -0.4;
  unsure.signals.mean_logprob = -1.93;
  cal = calibrate({{sure, mass(0.9, 1, 0.01)}, {unsure, mass(0.9, 1, 0.01)}},
                  tiers({"small", "big"}), 1.0);
  ASSERT_TRUE(cal.ok());
  EXPECT_EQ(cal->chosen.thresholds[0].min_mean_logprob, -1.0);
  EXPECT_EQ(cal->signal, "small: mean_logprob");
}

TEST(RouterCalibrate, UnreachableTargetGivesTheMostAccurate) {
  auto obs = choice_set();
  obs[4][1].score = 0;  // the big tier is wrong where the small one is wrong, too
  const RouterConfig c = tiers({"small", "big"});
  auto cal = calibrate(obs, c, 1.0);
  ASSERT_TRUE(cal.ok());
  EXPECT_FALSE(cal->reached);
  EXPECT_DOUBLE_EQ(cal->chosen.accuracy, 0.9);
  // The cheapest of the most accurate settings: keep >= 0.65 (0.7 is wrong on both tiers).
  EXPECT_EQ(cal->chosen.thresholds[0].min_choice_mass, 0.65);
  EXPECT_NE(render_curve(*cal, c).find("not reached"), std::string::npos);
}

TEST(RouterCalibrate, KeepsFlagsClearsOtherThresholdsAndErrors) {
  RouterConfig c = tiers({"small", "big"});
  c.tiers[0].thresholds.escalate_on_invalid = false;
  c.tiers[0].thresholds.min_token_logprob = -3;
  c.tiers[1].thresholds.min_choice_mass = 0.7;  // the last tier's: left as written
  auto cal = calibrate(choice_set(), c, 0.9);
  ASSERT_TRUE(cal.ok());
  EXPECT_FALSE(cal->chosen.thresholds[0].escalate_on_invalid);
  EXPECT_TRUE(cal->chosen.thresholds[0].escalate_on_refusal);
  EXPECT_FALSE(cal->chosen.thresholds[0].min_token_logprob.has_value());
  EXPECT_EQ(cal->chosen.thresholds[1].min_choice_mass, 0.7);

  EXPECT_FALSE(calibrate({}, c, 0.9).ok());
  EXPECT_FALSE(calibrate(choice_set(), c, 1.5).ok());
  auto short_row = choice_set();
  short_row[3].pop_back();
  auto bad = calibrate(short_row, c, 0.9);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().find("task 3"), std::string::npos) << bad.error();
  EXPECT_FALSE(calibrate(choice_set(), RouterConfig{}, 0.9).ok());
}

// Random three-tier data: free-text tasks (mean logprob) and choice tasks mixed.
std::vector<std::vector<Observation>> random_set(size_t n_tasks, size_t n_tiers, unsigned seed,
                                                 bool mixed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(0, 1);
  std::vector<std::vector<Observation>> obs(n_tasks);
  for (size_t i = 0; i < n_tasks; ++i) {
    for (size_t t = 0; t < n_tiers; ++t) {
      const double skill = 0.4 + 0.5 * double(t) / double(n_tiers - 1);
      const double conf = u(rng);
      Observation o;
      o.score = u(rng) < 0.5 * skill + 0.5 * conf ? 1 : 0;
      o.cost_usd = 0.001 * double(t * t) + 0.0001 * u(rng);
      o.ms = 10 + 100 * double(t);
      o.signals.n_tokens = 5;
      if (mixed && i % 2 == 0) {
        o.signals.choice_mass = std::round(conf * 100) / 100;
        o.signals.mean_logprob = std::log(std::max(conf, 0.01));
      } else {
        o.signals.mean_logprob = -std::round((1 - conf) * 300) / 100;
      }
      o.signals.min_logprob = o.signals.mean_logprob - 1;
      o.failed = u(rng) < 0.03;
      obs[i].push_back(o);
    }
  }
  return obs;
}

// Every threshold setting a brute force would try (observed values, strictest, off).
std::vector<std::vector<Thresholds>> all_settings(const std::vector<std::vector<Observation>>& obs,
                                                  size_t n_tiers) {
  std::vector<std::vector<Thresholds>> per_tier;
  for (size_t t = 0; t + 1 < n_tiers; ++t) {
    std::vector<std::optional<double>> mass{std::nullopt, 1.0}, mean{std::nullopt, 0.0};
    for (const auto& row : obs) {
      if (row[t].failed) continue;
      if (row[t].signals.choice_mass) {
        mass.push_back(*row[t].signals.choice_mass);
      } else {
        mean.push_back(row[t].signals.mean_logprob);
      }
    }
    std::vector<Thresholds> options;
    for (const auto& m : mass) {
      for (const auto& l : mean) {
        Thresholds th;
        th.min_choice_mass = m;
        th.min_mean_logprob = l;
        options.push_back(th);
      }
    }
    per_tier.push_back(options);
  }
  std::vector<std::vector<Thresholds>> out;
  std::vector<size_t> at(per_tier.size(), 0);
  while (true) {
    std::vector<Thresholds> s;
    for (size_t t = 0; t < per_tier.size(); ++t) s.push_back(per_tier[t][at[t]]);
    s.emplace_back();
    out.push_back(s);
    size_t d = 0;
    while (d < at.size() && ++at[d] == per_tier[d].size()) at[d++] = 0;
    if (d == at.size()) break;
  }
  return out;
}

TEST(RouterCalibrate, AgreesWithBruteForceAndTheCurveIsTheFrontier) {
  const RouterConfig c = tiers({"a", "b", "c"});
  for (unsigned seed = 1; seed <= 3; ++seed) {
    const auto obs = random_set(12, 3, seed, seed == 3);
    std::vector<CalibrationPoint> all;
    for (const auto& s : all_settings(obs, 3)) all.push_back(simulate(obs, s));
    double best_accuracy = 0;
    for (const auto& p : all) best_accuracy = std::max(best_accuracy, p.accuracy);
    for (double target : {0.5, 0.7, best_accuracy, 1.0}) {
      auto cal = calibrate(obs, c, target);
      ASSERT_TRUE(cal.ok()) << cal.error();
      // What the chosen thresholds claim is what they do.
      const CalibrationPoint check = simulate(obs, cal->chosen.thresholds);
      EXPECT_DOUBLE_EQ(check.accuracy, cal->chosen.accuracy);
      EXPECT_DOUBLE_EQ(check.mean_cost_usd, cal->chosen.mean_cost_usd);
      const bool reachable = best_accuracy >= target - 1e-12;
      EXPECT_EQ(cal->reached, reachable) << "seed " << seed << " target " << target;
      for (const auto& p : all) {
        if (reachable && p.accuracy >= target - 1e-12) {
          EXPECT_GE(p.mean_cost_usd, cal->chosen.mean_cost_usd - 1e-15)
              << "a cheaper setting reaches " << target << " (seed " << seed << ")";
        }
        if (!reachable) {
          EXPECT_LE(p.accuracy, cal->chosen.accuracy + 1e-12);
        }
      }
      // The curve: cheapest first, each point more accurate, none beaten by another setting.
      ASSERT_FALSE(cal->curve.empty());
      for (size_t i = 1; i < cal->curve.size(); ++i) {
        EXPECT_GE(cal->curve[i].mean_cost_usd, cal->curve[i - 1].mean_cost_usd);
        EXPECT_GT(cal->curve[i].accuracy, cal->curve[i - 1].accuracy);
      }
      for (const auto& q : cal->curve) {
        for (const auto& p : all) {
          const bool dominates =
              p.mean_cost_usd < q.mean_cost_usd - 1e-15 && p.accuracy > q.accuracy + 1e-12;
          EXPECT_FALSE(dominates) << "seed " << seed;
        }
      }
      EXPECT_DOUBLE_EQ(cal->curve.back().accuracy, best_accuracy);
      const std::string table = render_curve(*cal, c);
      EXPECT_NE(table.find('*'), std::string::npos) << table;
      EXPECT_NE(table.find("a "), std::string::npos) << table;
    }
  }
  const auto mixed = random_set(12, 3, 3, true);
  auto cal = calibrate(mixed, c, 0.6);
  ASSERT_TRUE(cal.ok());
  EXPECT_EQ(cal->signal, "a: choice_mass+mean_logprob; b: choice_mass+mean_logprob");
}

TEST(RouterCalibrate, FastOnAHundredTasks) {
  const RouterConfig three = tiers({"a", "b", "c"});
  const auto obs = random_set(100, 3, 7, false);
  auto t0 = std::chrono::steady_clock::now();
  auto cal = calibrate(obs, three, 0.7);
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_TRUE(cal.ok());
  EXPECT_LT(s, 10.0);  // ~0.05 s in a release build; sanitizers are slower
  std::printf("3 tiers x 100 tasks (exhaustive): %.3f s\n", s);

  // Four tiers: too many combinations, so coordinate descent; the result is a local optimum
  // (no single tier's threshold can be changed for the better).
  const RouterConfig four = tiers({"a", "b", "c", "d"});
  const auto obs4 = random_set(100, 4, 8, false);
  t0 = std::chrono::steady_clock::now();
  cal = calibrate(obs4, four, 0.6);
  s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_TRUE(cal.ok());
  EXPECT_LT(s, 10.0);
  std::printf("4 tiers x 100 tasks (descent): %.3f s\n", s);
  ASSERT_TRUE(cal->reached);
  EXPECT_GE(cal->chosen.accuracy, 0.6);
  for (size_t t = 0; t < 3; ++t) {
    std::vector<std::optional<double>> values{std::nullopt, 0.0};
    for (const auto& row : obs4) values.push_back(row[t].signals.mean_logprob);
    for (const auto& v : values) {
      std::vector<Thresholds> th = cal->chosen.thresholds;
      th[t].min_mean_logprob = v;
      const CalibrationPoint p = simulate(obs4, th);
      if (p.accuracy >= 0.6) {
        EXPECT_GE(p.mean_cost_usd, cal->chosen.mean_cost_usd - 1e-15);
      }
    }
  }
}

}  // namespace
}  // namespace minnow::router
