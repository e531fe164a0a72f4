#include "router/router.h"

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <optional>

#include "router/upstream.h"

namespace minnow::router {

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

std::string rfc3339_now() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char b[96];
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::snprintf(b, sizeof b, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, int(ms));
  return b;
}

double cost_of(const TierConfig& t, int prompt_tokens, int output_tokens) {
  return (double(prompt_tokens) * t.price_in_per_m + double(output_tokens) * t.price_out_per_m) /
         1e6;
}

bool structured(const RouteRequest& r) { return r.grammar != nullptr || r.choice || r.tools; }

// A remote tier's answer is held to the request's format as far as a foreign API can be: JSON
// that parses for json / schema tasks (key order and whitespace are the upstream's), the exact
// grammar for grammar / regex (a minnow upstream, which honours them).
bool remote_answer_valid(const RouteRequest& r, const std::string& text) {
  const std::string& task = r.features.task;
  if (task == "json" || task == "schema") {
    return nlohmann::json::accept(text);
  }
  if ((task == "grammar" || task == "regex") && r.grammar) return constrain::accepts(*r.grammar, text);
  return true;
}

// One local attempt's view of the generation: signals, the held-back text, and the early
// decision of a streamed free-text answer.
class Gate : public TokenSink {
 public:
  Gate(bool pass_through, int judge_after, const std::function<bool(std::string_view)>& out,
       std::function<std::optional<std::string>(const SignalMeter&, const std::string&)> judge)
      : pass_through_(pass_through), judge_after_(judge_after), out_(out),
        judge_(std::move(judge)) {}

  bool token(float logprob, float allowed_mass, bool forced) override {
    meter_.add(logprob, allowed_mass, forced);
    return true;
  }
  bool text(std::string_view piece) override {
    text_ += piece;
    if (pass_through_ || committed_) return send(piece);
    if (judge_after_ > 0 && meter_.sampled() >= judge_after_) {
      if (auto reason = judge_(meter_, text_)) {
        early_reason_ = std::move(reason);
        return false;  // escalate: stop this tier now
      }
      return commit();
    }
    return true;
  }
  // Sends what was held back; later text goes straight out.
  bool commit() {
    committed_ = true;
    return text_.empty() ? true : send(text_);
  }

  const SignalMeter& meter() const { return meter_; }
  const std::string& full_text() const { return text_; }
  bool committed() const { return committed_ || pass_through_; }
  const std::optional<std::string>& early_reason() const { return early_reason_; }
  bool client_gone() const { return client_gone_; }

 private:
  bool send(std::string_view s) {
    if (!out_(s)) client_gone_ = true;
    return !client_gone_;
  }
  bool pass_through_;
  int judge_after_;
  const std::function<bool(std::string_view)>& out_;
  std::function<std::optional<std::string>(const SignalMeter&, const std::string&)> judge_;
  SignalMeter meter_;
  std::string text_;
  bool committed_ = false;
  bool client_gone_ = false;
  std::optional<std::string> early_reason_;
};

}  // namespace

void SignalMeter::add(float logprob, float allowed_mass, bool forced) {
  if (forced) return;
  min_ = n_ == 0 ? logprob : std::min(min_, double(logprob));
  sum_ += logprob;
  ++n_;
  // P(token | allowed) = prob / allowed_mass, in logs.
  log_mass_ += double(logprob) - std::log(std::max(double(allowed_mass), 1e-30));
}

Signals SignalMeter::signals(bool choice) const {
  Signals s;
  s.n_tokens = n_;
  s.mean_logprob = n_ ? sum_ / n_ : 0;
  s.min_logprob = n_ ? min_ : 0;
  if (choice) s.choice_mass = std::min(1.0, std::exp(log_mass_));
  return s;
}

Router::Router(RouterConfig config) : config_(std::move(config)) {}
Router::~Router() = default;

Result<std::unique_ptr<Router>> Router::create(RouterConfig config) {
  if (config.tiers.empty()) return Status::error("router: no tiers");
  auto rules = Rules::compile(config);
  if (!rules.ok()) return Status::error(rules.error());
  std::unique_ptr<Router> r(new Router(std::move(config)));
  r->rules_ = std::make_unique<Rules>(std::move(*rules));
  for (const TierConfig& t : r->config_.tiers) {
    r->upstreams_.push_back(t.kind == TierConfig::Kind::kRemote ? std::make_unique<Upstream>(t)
                                                                : nullptr);
  }
  r->stats_.resize(r->config_.tiers.size());
  return r;
}

Result<RouteOutcome> Router::route(const RouteRequest& req, LocalRunner& local,
                                   const std::function<bool(std::string_view)>& on_text,
                                   const std::atomic<bool>* cancel) {
  const auto t0 = Clock::now();
  const auto& tiers = config_.tiers;
  RouteRecord rec;
  rec.ts = rfc3339_now();
  rec.router = config_.name;
  rec.api = req.api;
  rec.streamed = req.stream;
  const RouteStart start = rules_->choose(req.features);
  rec.rule = start.rule;
  const size_t first = std::min(start.tier, tiers.size() - 1);
  const size_t last = start.pin ? first : tiers.size() - 1;

  RouteOutcome out;
  // The best escalated answer so far: the fallback when every later tier fails.
  struct Held {
    size_t tier;
    std::string text, done_reason;
    int prompt_tokens, output_tokens;
  };
  std::optional<Held> held;
  auto cancelled = [&] { return cancel && cancel->load(); };

  auto finish = [&](size_t tier, std::string text, std::string done_reason, int pt, int ot) {
    rec.tier = tiers[tier].name;
    rec.tier_index = int(tier);
    rec.local = tiers[tier].kind == TierConfig::Kind::kLocal;
    rec.prompt_tokens = pt;
    rec.output_tokens = ot;
    rec.escalated = tier != first;
    out.text = std::move(text);
    out.done_reason = std::move(done_reason);
    out.prompt_tokens = pt;
    out.output_tokens = ot;
  };

  // Runs tier i. final: its answer is kept whatever it looks like (streamed directly).
  // Returns true when the request is answered (or the client went away).
  auto try_tier = [&](size_t i, bool final) -> bool {
    const TierConfig& tier = tiers[i];
    Attempt a;
    a.tier = tier.name;
    const auto ta = Clock::now();
    auto judge = [&](Signals s) { return final ? std::nullopt : escalation_reason(tier.thresholds, s); };

    if (tier.kind == TierConfig::Kind::kLocal) {
      const bool early = req.stream && !structured(req) && config_.hold_tokens > 0;
      Gate gate(final, early ? config_.hold_tokens : 0, on_text,
                [&](const SignalMeter& m, const std::string& text) {
                  Signals s = m.signals(false);
                  s.refusal = rules_->is_refusal(text);
                  return judge(s);
                });
      auto r = local.run(tier.model, req.choice, gate, cancel);
      a.ms = ms_since(ta);
      if (!r.ok()) {
        a.outcome = "failed";
        a.reason = r.error();
        rec.attempts.push_back(std::move(a));
        return false;
      }
      a.prompt_tokens = r->prompt_tokens;
      a.output_tokens = r->output_tokens;
      a.cost_usd = cost_of(tier, r->prompt_tokens, r->output_tokens);
      Signals s = gate.meter().signals(req.choice);
      s.truncated = r->done_reason == "length";
      if (req.grammar) s.invalid = s.truncated || !constrain::accepts(*req.grammar, gate.full_text());
      if (!structured(req)) s.refusal = rules_->is_refusal(gate.full_text());
      a.signals = s;
      if (gate.client_gone() || (cancelled() && !gate.early_reason())) {
        a.outcome = "answered";
        a.reason = "client went away";
        rec.attempts.push_back(std::move(a));
        finish(i, gate.full_text(), "cancel", r->prompt_tokens, r->output_tokens);
        return true;
      }
      std::optional<std::string> reason = gate.early_reason();
      if (!reason && !gate.committed()) reason = judge(s);
      if (reason) {
        a.outcome = "escalated";
        a.reason = *reason;
        rec.attempts.push_back(std::move(a));
        if (!gate.early_reason()) {  // a whole answer: the latest is the best fallback
          held = Held{i, gate.full_text(), r->done_reason, r->prompt_tokens, r->output_tokens};
        }
        return false;
      }
      if (!gate.committed() && !gate.commit()) {  // held back whole: send it now
        a.outcome = "answered";
        a.reason = "client went away";
        rec.attempts.push_back(std::move(a));
        finish(i, gate.full_text(), "cancel", r->prompt_tokens, r->output_tokens);
        return true;
      }
      a.outcome = "answered";
      rec.attempts.push_back(std::move(a));
      finish(i, gate.full_text(), r->done_reason, r->prompt_tokens, r->output_tokens);
      return true;
    }

    // Remote tier (a request it cannot honour, e.g. a grammar for a foreign API, skips it).
    auto prepared = prepare_upstream_request(req.openai_body, tier, !final);
    if (!prepared.ok()) {
      a.outcome = "skipped";
      a.reason = prepared.error();
      rec.attempts.push_back(std::move(a));
      return false;
    }
    auto reply = upstreams_[i]->chat(prepared->body, cancel);
    Result<UpstreamAnswer> ans =
        reply.ok() ? read_upstream_answer(reply->body, *prepared) : Result<UpstreamAnswer>(Status::error(reply.error()));
    a.ms = ms_since(ta);
    if (!ans.ok()) {
      a.outcome = "failed";
      a.reason = ans.error();
      rec.attempts.push_back(std::move(a));
      return false;
    }
    std::string text = ans->text;
    if (!ans->tool_calls.is_null() && !ans->tool_calls.empty() && req.tool_calls_text)
      text = req.tool_calls_text(ans->tool_calls);
    a.prompt_tokens = ans->prompt_tokens;
    a.output_tokens = ans->completion_tokens;
    a.cost_usd = cost_of(tier, ans->prompt_tokens, ans->completion_tokens);
    Signals s;
    s.n_tokens = ans->n_logprobs;
    s.mean_logprob = ans->mean_logprob;
    s.min_logprob = ans->min_logprob;
    s.truncated = ans->finish_reason == "length";
    s.invalid = structured(req) && (s.truncated || !remote_answer_valid(req, text));
    if (!structured(req)) s.refusal = rules_->is_refusal(text);
    a.signals = s;
    const std::string done = s.truncated ? "length" : "stop";
    if (auto reason = judge(s)) {
      a.outcome = "escalated";
      a.reason = *reason;
      rec.attempts.push_back(std::move(a));
      held = Held{i, text, done, ans->prompt_tokens, ans->completion_tokens};
      return false;
    }
    a.outcome = "answered";
    rec.attempts.push_back(std::move(a));
    const bool sent = text.empty() || on_text(text);
    finish(i, text, sent ? done : "cancel", ans->prompt_tokens, ans->completion_tokens);
    return true;
  };

  bool answered = false;
  for (size_t i = first; i <= last && !answered && !cancelled(); ++i) answered = try_tier(i, i == last);
  if (!answered && !cancelled() && held) {
    // Every tier above it failed: the escalated answer beats no answer.
    const bool sent = held->text.empty() || on_text(held->text);
    for (Attempt& x : rec.attempts) {
      if (x.tier == tiers[held->tier].name && x.outcome == "escalated") {
        x.outcome = "answered";
        x.reason = "fallback (" + x.reason + "; the tiers above failed)";
      }
    }
    finish(held->tier, held->text, sent ? held->done_reason : "cancel", held->prompt_tokens,
           held->output_tokens);
    answered = true;
  }
  // Tiers below the start (a rule skipped them): tried last, each as the final one.
  for (size_t i = first; i-- > 0 && !answered && !cancelled();) answered = try_tier(i, true);

  rec.latency_ms = ms_since(t0);
  for (const Attempt& a : rec.attempts) rec.cost_usd += a.cost_usd;
  rec.top_tier_cost_usd = cost_of(tiers.back(), rec.prompt_tokens, rec.output_tokens);
  if (!answered && cancelled()) {
    out.done_reason = "cancel";
    out.record = rec;
    account(rec);
    return out;
  }
  out.record = rec;
  account(rec);
  if (!answered) {
    std::string msg = "router '" + config_.name + "': no tier could answer:";
    for (const Attempt& a : rec.attempts) msg += " [" + a.tier + ": " + a.outcome + ", " + a.reason + "]";
    return Status::error(msg);
  }
  return out;
}

void Router::account(const RouteRecord& r) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++requests_;
    if (r.tier_index < 0) ++unanswered_;
    top_tier_cost_usd_ += r.top_tier_cost_usd;
    for (const Attempt& a : r.attempts) {
      for (size_t i = 0; i < config_.tiers.size(); ++i) {
        if (config_.tiers[i].name != a.tier) continue;
        TierStats& s = stats_[i];
        if (a.outcome == "answered") ++s.answered;
        else if (a.outcome == "escalated") ++s.escalated;
        else if (a.outcome == "failed") ++s.failed;
        else if (a.outcome == "skipped") ++s.skipped;
        s.prompt_tokens += uint64_t(a.prompt_tokens);
        s.output_tokens += uint64_t(a.output_tokens);
        s.cost_usd += a.cost_usd;
      }
    }
  }
  std::string path = config_.log_path;
  if (path.empty()) return;
  const std::string line = route_record_json(r).dump(-1, ' ', false,
                                                     nlohmann::json::error_handler_t::replace) + "\n";
  std::lock_guard<std::mutex> lock(log_mu_);
  std::error_code ec;
  const auto dir = std::filesystem::path(path).parent_path();
  if (!dir.empty()) std::filesystem::create_directories(dir, ec);
  if (FILE* f = std::fopen(path.c_str(), "a")) {
    std::fwrite(line.data(), 1, line.size(), f);
    std::fclose(f);
  } else {
    static bool warned = false;
    if (!warned) std::fprintf(stderr, "minnow: router: cannot append to %s\n", path.c_str());
    warned = true;
  }
}

std::string Router::render_metrics() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string o;
  char b[512];
  const std::string router = config_.name;
  auto line = [&](const char* fmt_, auto... args) {
    std::snprintf(b, sizeof b, fmt_, args...);
    o += b;
  };
  o += "# HELP minnow_router_requests_total Requests to the router.\n";
  o += "# TYPE minnow_router_requests_total counter\n";
  line("minnow_router_requests_total{router=\"%s\"} %llu\n", router.c_str(),
       (unsigned long long)requests_);
  line("minnow_router_unanswered_total{router=\"%s\"} %llu\n", router.c_str(),
       (unsigned long long)unanswered_);
  const char* names[] = {"answered", "escalated", "failed", "skipped"};
  for (int k = 0; k < 4; ++k) {
    o += std::string("# TYPE minnow_router_") + names[k] + "_total counter\n";
    for (size_t i = 0; i < stats_.size(); ++i) {
      const TierStats& s = stats_[i];
      const uint64_t v = k == 0 ? s.answered : k == 1 ? s.escalated : k == 2 ? s.failed : s.skipped;
      line("minnow_router_%s_total{router=\"%s\",tier=\"%s\",local=\"%s\"} %llu\n", names[k],
           router.c_str(), config_.tiers[i].name.c_str(),
           config_.tiers[i].kind == TierConfig::Kind::kLocal ? "true" : "false",
           (unsigned long long)v);
    }
  }
  o += "# TYPE minnow_router_tokens_total counter\n";
  for (size_t i = 0; i < stats_.size(); ++i) {
    line("minnow_router_tokens_total{router=\"%s\",tier=\"%s\",kind=\"prompt\"} %llu\n",
         router.c_str(), config_.tiers[i].name.c_str(), (unsigned long long)stats_[i].prompt_tokens);
    line("minnow_router_tokens_total{router=\"%s\",tier=\"%s\",kind=\"output\"} %llu\n",
         router.c_str(), config_.tiers[i].name.c_str(), (unsigned long long)stats_[i].output_tokens);
  }
  o += "# TYPE minnow_router_cost_usd_total counter\n";
  for (size_t i = 0; i < stats_.size(); ++i) {
    line("minnow_router_cost_usd_total{router=\"%s\",tier=\"%s\"} %.9g\n", router.c_str(),
         config_.tiers[i].name.c_str(), stats_[i].cost_usd);
  }
  o += "# HELP minnow_router_top_tier_cost_usd_total What the answered tokens would have cost at the last tier's prices.\n";
  o += "# TYPE minnow_router_top_tier_cost_usd_total counter\n";
  line("minnow_router_top_tier_cost_usd_total{router=\"%s\"} %.9g\n", router.c_str(),
       top_tier_cost_usd_);
  o += "# HELP minnow_router_circuit_open Whether a remote tier's circuit breaker is open (1) or half-open (0.5).\n";
  o += "# TYPE minnow_router_circuit_open gauge\n";
  for (size_t i = 0; i < upstreams_.size(); ++i) {
    if (!upstreams_[i]) continue;
    const auto st = upstreams_[i]->breaker_state();
    line("minnow_router_circuit_open{router=\"%s\",tier=\"%s\"} %s\n", router.c_str(),
         config_.tiers[i].name.c_str(),
         st == Upstream::BreakerState::kOpen       ? "1"
         : st == Upstream::BreakerState::kHalfOpen ? "0.5"
                                                   : "0");
  }
  return o;
}

}  // namespace minnow::router
