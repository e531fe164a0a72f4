// JSON Schema -> GBNF (see json_schema.h for what the grammar allows and leaves out).
//
// One pass over the schema: compile() turns a subschema into a GBNF expression, creating a rule
// for each object, array and `$ref` target (a rule per reference makes recursion work: the
// rule is named before its body is compiled). allOf, and keywords beside `$ref` / anyOf /
// oneOf, are first merged into one schema (merge()): JSON Schema keywords are independent
// assertions, so a conjunction is the union of the keywords where no keyword is repeated, and
// the repeated ones that matter (type, required, properties, bounds, enum) combine exactly.
#include "constrain/json_schema.h"

#include "constrain/constrain.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <utility>
#include <vector>

namespace minnow::constrain {
namespace {

// Property order matters (the grammar emits properties in the order given).
using Json = nlohmann::ordered_json;

constexpr int kMaxDigits = 15;                    // integer and fraction digits of a number
constexpr uint64_t kMaxInt = 999999999999999ULL;  // the largest 15-digit integer
constexpr int kMaxKeyChars = 64;                  // an additional property's key

// ---------------------------------------------------------------------------------------------
// Text helpers

std::string hex(uint32_t v, int digits) {
  static const char* kHex = "0123456789ABCDEF";
  std::string s(size_t(digits), '0');
  for (int i = digits - 1; i >= 0; --i, v >>= 4) s[size_t(i)] = kHex[v & 15];
  return s;
}

// A GBNF string literal for raw bytes (UTF-8 passes through): the engine's own.
std::string lit(std::string_view bytes) { return gbnf_literal(bytes); }

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += char(cp);
  } else if (cp < 0x800) {
    out += char(0xC0 | (cp >> 6));
    out += char(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += char(0xE0 | (cp >> 12));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  } else {
    out += char(0xF0 | (cp >> 18));
    out += char(0x80 | ((cp >> 12) & 0x3F));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  }
}

// Decodes one UTF-8 code point at s[*pos] (nlohmann has validated the text); advances *pos.
uint32_t next_cp(std::string_view s, size_t* pos) {
  unsigned char c = static_cast<unsigned char>(s[*pos]);
  int n = c < 0x80 ? 0 : c < 0xE0 ? 1 : c < 0xF0 ? 2 : 3;
  uint32_t cp = n == 0 ? c : n == 1 ? (c & 0x1F) : n == 2 ? (c & 0x0F) : (c & 0x07);
  ++*pos;
  for (int i = 0; i < n && *pos < s.size(); ++i, ++*pos) {
    cp = (cp << 6) | (static_cast<unsigned char>(s[*pos]) & 0x3F);
  }
  return cp;
}

std::string join(const std::vector<std::string>& parts, std::string_view sep) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i) out += sep;
    out += parts[i];
  }
  return out;
}

// Alternatives as one expression ("" when there are none).
std::string alternation(const std::vector<std::string>& alts) {
  if (alts.empty()) return "";
  if (alts.size() == 1) return alts[0];
  return "( " + join(alts, " | ") + " )";
}

// `x{min,max}` (max < 0: unbounded) in GBNF; "" when it can only be empty.
std::string repeat(const std::string& x, long long min, long long max) {
  if (max == 0) return "";
  std::string g = "( " + x + " )";
  if (max < 0) {
    if (min == 0) return g + "*";
    if (min == 1) return g + "+";
    return g + "{" + std::to_string(min) + ",}";
  }
  if (min == 0 && max == 1) return g + "?";
  if (min == max) return min == 1 ? x : g + "{" + std::to_string(min) + "}";
  return g + "{" + std::to_string(min) + "," + std::to_string(max) + "}";
}

std::string seq(std::initializer_list<std::string> parts) {
  std::string out;
  for (const auto& p : parts) {
    if (p.empty()) continue;
    if (!out.empty()) out += ' ';
    out += p;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Code-point sets, for regex classes. Sorted, merged, inclusive ranges.

using Ranges = std::vector<std::pair<uint32_t, uint32_t>>;
constexpr uint32_t kMaxCp = 0x10FFFF;

Ranges normalized(Ranges r) {
  std::sort(r.begin(), r.end());
  Ranges out;
  for (const auto& [a, b] : r) {
    if (!out.empty() && a <= out.back().second + 1) {
      out.back().second = std::max(out.back().second, b);
    } else {
      out.push_back({a, b});
    }
  }
  return out;
}

Ranges complement(const Ranges& r, uint32_t hi = kMaxCp) {
  Ranges out;
  uint32_t next = 0;
  for (const auto& [a, b] : normalized(r)) {
    if (a > hi) break;
    if (a > next) out.push_back({next, a - 1});
    next = b + 1;
  }
  if (next <= hi) out.push_back({next, hi});
  return out;
}

Ranges subtract(const Ranges& r, const Ranges& minus) {
  Ranges out;
  Ranges keep = complement(minus);
  for (const auto& [a, b] : normalized(r)) {
    for (const auto& [c, d] : keep) {
      uint32_t lo = std::max(a, c), hi = std::min(b, d);
      if (lo <= hi) out.push_back({lo, hi});
    }
  }
  return normalized(out);
}

bool contains(const Ranges& r, uint32_t cp) {
  for (const auto& [a, b] : r) {
    if (cp >= a && cp <= b) return true;
  }
  return false;
}

std::string class_char(uint32_t c) {
  if (c >= 0x20 && c < 0x7f) {
    if (c == ']' || c == '\\' || c == '^' || c == '-' || c == '[')
      return std::string("\\") + char(c);
    return std::string(1, char(c));
  }
  if (c < 0x80) return "\\x" + hex(c, 2);
  if (c <= 0xFFFF) return "\\u" + hex(c, 4);
  return "\\U" + hex(c, 8);
}

// A GBNF character class for a non-empty set; written negated when that is shorter.
std::string gbnf_class(const Ranges& set) {
  Ranges r = normalized(set);
  bool negate = !r.empty() && r.back().second == kMaxCp;
  std::string out = negate ? "[^" : "[";
  for (const auto& [a, b] : negate ? complement(r) : r) {
    out += class_char(a);
    if (b != a) {
      if (b != a + 1) out += '-';
      out += class_char(b);
    }
  }
  return out + "]";
}

// One character of a JSON string whose decoded value is in `set`, as GBNF: the raw character,
// or its escape for `"`, `\`, tab, newline and carriage return. Other control characters are
// left out (the grammar may allow fewer strings than the pattern; never more). "" if none.
std::string json_char_of(const Ranges& set) {
  Ranges raw = subtract(set, {{0, 0x1F}, {'"', '"'}, {'\\', '\\'}, {0xD800, 0xDFFF}});
  std::vector<std::string> alts;
  if (!raw.empty()) alts.push_back(gbnf_class(raw));
  if (contains(set, '"')) alts.push_back(lit("\\\""));
  if (contains(set, '\\')) alts.push_back(lit("\\\\"));
  if (contains(set, '\t')) alts.push_back(lit("\\t"));
  if (contains(set, '\n')) alts.push_back(lit("\\n"));
  if (contains(set, '\r')) alts.push_back(lit("\\r"));
  return alternation(alts);
}

// ---------------------------------------------------------------------------------------------
// Regex (a string's `pattern`) -> GBNF of the JSON string's content, whole-string match.

const Ranges kDigit = {{'0', '9'}};
const Ranges kWord = {{'0', '9'}, {'A', 'Z'}, {'_', '_'}, {'a', 'z'}};
const Ranges kSpace = {{'\t', '\r'}, {' ', ' '}};

class PatternCompiler {
 public:
  PatternCompiler(std::string_view re, std::string where) : re_(re), where_(std::move(where)) {}

  Result<std::string> run() {
    // Anchors only at the ends: the whole string is matched either way.
    if (!re_.empty() && re_[0] == '^') pos_ = 1;
    end_ = re_.size();
    if (end_ > pos_ && re_[end_ - 1] == '$') {
      size_t backslashes = 0;
      for (size_t i = end_ - 1; i > pos_ && re_[i - 1] == '\\'; --i) ++backslashes;
      if (backslashes % 2 == 0) --end_;
    }
    auto r = alt();
    if (!r.ok()) return r;
    if (pos_ < end_) return error("unbalanced ')'");
    return r;
  }

 private:
  Status error(const std::string& what) const {
    return Status::error(where_ + ": pattern '" + std::string(re_) + "' at offset " +
                         std::to_string(pos_) + ": " + what);
  }
  bool at_end() const { return pos_ >= end_; }
  char peek() const { return re_[pos_]; }

  Result<std::string> alt() {
    std::vector<std::string> alts;
    bool has_empty = false;
    while (true) {
      auto s = sequence();
      if (!s.ok()) return s;
      if (s->empty()) {
        has_empty = true;
      } else {
        alts.push_back(*s);
      }
      if (at_end() || peek() != '|') break;
      ++pos_;
    }
    if (alts.empty()) return std::string();
    std::string a = alternation(alts);
    return has_empty ? "( " + a + " )?" : a;
  }

  Result<std::string> sequence() {
    std::vector<std::string> items;
    while (!at_end() && peek() != '|' && peek() != ')') {
      auto a = atom();
      if (!a.ok()) return a;
      std::string item = *a;
      if (!at_end() && (peek() == '*' || peek() == '+' || peek() == '?' || peek() == '{')) {
        long long min = 0, max = -1;
        char q = peek();
        size_t at = pos_++;
        if (q == '+') {
          min = 1;
        } else if (q == '?') {
          max = 1;
        } else if (q == '{') {
          auto n = number();
          if (!n) return error("bad quantifier at offset " + std::to_string(at));
          min = max = *n;
          if (!at_end() && peek() == ',') {
            ++pos_;
            max = -1;
            if (!at_end() && peek() != '}') {
              auto m = number();
              if (!m) return error("bad quantifier");
              max = *m;
            }
          }
          if (at_end() || peek() != '}') return error("bad quantifier");
          ++pos_;
          if (max >= 0 && max < min) return error("quantifier {m,n} with n < m");
          if (min > kMaxSchemaRepeat || max > kMaxSchemaRepeat) {
            return error("repetition count above " + std::to_string(kMaxSchemaRepeat));
          }
        }
        if (!at_end() && peek() == '?') ++pos_;  // lazy: the same set of strings
        if (!at_end() && (peek() == '*' || peek() == '+' || peek() == '?' || peek() == '{')) {
          return error("nested quantifier");
        }
        if (item.empty()) {
          item = "";
        } else {
          item = repeat(item, min, max);
        }
      }
      if (!item.empty()) items.push_back(item);
    }
    return join(items, " ");
  }

  std::optional<long long> number() {
    long long v = 0;
    size_t start = pos_;
    while (!at_end() && peek() >= '0' && peek() <= '9' && v <= kMaxSchemaRepeat * 10) {
      v = v * 10 + (peek() - '0');
      ++pos_;
    }
    if (pos_ == start) return std::nullopt;
    return v;
  }

  Result<std::string> set_expr(const Ranges& set) {
    std::string e = json_char_of(set);
    if (e.empty()) return error("a character class that no JSON string character can match");
    return e;
  }

  Result<std::string> atom() {
    char c = peek();
    switch (c) {
      case '(': {
        ++pos_;
        if (!at_end() && peek() == '?') {
          ++pos_;
          if (at_end()) return error("unterminated group");
          if (peek() == ':') {
            ++pos_;
          } else if (peek() == '<' && pos_ + 1 < end_ && re_[pos_ + 1] != '=' &&
                     re_[pos_ + 1] != '!') {
            size_t close = re_.find('>', pos_);
            if (close == std::string_view::npos || close >= end_) return error("bad group name");
            pos_ = close + 1;
          } else {
            return error("lookaround and group flags are not supported");
          }
        }
        auto inner = alt();
        if (!inner.ok()) return inner;
        if (at_end() || peek() != ')') return error("missing ')'");
        ++pos_;
        return inner->empty() ? std::string() : "( " + *inner + " )";
      }
      case ')':
        return error("unbalanced ')'");
      case '[':
        return char_class();
      case '.':
        ++pos_;
        return set_expr(complement({{'\n', '\n'}}));
      case '^':
      case '$':
        return error(std::string("anchor '") + c + "' inside the pattern is not supported");
      case '*':
      case '+':
      case '?':
      case '{':
        return error("nothing to repeat");
      case '\\': {
        ++pos_;
        auto set = escape(false);
        if (!set.ok()) return set.status();
        return set_expr(*set);
      }
      default: {
        uint32_t cp = next_cp(re_, &pos_);
        return set_expr({{cp, cp}});
      }
    }
  }

  // After a backslash: the set it stands for. Inside a class, \b is a backspace.
  Result<Ranges> escape(bool in_class) {
    if (at_end()) return error("pattern ends with a backslash");
    char c = re_[pos_++];
    auto one = [](uint32_t cp) { return Ranges{{cp, cp}}; };
    switch (c) {
      case 'd':
        return kDigit;
      case 'w':
        return kWord;
      case 's':
        return kSpace;
      // Negated shorthands: their ASCII members (\W in Python excludes every Unicode letter).
      case 'D':
        return complement(kDigit, 0x7F);
      case 'W':
        return complement(kWord, 0x7F);
      case 'S':
        return complement(kSpace, 0x7F);
      case 'n':
        return one('\n');
      case 't':
        return one('\t');
      case 'r':
        return one('\r');
      case 'f':
        return one('\f');
      case 'v':
        return one('\v');
      case '0':
        return one(0);
      case 'b':
        if (in_class) return one('\b');
        return error("word boundaries are not supported");
      case 'x':
      case 'u': {
        int n = c == 'x' ? 2 : 4;
        if (pos_ + size_t(n) > end_) return error("bad \\" + std::string(1, c) + " escape");
        uint32_t v = 0;
        for (int i = 0; i < n; ++i) {
          char h = re_[pos_++];
          int d = h >= '0' && h <= '9'   ? h - '0'
                  : h >= 'a' && h <= 'f' ? h - 'a' + 10
                  : h >= 'A' && h <= 'F' ? h - 'A' + 10
                                         : -1;
          if (d < 0) return error("bad \\" + std::string(1, c) + " escape");
          v = v * 16 + uint32_t(d);
        }
        return one(v);
      }
      default:
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '1' && c <= '9')) {
          return error(std::string("escape '\\") + c + "' is not supported");
        }
        --pos_;
        return one(next_cp(re_, &pos_));
    }
  }

  Result<std::string> char_class() {
    ++pos_;  // '['
    bool negate = !at_end() && peek() == '^';
    if (negate) ++pos_;
    Ranges set;
    bool shorthand = false;
    bool first = true;
    while (true) {
      if (at_end()) return error("unterminated character class");
      if (peek() == ']' && !first) break;
      first = false;
      // One item: a character (possibly the start of a range) or a shorthand set.
      auto item = [&]() -> Result<Ranges> {
        if (peek() == '\\') {
          ++pos_;
          return escape(true);
        }
        uint32_t cp = next_cp(re_, &pos_);
        return Ranges{{cp, cp}};
      };
      auto lo = item();
      if (!lo.ok()) return lo.status();
      bool single = lo->size() == 1 && (*lo)[0].first == (*lo)[0].second;
      if (single && pos_ + 1 < end_ && peek() == '-' && re_[pos_ + 1] != ']') {
        ++pos_;
        auto hi = item();
        if (!hi.ok()) return hi.status();
        if (hi->size() != 1 || (*hi)[0].first != (*hi)[0].second) {
          return error("a range must end with one character");
        }
        if ((*hi)[0].first < (*lo)[0].first) return error("range out of order");
        set.push_back({(*lo)[0].first, (*hi)[0].first});
      } else {
        if (!single) shorthand = true;
        set.insert(set.end(), lo->begin(), lo->end());
      }
    }
    ++pos_;  // ']'
    // A negated class with a shorthand is taken within ASCII: [^\w] must not produce letters
    // that Python's Unicode \w would match.
    if (negate) set = complement(set, shorthand ? 0x7F : kMaxCp);
    return set_expr(set);
  }

  std::string_view re_;
  std::string where_;
  size_t pos_ = 0;
  size_t end_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Integer ranges, digit by digit.

std::string digits_class(int lo, int hi) {
  if (lo == hi) return lit(std::string(1, char('0' + lo)));
  return "[" + std::string(1, char('0' + lo)) + "-" + std::string(1, char('0' + hi)) + "]";
}

// Decimal strings a..b of the same length n (a <= b, no leading-zero concerns: the caller
// gives a first digit >= 1 when n > 1).
std::string same_length_range(const std::string& a, const std::string& b) {
  size_t n = a.size();
  if (a == b) return lit(a);
  size_t p = 0;
  while (a[p] == b[p]) ++p;
  std::string prefix = p ? lit(a.substr(0, p)) : "";
  std::string ra = a.substr(p + 1), rb = b.substr(p + 1);
  int da = a[p] - '0', db = b[p] - '0';
  size_t rest = n - p - 1;
  bool a_zeros = ra.find_first_not_of('0') == std::string::npos;
  bool b_nines = rb.find_first_not_of('9') == std::string::npos;
  std::vector<std::string> alts;
  int first_full = da, last_full = db;
  if (!a_zeros) {
    alts.push_back(seq({digits_class(da, da), same_length_range(ra, std::string(rest, '9'))}));
    first_full = da + 1;
  }
  if (!b_nines) last_full = db - 1;
  if (first_full <= last_full) {
    std::string tail = rest == 0 ? "" : rest == 1 ? "[0-9]" : "[0-9]{" + std::to_string(rest) + "}";
    alts.push_back(seq({digits_class(first_full, last_full), tail}));
  }
  if (!b_nines) {
    alts.push_back(seq({digits_class(db, db), same_length_range(std::string(rest, '0'), rb)}));
  }
  return seq({prefix, alternation(alts)});
}

uint64_t pow10(int d) {
  uint64_t v = 1;
  while (d-- > 0) v *= 10;
  return v;
}

// Unsigned decimal integers lo..hi (0 <= lo <= hi <= kMaxInt), no leading zeros.
std::string uint_range(uint64_t lo, uint64_t hi) {
  std::vector<std::string> alts;
  int d_lo = int(std::to_string(lo).size()), d_hi = int(std::to_string(hi).size());
  int full_from = -1;  // a run of digit counts whose whole range is included
  auto flush = [&](int to) {
    if (full_from < 0) return;
    std::string tail =
        to == full_from
            ? (to == 2 ? "[0-9]" : "[0-9]{" + std::to_string(to - 1) + "}")
            : "[0-9]{" + std::to_string(full_from - 1) + "," + std::to_string(to - 1) + "}";
    alts.push_back("[1-9] " + tail);
    full_from = -1;
  };
  for (int d = d_lo; d <= d_hi; ++d) {
    uint64_t first = d == 1 ? 0 : pow10(d - 1), last = pow10(d) - 1;
    uint64_t a = std::max(lo, first), b = std::min(hi, last);
    if (d > 1 && a == first && b == last) {
      if (full_from < 0) full_from = d;
      continue;
    }
    flush(d - 1);
    alts.push_back(same_length_range(std::to_string(a), std::to_string(b)));
  }
  flush(d_hi);
  return alternation(alts);
}

struct Bound {
  int64_t value;
  bool exclusive;
};

const std::string kFracAny = "( \".\" [0-9]{1,15} )?";
const std::string kFracZero = "( \".\" \"0\"{1,15} )?";
const std::string kFracNonzero = "\".\" \"0\"{0,14} [1-9] [0-9]{0,14}";

// Decimal magnitudes m with lower <= m (or <) and m <= upper (or <), integer bounds >= 0, as
// alternatives. `fractions`: numbers (with an optional fraction) rather than integers.
std::vector<std::string> magnitude(Bound lower, std::optional<Bound> upper, bool fractions) {
  std::vector<std::string> alts;
  uint64_t lo = uint64_t(lower.value), hi = upper ? uint64_t(upper->value) : kMaxInt;
  if (!fractions) {
    if (lower.exclusive) ++lo;
    if (upper && upper->exclusive) {
      if (hi == 0) return alts;
      --hi;
    }
    if (lo <= hi) alts.push_back(uint_range(lo, hi));
    return alts;
  }
  // Integer part I with any fraction; I == lower with a non-zero fraction (exclusive lower);
  // I == upper with a zero fraction (inclusive upper).
  uint64_t lo_any = lower.exclusive ? lo + 1 : lo;
  int64_t hi_any = upper ? int64_t(hi) - 1 : int64_t(kMaxInt);
  if (hi_any >= 0 && lo_any <= uint64_t(hi_any)) {
    alts.push_back(seq({uint_range(lo_any, uint64_t(hi_any)), kFracAny}));
  }
  if (lower.exclusive && (!upper || hi > lo))
    alts.push_back(seq({lit(std::to_string(lo)), kFracNonzero}));
  if (upper && !upper->exclusive && (lower.exclusive ? hi > lo : hi >= lo)) {
    alts.push_back(seq({lit(std::to_string(hi)), kFracZero}));
  }
  return alts;
}

// Numbers (or integers) in [lo, hi], either bound optional.
std::string signed_range(std::optional<Bound> lo, std::optional<Bound> hi, bool fractions) {
  std::vector<std::string> alts;
  // x >= 0
  if (!hi || hi->value > 0 || (hi->value == 0 && !hi->exclusive)) {
    Bound lower = lo && lo->value >= 0 ? *lo : Bound{0, false};
    for (auto& a : magnitude(lower, hi, fractions)) alts.push_back(a);
  }
  // x < 0, as "-" m with m > 0
  if (!lo || lo->value < 0) {
    Bound lower = hi && hi->value < 0 ? Bound{-hi->value, hi->exclusive} : Bound{0, true};
    std::optional<Bound> upper;
    if (lo) upper = Bound{-lo->value, lo->exclusive};
    auto m = magnitude(lower, upper, fractions);
    if (!m.empty()) alts.push_back("\"-\" " + alternation(m));
  }
  return alternation(alts);
}

// ---------------------------------------------------------------------------------------------
// Keywords

const std::set<std::string, std::less<>> kAnnotations = {"title",
                                                         "description",
                                                         "default",
                                                         "examples",
                                                         "example",
                                                         "$schema",
                                                         "$id",
                                                         "id",
                                                         "$comment",
                                                         "readOnly",
                                                         "writeOnly",
                                                         "deprecated",
                                                         "discriminator",
                                                         "contentEncoding",
                                                         "contentMediaType",
                                                         "$anchor",
                                                         "$vocabulary",
                                                         "externalDocs",
                                                         "xml",
                                                         "$defs",
                                                         "definitions"};
const std::set<std::string, std::less<>> kSupported = {"type",
                                                       "enum",
                                                       "const",
                                                       "properties",
                                                       "required",
                                                       "additionalProperties",
                                                       "items",
                                                       "prefixItems",
                                                       "additionalItems",
                                                       "minItems",
                                                       "maxItems",
                                                       "anyOf",
                                                       "oneOf",
                                                       "allOf",
                                                       "$ref",
                                                       "minLength",
                                                       "maxLength",
                                                       "pattern",
                                                       "format",
                                                       "minimum",
                                                       "maximum",
                                                       "exclusiveMinimum",
                                                       "exclusiveMaximum",
                                                       "nullable"};
const std::set<std::string, std::less<>> kObjectKeys = {"properties", "required",
                                                        "additionalProperties"};
const std::set<std::string, std::less<>> kArrayKeys = {"items", "prefixItems", "additionalItems",
                                                       "minItems", "maxItems"};
const std::set<std::string, std::less<>> kStringKeys = {"minLength", "maxLength", "pattern",
                                                        "format"};
const std::set<std::string, std::less<>> kNumberKeys = {"minimum", "maximum", "exclusiveMinimum",
                                                        "exclusiveMaximum"};
const std::set<std::string, std::less<>> kTypes = {"null",   "boolean", "object", "array",
                                                   "number", "integer", "string"};

bool is_annotation(const std::string& k) { return kAnnotations.count(k) || k.rfind("x-", 0) == 0; }

// Keys that assert something (not annotations, not definitions).
bool has_assertions(const Json& s, std::initializer_list<std::string_view> except = {}) {
  if (!s.is_object()) return false;
  for (const auto& [k, v] : s.items()) {
    if (is_annotation(k)) continue;
    if (std::find(except.begin(), except.end(), k) != except.end()) continue;
    return true;
  }
  return false;
}

Json without(const Json& s, std::initializer_list<std::string_view> keys) {
  Json out = Json::object();
  for (const auto& [k, v] : s.items()) {
    if (std::find(keys.begin(), keys.end(), k) == keys.end()) out[k] = v;
  }
  return out;
}

std::string pointer_token(const std::string& key) {
  std::string out;
  for (char c : key) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

std::string json_type_of(const Json& v) {
  if (v.is_null()) return "null";
  if (v.is_boolean()) return "boolean";
  if (v.is_object()) return "object";
  if (v.is_array()) return "array";
  if (v.is_string()) return "string";
  return "number";
}

// ---------------------------------------------------------------------------------------------
// Built-in rules

struct Builtin {
  const char* name;
  const char* body;
  std::vector<const char*> deps;
};

const std::vector<Builtin>& builtins() {
  static const std::vector<Builtin> kBuiltins = {
      // One run of whitespace at most: a space, or a newline and some indentation.
      {"ws", R"(( " " | "\n" [ \t]{0,16} )?)", {}},
      // A character of a JSON string: \u escapes of surrogates are left out, so that the
      // length of a string is the number of its JSON characters.
      {"json-char", R"([^"\\\x00-\x1f] | "\\" ( ["\\/bfnrt] | "u" json-u4 ))", {"json-u4"}},
      {"json-u4", R"([0-9a-cA-Ce-fE-F] [0-9a-fA-F]{3} | [dD] [0-7] [0-9a-fA-F]{2})", {}},
      {"json-key-char", R"([^"\\\x00-\x1f])", {}},
      {"json-string", R"("\"" json-char* "\"")", {"json-char"}},
      {"json-integer", R"("-"? ( "0" | [1-9] [0-9]{0,14} ))", {}},
      {"json-number",
       R"("-"? ( "0" | [1-9] [0-9]{0,14} ) ( "." [0-9]{1,15} )? ( [eE] [-+]? [0-9]{1,3} )?)",
       {}},
      {"json-value",
       R"(json-object | json-array | json-string | json-number | "true" | "false" | "null")",
       {"json-object", "json-array", "json-string", "json-number"}},
      {"json-object",
       R"("{" ws ( json-member ( "," ws json-member )* )? ws "}")",
       {"ws", "json-member"}},
      {"json-member", R"(json-string ":" ws json-value)", {"json-string", "ws", "json-value"}},
      {"json-array",
       R"("[" ws ( json-value ( "," ws json-value )* )? ws "]")",
       {"ws", "json-value"}},
      {"fmt-date", R"([1-9] [0-9]{3} "-" fmt-month-day)", {"fmt-month-day"}},
      // Days by month; 29 February is left out (it needs a leap year).
      {"fmt-month-day",
       R"(( "01" | "03" | "05" | "07" | "08" | "10" | "12" ) "-" ( "0" [1-9] | [12] [0-9] | "3" [01] ) | ( "04" | "06" | "09" | "11" ) "-" ( "0" [1-9] | [12] [0-9] | "30" ) | "02-" ( "0" [1-9] | "1" [0-9] | "2" [0-8] ))",
       {}},
      {"fmt-time",
       R"(( [01] [0-9] | "2" [0-3] ) ":" [0-5] [0-9] ":" [0-5] [0-9] ( "." [0-9]{1,6} )? ( "Z" | [-+] ( [01] [0-9] | "2" [0-3] ) ":" [0-5] [0-9] ))",
       {}},
      {"fmt-date-time", R"(fmt-date "T" fmt-time)", {"fmt-date", "fmt-time"}},
      {"fmt-uuid",
       R"([0-9a-f]{8} "-" [0-9a-f]{4} "-" [0-9a-f]{4} "-" [0-9a-f]{4} "-" [0-9a-f]{12})",
       {}},
      {"fmt-email",
       R"([a-zA-Z0-9_%+-]{1,32} ( "." [a-zA-Z0-9_%+-]{1,32} ){0,3} "@" [a-zA-Z0-9] [a-zA-Z0-9-]{0,30} ( "." [a-zA-Z0-9] [a-zA-Z0-9-]{0,30} ){1,3})",
       {}},
  };
  return kBuiltins;
}

// ---------------------------------------------------------------------------------------------
// The compiler

#define SCHEMA_ASSIGN(lhs, expr)                        \
  auto lhs##_result = (expr);                           \
  if (!lhs##_result.ok()) return lhs##_result.status(); \
  auto lhs = std::move(lhs##_result).value()

class Compiler {
 public:
  explicit Compiler(const Json& root) : root_(root) {}

  Result<std::string> run() {
    SCHEMA_ASSIGN(expr, compile(root_, "", 0));
    std::string out = "root ::= " + expr + "\n";
    for (const auto& [name, body] : rules_) out += name + " ::= " + body + "\n";
    if (out.size() > kMaxSchemaGrammarBytes) {
      return Status::error("schema: the grammar would take " + std::to_string(out.size()) +
                           " bytes, more than the limit of " +
                           std::to_string(kMaxSchemaGrammarBytes));
    }
    return out;
  }

 private:
  static Status err(const std::string& ptr, const std::string& what) {
    return Status::error("schema at " + (ptr.empty() ? std::string("/") : ptr) + ": " + what);
  }

  // --- rules ---

  std::string reserve(const std::string& ptr, const std::string& suffix = "") {
    // A readable name from the pointer: /properties/address/items -> address-items.
    std::string hint;
    size_t i = 0;
    while (i < ptr.size()) {
      size_t j = ptr.find('/', i + 1);
      std::string seg = ptr.substr(i + 1, (j == std::string::npos ? ptr.size() : j) - i - 1);
      i = j == std::string::npos ? ptr.size() : j;
      if (seg == "properties" || seg == "$defs" || seg == "definitions" || seg.empty()) continue;
      if (!hint.empty()) hint += '-';
      for (char c : seg) {
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (ok) {
          hint += char(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
        } else if (!hint.empty() && hint.back() != '-') {
          hint += '-';
        }
      }
    }
    while (!hint.empty() && hint.back() == '-') hint.pop_back();
    if (hint.size() > 40) hint = hint.substr(hint.size() - 40);
    while (!hint.empty() && hint.front() == '-') hint.erase(0, 1);
    std::string base = "s-" + (hint.empty() ? std::string("root") : hint) + suffix;
    std::string name = base;
    for (int n = 2; names_.count(name); ++n) name = base + "-" + std::to_string(n);
    names_.insert(name);
    index_[name] = rules_.size();
    rules_.push_back({name, ""});
    return name;
  }

  Status define(const std::string& name, const std::string& body) {
    rules_[index_.at(name)].second = body;
    bytes_ += name.size() + body.size() + 6;
    if (rules_.size() > kMaxSchemaRules) {
      return Status::error("schema: more than " + std::to_string(kMaxSchemaRules) +
                           " grammar rules");
    }
    if (bytes_ > kMaxSchemaGrammarBytes) {
      return Status::error("schema: the grammar would be larger than " +
                           std::to_string(kMaxSchemaGrammarBytes) + " bytes");
    }
    return Status();
  }

  Result<std::string> rule(const std::string& ptr, const std::string& suffix,
                           const std::string& body) {
    std::string name = reserve(ptr, suffix);
    MINNOW_RETURN_IF_ERROR(define(name, body));
    return name;
  }

  std::string builtin(const std::string& name) {
    if (names_.count(name)) return name;
    names_.insert(name);
    for (const auto& b : builtins()) {
      if (name != b.name) continue;
      rules_.push_back({name, b.body});
      for (const char* d : b.deps) builtin(d);
    }
    return name;
  }

  // --- references ---

  Result<std::pair<const Json*, std::string>> resolve(const Json& ref, const std::string& ptr) {
    if (!ref.is_string()) return err(ptr, "'$ref' must be a string");
    std::string r = ref.get<std::string>();
    if (r != "#" && r.rfind("#/", 0) != 0) {
      return err(
          ptr, "'$ref' '" + r + "' is not supported: only references inside the schema ('#/...')");
    }
    // Percent-decoding (URI fragment), then the JSON pointer.
    std::string p;
    for (size_t i = 1; i < r.size(); ++i) {
      if (r[i] == '%' && i + 2 < r.size() && std::isxdigit(static_cast<unsigned char>(r[i + 1])) &&
          std::isxdigit(static_cast<unsigned char>(r[i + 2]))) {
        p += char(std::stoi(r.substr(i + 1, 2), nullptr, 16));
        i += 2;
      } else {
        p += r[i];
      }
    }
    try {
      Json::json_pointer jp(p);
      if (!root_.contains(jp)) return err(ptr, "'$ref' '" + r + "' points to nothing");
      return std::make_pair(&root_.at(jp), p);
    } catch (const Json::exception&) {
      return err(ptr, "'$ref' '" + r + "' is not a valid JSON pointer");
    }
  }

  Result<std::string> ref_rule(const Json& ref, const std::string& ptr, int depth) {
    SCHEMA_ASSIGN(target, resolve(ref, ptr));
    auto it = ref_rules_.find(target.second);
    if (it != ref_rules_.end()) return it->second;
    std::string name = reserve(target.second.empty() ? "/root" : target.second);
    ref_rules_[target.second] = name;
    SCHEMA_ASSIGN(body, compile(*target.first, target.second, depth + 1));
    if (body == name) return err(ptr, "'$ref' '" + ref.get<std::string>() + "' refers to itself");
    MINNOW_RETURN_IF_ERROR(define(name, body));
    return name;
  }

  // --- keyword checks ---

  Status check_keywords(const Json& s, const std::string& ptr) {
    if (s.is_boolean()) return Status();
    if (!s.is_object()) return err(ptr, "a schema must be an object or a boolean");
    for (const auto& [k, v] : s.items()) {
      if (is_annotation(k) || kSupported.count(k)) continue;
      static const std::set<std::string, std::less<>> kKnownUnsupported = {"not",
                                                                           "if",
                                                                           "then",
                                                                           "else",
                                                                           "patternProperties",
                                                                           "propertyNames",
                                                                           "dependentRequired",
                                                                           "dependentSchemas",
                                                                           "dependencies",
                                                                           "unevaluatedProperties",
                                                                           "unevaluatedItems",
                                                                           "uniqueItems",
                                                                           "contains",
                                                                           "minContains",
                                                                           "maxContains",
                                                                           "multipleOf",
                                                                           "minProperties",
                                                                           "maxProperties",
                                                                           "$dynamicRef",
                                                                           "$dynamicAnchor",
                                                                           "$recursiveRef",
                                                                           "$recursiveAnchor",
                                                                           "contentSchema"};
      if (kKnownUnsupported.count(k)) return err(ptr, "'" + k + "' is not supported");
      return err(ptr, "unknown keyword '" + k + "'");
    }
    return Status();
  }

  // --- allOf / $ref siblings: one merged schema ---

  Status flatten(const Json& s, const std::string& ptr, int depth,
                 std::vector<std::pair<Json, std::string>>* parts) {
    if (depth > kMaxSchemaDepth) {
      return err(ptr, "nested deeper than " + std::to_string(kMaxSchemaDepth) + " levels");
    }
    if (s.is_boolean()) {
      if (s.get<bool>()) return Status();
      return err(ptr, "the schema 'false' allows nothing");
    }
    MINNOW_RETURN_IF_ERROR(check_keywords(s, ptr));
    Json rest = s;
    if (s.contains("$ref")) {
      SCHEMA_ASSIGN(target, resolve(s["$ref"], ptr));
      MINNOW_RETURN_IF_ERROR(flatten(*target.first, target.second, depth + 1, parts));
      rest.erase("$ref");
    }
    if (s.contains("allOf")) {
      const Json& all = s["allOf"];
      if (!all.is_array() || all.empty()) return err(ptr, "'allOf' must be a non-empty array");
      for (size_t i = 0; i < all.size(); ++i) {
        MINNOW_RETURN_IF_ERROR(
            flatten(all[i], ptr + "/allOf/" + std::to_string(i), depth + 1, parts));
      }
      rest.erase("allOf");
    }
    parts->push_back({rest, ptr});
    return Status();
  }

  static std::set<std::string> type_set(const Json& s) {
    std::set<std::string> out;
    if (!s.contains("type")) return out;
    const Json& t = s["type"];
    if (t.is_string()) out.insert(t.get<std::string>());
    if (t.is_array()) {
      for (const auto& x : t) {
        if (x.is_string()) out.insert(x.get<std::string>());
      }
    }
    if (s.contains("nullable") && s["nullable"] == true) out.insert("null");
    return out;
  }

  Result<Json> merge(const Json& s, const std::string& ptr, int depth) {
    std::vector<std::pair<Json, std::string>> parts;
    MINNOW_RETURN_IF_ERROR(flatten(s, ptr, depth, &parts));
    Json m = Json::object();
    std::optional<std::set<std::string>> types;
    for (const auto& [part, part_ptr] : parts) {
      if (part.contains("type")) {
        std::set<std::string> t = type_set(part);
        if (!types) {
          types = t;
        } else {
          std::set<std::string> both;
          for (const auto& x : t) {
            if (types->count(x)) {
              both.insert(x);
            } else if (x == "integer" && types->count("number")) {
              both.insert("integer");
            } else if (x == "number" && types->count("integer")) {
              both.insert("integer");
            }
          }
          types = both;
        }
      }
      for (const auto& [k, v] : part.items()) {
        if (is_annotation(k) || k == "type" || k == "nullable") continue;
        if (!m.contains(k)) {
          m[k] = v;
          continue;
        }
        Json& cur = m[k];
        if (cur == v) continue;
        if (k == "required") {
          for (const auto& r : v) {
            if (std::find(cur.begin(), cur.end(), r) == cur.end()) cur.push_back(r);
          }
        } else if (k == "properties") {
          for (const auto& [name, sub] : v.items()) {
            if (!cur.contains(name)) {
              cur[name] = sub;
            } else if (cur[name] != sub) {
              cur[name] = Json{{"allOf", Json::array({cur[name], sub})}};
            }
          }
        } else if (k == "items" && cur.is_object() && v.is_object()) {
          cur = Json{{"allOf", Json::array({cur, v})}};
        } else if (k == "enum" && cur.is_array() && v.is_array()) {
          Json both = Json::array();
          for (const auto& x : cur) {
            if (std::find(v.begin(), v.end(), x) != v.end()) both.push_back(x);
          }
          cur = both;
        } else if ((k == "minimum" || k == "minLength" || k == "minItems" ||
                    (k == "exclusiveMinimum" && v.is_number())) &&
                   cur.is_number() && v.is_number()) {
          if (v.get<double>() > cur.get<double>()) cur = v;
        } else if ((k == "maximum" || k == "maxLength" || k == "maxItems" ||
                    (k == "exclusiveMaximum" && v.is_number())) &&
                   cur.is_number() && v.is_number()) {
          if (v.get<double>() < cur.get<double>()) cur = v;
        } else if (k == "additionalProperties" && cur.is_boolean() && v.is_boolean()) {
          cur = cur.get<bool>() && v.get<bool>();
        } else {
          return err(part_ptr, "'" + k + "' differs between the schemas of an allOf (or beside " +
                                   "a $ref); only type, required, properties, items, enum and " +
                                   "bounds can be combined");
        }
      }
    }
    // additionalProperties of one part restricts the properties that others declare.
    for (const auto& [part, part_ptr] : parts) {
      if (!part.contains("additionalProperties") || part["additionalProperties"] == true) continue;
      Json declared = part.value("properties", Json::object());
      const Json all_props = m.value("properties", Json::object());
      for (const auto& [name, sub] : all_props.items()) {
        if (!declared.contains(name)) {
          return err(part_ptr, "property '" + name + "' of another schema of the allOf is " +
                                   "excluded by this one's 'additionalProperties'");
        }
      }
    }
    if (types) {
      // nullable: each typed part must allow null for the merge to.
      if (types->empty()) return err(ptr, "the schemas of the allOf have no type in common");
      Json t = Json::array();
      for (const auto& x : *types) t.push_back(x);
      m["type"] = t.size() == 1 ? t[0] : t;
    }
    return m;
  }

  // --- compile ---

  Result<std::string> compile(const Json& s, const std::string& ptr, int depth) {
    if (depth > kMaxSchemaDepth) {
      return err(ptr, "nested deeper than " + std::to_string(kMaxSchemaDepth) + " levels");
    }
    if (s.is_boolean()) {
      if (s.get<bool>()) return builtin("json-value");
      return err(ptr, "the schema 'false' allows nothing");
    }
    MINNOW_RETURN_IF_ERROR(check_keywords(s, ptr));

    if (s.contains("$ref") && !has_assertions(s, {"$ref"})) return ref_rule(s["$ref"], ptr, depth);
    if (s.contains("$ref") || s.contains("allOf")) {
      SCHEMA_ASSIGN(merged, merge(s, ptr, depth));
      return compile(merged, ptr, depth + 1);
    }
    if (s.contains("anyOf") || s.contains("oneOf")) {
      if (s.contains("anyOf") && s.contains("oneOf")) {
        return err(ptr, "'anyOf' together with 'oneOf' is not supported");
      }
      bool one = s.contains("oneOf");
      std::string key = one ? "oneOf" : "anyOf";
      const Json& branches = s[key];
      if (!branches.is_array() || branches.empty()) {
        return err(ptr, "'" + key + "' must be a non-empty array");
      }
      Json rest = without(s, {"anyOf", "oneOf"});
      bool merge_rest = has_assertions(rest);
      std::vector<Json> resolved;
      std::vector<std::string> alts;
      for (size_t i = 0; i < branches.size(); ++i) {
        std::string bptr = ptr + "/" + key + "/" + std::to_string(i);
        Json b = branches[i];
        if (merge_rest) b = Json{{"allOf", Json::array({rest, b})}};
        if (one) {
          SCHEMA_ASSIGN(flat, normalize(b, bptr, depth + 1));
          resolved.push_back(flat);
        }
        SCHEMA_ASSIGN(alt, compile(b, bptr, depth + 1));
        alts.push_back(alt);
      }
      if (one) {
        for (size_t i = 0; i < resolved.size(); ++i) {
          for (size_t j = i + 1; j < resolved.size(); ++j) {
            if (!disjoint(resolved[i], resolved[j], depth) ||
                !disjoint(resolved[j], resolved[i], depth)) {
              return err(ptr, "'oneOf' branches " + std::to_string(i) + " and " +
                                  std::to_string(j) + " may both match a document (use anyOf, " +
                                  "or make them differ in type, const/enum or a required " +
                                  "property)");
            }
          }
        }
      }
      return alternation(alts);
    }
    if (s.contains("nullable") && s["nullable"] == true) {
      SCHEMA_ASSIGN(inner, compile(without(s, {"nullable"}), ptr, depth + 1));
      return "( " + inner + " | \"null\" )";
    }
    if (s.contains("enum") || s.contains("const")) return compile_enum(s, ptr);

    std::set<std::string> types;
    if (s.contains("type")) {
      const Json& t = s["type"];
      std::vector<Json> list =
          t.is_array() ? std::vector<Json>(t.begin(), t.end()) : std::vector<Json>{t};
      for (const auto& x : list) {
        if (!x.is_string() || !kTypes.count(x.get<std::string>())) {
          return err(ptr, "'type' " + x.dump() + " is not a JSON Schema type");
        }
        types.insert(x.get<std::string>());
      }
      if (types.empty()) return err(ptr, "'type' is an empty list");
    } else {
      // No type: the kinds of value the keywords describe (a subset of what validates).
      for (const auto& [k, v] : s.items()) {
        if (kObjectKeys.count(k)) types.insert("object");
        if (kArrayKeys.count(k)) types.insert("array");
        if (kStringKeys.count(k)) types.insert("string");
        if (kNumberKeys.count(k)) types.insert("number");
      }
      if (types.empty()) return builtin("json-value");
    }
    if (types.count("number")) types.erase("integer");
    std::vector<std::string> alts;
    for (const auto& t : types) {
      if (t == "null") {
        alts.push_back("\"null\"");
      } else if (t == "boolean") {
        alts.push_back("( \"true\" | \"false\" )");
      } else {
        Result<std::string> e = t == "object"   ? compile_object(s, ptr, depth)
                                : t == "array"  ? compile_array(s, ptr, depth)
                                : t == "string" ? compile_string(s, ptr)
                                                : compile_number(s, ptr, t == "integer");
        if (!e.ok()) return e;
        alts.push_back(*e);
      }
    }
    return alternation(alts);
  }

  // $ref / allOf at the top of a schema resolved into one schema (for the oneOf checks).
  Result<Json> normalize(const Json& s, const std::string& ptr, int depth) {
    if (s.is_object() && (s.contains("$ref") || s.contains("allOf"))) return merge(s, ptr, depth);
    return s;
  }

  Result<std::string> compile_enum(const Json& s, const std::string& ptr) {
    for (const auto& [k, v] : s.items()) {
      if (is_annotation(k) || k == "enum" || k == "const" || k == "type") continue;
      return err(ptr, "'" + k + "' together with 'enum'/'const' is not supported");
    }
    std::vector<Json> values;
    if (s.contains("enum")) {
      if (!s["enum"].is_array()) return err(ptr, "'enum' must be an array");
      values.assign(s["enum"].begin(), s["enum"].end());
    }
    if (s.contains("const")) {
      if (s.contains("enum") &&
          std::find(values.begin(), values.end(), s["const"]) == values.end()) {
        values.clear();
      } else {
        values = {s["const"]};
      }
    }
    std::set<std::string> types = type_set(s);
    std::vector<std::string> alts;
    for (const auto& v : values) {
      if (!types.empty()) {
        std::string t = json_type_of(v);
        bool integral = v.is_number_integer() || v.is_number_unsigned() ||
                        (v.is_number_float() && std::floor(v.get<double>()) == v.get<double>());
        if (!types.count(t) && !(t == "number" && integral && types.count("integer"))) continue;
      }
      std::string l = lit(v.dump());
      if (std::find(alts.begin(), alts.end(), l) == alts.end()) alts.push_back(l);
    }
    if (alts.empty()) return err(ptr, "no value of 'enum'/'const' is allowed by the schema");
    return alternation(alts);
  }

  Result<long long> count_keyword(const Json& s, const char* key, const std::string& ptr,
                                  long long fallback) {
    if (!s.contains(key)) return fallback;
    const Json& v = s[key];
    if (!v.is_number() || v.get<double>() < 0 || std::floor(v.get<double>()) != v.get<double>()) {
      return err(ptr, std::string("'") + key + "' must be a non-negative integer");
    }
    double d = v.get<double>();
    if (d > double(kMaxSchemaRepeat)) {
      return err(ptr, std::string("'") + key + "' " + v.dump() + " is above minnow's limit of " +
                          std::to_string(kMaxSchemaRepeat));
    }
    return static_cast<long long>(d);
  }

  Result<std::string> compile_string(const Json& s, const std::string& ptr) {
    bool has_len = s.contains("minLength") || s.contains("maxLength");
    SCHEMA_ASSIGN(min, count_keyword(s, "minLength", ptr, 0));
    SCHEMA_ASSIGN(max, count_keyword(s, "maxLength", ptr, -1));
    if (max >= 0 && max < min) return err(ptr, "'maxLength' is less than 'minLength'");
    if (s.contains("format") && s.contains("pattern")) {
      return err(ptr, "'format' together with 'pattern' is not supported");
    }
    if (s.contains("format")) {
      const Json& f = s["format"];
      std::string name = f.is_string() ? f.get<std::string>() : f.dump();
      static const std::set<std::string, std::less<>> kFormats = {"date", "time", "date-time",
                                                                  "uuid", "email"};
      if (!kFormats.count(name)) return err(ptr, "format '" + name + "' is not supported");
      if (has_len)
        return err(ptr, "'minLength'/'maxLength' together with 'format' is not supported");
      return "\"\\\"\" " + builtin("fmt-" + name) + " \"\\\"\"";
    }
    if (s.contains("pattern")) {
      if (!s["pattern"].is_string()) return err(ptr, "'pattern' must be a string");
      if (has_len)
        return err(ptr, "'minLength'/'maxLength' together with 'pattern' is not supported");
      std::string where = "schema at " + (ptr.empty() ? std::string("/") : ptr);
      SCHEMA_ASSIGN(body, PatternCompiler(s["pattern"].get<std::string>(), where).run());
      return seq({"\"\\\"\"", body, "\"\\\"\""});
    }
    std::string chars = repeat(builtin("json-char"), min, max);
    return seq({"\"\\\"\"", chars, "\"\\\"\""});
  }

  Result<std::optional<Bound>> bound(const Json& s, const std::string& ptr, bool lower,
                                     bool integer) {
    const char* key = lower ? "minimum" : "maximum";
    const char* ekey = lower ? "exclusiveMinimum" : "exclusiveMaximum";
    std::optional<double> v;
    bool excl = false;
    if (s.contains(key)) {
      if (!s[key].is_number()) return err(ptr, std::string("'") + key + "' must be a number");
      v = s[key].get<double>();
      if (s.contains(ekey) && s[ekey].is_boolean()) excl = s[ekey].get<bool>();  // draft 4
    }
    if (s.contains(ekey) && !s[ekey].is_boolean()) {
      if (!s[ekey].is_number()) return err(ptr, std::string("'") + ekey + "' must be a number");
      double e = s[ekey].get<double>();
      if (!v || (lower ? e >= *v : e <= *v)) {
        v = e;
        excl = true;
      }
    }
    if (!v) return std::optional<Bound>();
    double x = *v;
    if (!std::isfinite(x)) return err(ptr, std::string("'") + key + "' must be finite");
    if (integer) {
      // The nearest integer inside the bound.
      double r = lower ? (excl ? std::floor(x) + 1 : std::ceil(x))
                       : (excl ? std::ceil(x) - 1 : std::floor(x));
      excl = false;
      x = r;
    } else if (std::floor(x) != x) {
      return err(ptr, std::string("'") + (excl ? ekey : key) + "' " + std::to_string(x) +
                          ": only integer-valued bounds are supported for numbers");
    }
    // Past 15 digits every number the grammar writes is inside the bound anyway.
    double lim = double(kMaxInt);
    if ((lower && x >= lim) || (!lower && x <= -lim)) {
      return err(ptr,
                 std::string("'") + (excl ? ekey : key) + "' beyond 15 digits is not supported");
    }
    if (std::fabs(x) > lim) {
      x = lower ? -lim : lim;
      excl = false;
    }
    return std::optional<Bound>(Bound{int64_t(x), excl});
  }

  Result<std::string> compile_number(const Json& s, const std::string& ptr, bool integer) {
    SCHEMA_ASSIGN(lo, bound(s, ptr, true, integer));
    SCHEMA_ASSIGN(hi, bound(s, ptr, false, integer));
    if (!lo && !hi) return builtin(integer ? "json-integer" : "json-number");
    std::string e = signed_range(lo, hi, !integer);
    if (e.empty()) return err(ptr, "no number lies between the bounds");
    return e;
  }

  Result<std::string> compile_array(const Json& s, const std::string& ptr, int depth) {
    std::vector<std::pair<const Json*, std::string>> prefix;  // (schema, pointer)
    const Json* rest = nullptr;                               // null: no more items
    std::string rest_ptr;
    static const Json kTrue = true;
    const Json* items = s.contains("items") ? &s["items"] : nullptr;
    if (s.contains("prefixItems")) {
      if (!s["prefixItems"].is_array()) return err(ptr, "'prefixItems' must be an array");
      if (items && items->is_array())
        return err(ptr, "'items' must be a schema beside 'prefixItems'");
      if (s.contains("additionalItems")) {
        return err(ptr, "'additionalItems' beside 'prefixItems' is not supported (use 'items')");
      }
      for (size_t i = 0; i < s["prefixItems"].size(); ++i) {
        prefix.push_back({&s["prefixItems"][i], ptr + "/prefixItems/" + std::to_string(i)});
      }
      rest = items ? items : &kTrue;
      rest_ptr = ptr + "/items";
    } else if (items && items->is_array()) {  // draft 4 tuples
      for (size_t i = 0; i < items->size(); ++i) {
        prefix.push_back({&(*items)[i], ptr + "/items/" + std::to_string(i)});
      }
      rest = s.contains("additionalItems") ? &s["additionalItems"] : &kTrue;
      rest_ptr = ptr + "/additionalItems";
    } else {
      if (s.contains("additionalItems"))
        return err(ptr, "'additionalItems' needs an array 'items'");
      rest = items ? items : &kTrue;
      rest_ptr = ptr + "/items";
    }
    if (rest->is_boolean() && !rest->get<bool>()) rest = nullptr;
    SCHEMA_ASSIGN(min, count_keyword(s, "minItems", ptr, 0));
    SCHEMA_ASSIGN(max, count_keyword(s, "maxItems", ptr, -1));
    long long k = static_cast<long long>(prefix.size());
    if (!rest && (max < 0 || max > k)) max = k;
    if (max >= 0 && max < min) {
      return err(ptr, "no array length satisfies minItems/maxItems" +
                          std::string(rest ? "" : " and the item schemas"));
    }
    builtin("ws");
    if (max == 0) return rule(ptr, "", "\"[\" ws \"]\"");
    std::vector<std::string> elems;
    for (long long i = 0; i < std::min<long long>(k, max < 0 ? k : max); ++i) {
      SCHEMA_ASSIGN(e, compile(*prefix[size_t(i)].first, prefix[size_t(i)].second, depth + 1));
      elems.push_back(e);
    }
    std::string rest_expr;
    if (rest && (max < 0 || max > k)) {
      SCHEMA_ASSIGN(r, compile(*rest, rest_ptr, depth + 1));
      rest_expr = r;
    }
    auto elem = [&](long long i) { return i < k ? elems[size_t(i)] : rest_expr; };
    // tail(i): what may follow once i items are written (i >= 1).
    std::string tail;  // tail(i) for the current i, built from the end
    long long last = max < 0 ? k : std::min(max, k);  // tail(last) is the repetition of rest
    if (!rest_expr.empty()) {
      long long from = std::max<long long>(k, 1);
      tail = repeat("\",\" ws " + rest_expr, std::max<long long>(0, min - from),
                    max < 0 ? -1 : max - from);
      last = from;
    }
    for (long long i = last - 1; i >= 1; --i) {
      std::string next = seq({"\",\" ws", elem(i), tail});
      std::string t = i >= min ? "( " + next + " )?" : next;
      SCHEMA_ASSIGN(name, rule(ptr, "-tail" + std::to_string(i), t));
      tail = name;
    }
    std::string body = seq({elem(0), tail});
    if (min == 0) body = "( " + body + " )?";
    return rule(ptr, "", seq({"\"[\" ws", body, "ws \"]\""}));
  }

  // A key that is none of `names` (raw characters only, at most kMaxKeyChars).
  Result<std::string> other_key(const std::vector<std::string>& names, const std::string& ptr) {
    struct Node {
      bool terminal = false;
      std::map<uint32_t, int> next;
    };
    std::vector<Node> trie(1);
    for (const auto& n : names) {
      std::vector<uint32_t> cps;
      bool raw = true;
      for (size_t i = 0; i < n.size();) {
        uint32_t cp = next_cp(n, &i);
        if (cp < 0x20 || cp == '"' || cp == '\\') raw = false;
        cps.push_back(cp);
      }
      if (!raw || cps.size() > size_t(kMaxKeyChars)) continue;  // no other key can equal it
      int at = 0;
      for (uint32_t cp : cps) {
        auto it = trie[size_t(at)].next.find(cp);
        if (it == trie[size_t(at)].next.end()) {
          trie.push_back({});
          int id = int(trie.size()) - 1;
          trie[size_t(at)].next[cp] = id;
          at = id;
        } else {
          at = it->second;
        }
      }
      trie[size_t(at)].terminal = true;
    }
    builtin("json-key-char");
    const std::string close = lit("\"");
    // Rules from the leaves up: node i at depth d may take kMaxKeyChars - d more characters.
    std::vector<std::string> node_rule(trie.size());
    std::vector<int> depth_of(trie.size(), 0);
    for (size_t i = 0; i < trie.size(); ++i) {
      for (const auto& [cp, child] : trie[i].next) depth_of[size_t(child)] = depth_of[i] + 1;
    }
    for (size_t i = trie.size(); i-- > 0;) {
      const Node& node = trie[i];
      int left = kMaxKeyChars - depth_of[i];
      std::vector<std::string> alts;
      if (!node.terminal) alts.push_back(close);
      Ranges taken = {{0, 0x1F}, {'"', '"'}, {'\\', '\\'}, {0xD800, 0xDFFF}};
      for (const auto& [cp, child] : node.next) taken.push_back({cp, cp});
      if (left > 0) {
        alts.push_back(
            seq({gbnf_class(complement(taken)),
                 left > 1 ? "json-key-char{0," + std::to_string(left - 1) + "}" : "", close}));
      }
      for (const auto& [cp, child] : node.next) {
        std::string c;
        append_utf8(c, cp);
        alts.push_back(lit(c) + " " + node_rule[size_t(child)]);
      }
      if (alts.empty()) alts.push_back(close);  // unreachable: a full-length name
      SCHEMA_ASSIGN(name, rule(ptr, "-key" + std::to_string(i), join(alts, " | ")));
      node_rule[i] = name;
    }
    return lit("\"") + " " + node_rule[0];
  }

  Result<std::string> compile_object(const Json& s, const std::string& ptr, int depth) {
    static const Json kTrue = true;
    const Json empty_props = Json::object();
    const Json& props = s.contains("properties") ? s["properties"] : empty_props;
    if (!props.is_object()) return err(ptr, "'properties' must be an object");
    std::set<std::string> required;
    if (s.contains("required")) {
      if (!s["required"].is_array()) return err(ptr, "'required' must be an array");
      for (const auto& r : s["required"]) {
        if (!r.is_string()) return err(ptr, "'required' must list strings");
        required.insert(r.get<std::string>());
      }
    }
    const Json* addl = s.contains("additionalProperties") ? &s["additionalProperties"] : nullptr;
    if (addl && !addl->is_boolean() && !addl->is_object()) {
      return err(ptr, "'additionalProperties' must be a boolean or a schema");
    }
    bool addl_false = addl && addl->is_boolean() && !addl->get<bool>();
    // Extra properties: when allowed explicitly, or when nothing is declared.
    bool extras = addl ? !addl_false : props.empty();

    struct Prop {
      std::string name;
      const Json* schema;
      std::string ptr;
      bool required;
    };
    std::vector<Prop> list;
    for (const auto& [name, sub] : props.items()) {
      std::string sub_ptr = ptr + "/properties/" + pointer_token(name);
      if (sub.is_boolean() && !sub.get<bool>()) {  // a property that must not appear
        if (required.count(name)) return err(sub_ptr, "a required property whose schema is false");
        continue;
      }
      list.push_back({name, &sub, sub_ptr, required.count(name) > 0});
    }
    for (const auto& r : required) {
      if (props.contains(r)) continue;
      if (addl_false) {
        return err(ptr, "required property '" + r +
                            "' is not in 'properties' and 'additionalProperties' is false");
      }
      list.push_back({r, addl ? addl : &kTrue, ptr + "/additionalProperties", true});
    }
    builtin("ws");
    std::vector<std::string> kv;
    for (const auto& p : list) {
      SCHEMA_ASSIGN(v, compile(*p.schema, p.ptr, depth + 1));
      kv.push_back(lit(Json(p.name).dump()) + " \":\" ws " + v);
    }
    std::string extra;
    if (extras) {
      std::string value = builtin("json-value");
      if (addl && addl->is_object()) {
        SCHEMA_ASSIGN(v, compile(*addl, ptr + "/additionalProperties", depth + 1));
        value = v;
      }
      std::string key = builtin("json-string");
      std::vector<std::string> names;  // declared (false ones too) and required
      for (const auto& [name, sub] : props.items()) names.push_back(name);
      for (const auto& p : list) names.push_back(p.name);
      if (!names.empty()) {
        SCHEMA_ASSIGN(k, other_key(names, ptr));
        key = k;
      }
      SCHEMA_ASSIGN(name, rule(ptr, "-extra", key + " \":\" ws " + value));
      extra = name;
    }
    // after[i]: the properties from i on, once something has been written (each after a comma).
    size_t n = list.size();
    std::string after = extra.empty() ? "" : "( \",\" ws " + extra + " )*";
    std::string first = extra.empty() ? "" : "( " + extra + " ( \",\" ws " + extra + " )* )?";
    for (size_t i = n; i-- > 0;) {
      // first(i): the properties from i on when nothing has been written yet. It matches the
      // empty string when first(i+1) does (or is empty): no `?` needed around the alternation.
      std::string written = seq({kv[i], after});
      if (list[i].required) {
        first = written;
      } else if (first.empty()) {
        first = "( " + written + " )?";
      } else {
        first = "( " + written + " | " + first + " )";
      }
      if (i > 0 || n > 1) {
        SCHEMA_ASSIGN(fname, rule(ptr, "-from" + std::to_string(i), first));
        first = fname;
      }
      std::string item = "\",\" ws " + kv[i];
      std::string a = seq({list[i].required ? item : "( " + item + " )?", after});
      if (i > 0) {
        SCHEMA_ASSIGN(aname, rule(ptr, "-after" + std::to_string(i), a));
        after = aname;
      }
    }
    return rule(ptr, "", seq({"\"{\" ws", first, "ws \"}\""}));
  }

  // --- oneOf: are two branches' documents apart? ---

  // The kinds of value a schema may accept (semantically); "number" covers integers.
  std::set<std::string> accepted_types(const Json& s, int depth) {
    static const std::set<std::string> kAll = {"null",  "boolean", "object",
                                               "array", "number",  "string"};
    if (depth > kMaxSchemaDepth || !s.is_object()) return kAll;
    std::set<std::string> out;
    if (s.contains("const")) return {json_type_of(s["const"])};
    if (s.contains("enum") && s["enum"].is_array()) {
      for (const auto& v : s["enum"]) out.insert(json_type_of(v));
      return out;
    }
    if (s.contains("$ref")) {
      auto t = resolve(s["$ref"], "");
      if (t.ok()) return accepted_types(*t->first, depth + 1);
    }
    for (const char* key : {"anyOf", "oneOf"}) {
      if (s.contains(key) && s[key].is_array()) {
        for (const auto& b : s[key]) {
          for (const auto& x : accepted_types(b, depth + 1)) out.insert(x);
        }
        return out;
      }
    }
    if (!s.contains("type")) return kAll;
    for (auto x : type_set(s)) out.insert(x == "integer" ? "number" : x);
    return out;
  }

  // The kinds of value the grammar of a schema writes.
  std::set<std::string> written_types(const Json& s, int depth) {
    if (depth > kMaxSchemaDepth || !s.is_object()) return accepted_types(s, depth);
    if (s.contains("type") || s.contains("const") || s.contains("enum") || s.contains("$ref") ||
        s.contains("anyOf") || s.contains("oneOf")) {
      return accepted_types(s, depth);
    }
    std::set<std::string> out;
    for (const auto& [k, v] : s.items()) {
      if (kObjectKeys.count(k)) out.insert("object");
      if (kArrayKeys.count(k)) out.insert("array");
      if (kStringKeys.count(k)) out.insert("string");
      if (kNumberKeys.count(k)) out.insert("number");
    }
    return out.empty() ? accepted_types(s, depth) : out;
  }

  // The values a (property) schema allows when it lists them.
  std::optional<std::vector<Json>> listed_values(const Json& s) {
    const Json* t = &s;
    if (s.is_object() && s.contains("$ref")) {
      auto r = resolve(s["$ref"], "");
      if (!r.ok()) return std::nullopt;
      t = r->first;
    }
    if (!t->is_object()) return std::nullopt;
    if (t->contains("const")) return std::vector<Json>{(*t)["const"]};
    if (t->contains("enum") && (*t)["enum"].is_array()) {
      return std::vector<Json>((*t)["enum"].begin(), (*t)["enum"].end());
    }
    return std::nullopt;
  }

  // True when no document written for `a` validates against `b`.
  bool disjoint(const Json& a, const Json& b, int depth) {
    std::set<std::string> wa = written_types(a, depth), sb = accepted_types(b, depth);
    bool shared = false;
    for (const auto& t : wa) shared = shared || sb.count(t) > 0;
    if (!shared) return true;
    auto va = listed_values(a), vb = listed_values(b);
    if (va && vb) {
      for (const auto& x : *va) {
        if (std::find(vb->begin(), vb->end(), x) != vb->end()) return false;
      }
      return true;
    }
    if (wa != std::set<std::string>{"object"} || !a.is_object() || !b.is_object()) return false;
    Json pa = a.value("properties", Json::object()), pb = b.value("properties", Json::object());
    std::set<std::string> ra;
    for (const auto& r : a.value("required", Json::array())) {
      if (r.is_string()) ra.insert(r.get<std::string>());
    }
    bool b_closed = b.contains("additionalProperties") && b["additionalProperties"] == false;
    bool a_writes_only_declared =
        (a.contains("additionalProperties") && a["additionalProperties"] == false) ||
        (!a.contains("additionalProperties") && !pa.empty());
    for (const auto& k : ra) {
      // A discriminator: a required property whose listed values b excludes.
      if (pa.contains(k) && pb.contains(k)) {
        auto xa = listed_values(pa[k]), xb = listed_values(pb[k]);
        if (xa && xb) {
          bool common = false;
          for (const auto& x : *xa) {
            common = common || std::find(xb->begin(), xb->end(), x) != xb->end();
          }
          if (!common) return true;
        }
      }
      if (b_closed && !pb.contains(k)) return true;
    }
    // b requires a property that a never writes.
    if (a_writes_only_declared) {
      for (const auto& r : b.value("required", Json::array())) {
        if (r.is_string() && !pa.contains(r.get<std::string>())) return true;
      }
    }
    return false;
  }

  const Json& root_;
  std::vector<std::pair<std::string, std::string>> rules_;
  std::set<std::string> names_;
  std::map<std::string, size_t> index_;  // rule name -> rules_ index
  std::map<std::string, std::string> ref_rules_;
  size_t bytes_ = 0;
};

}  // namespace

Result<std::string> json_schema_to_gbnf(std::string_view schema_json) {
  if (schema_json.size() > kMaxSchemaBytes) {
    return Status::error("schema: " + std::to_string(schema_json.size()) +
                         " bytes, more than the limit of " + std::to_string(kMaxSchemaBytes));
  }
  Json root;
  try {
    root = Json::parse(schema_json);
  } catch (const Json::parse_error& e) {
    return Status::error(std::string("schema: not valid JSON: ") + e.what());
  }
  return Compiler(root).run();
}

}  // namespace minnow::constrain
