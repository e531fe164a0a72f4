// Constrained decoding: the output of a model held to a grammar, byte by byte, over the model's
// whole vocabulary. One stage of the sampler chain (sampling::Constraint).
//
//   GBNF text ──Grammar::parse──> Grammar (rules of char-class / rule-reference sequences,
//   regex / choice / JSON ──*_to_gbnf──┘     repetitions expanded into helper rules)
//
//   Grammar + Vocab (token bytes in a trie) ──GrammarConstraint::create──> per-request state
//
// The matcher follows llama.cpp's idea (a set of stacks of rule positions; the top of each stack
// is the character class to match next) with two changes that make it fast and bounded:
//   - stacks are hash-consed linked nodes, so a set of stacks is a sorted list of ids and two
//     equal sets are one state; the transitions (state, byte) -> state are cached in a table
//     built lazily, so the matcher becomes a DFA over the states actually reached;
//   - masking walks a byte trie of the vocabulary with that DFA, pruning a subtree at the
//     first byte no stack can take: the cost is the number of trie nodes still alive.
// Characters are matched as whole code points: a token may end inside a multi-byte character,
// the state then carries the bytes read so far and only keeps stacks whose class can still
// match a code point starting with them.
//
// Bounds: left recursion is rejected at parse time (it would expand forever), a grammar has at
// most kMaxGrammarElements elements once repetitions are expanded, a repetition count is at most
// kMaxRepeat, and a state holds at most kMaxStacks stacks; past that the constraint fails with a
// message (GrammarConstraint::status()) and allows no token.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "sampling/sampler.h"
#include "text/tokenizer.h"
#include "util/status.h"

namespace minnow::constrain {

inline constexpr size_t kMaxGrammarBytes = 1 << 20;     // GBNF source text
inline constexpr size_t kMaxGrammarElements = 1 << 20;  // after expanding repetitions
inline constexpr uint32_t kMaxRepeat = 10000;           // {m,n}: m and n at most this
inline constexpr size_t kMaxStacks = 10000;             // live stacks in one state
inline constexpr int kMaxRegexRepeat = 1000;            // {m,n} in a regex

// A parsed GBNF grammar (llama.cpp's format: rules `name ::= ...`, alternation |, grouping (),
// literals "..." with escapes \n \r \t \" \\ \[ \] \xHH \uHHHH \UHHHHHHHH, char classes [a-z]
// [^...], `.` any char, repetition * + ? {m} {m,} {m,n}, comments #, rule references).
// Immutable once parsed; shared by every request that uses it.
class Grammar {
 public:
  // Errors name the line:column and rule at fault: syntax, undefined or duplicate rules, a
  // missing root, left recursion, a grammar too large once expanded.
  static Result<std::shared_ptr<const Grammar>> parse(std::string_view gbnf,
                                                      std::string_view root = "root");

  // Element kinds of the flat rule table.
  enum class Kind : uint8_t {
    kEnd,    // end of an alternative
    kChars,  // one code point in class `arg` (classes_[arg])
    kRef,    // rule `arg`
  };
  struct Element {
    Kind kind;
    uint32_t arg;
  };
  // A character class: sorted, merged, inclusive code-point ranges (negation already applied).
  struct CharClass {
    std::vector<std::pair<uint32_t, uint32_t>> ranges;
    bool contains(uint32_t cp) const;
    bool contains_range(uint32_t lo, uint32_t hi) const;  // all of [lo, hi]
    bool intersects(uint32_t lo, uint32_t hi) const;
  };
  struct Rule {
    std::string name;
    std::vector<uint32_t> alternatives;  // index in elements() of each alternative's first element
  };

  const std::vector<Element>& elements() const { return elements_; }
  const std::vector<CharClass>& classes() const { return classes_; }
  const std::vector<Rule>& rules() const { return rules_; }
  uint32_t root() const { return root_; }

 private:
  friend class GrammarBuilder;
  std::vector<Element> elements_;
  std::vector<CharClass> classes_;
  std::vector<Rule> rules_;
  uint32_t root_ = 0;
};

// Whole-string check, for tests: does the grammar accept exactly these bytes?
bool accepts(const Grammar& g, std::string_view text);

// Built-in grammars and converters (GBNF text, to be given to Grammar::parse).
// Any JSON value (object_only: a JSON object), whitespace between tokens bounded so that a
// model cannot loop on it.
std::string json_gbnf(bool object_only);
// An ECMAScript-style regex, matched against the whole output (^ and $ are optional): literals,
// escapes (\d \w \s \D \W \S \n \t \r \f \v \0 \xHH \uHHHH, escaped punctuation), classes
// [a-z] [^...], `.` (not a newline), groups ( ) (?: ) (?<name> ), alternation |, quantifiers
// * + ? {m} {m,} {m,n} (lazy forms accepted: the set of strings is the same). Backreferences,
// lookaround, \b and anchors inside the pattern are errors naming the offset.
Result<std::string> regex_to_gbnf(std::string_view regex);
// Exactly one of `choices`.
std::string choice_to_gbnf(std::span<const std::string> choices);
// A GBNF string literal ("..." with escapes) for `bytes`.
std::string gbnf_literal(std::string_view bytes);

// The vocabulary as bytes, in a trie. Built once per model and shared (262k tokens for gemma3
// take tens of milliseconds): the engine keeps one per loaded model.
class Vocab {
 public:
  static std::shared_ptr<const Vocab> from_tokenizer(const text::Tokenizer& tok);
  // For tests: explicit pieces (bytes of each token) and which ids end generation.
  static std::shared_ptr<const Vocab> from_pieces(std::vector<std::string> pieces,
                                                  std::vector<int32_t> eog,
                                                  bool strip_first_space = false);

  int32_t n_tokens() const { return int32_t(pieces_.size()); }
  // The bytes the token adds to the output ("" for control tokens, which are never allowed).
  std::string_view piece(int32_t id) const { return pieces_[size_t(id)]; }
  bool is_eog(int32_t id) const { return eog_flags_[size_t(id)] != 0; }
  const std::vector<int32_t>& eog() const { return eog_; }
  // SentencePiece models with a space prefix: the first piece of the output loses one leading
  // space (text::StreamDecoder), so the constraint matches the bytes without it.
  bool strip_first_space() const { return strip_first_space_; }

  // The trie in preorder, one packed node per entry so that the masking walk streams through
  // memory. Node 0 is the root (no byte). subtree_end is one past the last node of the node's
  // subtree; token the first token spelled by the path to the node (or -1), further tokens
  // with the same bytes in same_bytes_next. plain_height: when every byte of the subtree is
  // "plain" (is_plain_byte: printable ASCII but '"' and '\\'), the subtree's height counting
  // the node (capped at 255); 0 otherwise. Inside a JSON string the masking walk then allows a
  // whole subtree at once instead of walking it byte by byte.
  // Tokens are also numbered by rank, their order in the preorder walk (duplicates of the same
  // bytes side by side): node i's own tokens are the ranks [first_rank, next node's
  // first_rank) and its subtree's tokens [first_rank, first_rank of subtree_end), so masking
  // sets ranges of bits. nodes.back() is a sentinel holding the number of ranked tokens.
  struct TrieNode {
    uint32_t subtree_end;
    int32_t token;
    uint32_t first_rank;
    uint16_t depth;
    uint8_t byte;
    uint8_t plain_height;
    // Likewise for text: the node starts a character on its path, every path through the
    // subtree is valid UTF-8 (a last character may be cut), and its ASCII bytes are plain;
    // then the subtree's height, else 0. Lets the walk skip multilingual subtrees in strings.
    uint8_t text_height;
  };
  static bool is_plain_byte(uint8_t b) { return b >= 0x20 && b < 0x7F && b != '"' && b != '\\'; }
  struct Trie {
    std::vector<TrieNode> nodes;
    std::vector<int32_t> same_bytes_next;  // (n_tokens) next token with the same bytes, or -1
    std::vector<uint32_t> child_of_root;   // (256) node of each first byte, 0 if none
    std::vector<int32_t> rank_to_id;       // (n_ranked) token of each rank
    std::vector<int32_t> unranked;         // tokens not in the trie (no bytes, EOG)
  };
  const Trie& trie() const { return trie_; }
  size_t max_piece_bytes() const { return max_piece_; }

 private:
  void build();
  std::vector<std::string> pieces_;
  std::vector<uint8_t> eog_flags_;
  std::vector<int32_t> eog_;
  bool strip_first_space_ = false;
  Trie trie_;
  size_t max_piece_ = 0;
};

class Matcher;  // the lazily built DFA over a grammar's states (constrain/matcher.h)

// A per-request constraint over a model's vocabulary: implements sampling::Constraint.
// End-of-generation tokens are allowed only where the output so far is a whole sentence of the
// grammar; when the grammar can go no further they are the only tokens allowed.
//
// Budget: told how many tokens are left (set_budget), it allows only the tokens after which the
// output can still be completed, and ended, in time, so that a model that would go on (an
// unbounded array or object) is steered to close it rather than cut off. A token adds at least
// one byte and the bytes of text are tokens of their own in the vocabularies minnow reads
// (byte-level BPE, SentencePiece's byte fallback; SmolLM2 lacks a few control bytes only), so
// d bytes still needed take at most d tokens: a token is
// allowed when the fewest bytes that complete the output after it (Matcher::dist) are at most
// tokens_left - 2 (one token for the end). When even that is out of reach (a limit too small
// from the start), the tokens that bring the end closer are allowed; should no token fit (a
// vocabulary without a byte the way out needs), the grammar alone decides. The check costs a
// comparison per trie node, and only while the budget is below the farthest state's distance.
class GrammarConstraint : public sampling::Constraint {
 public:
  static Result<std::unique_ptr<GrammarConstraint>> create(std::shared_ptr<const Grammar> grammar,
                                                           std::shared_ptr<const Vocab> vocab);
  ~GrammarConstraint() override;

  void mask(std::span<float> logits) override;
  bool allows(int32_t token) override;
  void accept(int32_t token) override;

  // The output so far is a whole sentence of the grammar (EOG allowed).
  bool complete() const;
  // Nothing may follow: only EOG is allowed.
  bool finished() const;
  // Tokens forced next: when the grammar allows exactly one byte string ahead (and is not
  // complete), the greedy longest-match tokens that spell it, each token wholly inside the
  // forced bytes, appended to `out`. Does not advance; the engine evaluates them and calls
  // accept() for each.
  void forced(std::vector<int32_t>& out) override;
  // tokens_left: see sampling::Constraint::set_budget; -1 lifts the budget.
  void set_budget(int tokens_left) override;
  // The fewest bytes that complete the output from here (Matcher::kNoEnd: it cannot end).
  uint32_t distance() const;
  // OK unless the state outgrew kMaxStacks (or a token not allowed was accepted); the
  // constraint then allows no token and this says why.
  const Status& status() const { return status_; }
  // Statistics, for the benchmark and --verbose.
  size_t n_states() const;
  int64_t n_masks() const { return n_masks_; }
  double mask_ms_total() const { return mask_ms_total_; }

 private:
  GrammarConstraint(std::shared_ptr<const Grammar> g, std::shared_ptr<const Vocab> v);
  // The state after `bytes` from the current one (with the first-space rule), or the dead state.
  uint32_t walk(std::string_view bytes) const;
  // Sets allowed_bits_ by walking the trie; with `check`, only tokens within budget_after_.
  void walk_trie(bool check);

  std::shared_ptr<const Grammar> grammar_;
  std::shared_ptr<const Vocab> vocab_;
  std::unique_ptr<Matcher> matcher_;
  uint32_t state_ = 0;
  bool at_start_ = true;
  bool budget_on_ = false;
  int64_t budget_after_ = 0;  // the most bytes the output may still need after the next token
  Status status_;
  std::vector<uint32_t> walk_states_;            // (max depth + 1) the trie walk's state per depth
  std::vector<uint64_t> allowed_bits_;           // (n_ranked / 64) scratch of mask(), by trie rank
  std::vector<std::pair<int32_t, float>> kept_;  // scratch of mask(): allowed ids and logits
  int64_t n_masks_ = 0;
  double mask_ms_total_ = 0;
};

}  // namespace minnow::constrain
