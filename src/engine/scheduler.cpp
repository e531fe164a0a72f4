#include "engine/scheduler.h"

#include <algorithm>
#include <chrono>
#include <string>

namespace minnow::engine {

namespace {
constexpr int kBlock = BlockPool::kBlock;
static_assert(kBlock == model::kSlotAlign, "a pool block is a context's slot group");
int blocks_for(int positions) { return (positions + kBlock - 1) / kBlock; }
}  // namespace

// What the worker hands back to the caller's thread.
struct Scheduler::Request {
  std::vector<int32_t> prompt;  // as given (prompt_tokens counts these)
  GenerateOptions options;
  const std::atomic<bool>* cancel = nullptr;
  std::atomic<bool> abandoned{false};  // the caller's callback said stop
  Generation::Clock::time_point t0;

  struct Event {
    enum Kind { kText, kToken, kDone } kind;
    std::string text;
    int32_t token = -1;
    sampling::SampleResult sample;
  };
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Event> events;
  Status error;
  GenerateResult result;

  void push(Event e) {
    {
      std::lock_guard<std::mutex> lk(mu);
      events.push_back(std::move(e));
    }
    cv.notify_one();
  }
  bool cancelled() const {
    return abandoned.load(std::memory_order_relaxed) ||
           (cancel && cancel->load(std::memory_order_relaxed));
  }
};

// A request in the worker: its tokens, blocks and generation.
struct Scheduler::Seq {
  std::shared_ptr<Request> req;
  std::unique_ptr<Generation> gen;
  std::vector<int32_t> tokens;   // the positions in order: the (fitted) prompt, then output
  int prompt_len = 0;
  int n_cached = 0;              // positions whose keys and values are in the pool
  int n_shared = 0;              // of which taken from the prefix cache
  int n_registered = 0;          // leading blocks in the prefix cache (shared or registered)
  std::vector<int32_t> blocks;   // physical block of each logical block
  std::vector<int32_t> pending;  // decode: tokens to evaluate next
  bool prefilled = false;
  bool finished = false;
};

Scheduler::Scheduler(const model::Model& model, std::unique_ptr<model::Context> ctx,
                     const SchedulerOptions& options)
    : model_(model), ctx_(std::move(ctx)), opts_(options), blocks_(ctx_->n_blocks()) {}

Result<std::unique_ptr<Scheduler>> Scheduler::create(const model::Model& model, ThreadPool& pool,
                                                     const SchedulerOptions& options) {
  SchedulerOptions o = options;
  if (o.n_ctx <= 0) return Status::error("num_ctx must be positive");
  o.max_seqs = std::clamp(o.max_seqs, 1, 256);
  o.n_batch = std::max(o.n_batch, o.max_seqs);
  model::ContextOptions copts;
  copts.paged = true;
  copts.n_seq = o.max_seqs;
  copts.n_batch = o.n_batch;
  copts.n_ctx_seq = blocks_for(o.n_ctx) * kBlock;
  // Every running sequence can grow to n_ctx whatever the others hold (see the header).
  copts.n_ctx = o.max_seqs * copts.n_ctx_seq;
  auto ctx = model::Context::create(model, pool, copts);
  if (!ctx.ok()) return Status::error(ctx.error());
  std::unique_ptr<Scheduler> s(new Scheduler(model, std::move(*ctx), o));
  s->stats_.blocks_total = s->blocks_.n_blocks();
  s->thread_ = std::thread([p = s.get()] { p->worker(); });
  return s;
}

Scheduler::~Scheduler() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

Scheduler::Stats Scheduler::stats() const {
  std::lock_guard<std::mutex> lk(mu_);
  return stats_;
}

Result<GenerateResult> Scheduler::generate(std::span<const int32_t> prompt,
                                           const GenerateOptions& options, const TextFn& on_text,
                                           const TokenFn& on_token,
                                           const std::atomic<bool>* cancel) {
  auto req = std::make_shared<Request>();
  req->t0 = Generation::Clock::now();
  req->prompt.assign(prompt.begin(), prompt.end());
  req->options = options;
  req->cancel = cancel;
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (stopping_) return Status::error("the model is being unloaded");
    submitted_.push_back(req);
  }
  wake_.notify_one();

  // Deliver the worker's events here, on the caller's thread.
  bool listening = true, timed_out = false;
  auto next_probe = Generation::Clock::now() + std::chrono::milliseconds(100);
  const bool has_deadline = options.timeout_s > 0;
  const auto deadline =
      req->t0 + std::chrono::duration_cast<Generation::Clock::duration>(
                    std::chrono::duration<double>(has_deadline ? options.timeout_s : 0));
  while (true) {
    // Events may come faster than every 100 ms: look at the client between them too.
    if (listening && options.alive && Generation::Clock::now() >= next_probe) {
      next_probe = Generation::Clock::now() + std::chrono::milliseconds(100);
      if (!options.alive()) {
        listening = false;
        if (!req->abandoned.exchange(true)) wake_.notify_one();
      }
    }
    Request::Event ev;
    {
      std::unique_lock<std::mutex> lk(req->mu);
      auto ready = [&] { return !req->events.empty(); };
      // Wake up at least every 100 ms to check the deadline and whether the client is there.
      const auto poll = Generation::Clock::now() + std::chrono::milliseconds(100);
      const bool watch = listening && (has_deadline || options.alive);
      if (watch) {
        if (!req->cv.wait_until(lk, has_deadline ? std::min(poll, deadline) : poll, ready)) {
          lk.unlock();
          if (has_deadline && Generation::Clock::now() >= deadline) {
            timed_out = true;  // stop listening; the worker drops it at its next step
            listening = false;
          } else if (options.alive && listening && !options.alive()) {
            listening = false;  // the client is gone
          }
          if (!listening && !req->abandoned.exchange(true)) wake_.notify_one();
          continue;
        }
      } else {
        req->cv.wait(lk, ready);
      }
      ev = std::move(req->events.front());
      req->events.pop_front();
    }
    switch (ev.kind) {
      case Request::Event::kText:
        if (listening && !on_text(ev.text)) listening = false;
        break;
      case Request::Event::kToken:
        if (listening && on_token && !on_token(TokenEvent{ev.token, &ev.sample}))
          listening = false;
        break;
      case Request::Event::kDone:
        if (!req->error.ok()) return req->error;
        if (timed_out) {
          return Status::error("the request ran longer than " +
                               std::to_string(int(options.timeout_s)) +
                               " s (the server's request timeout) and was stopped");
        }
        return std::move(req->result);
    }
    if (!listening && !req->abandoned.exchange(true)) wake_.notify_one();
  }
}

bool Scheduler::admit(Seq& s) {
  // Shared blocks must end before the last prompt token: its logits are computed now.
  const int max_shared = (s.prompt_len - 1) / kBlock;
  s.blocks = blocks_.match_prefix(std::span(s.tokens).first(s.prompt_len), max_shared);
  const int need = blocks_for(s.prompt_len) - int(s.blocks.size());
  if (need > blocks_.n_available()) {
    for (int32_t b : s.blocks) blocks_.release(b);
    s.blocks.clear();
    return false;
  }
  s.n_shared = s.n_cached = int(s.blocks.size()) * kBlock;
  s.n_registered = int(s.blocks.size());
  return ensure_blocks(s, s.prompt_len);
}

bool Scheduler::ensure_blocks(Seq& s, int positions) {
  while (int(s.blocks.size()) * kBlock < positions) {
    const int b = blocks_.allocate(s.blocks.empty() ? -1 : s.blocks.back());
    if (b < 0) return false;
    ctx_->clear_block(b);
    s.blocks.push_back(b);
  }
  return true;
}

void Scheduler::register_blocks(Seq& s) {
  // Full blocks in order; a block whose twin is already registered stays private, and so do
  // the ones after it (their parent is not in the cache).
  while (s.n_registered < int(s.blocks.size()) && (s.n_registered + 1) * kBlock <= s.n_cached) {
    const int i = s.n_registered;
    if (!blocks_.register_full(s.blocks[i], i > 0 ? s.blocks[i - 1] : -1,
                               std::span(s.tokens).subspan(size_t(i) * kBlock, kBlock)))
      break;
    ++s.n_registered;
  }
}

void Scheduler::finish(Seq& s, Status error) {
  if (s.finished) return;
  s.finished = true;
  register_blocks(s);
  for (int32_t b : s.blocks) blocks_.release(b);
  s.blocks.clear();
  Request& r = *s.req;
  if (!error.ok()) {
    r.error = std::move(error);
  } else {
    if (s.gen && !s.gen->done()) s.gen->stop("cancel");
    r.result = s.gen ? s.gen->take_result() : GenerateResult{};
    r.result.prompt_tokens = int(r.prompt.size());
  }
  r.push({Request::Event::kDone, {}, -1, {}});
}

void Scheduler::publish_stats() {
  std::lock_guard<std::mutex> lk(mu_);
  stats_.running = int(running_.size());
  stats_.waiting = int(waiting_.size());
  stats_.blocks_used = blocks_.n_used();
  stats_.blocks_cached = blocks_.n_cached();
  stats_.prefix_blocks_reused = blocks_.prefix_hits();
}

void Scheduler::worker() {
  std::vector<model::SeqInput> in;
  std::vector<Seq*> in_seq;
  while (true) {
    {
      std::unique_lock<std::mutex> lk(mu_);
      wake_.wait(lk, [&] {
        return stopping_ || !submitted_.empty() || !running_.empty() || !waiting_.empty();
      });
      if (stopping_) break;
      while (!submitted_.empty()) {
        auto req = std::move(submitted_.front());
        submitted_.pop_front();
        auto seq = std::make_unique<Seq>();
        seq->req = req;
        waiting_.push_back(std::move(seq));
      }
    }

    // New requests: fit the prompt, make the generation (errors answer at once).
    for (auto it = waiting_.begin(); it != waiting_.end();) {
      Seq& s = **it;
      Request& r = *s.req;
      if (!s.gen) {
        auto fitted = fit_prompt(r.prompt, opts_.n_ctx, r.options);
        Result<std::unique_ptr<Generation>> gen = Status::error("");
        if (fitted.ok()) {
          Request* rp = &r;
          gen = Generation::create(
              model_, *fitted, r.options,
              [rp](std::string_view text) {
                rp->push({Request::Event::kText, std::string(text), -1, {}});
                return !rp->abandoned.load(std::memory_order_relaxed);
              },
              [rp](const TokenEvent& e) {
                rp->push({Request::Event::kToken, {}, e.token, *e.sample});
                return !rp->abandoned.load(std::memory_order_relaxed);
              },
              r.cancel, r.t0);
        }
        if (!fitted.ok() || !gen.ok()) {
          finish(s, Status::error(fitted.ok() ? gen.error() : fitted.error()));
          it = waiting_.erase(it);
          continue;
        }
        s.gen = std::move(*gen);
        s.tokens = std::move(*fitted);
        s.prompt_len = int(s.tokens.size());
      }
      if (r.cancelled()) {
        finish(s);
        it = waiting_.erase(it);
        continue;
      }
      ++it;
    }
    // Cancelled running sequences leave now, releasing their blocks.
    for (auto& s : running_) {
      if (s->req->cancelled()) finish(*s);
    }
    std::erase_if(running_, [](const auto& s) { return s->finished; });

    // The batch: decode steps first, then admit, then prompt chunks.
    in.clear();
    in_seq.clear();
    int budget = opts_.n_batch;
    for (auto& sp : running_) {
      Seq& s = *sp;
      if (!s.prefilled || s.pending.empty() || int(s.pending.size()) > budget) continue;
      if (!ensure_blocks(s, s.n_cached + int(s.pending.size()))) {
        finish(s, Status::error("no KV cache block left for this sequence"));
        continue;
      }
      in.push_back({s.pending, s.n_cached, s.blocks, true});
      in_seq.push_back(&s);
      budget -= int(s.pending.size());
    }
    while (!waiting_.empty() && int(running_.size()) < opts_.max_seqs &&
           admit(*waiting_.front())) {
      running_.push_back(std::move(waiting_.front()));
      waiting_.pop_front();
    }
    if (!in.empty()) budget = std::min(budget, std::max(1, opts_.prefill_chunk_while_decoding));
    for (auto& sp : running_) {
      Seq& s = *sp;
      if (s.prefilled || s.finished || budget <= 0) continue;
      const int n = std::min(s.prompt_len - s.n_cached, budget);
      in.push_back({std::span(s.tokens).subspan(s.n_cached, n), s.n_cached, s.blocks,
                    s.n_cached + n == s.prompt_len});
      in_seq.push_back(&s);
      budget -= n;
    }
    publish_stats();
    if (in.empty()) {
      std::erase_if(running_, [](const auto& s) { return s->finished; });
      if (!waiting_.empty() && running_.empty()) {
        // Cannot happen (an idle pool holds any prompt that fits n_ctx); never spin on it.
        finish(*waiting_.front(), Status::error("the KV cache pool cannot hold this prompt"));
        waiting_.pop_front();
      }
      continue;
    }

    auto logits = ctx_->eval_batch(in);
    {
      std::lock_guard<std::mutex> lk(mu_);
      ++stats_.steps;
    }
    if (!logits.ok()) {
      for (Seq* s : in_seq) finish(*s, Status::error(logits.error()));
      std::erase_if(running_, [](const auto& s) { return s->finished; });
      continue;
    }
    const size_t n_vocab = size_t(model_.config().n_vocab);
    size_t row = 0;
    for (size_t i = 0; i < in.size(); ++i) {
      Seq& s = *in_seq[i];
      const int n = int(in[i].tokens.size());
      if (s.prefilled) s.tokens.insert(s.tokens.end(), s.pending.begin(), s.pending.end());
      s.n_cached += n;
      register_blocks(s);
      if (!in[i].logits) continue;
      const std::span<const float> l = logits->subspan(row++ * n_vocab, n_vocab);
      if (!s.prefilled) {
        s.prefilled = true;
        s.gen->prompt_done(s.prompt_len - s.n_shared);
      }
      if (s.req->cancelled()) {
        finish(s);
        continue;
      }
      auto next = s.gen->step(l, opts_.n_ctx - s.n_cached);
      if (!next.ok()) {
        finish(s, Status::error(next.error()));
        continue;
      }
      if (next->empty()) {
        finish(s);
        continue;
      }
      if (s.n_cached + int(next->size()) > opts_.n_ctx) {
        s.gen->stop("length");
        finish(s);
        continue;
      }
      s.pending.assign(next->begin(), next->end());
    }
    std::erase_if(running_, [](const auto& s) { return s->finished; });
    publish_stats();
  }

  // Shutting down: everything left ends now.
  for (auto& s : running_) finish(*s, Status::error("the model was unloaded"));
  for (auto& s : waiting_) finish(*s, Status::error("the model was unloaded"));
  std::lock_guard<std::mutex> lk(mu_);
  for (auto& req : submitted_) {
    req->error = Status::error("the model was unloaded");
    req->push({Request::Event::kDone, {}, -1, {}});
  }
}

}  // namespace minnow::engine
