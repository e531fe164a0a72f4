#include "server/job.h"

#include "server/metrics.h"

namespace minnow::server {

namespace {
using SteadyClock = std::chrono::steady_clock;
}

Result<JobResult> run_job(ModelManager& models, const GenerationJob& job,
                          const std::function<bool(std::string_view)>& on_text,
                          const TokenFn& on_token, const std::atomic<bool>* cancel) {
  const auto t0 = SteadyClock::now();
  Metrics& stats = metrics();
  ++stats.queued;
  auto lease = models.acquire(job.model, job.num_ctx);
  --stats.queued;
  if (!lease.ok()) return Status::error(lease.error());
  LoadedModel& m = **lease;
  JobResult r;
  r.load_ms = lease->load_ms();

  std::string text;
  if (job.chat || !job.raw) {
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
  ++stats.running;
  auto g = m.session->generate(r.prompt_tokens, job.gen, on_text, token_fn, cancel);
  --stats.running;
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
  for (const std::string& input : inputs) {
    auto ids = m.model->tokenizer()->tokenize(input, true, false);
    if (!ids.ok()) {
      error = Status::error(ids.error());
      break;
    }
    if (truncate && ids->size() > size_t(m.session->n_ctx())) ids->resize(m.session->n_ctx());
    auto e = m.session->embed(*ids);
    if (!e.ok()) {
      error = Status::error(e.error());
      break;
    }
    r.prompt_tokens += int(ids->size());
    r.embeddings.push_back(std::move(*e));
  }
  models.release(std::move(*lease), keep_alive);
  if (!error.ok()) return error;
  metrics().prompt_tokens += uint64_t(r.prompt_tokens);
  r.total_ms = std::chrono::duration<double, std::milli>(SteadyClock::now() - t0).count();
  return r;
}

}  // namespace minnow::server
