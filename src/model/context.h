// One sequence being evaluated: its KV cache, its position and the scratch buffers of the
// forward pass, over a shared immutable Model. eval() appends tokens and returns the logits
// of the last one; the prompt is processed in batches of n_batch tokens with matrix × matrix
// kernels, a single token (decode) with matrix × vector ones. Buffers are allocated once, in
// create(): eval() does not allocate.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "kernels/matmul.h"
#include "model/kv_cache.h"
#include "model/model.h"
#include "util/status.h"
#include "util/thread_pool.h"

namespace minnow::model {

struct ContextOptions {
  int n_ctx = 0;      // 0: the model's training context, capped so the KV cache fits kv_budget
  int n_batch = 512;  // most tokens per forward call (prefill chunk)
  KvType kv_type = KvType::kF16;
  uint64_t kv_budget_bytes = uint64_t(1) << 30;
};

class Context {
 public:
  static Result<std::unique_ptr<Context>> create(const Model& model, ThreadPool& pool,
                                                 const ContextOptions& options = {});
  ~Context();

  // Appends `tokens` at positions n_past().. and returns the logits (n_vocab) of the last
  // one, valid until the next call. Fails, changing nothing, when a token id is out of range
  // or the tokens do not fit in the context (the message gives both numbers).
  Result<std::span<const float>> eval(std::span<const int32_t> tokens);

  int n_past() const { return n_past_; }
  int n_ctx() const { return cache_.n_ctx(); }
  int n_batch() const { return n_batch_; }
  const KvCache& cache() const { return cache_; }
  const Model& model() const { return model_; }

  // Forgets positions >= n (keeps a shared prefix, or rolls back) and returns how many
  // positions are kept: n, or 0 when a sliding-window ring no longer holds the window that
  // position n would need (its older slots were overwritten), so the caller re-evaluates.
  int truncate(int n);
  // Context shift: drops positions [n_keep, n_keep + n_discard) and moves the later ones down
  // by n_discard, re-rotating their cached keys, so generation can continue past n_ctx.
  Status shift(int n_keep, int n_discard);

  // An embedding of `tokens`: the mean over positions of the final-normed hidden state,
  // L2-normalized (the model's logits are not computed). Uses the cache from position 0 and
  // leaves it empty.
  Result<std::vector<float>> embed(std::span<const int32_t> tokens);

 private:
  struct Buffers;
  Context(const Model& model, ThreadPool& pool, KvCache cache, int n_batch);
  void forward(std::span<const int32_t> tokens, int pos0);
  void attention(int il, int n_tok, int pos0);
  void attention_prefill(int il, int n_tok, int pos0);

  const Model& model_;
  const ModelConfig& c_;
  ThreadPool& pool_;
  KvCache cache_;
  int n_batch_;
  int n_past_ = 0;
  float* embed_sum_ = nullptr;  // while embed() runs: (n_embd) sum of hidden states
  std::unique_ptr<Buffers> buf_;
};

}  // namespace minnow::model
