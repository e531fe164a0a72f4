// A model's weights, declared once and validated once at load (STYLE.md): every tensor the
// config calls for is looked up by its name from tensor_names.h, its shape checked against
// the config, and either kept as a view into the mapped file (matrices, used by the matmul
// kernels in their GGUF layout) or converted to f32 (vectors: norms, biases, RoPE factors —
// small, read on every token, and simpler to use in one type).
// Weights are immutable after load and shared by every sequence.
#pragma once

#include <vector>

#include "gguf/gguf.h"
#include "kernels/matmul.h"
#include "model/config.h"
#include "util/status.h"

namespace minnow::model {

using Matrix = kernels::WeightView;  // (rows = outputs, cols = inputs), GGUF layout
using Vector = std::vector<float>;   // empty when the model has no such tensor

struct LayerWeights {
  Vector attn_norm;       // (n_embd)
  Matrix wq, wk, wv;      // (q_dim | k_dim | v_dim, n_embd); unset when fused
  Matrix wqkv;            // (q_dim + k_dim + v_dim, n_embd) phi3
  Vector bq, bk, bv;      // (q_dim), (k_dim), (v_dim) qwen2
  Vector q_norm, k_norm;  // (head_dim) gemma3
  Matrix wo;              // (n_embd, n_head * head_dim_v)
  Vector post_attn_norm;  // (n_embd) gemma3
  Vector ffn_norm;        // (n_embd)
  Matrix w_gate, w_up;    // (n_ff, n_embd); fused: w_up is (2 * n_ff, n_embd), gate first
  Matrix w_down;          // (n_embd, n_ff)
  Vector post_ffw_norm;   // (n_embd) gemma3
};

struct Weights {
  Matrix token_embd;             // (n_vocab, n_embd): row t is token t's embedding
  Vector output_norm;            // (n_embd)
  Matrix output;                 // (n_vocab, n_embd); token_embd when the file ties them
  Vector rope_freqs;             // (n_rot / 2) Llama 3 frequency factors
  Vector rope_long, rope_short;  // (n_rot / 2) Phi-3 LongRoPE factors
  std::vector<LayerWeights> layers;
  bool tied_output = false;
};

// Looks up and checks every tensor `config` needs. A missing tensor, a wrong shape or a type
// the kernels cannot multiply is an error naming the file and the tensor.
Result<Weights> load_weights(const gguf::File& file, const ModelConfig& config);

}  // namespace minnow::model
