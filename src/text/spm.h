// SentencePiece-style BPE by score (internal to text/), as llama.cpp's "llama" tokenizer model.
#pragma once

#include <array>
#include <string_view>
#include <vector>

#include "text/vocab.h"

namespace minnow::text {

class SpmEncoder {
 public:
  void init(const Vocab& vocab, TokenId unk);

  // Appends the ids of `text`, whose spaces are already written as U+2581.
  void encode(std::string_view text, std::vector<TokenId>& out) const;

  // The token for a raw byte: <0xNN>, else the one-byte token, else unk (kNoToken if none).
  TokenId byte_token(uint8_t b) const { return byte_tokens_[b]; }

 private:
  const Vocab* vocab_ = nullptr;
  std::array<TokenId, 256> byte_tokens_{};
};

}  // namespace minnow::text
