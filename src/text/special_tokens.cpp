#include "text/special_tokens.h"

#include <algorithm>
#include <map>

namespace minnow::text {
namespace {

bool is_c_space(char c) {  // isspace() in the C locale, as llama.cpp strips with
  return c == ' ' || (c >= '\t' && c <= '\r');
}

struct Candidate {
  uint32_t len;
  uint32_t pos;
  TokenId token;
};

// Longest first, then leftmost.
struct CandidateAfter {
  bool operator()(const Candidate& a, const Candidate& b) const {
    return a.len < b.len || (a.len == b.len && a.pos > b.pos);
  }
};

enum : uint8_t { kFree = 0, kTaken = 1, kStripped = 2 };

}  // namespace

void SpecialMatcher::build(const Vocab& vocab, const std::vector<TokenId>& ids) {
  vocab_ = &vocab;
  // Build with ordered maps, then flatten into sorted edge arrays.
  std::vector<std::map<uint8_t, uint32_t>> children(1);
  std::vector<TokenId> tokens(1, kNoToken);
  for (TokenId id : ids) {
    const std::string_view text = vocab.text(id);
    if (text.empty()) continue;
    uint32_t node = 0;
    for (char c : text) {
      const auto b = static_cast<uint8_t>(c);
      auto it = children[node].find(b);
      if (it == children[node].end()) {
        const auto fresh = static_cast<uint32_t>(children.size());
        children[node].emplace(b, fresh);
        children.emplace_back();
        tokens.push_back(kNoToken);
        node = fresh;
      } else {
        node = it->second;
      }
    }
    tokens[node] = id;
  }
  nodes_.assign(children.size(), Node{});
  edges_.clear();
  for (size_t n = 0; n < children.size(); ++n) {
    nodes_[n].edge_begin = static_cast<uint32_t>(edges_.size());
    nodes_[n].edge_count = static_cast<uint32_t>(children[n].size());
    nodes_[n].token = tokens[n];
    for (const auto& [b, c] : children[n]) edges_.push_back({b, c});
  }
  root_.assign(256, -1);
  for (const auto& [b, c] : children[0]) root_[b] = static_cast<int32_t>(c);
}

int32_t SpecialMatcher::child(uint32_t node, uint8_t byte) const {
  const Node& n = nodes_[node];
  const Edge* begin = edges_.data() + n.edge_begin;
  const Edge* end = begin + n.edge_count;
  const Edge* it =
      std::lower_bound(begin, end, byte, [](const Edge& e, uint8_t b) { return e.byte < b; });
  return (it != end && it->byte == byte) ? static_cast<int32_t>(it->child) : -1;
}

bool SpecialMatcher::allowed(TokenId t, bool parse_special) const {
  return parse_special || !(vocab_->attrs[t] & (kAttrControl | kAttrUnknown));
}

uint32_t SpecialMatcher::longest_at(std::string_view text, size_t pos, size_t max_len,
                                    bool parse_special, TokenId* token) const {
  uint32_t best = 0;
  if (pos >= text.size()) return 0;
  int32_t node = root_[static_cast<uint8_t>(text[pos])];
  size_t len = 1;
  while (node >= 0 && len <= max_len) {
    const TokenId t = nodes_[node].token;
    if (t >= 0 && allowed(t, parse_special)) {
      best = static_cast<uint32_t>(len);
      *token = t;
    }
    if (pos + len >= text.size()) break;
    node = child(static_cast<uint32_t>(node), static_cast<uint8_t>(text[pos + len]));
    ++len;
  }
  return best;
}

void SpecialMatcher::partition(std::string_view text, bool parse_special,
                               std::vector<Fragment>& out) const {
  out.clear();
  if (text.empty()) return;
  std::vector<Candidate> heap;
  if (!nodes_.empty()) {
    for (size_t pos = 0; pos < text.size(); ++pos) {
      if (root_[static_cast<uint8_t>(text[pos])] < 0) continue;
      TokenId t = kNoToken;
      const uint32_t len = longest_at(text, pos, text.size(), parse_special, &t);
      if (len) heap.push_back({len, static_cast<uint32_t>(pos), t});
    }
  }
  if (heap.empty()) {
    out.push_back({0, static_cast<uint32_t>(text.size()), kNoToken});
    return;
  }

  std::make_heap(heap.begin(), heap.end(), CandidateAfter());
  std::vector<uint8_t> state(text.size(), kFree);
  std::vector<TokenId> token_at(text.size(), kNoToken);
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), CandidateAfter());
    const Candidate c = heap.back();
    heap.pop_back();
    if (state[c.pos] != kFree) continue;  // shorter tokens here start in taken text too
    size_t limit = c.pos;
    while (limit < c.pos + c.len && state[limit] == kFree) ++limit;
    if (limit < c.pos + c.len) {
      // Blocked further right: the next shorter token that still fits may be taken later.
      TokenId t = kNoToken;
      const uint32_t len = longest_at(text, c.pos, limit - c.pos, parse_special, &t);
      if (len) {
        heap.push_back({len, c.pos, t});
        std::push_heap(heap.begin(), heap.end(), CandidateAfter());
      }
      continue;
    }
    std::fill(state.begin() + c.pos, state.begin() + c.pos + c.len, kTaken);
    token_at[c.pos] = c.token;
    const uint32_t attr = vocab_->attrs[c.token];
    if (attr & kAttrLstrip) {
      for (size_t i = c.pos; i > 0 && state[i - 1] == kFree && is_c_space(text[i - 1]); --i) {
        state[i - 1] = kStripped;
      }
    }
    if (attr & kAttrRstrip) {
      for (size_t i = c.pos + c.len; i < text.size() && state[i] == kFree && is_c_space(text[i]);
           ++i) {
        state[i] = kStripped;
      }
    }
  }

  for (size_t pos = 0; pos < text.size();) {
    if (state[pos] == kTaken) {
      const TokenId t = token_at[pos];
      const auto len = static_cast<uint32_t>(vocab_->text(t).size());
      out.push_back({static_cast<uint32_t>(pos), len, t});
      pos += len;
    } else if (state[pos] == kStripped) {
      ++pos;
    } else {
      const size_t start = pos;
      while (pos < text.size() && state[pos] == kFree) ++pos;
      out.push_back({static_cast<uint32_t>(start), static_cast<uint32_t>(pos - start), kNoToken});
    }
  }
}

}  // namespace minnow::text
