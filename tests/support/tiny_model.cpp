#include "support/tiny_model.h"

#include <cmath>
#include <cstring>
#include <numbers>

#include "gguf/gguf.h"
#include "kernels/quants.h"

namespace minnow::tiny {
namespace {

// splitmix64: tiny, fast, and good enough for test weights; fixed so files never change.
struct Rng {
  uint64_t state;
  uint64_t next() {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // [0, 1)
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  // Box-Muller; 1 - uniform() is in (0, 1], so the log is finite.
  double normal() {
    const double u1 = 1.0 - uniform();
    const double u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
  }
};

// Each tensor has its own stream, so leaving one out changes no other tensor's values.
Rng tensor_rng(uint64_t seed, std::string_view name) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a of the name
  for (char c : name) h = (h ^ static_cast<uint8_t>(c)) * 1099511628211ull;
  Rng rng{seed * 0x2545F4914F6CDD1Dull ^ h};
  rng.next();
  return rng;
}

// GPT-2's byte-level alphabet: printable Latin-1 bytes stand for themselves, the others are
// shifted to U+0100 upwards (so a space is "Ġ" and a newline "Ċ").
std::string gpt2_byte_token(int byte) {
  auto printable = [](int b) {
    return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
  };
  uint32_t cp = static_cast<uint32_t>(byte);
  if (!printable(byte)) {
    int n = 0;
    for (int b = 0; b < byte; ++b) n += printable(b) ? 0 : 1;
    cp = 256 + static_cast<uint32_t>(n);
  }
  std::string out;
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return out;
}

constexpr int32_t kTokenNormal = 1;
constexpr int32_t kTokenControl = 3;
constexpr int32_t kTokenUnused = 5;

constexpr std::string_view kChatTemplate =
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + "
    "message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\\n' }}{% endif %}";

// A byte-level BPE vocabulary: the 256 byte tokens, a few merges (so "hello" is one token),
// three specials and unused fillers up to n_vocab.
Status add_tokenizer(gguf::Writer& w, uint32_t n_vocab) {
  std::vector<std::string> tokens;
  std::vector<int32_t> types;
  for (int b = 0; b < 256; ++b) {
    tokens.push_back(gpt2_byte_token(b));
    types.push_back(kTokenNormal);
  }
  const std::vector<std::string> merges = {"h e", "l l", "he ll", "hell o", "Ġ w", "o r"};
  for (const std::string& m : merges) {
    std::string merged = m;
    merged.erase(merged.find(' '), 1);
    tokens.push_back(merged);
    types.push_back(kTokenNormal);
  }
  const int32_t bos = static_cast<int32_t>(tokens.size());
  for (const char* s : {"<|endoftext|>", "<|im_start|>", "<|im_end|>"}) {
    tokens.push_back(s);
    types.push_back(kTokenControl);
  }
  const int32_t eos = bos + 2;  // <|im_end|>, where a chat turn ends
  if (tokens.size() > n_vocab) {
    return Status::error("tiny model: n_vocab " + std::to_string(n_vocab) + " < the " +
                         std::to_string(tokens.size()) + " tokens of the tokenizer");
  }
  while (tokens.size() < n_vocab) {
    tokens.push_back("<|unused_" + std::to_string(tokens.size()) + "|>");
    types.push_back(kTokenUnused);
  }
  w.add_string("tokenizer.ggml.model", "gpt2");
  w.add_string("tokenizer.ggml.pre", "gpt-2");
  w.add_string_array("tokenizer.ggml.tokens", tokens);
  w.add_i32_array("tokenizer.ggml.token_type", types);
  w.add_string_array("tokenizer.ggml.merges", merges);
  w.add_u32("tokenizer.ggml.bos_token_id", static_cast<uint32_t>(bos));
  w.add_u32("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(eos));
  w.add_u32("tokenizer.ggml.padding_token_id", static_cast<uint32_t>(bos));
  w.add_bool("tokenizer.ggml.add_bos_token", true);
  w.add_bool("tokenizer.ggml.add_eos_token", false);
  w.add_string("tokenizer.chat_template", kChatTemplate);
  return Status();
}

// general.file_type as llama.cpp numbers it (llama_ftype), for the types this writer makes.
int file_type_of(TensorType t) {
  switch (t) {
    case TensorType::F32:
      return 0;
    case TensorType::F16:
      return 1;
    case TensorType::Q4_0:
      return 2;
    case TensorType::Q4_1:
      return 3;
    case TensorType::Q8_0:
      return 7;
    case TensorType::Q5_0:
      return 8;
    case TensorType::Q5_1:
      return 9;
    case TensorType::Q4_K:
      return 14;  // Q4_K_S: every matrix Q4_K
    case TensorType::Q5_K:
      return 16;
    case TensorType::Q6_K:
      return 18;
    default:
      return -1;
  }
}

class TensorSink {
 public:
  TensorSink(const TinyModelSpec& spec, gguf::Writer& w) : spec_(spec), w_(w) {}

  // A (rows, cols) matrix stored as GGUF ne = [cols, rows] in spec.type, N(0, scale^2).
  Status matrix(const std::string& name, uint64_t cols, uint64_t rows, double scale) {
    if (dropped(name)) return Status();
    Rng rng = tensor_rng(spec_.seed, name);
    std::vector<float> v(cols * rows);
    for (float& x : v) x = static_cast<float>(scale * rng.normal());
    return put(name, spec_.type, {cols, rows}, v);
  }
  // A vector stored F32: offset + N(0, scale^2).
  Status vector_f32(const std::string& name, uint64_t n, double offset, double scale) {
    if (dropped(name)) return Status();
    Rng rng = tensor_rng(spec_.seed, name);
    std::vector<float> v(n);
    for (float& x : v) x = static_cast<float>(offset + scale * rng.normal());
    return put(name, TensorType::F32, {n}, v);
  }
  // RoPE frequency factors (>= 1, growing with the dimension index as real ones do: high
  // frequencies kept, low ones stretched up to `max_factor`), F32.
  Status factors(const std::string& name, uint64_t n, double max_factor) {
    if (dropped(name)) return Status();
    Rng rng = tensor_rng(spec_.seed, name);
    std::vector<float> v(n);
    for (uint64_t i = 0; i < n; ++i) {
      const double t = n > 1 ? static_cast<double>(i) / static_cast<double>(n - 1) : 0.0;
      v[i] = static_cast<float>(1.0 + (max_factor - 1.0) * t * (0.8 + 0.2 * rng.uniform()));
    }
    return put(name, TensorType::F32, {n}, v);
  }

 private:
  bool dropped(const std::string& name) const {
    for (const std::string& d : spec_.drop_tensors)
      if (d == name) return true;
    return false;
  }

  Status put(const std::string& name, TensorType type, const std::vector<uint64_t>& ne,
             const std::vector<float>& v) {
    const TensorTypeTraits& tt = traits(type);
    if (ne[0] % tt.block_elems != 0) {
      return Status::error("tiny model: " + name + ": row of " + std::to_string(ne[0]) +
                           " elements is not a multiple of " + std::string(tt.name) +
                           "'s block of " + std::to_string(tt.block_elems));
    }
    const uint64_t rows = v.size() / ne[0];
    const uint64_t bytes_per_row = row_bytes(tt, ne[0]);
    std::vector<uint8_t> data(bytes_per_row * rows);
    for (uint64_t r = 0; r < rows; ++r) {
      if (type == TensorType::F32) {
        std::memcpy(data.data() + r * bytes_per_row, v.data() + r * ne[0], bytes_per_row);
      } else {
        kernels::quantize_row_ref(type, v.data() + r * ne[0], data.data() + r * bytes_per_row,
                                  static_cast<int64_t>(ne[0]));
      }
    }
    return w_.add_tensor(name, type, ne, data.data(), data.size());
  }

  const TinyModelSpec& spec_;
  gguf::Writer& w_;
};

std::string blk(uint32_t il, std::string_view what) {
  return "blk." + std::to_string(il) + "." + std::string(what) + ".weight";
}
std::string blk_bias(uint32_t il, std::string_view what) {
  return "blk." + std::to_string(il) + "." + std::string(what) + ".bias";
}

}  // namespace

std::vector<std::string> tiny_model_variants(std::string_view arch) {
  if (arch == "llama") return {"default", "tied", "rope_freqs", "mha"};
  if (arch == "qwen2") return {"default", "tied"};
  if (arch == "gemma3") return {"default", "rope_scaling", "mqa"};
  if (arch == "phi3") return {"default", "longrope"};
  return {};
}

Result<TinyModelSpec> tiny_model_spec(std::string_view arch, TensorType type,
                                      std::string_view variant) {
  const std::vector<std::string> variants = tiny_model_variants(arch);
  if (variants.empty()) {
    return Status::error("tiny model: unknown arch '" + std::string(arch) +
                         "' (llama, qwen2, gemma3, phi3)");
  }
  bool known = false;
  std::string list;
  for (const std::string& v : variants) {
    known |= v == variant;
    list += (list.empty() ? "" : ", ") + v;
  }
  if (!known) {
    return Status::error("tiny model: " + std::string(arch) + " has no variant '" +
                         std::string(variant) + "' (" + list + ")");
  }
  if (type != TensorType::F32 && !kernels::has_reference_quantize(type)) {
    return Status::error("tiny model: no reference quantizer for " +
                         std::string(tensor_type_name(type)));
  }

  TinyModelSpec s;
  s.arch = s.arch_name = std::string(arch);
  s.variant = std::string(variant);
  s.type = type;
  // The k-quants' 256-element blocks: every row length a multiple of 256.
  const bool wide = traits(type).block_elems > 32;
  if (wide) {
    s.n_embd = 256;
    s.head_dim = 64;
    s.n_ff = 512;
  }
  s.rope_dim = s.head_dim;

  if (arch == "llama") {
    s.tied_output = variant == "tied";
    s.rope_freqs = variant == "rope_freqs";
    if (variant == "mha") s.n_head_kv = s.n_head;  // one kv head per query head
    s.rope_freq_base = 100000.0f;
  } else if (arch == "qwen2") {
    s.qkv_bias = true;
    s.tied_output = variant == "tied";
    s.rope_freq_base = 1000000.0f;
    s.rms_eps = 1e-6f;
  } else if (arch == "gemma3") {
    // 7 layers: 0-4 sliding, 5 global, 6 sliding again. A key length twice n_embd / n_head
    // catches code that derives head_dim from n_embd.
    s.n_layer = 7;
    s.sliding_window = 4;
    s.head_dim = wide ? 128 : 32;
    s.rope_dim = s.head_dim;
    s.write_key_length = true;
    s.tied_output = true;
    s.rope_freq_base = 1000000.0f;
    s.rms_eps = 1e-6f;
    if (variant == "rope_scaling") s.rope_scaling_factor = 8.0f;
    if (variant == "mqa") s.n_head_kv = 1;  // as gemma-3-270m: one kv head for all four
  } else if (arch == "phi3") {
    if (variant == "longrope") {
      // Short factors while the context fits in 256 positions, long ones above.
      s.rope_factors = true;
      s.n_ctx = 512;
      s.original_ctx = 256;
    }
  }
  return s;
}

Status write_tiny_model(const TinyModelSpec& spec, const std::string& path) {
  const std::string& a = spec.arch;
  if (tiny_model_variants(a).empty()) {
    return Status::error("tiny model: unknown arch '" + a + "' (llama, qwen2, gemma3, phi3)");
  }
  const std::string k = spec.arch_name + ".";
  gguf::Writer w;
  w.add_string("general.architecture", spec.arch_name);
  // Not "tiny-phi3": llama.cpp gives vocabularies of models named "phi3" special treatment
  // that needs tokens like "</s>" this vocabulary lacks.
  w.add_string("general.name", "tiny random " + spec.variant);
  w.add_u32(k + "context_length", spec.n_ctx);
  w.add_u32(k + "embedding_length", spec.n_embd);
  w.add_u32(k + "block_count", spec.n_layer);
  w.add_u32(k + "feed_forward_length", spec.n_ff);
  w.add_u32(k + "attention.head_count", spec.n_head);
  w.add_u32(k + "attention.head_count_kv", spec.n_head_kv);
  if (spec.write_key_length) {
    w.add_u32(k + "attention.key_length", spec.head_dim);
    w.add_u32(k + "attention.value_length", spec.head_dim);
  }
  w.add_f32(k + "attention.layer_norm_rms_epsilon", spec.rms_eps);
  w.add_f32(k + "rope.freq_base", spec.rope_freq_base);
  // gemma3's converter writes no rope.dimension_count (it defaults to key_length).
  if (a != "gemma3") w.add_u32(k + "rope.dimension_count", spec.rope_dim);
  if (spec.sliding_window) w.add_u32(k + "attention.sliding_window", spec.sliding_window);
  if (spec.rope_scaling_factor > 0) {
    w.add_string(k + "rope.scaling.type", "linear");
    w.add_f32(k + "rope.scaling.factor", spec.rope_scaling_factor);
  }
  if (spec.original_ctx) w.add_u32(k + "rope.scaling.original_context_length", spec.original_ctx);
  w.add_u32(k + "vocab_size", spec.n_vocab);
  const int file_type = file_type_of(spec.type);
  if (file_type >= 0) w.add_u32("general.file_type", static_cast<uint32_t>(file_type));
  if (spec.type != TensorType::F32 && spec.type != TensorType::F16)
    w.add_u32("general.quantization_version", 2);
  if (spec.tokenizer) MINNOW_RETURN_IF_ERROR(add_tokenizer(w, spec.n_vocab));

  // Tensors in the order llama.cpp's converters write them.
  TensorSink t(spec, w);
  const uint64_t n_embd = spec.n_embd;
  const uint64_t n_q = uint64_t{spec.n_head} * spec.head_dim;
  const uint64_t n_kv = uint64_t{spec.n_head_kv} * spec.head_dim;
  const uint64_t n_ff = spec.n_ff;
  const double in_embd = 1.0 / std::sqrt(static_cast<double>(n_embd));
  const double in_q = 1.0 / std::sqrt(static_cast<double>(n_q));
  const double in_ff = 1.0 / std::sqrt(static_cast<double>(n_ff));
  constexpr double kNormSpread = 0.1;

  // gemma3 multiplies embeddings by sqrt(n_embd); a tied output layer reads logits off the
  // embeddings. Both scales keep the residual stream and the logits O(1).
  const double embd_scale = a == "gemma3" ? in_embd : spec.tied_output ? 0.5 : 1.0;
  MINNOW_RETURN_IF_ERROR(t.matrix("token_embd.weight", n_embd, spec.n_vocab, embd_scale));
  if (spec.rope_freqs) MINNOW_RETURN_IF_ERROR(t.factors("rope_freqs.weight", spec.rope_dim / 2, 8));
  if (spec.rope_factors) {
    MINNOW_RETURN_IF_ERROR(t.factors("rope_factors_long.weight", spec.rope_dim / 2, 6));
    MINNOW_RETURN_IF_ERROR(t.factors("rope_factors_short.weight", spec.rope_dim / 2, 1.5));
  }
  for (uint32_t il = 0; il < spec.n_layer; ++il) {
    MINNOW_RETURN_IF_ERROR(t.vector_f32(blk(il, "attn_norm"), n_embd, 1.0, kNormSpread));
    if (a == "phi3") {
      MINNOW_RETURN_IF_ERROR(t.matrix(blk(il, "attn_qkv"), n_embd, n_q + 2 * n_kv, in_embd));
    } else {
      MINNOW_RETURN_IF_ERROR(t.matrix(blk(il, "attn_q"), n_embd, n_q, in_embd));
      MINNOW_RETURN_IF_ERROR(t.matrix(blk(il, "attn_k"), n_embd, n_kv, in_embd));
      MINNOW_RETURN_IF_ERROR(t.matrix(blk(il, "attn_v"), n_embd, n_kv, in_embd));
    }
    if (spec.qkv_bias) {
      // Large enough to move the attention pattern, so a dropped bias shows.
      MINNOW_RETURN_IF_ERROR(t.vector_f32(blk_bias(il, "attn_q"), n_q, 0.0, 0.5));
      MINNOW_RETURN_IF_ERROR(t.vector_f32(blk_bias(il, "attn_k"), n_kv, 0.0, 0.5));
      MINNOW_RETURN_IF_ERROR(t.vector_f32(blk_bias(il, "attn_v"), n_kv, 0.0, 0.5));
    }
    if (a == "gemma3") {
      MINNOW_RETURN_IF_ERROR(t.vector_f32(blk(il, "attn_q_norm"), spec.head_dim, 1.0, kNormSpread));
      MINNOW_RETURN_IF_ERROR(t.vector_f32(blk(il, "attn_k_norm"), spec.head_dim, 1.0, kNormSpread));
    }
    MINNOW_RETURN_IF_ERROR(t.matrix(blk(il, "attn_output"), n_q, n_embd, in_q));
    if (a == "gemma3") {
      MINNOW_RETURN_IF_ERROR(
          t.vector_f32(blk(il, "post_attention_norm"), n_embd, 1.0, kNormSpread));
    }
    MINNOW_RETURN_IF_ERROR(t.vector_f32(blk(il, "ffn_norm"), n_embd, 1.0, kNormSpread));
    if (a == "phi3") {
      MINNOW_RETURN_IF_ERROR(t.matrix(blk(il, "ffn_up"), n_embd, 2 * n_ff, in_embd));  // gate|up
    } else {
      MINNOW_RETURN_IF_ERROR(t.matrix(blk(il, "ffn_gate"), n_embd, n_ff, in_embd));
      MINNOW_RETURN_IF_ERROR(t.matrix(blk(il, "ffn_up"), n_embd, n_ff, in_embd));
    }
    MINNOW_RETURN_IF_ERROR(t.matrix(blk(il, "ffn_down"), n_ff, n_embd, in_ff));
    if (a == "gemma3") {
      MINNOW_RETURN_IF_ERROR(t.vector_f32(blk(il, "post_ffw_norm"), n_embd, 1.0, kNormSpread));
    }
  }
  MINNOW_RETURN_IF_ERROR(t.vector_f32("output_norm.weight", n_embd, 1.0, kNormSpread));
  if (!spec.tied_output) {
    MINNOW_RETURN_IF_ERROR(t.matrix("output.weight", n_embd, spec.n_vocab, in_embd));
  }
  return w.write(path);
}

}  // namespace minnow::tiny
