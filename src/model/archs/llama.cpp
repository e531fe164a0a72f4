// llama: Llama 2/3.x, SmolLM/SmolLM2, Mistral, TinyLlama. Pre-norm transformer with RMSNorm,
// grouped-query attention and a SiLU-gated FFN. RoPE rotates adjacent pairs: llama.cpp's
// converter permutes the Q/K rows of Hugging Face checkpoints so that this holds. Llama 3.1+
// files carry rope_freqs.weight (frequency factors), picked up by the weight loader.
#include "model/arch.h"

namespace minnow::model {

namespace {
Status configure(const gguf::File&, const ModelInfo&, ModelConfig& c) {
  c.rope_style = RopeStyle::kNormal;
  c.ffn_act = FfnActivation::kSilu;
  return Status();
}
}  // namespace

extern const ArchSpec kLlamaArch{"llama", configure};

}  // namespace minnow::model
