// Tiny random-weight GGUF models for the engine tests.
//
// A tiny model is a real GGUF file, laid out exactly as llama.cpp's converters write one
// (same keys, tensor names, shapes and element types), but with a few hundred kilobytes of
// deterministic random weights. It exercises the knobs of each architecture (GQA, biases,
// tied output, RoPE frequency factors, QK-norm, sliding windows, a key length that differs
// from n_embd / n_head, fused QKV) at sizes where an independent float64 reference
// (tests/python/reference_model.py) computes every logit in milliseconds.
//
// Weights are drawn from a fixed PRNG seeded by (spec.seed, tensor name), so dropping or
// adding one tensor leaves every other tensor's values unchanged, and scaled so that
// activations stay O(1) through the layers: matrices N(0, 1/fan_in), norm weights 1 + N(0,
// 0.1^2), embeddings N(0, 1) (smaller where gemma3's sqrt(n_embd) scaling or a tied output
// would inflate them).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "gguf/tensor_type.h"
#include "util/status.h"

namespace minnow::tiny {

struct TinyModelSpec {
  std::string arch = "llama";  // llama | qwen2 | gemma3 | phi3: decides keys, tensors, wiring
  // Written as general.architecture and as the prefix of the hyper-parameter keys; differs
  // from `arch` only in tests of an unknown architecture.
  std::string arch_name = "llama";
  std::string variant = "default";
  TensorType type = TensorType::F32;  // of the 2-D weights; norms, biases, factors stay F32
  uint64_t seed = 1;

  uint32_t n_vocab = 300;
  uint32_t n_embd = 64;
  uint32_t n_head = 4;
  uint32_t n_head_kv = 2;
  uint32_t head_dim = 16;  // key_length = value_length
  uint32_t n_ff = 128;
  uint32_t n_layer = 2;
  uint32_t n_ctx = 128;  // <arch>.context_length
  uint32_t rope_dim = 16;
  float rope_freq_base = 10000.0f;
  float rms_eps = 1e-5f;
  bool write_key_length = false;  // <arch>.attention.key_length / value_length

  bool tied_output = false;       // no output.weight: the output layer is token_embd
  bool qkv_bias = false;          // qwen2: attn_q/k/v.bias
  bool rope_freqs = false;        // llama: rope_freqs.weight (Llama 3 frequency factors)
  bool rope_factors = false;      // phi3: rope_factors_long/short.weight (LongRoPE)
  uint32_t original_ctx = 0;      // phi3: rope.scaling.original_context_length when nonzero
  uint32_t sliding_window = 0;    // gemma3: attention.sliding_window when nonzero
  float rope_scaling_factor = 0;  // rope.scaling.type linear + factor when nonzero

  bool tokenizer = true;                  // tokenizer.ggml.* and a chat template
  std::vector<std::string> drop_tensors;  // names left out (tests of missing tensors)
};

// The spec of a tiny model of `arch` with weights of `type` and the named variant:
//   llama:  default (own output.weight) | tied | rope_freqs | mha (4 kv heads, no GQA)
//   qwen2:  default (q/k/v biases, own output) | tied
//   gemma3: default (7 layers, window 4, layers 0-4 and 6 sliding, 5 global) | rope_scaling |
//           mqa (1 kv head)
// Every other model has 4 query heads over 2 kv heads.
//   phi3:   default (no factors) | longrope (rope_factors_long/short, original context 64)
// Types with 256-element blocks (the k-quants) get dimensions that are multiples of 256.
// The error names the unknown arch, variant or a type without a reference quantizer.
Result<TinyModelSpec> tiny_model_spec(std::string_view arch, TensorType type = TensorType::F32,
                                      std::string_view variant = "default");

// The variants tiny_model_spec accepts for `arch` (empty for an unknown arch).
std::vector<std::string> tiny_model_variants(std::string_view arch);

// Writes the GGUF file. Deterministic: the same spec gives the same bytes.
Status write_tiny_model(const TinyModelSpec& spec, const std::string& path);

}  // namespace minnow::tiny
