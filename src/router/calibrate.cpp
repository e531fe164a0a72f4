#include "router/calibrate.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <optional>

namespace minnow::router {

namespace {

// Settings tried one by one up to this many (x tasks x tiers simulate steps, well under a
// second); beyond it, coordinate descent.
constexpr double kExhaustiveLimit = 50'000;

bool near(double a, double b) {
  return std::fabs(a - b) <= 1e-12 * std::max({1.0, std::fabs(a), std::fabs(b)});
}

enum class Signal { kChoiceMass, kMeanLogprob };

const char* signal_name(Signal s) {
  return s == Signal::kChoiceMass ? "choice_mass" : "mean_logprob";
}

// The shortest decimal x with lo < x <= v (v itself when none is shorter).
double short_at_or_below(double v, double lo) {
  for (int digits = 0; digits <= 15; ++digits) {
    const double scale = std::pow(10.0, digits);
    const double x = std::floor(v * scale) / scale;
    if (x <= v && x > lo) return x;
  }
  return v;
}

// Candidate thresholds for `signal` on `tier`: one per distinct observed value, ascending (it
// keeps every answer at or above that value), the strictest allowed value when it is above
// them all (escalate everything that can be), then off. Empty when no task reports the
// signal on this tier.
std::vector<std::optional<double>> candidates_for(const std::vector<std::vector<Observation>>& obs,
                                                  size_t tier, Signal signal) {
  std::vector<double> values;
  for (const auto& row : obs) {
    const Observation& o = row[tier];
    if (o.failed) continue;
    if (signal == Signal::kChoiceMass && o.signals.choice_mass) {
      values.push_back(std::clamp(*o.signals.choice_mass, 0.0, 1.0));
    } else if (signal == Signal::kMeanLogprob && o.signals.n_tokens > 0 && !o.signals.choice_mass) {
      values.push_back(std::min(o.signals.mean_logprob, 0.0));
    }
  }
  if (values.empty()) return {};
  std::sort(values.begin(), values.end());
  values.erase(std::unique(values.begin(), values.end()), values.end());
  // Each threshold is the shortest decimal that splits the tasks the same way as the observed
  // value: in (previous value, value], so it keeps exactly the answers >= value. The file gets
  // 0.6 rather than 0.5993885254793991, and float noise in a live signal cannot flip it.
  std::vector<std::optional<double>> out;
  for (size_t k = 0; k < values.size(); ++k) {
    // Below the lowest value: within one gap of it, so that answers less sure than any seen
    // still escalate.
    const double gap = values.size() > 1 ? values[1] - values[0] : 0.1;
    const double lo = k == 0 ? values[0] - gap : values[k - 1];
    out.emplace_back(short_at_or_below(values[k], lo));
  }
  const double strictest = signal == Signal::kChoiceMass ? 1.0 : 0.0;
  if (values.back() < strictest) out.emplace_back(strictest);
  out.emplace_back(std::nullopt);
  return out;
}

// The cascade over every task, given whether tier t escalates task i's answer.
template <typename Escalates>
CalibrationPoint replay(const std::vector<std::vector<Observation>>& obs, size_t n_tiers,
                        Escalates&& escalates) {
  CalibrationPoint p;
  p.share_per_tier.assign(n_tiers, 0);
  if (obs.empty() || n_tiers == 0) return p;
  double score = 0, cost = 0, ms = 0;
  size_t escalated = 0;
  for (size_t i = 0; i < obs.size(); ++i) {
    const auto& row = obs[i];
    std::optional<size_t> answer, held;
    for (size_t t = 0; t < n_tiers && t < row.size(); ++t) {
      const Observation& o = row[t];
      cost += o.cost_usd;
      ms += o.ms;
      if (o.failed) continue;
      if (t + 1 == n_tiers || !escalates(t, i)) {
        answer = t;
        break;
      }
      held = t;  // the latest escalated answer: the fallback if every tier after it fails
    }
    if (!answer) answer = held;
    if (!answer) continue;  // no tier answered: scored 0
    score += row[*answer].score;
    p.share_per_tier[*answer] += 1;
    if (*answer != 0) ++escalated;
  }
  const double n = double(obs.size());
  p.accuracy = score / n;
  p.mean_cost_usd = cost / n;
  p.mean_ms = ms / n;
  for (double& s : p.share_per_tier) s /= n;
  p.share_first_tier = p.share_per_tier[0];
  p.escalation_rate = double(escalated) / n;
  return p;
}

// One tier's settings to try: its thresholds (the product of its signals' candidates) and,
// for each, which tasks it escalates (escalation_reason, computed once).
struct TierOptions {
  std::vector<Thresholds> thresholds;
  std::vector<std::vector<char>> escalates;  // [option][task]
};

struct Tried {
  double cost, accuracy, escalation;
  std::vector<uint32_t> at;  // option per non-last tier
};

class Search {
 public:
  Search(const std::vector<std::vector<Observation>>& obs, std::vector<Thresholds> base,
         std::vector<TierOptions> options, double target)
      : obs_(obs), base_(std::move(base)), options_(std::move(options)), target_(target) {}

  // a better than b under the objective.
  bool better(const Tried& a, const Tried& b) const {
    const bool fa = a.accuracy >= target_ - 1e-12, fb = b.accuracy >= target_ - 1e-12;
    if (fa != fb) return fa;
    if (fa) {
      if (!near(a.cost, b.cost)) return a.cost < b.cost;
      if (!near(a.accuracy, b.accuracy)) return a.accuracy > b.accuracy;
    } else {
      if (!near(a.accuracy, b.accuracy)) return a.accuracy > b.accuracy;
      if (!near(a.cost, b.cost)) return a.cost < b.cost;
    }
    return !near(a.escalation, b.escalation) && a.escalation < b.escalation;
  }

  Tried eval(const std::vector<uint32_t>& at) {
    const CalibrationPoint p = replay(obs_, base_.size(), [&](size_t t, size_t i) {
      return options_[t].escalates[at[t]][i] != 0;
    });
    tried_.push_back(Tried{p.mean_cost_usd, p.accuracy, p.escalation_rate, at});
    return tried_.back();
  }

  Tried run() {
    double combos = 1;
    for (const TierOptions& o : options_) combos *= double(o.thresholds.size());
    return combos <= kExhaustiveLimit ? exhaustive() : descent();
  }

  std::vector<Thresholds> thresholds(const std::vector<uint32_t>& at) const {
    std::vector<Thresholds> t = base_;
    for (size_t i = 0; i < options_.size(); ++i) t[i] = options_[i].thresholds[at[i]];
    return t;
  }
  const std::vector<Tried>& tried() const { return tried_; }

 private:
  Tried exhaustive() {
    std::vector<uint32_t> at(options_.size(), 0);
    Tried best = eval(at);
    while (true) {
      size_t d = 0;
      while (d < options_.size() && ++at[d] == options_[d].thresholds.size()) at[d++] = 0;
      if (d == options_.size()) break;
      const Tried t = eval(at);
      if (better(t, best)) best = t;
    }
    return best;
  }

  // One tier at a time, the others fixed, until nothing improves; from each start (all off,
  // all strictest, all loosest), the best end.
  Tried descent() {
    std::vector<std::vector<uint32_t>> starts(3, std::vector<uint32_t>(options_.size()));
    for (size_t d = 0; d < options_.size(); ++d) {
      const auto n = uint32_t(options_[d].thresholds.size());
      starts[0][d] = n - 1;               // off
      starts[1][d] = n >= 2 ? n - 2 : 0;  // strictest
      starts[2][d] = 0;                   // loosest set value
    }
    std::optional<Tried> best;
    for (const auto& s : starts) {
      Tried cur = eval(s);
      for (int round = 0; round < 50; ++round) {
        bool moved = false;
        for (size_t d = 0; d < options_.size(); ++d) {
          for (uint32_t c = 0; c < options_[d].thresholds.size(); ++c) {
            if (c == cur.at[d]) continue;
            std::vector<uint32_t> at = cur.at;
            at[d] = c;
            const Tried t = eval(at);
            if (better(t, cur)) {
              cur = t;
              moved = true;
            }
          }
        }
        if (!moved) break;
      }
      if (!best || better(cur, *best)) best = cur;
    }
    return *best;
  }

  const std::vector<std::vector<Observation>>& obs_;
  std::vector<Thresholds> base_;
  std::vector<TierOptions> options_;  // per non-last tier
  double target_;
  std::vector<Tried> tried_;
};

std::string fmt(const char* f, double v) {
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

std::string describe(const std::vector<Thresholds>& t, const RouterConfig& config) {
  std::string out;
  for (size_t i = 0; i + 1 < t.size() && i < config.tiers.size(); ++i) {
    std::string parts;
    if (t[i].min_choice_mass) parts += "mass>=" + fmt("%.3g", *t[i].min_choice_mass);
    if (t[i].min_mean_logprob) {
      parts += (parts.empty() ? "" : ",");
      parts += "logprob>=" + fmt("%.3g", *t[i].min_mean_logprob);
    }
    if (t[i].min_token_logprob) {
      parts += (parts.empty() ? "" : ",");
      parts += "token>=" + fmt("%.3g", *t[i].min_token_logprob);
    }
    if (!out.empty()) out += "; ";
    out += config.tiers[i].name;
    out += " ";
    out += parts.empty() ? std::string("off") : parts;
  }
  return out;
}

}  // namespace

CalibrationPoint simulate(const std::vector<std::vector<Observation>>& obs,
                          const std::vector<Thresholds>& thresholds) {
  CalibrationPoint p = replay(obs, thresholds.size(), [&](size_t t, size_t i) {
    return escalation_reason(thresholds[t], obs[i][t].signals).has_value();
  });
  p.thresholds = thresholds;
  return p;
}

Result<Calibration> calibrate(const std::vector<std::vector<Observation>>& obs,
                              const RouterConfig& config, double target_accuracy) {
  const size_t n_tiers = config.tiers.size();
  if (n_tiers == 0) return Status::error("calibrate: the router has no tiers");
  if (obs.empty()) return Status::error("calibrate: no tasks");
  for (size_t i = 0; i < obs.size(); ++i) {
    if (obs[i].size() != n_tiers) {
      return Status::error("calibrate: task " + std::to_string(i) + " has " +
                           std::to_string(obs[i].size()) + " observations for " +
                           std::to_string(n_tiers) + " tiers");
    }
  }
  if (!(target_accuracy >= 0 && target_accuracy <= 1)) {
    return Status::error("calibrate: the target accuracy must be between 0 and 1");
  }
  std::vector<Thresholds> base;
  for (const TierConfig& t : config.tiers) {
    Thresholds th = t.thresholds;
    th.min_choice_mass.reset();
    th.min_mean_logprob.reset();
    th.min_token_logprob.reset();
    base.push_back(th);
  }
  base.back() = config.tiers.back().thresholds;  // never consulted: left as written
  std::vector<TierOptions> options;
  Calibration cal;
  for (size_t t = 0; t + 1 < n_tiers; ++t) {
    std::string used;
    TierOptions o;
    o.thresholds = {base[t]};
    for (Signal s : {Signal::kChoiceMass, Signal::kMeanLogprob}) {
      const auto c = candidates_for(obs, t, s);
      if (c.empty()) continue;
      if (!used.empty()) used += '+';  // appends: GCC 12 warns falsely (-Wrestrict) on "+" + s
      used += signal_name(s);
      // The product with the options so far (off last, so ties keep a set threshold).
      std::vector<Thresholds> next;
      for (const Thresholds& th : o.thresholds) {
        for (const std::optional<double>& v : c) {
          Thresholds x = th;
          (s == Signal::kChoiceMass ? x.min_choice_mass : x.min_mean_logprob) = v;
          next.push_back(x);
        }
      }
      o.thresholds = std::move(next);
    }
    for (const Thresholds& th : o.thresholds) {
      std::vector<char> esc(obs.size());
      for (size_t i = 0; i < obs.size(); ++i)
        esc[i] = escalation_reason(th, obs[i][t].signals).has_value() ? 1 : 0;
      o.escalates.push_back(std::move(esc));
    }
    options.push_back(std::move(o));
    if (!cal.signal.empty()) cal.signal += "; ";
    cal.signal += config.tiers[t].name;
    cal.signal += ": ";
    cal.signal += used.empty() ? std::string("none") : used;
  }
  Search search(obs, base, std::move(options), target_accuracy);
  const Tried best = search.run();
  cal.chosen = simulate(obs, search.thresholds(best.at));
  cal.reached = cal.chosen.accuracy >= target_accuracy - 1e-12;

  // Pareto frontier: cheapest first, each point strictly more accurate than the one before.
  std::vector<const Tried*> order;
  for (const Tried& t : search.tried()) order.push_back(&t);
  std::stable_sort(order.begin(), order.end(), [&](const Tried* a, const Tried* b) {
    if (!near(a->cost, b->cost)) return a->cost < b->cost;
    if (!near(a->accuracy, b->accuracy)) return a->accuracy > b->accuracy;
    return a->escalation < b->escalation;
  });
  double best_accuracy = -1;
  for (const Tried* t : order) {
    if (t->accuracy > best_accuracy && !near(t->accuracy, best_accuracy)) {
      best_accuracy = t->accuracy;
      cal.curve.push_back(simulate(obs, search.thresholds(t->at)));
    }
  }
  return cal;
}

std::string render_curve(const Calibration& cal, const RouterConfig& config) {
  const size_t n_tiers = config.tiers.size();
  std::string out = "cost/accuracy curve (thresholds searched on " + cal.signal + ")\n";
  std::string head = "  " + std::string("cost/1k req") + "  accuracy";
  for (const TierConfig& t : config.tiers) {
    std::string name = t.name.substr(0, 10);
    char b[32];
    std::snprintf(b, sizeof b, "  %10s", name.c_str());
    head += b;
  }
  head += "  escalated  thresholds\n";
  out += head;
  // Long curves are thinned to about 20 rows; the ends and the chosen point always shown.
  const size_t n = cal.curve.size();
  const size_t step = n > 20 ? (n + 19) / 20 : 1;
  for (size_t i = 0; i < n; ++i) {
    const CalibrationPoint& p = cal.curve[i];
    const bool chosen =
        near(p.mean_cost_usd, cal.chosen.mean_cost_usd) && near(p.accuracy, cal.chosen.accuracy);
    if (!chosen && i % step != 0 && i + 1 != n) continue;
    char b[96];
    std::snprintf(b, sizeof b, "%c $%10.5f  %8.3f", chosen ? '*' : ' ', 1000 * p.mean_cost_usd,
                  p.accuracy);
    std::string line = b;
    for (size_t t = 0; t < n_tiers; ++t) {
      std::snprintf(b, sizeof b, "  %9.0f%%",
                    100 * (t < p.share_per_tier.size() ? p.share_per_tier[t] : 0));
      line += b;
    }
    std::snprintf(b, sizeof b, "  %8.0f%%  ", 100 * p.escalation_rate);
    line += b;
    line += describe(p.thresholds, config);
    out += line + "\n";
  }
  char b[160];
  std::snprintf(b, sizeof b, "%s: accuracy %.3f at $%.5f per 1k requests, %.0f%% on %s\n",
                cal.reached ? "* chosen" : "* most accurate (target not reached)",
                cal.chosen.accuracy, 1000 * cal.chosen.mean_cost_usd,
                100 * cal.chosen.share_first_tier,
                config.tiers.empty() ? "" : config.tiers[0].name.c_str());
  out += b;
  return out;
}

}  // namespace minnow::router
