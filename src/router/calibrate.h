// Calibration (`minnow eval --calibrate`): given how each tier alone did on each task of a
// task set (score, confidence signals, cost, time), find the thresholds that reach a target
// accuracy at the lowest expected cost. Pure arithmetic: the models were run by eval; here the
// cascade is replayed exactly as Router::route runs it (router.h), for every candidate setting.
//
// Cascade replayed per task (tiers in order, no rules: every task starts at the first tier):
//   tier t failed                          -> next tier
//   t is the last tier                     -> its answer
//   escalation_reason(thresholds[t], sig)  -> held as the fallback, next tier
//   otherwise                              -> its answer
//   no answer after the last tier          -> the latest escalated answer, else none (score 0)
// The task's cost and time are the sums over the tiers tried.
#pragma once

#include <string>
#include <vector>

#include "router/config.h"
#include "router/route.h"
#include "util/status.h"

namespace minnow::router {

// One task on one tier (run alone).
struct Observation {
  double score = 0;  // 0..1 (eval's metric)
  Signals signals;
  double cost_usd = 0;
  double ms = 0;
  bool failed = false;  // no answer (an upstream that failed)
};

// The outcome of one setting of the thresholds over the task set.
struct CalibrationPoint {
  std::vector<Thresholds> thresholds;  // per tier; the last one is never consulted
  double accuracy = 0;                 // mean score
  double mean_cost_usd = 0, mean_ms = 0;
  double share_first_tier = 0;         // answered by tier 0
  double escalation_rate = 0;          // answered by a tier after the first
  std::vector<double> share_per_tier;  // answered by each tier (sums to < 1 if some got none)
};

// Replays the cascade. obs[task][tier]; thresholds.size() must be the number of tiers.
CalibrationPoint simulate(const std::vector<std::vector<Observation>>& obs,
                          const std::vector<Thresholds>& thresholds);

struct Calibration {
  bool reached = false;     // some setting reaches the target accuracy
  CalibrationPoint chosen;  // cheapest reaching it; else the most accurate
  // The cost/accuracy Pareto frontier of every setting tried, cheapest first (each point
  // more accurate than the one before).
  std::vector<CalibrationPoint> curve;
  std::string signal;  // which signal each tier's threshold was searched on, e.g.
                       // "small: choice_mass; medium: mean_logprob"
};

// The threshold search. For each tier but the last, the signal is the chosen label's
// probability (min_choice_mass) when its tasks report one, else the mean token log-probability
// (min_mean_logprob) — both when the task set mixes choice and free-text tasks. Candidate
// values: those observed on the tier (a threshold at an observed value keeps the answers at or
// above it), plus off. All combinations are tried when they are few, otherwise coordinate
// descent from several starts. The best setting has the lowest mean cost with accuracy >=
// target_accuracy; ties go to the higher accuracy, then fewer escalations. The config's other
// log-probability thresholds are cleared (the search owns them); escalate_on_invalid and
// escalate_on_refusal are kept as they are. Errors: no tasks, a row whose size is not the
// number of tiers, a target outside [0, 1].
Result<Calibration> calibrate(const std::vector<std::vector<Observation>>& obs,
                              const RouterConfig& config, double target_accuracy);

// The curve as a text table for the terminal (the chosen point marked with '*').
std::string render_curve(const Calibration& calibration, const RouterConfig& config);

}  // namespace minnow::router
