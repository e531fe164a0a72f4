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
  // Batching (engine::Scheduler): the cache is a pool of n_ctx slots in blocks of kSlotAlign
  // that many sequences share through block tables (eval_batch); f16 only, no rings.
  bool paged = false;
  int n_seq = 1;      // most sequences asking for logits in one eval_batch call
  int n_ctx_seq = 0;  // paged: most positions of one sequence (0: n_ctx)
};

// One sequence's part of a batched forward pass: its new tokens at positions pos0.., and
// where its positions live in the pool: position p is slot blocks[p / kSlotAlign] ·
// kSlotAlign + p % kSlotAlign. The blocks must cover pos0 + tokens.size() positions.
struct SeqInput {
  std::span<const int32_t> tokens;
  int pos0 = 0;
  std::span<const int32_t> blocks;
  bool logits = true;  // compute the logits of its last token
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

  // Paged contexts: evaluates the tokens of several sequences in one forward pass (every
  // weight matrix read once for all of them) and returns the logits of those that asked, in
  // order: (n, n_vocab). Results are those each sequence would get alone, bit for bit (the
  // kernels are batch-invariant and attention reads only the sequence's own blocks). The
  // tokens of all sequences together must fit n_batch. Fails, changing nothing, on bad input.
  Result<std::span<const float>> eval_batch(std::span<const SeqInput> seqs);
  // Paged contexts: blocks in the pool; zeroes a block before a new sequence uses it.
  int n_blocks() const { return cache_.n_ctx() / kSlotAlign; }
  void clear_block(int block) { cache_.clear_slots(block * kSlotAlign, kSlotAlign); }
  bool paged() const { return paged_; }
  int n_seq() const { return n_seq_; }

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
  struct AttnScratch;
  // A run of the batch's tokens that belong to one sequence (blocks empty: this context's
  // own cache, slot = position, rings for sliding layers).
  struct Segment {
    int t0 = 0, n = 0, pos0 = 0;
    std::span<const int32_t> blocks;
    bool logits = true;
  };
  Context(const Model& model, ThreadPool& pool, KvCache cache, int n_batch);
  // Runs the batch's tokens (b.tok) through the model; the logits of the segments that ask
  // go to b.logits in order.
  void forward(std::span<const Segment> segs, int n_tok);
  void attention(int il, int n_tok, int pos0);
  void attention_f16(int il, std::span<const Segment> segs);
  void attend_item(int il, const Segment& sg, int tq, int g, AttnScratch& a);

  const Model& model_;
  const ModelConfig& c_;
  ThreadPool& pool_;
  KvCache cache_;
  int n_batch_;
  int n_past_ = 0;
  bool paged_ = false;
  int n_seq_ = 1;
  float* embed_sum_ = nullptr;  // while embed() runs: (n_embd) sum of hidden states
  std::unique_ptr<Buffers> buf_;
};

}  // namespace minnow::model
