// A model's shape and the knobs in which the architectures differ (STYLE.md: "variation as
// knobs, not copies"). An architecture file (archs/<name>.cpp) reads its hyper-parameters
// from the GGUF into a ModelConfig; one forward pass (context.cpp) runs every architecture
// from it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace minnow::model {

enum class RopeStyle {
  kNormal,  // rotate adjacent pairs (2i, 2i+1): llama (its converter permutes Q/K to match)
  kNeox,    // rotate (i, i + n_rot/2): qwen2, gemma3, phi3
};

enum class FfnActivation { kSilu, kGeluTanh };

struct LayerConfig {
  bool sliding = false;  // attends to the last `sliding_window` positions only
  float rope_base = 10000.0f;
  float rope_freq_scale = 1.0f;  // positions are multiplied by this (linear RoPE scaling)
};

struct ModelConfig {
  std::string arch;  // general.architecture
  int n_vocab = 0;
  int n_embd = 0;
  int n_layer = 0;
  int n_head = 0;
  int n_head_kv = 0;
  int head_dim = 0;    // of Q and K (key_length)
  int head_dim_v = 0;  // of V (value_length)
  int n_ff = 0;
  int n_ctx_train = 0;
  float norm_eps = 1e-5f;

  RopeStyle rope_style = RopeStyle::kNormal;
  int n_rot = 0;                  // leading dimensions of each head that RoPE rotates
  float rope_attn_factor = 1.0f;  // cos/sin multiplied by this (LongRoPE's mscale)
  int rope_orig_ctx = 0;          // LongRoPE: contexts beyond this use the long factors

  int sliding_window = 0;  // 0 = none
  std::vector<LayerConfig> layers;

  // Tensor layout knobs.
  bool qkv_bias = false;       // attn_q/k/v.bias (qwen2)
  bool fused_qkv = false;      // attn_qkv (phi3)
  bool fused_gate_up = false;  // ffn_up holds gate then up (phi3)
  bool qk_norm = false;        // RMSNorm per head on Q and K (gemma3)
  bool post_norms = false;     // RMSNorm after attention and FFN, before the residual (gemma3)

  FfnActivation ffn_act = FfnActivation::kSilu;
  float embd_scale = 1.0f;     // token embeddings multiplied by this (gemma: sqrt(n_embd))
  float attn_scale = 0.0f;     // softmax(q·k·attn_scale); 0 = 1/sqrt(head_dim)
  float final_softcap = 0.0f;  // logits = c·tanh(logits / c) when > 0

  int q_dim() const { return n_head * head_dim; }
  int k_dim() const { return n_head_kv * head_dim; }
  int v_dim() const { return n_head_kv * head_dim_v; }
};

}  // namespace minnow::model
