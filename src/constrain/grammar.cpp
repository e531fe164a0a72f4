// GBNF parser: text -> Grammar's flat rule table. Groups and repetitions become helper rules
// (`name_N`), as in llama.cpp, so the matcher only ever sees sequences of classes and references.
#include <algorithm>
#include <functional>
#include <map>
#include <string>
#include <unordered_map>

#include "constrain/constrain.h"
#include "constrain/matcher.h"

namespace minnow::constrain {

bool Grammar::CharClass::contains(uint32_t cp) const {
  auto it = std::upper_bound(ranges.begin(), ranges.end(), cp,
                             [](uint32_t v, const auto& r) { return v < r.first; });
  return it != ranges.begin() && cp <= std::prev(it)->second;
}

bool Grammar::CharClass::contains_range(uint32_t lo, uint32_t hi) const {
  auto it = std::upper_bound(ranges.begin(), ranges.end(), lo,
                             [](uint32_t v, const auto& r) { return v < r.first; });
  return it != ranges.begin() && hi <= std::prev(it)->second;
}

bool Grammar::CharClass::intersects(uint32_t lo, uint32_t hi) const {
  // The first range ending at or after lo must start at or before hi.
  auto it = std::lower_bound(ranges.begin(), ranges.end(), lo,
                             [](const auto& r, uint32_t v) { return r.second < v; });
  return it != ranges.end() && it->first <= hi;
}

namespace {

constexpr uint32_t kMaxCodePoint = 0x10FFFF;
using Ranges = std::vector<std::pair<uint32_t, uint32_t>>;

Ranges normalise(Ranges r) {
  std::sort(r.begin(), r.end());
  Ranges out;
  for (const auto& [lo, hi] : r) {
    if (!out.empty() && lo <= out.back().second + 1) {
      out.back().second = std::max(out.back().second, hi);
    } else {
      out.emplace_back(lo, hi);
    }
  }
  return out;
}

Ranges complement(const Ranges& r) {
  Ranges out;
  uint32_t next = 0;
  for (const auto& [lo, hi] : r) {
    if (lo > next) out.emplace_back(next, lo - 1);
    next = hi + 1;
  }
  if (next <= kMaxCodePoint) out.emplace_back(next, kMaxCodePoint);
  return out;
}

bool is_word_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

}  // namespace

// Builds a Grammar; friend of Grammar. One parse per instance.
class GrammarBuilder {
 public:
  explicit GrammarBuilder(std::string_view src) : src_(src) {}

  Result<std::shared_ptr<const Grammar>> run(std::string_view root_name) {
    if (src_.size() > kMaxGrammarBytes) {
      return Status::error("grammar: " + std::to_string(src_.size()) + " bytes, more than the " +
                           std::to_string(kMaxGrammarBytes) + " allowed");
    }
    g_ = std::make_shared<Grammar>();
    skip_space(true);
    while (pos_ < src_.size()) {
      MINNOW_RETURN_IF_ERROR(parse_rule());
      skip_space(true);
    }
    for (size_t i = 0; i < g_->rules_.size(); ++i) {
      if (!defined_[i]) {
        return Status::error("grammar: rule '" + g_->rules_[i].name + "' is used at " +
                             where(first_use_[i]) + " but never defined");
      }
    }
    auto root = rule_ids_.find(std::string(root_name));
    if (root == rule_ids_.end()) {
      return Status::error("grammar: no rule named '" + std::string(root_name) +
                           "' (the start rule)");
    }
    g_->root_ = root->second;
    // Lay the rules out in the flat element table; alternatives end with kEnd.
    for (size_t r = 0; r < g_->rules_.size(); ++r) {
      for (const auto& seq : bodies_[r]) {
        g_->rules_[r].alternatives.push_back(uint32_t(g_->elements_.size()));
        g_->elements_.insert(g_->elements_.end(), seq.begin(), seq.end());
        g_->elements_.push_back({Grammar::Kind::kEnd, 0});
      }
    }
    MINNOW_RETURN_IF_ERROR(check_left_recursion());
    return std::shared_ptr<const Grammar>(std::move(g_));
  }

 private:
  using Seq = std::vector<Grammar::Element>;

  std::string where(size_t offset) const {
    size_t line = 1, col = 1;
    for (size_t i = 0; i < offset && i < src_.size(); ++i) {
      if (src_[i] == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
    return "line " + std::to_string(line) + ":" + std::to_string(col);
  }
  Status error(const std::string& what) const {
    std::string msg = "grammar: " + what + " at " + where(pos_);
    if (!current_rule_.empty()) msg += " (rule '" + current_rule_ + "')";
    return Status::error(msg);
  }

  bool at_end() const { return pos_ >= src_.size(); }
  char peek() const { return at_end() ? '\0' : src_[pos_]; }

  // Spaces, tabs, comments; newlines too when `newlines` (inside parentheses, after `|`).
  void skip_space(bool newlines) {
    while (!at_end()) {
      const char c = src_[pos_];
      if (c == ' ' || c == '\t' || c == '\r' || (newlines && c == '\n')) {
        ++pos_;
      } else if (c == '#') {
        while (!at_end() && src_[pos_] != '\n') ++pos_;
      } else {
        break;
      }
    }
  }

  uint32_t rule_id(const std::string& name, size_t use_at) {
    auto [it, inserted] = rule_ids_.try_emplace(name, uint32_t(g_->rules_.size()));
    if (inserted) {
      g_->rules_.push_back({name, {}});
      bodies_.emplace_back();
      defined_.push_back(false);
      first_use_.push_back(use_at);
    }
    return it->second;
  }
  uint32_t helper_rule(const std::string& base) {
    std::string name;
    do {
      name = base + "_" + std::to_string(++helper_count_);
    } while (rule_ids_.count(name));
    const uint32_t id = rule_id(name, pos_);
    defined_[id] = true;
    return id;
  }

  uint32_t class_id(Ranges ranges) {
    auto [it, inserted] = class_ids_.try_emplace(ranges, uint32_t(g_->classes_.size()));
    if (inserted) g_->classes_.push_back({std::move(ranges)});
    return it->second;
  }

  Status count(size_t n) {
    n_elements_ += n;
    if (n_elements_ > kMaxGrammarElements) {
      return error("the grammar grows past " + std::to_string(kMaxGrammarElements) +
                   " elements once its repetitions are expanded");
    }
    return {};
  }

  Status parse_rule() {
    const size_t name_at = pos_;
    std::string name;
    while (!at_end() && is_word_char(src_[pos_])) name += src_[pos_++];
    if (name.empty()) return error("expected a rule name");
    current_rule_ = name;
    skip_space(false);
    if (src_.substr(pos_, 3) != "::=") return error("expected '::=' after the rule name");
    pos_ += 3;
    const uint32_t id = rule_id(name, name_at);
    if (defined_[id]) return error("rule '" + name + "' is defined twice");
    defined_[id] = true;
    std::vector<Seq> alts;
    MINNOW_RETURN_IF_ERROR(parse_alternatives(name, alts, false));
    bodies_[id] = std::move(alts);
    skip_space(false);
    if (!at_end() && peek() != '\n') return error("unexpected '" + std::string(1, peek()) + "'");
    current_rule_.clear();
    return {};
  }

  Status parse_alternatives(const std::string& rule, std::vector<Seq>& alts, bool nested) {
    while (true) {
      Seq seq;
      MINNOW_RETURN_IF_ERROR(parse_sequence(rule, seq, nested));
      alts.push_back(std::move(seq));
      // llama.cpp ends a top-level rule at a newline; a `|` starting the next line continues it
      // here too, as grammar files are often written that way.
      const size_t save = pos_;
      skip_space(true);
      if (peek() == '|') {
        ++pos_;
        skip_space(true);
        continue;
      }
      pos_ = save;
      return {};
    }
  }

  Status parse_char(uint32_t& cp, bool in_class) {
    if (at_end()) return error("unexpected end of the grammar");
    const unsigned char c = static_cast<unsigned char>(src_[pos_]);
    if (c == '\\') {
      ++pos_;
      if (at_end()) return error("unexpected end after '\\'");
      const char e = src_[pos_++];
      int hex_digits = 0;
      switch (e) {
        case 'n':
          cp = '\n';
          return {};
        case 'r':
          cp = '\r';
          return {};
        case 't':
          cp = '\t';
          return {};
        case '\\':
        case '"':
        case '[':
        case ']':
        case '-':
        case '^':
        case '/':
        case '\'':
          cp = uint32_t(e);
          return {};
        case 'x':
          hex_digits = 2;
          break;
        case 'u':
          hex_digits = 4;
          break;
        case 'U':
          hex_digits = 8;
          break;
        default:
          --pos_;
          return error(std::string("unknown escape '\\") + e + "'");
      }
      cp = 0;
      for (int i = 0; i < hex_digits; ++i) {
        const char h = peek();
        uint32_t v;
        if (h >= '0' && h <= '9')
          v = uint32_t(h - '0');
        else if (h >= 'a' && h <= 'f')
          v = uint32_t(h - 'a' + 10);
        else if (h >= 'A' && h <= 'F')
          v = uint32_t(h - 'A' + 10);
        else
          return error("expected " + std::to_string(hex_digits) + " hex digits");
        cp = cp * 16 + v;
        ++pos_;
      }
      if (cp > kMaxCodePoint) return error("code point beyond U+10FFFF");
      return {};
    }
    (void)in_class;
    // A UTF-8 sequence of the source.
    int len = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 0;
    if (len == 0 || pos_ + size_t(len) > src_.size()) return error("malformed UTF-8");
    cp = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
    for (int i = 1; i < len; ++i) {
      const unsigned char cc = static_cast<unsigned char>(src_[pos_ + size_t(i)]);
      if ((cc & 0xC0) != 0x80) return error("malformed UTF-8");
      cp = (cp << 6) | (cc & 0x3F);
    }
    pos_ += size_t(len);
    return {};
  }

  Status parse_uint(uint32_t& v) {
    if (!(peek() >= '0' && peek() <= '9')) return error("expected a number");
    uint64_t x = 0;
    while (peek() >= '0' && peek() <= '9') {
      x = x * 10 + uint64_t(src_[pos_++] - '0');
      if (x > kMaxRepeat) {
        return error("repetition count above " + std::to_string(kMaxRepeat));
      }
    }
    v = uint32_t(x);
    return {};
  }

  Status parse_sequence(const std::string& rule, Seq& seq, bool nested) {
    size_t last_start = seq.size();
    bool have_last = false;
    skip_space(nested);
    while (!at_end()) {
      const char c = peek();
      if (c == '"') {
        ++pos_;
        last_start = seq.size();
        have_last = true;
        size_t n = 0;
        while (peek() != '"') {
          if (at_end() || peek() == '\n') return error("unterminated string literal");
          uint32_t cp;
          MINNOW_RETURN_IF_ERROR(parse_char(cp, false));
          seq.push_back({Grammar::Kind::kChars, class_id({{cp, cp}})});
          ++n;
        }
        ++pos_;
        MINNOW_RETURN_IF_ERROR(count(n));
      } else if (c == '[') {
        ++pos_;
        bool negate = false;
        if (peek() == '^') {
          negate = true;
          ++pos_;
        }
        Ranges r;
        while (peek() != ']') {
          if (at_end()) return error("unterminated character class");
          uint32_t lo, hi;
          MINNOW_RETURN_IF_ERROR(parse_char(lo, true));
          hi = lo;
          if (peek() == '-' && pos_ + 1 < src_.size() && src_[pos_ + 1] != ']') {
            ++pos_;
            MINNOW_RETURN_IF_ERROR(parse_char(hi, true));
            if (hi < lo) return error("character range out of order");
          }
          r.emplace_back(lo, hi);
        }
        ++pos_;
        r = normalise(std::move(r));
        if (negate) r = complement(r);
        if (r.empty()) return error("character class matches nothing");
        last_start = seq.size();
        have_last = true;
        seq.push_back({Grammar::Kind::kChars, class_id(std::move(r))});
        MINNOW_RETURN_IF_ERROR(count(1));
      } else if (c == '.') {
        ++pos_;
        last_start = seq.size();
        have_last = true;
        seq.push_back({Grammar::Kind::kChars, class_id({{0, kMaxCodePoint}})});
        MINNOW_RETURN_IF_ERROR(count(1));
      } else if (is_word_char(c)) {
        const size_t at = pos_;
        std::string name;
        while (!at_end() && is_word_char(src_[pos_])) name += src_[pos_++];
        last_start = seq.size();
        have_last = true;
        seq.push_back({Grammar::Kind::kRef, rule_id(name, at)});
        MINNOW_RETURN_IF_ERROR(count(1));
      } else if (c == '(') {
        ++pos_;
        skip_space(true);
        const uint32_t sub = helper_rule(rule);
        std::vector<Seq> alts;
        MINNOW_RETURN_IF_ERROR(parse_alternatives(rule, alts, true));
        skip_space(true);
        if (peek() != ')') return error("expected ')'");
        ++pos_;
        bodies_[sub] = std::move(alts);
        last_start = seq.size();
        have_last = true;
        seq.push_back({Grammar::Kind::kRef, sub});
        MINNOW_RETURN_IF_ERROR(count(1));
      } else if (c == '*' || c == '+' || c == '?' || c == '{') {
        if (!have_last) return error(std::string("'") + c + "' has nothing to repeat");
        ++pos_;
        uint32_t min = 0, max = 0;
        bool unbounded = false;
        if (c == '*') {
          unbounded = true;
        } else if (c == '+') {
          min = 1;
          unbounded = true;
        } else if (c == '?') {
          max = 1;
        } else {
          skip_space(false);
          MINNOW_RETURN_IF_ERROR(parse_uint(min));
          skip_space(false);
          if (peek() == ',') {
            ++pos_;
            skip_space(false);
            if (peek() == '}') {
              unbounded = true;
            } else {
              MINNOW_RETURN_IF_ERROR(parse_uint(max));
              if (max < min) return error("repetition {m,n} with n < m");
            }
          } else {
            max = min;
          }
          skip_space(false);
          if (peek() != '}') return error("expected '}'");
          ++pos_;
        }
        MINNOW_RETURN_IF_ERROR(repeat(rule, seq, last_start, min, max, unbounded));
        have_last = false;  // `x**` is an error, as in llama.cpp
      } else {
        break;
      }
      skip_space(nested);
    }
    return {};
  }

  // Replaces seq[from..] (the last item) with `min` copies of it followed by up to max - min
  // optional ones (nested helper rules, so no alternative is ever longer than the item), or by
  // a right-recursive helper for an unbounded tail.
  Status repeat(const std::string& rule, Seq& seq, size_t from, uint32_t min, uint32_t max,
                bool unbounded) {
    Seq item(seq.begin() + long(from), seq.end());
    seq.resize(from);
    MINNOW_RETURN_IF_ERROR(count(item.size() * (size_t(min) + (unbounded ? 1 : max - min) + 1)));
    for (uint32_t i = 0; i < min; ++i) seq.insert(seq.end(), item.begin(), item.end());
    if (unbounded) {
      // tail ::= item tail | ε
      const uint32_t tail = helper_rule(rule);
      Seq body = item;
      body.push_back({Grammar::Kind::kRef, tail});
      bodies_[tail] = {std::move(body), Seq{}};
      seq.push_back({Grammar::Kind::kRef, tail});
    } else if (max > min) {
      // opt_k ::= item opt_{k-1} | ε, opt_1 ::= item | ε
      uint32_t prev = 0;
      bool have_prev = false;
      for (uint32_t k = 0; k < max - min; ++k) {
        const uint32_t opt = helper_rule(rule);
        Seq body = item;
        if (have_prev) body.push_back({Grammar::Kind::kRef, prev});
        bodies_[opt] = {std::move(body), Seq{}};
        prev = opt;
        have_prev = true;
      }
      seq.push_back({Grammar::Kind::kRef, prev});
    }
    return {};
  }

  // A rule that can reach itself without reading a character would make the matcher expand
  // forever (llama.cpp loops or overflows its stack there): reject it, naming the cycle.
  Status check_left_recursion() {
    const auto& rules = g_->rules_;
    const auto& els = g_->elements_;
    const size_t n = rules.size();
    std::vector<bool> nullable(n, false);
    for (bool changed = true; changed;) {
      changed = false;
      for (size_t r = 0; r < n; ++r) {
        if (nullable[r]) continue;
        for (uint32_t a : rules[r].alternatives) {
          bool all = true;
          for (uint32_t p = a; els[p].kind != Grammar::Kind::kEnd; ++p) {
            if (els[p].kind == Grammar::Kind::kChars ||
                (els[p].kind == Grammar::Kind::kRef && !nullable[els[p].arg])) {
              all = false;
              break;
            }
          }
          if (all) {
            nullable[r] = true;
            changed = true;
            break;
          }
        }
      }
    }
    // Edges r -> s: s is referenced at a point of r reached without reading anything.
    std::vector<std::vector<uint32_t>> first(n);
    for (size_t r = 0; r < n; ++r) {
      for (uint32_t a : rules[r].alternatives) {
        for (uint32_t p = a; els[p].kind == Grammar::Kind::kRef; ++p) {
          first[r].push_back(els[p].arg);
          if (!nullable[els[p].arg]) break;
        }
      }
    }
    std::vector<uint8_t> color(n, 0);  // 0 new, 1 on the path, 2 done
    std::vector<uint32_t> path;
    std::string cycle;
    std::function<bool(uint32_t)> dfs = [&](uint32_t r) {
      color[r] = 1;
      path.push_back(r);
      for (uint32_t s : first[r]) {
        if (color[s] == 1) {
          auto it = std::find(path.begin(), path.end(), s);
          for (; it != path.end(); ++it) cycle += rules[*it].name + " -> ";
          cycle += rules[s].name;
          return true;
        }
        if (color[s] == 0 && dfs(s)) return true;
      }
      path.pop_back();
      color[r] = 2;
      return false;
    };
    for (uint32_t r = 0; r < n; ++r) {
      if (color[r] == 0 && dfs(r)) {
        return Status::error("grammar: left recursion: " + cycle +
                             " can repeat without reading a character (rewrite it with "
                             "repetition, e.g. `expr ::= term (\"+\" term)*`, and make sure "
                             "nothing repeated with * or + can be empty)");
      }
    }
    return {};
  }

  std::string_view src_;
  size_t pos_ = 0;
  std::shared_ptr<Grammar> g_;
  std::unordered_map<std::string, uint32_t> rule_ids_;
  std::vector<std::vector<Seq>> bodies_;
  std::vector<bool> defined_;
  std::vector<size_t> first_use_;
  std::map<Ranges, uint32_t> class_ids_;
  std::string current_rule_;
  size_t helper_count_ = 0;
  size_t n_elements_ = 0;
};

Result<std::shared_ptr<const Grammar>> Grammar::parse(std::string_view gbnf,
                                                      std::string_view root) {
  return GrammarBuilder(gbnf).run(root);
}

bool accepts(const Grammar& g, std::string_view text) {
  Matcher m(g);
  uint32_t s = m.start();
  for (char c : text) {
    s = m.next(s, static_cast<uint8_t>(c));
    if (s == Matcher::kDead) return false;
  }
  return m.accepting(s);
}

}  // namespace minnow::constrain
