// Continuous batching over one model: every request is a sequence with its own Generation
// (sampler, stops, streaming) and its own KV blocks in one paged pool; one worker thread runs
// steps, and each step is a single forward pass (Context::eval_batch) over
//   - one token (or a forced run) of every running sequence - decode, matrix × matrix over
//     the batch, so the weights are read once for all of them;
//   - then chunks of the prompts being evaluated, up to n_batch tokens in all (chunked
//     prefill: a long prompt is spread over several steps instead of stalling the others).
// A new sequence takes the cached blocks of the longest prefix it shares with earlier ones
// (BlockPool) and evaluates only the rest. Sequences run up to max_seqs at once; the pool
// holds max_seqs full contexts, so a running sequence can always grow to n_ctx, and a
// waiting one is admitted when its prompt's blocks are free.
//
// Callers block in generate(), which has Session::generate's contract: their callbacks run
// on the caller's thread (the worker only queues events), so a slow client slows nobody
// else. A cancelled request (its flag, or a callback returning false, or the caller gone)
// leaves the batch at the next step and its blocks are released at once.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <span>
#include <thread>
#include <vector>

#include "engine/block_pool.h"
#include "engine/generation.h"
#include "model/context.h"
#include "model/model.h"
#include "util/status.h"
#include "util/thread_pool.h"

namespace minnow::engine {

struct SchedulerOptions {
  int n_ctx = 4096;   // positions per sequence (Ollama's num_ctx)
  int max_seqs = 4;   // sequences running at once
  int n_batch = 512;  // tokens per forward pass
  // Prompt tokens per step while other sequences are decoding: a smaller chunk keeps their
  // inter-token latency down (a 512-token chunk is ~0.5 s on two cores) at some cost to the
  // new request's time to first token.
  int prefill_chunk_while_decoding = 128;
};

class Scheduler {
 public:
  static Result<std::unique_ptr<Scheduler>> create(const model::Model& model, ThreadPool& pool,
                                                   const SchedulerOptions& options);
  ~Scheduler();  // cancels what is left and joins the worker

  // Session::generate's contract; many callers at once.
  Result<GenerateResult> generate(std::span<const int32_t> prompt, const GenerateOptions& options,
                                  const TextFn& on_text, const TokenFn& on_token = {},
                                  const std::atomic<bool>* cancel = nullptr);

  struct Stats {
    int running = 0, waiting = 0;
    int blocks_total = 0, blocks_used = 0, blocks_cached = 0;
    uint64_t prefix_blocks_reused = 0;
    uint64_t steps = 0;
  };
  Stats stats() const;
  int n_ctx() const { return opts_.n_ctx; }
  uint64_t kv_bytes() const { return ctx_->cache().bytes(); }
  const model::Model& model() const { return model_; }

 private:
  struct Request;
  struct Seq;
  Scheduler(const model::Model& model, std::unique_ptr<model::Context> ctx,
            const SchedulerOptions& options);
  void worker();
  bool admit(Seq& s);
  bool ensure_blocks(Seq& s, int positions);
  void finish(Seq& s, Status error = Status());
  void register_blocks(Seq& s);
  void publish_stats();

  const model::Model& model_;
  std::unique_ptr<model::Context> ctx_;
  SchedulerOptions opts_;
  BlockPool blocks_;

  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::deque<std::shared_ptr<Request>> submitted_;
  bool stopping_ = false;
  Stats stats_;  // under mu_, refreshed by the worker each step

  // The worker's own state.
  std::vector<std::unique_ptr<Seq>> running_;
  std::deque<std::unique_ptr<Seq>> waiting_;
  std::thread thread_;
};

}  // namespace minnow::engine
