// minnow eval's scoring rules and statistics (src/eval/metrics.h), and task-file errors.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "eval/eval.h"
#include "eval/metrics.h"

namespace minnow::eval {
namespace {

TEST(EvalMetrics, ScoresFollowTheirRules) {
  EXPECT_EQ(score(Metric::kExact, " billing\n", "billing"), 1);
  EXPECT_EQ(score(Metric::kExact, "Billing", "billing"), 0);
  EXPECT_EQ(score(Metric::kNormalizedExact, "Billing.", "billing"), 1);
  EXPECT_EQ(score(Metric::kNormalizedExact, "feature_request", "feature_request"), 1);
  EXPECT_EQ(score(Metric::kContains, "The answer is: Paris!", "paris"), 1);
  EXPECT_EQ(score(Metric::kContains, "London", "paris"), 0);
  EXPECT_NEAR(score(Metric::kF1, "the cat sat", "the cat sat down"), 2 * 1.0 * 0.75 / 1.75, 1e-12);
  EXPECT_EQ(score(Metric::kF1, "dog", "cat"), 0);
  EXPECT_EQ(score(Metric::kJsonFields, R"({"name":"Sarah Chen","email":"sarah@acme.com"})",
                  R"({"name":"sarah chen","email":"sarah@acme.com"})"),
            1);
  EXPECT_EQ(score(Metric::kJsonFields, R"({"name":"Sarah","email":"sarah@acme.com"})",
                  R"({"name":"Sarah Chen","email":"sarah@acme.com"})"),
            0.5);
  EXPECT_EQ(score(Metric::kJsonFields, "not json", R"({"a":1})"), 0);
  EXPECT_EQ(score(Metric::kJsonValid, R"([1, 2])", ""), 1);
  EXPECT_EQ(score(Metric::kJsonValid, R"({"a": )", ""), 0);
}

TEST(EvalMetrics, NamesParse) {
  Metric m;
  EXPECT_TRUE(parse_metric("normalised exact", m));
  EXPECT_EQ(m, Metric::kNormalizedExact);
  EXPECT_TRUE(parse_metric("json-fields", m));
  EXPECT_EQ(m, Metric::kJsonFields);
  EXPECT_FALSE(parse_metric("bleu", m));
}

TEST(EvalMetrics, WilsonIntervalAndPercentiles) {
  const Interval i = wilson95(90, 100);
  EXPECT_NEAR(i.low, 0.8256, 1e-3);  // known values for 90/100
  EXPECT_NEAR(i.high, 0.9448, 1e-3);
  const Interval all = wilson95(10, 10);
  EXPECT_NEAR(all.high, 1.0, 1e-12);
  EXPECT_GT(all.low, 0.69);
  EXPECT_DOUBLE_EQ(percentile({1, 2, 3, 4}, 0.5), 2.5);
  EXPECT_DOUBLE_EQ(percentile({5}, 0.95), 5);
  EXPECT_TRUE(std::isnan(percentile({}, 0.5)));
}

TEST(EvalTasks, BadLinesAreNamed) {
  const auto dir = std::filesystem::path(::testing::TempDir());
  auto write = [&](const std::string& text) {
    const auto p = (dir / "minnow_eval_tasks.jsonl").string();
    std::ofstream(p) << text;
    return p;
  };
  auto r = load_tasks(write("{\"prompt\": \"x\", \"expected\": \"y\"}\n\n{\"prompt\": 3}\n"));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find(":3: needs 'messages' or 'prompt'"), std::string::npos) << r.error();
  r = load_tasks(write("{\"prompt\": \"x\"}\n"));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("needs 'expected'"), std::string::npos);
  r = load_tasks(write("{\"prompt\": \"x\", \"expected\": \"y\", \"metric\": \"bleu\"}\n"));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("unknown 'metric'"), std::string::npos);
  r = load_tasks(write("not json\n"));
  ASSERT_FALSE(r.ok());
  r = load_tasks(write(R"({"prompt": "x", "expected": {"a": 1}, "schema": {"type": "object"}})"));
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ((*r)[0].metric, Metric::kJsonFields);
  EXPECT_EQ((*r)[0].expected, R"({"a":1})");
  r = load_tasks(write(R"({"prompt": "x", "expected": "a", "choices": ["a", "b"]})"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)[0].metric, Metric::kExact);
}

TEST(EvalRecommend, SmallestModelMeetingTheBar) {
  std::vector<ModelReport> reps(3);
  reps[0].model = "big";
  reps[0].n_params = 900;
  reps[0].accuracy = 0.95;
  reps[1].model = "small";
  reps[1].n_params = 100;
  reps[1].accuracy = 0.91;
  reps[2].model = "tiny";
  reps[2].n_params = 50;
  reps[2].accuracy = 0.5;
  EXPECT_EQ(recommend(reps, 0.9), 1u);
  EXPECT_EQ(recommend(reps, 0.93), 0u);
  EXPECT_FALSE(recommend(reps, 0.99).has_value());
}

}  // namespace
}  // namespace minnow::eval
