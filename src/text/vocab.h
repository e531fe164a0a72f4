// The token table shared by the tokenizer engines (internal to text/): texts, scores and
// attributes by id, and text -> id.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "text/flat_map.h"
#include "text/tokenizer.h"

namespace minnow::text {

struct Vocab {
  std::string arena;              // all token texts, back to back
  std::vector<uint32_t> offsets;  // (n_tokens + 1) offsets into arena
  std::vector<float> scores;      // (n_tokens)
  std::vector<uint32_t> attrs;    // (n_tokens) TokenAttr bits
  StringIndex index;              // text -> id (views into arena)

  size_t size() const { return scores.size(); }
  std::string_view text(TokenId id) const {
    return std::string_view(arena).substr(offsets[id], offsets[id + 1] - offsets[id]);
  }
  TokenId find(std::string_view s) const { return index.find(s); }
};

}  // namespace minnow::text
