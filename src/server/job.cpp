#include "server/job.h"

#include "server/metrics.h"

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

Result<JobResult> run_job(ModelManager& models, const GenerationJob& job,
                          const std::function<bool(std::string_view)>& on_text,
                          const TokenFn& on_token, const std::atomic<bool>* cancel) {
  const auto t0 = SteadyClock::now();
  Admission admission = job.admission;
  if (!admission) {
    auto a = admit_request();
    if (!a.ok()) return Status::error(a.error());
    admission = std::move(*a);
  }
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
