// `minnow eval [--models a,b] [--data tasks.jsonl] [--min-accuracy 0.9] [--json|--csv]
//              [--out results.json] [--limit N] [--max-tokens N] [--watts W] [--kwh-price P]
//              [--hardware-per-hour H] [--prices prices.json] [--router router.toml]`
// `minnow eval --calibrate router.toml --data tasks.jsonl --target-accuracy A`
// With --router, the router's virtual model (e.g. "auto") is one of the models: each task goes
// through it as a request to `minnow serve` would. --calibrate runs each tier alone, finds
// the thresholds that reach the target accuracy at the lowest cost (router/calibrate.h),
// prints the cost/accuracy curve, writes the thresholds into the file and evaluates the
// calibrated router beside its tiers.
// Runs the task set on each model (src/eval) and prints, per model, accuracy with its 95%
// interval, format validity, latency, speed, memory and cost per 1,000 requests (local and at
// cloud prices), then the recommendation. Defaults: the models setup registers and the
// bundled support-ticket routing set (data/eval/support_tickets.jsonl), so it runs out of the
// box. Results are also written as JSON (--out) for later comparison.
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/load.h"
#include "eval/eval.h"
#include "router/calibrate.h"
#include "router/config.h"
#include "store/registry.h"

#ifndef MINNOW_SOURCE_DIR
#define MINNOW_SOURCE_DIR "."
#endif

namespace minnow::cli {
namespace {

using Json = nlohmann::ordered_json;

struct EvalArgs {
  std::string models;
  std::string data;
  double min_accuracy = 0.9;
  bool json = false, csv = false;
  std::string out;
  std::string prices;
  std::string router;     // --router FILE
  std::string calibrate;  // --calibrate FILE
  double target_accuracy = -1;
  eval::EvalOptions opts;
};

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, ',');) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

std::string default_data() {
  // Next to the binary's source tree (a build) or the installed share folder.
  for (const std::string& p : {std::string(MINNOW_SOURCE_DIR) + "/data/eval/support_tickets.jsonl",
                              std::string("data/eval/support_tickets.jsonl")}) {
    if (std::ifstream(p)) return p;
  }
  throw std::runtime_error("no --data given and the bundled task set was not found");
}

Json report_json(const eval::ModelReport& r) {
  Json cloud = Json::object();
  for (const auto& [k, v] : r.cloud_cost_per_1k) cloud[k] = v;
  Json results = Json::array();
  for (const auto& t : r.results) {
    results.push_back({{"id", t.id}, {"answer", t.answer}, {"expected", t.expected},
                       {"score", t.score}, {"format_ok", t.format_ok}, {"ttft_ms", t.ttft_ms},
                       {"total_ms", t.total_ms}, {"prompt_tokens", t.prompt_tokens},
                       {"output_tokens", t.output_tokens}, {"tier", t.tier},
                       {"escalated", t.escalated}, {"failed", t.failed},
                       {"signals", {{"n_tokens", t.signals.n_tokens},
                                    {"mean_logprob", t.signals.mean_logprob},
                                    {"min_logprob", t.signals.min_logprob},
                                    {"choice_mass", t.signals.choice_mass
                                                        ? Json(*t.signals.choice_mass)
                                                        : Json()}}}});
  }
  Json share = Json::object();
  for (const auto& [k, v] : r.tier_share) share[k] = v;
  return {{"model", r.model},
          {"n_params", r.n_params},
          {"tasks", r.n_tasks},
          {"accuracy", r.accuracy},
          {"accuracy_ci95", {r.accuracy_ci.low, r.accuracy_ci.high}},
          {"format_validity", r.format_validity},
          {"ttft_ms", {{"p50", r.ttft_p50_ms}, {"p95", r.ttft_p95_ms}}},
          {"latency_ms", {{"p50", r.total_p50_ms}, {"p95", r.total_p95_ms}}},
          {"tokens_per_s", r.tokens_per_s},
          {"peak_rss_bytes", r.peak_rss_bytes},
          {"load_ms", r.load_ms},
          {"mean_prompt_tokens", r.mean_prompt_tokens},
          {"mean_output_tokens", r.mean_output_tokens},
          {"cost_per_1k_requests_usd",
           {{"local", r.local_cost_per_1k}, {"at_tier_prices", r.priced_cost_per_1k},
            {"cloud", cloud}}},
          {"tier_share", share},
          {"escalation_rate", r.escalation_rate},
          {"results", results}};
}

void progress_bar(const std::string& m, int done, int total) {
  if (isatty(STDERR_FILENO)) {
    const int width = 30, filled = total ? done * width / total : width;
    std::fprintf(stderr, "\r%-16s [%s%s] %d/%d", m.c_str(), std::string(filled, '#').c_str(),
                 std::string(width - filled, '.').c_str(), done, total);
    if (done == total) std::fprintf(stderr, "\n");
  } else if (done == total || done % 25 == 0) {
    std::fprintf(stderr, "%s: %d/%d tasks\n", m.c_str(), done, total);
  }
}

// Who answered and what it cost at the tiers' prices: for routers and tiers.
void print_routing(const std::vector<eval::ModelReport>& reports, const std::string& first_tier) {
  std::printf("\n| %-14s | %8s | %-26s | %11s | %14s |\n", "model / tier", "accuracy",
              "answered by", "escalations", "tier price/1k");
  for (const auto& r : reports) {
    std::string by;
    for (const auto& [tier, share] : r.tier_share) {
      char b[64];
      std::snprintf(b, sizeof b, "%s%s %.0f%%", by.empty() ? "" : ", ", tier.c_str(), 100 * share);
      by += b;
    }
    std::printf("| %-14s | %8.3f | %-26s | %10.0f%% | $%13.5f |\n", r.model.c_str(), r.accuracy,
                by.c_str(), 100 * r.escalation_rate, r.priced_cost_per_1k);
  }
  if (!first_tier.empty()) {
    double share = 0;
    if (!reports.empty()) {
      auto it = reports.back().tier_share.find(first_tier);
      if (it != reports.back().tier_share.end()) share = it->second;
    }
    std::printf("\n%s: %.0f%% of requests kept on the smallest tier (%s)\n",
                reports.empty() ? "" : reports.back().model.c_str(), 100 * share,
                first_tier.c_str());
  }
}

std::vector<eval::Task> load_or_throw(const std::string& data) {
  auto tasks = eval::load_tasks(data);
  if (!tasks) throw std::runtime_error(tasks.error());
  return std::move(*tasks);
}

// --calibrate: each tier alone, the threshold search, the file rewritten, the router checked.
void run_calibrate(EvalArgs& a) {
  auto cfg = router::load_router_config(a.calibrate);
  if (!cfg.ok()) throw std::runtime_error(cfg.error());
  if (a.data.empty()) a.data = default_data();
  const std::vector<eval::Task> tasks = load_or_throw(a.data);
  const double target = a.target_accuracy >= 0 ? a.target_accuracy : a.min_accuracy;
  std::vector<eval::ModelReport> reports;
  for (const router::TierConfig& tier : cfg->tiers) {
    router::RouterConfig single = *cfg;
    single.tiers = {tier};
    single.rules.clear();
    auto r = eval::evaluate_router(single, tasks, a.opts,
                                   [&](int d, int t) { progress_bar(tier.name, d, t); });
    if (!r) throw std::runtime_error(r.error());
    reports.push_back(std::move(*r));
  }
  // obs[task][tier]
  std::vector<std::vector<router::Observation>> obs(reports[0].results.size());
  for (size_t t = 0; t < obs.size(); ++t) {
    for (const auto& rep : reports) {
      const eval::TaskResult& tr = rep.results[t];
      router::Observation o;
      o.score = tr.score;
      o.signals = tr.signals;
      o.signals.invalid = o.signals.invalid || !tr.format_ok;
      o.cost_usd = tr.priced_cost_usd;
      o.ms = tr.total_ms;
      o.failed = tr.failed;
      obs[t].push_back(o);
    }
  }
  auto cal = router::calibrate(obs, *cfg, target);
  if (!cal.ok()) throw std::runtime_error(cal.error());
  std::printf("%s: %zu tasks, target accuracy %.2f\n\n", a.data.c_str(), obs.size(), target);
  std::printf("%s\n", router::render_curve(*cal, *cfg).c_str());
  if (!cal->reached) {
    std::printf("no thresholds reach accuracy %.2f; the most accurate setting is written "
                "(accuracy %.3f)\n",
                target, cal->chosen.accuracy);
  }
  for (size_t i = 0; i + 1 < cfg->tiers.size() && i < cal->chosen.thresholds.size(); ++i)
    cfg->tiers[i].thresholds = cal->chosen.thresholds[i];
  const Status saved = router::save_router_config(*cfg, a.calibrate);
  if (!saved.ok()) throw std::runtime_error(saved.message());
  std::printf("thresholds written to %s (expected: accuracy %.3f, %.0f%% on %s, $%.5f per "
              "1k requests)\n",
              a.calibrate.c_str(), cal->chosen.accuracy, 100 * cal->chosen.share_first_tier,
              cfg->tiers[0].name.c_str(), 1000 * cal->chosen.mean_cost_usd);
  // The calibrated router, run for real beside its tiers.
  auto routed = eval::evaluate_router(*cfg, tasks, a.opts,
                                      [&](int d, int t) { progress_bar(cfg->name, d, t); });
  if (!routed) throw std::runtime_error(routed.error());
  reports.push_back(std::move(*routed));
  print_routing(reports, cfg->tiers[0].name);
  if (!a.out.empty() && a.out != "-") {
    Json all = {{"data", a.data}, {"target_accuracy", target}, {"router", a.calibrate},
                {"reached", cal->reached}, {"models", Json::array()}};
    for (const auto& r : reports) all["models"].push_back(report_json(r));
    std::ofstream f(a.out);
    f << all.dump(2) << "\n";
    if (!f) throw std::runtime_error(a.out + ": cannot write the results");
  }
}

void run_eval(EvalArgs& a) {
  if (!a.calibrate.empty()) return run_calibrate(a);
  std::optional<router::RouterConfig> rcfg;
  if (!a.router.empty()) {
    auto c = router::load_router_config(a.router);
    if (!c.ok()) throw std::runtime_error(c.error());
    rcfg = std::move(*c);
  }
  std::vector<std::string> models = split(a.models);
  if (models.empty()) {
    for (const auto& k : store::known_models()) {
      if (store::resolve_model(k.name).ok()) models.emplace_back(k.name);
    }
    if (rcfg) models.push_back(rcfg->name);
  }
  if (models.empty()) throw std::runtime_error("no models: give --models or run setup");
  if (a.data.empty()) a.data = default_data();
  if (!a.prices.empty()) {
    std::ifstream in(a.prices);
    const auto j = nlohmann::json::parse(in, nullptr, false);
    if (j.is_discarded() || !j.is_object())
      throw std::runtime_error(a.prices + ": expected {\"model\": [input, output] USD per 1M}");
    a.opts.cloud.clear();
    for (const auto& [k, v] : j.items()) {
      if (!v.is_array() || v.size() != 2 || !v[0].is_number() || !v[1].is_number())
        throw std::runtime_error(a.prices + ": '" + k + "' must be [input, output] USD per 1M");
      a.opts.cloud.push_back({k, v[0].get<double>(), v[1].get<double>()});
    }
  }
  auto tasks = eval::load_tasks(a.data);
  if (!tasks) throw std::runtime_error(tasks.error());
  std::vector<eval::ModelReport> reports;
  for (const std::string& m : models) {
    auto progress = [&](int done, int total) { progress_bar(m, done, total); };
    auto r = rcfg && m == rcfg->name ? eval::evaluate_router(*rcfg, *tasks, a.opts, progress)
                                     : eval::evaluate(m, *tasks, a.opts, progress);
    if (!r) throw std::runtime_error(r.error());
    reports.push_back(std::move(*r));
  }
  const auto pick = eval::recommend(reports, a.min_accuracy);
  std::string verdict;
  if (pick) {
    verdict = "recommended: " + reports[*pick].model + " — the smallest model with accuracy >= " +
              std::to_string(a.min_accuracy).substr(0, 4);
  } else {
    size_t best = 0;
    for (size_t i = 1; i < reports.size(); ++i)
      if (reports[i].accuracy > reports[best].accuracy) best = i;
    char buf[160];
    std::snprintf(buf, sizeof(buf), "none of the models reaches accuracy %.2f (best: %s, %.3f)",
                  a.min_accuracy, reports[best].model.c_str(), reports[best].accuracy);
    verdict = buf;
  }

  Json all = {{"data", a.data},
              {"created", long(std::time(nullptr))},
              {"min_accuracy", a.min_accuracy},
              {"energy", {{"watts", a.opts.watts}, {"kwh_price_usd", a.opts.kwh_price},
                          {"hardware_per_hour_usd", a.opts.hardware_per_hour}}},
              {"models", Json::array()},
              {"recommendation", pick ? Json(reports[*pick].model) : Json()},
              {"verdict", verdict}};
  for (const auto& r : reports) all["models"].push_back(report_json(r));
  std::string out = a.out;
  if (out.empty()) {
    char name[64];
    const std::time_t now = std::time(nullptr);
    std::strftime(name, sizeof(name), "minnow-eval-%Y%m%d-%H%M%S.json", std::localtime(&now));
    out = name;
  }
  if (out != "-") {
    std::ofstream f(out);
    f << all.dump(2) << "\n";
    if (!f) throw std::runtime_error(out + ": cannot write the results");
  }

  if (a.json) {
    std::cout << all.dump(2) << "\n";
    return;
  }
  if (a.csv) {
    std::printf("model,params,tasks,accuracy,ci_low,ci_high,format_validity,ttft_p50_ms,"
                "ttft_p95_ms,latency_p50_ms,latency_p95_ms,tokens_per_s,peak_rss_mib,"
                "local_usd_per_1k");
    for (const auto& p : a.opts.cloud) std::printf(",%s_usd_per_1k", p.name.c_str());
    std::printf("\n");
    for (const auto& r : reports) {
      std::printf("%s,%llu,%d,%.4f,%.4f,%.4f,%.4f,%.1f,%.1f,%.1f,%.1f,%.1f,%.1f,%.6f",
                  r.model.c_str(), (unsigned long long)r.n_params, r.n_tasks, r.accuracy,
                  r.accuracy_ci.low, r.accuracy_ci.high, r.format_validity, r.ttft_p50_ms,
                  r.ttft_p95_ms, r.total_p50_ms, r.total_p95_ms, r.tokens_per_s,
                  r.peak_rss_bytes / 1048576.0, r.local_cost_per_1k);
      for (const auto& p : a.opts.cloud) std::printf(",%.6f", r.cloud_cost_per_1k.at(p.name));
      std::printf("\n");
    }
    return;
  }
  std::printf("%s: %d tasks\n\n", a.data.c_str(), reports.empty() ? 0 : reports[0].n_tasks);
  std::printf("| %-14s | %7s | %-22s | %6s | %-15s | %-15s | %7s | %8s | %9s |",
              "model", "params", "accuracy (95% CI)", "format", "TTFT p50/p95", "total p50/p95",
              "tok/s", "peak RSS", "local/1k");
  for (const auto& p : a.opts.cloud) std::printf(" %16s |", (p.name + "/1k").c_str());
  std::printf("\n");
  for (const auto& r : reports) {
    char acc[64], ttft[32], tot[32];
    std::snprintf(acc, sizeof(acc), "%.3f [%.3f, %.3f]", r.accuracy, r.accuracy_ci.low,
                  r.accuracy_ci.high);
    std::snprintf(ttft, sizeof(ttft), "%.0f/%.0f ms", r.ttft_p50_ms, r.ttft_p95_ms);
    std::snprintf(tot, sizeof(tot), "%.0f/%.0f ms", r.total_p50_ms, r.total_p95_ms);
    std::printf("| %-14s | %6.0fM | %-22s | %5.1f%% | %-15s | %-15s | %7.1f | %4.0f MiB | $%8.5f |",
                r.model.c_str(), r.n_params / 1e6, acc, 100 * r.format_validity, ttft, tot,
                r.tokens_per_s, r.peak_rss_bytes / 1048576.0, r.local_cost_per_1k);
    for (const auto& p : a.opts.cloud) std::printf("        $%8.5f |", r.cloud_cost_per_1k.at(p.name));
    std::printf("\n");
  }
  if (rcfg) print_routing(reports, rcfg->tiers[0].name);
  std::printf("\n%s\n", verdict.c_str());
  if (out != "-") std::printf("results: %s\n", out.c_str());
}

}  // namespace

void register_eval(CLI::App& app) {
  auto a = std::make_shared<EvalArgs>();
  CLI::App* cmd = app.add_subcommand("eval", "Measure which model is sufficient for a task set");
  cmd->add_option("--models", a->models, "Comma-separated models (default: those set up)");
  cmd->add_option("--data", a->data, "Task file, JSONL (default: the bundled ticket routing set)");
  cmd->add_option("--min-accuracy", a->min_accuracy, "Accuracy the recommendation must reach")
      ->capture_default_str();
  cmd->add_flag("--json", a->json, "Print the results as JSON");
  cmd->add_flag("--csv", a->csv, "Print the table as CSV");
  cmd->add_option("--out", a->out, "Write the results JSON here ('-': nowhere; default: "
                                   "minnow-eval-<time>.json)");
  cmd->add_option("--limit", a->opts.limit, "Only the first N tasks");
  cmd->add_option("--max-tokens", a->opts.max_tokens, "Most tokens per answer")
      ->capture_default_str();
  cmd->add_option("--threads", a->opts.threads, "Threads (0 = one per core)");
  cmd->add_option("--watts", a->opts.watts, "Power drawn while generating, W")
      ->capture_default_str();
  cmd->add_option("--kwh-price", a->opts.kwh_price, "Electricity, USD per kWh")
      ->capture_default_str();
  cmd->add_option("--hardware-per-hour", a->opts.hardware_per_hour,
                  "Amortized hardware, USD per hour of generation")
      ->capture_default_str();
  cmd->add_option("--prices", a->prices,
                  "Cloud prices: JSON {\"model\": [input, output] USD per 1M tokens}");
  cmd->add_option("--router", a->router,
                  "Router file: its virtual model (e.g. auto) is evaluated beside the models");
  cmd->add_option("--calibrate", a->calibrate,
                  "Router file whose thresholds to calibrate on --data (written back)");
  cmd->add_option("--target-accuracy", a->target_accuracy,
                  "Accuracy the calibrated router must reach (default: --min-accuracy)");
  cmd->callback([a] { run_eval(*a); });
}

}  // namespace minnow::cli
