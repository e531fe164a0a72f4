// The grammar matcher as a lazily built DFA over bytes (see constrain.h for the idea).
//
// A stack is a linked list of nodes (pos = the grammar element to match next at the top, or the
// element to resume after a rule reference below it; parent = the node below). Nodes are
// hash-consed, so equal stacks have equal ids. A state is a sorted set of stack ids whose tops
// are all character classes (id 0 stands for the empty stack: the root is complete), plus the
// bytes of a code point read so far. States are hash-consed too, and next(state, byte) is cached
// in a 256-entry row per state, so after warm-up a byte costs one table lookup.
//
// Distance to completion (for budgets: an output that must end within N tokens): the fewest
// bytes that complete the grammar from a state. Computed once per grammar for every element
// (the shortest way from it to the end of its alternative, with each rule's shortest sentence
// found by Knuth's generalisation of Dijkstra's algorithm), then per stack node as that plus the
// node below (one addition when the node is made), and per state as the minimum over its stacks.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "constrain/constrain.h"

namespace minnow::constrain {

class Matcher {
 public:
  static constexpr uint32_t kDead = 0;  // the empty set: nothing can follow

  explicit Matcher(const Grammar& g);

  uint32_t start() const { return start_; }
  uint32_t next(uint32_t s, uint8_t b) {
    const int32_t v = rows_[size_t(s) * 256 + b];
    return v >= 0 ? uint32_t(v) : compute_next(s, b);
  }
  bool accepting(uint32_t s) const { return states_[s].accepting; }
  // The fewest bytes after which the output can end from `s` (0: accepting; kNoEnd: never).
  static constexpr uint32_t kNoEnd = 0x3FFFFFFF;
  uint32_t dist(uint32_t s) const { return dist_[s]; }
  // The largest dist() of a state made so far (kNoEnd ignored): while a budget is at least
  // this, every live state fits in it.
  uint32_t max_dist() const { return max_dist_; }
  // How many plain bytes (Vocab::is_plain_byte), whichever they are, can be read in a row from
  // `s` without dying, as far as the matcher can tell cheaply: each step must take every plain
  // byte to one same state (as inside a JSON string). A lower bound, capped at kMaxPlainRun.
  static constexpr uint8_t kMaxPlainRun = 64;
  uint8_t plain_run(uint32_t s) {
    const uint8_t r = plain_run_[s];
    return r != kPlainUnknown ? r : compute_run(s, false);
  }
  // The same for text: plain bytes and any whole characters beyond ASCII, each step taking
  // every one of them to one same state (a JSON string's characters). From a state with no
  // character pending only.
  uint8_t text_run(uint32_t s) {
    const uint8_t r = text_run_[s];
    return r != kPlainUnknown ? r : compute_run(s, true);
  }
  // Only the empty stack is left: no byte can follow.
  bool finished(uint32_t s) const { return states_[s].finished; }
  // OK unless a state outgrew kMaxStacks; next() then returns kDead.
  const Status& status() const { return status_; }
  size_t n_states() const { return states_.size(); }
  size_t n_nodes() const { return nodes_.size(); }
  // When the caches have grown past their budget, forgets every state but `keep` (re-interned;
  // its new id is returned). Call only between tokens: other state ids become invalid.
  uint32_t compact_if_large(uint32_t keep);

 private:
  struct Node {
    uint32_t pos;
    uint32_t parent;
  };
  struct State {
    uint32_t stacks_begin = 0;  // into stack_pool_
    uint32_t stacks_size = 0;
    uint32_t partial_cp = 0;  // bits of the code point read so far
    uint8_t remaining = 0;    // continuation bytes still to come (0: none pending)
    uint8_t seq_len = 0;      // length of the UTF-8 sequence being read (0: none pending)
    bool accepting = false;
    bool finished = false;
  };

  static constexpr uint8_t kPlainUnknown = 0xFF;
  void compute_min_rest();
  uint32_t compute_next(uint32_t s, uint8_t b);
  uint8_t compute_run(uint32_t s, bool text);
  uint32_t uniform_next(uint32_t s, bool text);
  uint32_t node(uint32_t pos, uint32_t parent);
  void expand(uint32_t pos, uint32_t parent);
  uint32_t advance(uint32_t s, uint32_t cp);
  uint32_t with_partial(uint32_t s, uint32_t cp_bits, uint8_t remaining, uint8_t seq_len);
  uint32_t intern(std::vector<uint32_t>& stacks, uint32_t partial_cp, uint8_t remaining,
                  uint8_t seq_len);

  const Grammar& g_;
  std::vector<Node> nodes_;          // [0] is the empty stack
  std::vector<uint32_t> node_dist_;  // (n_nodes) fewest bytes to empty the stack
  std::vector<uint32_t> min_rest_;   // (n_elements) fewest bytes from it to its alternative's end
  std::vector<uint32_t> dist_;       // (n_states) fewest bytes to an accepting state
  uint32_t max_dist_ = 0;
  std::unordered_map<uint64_t, uint32_t> node_ids_;
  std::vector<State> states_;  // [0] is kDead
  // Cached transitions: (n_states, 256) next states, -1 = not computed yet. One flat array so
  // that a byte costs one load: the masking walk is a chain of these lookups.
  std::vector<int32_t> rows_;
  std::vector<uint8_t> plain_run_;  // (n_states) kPlainUnknown until asked
  std::vector<uint8_t> text_run_;   // (n_states) kPlainUnknown until asked
  std::vector<uint32_t> chain_;     // scratch of compute_plain_run
  std::vector<uint32_t> stack_pool_;
  std::unordered_map<std::string, uint32_t> state_ids_;
  uint32_t start_ = kDead;
  Status status_;
  // Scratch of advance()/expand().
  std::vector<uint32_t> out_;
  std::unordered_set<uint64_t> visited_;
  std::string key_;
};

}  // namespace minnow::constrain
