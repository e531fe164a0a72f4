#include "eval/eval.h"

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "constrain/constrain.h"
#include "constrain/json_schema.h"
#include "engine/session.h"
#include "model/model.h"
#include "store/registry.h"

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

Result<ModelReport> evaluate(const std::string& name, const std::vector<Task>& all_tasks,
                             const EvalOptions& o, const std::function<void(int, int)>& progress) {
  std::vector<Task> tasks = all_tasks;
  if (o.limit > 0 && size_t(o.limit) < tasks.size()) tasks.resize(size_t(o.limit));
  auto resolved = store::resolve_model(name);
  if (!resolved.ok()) return Status::error(resolved.error());
  auto m = model::Model::load(resolved->path);
  if (!m.ok()) return Status::error(m.error());
  const model::Model& model = **m;
  auto tmpl = engine::chat_template_for(model);
  if (!tmpl.ok()) return Status::error(tmpl.error());
  const unsigned hw = std::thread::hardware_concurrency();
  ThreadPool pool(o.threads > 0 ? o.threads : int(hw == 0 ? 1 : hw));
  model::ContextOptions copts;
  copts.n_ctx = 4096;
  auto session = engine::Session::create(model, pool, copts);
  if (!session.ok()) return Status::error(session.error());
  auto vocab = constrain::Vocab::from_tokenizer(*model.tokenizer());

  ModelReport rep;
  rep.model = name;
  rep.n_params = model.n_params();
  rep.load_ms = model.load_ms();
  rep.peak_rss_bytes = rss_bytes();
  double gen_ms = 0, busy_s = 0;
  int gen_tokens = 0;
  std::map<std::string, std::shared_ptr<const constrain::Grammar>> grammars;  // by GBNF
  for (size_t i = 0; i < tasks.size(); ++i) {
    const Task& t = tasks[i];
    const std::string where = name + ", task " + t.id + ": ";
    // The format the answer is held to.
    std::string gbnf;
    if (!t.choices.empty()) {
      gbnf = constrain::choice_to_gbnf(t.choices);
    } else if (!t.schema.empty()) {
      auto g = constrain::json_schema_to_gbnf(t.schema);
      if (!g.ok()) return Status::error(where + g.error());
      gbnf = *g;
    }
    std::unique_ptr<constrain::GrammarConstraint> constraint;
    if (!gbnf.empty()) {
      auto& g = grammars[gbnf];
      if (!g) {
        auto parsed = constrain::Grammar::parse(gbnf);
        if (!parsed.ok()) return Status::error(where + parsed.error());
        g = *parsed;
      }
      auto c = constrain::GrammarConstraint::create(g, vocab);
      if (!c.ok()) return Status::error(where + c.error());
      constraint = std::move(*c);
    }
    std::vector<engine::ChatMessage> msgs = t.messages;
    if (msgs.empty()) msgs.push_back({"user", t.prompt});
    auto text = engine::render_chat(*tmpl, msgs, true);
    if (!text.ok()) return Status::error(where + text.error());
    auto ids = engine::tokenize_prompt(model, *text);
    if (!ids.ok()) return Status::error(where + ids.error());
    engine::GenerateOptions g;
    g.sampling.temperature = 0;
    g.sampling.repeat_penalty = 1.0f;
    g.num_predict = o.max_tokens;
    g.constraint = constraint.get();
    std::string answer;
    const auto t0 = std::chrono::steady_clock::now();
    auto r = (*session)->generate(*ids, g, [&](std::string_view p) {
      answer += p;
      return true;
    });
    if (!r.ok()) return Status::error(where + r.error());
    const double total_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    TaskResult tr;
    tr.id = t.id;
    tr.answer = answer;
    tr.expected = t.expected;
    tr.score = score(t.metric, answer, t.expected);
    if (!t.choices.empty())
      tr.format_ok = std::find(t.choices.begin(), t.choices.end(), answer) != t.choices.end();
    else if (!t.schema.empty() || t.metric == Metric::kJsonFields || t.metric == Metric::kJsonValid)
      tr.format_ok = score(Metric::kJsonValid, answer, "") == 1;
    tr.ttft_ms = r->ttft_ms;
    tr.total_ms = total_ms;
    tr.prompt_tokens = r->prompt_tokens;
    tr.output_tokens = r->generated_tokens;
    gen_ms += r->generate_ms;
    gen_tokens += std::max(0, r->generated_tokens - 1);  // the first token is the prompt's
    busy_s += total_ms / 1000;
    rep.peak_rss_bytes = std::max(rep.peak_rss_bytes, rss_bytes());
    rep.results.push_back(std::move(tr));
    if (progress) progress(int(i + 1), int(tasks.size()));
  }

  const double n = double(rep.results.size());
  rep.n_tasks = int(rep.results.size());
  std::vector<double> ttft, total;
  double full = 0, sum = 0, valid = 0, in_tok = 0, out_tok = 0;
  for (const TaskResult& r : rep.results) {
    sum += r.score;
    full += r.score >= 1 ? 1 : 0;
    valid += r.format_ok ? 1 : 0;
    ttft.push_back(r.ttft_ms);
    total.push_back(r.total_ms);
    in_tok += r.prompt_tokens;
    out_tok += r.output_tokens;
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
  // 1,000 requests: energy of the time spent (plus amortized hardware) locally; the same
  // token counts at each cloud price.
  const double hours_per_1k = busy_s / n * 1000 / 3600;
  rep.local_cost_per_1k = hours_per_1k * (o.watts / 1000 * o.kwh_price + o.hardware_per_hour);
  for (const CloudPrice& p : o.cloud) {
    rep.cloud_cost_per_1k[p.name] =
        1000 * (rep.mean_prompt_tokens * p.input_per_m + rep.mean_output_tokens * p.output_per_m) /
        1e6;
  }
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
