#include "constrain/matcher.h"

#include <algorithm>
#include <cstring>
#include <functional>
#include <queue>

namespace minnow::constrain {
namespace {

// Budget of the caches of one matcher before compact_if_large() starts over.
constexpr size_t kMaxCachedNodes = size_t(1) << 21;
constexpr size_t kMaxCachedStates = size_t(1) << 15;  // 1 KiB of transitions each

uint64_t pair_key(uint32_t a, uint32_t b) { return (uint64_t(a) << 32) | b; }

uint32_t add_dist(uint64_t a, uint64_t b) {
  return uint32_t(std::min<uint64_t>(a + b, Matcher::kNoEnd));
}

uint32_t utf8_length(uint32_t cp) { return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4; }

}  // namespace

// The shortest character of each class, then each rule's shortest sentence: a rule is settled
// in increasing order of length once every rule an alternative refers to is settled (the sum of
// its parts is then known), so a recursive rule with no way out stays kNoEnd. Then each
// element's shortest way to the end of its alternative, back to front.
void Matcher::compute_min_rest() {
  const auto& els = g_.elements();
  const auto& rules = g_.rules();
  std::vector<uint32_t> char_min(g_.classes().size(), kNoEnd);
  for (size_t c = 0; c < char_min.size(); ++c) {
    for (const auto& [lo, hi] : g_.classes()[c].ranges) {
      // Ranges are sorted and longer encodings come with larger code points: the first range
      // holding a character (not only surrogates) has the shortest.
      const uint32_t cp = lo >= 0xD800 && lo <= 0xDFFF ? 0xE000 : lo;
      if (cp <= hi) {
        char_min[c] = utf8_length(cp);
        break;
      }
    }
  }
  struct Alt {
    uint32_t rule;
    uint32_t pending;  // references to rules not settled yet
    uint64_t sum;      // of the parts known so far
  };
  std::vector<Alt> alts;
  std::vector<std::vector<uint32_t>> uses(rules.size());  // rule -> alternatives, per reference
  for (uint32_t r = 0; r < rules.size(); ++r) {
    for (uint32_t begin : rules[r].alternatives) {
      Alt a{r, 0, 0};
      for (uint32_t i = begin; els[i].kind != Grammar::Kind::kEnd; ++i) {
        if (els[i].kind == Grammar::Kind::kChars) {
          a.sum += char_min[els[i].arg];
        } else {
          ++a.pending;
          uses[els[i].arg].push_back(uint32_t(alts.size()));
        }
      }
      alts.push_back(a);
    }
  }
  using Item = std::pair<uint64_t, uint32_t>;  // (length, rule)
  std::priority_queue<Item, std::vector<Item>, std::greater<Item>> queue;
  for (const Alt& a : alts) {
    if (a.pending == 0) queue.emplace(a.sum, a.rule);
  }
  std::vector<uint32_t> rule_min(rules.size(), kNoEnd);
  std::vector<bool> settled(rules.size(), false);
  while (!queue.empty()) {
    const auto [len, r] = queue.top();
    queue.pop();
    if (settled[r]) continue;
    settled[r] = true;
    rule_min[r] = add_dist(len, 0);
    for (uint32_t ai : uses[r]) {
      Alt& a = alts[ai];
      a.sum += len;
      if (--a.pending == 0) queue.emplace(a.sum, a.rule);
    }
  }
  min_rest_.assign(els.size(), 0);
  for (const auto& rule : rules) {
    for (uint32_t begin : rule.alternatives) {
      uint32_t end = begin;
      while (els[end].kind != Grammar::Kind::kEnd) ++end;
      for (uint32_t i = end; i-- > begin;) {
        const uint32_t part =
            els[i].kind == Grammar::Kind::kChars ? char_min[els[i].arg] : rule_min[els[i].arg];
        min_rest_[i] = add_dist(part, min_rest_[i + 1]);
      }
    }
  }
}

Matcher::Matcher(const Grammar& g) : g_(g) {
  compute_min_rest();
  nodes_.push_back({0, 0});
  node_dist_.assign(1, 0);
  states_.emplace_back();  // kDead
  dist_.assign(1, kNoEnd);
  rows_.assign(256, int32_t(kDead));
  plain_run_.assign(1, 0);
  text_run_.assign(1, 0);
  std::vector<uint32_t> none;
  key_.clear();
  state_ids_.emplace(std::string(), kDead);
  out_.clear();
  visited_.clear();
  for (uint32_t alt : g_.rules()[g_.root()].alternatives) expand(alt, 0);
  start_ = intern(out_, 0, 0, 0);
}

uint32_t Matcher::node(uint32_t pos, uint32_t parent) {
  auto [it, inserted] = node_ids_.try_emplace(pair_key(pos, parent), uint32_t(nodes_.size()));
  if (inserted) {
    nodes_.push_back({pos, parent});
    node_dist_.push_back(add_dist(min_rest_[pos], node_dist_[parent]));
  }
  return it->second;
}

// Pushes onto out_ every stack reachable from (pos, parent) without reading a character: its
// top is a character class, or it is the empty stack (0). Left recursion was rejected at parse
// time, so this terminates; visited_ keeps shared sub-expansions from being walked twice.
void Matcher::expand(uint32_t pos, uint32_t parent) {
  if (!visited_.insert(pair_key(pos, parent)).second) return;
  const auto& el = g_.elements()[pos];
  switch (el.kind) {
    case Grammar::Kind::kEnd:
      if (parent == 0) {
        out_.push_back(0);
      } else {
        const Node n = nodes_[parent];
        expand(n.pos, n.parent);
      }
      return;
    case Grammar::Kind::kChars:
      out_.push_back(node(pos, parent));
      return;
    case Grammar::Kind::kRef: {
      // A reference in tail position needs no continuation node: right recursion (`x ::= "a" x`)
      // then keeps the stack flat however long the repetition.
      const uint32_t cont = pos + 1;
      const uint32_t below =
          g_.elements()[cont].kind == Grammar::Kind::kEnd ? parent : node(cont, parent);
      for (uint32_t alt : g_.rules()[el.arg].alternatives) expand(alt, below);
      return;
    }
  }
}

uint32_t Matcher::intern(std::vector<uint32_t>& stacks, uint32_t partial_cp, uint8_t remaining,
                         uint8_t seq_len) {
  std::sort(stacks.begin(), stacks.end());
  stacks.erase(std::unique(stacks.begin(), stacks.end()), stacks.end());
  if (stacks.empty()) return kDead;
  if (stacks.size() > kMaxStacks) {
    if (status_.ok()) {
      status_ = Status::error("grammar: more than " + std::to_string(kMaxStacks) +
                              " parse stacks are alive at once (the grammar is too ambiguous; "
                              "simplify alternatives that can match the same text)");
    }
    return kDead;
  }
  key_.resize(stacks.size() * 4 + 6);
  std::memcpy(key_.data(), stacks.data(), stacks.size() * 4);
  std::memcpy(key_.data() + stacks.size() * 4, &partial_cp, 4);
  key_[key_.size() - 2] = char(remaining);
  key_.back() = char(seq_len);
  auto [it, inserted] = state_ids_.try_emplace(key_, uint32_t(states_.size()));
  if (!inserted) return it->second;
  State st;
  st.stacks_begin = uint32_t(stack_pool_.size());
  st.stacks_size = uint32_t(stacks.size());
  st.partial_cp = partial_cp;
  st.remaining = remaining;
  st.seq_len = seq_len;
  st.accepting = remaining == 0 && stacks.front() == 0;
  st.finished = st.accepting && stacks.size() == 1;
  stack_pool_.insert(stack_pool_.end(), stacks.begin(), stacks.end());
  states_.push_back(std::move(st));
  // A character being read: its remaining bytes, then the rest of its stack past it.
  uint32_t d = kNoEnd;
  for (uint32_t id : stacks) {
    d = std::min(d, remaining == 0 ? node_dist_[id]
                                   : add_dist(uint64_t(remaining) + min_rest_[nodes_[id].pos + 1],
                                              node_dist_[nodes_[id].parent]));
  }
  dist_.push_back(d);
  if (d != kNoEnd) max_dist_ = std::max(max_dist_, d);
  rows_.resize(rows_.size() + 256, -1);
  plain_run_.push_back(kPlainUnknown);
  text_run_.push_back(kPlainUnknown);
  return it->second;
}

// The stacks of `s` whose top class holds `cp`, each moved past it and expanded.
uint32_t Matcher::advance(uint32_t s, uint32_t cp) {
  out_.clear();
  visited_.clear();
  if (cp >= 0xD800 && cp <= 0xDFFF) return kDead;  // surrogates are not characters
  const State& st = states_[s];
  for (uint32_t i = 0; i < st.stacks_size; ++i) {
    const uint32_t id = stack_pool_[states_[s].stacks_begin + i];
    if (id == 0) continue;
    const Node n = nodes_[id];
    const auto& cls = g_.classes()[g_.elements()[n.pos].arg];
    if (cls.contains(cp)) expand(n.pos + 1, n.parent);
  }
  return intern(out_, 0, 0, 0);
}

// `s`'s stacks that can still match a code point starting with the bytes read (its value lies
// in [cp_bits << 6r, (cp_bits << 6r) | (2^6r - 1)] with r continuation bytes to come), cut to
// what a sequence of that length may encode: no overlong forms, surrogates or values past
// U+10FFFF, so that a state never waits for a byte that cannot come.
uint32_t Matcher::with_partial(uint32_t s, uint32_t cp_bits, uint8_t remaining, uint8_t seq_len) {
  static constexpr uint32_t kMinOfLength[5] = {0, 0, 0x80, 0x800, 0x10000};
  const uint32_t raw_lo = cp_bits << (6 * remaining);
  const uint32_t lo = std::max(raw_lo, kMinOfLength[seq_len]);
  const uint32_t hi = std::min(raw_lo | ((1u << (6 * remaining)) - 1), 0x10FFFFu);
  out_.clear();
  if (lo > hi) return kDead;
  auto viable = [&](const Grammar::CharClass& cls) {
    if (hi < 0xD800 || lo > 0xDFFF) return cls.intersects(lo, hi);
    return (lo < 0xD800 && cls.intersects(lo, 0xD7FF)) ||
           (hi > 0xDFFF && cls.intersects(0xE000, hi));
  };
  const State& st = states_[s];
  for (uint32_t i = 0; i < st.stacks_size; ++i) {
    const uint32_t id = stack_pool_[st.stacks_begin + i];
    if (id == 0) continue;
    const auto& cls = g_.classes()[g_.elements()[nodes_[id].pos].arg];
    if (viable(cls)) out_.push_back(id);
  }
  return intern(out_, cp_bits, remaining, seq_len);
}

uint32_t Matcher::compute_next(uint32_t s, uint8_t b) {
  uint32_t r = kDead;
  if (s != kDead && status_.ok()) {
    const uint8_t rem = states_[s].remaining;
    if (rem > 0) {
      if ((b & 0xC0) == 0x80) {
        const uint32_t cp = (states_[s].partial_cp << 6) | (b & 0x3F);
        r = rem == 1 ? advance(s, cp) : with_partial(s, cp, uint8_t(rem - 1), states_[s].seq_len);
      }
    } else if (b < 0x80) {
      r = advance(s, b);
    } else if (b >= 0xC2 && b < 0xE0) {
      r = with_partial(s, b & 0x1F, 1, 2);
    } else if (b >= 0xE0 && b < 0xF0) {
      r = with_partial(s, b & 0x0F, 2, 3);
    } else if (b >= 0xF0 && b < 0xF5) {
      r = with_partial(s, b & 0x07, 3, 4);
    }
    // Anything else (a stray continuation byte, C0/C1, F5..FF) is never valid UTF-8.
  }
  rows_[size_t(s) * 256 + b] = int32_t(r);
  return r;
}

// The state every plain byte (text: and every character beyond ASCII) leads to from `s`, or
// kDead when one dies or two differ. For text each stack's class must hold all of those
// characters or none, so that any of them advances the same stacks as a space does.
uint32_t Matcher::uniform_next(uint32_t s, bool text) {
  if (text) {
    if (states_[s].remaining != 0) return kDead;
    const State& st = states_[s];
    for (uint32_t i = 0; i < st.stacks_size; ++i) {
      const uint32_t id = stack_pool_[st.stacks_begin + i];
      if (id == 0) continue;
      const auto& cls = g_.classes()[g_.elements()[nodes_[id].pos].arg];
      const bool all = cls.contains_range(0x20, 0x21) && cls.contains_range(0x23, 0x5B) &&
                       cls.contains_range(0x5D, 0x7E) && cls.contains_range(0x80, 0xD7FF) &&
                       cls.contains_range(0xE000, 0x10FFFF);
      const bool none = !cls.intersects(0x20, 0x21) && !cls.intersects(0x23, 0x5B) &&
                        !cls.intersects(0x5D, 0x7E) && !cls.intersects(0x80, 0xD7FF) &&
                        !cls.intersects(0xE000, 0x10FFFF);
      if (!all && !none) return kDead;
    }
    return next(s, ' ');
  }
  const uint32_t t = next(s, ' ');
  if (t == kDead) return kDead;
  for (int b = 0x21; b < 0x7F; ++b) {
    if (Vocab::is_plain_byte(uint8_t(b)) && next(s, uint8_t(b)) != t) return kDead;
  }
  return t;
}

// Follows the chain s -> uniform_next(s) -> ... until a state whose run is known, a dead end,
// a self-loop (a run without end) or the cap, then fills the chain's runs back to front.
// Anything longer than the cap, or a longer cycle, ends up underestimated: always safe.
uint8_t Matcher::compute_run(uint32_t s, bool text) {
  std::vector<uint8_t>& run = text ? text_run_ : plain_run_;
  chain_.clear();
  uint32_t cur = s;
  int tail = 0;
  while (true) {
    if (run[cur] != kPlainUnknown) {
      tail = run[cur];
      break;
    }
    if (chain_.size() >= kMaxPlainRun) break;
    const uint32_t t = uniform_next(cur, text);
    if (t == kDead) {
      run[cur] = 0;
      break;
    }
    if (t == cur) {
      run[cur] = kMaxPlainRun;
      tail = kMaxPlainRun;
      break;
    }
    chain_.push_back(cur);
    cur = t;
  }
  for (auto it = chain_.rbegin(); it != chain_.rend(); ++it) {
    tail = std::min<int>(tail + 1, kMaxPlainRun);
    run[*it] = uint8_t(tail);
  }
  return run[s] == kPlainUnknown ? 0 : run[s];
}

uint32_t Matcher::compact_if_large(uint32_t keep) {
  if (nodes_.size() <= kMaxCachedNodes && states_.size() <= kMaxCachedStates) return keep;
  std::vector<Node> old_nodes = std::move(nodes_);
  std::vector<uint32_t> stacks(
      stack_pool_.begin() + states_[keep].stacks_begin,
      stack_pool_.begin() + states_[keep].stacks_begin + states_[keep].stacks_size);
  const uint32_t partial = states_[keep].partial_cp;
  const uint8_t rem = states_[keep].remaining;
  const uint8_t len = states_[keep].seq_len;
  nodes_.clear();
  nodes_.push_back({0, 0});
  node_dist_.assign(1, 0);
  node_ids_.clear();
  states_.clear();
  states_.emplace_back();
  dist_.assign(1, kNoEnd);
  max_dist_ = 0;
  rows_.assign(256, int32_t(kDead));
  plain_run_.assign(1, 0);
  text_run_.assign(1, 0);
  stack_pool_.clear();
  state_ids_.clear();
  state_ids_.emplace(std::string(), kDead);
  // Re-interns a chain of old nodes, bottom first.
  auto reintern = [&](auto&& self, uint32_t old_id) -> uint32_t {
    if (old_id == 0) return 0;
    const Node n = old_nodes[old_id];
    return node(n.pos, self(self, n.parent));
  };
  for (uint32_t& id : stacks) id = reintern(reintern, id);
  out_.clear();
  visited_.clear();
  for (uint32_t alt : g_.rules()[g_.root()].alternatives) expand(alt, 0);
  start_ = intern(out_, 0, 0, 0);
  return intern(stacks, partial, rem, len);
}

}  // namespace minnow::constrain
