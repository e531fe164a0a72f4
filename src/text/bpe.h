// Byte-level BPE (internal to text/): pre-tokenizer split, then rank-ordered merges per piece.
#pragma once

#include <array>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "gguf/gguf.h"
#include "text/flat_map.h"
#include "text/pretokenizer.h"
#include "text/vocab.h"

namespace minnow::text {

class BpeEncoder {
 public:
  // `merges` is tokenizer.ggml.merges ("left right" strings in rank order).
  Status init(const Vocab& vocab, const gguf::Value& merges, const PreTokenizerInfo& info);

  // Appends the ids of one text fragment (no special tokens inside) to `out`. `cache` (may be
  // null) remembers words across the fragments of one call.
  Status encode(std::string_view fragment, std::vector<TokenId>& out, WordCache* cache) const;

 private:
  struct Symbol {
    int32_t id;    // symbol id: < n_vocab is a token; above, a merge string that is not one
    uint32_t pos;  // byte offset in the word
    uint32_t len;  // bytes; 0 once merged into its left neighbour
    int32_t prev;
    int32_t next;
  };

  int32_t find_symbol(std::string_view s) const;
  int32_t intern(std::string_view s);
  void encode_word(std::string_view word, std::vector<Symbol>& syms,
                   std::vector<TokenId>& out) const;
  void emit_unknown(std::string_view text, std::vector<TokenId>& out) const;

  const Vocab* vocab_ = nullptr;
  PreTokenizerInfo info_;
  std::unique_ptr<RegexSplitter> splitter_;
  std::deque<std::string> extra_text_;  // bytes of the non-token merge strings
  StringIndex extra_;                   // those strings -> id - n_vocab
  PairMap merges_;
  std::array<int32_t, 256> byte_symbol_{};  // symbol of each byte's alphabet character
  // ignore_merges: a word whose raw bytes spell a whole token is that token. The token texts
  // decoded out of the byte alphabet, so words need not be re-encoded to be looked up.
  std::string raw_arena_;
  StringIndex raw_tokens_;
  std::vector<TokenId> raw_token_ids_;
};

}  // namespace minnow::text
