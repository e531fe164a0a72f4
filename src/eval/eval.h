// `minnow eval`: which model is sufficient for a task set. Each task (a JSONL line) is asked
// of each model with greedy decoding; the answer is held to the task's format (choices:
// exactly one of them; schema: JSON valid against it) and scored by the task's metric. A
// model's report gives accuracy with its 95% interval, format validity, latency and speed,
// memory, and what 1,000 such requests cost locally beside the same token counts at cloud
// prices; the recommendation is the smallest model whose accuracy reaches the bar.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "engine/chat.h"
#include "eval/metrics.h"
#include "router/config.h"
#include "router/route.h"
#include "util/status.h"

namespace minnow::eval {

struct Task {
  std::string id;
  std::vector<engine::ChatMessage> messages;  // or
  std::string prompt;                         // (raw prompt through the chat template as user)
  std::string expected;                       // JSON text when the metric is json_fields
  std::vector<std::string> choices;           // the answer is one of these
  std::string schema;                         // JSON schema text: the answer is such JSON
  Metric metric = Metric::kNormalizedExact;
};

// One task per non-empty line; errors name the file, line and field. Default metric: exact
// with choices, json_fields with a schema, normalized exact otherwise.
Result<std::vector<Task>> load_tasks(const std::string& path);

// Prices of a cloud model, USD per million tokens.
struct CloudPrice {
  std::string name;
  double input_per_m = 0, output_per_m = 0;
};
// The documented default table (README, "minnow eval"): list prices as of 2026 for models
// people route small jobs to.
std::vector<CloudPrice> default_cloud_prices();

struct EvalOptions {
  int max_tokens = 256;     // per answer
  int threads = 0;          // 0: one per core
  double watts = 15;        // power drawn while generating (two laptop-class cores)
  double kwh_price = 0.30;  // USD per kWh
  double hardware_per_hour = 0;  // USD: amortized hardware, per hour of generation
  std::vector<CloudPrice> cloud = default_cloud_prices();
  int limit = 0;  // first N tasks only (0: all)
};

struct TaskResult {
  std::string id, answer, expected;
  double score = 0;
  bool format_ok = true;
  double ttft_ms = 0, total_ms = 0;
  int prompt_tokens = 0, output_tokens = 0;
  // How sure the answer looked (the router's signals), and for a router who answered.
  router::Signals signals;
  std::string tier;
  bool escalated = false;
  bool failed = false;         // no answer (a remote tier that failed): scored 0
  double priced_cost_usd = 0;  // at the tiers' configured prices
};

struct ModelReport {
  std::string model;
  uint64_t n_params = 0;
  int n_tasks = 0;
  double accuracy = 0;  // mean score
  Interval accuracy_ci;  // Wilson 95% over the fully right answers
  double format_validity = 0;
  double ttft_p50_ms = 0, ttft_p95_ms = 0, total_p50_ms = 0, total_p95_ms = 0;
  double tokens_per_s = 0;  // generated tokens / generation time
  uint64_t peak_rss_bytes = 0;
  double load_ms = 0;
  double local_cost_per_1k = 0;  // USD
  std::map<std::string, double> cloud_cost_per_1k;  // USD by cloud model
  double mean_prompt_tokens = 0, mean_output_tokens = 0;
  // A router (or a tier alone): share of answers per tier, and the configured prices' cost.
  std::map<std::string, double> tier_share;
  double escalation_rate = 0;
  double priced_cost_per_1k = 0;
  std::vector<TaskResult> results;
};

// Runs every task on `model` (a name or path); progress(done, total) after each task.
Result<ModelReport> evaluate(const std::string& model, const std::vector<Task>& tasks,
                             const EvalOptions& options,
                             const std::function<void(int, int)>& progress = {});

// Runs every task through a router built from `config` (its local tiers on this machine, its
// remote tiers over HTTP): the answer is the kept one, the report says who answered. A config
// with one tier evaluates that tier alone, with its signals recorded (for calibration).
Result<ModelReport> evaluate_router(const router::RouterConfig& config,
                                    const std::vector<Task>& tasks, const EvalOptions& options,
                                    const std::function<void(int, int)>& progress = {});

// The smallest model (fewest parameters) whose accuracy is at least min_accuracy, or none.
std::optional<size_t> recommend(const std::vector<ModelReport>& reports, double min_accuracy);

}  // namespace minnow::eval
