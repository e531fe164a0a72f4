// SentencePiece-style BPE by score (internal to text/), as llama.cpp's "llama" tokenizer model.
#pragma once

#include <array>
#include <string>
#include <string_view>
#include <vector>

#include "text/vocab.h"

namespace minnow::text {

class SpmEncoder {
 public:
  void init(const Vocab& vocab, TokenId unk);

  // Appends the ids of `text`, whose spaces are already written as U+2581. `cache` (may be
  // null) remembers words across the fragments of one call.
  void encode(std::string_view text, std::vector<TokenId>& out, WordCache* cache) const;

  // The token for a raw byte: <0xNN>, else the one-byte token, else unk (kNoToken if none).
  TokenId byte_token(uint8_t b) const { return byte_tokens_[b]; }

 private:
  void encode_word(std::string_view text, std::vector<TokenId>& out) const;

  const Vocab* vocab_ = nullptr;
  std::array<TokenId, 256> byte_tokens_{};
  // Tokens with U+2581 right after another character (Gemma has one: ">▁</"). Merges run on
  // the whole text, but a merge can only join "x" and "▁" inside one of these, so the text
  // is cut into words before each such U+2581 that is not inside an occurrence of one.
  std::vector<std::string> crossing_;
};

}  // namespace minnow::text
