// `minnow router report`: a summary of the route log (JSONL, one RouteRecord per line as
// route_record_json writes it): who answered, how often requests escalated and why, latency
// per tier, and what the traffic cost against sending everything to the top tier. Lines that
// are not route records are counted, never fatal.
#pragma once

#include <cstddef>
#include <istream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "util/status.h"

namespace minnow::router {

struct TierSummary {
  std::string name;
  int index = -1;  // position in the router's tiers, as logged (-1: unknown)
  bool local = true;
  size_t answered = 0;                            // requests this tier answered
  size_t escalated = 0, failed = 0, skipped = 0;  // attempts that did not answer
  double share = 0;                               // answered / requests
  // Latency of the requests it answered, end to end (escalations included), ms.
  double p50_ms = 0, p95_ms = 0;
  // Time of its own attempts (answered or not), ms.
  double attempt_p50_ms = 0, attempt_p95_ms = 0;
  double cost_usd = 0;  // all its attempts
};

struct RouteReport {
  size_t lines = 0;                     // non-blank lines read
  size_t requests = 0;                  // route records counted (inside --since)
  size_t malformed = 0;                 // lines that were not route records
  std::vector<size_t> malformed_lines;  // their line numbers (the first 10)
  size_t skipped_old = 0;  // records before --since (or with no readable time when it is set)
  size_t answered_locally = 0, unanswered = 0, escalated = 0, streamed = 0;
  double share_local = 0, escalation_rate = 0;
  std::vector<TierSummary> tiers;  // by tier index, then name
  // "<tier> <outcome>: <reason>" (numbers stripped) and how often, most frequent first.
  std::vector<std::pair<std::string, size_t>> reasons;
  std::vector<std::pair<std::string, size_t>> rules;  // the rule that chose the start
  double cost_usd = 0, top_tier_cost_usd = 0, saving_usd = 0;
  double saving_share = 0;  // saving / top_tier_cost (0 when that is 0)
  double p50_ms = 0, p95_ms = 0;
  std::string first_ts, last_ts;
};

// "24h", "30m", "7d", "90s", "1w" (a bare number is seconds) to seconds.
Result<double> parse_duration_s(const std::string& text);

// Seconds since the epoch of an RFC 3339 time ("2026-11-21T17:08:56.123Z", "+02:00" offsets).
std::optional<double> parse_rfc3339(const std::string& ts);

// Reads the log. since_epoch_s: only records at or after it.
RouteReport summarize_route_log(std::istream& in, std::optional<double> since_epoch_s = {});
// The same from a file; an error only when it cannot be opened.
Result<RouteReport> read_route_log(const std::string& path,
                                   std::optional<double> since_epoch_s = {});

nlohmann::json route_report_json(const RouteReport& report);
// The report for the terminal.
std::string render_route_report(const RouteReport& report, const std::string& log_path);

}  // namespace minnow::router
