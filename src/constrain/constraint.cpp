#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>

#include "constrain/constrain.h"
#include "constrain/matcher.h"

namespace minnow::constrain {

GrammarConstraint::GrammarConstraint(std::shared_ptr<const Grammar> g,
                                     std::shared_ptr<const Vocab> v)
    : grammar_(std::move(g)), vocab_(std::move(v)) {}

GrammarConstraint::~GrammarConstraint() = default;

Result<std::unique_ptr<GrammarConstraint>> GrammarConstraint::create(
    std::shared_ptr<const Grammar> grammar, std::shared_ptr<const Vocab> vocab) {
  if (!grammar || !vocab) return Status::error("constraint: no grammar or no vocabulary");
  std::unique_ptr<GrammarConstraint> c(new GrammarConstraint(std::move(grammar), std::move(vocab)));
  c->matcher_ = std::make_unique<Matcher>(*c->grammar_);
  if (!c->matcher_->status().ok()) return c->matcher_->status();
  c->state_ = c->matcher_->start();
  if (c->state_ == Matcher::kDead) {
    return Status::error("constraint: the grammar's start rule matches nothing");
  }
  c->walk_states_.assign(c->vocab_->max_piece_bytes() + 1, Matcher::kDead);
  c->allowed_bits_.assign((c->vocab_->trie().rank_to_id.size() + 63) / 64, 0);
  return c;
}

uint32_t GrammarConstraint::walk(std::string_view bytes) const {
  if (at_start_ && vocab_->strip_first_space() && !bytes.empty() && bytes.front() == ' ') {
    bytes.remove_prefix(1);
  }
  uint32_t s = state_;
  for (char c : bytes) {
    s = matcher_->next(s, static_cast<uint8_t>(c));
    if (s == Matcher::kDead) break;
  }
  return s;
}

uint32_t GrammarConstraint::distance() const { return matcher_->dist(state_); }

void GrammarConstraint::set_budget(int tokens_left) {
  budget_on_ = tokens_left >= 0;
  if (!budget_on_) return;
  // Out of reach already: then only tokens that shorten the way to the end.
  budget_after_ = std::max<int64_t>(int64_t(tokens_left) - 2, int64_t(distance()) - 1);
}

bool GrammarConstraint::complete() const { return matcher_->accepting(state_); }
bool GrammarConstraint::finished() const { return matcher_->finished(state_); }
size_t GrammarConstraint::n_states() const { return matcher_->n_states(); }

bool GrammarConstraint::allows(int32_t token) {
  if (!status_.ok() || token < 0 || token >= vocab_->n_tokens()) return false;
  if (vocab_->is_eog(token)) return matcher_->accepting(state_);
  const std::string_view p = vocab_->piece(token);
  if (p.empty()) return false;
  const uint32_t s = walk(p);
  if (s == Matcher::kDead) return false;
  return !budget_on_ || int64_t(matcher_->dist(s)) <= budget_after_;
}

void GrammarConstraint::accept(int32_t token) {
  if (!status_.ok()) return;
  if (token < 0 || token >= vocab_->n_tokens()) {
    status_ = Status::error("constraint: token " + std::to_string(token) + " out of range");
    return;
  }
  if (vocab_->is_eog(token)) return;  // the end: nothing to advance
  const std::string_view p = vocab_->piece(token);
  const uint32_t s = p.empty() ? Matcher::kDead : walk(p);
  if (s == Matcher::kDead) {
    status_ = matcher_->status().ok() ? Status::error("constraint: token " + std::to_string(token) +
                                                      " is not allowed by the grammar here")
                                      : matcher_->status();
    return;
  }
  at_start_ = false;
  // Between tokens no other state id is held: the caches may start over if they grew large.
  state_ = matcher_->compact_if_large(s);
}

// Walks the vocabulary's trie together with the DFA: a node whose byte kills every stack ends
// its whole subtree; the tokens at surviving nodes are allowed. The allowed set is kept as bits
// by trie rank (so a subtree is a range of bits), then written into the logits from whichever
// side is smaller: the allowed tokens (saved, everything set to -inf, restored) or the others.
void GrammarConstraint::walk_trie(bool check) {
  const Vocab::Trie& trie = vocab_->trie();
  uint64_t* bits = allowed_bits_.data();
  std::fill(allowed_bits_.begin(), allowed_bits_.end(), 0);
  // Sets the bits [lo, hi).
  auto allow_ranks = [bits](uint32_t lo, uint32_t hi) {
    if (lo >= hi) return;
    const uint32_t wlo = lo >> 6, whi = (hi - 1) >> 6;
    const uint64_t first = ~uint64_t(0) << (lo & 63);
    const uint64_t last = ~uint64_t(0) >> (63 - ((hi - 1) & 63));
    if (wlo == whi) {
      bits[wlo] |= first & last;
      return;
    }
    bits[wlo] |= first;
    for (uint32_t w = wlo + 1; w < whi; ++w) bits[w] = ~uint64_t(0);
    bits[whi] |= last;
  };
  const Vocab::TrieNode* nodes = trie.nodes.data();
  const size_t n_nodes = trie.nodes.size() - 1;  // without the sentinel
  const bool strip = at_start_ && vocab_->strip_first_space();
  uint32_t* st = walk_states_.data();
  st[0] = state_;
  Matcher& m = *matcher_;
  // The state of the node just visited stays in a register for its first child (the common
  // next node), so the chain of lookups along a path does not go through memory.
  uint32_t last = state_;
  uint16_t last_depth = 0;
  for (size_t i = 1; i < n_nodes;) {
    const Vocab::TrieNode& node = nodes[i];
    const uint32_t parent = node.depth == last_depth + 1 ? last : st[node.depth - 1];
    // A subtree of plain bytes (or of text) no longer than the run ahead: all of it allowed.
    // Not under a budget check: the run's states need not all be within it.
    const bool skip_ok = !(strip && node.depth == 1) && !check;
    if (skip_ok && ((node.plain_height != 0 && node.plain_height <= m.plain_run(parent)) ||
                    (node.text_height != 0 && node.text_height <= m.text_run(parent)))) {
      allow_ranks(node.first_rank, nodes[node.subtree_end].first_rank);
      i = node.subtree_end;
      last_depth = 0xFFFF;  // the next node is not this one's child
      continue;
    }
    uint32_t ns;
    if (strip && node.depth == 1 && node.byte == ' ') {
      ns = state_;  // the leading space the decoder drops
    } else {
      ns = m.next(parent, node.byte);
    }
    if (ns == Matcher::kDead) {
      i = node.subtree_end;
      last_depth = 0xFFFF;
      continue;
    }
    st[node.depth] = ns;
    last = ns;
    last_depth = node.depth;
    // Over budget, a node's own tokens are not allowed, but longer ones below it may close more.
    if (!check || int64_t(m.dist(ns)) <= budget_after_) {
      allow_ranks(node.first_rank, nodes[i + 1].first_rank);
    }
    ++i;
  }
}

// Walks the vocabulary's trie together with the DFA: a node whose byte kills every stack ends
// its whole subtree; the tokens at surviving nodes are allowed. The allowed set is kept as bits
// by trie rank (so a subtree is a range of bits), then written into the logits from whichever
// side is smaller: the allowed tokens (saved, everything set to -inf, restored) or the others.
void GrammarConstraint::mask(std::span<float> logits) {
  const auto t0 = std::chrono::steady_clock::now();
  const Vocab::Trie& trie = vocab_->trie();
  const size_t n_ranked = trie.rank_to_id.size();
  uint64_t* bits = allowed_bits_.data();
  bool eog_allowed = false;
  if (status_.ok()) {
    eog_allowed = matcher_->accepting(state_);
    Matcher& m = *matcher_;
    // The budget matters only once it is below some state's distance; the walk may make new,
    // farther states, so it is checked again after it.
    bool check = budget_on_ && budget_after_ < int64_t(m.max_dist());
    walk_trie(check);
    if (budget_on_ && !check && budget_after_ < int64_t(m.max_dist())) {
      check = true;
      walk_trie(true);
    }
    if (check && !eog_allowed &&
        std::all_of(allowed_bits_.begin(), allowed_bits_.end(), [](uint64_t w) { return !w; })) {
      // A vocabulary without some single-byte token: no token fits; the grammar alone rules.
      walk_trie(false);
    }
    if (!m.status().ok()) status_ = m.status();
  } else {
    std::fill(allowed_bits_.begin(), allowed_bits_.end(), 0);
  }
  const size_t n = std::min(logits.size(), size_t(vocab_->n_tokens()));
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  size_t n_allowed = 0;
  for (uint64_t w : allowed_bits_) n_allowed += size_t(__builtin_popcountll(w));
  const int32_t* rank_to_id = trie.rank_to_id.data();
  if (n_allowed * 2 < n_ranked) {
    kept_.clear();
    for (size_t w = 0; w < allowed_bits_.size(); ++w) {
      for (uint64_t b = bits[w]; b; b &= b - 1) {
        const int32_t id = rank_to_id[w * 64 + size_t(__builtin_ctzll(b))];
        if (size_t(id) < n) kept_.emplace_back(id, logits[size_t(id)]);
      }
    }
    if (eog_allowed) {
      for (int32_t id : vocab_->eog()) {
        if (size_t(id) < n) kept_.emplace_back(id, logits[size_t(id)]);
      }
    }
    std::fill(logits.begin(), logits.end(), kNegInf);
    for (const auto& [id, logit] : kept_) logits[size_t(id)] = logit;
  } else {
    for (size_t w = 0; w < allowed_bits_.size(); ++w) {
      uint64_t b = ~bits[w];
      if (w + 1 == allowed_bits_.size() && (n_ranked & 63)) {
        b &= ~uint64_t(0) >> (64 - (n_ranked & 63));  // no ranks past the last
      }
      for (; b; b &= b - 1) {
        const int32_t id = rank_to_id[w * 64 + size_t(__builtin_ctzll(b))];
        if (size_t(id) < n) logits[size_t(id)] = kNegInf;
      }
    }
    for (int32_t id : trie.unranked) {
      if (size_t(id) < n && !(eog_allowed && vocab_->is_eog(id))) logits[size_t(id)] = kNegInf;
    }
    for (size_t i = n; i < logits.size(); ++i) logits[i] = kNegInf;
  }
  ++n_masks_;
  mask_ms_total_ +=
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

void GrammarConstraint::forced(std::vector<int32_t>& out) {
  if (!status_.ok()) return;
  Matcher& m = *matcher_;
  // The one byte string the grammar allows ahead (bounded: a token is at most that long).
  std::string bytes;
  uint32_t s = state_;
  const size_t limit = std::max<size_t>(vocab_->max_piece_bytes(), 16);
  while (bytes.size() < limit && !m.accepting(s)) {
    int only = -1;
    uint32_t only_next = Matcher::kDead;
    for (int b = 0; b < 256; ++b) {
      const uint32_t ns = m.next(s, uint8_t(b));
      if (ns == Matcher::kDead) continue;
      if (only >= 0) {
        only = -2;
        break;
      }
      only = b;
      only_next = ns;
    }
    if (only < 0) break;
    bytes += char(only);
    s = only_next;
  }
  if (bytes.empty()) return;
  // A first token starting with a space would lose it to the decoder: leave that to sampling.
  if (at_start_ && vocab_->strip_first_space() && bytes.front() == ' ') return;
  const Vocab::Trie& t = vocab_->trie();
  size_t pos = 0;
  while (pos < bytes.size()) {
    // The longest token spelling a prefix of bytes[pos..].
    uint32_t node = t.child_of_root[static_cast<uint8_t>(bytes[pos])];
    int32_t best = -1;
    size_t best_len = 0;
    size_t len = 1;
    while (node != 0) {
      if (t.nodes[node].token >= 0) {
        best = t.nodes[node].token;
        best_len = len;
      }
      if (pos + len >= bytes.size()) break;
      const uint8_t want = static_cast<uint8_t>(bytes[pos + len]);
      uint32_t child = node + 1;
      uint32_t found = 0;
      while (child < t.nodes[node].subtree_end) {
        if (t.nodes[child].byte == want) {
          found = child;
          break;
        }
        child = t.nodes[child].subtree_end;
      }
      node = found;
      ++len;
    }
    if (best < 0) break;
    out.push_back(best);
    pos += best_len;
  }
}

}  // namespace minnow::constrain
