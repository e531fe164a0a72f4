// `minnow router check [FILE]`: loads and validates a router file (default: $MINNOW_ROUTER or
//   ~/.minnow/router.toml) and prints its tiers (prices, thresholds, upstream settings), rules
//   and refusal patterns; warns about local models not on this machine and unset API keys.
// `minnow router report [--log FILE] [--json] [--since 24h] [--config FILE]`: summarises the
//   route log (router/report.h). The log defaults to the one the router file names.
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>

#include "cli/commands.h"
#include "router/config.h"
#include "router/report.h"
#include "router/rules.h"
#include "store/registry.h"

namespace minnow::cli {

namespace {

std::string number(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%g", v);
  return b;
}

std::string thresholds_text(const router::Thresholds& t) {
  std::string s;
  auto add = [&](const std::string& part) { s += (s.empty() ? "" : ", ") + part; };
  if (t.min_choice_mass) add("choice mass < " + number(*t.min_choice_mass));
  if (t.min_mean_logprob) add("mean logprob < " + number(*t.min_mean_logprob));
  if (t.min_token_logprob) add("token logprob < " + number(*t.min_token_logprob));
  if (t.escalate_on_invalid) add("invalid output");
  if (t.escalate_on_refusal) add("refusal");
  return s.empty() ? "never" : s;
}

std::string rule_text(const router::Rule& r, const router::RouterConfig& c) {
  std::string when;
  auto add = [&](const std::string& part) { when += (when.empty() ? "" : " and ") + part; };
  if (r.tag) add("tag = \"" + *r.tag + "\"");
  if (r.task) add("task = " + *r.task);
  if (r.min_prompt_chars) add("prompt >= " + std::to_string(*r.min_prompt_chars) + " chars");
  if (r.max_prompt_chars) add("prompt <= " + std::to_string(*r.max_prompt_chars) + " chars");
  if (r.regex) add("text ~ /" + *r.regex + "/");
  if (!r.keywords.empty()) {
    std::string k;
    for (const std::string& w : r.keywords) k += (k.empty() ? "" : ", ") + w;
    add("any of [" + k + "]");
  }
  if (r.has_tools) add(*r.has_tools ? "with tools" : "without tools");
  if (r.has_schema) add(*r.has_schema ? "structured" : "not structured");
  const std::string tier = r.tier ? *r.tier : c.tiers.front().name;
  return (when.empty() ? "always" : when) + " -> " + tier +
         (r.pin ? " (pinned: no escalation)" : " (then escalates as usual)");
}

void run_check(const std::string& file_arg) {
  const std::string file = file_arg.empty() ? router::default_router_config_path() : file_arg;
  auto c = router::load_router_config(file);
  if (!c.ok()) throw std::runtime_error(c.error());
  // What the server would compile: the rules and refusal patterns.
  auto rules = router::Rules::compile(*c);
  if (!rules.ok()) throw std::runtime_error(rules.error());
  std::printf("%s: ok\n", c->source_path.c_str());
  std::printf("router \"%s\": %zu tiers, %zu rules, hold_tokens %d, log %s\n\n", c->name.c_str(),
              c->tiers.size(), c->rules.size(), c->hold_tokens,
              c->log_path.empty() ? "(none)" : c->log_path.c_str());
  int warnings = 0;
  std::printf("tiers (a request starts at the first and escalates down the list):\n");
  for (size_t i = 0; i < c->tiers.size(); ++i) {
    const router::TierConfig& t = c->tiers[i];
    const bool remote = t.kind == router::TierConfig::Kind::kRemote;
    std::printf("  %zu. %-12s %-6s %s%s%s\n", i, t.name.c_str(), remote ? "remote" : "local",
                t.model.c_str(), remote ? " at " : "", remote ? t.base_url.c_str() : "");
    std::printf("     price: $%s in / $%s out per 1M tokens\n", number(t.price_in_per_m).c_str(),
                number(t.price_out_per_m).c_str());
    if (i + 1 < c->tiers.size()) {
      std::printf("     escalates on: %s\n", thresholds_text(t.thresholds).c_str());
    } else {
      std::printf("     last tier: its answer is kept\n");
    }
    if (remote) {
      std::printf(
          "     timeout %ss, %d retries (backoff %s..%s ms), breaker after %d failures "
          "for %ss%s\n",
          number(t.timeout_s).c_str(), t.max_retries, number(t.backoff_ms).c_str(),
          number(t.backoff_max_ms).c_str(), t.breaker_failures,
          number(t.breaker_cooldown_s).c_str(), t.minnow_extensions ? ", minnow extensions" : "");
      if (!t.api_key_env.empty()) {
        const char* key = std::getenv(t.api_key_env.c_str());
        const bool set = key != nullptr && *key != '\0';
        std::printf("     API key: $%s (%s)\n", t.api_key_env.c_str(), set ? "set" : "NOT set");
        if (!set) {
          std::fprintf(stderr,
                       "warning: tier %s: $%s is not set; the tier fails (requests fall back "
                       "to the others) until it is\n",
                       t.name.c_str(), t.api_key_env.c_str());
          ++warnings;
        }
      }
    } else if (auto m = store::resolve_model(t.model); !m.ok()) {
      std::fprintf(stderr, "warning: tier %s: %s\n", t.name.c_str(), m.error().c_str());
      ++warnings;
    }
  }
  std::printf("\nrules (the first that matches picks the start):\n");
  if (c->rules.empty())
    std::printf("  none: every request starts at %s\n", c->tiers[0].name.c_str());
  for (const router::Rule& r : c->rules) {
    std::printf("  %-16s %s\n", r.name.c_str(), rule_text(r, *c).c_str());
  }
  if (c->refusal_patterns.empty()) {
    std::printf("\nrefusal patterns: the %zu built-in English ones\n",
                router::default_refusal_patterns().size());
  } else {
    std::printf("\nrefusal patterns:\n");
    for (const std::string& p : c->refusal_patterns) std::printf("  %s\n", p.c_str());
  }
  if (warnings > 0) std::printf("\n%d warning(s) on stderr\n", warnings);
}

struct ReportArgs {
  std::string log, config, since;
  bool json = false;
};

void run_report(const ReportArgs& a) {
  std::string log = a.log;
  if (log.empty()) {
    // The log the router file names; its default when there is no file.
    const std::string file = a.config.empty() ? router::default_router_config_path() : a.config;
    if (!a.config.empty() || std::filesystem::exists(file)) {
      auto c = router::load_router_config(file);
      if (!c.ok()) throw std::runtime_error(c.error());
      if (c->log_path.empty())
        throw std::runtime_error(file + " turns the route log off (log = \"\")");
      log = c->log_path;
    } else {
      const char* home = std::getenv("HOME");
      log = std::string(home ? home : ".") + "/.minnow/router.jsonl";
    }
  }
  std::optional<double> since;
  if (!a.since.empty()) {
    auto d = router::parse_duration_s(a.since);
    if (!d.ok()) throw std::runtime_error("--since: " + d.error());
    since = double(std::time(nullptr)) - *d;
  }
  auto rep = router::read_route_log(log, since);
  if (!rep.ok()) throw std::runtime_error(rep.error());
  if (a.json) {
    nlohmann::json j = router::route_report_json(*rep);
    j["log"] = log;
    std::cout << j.dump(2) << "\n";
  } else {
    std::cout << router::render_route_report(*rep, log);
  }
}

}  // namespace

void register_router(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand("router",
                                     "The hybrid router: check a router file, report "
                                     "on routed traffic");
  cmd->require_subcommand(1);

  auto file = std::make_shared<std::string>();
  CLI::App* check = cmd->add_subcommand("check",
                                        "Validate a router file and print its tiers and "
                                        "rules");
  check->add_option("file", *file,
                    "Router file (default: $MINNOW_ROUTER or ~/.minnow/router.toml)");
  check->callback([file] { run_check(*file); });

  auto a = std::make_shared<ReportArgs>();
  CLI::App* report = cmd->add_subcommand("report",
                                         "Summarise the route log: share answered "
                                         "locally, escalations, latency, cost");
  report->add_option("--log", a->log, "Route log (JSONL; default: the router file's log)");
  report->add_option("--config", a->config, "Router file whose log to read");
  report->add_option("--since", a->since, "Only the last period: 24h, 30m, 7d, ...");
  report->add_flag("--json", a->json, "JSON output");
  report->callback([a] { run_report(*a); });
}

}  // namespace minnow::cli
