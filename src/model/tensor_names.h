// GGUF tensor names, in one table (STYLE.md "Names from one table"), spelled as llama.cpp's
// converters write them. Per-layer names carry "blk.%d."; tensor_name() fills the layer in.
#pragma once

#include <string>
#include <string_view>

namespace minnow::model {

enum class TensorName {
  kTokenEmbd,
  kOutputNorm,
  kOutput,
  kRopeFreqs,         // Llama 3 RoPE frequency factors
  kRopeFactorsLong,   // Phi-3 LongRoPE
  kRopeFactorsShort,  // Phi-3 LongRoPE
  // per layer
  kAttnNorm,
  kAttnQ,
  kAttnK,
  kAttnV,
  kAttnQkv,  // fused q, k, v (phi3)
  kAttnOutput,
  kAttnQNorm,
  kAttnKNorm,
  kPostAttnNorm,
  kFfnNorm,
  kFfnGate,
  kFfnUp,  // phi3: gate and up fused
  kFfnDown,
  kPostFfwNorm,
  kCount,
};

constexpr std::string_view kTensorPatterns[] = {
    "token_embd",         "output_norm",          "output",
    "rope_freqs",         "rope_factors_long",    "rope_factors_short",
    "blk.%d.attn_norm",   "blk.%d.attn_q",        "blk.%d.attn_k",
    "blk.%d.attn_v",      "blk.%d.attn_qkv",      "blk.%d.attn_output",
    "blk.%d.attn_q_norm", "blk.%d.attn_k_norm",   "blk.%d.post_attention_norm",
    "blk.%d.ffn_norm",    "blk.%d.ffn_gate",      "blk.%d.ffn_up",
    "blk.%d.ffn_down",    "blk.%d.post_ffw_norm",
};
static_assert(std::size(kTensorPatterns) == static_cast<size_t>(TensorName::kCount),
              "every TensorName needs its pattern, in enum order");

// "blk.3.attn_q.weight" for (kAttnQ, 3); suffix is "weight" or "bias".
inline std::string tensor_name(TensorName name, int layer = -1,
                               std::string_view suffix = "weight") {
  const std::string_view pattern = kTensorPatterns[static_cast<size_t>(name)];
  // Built by appends: GCC 12 warns falsely (-Wrestrict) on chained operator+ here.
  std::string out;
  out.reserve(pattern.size() + suffix.size() + 8);
  if (pattern.starts_with("blk.%d")) {
    out.append("blk.");
    out.append(std::to_string(layer));
    out.append(pattern.substr(6));
  } else {
    out.append(pattern);
  }
  out.push_back('.');
  out.append(suffix);
  return out;
}

}  // namespace minnow::model
