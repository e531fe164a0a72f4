// phi3: Phi-3 / 3.5 / 4. A llama with Q, K, V in one matrix (attn_qkv, rows q then k then v)
// and gate and up in one (ffn_up, rows gate then up), NeoX RoPE over rope.dimension_count
// dimensions. LongRoPE files carry rope_factors_long/short (picked by the context length
// against rope.scaling.original_context_length) and rope.scaling.attn_factor.
// The sliding window some Phi-3 files declare is not applied, as in llama.cpp.
#include "model/arch.h"

namespace minnow::model {

namespace {
Status configure(const gguf::File&, const ModelInfo&, ModelConfig& c) {
  c.rope_style = RopeStyle::kNeox;
  c.ffn_act = FfnActivation::kSilu;
  c.fused_qkv = true;
  c.fused_gate_up = true;
  c.sliding_window = 0;
  return Status();
}
}  // namespace

extern const ArchSpec kPhi3Arch{"phi3", configure};

}  // namespace minnow::model
