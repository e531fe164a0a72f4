#include "server/job.h"

#include "server/metrics.h"
#include "router/upstream.h"
#include "server/tools.h"
#include "store/registry.h"

namespace minnow::server {

namespace {
using SteadyClock = std::chrono::steady_clock;

std::atomic<int64_t> g_request_limit{0};
std::atomic<int> g_request_timeout_s{0};

}  // namespace

std::atomic<int64_t>& in_flight() {
  static std::atomic<int64_t> n{0};
  return n;
}
void set_request_limit(int64_t limit) { g_request_limit = limit; }
int64_t request_limit() { return g_request_limit.load(); }
void set_request_timeout_s(int seconds) { g_request_timeout_s = seconds; }

Result<Admission> admit_request() {
  const int64_t limit = request_limit();
  int64_t n = in_flight().load();
  do {
    if (limit > 0 && n >= limit) {
      return Status::error(std::string(kBusyPrefix) + std::to_string(n) +
                           " requests are running or queued (MINNOW_MAX_QUEUE waiting at most)");
    }
  } while (!in_flight().compare_exchange_weak(n, n + 1));
  // A real object (a shared_ptr to nullptr would test false and look like no admission).
  struct Slot {
    ~Slot() { --in_flight(); }
  };
  return Admission(std::make_shared<Slot>());
}

namespace {

std::shared_ptr<router::Router>& router_slot() {
  static std::shared_ptr<router::Router> r;
  return r;
}

}  // namespace

void set_router(std::shared_ptr<router::Router> router) { router_slot() = std::move(router); }
router::Router* active_router() { return router_slot().get(); }
bool model_known(const std::string& name) {
  if (router::Router* r = active_router(); r && r->name() == name) return true;
  return store::resolve_model(name).ok();
}

namespace {

// The job's place among the requests in flight: the handler's, else a new one.
Result<Admission> admission_of(const GenerationJob& job) {
  if (job.admission) return job.admission;
  return admit_request();
}

Result<JobResult> run_model_job(ModelManager& models, const GenerationJob& job,
                                const std::function<bool(std::string_view)>& on_text,
                                const TokenFn& on_token, const std::atomic<bool>* cancel) {
  const auto t0 = SteadyClock::now();
  auto admission = admission_of(job);
  if (!admission.ok()) return Status::error(admission.error());
  Metrics& stats = metrics();
  auto lease = models.acquire(job.model, job.num_ctx, job.num_thread);
  if (!lease.ok()) return Status::error(lease.error());
  LoadedModel& m = **lease;
  JobResult r;
  r.load_ms = lease->load_ms();

  std::string text;
  if (job.go_template && (job.chat || !job.raw)) {
    // Ollama's way: the messages (a completion: its system and prompt) through the Go template.
    std::vector<text::GoTemplate::Message> msgs;
    if (job.chat) {
      for (const auto& m2 : job.messages) msgs.emplace_back(m2.role, m2.content);
    } else {
      if (!job.system.empty()) msgs.emplace_back("system", job.system);
      msgs.emplace_back("user", job.prompt);
    }
    auto rendered = job.go_template->render_ollama(msgs, "");
    if (!rendered.ok()) {
      models.release(std::move(*lease), job.keep_alive);
      return Status::error("template: " + rendered.error());
    }
    text = std::move(*rendered);
  } else if (job.chat || !job.raw) {
    std::vector<engine::ChatMessage> msgs = job.messages;
    if (!job.chat) {
      if (!job.system.empty()) msgs.push_back({"system", job.system});
      msgs.push_back({"user", job.prompt});
    }
    if (!m.chat_template) {
      models.release(std::move(*lease), job.keep_alive);
      return Status::error(m.path + ": no chat template could be made for this model");
    }
    auto rendered = engine::render_chat(*m.chat_template, msgs, true);
    if (!rendered.ok()) {
      models.release(std::move(*lease), job.keep_alive);
      return Status::error(rendered.error());
    }
    text = std::move(*rendered);
  } else {
    text = job.prompt;
  }
  auto ids = engine::tokenize_prompt(*m.model, text);
  if (!ids.ok()) {
    models.release(std::move(*lease), job.keep_alive);
    return Status::error(ids.error());
  }
  r.prompt_tokens = job.context;
  r.prompt_tokens.insert(r.prompt_tokens.end(), ids->begin(), ids->end());
  const text::Tokenizer& tok = *m.model->tokenizer();
  SteadyClock::time_point last_token;
  bool first = true;
  std::function<bool(const engine::TokenEvent&)> token_fn = [&](const engine::TokenEvent& e) {
    const auto now = SteadyClock::now();
    if (first)
      stats.ttft.observe(std::chrono::duration<double>(now - t0).count());
    else
      stats.inter_token.observe(std::chrono::duration<double>(now - last_token).count());
    first = false;
    last_token = now;
    return on_token ? on_token(e, tok.piece(e.token, false), tok) : true;
  };
  engine::GenerateOptions gen = job.gen;
  gen.alive = job.alive;
  std::unique_ptr<constrain::GrammarConstraint> constraint;
  if (job.grammar) {
    auto c = constrain::GrammarConstraint::create(job.grammar, m.constraint_vocab());
    if (!c.ok()) {
      models.release(std::move(*lease), job.keep_alive);
      return Status::error(c.error());
    }
    constraint = std::move(*c);
    gen.constraint = constraint.get();
  }
  if (g_request_timeout_s.load() > 0) gen.timeout_s = g_request_timeout_s.load();
  auto g = m.scheduler->generate(r.prompt_tokens, gen, on_text, token_fn, cancel);
  if (g.ok()) {
    stats.prompt_tokens += uint64_t(g->prompt_evaluated);
    stats.generated_tokens += uint64_t(g->generated_tokens);
  }
  models.release(std::move(*lease), job.keep_alive);
  if (!g.ok()) return Status::error(g.error());
  r.gen = std::move(*g);
  r.total_ms = std::chrono::duration<double, std::milli>(SteadyClock::now() - t0).count();
  return r;
}

// The router's local tiers: the same job on another model.
class JobRunner : public router::LocalRunner {
 public:
  JobRunner(ModelManager& models, const GenerationJob& job, Admission admission)
      : models_(models), job_(job), admission_(std::move(admission)) {}

  Result<router::LocalResult> run(const std::string& model, bool want_mass,
                                  router::TokenSink& sink,
                                  const std::atomic<bool>* cancel) override {
    GenerationJob j = job_;
    j.model = model;
    j.context.clear();  // another model's tokens mean nothing here
    j.admission = admission_;
    j.gen.sampling.constraint_mass = want_mass;
    auto r = run_model_job(
        models_, j, [&](std::string_view p) { return sink.text(p); },
        [&](const engine::TokenEvent& e, std::string_view, const text::Tokenizer&) {
          return sink.token(e.sample->logprob, e.sample->allowed_mass,
                            e.sample->token == sampling::kNoToken);
        },
        cancel);
    if (!r.ok()) return Status::error(r.error());
    load_ms += r->load_ms;
    return router::LocalResult{r->gen.prompt_tokens, r->gen.generated_tokens, r->gen.done_reason};
  }
  double load_ms = 0;

 private:
  ModelManager& models_;
  const GenerationJob& job_;
  Admission admission_;
};

// What the rules look at, from the client's body.
router::RequestFeatures features_of(const GenerationJob& job, const Json& body) {
  router::RequestFeatures f;
  f.tag = job.tag;
  f.has_tools = job.tools;
  auto has = [&](const char* k) { return body.contains(k) && !body[k].is_null(); };
  std::string task = job.chat ? "chat" : "completion";
  if (job.tools) {
    task = "tools";
  } else if (has("choice")) {
    task = "choice";
  } else if (has("grammar")) {
    task = "grammar";
  } else if (has("regex")) {
    task = "regex";
  } else if (has("format")) {
    task = body["format"].is_object() ? "schema" : "json";
  } else if (has("response_format") && body["response_format"].is_object()) {
    const std::string t = body["response_format"].value("type", "");
    if (t == "json_schema") task = "schema";
    if (t == "json_object") task = "json";
  }
  f.task = task;
  f.has_schema = task != "chat" && task != "completion" && task != "tools";
  if (job.chat) {
    for (const auto& m : job.messages) {
      f.prompt_chars += m.content.size();
      if (m.role == "user") f.text = m.content;
    }
  } else {
    f.text = job.prompt;
    f.prompt_chars = job.prompt.size() + job.system.size();
  }
  return f;
}

Result<JobResult> run_routed(router::Router& router, ModelManager& models,
                             const GenerationJob& job,
                             const std::function<bool(std::string_view)>& on_text,
                             const std::atomic<bool>* cancel) {
  const auto t0 = SteadyClock::now();
  auto admission = admission_of(job);
  if (!admission.ok()) return Status::error(admission.error());
  static const Json kEmpty = Json::object();
  const Json& body = job.body ? *job.body : kEmpty;
  router::RouteRequest req;
  req.features = features_of(job, body);
  const nlohmann::json plain = nlohmann::json::parse(body.dump());
  if (job.api == "ollama") {
    req.openai_body = router::openai_chat_from_ollama(plain, job.chat);
  } else if (!job.chat) {
    req.openai_body = router::openai_chat_from_completion(plain);
  } else {
    req.openai_body = plain;
  }
  req.grammar = job.grammar;
  req.choice = req.features.task == "choice";
  req.tools = job.tools;
  req.tool_calls_text = [](const nlohmann::json& calls) {
    return tool_calls_as_text(Json::parse(calls.dump()));
  };
  req.stream = job.stream;
  req.api = job.api;
  JobRunner runner(models, job, *admission);
  auto out = router.route(req, runner, on_text, cancel);
  if (!out.ok()) return Status::error(out.error());
  JobResult r;
  r.gen.done_reason = out->done_reason.empty() ? "stop" : out->done_reason;
  r.gen.prompt_tokens = out->prompt_tokens;
  r.gen.generated_tokens = out->output_tokens;
  r.load_ms = runner.load_ms;
  r.total_ms = std::chrono::duration<double, std::milli>(SteadyClock::now() - t0).count();
  r.gen.generate_ms = r.total_ms;
  r.route = std::move(out->record);
  return r;
}

}  // namespace

Result<JobResult> run_job(ModelManager& models, const GenerationJob& job,
                          const std::function<bool(std::string_view)>& on_text,
                          const TokenFn& on_token, const std::atomic<bool>* cancel) {
  if (router::Router* r = active_router(); r && job.model == r->name())
    return run_routed(*r, models, job, on_text, cancel);
  return run_model_job(models, job, on_text, on_token, cancel);
}

Result<EmbedResult> run_embed(ModelManager& models, const std::string& model,
                              const std::vector<std::string>& inputs, bool truncate, int num_ctx,
                              std::optional<std::chrono::seconds> keep_alive) {
  const auto t0 = SteadyClock::now();
  auto lease = models.acquire(model, num_ctx);
  if (!lease.ok()) return Status::error(lease.error());
  LoadedModel& m = **lease;
  EmbedResult r;
  r.load_ms = lease->load_ms();
  Status error;
  {
    std::lock_guard<std::mutex> one_at_a_time(m.embed_mu);
    if (!m.embed_session) {
      model::ContextOptions opts;
      opts.n_ctx = m.num_ctx;
      auto s = engine::Session::create(*m.model, m.own_pool ? *m.own_pool : models.pool(), opts);
      if (s.ok())
        m.embed_session = std::move(*s);
      else
        error = Status::error(s.error());
    }
    for (const std::string& input : inputs) {
      if (!error.ok()) break;
      auto ids = m.model->tokenizer()->tokenize(input, true, false);
      if (!ids.ok()) {
        error = Status::error(ids.error());
        break;
      }
      const size_t n_ctx = size_t(m.embed_session->n_ctx());
      if (truncate && ids->size() > n_ctx) ids->resize(n_ctx);
      auto e = m.embed_session->embed(*ids);
      if (!e.ok()) {
        error = Status::error(e.error());
        break;
      }
      r.prompt_tokens += int(ids->size());
      r.embeddings.push_back(std::move(*e));
    }
  }
  models.release(std::move(*lease), keep_alive);
  if (!error.ok()) return error;
  metrics().prompt_tokens += uint64_t(r.prompt_tokens);
  r.total_ms = std::chrono::duration<double, std::milli>(SteadyClock::now() - t0).count();
  return r;
}

}  // namespace minnow::server
