// GGUF metadata keys, in one table (STYLE.md "Names from one table"). Keys that depend on the
// architecture are written with "%s" where the architecture name goes ("llama.block_count");
// gguf_key() fills it in. Code names a key by its enum, never by a raw string.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace minnow::model {

enum class Key {
  // general.*
  kGeneralArchitecture,
  kGeneralName,
  kGeneralFileType,
  kGeneralQuantizationVersion,
  kGeneralAlignment,
  // <arch>.* hyper-parameters
  kContextLength,
  kEmbeddingLength,
  kBlockCount,
  kFeedForwardLength,
  kHeadCount,
  kHeadCountKv,
  kKeyLength,
  kValueLength,
  kLayerNormRmsEpsilon,
  kSlidingWindow,
  kRopeFreqBase,
  kRopeDimensionCount,
  kRopeScalingType,
  kRopeScalingFactor,
  kRopeScalingOriginalContextLength,
  kRopeScalingFinetuned,
  kRopeScalingAttnFactor,
  kRopeFreqBaseSwa,
  kSlidingWindowPattern,
  kFinalLogitSoftcapping,
  kVocabSize,
  // tokenizer.*
  kTokenizerModel,
  kTokenizerPre,
  kTokenizerTokens,
  kTokenizerScores,
  kTokenizerTokenType,
  kTokenizerMerges,
  kTokenizerBosId,
  kTokenizerEosId,
  kTokenizerUnknownId,
  kTokenizerPaddingId,
  kTokenizerAddBos,
  kTokenizerAddEos,
  kTokenizerChatTemplate,
  kCount,  // not a key: the size of the table
};

// The key's pattern; "%s" stands for the architecture.
constexpr std::string_view kKeyPatterns[] = {
    "general.architecture",
    "general.name",
    "general.file_type",
    "general.quantization_version",
    "general.alignment",
    "%s.context_length",
    "%s.embedding_length",
    "%s.block_count",
    "%s.feed_forward_length",
    "%s.attention.head_count",
    "%s.attention.head_count_kv",
    "%s.attention.key_length",
    "%s.attention.value_length",
    "%s.attention.layer_norm_rms_epsilon",
    "%s.attention.sliding_window",
    "%s.rope.freq_base",
    "%s.rope.dimension_count",
    "%s.rope.scaling.type",
    "%s.rope.scaling.factor",
    "%s.rope.scaling.original_context_length",
    "%s.rope.scaling.finetuned",
    "%s.rope.scaling.attn_factor",
    "%s.rope.freq_base_swa",
    "%s.attention.sliding_window_pattern",
    "%s.final_logit_softcapping",
    "%s.vocab_size",
    "tokenizer.ggml.model",
    "tokenizer.ggml.pre",
    "tokenizer.ggml.tokens",
    "tokenizer.ggml.scores",
    "tokenizer.ggml.token_type",
    "tokenizer.ggml.merges",
    "tokenizer.ggml.bos_token_id",
    "tokenizer.ggml.eos_token_id",
    "tokenizer.ggml.unknown_token_id",
    "tokenizer.ggml.padding_token_id",
    "tokenizer.ggml.add_bos_token",
    "tokenizer.ggml.add_eos_token",
    "tokenizer.chat_template",
};
static_assert(std::size(kKeyPatterns) == static_cast<size_t>(Key::kCount),
              "every Key needs its pattern, in enum order");

// The full key name; `arch` replaces "%s" (ignored for keys without it).
inline std::string gguf_key(Key key, std::string_view arch = {}) {
  std::string_view pattern = kKeyPatterns[static_cast<size_t>(key)];
  std::string out;
  if (pattern.starts_with("%s")) {
    out.reserve(arch.size() + pattern.size());
    out.append(arch);
    out.append(pattern.substr(2));
  } else {
    out.assign(pattern);
  }
  return out;
}

}  // namespace minnow::model
