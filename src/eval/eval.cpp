#include "eval/eval.h"

#include <chrono>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "constrain/constrain.h"
#include "constrain/json_schema.h"
#include "engine/session.h"
#include "model/model.h"
#include "router/router.h"
#include "store/registry.h"
#include "util/thread_pool.h"

namespace minnow::eval {

namespace {

using Json = nlohmann::json;

uint64_t rss_bytes() {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  }
  return 0;
}

}  // namespace

std::vector<CloudPrice> default_cloud_prices() {
  return {{"gpt-4o-mini", 0.15, 0.60},
          {"gpt-4o", 2.50, 10.00},
          {"claude-3.5-haiku", 0.80, 4.00},
          {"gemini-1.5-flash", 0.075, 0.30}};
}

Result<std::vector<Task>> load_tasks(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::error(path + ": cannot open the task file");
  std::vector<Task> tasks;
  int line_no = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = path + ":" + std::to_string(line_no) + ": ";
    const Json j = Json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return Status::error(where + "not a JSON object");
    Task t;
    t.id = j.contains("id") && j["id"].is_string() ? j["id"].get<std::string>()
                                                   : "line-" + std::to_string(line_no);
    if (j.contains("messages")) {
      if (!j["messages"].is_array() || j["messages"].empty())
        return Status::error(where + "'messages' must be a non-empty list");
      for (const Json& m : j["messages"]) {
        if (!m.is_object() || !m.contains("role") || !m["role"].is_string() ||
            !m.contains("content") || !m["content"].is_string())
          return Status::error(where + "each message needs a string 'role' and 'content'");
        t.messages.push_back({m["role"].get<std::string>(), m["content"].get<std::string>()});
      }
    } else if (j.contains("prompt") && j["prompt"].is_string()) {
      t.prompt = j["prompt"].get<std::string>();
    } else {
      return Status::error(where + "needs 'messages' or 'prompt'");
    }
    if (!j.contains("expected")) return Status::error(where + "needs 'expected'");
    t.expected = j["expected"].is_string() ? j["expected"].get<std::string>() : j["expected"].dump();
    if (j.contains("choices")) {
      if (!j["choices"].is_array() || j["choices"].empty())
        return Status::error(where + "'choices' must be a non-empty list of strings");
      for (const Json& c : j["choices"]) {
        if (!c.is_string() || c.get<std::string>().empty())
          return Status::error(where + "'choices' must be a non-empty list of strings");
        t.choices.push_back(c.get<std::string>());
      }
      t.metric = Metric::kExact;
    }
    if (j.contains("schema")) {
      if (!j["schema"].is_object()) return Status::error(where + "'schema' must be an object");
      t.schema = j["schema"].dump();
      t.metric = Metric::kJsonFields;
    }
    if (j.contains("metric")) {
      if (!j["metric"].is_string() || !parse_metric(j["metric"].get<std::string>(), t.metric))
        return Status::error(where + "unknown 'metric' (exact, normalized_exact, contains, f1, "
                                     "json_fields, json_valid)");
    }
    tasks.push_back(std::move(t));
  }
  if (tasks.empty()) return Status::error(path + ": no tasks");
  return tasks;
}

namespace {

// The grammar a task's answer is held to (choices: one of them; schema: such JSON), or null.
Result<std::shared_ptr<const constrain::Grammar>> task_grammar(const Task& t) {
  static std::mutex mu;
  static std::map<std::string, std::shared_ptr<const constrain::Grammar>> cache;  // by GBNF
  std::string gbnf;
  if (!t.choices.empty()) {
    gbnf = constrain::choice_to_gbnf(t.choices);
  } else if (!t.schema.empty()) {
    auto g = constrain::json_schema_to_gbnf(t.schema);
    if (!g.ok()) return Status::error(g.error());
    gbnf = *g;
  } else {
    return std::shared_ptr<const constrain::Grammar>();
  }
  std::lock_guard<std::mutex> lock(mu);
  auto& g = cache[gbnf];
  if (!g) {
    auto parsed = constrain::Grammar::parse(gbnf);
    if (!parsed.ok()) return Status::error(parsed.error());
    g = *parsed;
  }
  return g;
}

std::vector<engine::ChatMessage> task_messages(const Task& t) {
  std::vector<engine::ChatMessage> msgs = t.messages;
  if (msgs.empty()) msgs.push_back({"user", t.prompt});
  return msgs;
}

// A model loaded once, answering tasks greedily under their format.
class LocalModel {
 public:
  static Result<std::unique_ptr<LocalModel>> load(const std::string& name, const EvalOptions& o) {
    auto resolved = store::resolve_model(name);
    if (!resolved.ok()) return Status::error(resolved.error());
    auto lm = std::unique_ptr<LocalModel>(new LocalModel());
    lm->name = name;
    auto m = model::Model::load(resolved->path);
    if (!m.ok()) return Status::error(m.error());
    lm->model_ = std::move(*m);
    auto tmpl = engine::chat_template_for(*lm->model_);
    if (!tmpl.ok()) return Status::error(tmpl.error());
    lm->tmpl_.emplace(std::move(*tmpl));
    const unsigned hw = std::thread::hardware_concurrency();
    lm->pool_ = std::make_unique<ThreadPool>(o.threads > 0 ? o.threads : int(hw == 0 ? 1 : hw));
    model::ContextOptions copts;
    copts.n_ctx = 4096;
    auto session = engine::Session::create(*lm->model_, *lm->pool_, copts);
    if (!session.ok()) return Status::error(session.error());
    lm->session_ = std::move(*session);
    lm->vocab_ = constrain::Vocab::from_tokenizer(*lm->model_->tokenizer());
    return lm;
  }

  // want_mass: the allowed mass of each step (choice confidence); sink sees tokens and text.
  Result<engine::GenerateResult> answer(const Task& t, const EvalOptions& o, bool want_mass,
                                        std::string& text, router::TokenSink* sink,
                                        const std::atomic<bool>* cancel) {
    auto grammar = task_grammar(t);
    if (!grammar.ok()) return Status::error(grammar.error());
    std::unique_ptr<constrain::GrammarConstraint> constraint;
    if (*grammar) {
      auto c = constrain::GrammarConstraint::create(*grammar, vocab_);
      if (!c.ok()) return Status::error(c.error());
      constraint = std::move(*c);
    }
    auto rendered = engine::render_chat(*tmpl_, task_messages(t), true);
    if (!rendered.ok()) return Status::error(rendered.error());
    auto ids = engine::tokenize_prompt(*model_, *rendered);
    if (!ids.ok()) return Status::error(ids.error());
    engine::GenerateOptions g;
    g.sampling.temperature = 0;
    g.sampling.repeat_penalty = 1.0f;
    g.sampling.constraint_mass = want_mass && constraint;
    g.num_predict = o.max_tokens;
    g.constraint = constraint.get();
    return session_->generate(
        *ids, g,
        [&](std::string_view p) {
          text += p;
          return sink ? sink->text(p) : true;
        },
        [&](const engine::TokenEvent& e) {
          return sink ? sink->token(e.sample->logprob, e.sample->allowed_mass,
                                    e.sample->token == sampling::kNoToken)
                      : true;
        },
        cancel);
  }

  std::string name;
  uint64_t n_params() const { return model_->n_params(); }
  double load_ms() const { return model_->load_ms(); }

 private:
  LocalModel() = default;
  std::unique_ptr<model::Model> model_;
  std::optional<text::ChatTemplate> tmpl_;
  std::unique_ptr<ThreadPool> pool_;
  std::unique_ptr<engine::Session> session_;
  std::shared_ptr<const constrain::Vocab> vocab_;
};

// Fills the format check of a scored result.
void check_format(const Task& t, TaskResult& tr) {
  if (!t.choices.empty())
    tr.format_ok = std::find(t.choices.begin(), t.choices.end(), tr.answer) != t.choices.end();
  else if (!t.schema.empty() || t.metric == Metric::kJsonFields || t.metric == Metric::kJsonValid)
    tr.format_ok = score(Metric::kJsonValid, tr.answer, "") == 1;
}

// The report's figures from its results. busy_s: seconds spent answering; gen_*: decode only.
void summarize(ModelReport& rep, const EvalOptions& o, double busy_s, double gen_ms,
               int gen_tokens) {
  const double n = double(rep.results.size());
  rep.n_tasks = int(rep.results.size());
  if (n == 0) return;
  std::vector<double> ttft, total;
  double full = 0, sum = 0, valid = 0, in_tok = 0, out_tok = 0, priced = 0, escalated = 0;
  std::map<std::string, double> share;
  for (const TaskResult& r : rep.results) {
    sum += r.score;
    full += r.score >= 1 ? 1 : 0;
    valid += r.format_ok ? 1 : 0;
    ttft.push_back(r.ttft_ms);
    total.push_back(r.total_ms);
    in_tok += r.prompt_tokens;
    out_tok += r.output_tokens;
    priced += r.priced_cost_usd;
    escalated += r.escalated ? 1 : 0;
    if (!r.tier.empty()) share[r.tier] += 1 / n;
  }
  rep.accuracy = sum / n;
  rep.accuracy_ci = wilson95(full, n);
  rep.format_validity = valid / n;
  rep.ttft_p50_ms = percentile(ttft, 0.5);
  rep.ttft_p95_ms = percentile(ttft, 0.95);
  rep.total_p50_ms = percentile(total, 0.5);
  rep.total_p95_ms = percentile(total, 0.95);
  rep.tokens_per_s = gen_ms > 0 ? gen_tokens / (gen_ms / 1000) : 0;
  rep.mean_prompt_tokens = in_tok / n;
  rep.mean_output_tokens = out_tok / n;
  rep.tier_share = share;
  rep.escalation_rate = escalated / n;
  rep.priced_cost_per_1k = 1000 * priced / n;
  // 1,000 requests: energy of the time spent (plus amortized hardware) locally; the same
  // token counts at each cloud price.
  const double hours_per_1k = busy_s / n * 1000 / 3600;
  rep.local_cost_per_1k = hours_per_1k * (o.watts / 1000 * o.kwh_price + o.hardware_per_hour);
  for (const CloudPrice& p : o.cloud) {
    rep.cloud_cost_per_1k[p.name] =
        1000 * (rep.mean_prompt_tokens * p.input_per_m + rep.mean_output_tokens * p.output_per_m) /
        1e6;
  }
}

// The router's local tiers in eval: the current task on a model loaded once.
class EvalRunner : public router::LocalRunner {
 public:
  explicit EvalRunner(const EvalOptions& o) : o_(o) {}
  Result<router::LocalResult> run(const std::string& model, bool want_mass,
                                  router::TokenSink& sink,
                                  const std::atomic<bool>* cancel) override {
    auto& lm = models_[model];
    if (!lm) {
      auto l = LocalModel::load(model, o_);
      if (!l.ok()) return Status::error(l.error());
      lm = std::move(*l);
      n_params = std::max(n_params, lm->n_params());
      load_ms += lm->load_ms();
    }
    std::string text;
    auto r = lm->answer(*task, o_, want_mass, text, &sink, cancel);
    if (!r.ok()) return Status::error(r.error());
    gen_ms += r->generate_ms;
    gen_tokens += std::max(0, r->generated_tokens - 1);
    return router::LocalResult{r->prompt_tokens, r->generated_tokens, r->done_reason};
  }
  const Task* task = nullptr;
  uint64_t n_params = 0;
  double load_ms = 0, gen_ms = 0;
  int gen_tokens = 0;

 private:
  const EvalOptions& o_;
  std::map<std::string, std::unique_ptr<LocalModel>> models_;
};

// A task as an OpenAI chat request (remote tiers).
nlohmann::json task_request(const Task& t, const EvalOptions& o) {
  nlohmann::json msgs = nlohmann::json::array();
  for (const auto& m : task_messages(t)) msgs.push_back({{"role", m.role}, {"content", m.content}});
  nlohmann::json body{{"messages", msgs}, {"temperature", 0}, {"max_tokens", o.max_tokens}};
  if (!t.choices.empty()) body["choice"] = t.choices;
  if (!t.schema.empty()) {
    body["response_format"] = {
        {"type", "json_schema"},
        {"json_schema",
         {{"name", "answer"}, {"schema", nlohmann::json::parse(t.schema)}, {"strict", true}}}};
  }
  return body;
}

}  // namespace

Result<ModelReport> evaluate(const std::string& name, const std::vector<Task>& all_tasks,
                             const EvalOptions& o, const std::function<void(int, int)>& progress) {
  std::vector<Task> tasks = all_tasks;
  if (o.limit > 0 && size_t(o.limit) < tasks.size()) tasks.resize(size_t(o.limit));
  auto lm = LocalModel::load(name, o);
  if (!lm.ok()) return Status::error(lm.error());
  ModelReport rep;
  rep.model = name;
  rep.n_params = (*lm)->n_params();
  rep.load_ms = (*lm)->load_ms();
  rep.peak_rss_bytes = rss_bytes();
  double gen_ms = 0, busy_s = 0;
  int gen_tokens = 0;
  for (size_t i = 0; i < tasks.size(); ++i) {
    const Task& t = tasks[i];
    // Signals as the router would see them, so a model's report shows how sure it was.
    struct Meter : router::TokenSink {
      bool token(float lp, float mass, bool forced) override {
        m.add(lp, mass, forced);
        return true;
      }
      bool text(std::string_view) override { return true; }
      router::SignalMeter m;
    } meter;
    std::string answer;
    const auto t0 = std::chrono::steady_clock::now();
    auto r = (*lm)->answer(t, o, !t.choices.empty(), answer, &meter, nullptr);
    if (!r.ok()) return Status::error(name + ", task " + t.id + ": " + r.error());
    const double total_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    TaskResult tr;
    tr.id = t.id;
    tr.answer = answer;
    tr.expected = t.expected;
    tr.score = score(t.metric, answer, t.expected);
    check_format(t, tr);
    tr.signals = meter.m.signals(!t.choices.empty());
    tr.signals.truncated = r->done_reason == "length";
    tr.signals.invalid = !tr.format_ok || tr.signals.truncated;
    tr.ttft_ms = r->ttft_ms;
    tr.total_ms = total_ms;
    tr.prompt_tokens = r->prompt_tokens;
    tr.output_tokens = r->generated_tokens;
    tr.tier = name;
    gen_ms += r->generate_ms;
    gen_tokens += std::max(0, r->generated_tokens - 1);  // the first token is the prompt's
    busy_s += total_ms / 1000;
    rep.peak_rss_bytes = std::max(rep.peak_rss_bytes, rss_bytes());
    rep.results.push_back(std::move(tr));
    if (progress) progress(int(i + 1), int(tasks.size()));
  }
  summarize(rep, o, busy_s, gen_ms, gen_tokens);
  return rep;
}

Result<ModelReport> evaluate_router(const router::RouterConfig& config,
                                    const std::vector<Task>& all_tasks, const EvalOptions& o,
                                    const std::function<void(int, int)>& progress) {
  std::vector<Task> tasks = all_tasks;
  if (o.limit > 0 && size_t(o.limit) < tasks.size()) tasks.resize(size_t(o.limit));
  router::RouterConfig cfg = config;
  cfg.log_path.clear();  // an evaluation is not traffic
  auto router = router::Router::create(cfg);
  if (!router.ok()) return Status::error(router.error());
  EvalRunner runner(o);
  ModelReport rep;
  rep.model = cfg.tiers.size() == 1 ? cfg.tiers[0].name : cfg.name;
  double busy_s = 0;
  for (size_t i = 0; i < tasks.size(); ++i) {
    const Task& t = tasks[i];
    auto grammar = task_grammar(t);
    if (!grammar.ok()) return Status::error(rep.model + ", task " + t.id + ": " + grammar.error());
    router::RouteRequest req;
    const auto msgs = task_messages(t);
    req.features.task = !t.choices.empty() ? "choice" : !t.schema.empty() ? "schema" : "chat";
    req.features.has_schema = !t.choices.empty() || !t.schema.empty();
    for (const auto& m : msgs) {
      req.features.prompt_chars += m.content.size();
      if (m.role == "user") req.features.text = m.content;
    }
    req.openai_body = task_request(t, o);
    req.grammar = *grammar;
    req.choice = !t.choices.empty();
    req.api = "eval";
    runner.task = &t;
    std::string answer;
    const auto t0 = std::chrono::steady_clock::now();
    auto out = (*router)->route(
        req, runner,
        [&](std::string_view p) {
          answer += p;
          return true;
        },
        nullptr);
    const double total_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    TaskResult tr;
    tr.id = t.id;
    tr.expected = t.expected;
    tr.total_ms = tr.ttft_ms = total_ms;
    if (!out.ok()) {
      tr.failed = true;
      tr.format_ok = false;
      tr.answer.clear();
    } else {
      tr.answer = out->text;
      tr.score = score(t.metric, tr.answer, t.expected);
      check_format(t, tr);
      const router::RouteRecord& rec = out->record;
      tr.tier = rec.tier;
      tr.escalated = rec.escalated;
      tr.priced_cost_usd = rec.cost_usd;
      tr.prompt_tokens = out->prompt_tokens;
      tr.output_tokens = out->output_tokens;
      for (const router::Attempt& a : rec.attempts)
        if (a.tier == rec.tier) tr.signals = a.signals;
    }
    busy_s += total_ms / 1000;
    rep.peak_rss_bytes = std::max(rep.peak_rss_bytes, rss_bytes());
    rep.results.push_back(std::move(tr));
    if (progress) progress(int(i + 1), int(tasks.size()));
  }
  rep.n_params = runner.n_params;
  rep.load_ms = runner.load_ms;
  summarize(rep, o, busy_s, runner.gen_ms, runner.gen_tokens);
  return rep;
}

std::optional<size_t> recommend(const std::vector<ModelReport>& reports, double min_accuracy) {
  std::optional<size_t> best;
  for (size_t i = 0; i < reports.size(); ++i) {
    if (reports[i].accuracy + 1e-12 < min_accuracy) continue;
    if (!best || reports[i].n_params < reports[*best].n_params) best = i;
  }
  return best;
}

}  // namespace minnow::eval
