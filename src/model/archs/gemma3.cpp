// gemma3: Gemma 3. Differs from llama in
//  - interleaved attention: five sliding-window layers (window = attention.sliding_window)
//    then one global layer, repeating; sliding layers use RoPE base 10000 (freq_base_swa when
//    the file gives one), global layers rope.freq_base with the file's linear scaling;
//  - RMSNorm per head on Q and K, and norms after attention and after the FFN as well as
//    before (the GGUF stores Gemma's norm weights already as 1 + w);
//  - embeddings multiplied by sqrt(n_embd); GELU (tanh) gate; NeoX RoPE; tied output;
//  - attention scale 1/sqrt(key_length), not 1/sqrt(n_embd / n_head).
#include <cmath>

#include "model/arch.h"
#include "model/gguf_keys.h"

namespace minnow::model {

namespace {
constexpr int kSlidingPattern = 6;  // layers il with il % 6 == 5 are global

Status configure(const gguf::File& file, const ModelInfo&, ModelConfig& c) {
  c.rope_style = RopeStyle::kNeox;
  c.ffn_act = FfnActivation::kGeluTanh;
  c.qk_norm = true;
  c.post_norms = true;
  c.embd_scale = std::sqrt(static_cast<float>(c.n_embd));
  // Gemma 3 27B (62 layers) scales by the model's own head size rather than key_length.
  const int scale_dim = c.n_layer == 62 ? c.n_embd / c.n_head : c.head_dim;
  c.attn_scale = 1.0f / std::sqrt(static_cast<float>(scale_dim));
  auto softcap = get_number_or(file, gguf_key(Key::kFinalLogitSoftcapping, c.arch), 0.0f);
  if (!softcap.ok()) return Status::error(softcap.error());
  c.final_softcap = *softcap;
  if (c.sliding_window <= 0) {
    return Status::error(file.path() + ": missing key " + gguf_key(Key::kSlidingWindow, c.arch) +
                         " (gemma3 needs its sliding window)");
  }
  auto swa_base = get_number_or(file, gguf_key(Key::kRopeFreqBaseSwa, c.arch), 10000.0f);
  if (!swa_base.ok()) return Status::error(swa_base.error());
  // The pattern: a per-layer bool array, a period, or Gemma 3's default of 6.
  const std::string pattern_key = gguf_key(Key::kSlidingWindowPattern, c.arch);
  std::vector<bool> sliding(c.n_layer);
  const gguf::Value* pattern = file.find(pattern_key);
  if (pattern && pattern->type == gguf::ValueType::ARRAY) {
    if (pattern->elem_type != gguf::ValueType::BOOL || pattern->count != uint64_t(c.n_layer)) {
      return Status::error(file.path() + ": " + pattern_key + " must be " +
                           std::to_string(c.n_layer) + " booleans");
    }
    for (int il = 0; il < c.n_layer; ++il) sliding[il] = pattern->elems[il] != 0;
  } else {
    auto period = get_number_or(file, pattern_key, kSlidingPattern);
    if (!period.ok()) return Status::error(period.error());
    const int n = static_cast<int>(*period);
    for (int il = 0; il < c.n_layer; ++il) sliding[il] = n > 0 && il % n < n - 1;
  }
  for (int il = 0; il < c.n_layer; ++il) {
    if (sliding[il]) {
      c.layers[il] = LayerConfig{true, *swa_base, 1.0f};
    }
  }
  return Status();
}
}  // namespace

extern const ArchSpec kGemma3Arch{"gemma3", configure};

}  // namespace minnow::model
