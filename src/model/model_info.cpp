#include "model/model_info.h"

#include <map>
#include <utility>

#include "model/gguf_keys.h"

namespace minnow::model {
namespace {

// Typed look-ups that treat an absent key as "not set" and a mistyped one as an error.
class Reader {
 public:
  Reader(const gguf::File& file, std::string_view arch) : file_(file), arch_(arch) {}

  const gguf::Value* find(Key key) const { return file_.find(gguf_key(key, arch_)); }

  Status type_error(Key key, std::string_view wanted) const {
    const gguf::Value* v = find(key);
    return Status::error(file_.path() + ": key '" + gguf_key(key, arch_) + "' has type " +
                         std::string(gguf::value_type_name(v->type)) + ", expected " +
                         std::string(wanted));
  }

  Result<std::optional<uint64_t>> uint(Key key) const {
    if (!find(key)) return std::optional<uint64_t>();
    auto r = file_.get_uint(gguf_key(key, arch_));
    if (!r) return r.status();
    return std::optional<uint64_t>(*r);
  }

  Result<std::optional<double>> number(Key key) const {
    const gguf::Value* v = find(key);
    if (!v) return std::optional<double>();
    switch (v->type) {
      case gguf::ValueType::F32:
      case gguf::ValueType::F64:
        return std::optional<double>(v->f64);
      case gguf::ValueType::U8:
      case gguf::ValueType::U16:
      case gguf::ValueType::U32:
      case gguf::ValueType::U64:
        return std::optional<double>(static_cast<double>(v->u64));
      case gguf::ValueType::I8:
      case gguf::ValueType::I16:
      case gguf::ValueType::I32:
      case gguf::ValueType::I64:
        return std::optional<double>(static_cast<double>(v->i64));
      default:
        return type_error(key, "a number");
    }
  }

  Result<std::optional<std::string>> string(Key key) const {
    if (!find(key)) return std::optional<std::string>();
    auto r = file_.get_string(gguf_key(key, arch_));
    if (!r) return r.status();
    return std::optional<std::string>(std::string(*r));
  }

  // A count stored either as one integer or as an integer array (one per layer).
  Result<std::vector<uint64_t>> uint_or_array(Key key) const {
    const gguf::Value* v = find(key);
    std::vector<uint64_t> out;
    if (!v) return out;
    if (v->type != gguf::ValueType::ARRAY) {
      auto r = file_.get_uint(gguf_key(key, arch_));
      if (!r) return r.status();
      out.push_back(*r);
      return out;
    }
    if (v->elem_type == gguf::ValueType::STRING || v->elem_type == gguf::ValueType::ARRAY ||
        v->elem_type == gguf::ValueType::F32 || v->elem_type == gguf::ValueType::F64 ||
        v->elem_type == gguf::ValueType::BOOL) {
      return type_error(key, "an integer or an array of integers");
    }
    out.reserve(v->count);
    for (uint64_t i = 0; i < v->count; ++i) {
      int64_t x = v->elem_i64(i);
      if (x < 0) return type_error(key, "non-negative integers");
      out.push_back(static_cast<uint64_t>(x));
    }
    return out;
  }

 private:
  const gguf::File& file_;
  std::string_view arch_;
};

// Assigns a looked-up value to `field`, or returns the look-up's error from describe().
#define MINNOW_ASSIGN(field, expr)             \
  do {                                         \
    auto minnow_r_ = (expr);                   \
    if (!minnow_r_) return minnow_r_.status(); \
    field = std::move(*minnow_r_);             \
  } while (0)

std::optional<uint32_t> narrow_u32(std::optional<uint64_t> v) {
  if (!v || *v > UINT32_MAX) return std::nullopt;
  return static_cast<uint32_t>(*v);
}

}  // namespace

Result<ModelInfo> describe(const gguf::File& file) {
  ModelInfo info;
  auto arch = file.get_string(gguf_key(Key::kGeneralArchitecture));
  if (!arch) return arch.status();
  info.architecture = std::string(*arch);
  const Reader r(file, info.architecture);

  MINNOW_ASSIGN(info.name, r.string(Key::kGeneralName));
  std::optional<uint64_t> u;
  MINNOW_ASSIGN(u, r.uint(Key::kGeneralFileType));
  info.file_type = narrow_u32(u);
  MINNOW_ASSIGN(u, r.uint(Key::kGeneralQuantizationVersion));
  info.quantization_version = narrow_u32(u);

  std::map<uint32_t, TensorTypeCount> by_type;
  for (const gguf::TensorInfo& t : file.tensors()) {
    TensorTypeCount& c = by_type[static_cast<uint32_t>(t.type)];
    c.type = t.type;
    c.tensors += 1;
    c.elements += t.n_elements;
    c.bytes += t.n_bytes;
    info.parameter_count += t.n_elements;
    info.tensor_bytes += t.n_bytes;
  }
  info.tensor_count = file.tensors().size();
  for (auto& [id, c] : by_type) info.tensor_types.push_back(c);

  MINNOW_ASSIGN(info.context_length, r.uint(Key::kContextLength));
  MINNOW_ASSIGN(info.embedding_length, r.uint(Key::kEmbeddingLength));
  MINNOW_ASSIGN(info.block_count, r.uint(Key::kBlockCount));
  std::vector<uint64_t> ffn;
  MINNOW_ASSIGN(ffn, r.uint_or_array(Key::kFeedForwardLength));
  if (!ffn.empty()) info.feed_forward_length = ffn.front();
  MINNOW_ASSIGN(info.head_count, r.uint_or_array(Key::kHeadCount));
  MINNOW_ASSIGN(info.head_count_kv, r.uint_or_array(Key::kHeadCountKv));
  MINNOW_ASSIGN(info.key_length, r.uint(Key::kKeyLength));
  MINNOW_ASSIGN(info.value_length, r.uint(Key::kValueLength));
  MINNOW_ASSIGN(info.sliding_window, r.uint(Key::kSlidingWindow));
  MINNOW_ASSIGN(info.rms_norm_epsilon, r.number(Key::kLayerNormRmsEpsilon));

  MINNOW_ASSIGN(info.rope_freq_base, r.number(Key::kRopeFreqBase));
  MINNOW_ASSIGN(info.rope_dimension_count, r.uint(Key::kRopeDimensionCount));
  MINNOW_ASSIGN(info.rope_scaling_type, r.string(Key::kRopeScalingType));
  MINNOW_ASSIGN(info.rope_scaling_factor, r.number(Key::kRopeScalingFactor));
  MINNOW_ASSIGN(info.rope_scaling_original_context_length,
                r.uint(Key::kRopeScalingOriginalContextLength));

  MINNOW_ASSIGN(info.tokenizer_model, r.string(Key::kTokenizerModel));
  MINNOW_ASSIGN(info.tokenizer_pre, r.string(Key::kTokenizerPre));
  if (r.find(Key::kTokenizerTokens)) {
    auto tokens = file.get_array(gguf_key(Key::kTokenizerTokens), gguf::ValueType::STRING);
    if (!tokens) return tokens.status();
    info.vocab_size = (*tokens)->count;
  } else {
    MINNOW_ASSIGN(info.vocab_size, r.uint(Key::kVocabSize));
  }
  MINNOW_ASSIGN(info.bos_token_id, r.uint(Key::kTokenizerBosId));
  MINNOW_ASSIGN(info.eos_token_id, r.uint(Key::kTokenizerEosId));
  std::optional<std::string> tmpl;
  MINNOW_ASSIGN(tmpl, r.string(Key::kTokenizerChatTemplate));
  if (tmpl) info.chat_template_bytes = tmpl->size();
  return info;
}

#undef MINNOW_ASSIGN

std::string_view file_type_name(uint32_t file_type) {
  // llama.cpp's llama_ftype numbering; gaps are types removed from the format.
  static constexpr std::pair<uint32_t, std::string_view> kNames[] = {
      {0, "ALL_F32"},           {1, "MOSTLY_F16"},     {2, "MOSTLY_Q4_0"},    {3, "MOSTLY_Q4_1"},
      {7, "MOSTLY_Q8_0"},       {8, "MOSTLY_Q5_0"},    {9, "MOSTLY_Q5_1"},    {10, "MOSTLY_Q2_K"},
      {11, "MOSTLY_Q3_K_S"},    {12, "MOSTLY_Q3_K_M"}, {13, "MOSTLY_Q3_K_L"}, {14, "MOSTLY_Q4_K_S"},
      {15, "MOSTLY_Q4_K_M"},    {16, "MOSTLY_Q5_K_S"}, {17, "MOSTLY_Q5_K_M"}, {18, "MOSTLY_Q6_K"},
      {19, "MOSTLY_IQ2_XXS"},   {20, "MOSTLY_IQ2_XS"}, {21, "MOSTLY_Q2_K_S"}, {22, "MOSTLY_IQ3_XS"},
      {23, "MOSTLY_IQ3_XXS"},   {24, "MOSTLY_IQ1_S"},  {25, "MOSTLY_IQ4_NL"}, {26, "MOSTLY_IQ3_S"},
      {27, "MOSTLY_IQ3_M"},     {28, "MOSTLY_IQ2_S"},  {29, "MOSTLY_IQ2_M"},  {30, "MOSTLY_IQ4_XS"},
      {31, "MOSTLY_IQ1_M"},     {32, "MOSTLY_BF16"},   {36, "MOSTLY_TQ1_0"},  {37, "MOSTLY_TQ2_0"},
      {38, "MOSTLY_MXFP4_MOE"}, {1024, "GUESSED"},
  };
  for (const auto& [id, name] : kNames) {
    if (id == file_type) return name;
  }
  return {};
}

}  // namespace minnow::model
