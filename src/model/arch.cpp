#include "model/arch.h"

#include <cmath>

#include "model/gguf_keys.h"
#include "model/tensor_names.h"

namespace minnow::model {

extern const ArchSpec kLlamaArch;   // archs/llama.cpp
extern const ArchSpec kQwen2Arch;   // archs/qwen2.cpp
extern const ArchSpec kGemma3Arch;  // archs/gemma3.cpp
extern const ArchSpec kPhi3Arch;    // archs/phi3.cpp

namespace {

const ArchSpec* const kArchs[] = {&kLlamaArch, &kQwen2Arch, &kGemma3Arch, &kPhi3Arch};

// One value for every layer: files may store per-layer arrays, which we accept only when
// all entries agree (no supported model varies them).
Result<int> uniform(const gguf::File& file, const std::vector<uint64_t>& values,
                    std::string_view key) {
  if (values.empty()) return Status::error(file.path() + ": missing key " + std::string(key));
  for (uint64_t v : values) {
    if (v != values[0]) {
      return Status::error(file.path() + ": " + std::string(key) +
                           " differs between layers, which is not supported");
    }
  }
  return static_cast<int>(values[0]);
}

Result<int> required(const gguf::File& file, const std::optional<uint64_t>& v, Key key,
                     std::string_view arch) {
  if (!v) return Status::error(file.path() + ": missing key " + gguf_key(key, arch));
  if (*v == 0 || *v > (1u << 30)) {
    return Status::error(file.path() + ": " + gguf_key(key, arch) + " = " + std::to_string(*v) +
                         " is out of range");
  }
  return static_cast<int>(*v);
}

}  // namespace

const ArchSpec* find_arch(std::string_view name) {
  for (const ArchSpec* a : kArchs) {
    if (a->name == name) return a;
  }
  return nullptr;
}

std::vector<std::string_view> supported_archs() {
  std::vector<std::string_view> out;
  for (const ArchSpec* a : kArchs) out.push_back(a->name);
  return out;
}

Result<float> get_number_or(const gguf::File& file, std::string_view key, float fallback) {
  if (!file.has(key)) return fallback;
  auto v = file.get_f64(key);
  if (v.ok()) return static_cast<float>(*v);
  auto f = file.get_f32(key);
  if (f.ok()) return *f;
  auto u = file.get_uint(key);
  if (u.ok()) return static_cast<float>(*u);
  return Status::error(file.path() + ": " + std::string(key) + " is not a number");
}

Result<ModelConfig> read_config(const gguf::File& file) {
  auto info = describe(file);
  if (!info.ok()) return Status::error(info.error());
  const std::string& arch = info->architecture;
  const ArchSpec* spec = find_arch(arch);
  if (!spec) {
    std::string names;
    for (auto n : supported_archs()) names += (names.empty() ? "" : ", ") + std::string(n);
    return Status::error(file.path() + ": architecture '" + arch +
                         "' is not supported (supported: " + names + ")");
  }

  ModelConfig c;
  c.arch = arch;
#define MINNOW_SET(field, expr)                     \
  do {                                              \
    auto r_ = (expr);                               \
    if (!r_.ok()) return Status::error(r_.error()); \
    field = *r_;                                    \
  } while (0)
  MINNOW_SET(c.n_embd, required(file, info->embedding_length, Key::kEmbeddingLength, arch));
  MINNOW_SET(c.n_layer, required(file, info->block_count, Key::kBlockCount, arch));
  MINNOW_SET(c.n_ff, required(file, info->feed_forward_length, Key::kFeedForwardLength, arch));
  MINNOW_SET(c.n_head, uniform(file, info->head_count, gguf_key(Key::kHeadCount, arch)));
  if (info->head_count_kv.empty()) {
    c.n_head_kv = c.n_head;
  } else {
    MINNOW_SET(c.n_head_kv, uniform(file, info->head_count_kv, gguf_key(Key::kHeadCountKv, arch)));
  }
  if (c.n_head <= 0 || c.n_head_kv <= 0 || c.n_head % c.n_head_kv != 0 ||
      c.n_head / c.n_head_kv > 64) {
    return Status::error(file.path() + ": " + std::to_string(c.n_head) +
                         " heads cannot be shared by " + std::to_string(c.n_head_kv) + " KV heads");
  }
  c.head_dim = info->key_length ? static_cast<int>(*info->key_length) : c.n_embd / c.n_head;
  c.head_dim_v = info->value_length ? static_cast<int>(*info->value_length) : c.head_dim;
  c.n_ctx_train = info->context_length ? static_cast<int>(*info->context_length) : 2048;
  if (info->rms_norm_epsilon) c.norm_eps = static_cast<float>(*info->rms_norm_epsilon);
  c.n_rot = info->rope_dimension_count ? static_cast<int>(*info->rope_dimension_count) : c.head_dim;
  if (c.n_rot <= 0 || c.n_rot > c.head_dim || c.n_rot % 2 != 0) {
    return Status::error(file.path() + ": " + gguf_key(Key::kRopeDimensionCount, arch) + " = " +
                         std::to_string(c.n_rot) + " does not fit head dimension " +
                         std::to_string(c.head_dim));
  }
  if (info->sliding_window) c.sliding_window = static_cast<int>(*info->sliding_window);

  // Linear RoPE scaling; other scaling types are refused rather than run wrong.
  float freq_scale = 1.0f;
  if (info->rope_scaling_type && *info->rope_scaling_type != "none") {
    if (*info->rope_scaling_type != "linear") {
      return Status::error(file.path() + ": " + gguf_key(Key::kRopeScalingType, arch) + " '" +
                           *info->rope_scaling_type + "' is not supported (none, linear)");
    }
    if (info->rope_scaling_factor && *info->rope_scaling_factor > 0) {
      freq_scale = 1.0f / static_cast<float>(*info->rope_scaling_factor);
    }
  }
  const float base = info->rope_freq_base ? static_cast<float>(*info->rope_freq_base) : 10000.0f;
  c.layers.assign(c.n_layer, LayerConfig{false, base, freq_scale});
  if (info->rope_scaling_original_context_length) {
    c.rope_orig_ctx = static_cast<int>(*info->rope_scaling_original_context_length);
  }
  MINNOW_SET(c.rope_attn_factor,
             get_number_or(file, gguf_key(Key::kRopeScalingAttnFactor, arch), 1.0f));
#undef MINNOW_SET

  const gguf::TensorInfo* embd = file.find_tensor(tensor_name(TensorName::kTokenEmbd));
  if (!embd) {
    return Status::error(file.path() + ": missing tensor " + tensor_name(TensorName::kTokenEmbd) +
                         " (required by " + arch + ")");
  }
  if (embd->n_dims != 2 || embd->ne[0] != static_cast<uint64_t>(c.n_embd)) {
    return Status::error(file.path() + ": tensor " + tensor_name(TensorName::kTokenEmbd) +
                         " has shape " + embd->shape_string() + ", expected [" +
                         std::to_string(c.n_embd) + ", n_vocab]");
  }
  c.n_vocab = static_cast<int>(embd->ne[1]);

  MINNOW_RETURN_IF_ERROR(spec->configure(file, *info, c));
  return c;
}

}  // namespace minnow::model
