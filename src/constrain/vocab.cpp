#include <algorithm>
#include <numeric>

#include "constrain/constrain.h"

namespace minnow::constrain {

std::shared_ptr<const Vocab> Vocab::from_tokenizer(const text::Tokenizer& tok) {
  const size_t n = tok.n_tokens();
  std::vector<std::string> pieces(n);
  std::vector<int32_t> eog;
  for (size_t i = 0; i < n; ++i) {
    const auto id = int32_t(i);
    if (tok.is_eog(id)) {
      eog.push_back(id);
      continue;
    }
    // Control and unknown tokens give "" (never allowed); byte-fallback tokens give their byte.
    pieces[i] = std::string(tok.piece(id, false));
  }
  return from_pieces(std::move(pieces), std::move(eog),
                     tok.kind() == text::TokenizerKind::kSpm && tok.add_space_prefix());
}

std::shared_ptr<const Vocab> Vocab::from_pieces(std::vector<std::string> pieces,
                                                std::vector<int32_t> eog, bool strip_first_space) {
  auto v = std::make_shared<Vocab>();
  v->pieces_ = std::move(pieces);
  v->eog_flags_.assign(v->pieces_.size(), 0);
  for (int32_t id : eog) {
    if (id >= 0 && size_t(id) < v->pieces_.size()) {
      v->eog_flags_[size_t(id)] = 1;
      v->pieces_[size_t(id)].clear();  // an EOG token adds nothing to the text; never in the trie
      v->eog_.push_back(id);
    }
  }
  v->strip_first_space_ = strip_first_space;
  v->build();
  return v;
}

// The trie in preorder from the pieces in sorted order: each piece shares its longest common
// prefix with the one before, so its new nodes are appended right after that prefix's path.
void Vocab::build() {
  const size_t n = pieces_.size();
  // (bytes, id) pairs sorted by bytes then id: views sort without chasing each string.
  std::vector<std::pair<std::string_view, int32_t>> order;
  order.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    if (!pieces_[i].empty()) order.emplace_back(pieces_[i], int32_t(i));
  }
  std::sort(order.begin(), order.end());
  Trie& t = trie_;
  t = Trie{};
  t.same_bytes_next.assign(n, -1);
  t.child_of_root.assign(256, 0);
  auto add_node = [&](uint8_t byte, uint16_t depth) {
    t.nodes.push_back({0, -1, 0, depth, byte, 0, 0});
    return uint32_t(t.nodes.size() - 1);
  };
  add_node(0, 0);
  std::vector<uint32_t> path = {0};  // path[d]: the node at depth d of the previous piece
  std::string_view prev;
  int32_t prev_id = -1;
  max_piece_ = 0;
  for (const auto& [p, id] : order) {
    // Pieces longer than a trie depth can count are left out (none exist in real vocabularies).
    if (p.size() >= 65535) continue;
    max_piece_ = std::max(max_piece_, p.size());
    if (p == prev) {
      // Same bytes as the previous token: chain it behind the last one of the chain.
      int32_t last = prev_id;
      while (t.same_bytes_next[size_t(last)] >= 0) last = t.same_bytes_next[size_t(last)];
      t.same_bytes_next[size_t(last)] = id;
      continue;
    }
    size_t common = 0;
    while (common < prev.size() && common < p.size() && prev[common] == p[common]) ++common;
    while (path.size() > common + 1) {
      t.nodes[path.back()].subtree_end = uint32_t(t.nodes.size());
      path.pop_back();
    }
    for (size_t d = common; d < p.size(); ++d) {
      const uint32_t node = add_node(static_cast<uint8_t>(p[d]), uint16_t(d + 1));
      if (d == 0) t.child_of_root[static_cast<uint8_t>(p[0])] = node;
      path.push_back(node);
    }
    t.nodes[path.back()].token = id;
    prev = p;
    prev_id = id;
  }
  while (!path.empty()) {
    t.nodes[path.back()].subtree_end = uint32_t(t.nodes.size());
    path.pop_back();
  }
  // Ranks in preorder, then the sentinel.
  const uint32_t n_real = uint32_t(t.nodes.size());
  for (uint32_t i = 0; i < n_real; ++i) {
    t.nodes[i].first_rank = uint32_t(t.rank_to_id.size());
    for (int32_t id = t.nodes[i].token; id >= 0; id = t.same_bytes_next[size_t(id)]) {
      t.rank_to_id.push_back(id);
    }
  }
  std::vector<uint8_t> ranked(n, 0);
  for (int32_t id : t.rank_to_id) ranked[size_t(id)] = 1;
  for (size_t i = 0; i < n; ++i) {
    if (!ranked[i]) t.unranked.push_back(int32_t(i));
  }
  // plain_height bottom up: children follow their parent in preorder, so a reverse pass sees
  // every child before its parent; each node folds its height into its parent's.
  std::vector<uint8_t> all_plain(t.nodes.size(), 1);
  std::vector<uint16_t> height(t.nodes.size(), 1);
  std::vector<uint32_t> parent(t.nodes.size(), 0);
  for (uint32_t i = 0; i < t.nodes.size(); ++i) {
    for (uint32_t c = i + 1; c < t.nodes[i].subtree_end; c = t.nodes[c].subtree_end) parent[c] = i;
  }
  // UTF-8 along each path from the root, top down (parents come first in preorder): whether
  // the path is a valid prefix, how many continuation bytes are still due after the node, and
  // the range the next byte must be in (narrower after E0, ED, F0, F4: no overlong forms,
  // surrogates or values past U+10FFFF, the same rules as the matcher's).
  std::vector<uint8_t> valid(t.nodes.size(), 1), due(t.nodes.size(), 0);
  std::vector<uint8_t> next_lo(t.nodes.size(), 0x80), next_hi(t.nodes.size(), 0xBF);
  for (uint32_t i = 1; i < n_real; ++i) {
    const uint32_t p = parent[i];
    const uint8_t b = t.nodes[i].byte;
    if (!valid[p]) {
      valid[i] = 0;
    } else if (due[p] > 0) {
      valid[i] = b >= next_lo[p] && b <= next_hi[p];
      due[i] = uint8_t(due[p] - 1);
    } else if (b < 0x80) {
      due[i] = 0;
    } else if (b >= 0xC2 && b <= 0xDF) {
      due[i] = 1;
    } else if (b >= 0xE0 && b <= 0xEF) {
      due[i] = 2;
      if (b == 0xE0) next_lo[i] = 0xA0;
      if (b == 0xED) next_hi[i] = 0x9F;
    } else if (b >= 0xF0 && b <= 0xF4) {
      due[i] = 3;
      if (b == 0xF0) next_lo[i] = 0x90;
      if (b == 0xF4) next_hi[i] = 0x8F;
    } else {
      valid[i] = 0;
    }
  }
  std::vector<uint8_t> all_text(t.nodes.size(), 1);
  for (size_t i = t.nodes.size(); i-- > 1;) {
    TrieNode& n = t.nodes[i];
    if (!is_plain_byte(n.byte)) all_plain[i] = 0;
    n.plain_height = all_plain[i] ? uint8_t(std::min<uint16_t>(height[i], 255)) : 0;
    if (!valid[i] || (n.byte < 0x80 && !is_plain_byte(n.byte))) all_text[i] = 0;
    const uint32_t p = parent[i];
    n.text_height =
        all_text[i] && due[p] == 0 && valid[p] ? uint8_t(std::min<uint16_t>(height[i], 255)) : 0;
    all_text[p] &= all_text[i];
    all_plain[p] &= all_plain[i];
    height[p] = std::max<uint16_t>(height[p], uint16_t(std::min<int>(height[i] + 1, 60000)));
  }
  t.nodes.push_back({n_real, -1, uint32_t(t.rank_to_id.size()), 0, 0, 0, 0});  // the sentinel
}

}  // namespace minnow::constrain
