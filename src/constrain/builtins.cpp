// Grammars minnow writes itself: JSON, one-of-N choices, and regular expressions, all as GBNF
// text so that they go through the one parser and matcher.
#include <algorithm>
#include <cstdio>

#include "constrain/constrain.h"

namespace minnow::constrain {
namespace {

using Ranges = std::vector<std::pair<uint32_t, uint32_t>>;
constexpr uint32_t kMaxCodePoint = 0x10FFFF;

std::string hex_escape(uint32_t cp) {
  char buf[16];
  if (cp <= 0xFF) {
    std::snprintf(buf, sizeof buf, "\\x%02X", cp);
  } else if (cp <= 0xFFFF) {
    std::snprintf(buf, sizeof buf, "\\u%04X", cp);
  } else {
    std::snprintf(buf, sizeof buf, "\\U%08X", cp);
  }
  return buf;
}

// One code point inside a GBNF character class.
std::string class_char(uint32_t cp) {
  if (cp >= 0x20 && cp < 0x7F && cp != ']' && cp != '[' && cp != '\\' && cp != '^' && cp != '-' &&
      cp != '"') {
    return std::string(1, char(cp));
  }
  return hex_escape(cp);
}

std::string class_gbnf(const Ranges& r) {
  std::string out = "[";
  for (const auto& [lo, hi] : r) {
    out += class_char(lo);
    if (hi != lo) {
      out += '-';
      out += class_char(hi);
    }
  }
  return out + "]";
}

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

const Ranges kDigit = {{'0', '9'}};
const Ranges kWord = {{'0', '9'}, {'A', 'Z'}, {'_', '_'}, {'a', 'z'}};
// ECMAScript's WhiteSpace and LineTerminator.
const Ranges kSpace = {{0x09, 0x0D},     {0x20, 0x20},     {0xA0, 0xA0},     {0x1680, 0x1680},
                       {0x2000, 0x200A}, {0x2028, 0x2029}, {0x202F, 0x202F}, {0x205F, 0x205F},
                       {0x3000, 0x3000}, {0xFEFF, 0xFEFF}};
const Ranges kNotNewline = complement({{'\n', '\n'}, {'\r', '\r'}, {0x2028, 0x2029}});

// Recursive descent over the regex, writing GBNF as it goes.
class RegexToGbnf {
 public:
  explicit RegexToGbnf(std::string_view re) : re_(re) {}

  Result<std::string> run() {
    if (!re_.empty() && re_.front() == '^') ++pos_;
    std::string body;
    MINNOW_RETURN_IF_ERROR(alternation(body));
    if (pos_ < re_.size()) {
      if (re_[pos_] == ')') return error("unmatched ')'");
      return error("unexpected '" + std::string(1, re_[pos_]) + "'");
    }
    return "root ::= " + body + "\n";
  }

 private:
  Status error(const std::string& what) const {
    return Status::error("regex: " + what + " at offset " + std::to_string(pos_));
  }
  bool at_end() const { return pos_ >= re_.size(); }
  // `$` ending the pattern (or a branch that ends it) is the anchor every match has anyway.
  bool at_final_dollar() const { return pos_ + 1 == re_.size() && re_[pos_] == '$'; }

  Status alternation(std::string& out) {
    std::vector<std::string> alts(1);
    MINNOW_RETURN_IF_ERROR(sequence(alts.back()));
    while (!at_end() && re_[pos_] == '|') {
      ++pos_;
      alts.emplace_back();
      MINNOW_RETURN_IF_ERROR(sequence(alts.back()));
    }
    if (alts.size() == 1) {
      out = alts[0];
    } else {
      out.assign(1, '(');
      for (size_t i = 0; i < alts.size(); ++i) {
        if (i) out += " | ";
        out += alts[i];
      }
      out += ")";
    }
    return {};
  }

  Status sequence(std::string& out) {
    while (!at_end() && re_[pos_] != '|' && re_[pos_] != ')') {
      if (at_final_dollar()) {
        ++pos_;
        break;
      }
      std::string atom_text;
      MINNOW_RETURN_IF_ERROR(atom(atom_text));
      MINNOW_RETURN_IF_ERROR(quantifier(atom_text));
      if (!out.empty()) out += " ";
      out += atom_text;
    }
    if (out.empty()) out.assign(2, '"');
    return {};
  }

  Status quantifier(std::string& atom_text) {
    if (at_end()) return {};
    const char c = re_[pos_];
    if (c == '*' || c == '+' || c == '?') {
      ++pos_;
      atom_text += c;
    } else if (c == '{') {
      // {m}, {m,}, {m,n}; a '{' that does not start one is a literal in ECMAScript (Annex B),
      // but it is almost always a mistake: reject it.
      const size_t start = pos_++;
      auto number = [&](int& v) -> Status {
        if (at_end() || re_[pos_] < '0' || re_[pos_] > '9') return error("expected a number");
        long x = 0;
        while (!at_end() && re_[pos_] >= '0' && re_[pos_] <= '9') {
          x = x * 10 + (re_[pos_++] - '0');
          if (x > kMaxRegexRepeat) {
            return error("repetition count above " + std::to_string(kMaxRegexRepeat));
          }
        }
        v = int(x);
        return {};
      };
      int m = 0, n = -1;
      MINNOW_RETURN_IF_ERROR(number(m));
      bool open = false;
      if (!at_end() && re_[pos_] == ',') {
        ++pos_;
        if (!at_end() && re_[pos_] == '}') {
          open = true;
        } else {
          MINNOW_RETURN_IF_ERROR(number(n));
          if (n < m) return error("repetition {m,n} with n < m");
        }
      } else {
        n = m;
      }
      if (at_end() || re_[pos_] != '}')
        return error("expected '}' closing the '{' at " + std::to_string(start));
      ++pos_;
      atom_text += '{';
      atom_text += std::to_string(m);
      if (open || n != m) atom_text += ',';
      if (!open && n != m) atom_text += std::to_string(n);
      atom_text += '}';
    } else {
      return {};
    }
    if (!at_end() && re_[pos_] == '?') ++pos_;  // lazy: the same set of strings
    if (!at_end() &&
        (re_[pos_] == '*' || re_[pos_] == '+' || re_[pos_] == '?' || re_[pos_] == '{')) {
      return error("nothing to repeat");
    }
    return {};
  }

  // Reads one code point of the pattern (UTF-8).
  Status code_point(uint32_t& cp) {
    const auto c = static_cast<unsigned char>(re_[pos_]);
    const int len = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 0;
    if (len == 0 || pos_ + size_t(len) > re_.size()) return error("malformed UTF-8");
    cp = len == 1 ? c : len == 2 ? (c & 0x1Fu) : len == 3 ? (c & 0x0Fu) : (c & 0x07u);
    for (int i = 1; i < len; ++i) {
      cp = (cp << 6) | (static_cast<unsigned char>(re_[pos_ + size_t(i)]) & 0x3Fu);
    }
    pos_ += size_t(len);
    return {};
  }

  Status hex(int digits, uint32_t& cp) {
    cp = 0;
    for (int i = 0; i < digits; ++i) {
      if (at_end()) return error("expected hex digits");
      const char h = re_[pos_];
      uint32_t v;
      if (h >= '0' && h <= '9')
        v = uint32_t(h - '0');
      else if (h >= 'a' && h <= 'f')
        v = uint32_t(h - 'a' + 10);
      else if (h >= 'A' && h <= 'F')
        v = uint32_t(h - 'A' + 10);
      else
        return error("expected hex digits");
      cp = cp * 16 + v;
      ++pos_;
    }
    return {};
  }

  // An escape after '\' (pos_ at the letter): either a class (ranges set) or one code point.
  Status escape(Ranges& ranges, bool in_class) {
    if (at_end()) return error("pattern ends with '\\'");
    const char e = re_[pos_];
    const size_t at = pos_;
    ++pos_;
    uint32_t cp = 0;
    switch (e) {
      case 'd':
        ranges = kDigit;
        return {};
      case 'D':
        ranges = complement(kDigit);
        return {};
      case 'w':
        ranges = kWord;
        return {};
      case 'W':
        ranges = complement(kWord);
        return {};
      case 's':
        ranges = kSpace;
        return {};
      case 'S':
        ranges = complement(kSpace);
        return {};
      case 'n':
        cp = '\n';
        break;
      case 'r':
        cp = '\r';
        break;
      case 't':
        cp = '\t';
        break;
      case 'f':
        cp = '\f';
        break;
      case 'v':
        cp = '\v';
        break;
      case '0':
        cp = 0;
        break;
      case 'x':
        MINNOW_RETURN_IF_ERROR(hex(2, cp));
        break;
      case 'u':
        if (!at_end() && re_[pos_] == '{') {
          ++pos_;
          cp = 0;
          size_t n = 0;
          while (!at_end() && re_[pos_] != '}') {
            uint32_t d;
            MINNOW_RETURN_IF_ERROR(hex(1, d));
            cp = cp * 16 + d;
            if (++n > 6 || cp > kMaxCodePoint) return error("bad \\u{...} escape");
          }
          if (at_end()) return error("unterminated \\u{...}");
          ++pos_;
        } else {
          MINNOW_RETURN_IF_ERROR(hex(4, cp));
        }
        break;
      case 'b':
        if (in_class) {
          cp = '\b';
          break;
        }
        pos_ = at;
        return error("word boundary \\b is not supported");
      case 'B':
        pos_ = at;
        return error("\\B is not supported");
      case 'k':
        pos_ = at;
        return error("named backreference \\k is not supported");
      case 'c':
        pos_ = at;
        return error("control escape \\c is not supported");
      case 'p':
      case 'P':
        pos_ = at;
        return error("unicode property escapes \\p{...} are not supported");
      default:
        if (e >= '1' && e <= '9') {
          pos_ = at;
          return error("backreference \\" + std::string(1, e) + " is not supported");
        }
        if ((e >= 'a' && e <= 'z') || (e >= 'A' && e <= 'Z')) {
          pos_ = at;
          return error("unknown escape \\" + std::string(1, e));
        }
        pos_ = at;
        MINNOW_RETURN_IF_ERROR(code_point(cp));
    }
    ranges = {{cp, cp}};
    return {};
  }

  Status char_class(std::string& out) {
    ++pos_;  // '['
    bool negate = false;
    if (!at_end() && re_[pos_] == '^') {
      negate = true;
      ++pos_;
    }
    Ranges all;
    bool first = true;
    while (true) {
      if (at_end()) return error("unterminated character class");
      if (re_[pos_] == ']' && !first) break;
      if (re_[pos_] == ']' && first) break;  // [] matches nothing ([^] anything)
      first = false;
      Ranges lo_set;
      bool lo_single = true;
      uint32_t lo = 0;
      if (re_[pos_] == '\\') {
        ++pos_;
        MINNOW_RETURN_IF_ERROR(escape(lo_set, true));
        lo_single = lo_set.size() == 1 && lo_set[0].first == lo_set[0].second;
        lo = lo_set[0].first;
      } else {
        MINNOW_RETURN_IF_ERROR(code_point(lo));
        lo_set = {{lo, lo}};
      }
      if (lo_single && pos_ + 1 < re_.size() && re_[pos_] == '-' && re_[pos_ + 1] != ']') {
        ++pos_;
        uint32_t hi = 0;
        if (re_[pos_] == '\\') {
          ++pos_;
          Ranges hi_set;
          MINNOW_RETURN_IF_ERROR(escape(hi_set, true));
          if (!(hi_set.size() == 1 && hi_set[0].first == hi_set[0].second)) {
            return error("a class escape cannot end a range");
          }
          hi = hi_set[0].first;
        } else {
          MINNOW_RETURN_IF_ERROR(code_point(hi));
        }
        if (hi < lo) return error("character range out of order");
        all.emplace_back(lo, hi);
      } else {
        all.insert(all.end(), lo_set.begin(), lo_set.end());
      }
    }
    ++pos_;  // ']'
    all = normalise(std::move(all));
    if (negate) all = complement(all);
    if (all.empty()) return error("character class matches nothing");
    out = class_gbnf(all);
    return {};
  }

  Status atom(std::string& out) {
    const char c = re_[pos_];
    switch (c) {
      case '(': {
        ++pos_;
        if (!at_end() && re_[pos_] == '?') {
          ++pos_;
          if (!at_end() && re_[pos_] == ':') {
            ++pos_;
          } else if (!at_end() && re_[pos_] == '<' && pos_ + 1 < re_.size() &&
                     re_[pos_ + 1] != '=' && re_[pos_ + 1] != '!') {
            while (!at_end() && re_[pos_] != '>') ++pos_;  // a named group: the name is unused
            if (at_end()) return error("unterminated group name");
            ++pos_;
          } else {
            pos_ -= 2;
            return error("lookaround and other (? groups are not supported");
          }
        }
        std::string inner;
        MINNOW_RETURN_IF_ERROR(alternation(inner));
        if (at_end() || re_[pos_] != ')') return error("missing ')'");
        ++pos_;
        out = "(" + inner + ")";
        return {};
      }
      case '[':
        return char_class(out);
      case '.':
        ++pos_;
        out = class_gbnf(kNotNewline);
        return {};
      case '\\': {
        ++pos_;
        Ranges r;
        MINNOW_RETURN_IF_ERROR(escape(r, false));
        const bool ascii = r.size() == 1 && r[0].first == r[0].second && r[0].first < 0x80;
        out = ascii ? gbnf_literal(std::string(1, char(r[0].first))) : class_gbnf(r);
        return {};
      }
      case '^':
        return error("'^' is only supported at the start of the pattern");
      case '$':
        return error("'$' is only supported at the end of the pattern");
      case '*':
      case '+':
      case '?':
      case '{':
        return error("nothing to repeat");
      default: {
        uint32_t cp = 0;
        MINNOW_RETURN_IF_ERROR(code_point(cp));
        out = class_gbnf({{cp, cp}});
        if (cp >= 0x20 && cp < 0x7F) out = gbnf_literal(std::string(1, char(cp)));
        return {};
      }
    }
  }

  std::string_view re_;
  size_t pos_ = 0;
};

}  // namespace

std::string gbnf_literal(std::string_view bytes) {
  std::string out = "\"";
  for (char ch : bytes) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"')
      out += "\\\"";
    else if (c == '\\')
      out += "\\\\";
    else if (c == '\n')
      out += "\\n";
    else if (c == '\r')
      out += "\\r";
    else if (c == '\t')
      out += "\\t";
    else if (c < 0x20 || c == 0x7F)
      out += hex_escape(c);
    else
      out += ch;  // UTF-8 passes through: GBNF literals are read as UTF-8
  }
  return out + "\"";
}

std::string choice_to_gbnf(std::span<const std::string> choices) {
  std::string out = "root ::= ";
  for (size_t i = 0; i < choices.size(); ++i) {
    if (i) out += " | ";
    out += gbnf_literal(choices[i]);
  }
  if (choices.empty()) out += "\"\"";
  return out + "\n";
}

std::string json_gbnf(bool object_only) {
  // Whitespace is bounded (one space, or a newline and up to 20 indentation characters) so that
  // a small model cannot loop on it; numbers are bounded for the same reason.
  std::string g = object_only ? "root ::= object\n" : "root ::= value\n";
  g += R"(value ::= object | array | string | number | ("true" | "false" | "null")
object ::= "{" ws ( string ws ":" ws value ws ( "," ws string ws ":" ws value ws )* )? "}"
array ::= "[" ws ( value ws ( "," ws value ws )* )? "]"
string ::= "\"" char* "\""
char ::= [^"\\\x7F\x00-\x1F] | "\\" ( ["\\/bfnrt] | "u" [0-9a-fA-F]{4} )
number ::= "-"? ( "0" | [1-9] [0-9]{0,15} ) ( "." [0-9]{1,16} )? ( [eE] [-+]? [0-9]{1,3} )?
ws ::= | " " | "\n" [ \t]{0,20}
)";
  return g;
}

Result<std::string> regex_to_gbnf(std::string_view regex) { return RegexToGbnf(regex).run(); }

}  // namespace minnow::constrain
