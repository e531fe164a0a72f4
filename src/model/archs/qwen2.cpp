// qwen2: Qwen 2 / 2.5. A llama with biases on the Q, K and V projections and NeoX RoPE.
#include "model/arch.h"

namespace minnow::model {

namespace {
Status configure(const gguf::File&, const ModelInfo&, ModelConfig& c) {
  c.rope_style = RopeStyle::kNeox;
  c.ffn_act = FfnActivation::kSilu;
  c.qkv_bias = true;
  return Status();
}
}  // namespace

extern const ArchSpec kQwen2Arch{"qwen2", configure};

}  // namespace minnow::model
