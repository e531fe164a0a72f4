// The forward pass, one for every architecture: the knobs of ModelConfig select biases,
// norms, RoPE flavour, activation and sliding windows (STYLE.md: variation as knobs).
//
//   x = embed(tokens) · embd_scale                                    (n_tok, n_embd)
//   per layer:
//     h = rmsnorm(x) · attn_norm
//     q, k, v = h · Wq, Wk, Wv (+ biases)       (n_tok, n_head · hd), (n_tok, n_head_kv · hd)
//     q, k = rmsnorm per head (gemma3); RoPE at each token's position
//     k, v -> KV cache;  a = softmax(q · kᵀ · scale, causal + window) · v
//     o = a · Wo;  (rmsnorm · post_attn_norm);  x += o
//     h = rmsnorm(x) · ffn_norm;  f = act(h · Wgate) ⊙ (h · Wup) · Wdown;  (post norm);  x += f
//   logits = rmsnorm(x[last]) · output_norm · Woutᵀ   (only the last position: 262k rows for
//                                                      gemma3 is most of a decode step)
#include "model/context.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "kernels/quants.h"
#include "kernels/vec.h"

namespace minnow::model {

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// Angles of one RoPE configuration: theta_i(p) = p · freq_scale · inv_freq[i], with
// inv_freq[i] = base^(-2i / n_rot) / factor[i]. Layers sharing a base share a table.
struct Rope {
  float base = 0;
  float freq_scale = 1;
  std::vector<float> inv_freq;  // (n_rot / 2)
  std::vector<float> cos, sin;  // (n_batch, n_rot / 2), for the positions of the current batch
};

// Rotates n_heads heads of dim `head_dim` (their first n_rot dims) of one token by the
// angles whose cos/sin are given.
void rotate(float* x, int n_heads, int head_dim, int n_rot, RopeStyle style, const float* cos,
            const float* sin) {
  const int half = n_rot / 2;
  for (int h = 0; h < n_heads; ++h) {
    float* v = x + size_t(h) * head_dim;
    for (int i = 0; i < half; ++i) {
      const int a = style == RopeStyle::kNormal ? 2 * i : i;
      const int b = style == RopeStyle::kNormal ? 2 * i + 1 : i + half;
      const float x0 = v[a], x1 = v[b];
      v[a] = x0 * cos[i] - x1 * sin[i];
      v[b] = x0 * sin[i] + x1 * cos[i];
    }
  }
}

}  // namespace

// Per-thread buffers of f16 attention (attend_item): one (query block, KV head) at a time.
struct Context::AttnScratch {
  struct Run {
    int col;   // first key column of the run in S
    int slot;  // its first physical slot
    int len;   // slots
  };
  std::unique_ptr<float[]> q;   // (kQueryBlock * group, head_dim)
  std::unique_ptr<float[]> s;   // (kQueryBlock * group, n_keys) scores, then P
  std::unique_ptr<float[]> t;   // (kQueryBlock * group, n_keys) one run's scores / P
  std::unique_ptr<float[]> y;   // (kQueryBlock * group, head_dim_v)
  std::unique_ptr<float[]> y2;  // (kQueryBlock * group, head_dim_v) one run's part
  std::vector<Run> runs;        // physically contiguous runs of the keys read
  kernels::MatmulScratch mm;
};

struct Context::Buffers {
  kernels::MatmulScratch mm;
  std::vector<float> x, h, q, k, v, qkv, attn, o, g, u, gu;  // (n_batch, width)
  std::vector<float> logits;                                 // (n_seq, n_vocab)
  std::vector<int32_t> tok, pos, slot;                       // (n_batch); slot -1: by position
  std::vector<Segment> segs;                                 // (n_batch)
  std::vector<Rope> ropes;
  std::vector<int> layer_rope;  // layer -> index into ropes
  // q8_0 attention: per-thread scores (group, n_ctx) and f32 rows; per-item partial softmax
  // state when a decode step splits the KV length across threads.
  int max_chunks = 8;
  std::vector<float> scores;   // (n_threads, group, n_ctx)
  std::vector<float> kv_rows;  // (n_threads, k_dim + v_dim)
  std::vector<float> part;     // (n_head_kv, max_chunks, group, 2 + head_dim_v)
  // f16 attention as matmuls, per (segment, block of queries, KV head): the work items.
  static constexpr int kQueryBlock = 64;  // tokens per block
  struct Item {
    int seg, tq, g;  // segment, first token of the block (in the segment), KV head
  };
  std::vector<Item> items;
  std::vector<AttnScratch> attn_scratch;  // (n_threads)
};

Context::Context(const Model& model, ThreadPool& pool, KvCache cache, int n_batch)
    : model_(model), c_(model.config()), pool_(pool), cache_(std::move(cache)), n_batch_(n_batch) {}

Context::~Context() = default;

Result<std::unique_ptr<Context>> Context::create(const Model& model, ThreadPool& pool,
                                                 const ContextOptions& options) {
  const ModelConfig& c = model.config();
  const int n_batch = std::max(1, options.n_batch);
  int n_ctx = options.n_ctx;
  if (n_ctx <= 0) {
    // The training context, halved until its cache fits the budget (never below 512).
    n_ctx = c.n_ctx_train;
    while (n_ctx > 512 &&
           KvCache::bytes_for(c, n_ctx, options.kv_type, n_batch) > options.kv_budget_bytes) {
      n_ctx /= 2;
    }
  }
  if (options.paged) {
    if (options.kv_type != KvType::kF16)
      return Status::error("a batching (paged) context needs an f16 KV cache");
    n_ctx = (n_ctx + kSlotAlign - 1) / kSlotAlign * kSlotAlign;
  }
  auto cache =
      KvCache::create(c, n_ctx, options.kv_type, std::min(n_batch, n_ctx), !options.paged);
  if (!cache.ok()) return Status::error(model.path() + ": " + cache.error());
  std::unique_ptr<Context> ctx(
      new Context(model, pool, std::move(*cache), std::min(n_batch, n_ctx)));
  ctx->paged_ = options.paged;
  ctx->n_seq_ = options.paged ? std::clamp(options.n_seq, 1, ctx->n_batch_) : 1;
  ctx->buf_ = std::make_unique<Buffers>();
  Buffers& b = *ctx->buf_;
  const size_t B = ctx->n_batch_;
  b.x.resize(B * c.n_embd);
  b.h.resize(B * c.n_embd);
  b.o.resize(B * c.n_embd);
  b.q.resize(B * c.q_dim());
  b.k.resize(B * c.k_dim());
  b.v.resize(B * c.v_dim());
  if (c.fused_qkv) b.qkv.resize(B * (c.q_dim() + c.k_dim() + c.v_dim()));
  b.attn.resize(B * c.n_head * c.head_dim_v);
  b.g.resize(B * c.n_ff);
  b.u.resize(B * c.n_ff);
  if (c.fused_gate_up) b.gu.resize(B * 2 * c.n_ff);
  b.logits.resize(size_t(ctx->n_seq_) * c.n_vocab);
  b.tok.resize(B);
  b.pos.resize(B);
  b.slot.resize(B);
  b.segs.reserve(B);

  // RoPE tables: one per distinct (base, scale). Frequency factors: Llama 3's apply to every
  // layer; Phi-3's long ones when the context exceeds the original one.
  const Weights& w = model.weights();
  const Vector* factors = !w.rope_freqs.empty() ? &w.rope_freqs : nullptr;
  if (!w.rope_long.empty() && n_ctx > c.rope_orig_ctx && c.rope_orig_ctx > 0)
    factors = &w.rope_long;
  else if (!w.rope_short.empty())
    factors = &w.rope_short;
  const int half = c.n_rot / 2;
  for (int il = 0; il < c.n_layer; ++il) {
    const LayerConfig& L = c.layers[il];
    int idx = -1;
    for (size_t r = 0; r < b.ropes.size(); ++r) {
      if (b.ropes[r].base == L.rope_base && b.ropes[r].freq_scale == L.rope_freq_scale)
        idx = int(r);
    }
    if (idx < 0) {
      Rope rope;
      rope.base = L.rope_base;
      rope.freq_scale = L.rope_freq_scale;
      rope.inv_freq.resize(half);
      for (int i = 0; i < half; ++i) {
        double f = std::pow(double(L.rope_base), -2.0 * i / c.n_rot);
        if (factors) f /= (*factors)[i];
        rope.inv_freq[i] = float(f);
      }
      rope.cos.resize(B * half);
      rope.sin.resize(B * half);
      b.ropes.push_back(std::move(rope));
      idx = int(b.ropes.size()) - 1;
    }
    b.layer_rope.push_back(idx);
  }

  const int group = c.n_head / c.n_head_kv;
  const size_t threads = pool.n_threads();
  if (options.kv_type == KvType::kQ8_0) {
    b.scores.resize(threads * group * size_t(n_ctx));
    b.kv_rows.resize(threads * size_t(c.k_dim() + c.v_dim()));
    b.part.resize(size_t(c.n_head_kv) * b.max_chunks * group * (2 + c.head_dim_v));
  } else {
    // The keys one query block reads: at most a sequence's positions, padded to a block.
    const int n_ctx_seq = options.paged && options.n_ctx_seq > 0 ? options.n_ctx_seq : n_ctx;
    const size_t n_keys = size_t(n_ctx_seq) + 2 * kSlotAlign;
    const size_t qb = size_t(Buffers::kQueryBlock) * group;
    const int n_seg_max = int(B);
    b.items.reserve(size_t(B / Buffers::kQueryBlock + n_seg_max + 1) * c.n_head_kv);
    b.attn_scratch.resize(threads);
    for (AttnScratch& a : b.attn_scratch) {
      // Allocated untouched (new[]): only the part a prompt reaches becomes resident.
      a.q.reset(new float[qb * c.head_dim]);
      a.s.reset(new float[qb * n_keys]);
      a.t.reset(new float[qb * n_keys]);
      a.y.reset(new float[qb * c.head_dim_v]);
      a.y2.reset(new float[qb * c.head_dim_v]);
      a.runs.reserve(n_keys / kSlotAlign + 1);
      a.mm.reserve(std::max(kernels::matmul_scratch_bytes(TensorType::F16, c.head_dim, qb),
                            kernels::matmul_scratch_bytes(TensorType::F16, n_keys, qb)));
    }
  }

  // The largest matmul scratch any call of this context needs, reserved now.
  size_t scratch = 0;
  auto need = [&](const Matrix& m, int64_t batch) {
    if (m.data) scratch = std::max(scratch, kernels::matmul_scratch_bytes(m.type, m.cols, batch));
  };
  need(w.output, ctx->n_seq_);
  for (const LayerWeights& L : w.layers) {
    for (const Matrix* m : {&L.wq, &L.wk, &L.wv, &L.wqkv, &L.wo, &L.w_gate, &L.w_up, &L.w_down}) {
      need(*m, B);
    }
  }
  b.mm.reserve(scratch);
  return ctx;
}

Result<std::span<const float>> Context::eval(std::span<const int32_t> tokens) {
  if (tokens.empty()) return Status::error("eval: no tokens");
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i] < 0 || tokens[i] >= c_.n_vocab) {
      return Status::error("token " + std::to_string(tokens[i]) + " at index " + std::to_string(i) +
                           " is outside the vocabulary (0.." + std::to_string(c_.n_vocab - 1) +
                           ")");
    }
  }
  if (n_past_ + tokens.size() > size_t(n_ctx())) {
    return Status::error(std::to_string(n_past_ + tokens.size()) +
                         " tokens do not fit in the context of " + std::to_string(n_ctx()) +
                         " tokens (" + std::to_string(n_past_) + " already in it, " +
                         std::to_string(tokens.size()) + " new)");
  }
  if (paged_) return Status::error("eval: a paged context evaluates through eval_batch");
  for (size_t i = 0; i < tokens.size(); i += n_batch_) {
    const size_t n = std::min(tokens.size() - i, size_t(n_batch_));
    std::copy_n(tokens.begin() + i, n, buf_->tok.begin());
    const Segment seg{0, int(n), n_past_, {}, true};
    forward({&seg, 1}, int(n));
    n_past_ += static_cast<int>(n);
  }
  return std::span<const float>(buf_->logits.data(), size_t(c_.n_vocab));
}

Result<std::span<const float>> Context::eval_batch(std::span<const SeqInput> seqs) {
  if (!paged_) return Status::error("eval_batch: this context was not created for batching");
  size_t n_tok = 0;
  int n_logits = 0;
  const int n_blocks_pool = n_blocks();
  for (size_t s = 0; s < seqs.size(); ++s) {
    const SeqInput& in = seqs[s];
    const std::string where = "eval_batch: sequence " + std::to_string(s) + ": ";
    if (in.tokens.empty()) return Status::error(where + "no tokens");
    for (size_t i = 0; i < in.tokens.size(); ++i) {
      if (in.tokens[i] < 0 || in.tokens[i] >= c_.n_vocab) {
        return Status::error(where + "token " + std::to_string(in.tokens[i]) + " at index " +
                             std::to_string(i) + " is outside the vocabulary");
      }
    }
    const size_t end = size_t(in.pos0) + in.tokens.size();
    if (in.pos0 < 0 || end > in.blocks.size() * kSlotAlign) {
      return Status::error(where + "positions up to " + std::to_string(end) + " need " +
                           std::to_string((end + kSlotAlign - 1) / kSlotAlign) +
                           " blocks, it has " + std::to_string(in.blocks.size()));
    }
    for (int32_t blk : in.blocks) {
      if (blk < 0 || blk >= n_blocks_pool)
        return Status::error(where + "block " + std::to_string(blk) + " is not in the pool");
    }
    n_tok += in.tokens.size();
    n_logits += in.logits ? 1 : 0;
  }
  if (n_tok == 0) return Status::error("eval_batch: no tokens");
  if (n_tok > size_t(n_batch_)) {
    return Status::error("eval_batch: " + std::to_string(n_tok) + " tokens, more than the batch of " +
                         std::to_string(n_batch_));
  }
  if (n_logits > n_seq_) {
    return Status::error("eval_batch: " + std::to_string(n_logits) +
                         " sequences ask for logits, more than " + std::to_string(n_seq_));
  }
  Buffers& b = *buf_;
  b.segs.clear();
  int t = 0;
  for (const SeqInput& in : seqs) {
    std::copy(in.tokens.begin(), in.tokens.end(), b.tok.begin() + t);
    b.segs.push_back(Segment{t, int(in.tokens.size()), in.pos0, in.blocks, in.logits});
    t += int(in.tokens.size());
  }
  forward(b.segs, t);
  return std::span<const float>(b.logits.data(), size_t(n_logits) * c_.n_vocab);
}

Result<std::vector<float>> Context::embed(std::span<const int32_t> tokens) {
  if (tokens.empty()) return Status::error("embed: no tokens");
  truncate(0);
  std::vector<float> sum(c_.n_embd, 0.0f);
  embed_sum_ = sum.data();
  auto r = eval(tokens);
  embed_sum_ = nullptr;
  truncate(0);
  if (!r.ok()) return Status::error(r.error());
  double norm = 0;
  for (float& v : sum) {
    v /= float(tokens.size());
    norm += double(v) * v;
  }
  const float inv = norm > 0 ? float(1.0 / std::sqrt(norm)) : 0.0f;
  for (float& v : sum) v *= inv;
  return sum;
}

int Context::truncate(int n) {
  n = std::clamp(n, 0, n_past_);
  // A ring holds a contiguous run of the latest positions [lo, n_past). Position n needs
  // [n - window + 1, n): if the ring has lost any of it, only starting over is correct.
  for (int il = 0; il < c_.n_layer && n > 0; ++il) {
    const KvLayer& L = cache_.layer(il);
    if (!L.ring) continue;
    int lo = n_past_;
    for (int32_t p : L.slot_pos) {
      if (p >= 0) lo = std::min(lo, p);
    }
    if (lo > std::max(0, n - c_.sliding_window + 1)) n = 0;
  }
  cache_.truncate(n);
  n_past_ = n;
  return n;
}

Status Context::shift(int n_keep, int n_discard) {
  if (n_keep < 0 || n_discard <= 0 || n_keep + n_discard > n_past_) {
    return Status::error("context shift: cannot drop " + std::to_string(n_discard) +
                         " tokens after " + std::to_string(n_keep) + " of " +
                         std::to_string(n_past_));
  }
  const int half = c_.n_rot / 2;
  std::vector<float> row(c_.k_dim()), cos(half), sin(half);  // not the hot path
  const TensorType row_type = cache_.type() == KvType::kF16 ? TensorType::F16 : TensorType::Q8_0;
  for (int il = 0; il < c_.n_layer; ++il) {
    KvLayer& L = cache_.layer(il);
    const Rope& rope = buf_->ropes[buf_->layer_rope[il]];
    for (int i = 0; i < half; ++i) {
      const double theta = -double(n_discard) * rope.freq_scale * rope.inv_freq[i];
      cos[i] = float(std::cos(theta));
      sin[i] = float(std::sin(theta));
    }
    auto rerotate = [&](int slot) {
      kernels::dequantize_row_ref(row_type, L.k_row(slot), row.data(), c_.k_dim());
      rotate(row.data(), c_.n_head_kv, c_.head_dim, c_.n_rot, c_.rope_style, cos.data(),
             sin.data());
      kernels::quantize_row_ref(row_type, row.data(), L.k_row(slot), c_.k_dim());
    };
    if (L.ring) {
      for (int s = 0; s < L.n_slots; ++s) {
        int32_t& p = L.slot_pos[s];
        if (p >= n_keep + n_discard) {
          p -= n_discard;
          rerotate(s);
        } else if (p >= n_keep) {
          p = -1;
        }
      }
    } else {
      const int moved = n_past_ - n_keep - n_discard;
      std::memmove(L.k_row(n_keep), L.k_row(n_keep + n_discard), size_t(moved) * L.k_row_bytes);
      if (L.v_transposed) {
        // Slot by slot: the rows are cut into regions (not the hot path).
        for (int sl = n_keep; sl < n_keep + moved; ++sl) {
          for (int d = 0; d < c_.v_dim(); ++d) *L.vt_at(d, sl) = *L.vt_at(d, sl + n_discard);
        }
      } else {
        std::memmove(L.v_row(n_keep), L.v_row(n_keep + n_discard), size_t(moved) * L.v_row_bytes);
      }
      for (int s = n_keep; s < n_keep + moved; ++s) rerotate(s);
    }
  }
  n_past_ -= n_discard;
  return Status();
}

namespace {

// The sizes attention works with, for layer il.
struct AttentionDims {
  int hd, hdv, n_kv, group;  // head dims of K and V, KV heads, query heads per KV head
  int qd, kd, vd;            // row widths of q, k, v
  int window;                // sliding window of this layer, 0 = none
  float scale;               // of q · k
};

AttentionDims attention_dims(const ModelConfig& c, int il) {
  const int hd = c.head_dim;
  return AttentionDims{hd,
                       c.head_dim_v,
                       c.n_head_kv,
                       c.n_head / c.n_head_kv,
                       c.q_dim(),
                       c.k_dim(),
                       c.v_dim(),
                       c.layers[il].sliding ? c.sliding_window : 0,
                       c.attn_scale > 0 ? c.attn_scale : 1.0f / std::sqrt(float(hd))};
}

// Runs fn(row) for rows [0, n), across the pool when there are enough rows to pay for it.
template <class Fn>
void for_rows(ThreadPool& pool, int n, Fn&& fn) {
  if (n < 8 || pool.n_threads() == 1) {
    for (int r = 0; r < n; ++r) fn(r);
    return;
  }
  const int chunks = std::min(n, pool.n_threads() * 4);
  pool.parallel_for(chunks, [&](int64_t chunk, int) {
    const int r0 = int(int64_t(n) * chunk / chunks), r1 = int(int64_t(n) * (chunk + 1) / chunks);
    for (int r = r0; r < r1; ++r) fn(r);
  });
}

// y = x / rms(x) · w, over rows of `dim`.
void rms_norm(const kernels::VecOps& ops, const float* x, const float* w, float* y, int dim,
              float eps) {
  const float ss = ops.sum_sq(x, dim);
  ops.scale_mul(x, w, 1.0f / std::sqrt(ss / dim + eps), y, dim);
}

}  // namespace

void Context::forward(std::span<const Segment> segs, int n_tok) {
  Buffers& b = *buf_;
  const Weights& w = model_.weights();
  const kernels::VecOps& ops = kernels::vec_ops();
  const int n = n_tok;
  const int32_t* tokens = b.tok.data();
  const int E = c_.n_embd;
  auto matmul = [&](const Matrix& m, const float* x, int batch, float* y) {
    const size_t bytes = kernels::matmul_scratch_bytes(m.type, m.cols, batch);
    // Types and shapes were checked at load and the scratch reserved in create(): this
    // cannot fail unless that invariant is broken.
    const Status s = kernels::matmul(m, x, batch, y, pool_, b.mm.get(bytes));
    if (!s.ok()) std::abort();
  };
  // Weights that read the same normalized h: quantized once, one dispatch.
  auto multi = [&](std::span<const Matrix> ws, std::span<float* const> ys) {
    size_t bytes = 0;
    for (const Matrix& m : ws)
      bytes = std::max(bytes, kernels::matmul_scratch_bytes(m.type, m.cols, n));
    const Status s = kernels::matmul_multi(ws, b.h.data(), n, ys, pool_, b.mm.get(bytes));
    if (!s.ok()) std::abort();
  };
  auto matmul3 = [&](const Matrix& w0, float* y0, const Matrix& w1, float* y1, const Matrix& w2,
                     float* y2) {
    const Matrix ws[3] = {w0, w1, w2};
    float* const ys[3] = {y0, y1, y2};
    multi(ws, ys);
  };

  for (const Segment& sg : segs) {
    for (int i = 0; i < sg.n; ++i) {
      const int p = sg.pos0 + i;
      b.pos[sg.t0 + i] = p;
      b.slot[sg.t0 + i] =
          sg.blocks.empty() ? -1 : sg.blocks[p / kSlotAlign] * kSlotAlign + p % kSlotAlign;
    }
  }
  for (Rope& rope : b.ropes) {
    const int half = c_.n_rot / 2;
    for (int t = 0; t < n; ++t) {
      for (int i = 0; i < half; ++i) {
        const double theta = double(b.pos[t]) * rope.freq_scale * rope.inv_freq[i];
        rope.cos[t * half + i] = float(std::cos(theta)) * c_.rope_attn_factor;
        rope.sin[t * half + i] = float(std::sin(theta)) * c_.rope_attn_factor;
      }
    }
  }

  // Embeddings: row t of token_embd, dequantized.
  const size_t embd_row = row_bytes(traits(w.token_embd.type), E);
  for (int t = 0; t < n; ++t) {
    const auto* row = static_cast<const uint8_t*>(w.token_embd.data) + size_t(tokens[t]) * embd_row;
    float* x = b.x.data() + size_t(t) * E;
    kernels::dequantize_row_ref(w.token_embd.type, row, x, E);
    if (c_.embd_scale != 1.0f) {
      for (int i = 0; i < E; ++i) x[i] *= c_.embd_scale;
    }
  }

  const int qd = c_.q_dim(), kd = c_.k_dim(), vd = c_.v_dim();
  for (int il = 0; il < c_.n_layer; ++il) {
    const LayerWeights& L = w.layers[il];
    for_rows(pool_, n, [&](int t) {
      rms_norm(ops, &b.x[size_t(t) * E], L.attn_norm.data(), &b.h[size_t(t) * E], E, c_.norm_eps);
    });
    if (c_.fused_qkv) {
      matmul(L.wqkv, b.h.data(), n, b.qkv.data());
      for (int t = 0; t < n; ++t) {
        const float* src = &b.qkv[size_t(t) * (qd + kd + vd)];
        std::memcpy(&b.q[size_t(t) * qd], src, qd * sizeof(float));
        std::memcpy(&b.k[size_t(t) * kd], src + qd, kd * sizeof(float));
        std::memcpy(&b.v[size_t(t) * vd], src + qd + kd, vd * sizeof(float));
      }
    } else {
      matmul3(L.wq, b.q.data(), L.wk, b.k.data(), L.wv, b.v.data());
    }
    const Rope& rope = b.ropes[b.layer_rope[il]];
    const int half = c_.n_rot / 2;
    for_rows(pool_, n, [&](int t) {
      float* q = &b.q[size_t(t) * qd];
      float* k = &b.k[size_t(t) * kd];
      float* v = &b.v[size_t(t) * vd];
      if (c_.qkv_bias) {
        for (int i = 0; i < qd; ++i) q[i] += L.bq[i];
        for (int i = 0; i < kd; ++i) k[i] += L.bk[i];
        for (int i = 0; i < vd; ++i) v[i] += L.bv[i];
      }
      if (c_.qk_norm) {
        for (int hh = 0; hh < c_.n_head; ++hh) {
          float* qh = q + size_t(hh) * c_.head_dim;
          rms_norm(ops, qh, L.q_norm.data(), qh, c_.head_dim, c_.norm_eps);
        }
        for (int hh = 0; hh < c_.n_head_kv; ++hh) {
          float* kh = k + size_t(hh) * c_.head_dim;
          rms_norm(ops, kh, L.k_norm.data(), kh, c_.head_dim, c_.norm_eps);
        }
      }
      rotate(q, c_.n_head, c_.head_dim, c_.n_rot, c_.rope_style, &rope.cos[t * half],
             &rope.sin[t * half]);
      rotate(k, c_.n_head_kv, c_.head_dim, c_.n_rot, c_.rope_style, &rope.cos[t * half],
             &rope.sin[t * half]);
    });
    // Keys and values go in before attention so that each token sees itself and the
    // earlier tokens of its batch (the causal mask hides the later ones).
    for (int t = 0; t < n; ++t) {
      if (b.slot[t] < 0)
        cache_.store(il, b.pos[t], &b.k[size_t(t) * kd], &b.v[size_t(t) * vd]);
      else
        cache_.store_slot(il, b.slot[t], &b.k[size_t(t) * kd], &b.v[size_t(t) * vd]);
    }
    // f16 cache: matrix products over the cache, the same for a prompt and one token; q8_0:
    // the per-slot loop (one sequence, its own cache).
    if (cache_.type() == KvType::kF16)
      attention_f16(il, segs);
    else
      attention(il, n, segs[0].pos0);
    matmul(L.wo, b.attn.data(), n, b.o.data());
    for_rows(pool_, n, [&](int t) {
      float* o = &b.o[size_t(t) * E];
      if (c_.post_norms) rms_norm(ops, o, L.post_attn_norm.data(), o, E, c_.norm_eps);
      float* x = &b.x[size_t(t) * E];
      for (int i = 0; i < E; ++i) x[i] += o[i];
      rms_norm(ops, x, L.ffn_norm.data(), &b.h[size_t(t) * E], E, c_.norm_eps);
    });

    const int F = c_.n_ff;
    if (c_.fused_gate_up) {
      matmul(L.w_up, b.h.data(), n, b.gu.data());
      for (int t = 0; t < n; ++t) {
        std::memcpy(&b.g[size_t(t) * F], &b.gu[size_t(t) * 2 * F], F * sizeof(float));
        std::memcpy(&b.u[size_t(t) * F], &b.gu[size_t(t) * 2 * F + F], F * sizeof(float));
      }
    } else {
      const Matrix ws[2] = {L.w_gate, L.w_up};
      float* const ys[2] = {b.g.data(), b.u.data()};
      multi(ws, ys);
    }
    for_rows(pool_, n, [&](int t) {
      float* g = &b.g[size_t(t) * F];
      const float* u = &b.u[size_t(t) * F];
      if (c_.ffn_act == FfnActivation::kGeluTanh)
        ops.gelu_mul(g, u, F);
      else
        ops.silu_mul(g, u, F);
    });
    matmul(L.w_down, b.g.data(), n, b.o.data());
    for_rows(pool_, n, [&](int t) {
      float* o = &b.o[size_t(t) * E];
      if (c_.post_norms) rms_norm(ops, o, L.post_ffw_norm.data(), o, E, c_.norm_eps);
      float* x = &b.x[size_t(t) * E];
      for (int i = 0; i < E; ++i) x[i] += o[i];
    });
  }

  if (embed_sum_) {  // embedding: sum the final-normed hidden states, no logits
    for (int t = 0; t < n; ++t) {
      float* h = &b.h[size_t(t) * E];
      rms_norm(ops, &b.x[size_t(t) * E], w.output_norm.data(), h, E, c_.norm_eps);
      for (int i = 0; i < E; ++i) embed_sum_[i] += h[i];
    }
    return;
  }
  // Logits of the last position of each segment that asks, one batched matmul (the kernels
  // are batch-invariant: each row is what a batch of one gives).
  int n_out = 0;
  for (const Segment& sg : segs) {
    if (!sg.logits) continue;
    rms_norm(ops, &b.x[size_t(sg.t0 + sg.n - 1) * E], w.output_norm.data(),
             &b.h[size_t(n_out) * E], E, c_.norm_eps);
    ++n_out;
  }
  if (n_out == 0) return;
  matmul(w.output, b.h.data(), n_out, b.logits.data());
  if (c_.final_softcap > 0) {
    for (float& l : std::span<float>(b.logits.data(), size_t(n_out) * c_.n_vocab))
      l = c_.final_softcap * std::tanh(l / c_.final_softcap);
  }
}

// Attention over an f16 cache with the matmul kernels, per work item = (segment, block of
// up to kQueryBlock queries, KV head g):
//   S (block · group, n_keys) = Q_g · K_gᵀ     K_g: the cache's rows, one head's columns
//   P = softmax(S · scale) under the causal / sliding-window mask, row by row
//   Y (block · group, hd_v)   = P · V_gᵀᵀ      V_gᵀ: rows of the transposed V cache
// The same code runs a prompt and a single decode step, and the keys a query reads start on a
// kSlotAlign boundary and are padded to a multiple of it (with zero weights): a query's result
// then does not depend on how the prompt was split into calls, bit for bit, so a reused prefix
// (chat turns, repeated requests) gives exactly the tokens a fresh prompt would.
//
// Where the keys live: a context's own cache holds position p in slot p (full layers; rings
// are read whole and masked by slot_pos). A paged pool holds them in the sequence's blocks:
// the key range is cut into runs of physically consecutive blocks, one matmul per run (a
// sequence that allocated its blocks in order is one run, a shared prefix adds one).
//
// Many items (a batch of sequences, a long prompt) run in parallel, one per thread, their
// matmuls inline; few items (one decode step) run one after another with each matmul split
// across the pool. Both give the same bits: every output element is one thread's dot product.
void Context::attention_f16(int il, std::span<const Segment> segs) {
  Buffers& b = *buf_;
  const int n_kv = c_.n_head_kv;
  b.items.clear();
  for (size_t s = 0; s < segs.size(); ++s) {
    for (int tq = 0; tq < segs[s].n; tq += Buffers::kQueryBlock) {
      for (int g = 0; g < n_kv; ++g) b.items.push_back({int(s), tq, g});
    }
  }
  const int n_items = int(b.items.size());
  if (pool_.n_threads() > 1 && n_items >= 2 * pool_.n_threads()) {
    pool_.parallel_for(n_items, [&](int64_t i, int thread) {
      const Buffers::Item& it = b.items[i];
      attend_item(il, segs[it.seg], it.tq, it.g, b.attn_scratch[thread]);
    });
  } else {
    for (const Buffers::Item& it : b.items)
      attend_item(il, segs[it.seg], it.tq, it.g, b.attn_scratch[0]);
  }
}

void Context::attend_item(int il, const Segment& sg, int tq, int g, AttnScratch& a) {
  Buffers& b = *buf_;
  const KvLayer& L = cache_.layer(il);
  const kernels::VecOps& ops = kernels::vec_ops();
  const AttentionDims dims = attention_dims(c_, il);
  const int hd = dims.hd, hdv = dims.hdv, group = dims.group;
  const int qd = dims.qd, window = dims.window;
  const float scale = dims.scale;
  auto matmul = [&](const Matrix& m, const float* x, int64_t batch, float* y) {
    const Status s = kernels::matmul(
        m, x, batch, y, pool_, a.mm.get(kernels::matmul_scratch_bytes(m.type, m.cols, batch)));
    if (!s.ok()) std::abort();  // shapes and types are fixed by construction
  };

  const int t1 = std::min(sg.n, tq + Buffers::kQueryBlock);
  const int nq = (t1 - tq) * group;
  const int pos_first = sg.pos0 + tq, pos_last = sg.pos0 + t1 - 1;
  const bool own = sg.blocks.empty();
  // Keys this block can see: logical slots [k0, k0 + nk), aligned and padded.
  int k0 = 0, nk = L.n_alloc;
  if (!L.ring) {
    const int first = window > 0 ? std::max(0, pos_first - window + 1) : 0;
    k0 = first / kSlotAlign * kSlotAlign;
    const int cap = own ? L.n_alloc : int(sg.blocks.size()) * kSlotAlign;
    nk = std::min(cap - k0, (pos_last + 1 - k0 + kSlotAlign - 1) / kSlotAlign * kSlotAlign);
  }
  // Runs of physically consecutive slots, each inside one region of the transposed V cache.
  a.runs.clear();
  for (int lb = k0 / kSlotAlign; lb < (k0 + nk) / kSlotAlign; ++lb) {
    const int slot = (own ? lb : sg.blocks[lb]) * kSlotAlign;
    const AttnScratch::Run* last = a.runs.empty() ? nullptr : &a.runs.back();
    if (last && last->slot + last->len == slot && slot % L.vt_region != 0)
      a.runs.back().len += kSlotAlign;
    else
      a.runs.push_back({lb * kSlotAlign - k0, slot, kSlotAlign});
  }
  const bool one_run = a.runs.size() == 1;

  // Q_g: row (t - tq) * group + j is query head g * group + j of token t.
  for (int t = tq; t < t1; ++t) {
    std::memcpy(&a.q[size_t(t - tq) * group * hd],
                &b.q[size_t(sg.t0 + t) * qd + size_t(g) * group * hd], sizeof(float) * group * hd);
  }
  auto k_view = [&](const AttnScratch::Run& r) {
    return Matrix{TensorType::F16, L.k_row(r.slot) + size_t(g) * hd * 2, r.len, hd,
                  L.k_row_bytes};
  };
  auto vt_view = [&](const AttnScratch::Run& r) {
    return Matrix{TensorType::F16, reinterpret_cast<const uint8_t*>(L.vt_at(g * hdv, r.slot)),
                  hdv, r.len, size_t(L.vt_stride) * 2};
  };
  float* S = a.s.get();
  if (one_run) {
    matmul(k_view(a.runs[0]), a.q.get(), nq, S);  // S (nq, nk)
  } else {
    for (const AttnScratch::Run& r : a.runs) {
      matmul(k_view(r), a.q.get(), nq, a.t.get());  // (nq, r.len)
      for (int row = 0; row < nq; ++row) {
        std::memcpy(S + size_t(row) * nk + r.col, a.t.get() + size_t(row) * r.len,
                    sizeof(float) * r.len);
      }
    }
  }
  for_rows(pool_, nq, [&](int r) {
    const int p = pos_first + r / group;
    float* row = S + size_t(r) * nk;
    // Visible keys: a run [lo, hi) of logical slots for full layers; rings by slot_pos.
    int lo = 0, hi = nk;
    if (L.ring) {
      for (int i = 0; i < nk; ++i) {
        const int kp = i < L.n_slots ? L.slot_pos[i] : -1;
        if (!(kp >= 0 && kp <= p && (window <= 0 || p - kp < window))) row[i] = kNegInf;
      }
    } else {
      hi = std::min(nk, p - k0 + 1);
      lo = window > 0 ? std::clamp(p - window + 1 - k0, 0, hi) : 0;
      for (int i = 0; i < lo; ++i) row[i] = 0.0f;
      for (int i = hi; i < nk; ++i) row[i] = 0.0f;
    }
    float mx = kNegInf;
    for (int i = lo; i < hi; ++i) mx = std::max(mx, row[i]);
    if (mx == kNegInf) {  // no visible key (cannot happen causally; keeps P finite)
      for (int i = lo; i < hi; ++i) row[i] = 0.0f;
      return;
    }
    // exp((s - max) · scale), normalized: the scale folds into the exponent's argument.
    for (int i = lo; i < hi; ++i) row[i] *= scale;
    const float inv = 1.0f / ops.exp_shifted(row + lo, hi - lo, mx * scale);
    for (int i = lo; i < hi; ++i) row[i] *= inv;
  });
  // Y (nq, hd_v) = P · V_g, V_gᵀ's rows being dims g·hd_v.. of the transposed cache; one
  // product per run, summed in the runs' order.
  float* Y = a.y.get();
  if (one_run) {
    matmul(vt_view(a.runs[0]), S, nq, Y);
  } else {
    for (size_t i = 0; i < a.runs.size(); ++i) {
      const AttnScratch::Run& r = a.runs[i];
      for (int row = 0; row < nq; ++row) {
        std::memcpy(a.t.get() + size_t(row) * r.len, S + size_t(row) * nk + r.col,
                    sizeof(float) * r.len);
      }
      float* dst = i == 0 ? Y : a.y2.get();
      matmul(vt_view(r), a.t.get(), nq, dst);
      if (i > 0) {
        for (size_t j = 0; j < size_t(nq) * hdv; ++j) Y[j] += dst[j];
      }
    }
  }
  for (int r = 0; r < nq; ++r) {
    const int t = sg.t0 + tq + r / group, j = r % group;
    std::memcpy(&b.attn[size_t(t) * c_.n_head * hdv + size_t(g * group + j) * hdv],
                &Y[size_t(r) * hdv], sizeof(float) * hdv);
  }
}

// softmax(q · kᵀ · scale) · v over a q8_0 cache (slot-major K and V), written to b.attn.
// Work items are (token, KV head[, chunk of the KV length]); the `group` query heads that
// share a KV head are done together so each cached row is read once for all of them. A
// decode step (one token) splits the KV length into chunks across threads and merges their
// partial softmaxes (max, sum, weighted values) afterwards.
void Context::attention(int il, int n_tok, int pos0) {
  Buffers& b = *buf_;
  const KvLayer& L = cache_.layer(il);
  const kernels::VecOps& ops = kernels::vec_ops();
  const AttentionDims dims = attention_dims(c_, il);
  const int hd = dims.hd, hdv = dims.hdv, n_kv = dims.n_kv, group = dims.group;
  const int qd = dims.qd, kd = dims.kd, vd = dims.vd, window = dims.window;
  const float scale = dims.scale;
  const size_t n_ctx = size_t(cache_.n_ctx());

  // The slots a query at position p may look at: full layers [lo, p] (slot = position),
  // rings all slots (filtered by slot_pos).
  auto range = [&](int p, int& s0, int& s1) {
    if (L.ring) {
      s0 = 0;
      s1 = L.n_slots;
    } else {
      s0 = window > 0 ? std::max(0, p - window + 1) : 0;
      s1 = p + 1;
    }
  };
  int n_chunks = 1;
  if (n_tok == 1) {
    int s0, s1;
    range(pos0, s0, s1);
    n_chunks = std::clamp((s1 - s0) / 256, 1, b.max_chunks);
  }

  const int64_t n_items = int64_t(n_tok) * n_kv * n_chunks;
  pool_.parallel_for(n_items, [&](int64_t item, int thread) {
    const int t = int(item / (n_kv * n_chunks));
    const int g = int(item / n_chunks % n_kv);
    const int c = int(item % n_chunks);
    const int p = pos0 + t;
    int s0, s1;
    range(p, s0, s1);
    const int span = s1 - s0;
    const int c0 = s0 + int(int64_t(span) * c / n_chunks),
              c1 = s0 + int(int64_t(span) * (c + 1) / n_chunks);
    const int len = c1 - c0;
    float* sc = &b.scores[size_t(thread) * group * n_ctx];
    float* krow = &b.kv_rows[size_t(thread) * (kd + vd)];
    float* vrow = krow + kd;
    const float* q = &b.q[size_t(t) * qd + size_t(g) * group * hd];

    for (int s = c0; s < c1; ++s) {
      const int i = s - c0;
      bool valid = true;
      if (L.ring) {
        const int sp = L.slot_pos[s];
        valid = sp >= 0 && sp <= p && (window <= 0 || p - sp < window);
      }
      if (!valid) {
        for (int h = 0; h < group; ++h) sc[size_t(h) * len + i] = kNegInf;
        continue;
      }
      {
        kernels::dequantize_row_ref(TensorType::Q8_0, L.k_row(s), krow, kd);
        const float* k = krow + size_t(g) * hd;
        for (int h = 0; h < group; ++h) {
          float d = 0;
          for (int j = 0; j < hd; ++j) d += k[j] * q[size_t(h) * hd + j];
          sc[size_t(h) * len + i] = d * scale;
        }
      }
    }
    float m[64], l[64];  // group <= 64 (checked at load: n_head / n_head_kv)
    for (int h = 0; h < group; ++h) {
      float* row = sc + size_t(h) * len;
      m[h] = kNegInf;
      for (int i = 0; i < len; ++i) m[h] = std::max(m[h], row[i]);
      l[h] = m[h] == kNegInf ? 0.0f : ops.exp_shifted(row, len, m[h]);
    }
    // Weighted values: into the output directly, or into this chunk's partial slot.
    float* acc_base =
        n_chunks == 1 ? nullptr : &b.part[(size_t(g) * b.max_chunks + c) * group * (2 + hdv)];
    float* acc[64];
    for (int h = 0; h < group; ++h) {
      acc[h] = n_chunks == 1 ? &b.attn[size_t(t) * c_.n_head * hdv + size_t(g * group + h) * hdv]
                             : acc_base + size_t(h) * (2 + hdv) + 2;
      std::fill(acc[h], acc[h] + hdv, 0.0f);
    }
    for (int s = c0; s < c1; ++s) {
      const int i = s - c0;
      {
        kernels::dequantize_row_ref(TensorType::Q8_0, L.v_row(s), vrow, vd);
        const float* v = vrow + size_t(g) * hdv;
        for (int h = 0; h < group; ++h) {
          const float pr = sc[size_t(h) * len + i];
          for (int j = 0; j < hdv; ++j) acc[h][j] += pr * v[j];
        }
      }
    }
    for (int h = 0; h < group; ++h) {
      if (n_chunks == 1) {
        const float inv = l[h] > 0 ? 1.0f / l[h] : 0.0f;
        for (int j = 0; j < hdv; ++j) acc[h][j] *= inv;
      } else {
        acc[h][-2] = m[h];
        acc[h][-1] = l[h];
      }
    }
  });

  if (n_chunks == 1) return;
  // Merge the chunks of the single decode token: rescale each by exp(m_c - max m).
  for (int g = 0; g < n_kv; ++g) {
    for (int h = 0; h < group; ++h) {
      float* out = &b.attn[size_t(g * group + h) * hdv];
      float mx = kNegInf;
      for (int c = 0; c < n_chunks; ++c) {
        mx = std::max(mx, b.part[((size_t(g) * b.max_chunks + c) * group + h) * (2 + hdv)]);
      }
      std::fill(out, out + hdv, 0.0f);
      float total = 0;
      if (mx == kNegInf) continue;
      for (int c = 0; c < n_chunks; ++c) {
        const float* pc = &b.part[((size_t(g) * b.max_chunks + c) * group + h) * (2 + hdv)];
        if (pc[0] == kNegInf) continue;
        const float f = std::exp(pc[0] - mx);
        total += f * pc[1];
        for (int j = 0; j < hdv; ++j) out[j] += f * pc[2 + j];
      }
      const float inv = total > 0 ? 1.0f / total : 0.0f;
      for (int j = 0; j < hdv; ++j) out[j] *= inv;
    }
  }
}

}  // namespace minnow::model
