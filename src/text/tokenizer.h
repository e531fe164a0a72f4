// Text <-> token ids, built from a GGUF file's tokenizer metadata, producing the same ids as
// llama.cpp's tokenizer (see tests/text_tok_golden_test.cpp and tests/golden/tokenizer/).
//
// Two tokenizer models are supported:
//   - "gpt2": byte-level BPE. The text is split by the pre-tokenizer that tokenizer.ggml.pre
//     names (text/pretokenizer.h), each piece is written in the GPT-2 byte alphabet and merged
//     by rank (a heap over a linked list of symbols: O(n log n) per piece).
//   - "llama": SentencePiece-style BPE by score over the text (cut into words only where no
//     merge can cross), with U+2581 for spaces, an optional leading space and <0xNN> byte
//     fallback for characters not in the vocabulary.
//   ("gemma4" vocabularies, BPE over raw UTF-8 with U+2581 spaces, go through the first path.)
//
// Special tokens (control, user-defined, unknown) are cut out of the text before either model
// runs, longest first. User-defined tokens are always recognised; control and unknown tokens
// only with parse_special, so user content cannot smuggle in "<|im_end|>" and the like.
//
// Long inputs remember the ids of words already seen within the call (no state survives it).
// A Tokenizer is immutable after load and safe to use from several threads at once.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "gguf/gguf.h"
#include "util/status.h"

namespace minnow::text {

using TokenId = int32_t;
constexpr TokenId kNoToken = -1;

class WordCache;

// Token attributes. The bit values are those of llama.cpp's llama_token_attr so that the
// goldens can compare whole-vocabulary attribute hashes.
enum TokenAttr : uint32_t {
  kAttrUndefined = 0,
  kAttrUnknown = 1u << 0,
  kAttrUnused = 1u << 1,
  kAttrNormal = 1u << 2,
  kAttrControl = 1u << 3,
  kAttrUserDefined = 1u << 4,
  kAttrByte = 1u << 5,
  kAttrNormalized = 1u << 6,
  kAttrLstrip = 1u << 7,  // whitespace before the token is dropped when it is cut out of text
  kAttrRstrip = 1u << 8,  // whitespace after it likewise
  kAttrSingleWord = 1u << 9,
};

enum class TokenizerKind { kSpm, kBpe };

struct SpecialTokens {
  TokenId bos = kNoToken;
  TokenId eos = kNoToken;
  TokenId eot = kNoToken;  // end of turn (<|im_end|>, <end_of_turn>, <|eot_id|>...)
  TokenId eom = kNoToken;
  TokenId unk = kNoToken;
  TokenId sep = kNoToken;
  TokenId pad = kNoToken;
  TokenId mask = kNoToken;
  TokenId fim_pre = kNoToken;
  TokenId fim_suf = kNoToken;
  TokenId fim_mid = kNoToken;
  TokenId fim_pad = kNoToken;
  TokenId fim_rep = kNoToken;
  TokenId fim_sep = kNoToken;
  TokenId newline = kNoToken;  // the token for "\n"
};

class Tokenizer {
 public:
  // Reads tokenizer.ggml.* from `file`. The Tokenizer keeps no reference to the file.
  static Result<std::unique_ptr<Tokenizer>> load(const gguf::File& file);
  // Opens the GGUF at `path` and loads its tokenizer.
  static Result<std::unique_ptr<Tokenizer>> load(const std::string& path);

  ~Tokenizer();
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  // Text (any bytes; malformed UTF-8 is read as llama.cpp reads it) to ids.
  //   add_special:   add BOS / EOS where the model asks for them (add_bos / add_eos).
  //   parse_special: recognise control tokens written in the text ("<|im_start|>"). Only
  //                  for trusted text such as rendered templates, never for user content.
  // Fails only when the pre-tokenizer's regex engine exceeds its resource limits, or when the
  // model asks for a BOS / EOS token that its vocabulary lacks.
  Result<std::vector<TokenId>> tokenize(std::string_view text, bool add_special,
                                        bool parse_special) const;

  // The bytes a token stands for; possibly part of a UTF-8 sequence (byte tokens). Control
  // and unknown tokens give "" unless `special`. `id` must be in range (else "").
  std::string_view piece(TokenId id, bool special) const;

  // Ids back to text, as llama_detokenize does:
  //   remove_special:  drop a leading BOS and a trailing EOS when the model adds them
  //                    (and keep the leading space that the model's space prefix would strip);
  //   unparse_special: render control tokens as their text.
  // The first piece loses one leading space when the model adds a space prefix, and
  // clean_up_tokenization_spaces is applied where the model uses it. Out-of-range ids fail.
  Result<std::string> detokenize(std::span<const TokenId> ids, bool remove_special,
                                 bool unparse_special) const;

  size_t n_tokens() const;
  TokenizerKind kind() const { return kind_; }
  const std::string& model_name() const { return model_; }  // tokenizer.ggml.model
  const std::string& pre_name() const { return pre_; }      // tokenizer.ggml.pre
  std::string_view token_text(TokenId id) const;            // as stored in the vocabulary
  float score(TokenId id) const;
  uint32_t attr(TokenId id) const;
  bool is_control(TokenId id) const { return attr(id) & kAttrControl; }
  bool is_eog(TokenId id) const;  // ends generation (EOS, EOT, <|im_end|>...)
  const std::vector<TokenId>& eog_ids() const { return eog_; }
  // Id of the token whose text is exactly `text`, or kNoToken.
  TokenId find_token(std::string_view text) const;

  const SpecialTokens& special() const { return special_; }
  bool add_bos() const { return add_bos_; }
  bool add_eos() const { return add_eos_; }
  bool add_space_prefix() const { return add_space_prefix_; }
  bool clean_spaces() const { return clean_spaces_; }

 private:
  Tokenizer();
  struct Impl;

  Status init(const gguf::File& file);
  Status encode_text(std::string_view fragment, bool space_prefix, std::vector<TokenId>& out,
                     WordCache* cache) const;

  std::unique_ptr<Impl> impl_;
  TokenizerKind kind_ = TokenizerKind::kBpe;
  std::string model_;
  std::string pre_;
  SpecialTokens special_;
  std::vector<TokenId> eog_;
  bool add_bos_ = false;
  bool add_eos_ = false;
  bool add_space_prefix_ = false;
  bool clean_spaces_ = false;
  bool escape_whitespace_ = false;
};

// clean_up_tokenization_spaces as llama.cpp applies it after detokenizing: " ?" " !" " ." " ,"
// lose the space, " ' " becomes "'", and " 's" " 'm" " 're" " 've" lose the space.
void clean_up_spaces(std::string& text);

}  // namespace minnow::text
