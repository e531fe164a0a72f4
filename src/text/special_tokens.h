// Cutting special tokens out of text before the tokenizer model runs (internal to text/).
//
// llama.cpp takes the special tokens longest first and, for each, splits every remaining
// text fragment at its leftmost non-overlapping occurrences. The same result is computed here
// in O(n log n): a byte trie finds, at each position, the longest special token starting
// there; candidates are taken from a heap ordered by (length desc, position asc), and a
// candidate that overlaps text already taken falls back to the next shorter token at its
// position. (Distinct tokens of equal length that overlap are taken leftmost first, where
// llama.cpp's order depends on an unstable sort.)
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "text/vocab.h"

namespace minnow::text {

class SpecialMatcher {
 public:
  struct Fragment {
    uint32_t offset;
    uint32_t length;
    TokenId token;  // kNoToken for a text fragment
  };

  // `ids`: the tokens to recognise (control, user-defined and unknown ones).
  void build(const Vocab& vocab, const std::vector<TokenId>& ids);

  // Splits `text` into text fragments and special tokens, in order. Without parse_special
  // only tokens that are neither control nor unknown are recognised.
  void partition(std::string_view text, bool parse_special, std::vector<Fragment>& out) const;

 private:
  struct Node {
    uint32_t edge_begin = 0;  // children in edges_[edge_begin, edge_begin + edge_count)
    uint32_t edge_count = 0;
    TokenId token = kNoToken;  // the token ending here
  };
  struct Edge {
    uint8_t byte;
    uint32_t child;
  };

  int32_t child(uint32_t node, uint8_t byte) const;
  bool allowed(TokenId t, bool parse_special) const;
  // Longest allowed token at `pos` with length <= max_len; returns its length (0: none).
  uint32_t longest_at(std::string_view text, size_t pos, size_t max_len, bool parse_special,
                      TokenId* token) const;

  const Vocab* vocab_ = nullptr;
  std::vector<Node> nodes_;
  std::vector<Edge> edges_;
  std::vector<int32_t> root_;  // 256 entries: child of the root per byte, -1 if none
};

}  // namespace minnow::text
