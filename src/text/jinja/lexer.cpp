#include "text/jinja/lexer.h"

#include <cerrno>
#include <cstdint>
#include <cstdlib>

#include "text/jinja/unicode.h"

namespace minnow::text::jinja {

namespace {

// Decodes the code point at s[i]; returns its byte length (1 for an invalid byte).
size_t decode_at(std::string_view s, size_t i, char32_t* cp) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) {
    *cp = b0;
    return 1;
  }
  size_t n = (b0 & 0xE0) == 0xC0 ? 2 : (b0 & 0xF0) == 0xE0 ? 3 : (b0 & 0xF8) == 0xF0 ? 4 : 0;
  if (n == 0 || i + n > s.size()) {
    *cp = 0xFFFD;
    return 1;
  }
  std::u32string cps = utf8_decode(s.substr(i, n));
  if (cps.size() != 1) {
    *cp = 0xFFFD;
    return 1;
  }
  *cp = cps[0];
  return n;
}

// Python's \s over code points, from pos; returns the end of the run.
size_t skip_space(std::string_view s, size_t pos) {
  while (pos < s.size()) {
    char32_t cp;
    const size_t n = decode_at(s, pos, &cp);
    if (!py_isspace(cp)) break;
    pos += n;
  }
  return pos;
}

bool all_space(std::string_view s) { return !s.empty() && skip_space(s, 0) == s.size(); }

// str.rstrip() with Python whitespace.
std::string_view rstrip_space(std::string_view s) {
  if (is_ascii(s)) {
    size_t e = s.size();
    while (e > 0 && py_isspace(static_cast<unsigned char>(s[e - 1]))) --e;
    return s.substr(0, e);
  }
  const std::u32string cps = utf8_decode(s);
  size_t e = cps.size();
  while (e > 0 && py_isspace(cps[e - 1])) --e;
  size_t bytes = 0;
  for (size_t k = 0; k < e; ++k) {
    std::string tmp;
    utf8_append(tmp, cps[k]);
    bytes += tmp.size();
  }
  return s.substr(0, bytes);
}

bool starts_with(std::string_view s, size_t pos, std::string_view prefix) {
  return s.substr(pos, prefix.size()) == prefix;
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_name_char(char c) { return is_name_start(c) || is_digit(c); }

// Digits possibly separated by single underscores ("1_000"): returns end or pos if none.
size_t scan_digits(std::string_view s, size_t pos) {
  if (pos >= s.size() || !is_digit(s[pos])) return pos;
  size_t p = pos;
  while (p < s.size()) {
    if (is_digit(s[p])) {
      ++p;
    } else if (s[p] == '_' && p + 1 < s.size() && is_digit(s[p + 1])) {
      p += 2;
    } else {
      break;
    }
  }
  return p;
}

// jinja2's float_re: digits ( (.digits)? e[+-]?digits | .digits ), not preceded by '.'.
size_t scan_float(std::string_view s, size_t pos) {
  if (pos > 0 && s[pos - 1] == '.') return pos;
  size_t p = scan_digits(s, pos);
  if (p == pos) return pos;
  size_t frac_end = p;
  if (p < s.size() && s[p] == '.') {
    const size_t f = scan_digits(s, p + 1);
    if (f > p + 1) frac_end = f;
  }
  // exponent part
  size_t e = frac_end;
  if (e < s.size() && (s[e] == 'e' || s[e] == 'E')) {
    size_t q = e + 1;
    if (q < s.size() && (s[q] == '+' || s[q] == '-')) ++q;
    const size_t x = scan_digits(s, q);
    if (x > q) return x;
  }
  return frac_end > p ? frac_end : pos;
}

bool is_hex(char c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

// jinja2's integer_re: 0b.., 0o.., 0x.., [1-9](_?\d)*, 0(_?0)*. Returns end, sets base.
size_t scan_int(std::string_view s, size_t pos, int* base) {
  if (pos >= s.size() || !is_digit(s[pos])) return pos;
  *base = 10;
  if (s[pos] == '0' && pos + 1 < s.size()) {
    const char k = static_cast<char>(s[pos + 1] | 0x20);
    int b = k == 'b' ? 2 : k == 'o' ? 8 : k == 'x' ? 16 : 0;
    if (b != 0) {
      size_t p = pos + 2;
      auto ok = [&](char c) {
        return b == 16 ? is_hex(c) : (c >= '0' && c < static_cast<char>('0' + b));
      };
      size_t q = p;
      while (q < s.size()) {
        if (s[q] == '_' && q + 1 < s.size() && ok(s[q + 1])) {
          q += 2;
        } else if (ok(s[q])) {
          ++q;
        } else {
          break;
        }
      }
      if (q > p) {
        *base = b;
        return q;
      }
    }
  }
  if (s[pos] == '0') {
    size_t p = pos + 1;
    while (p < s.size()) {
      if (s[p] == '0') {
        ++p;
      } else if (s[p] == '_' && p + 1 < s.size() && s[p + 1] == '0') {
        p += 2;
      } else {
        break;
      }
    }
    return p;
  }
  return scan_digits(s, pos);
}

struct OpSpelling {
  std::string_view text;
  Op op;
};
// Longest first, as jinja2 sorts its operator regex.
constexpr OpSpelling kOps[] = {
    {"//", Op::kFloorDiv}, {"**", Op::kPow},      {"==", Op::kEq},    {"!=", Op::kNe},
    {">=", Op::kGe},       {"<=", Op::kLe},       {"+", Op::kAdd},    {"-", Op::kSub},
    {"/", Op::kDiv},       {"*", Op::kMul},       {"%", Op::kMod},    {"~", Op::kTilde},
    {"[", Op::kLBracket},  {"]", Op::kRBracket},  {"(", Op::kLParen}, {")", Op::kRParen},
    {"{", Op::kLBrace},    {"}", Op::kRBrace},    {">", Op::kGt},     {"<", Op::kLt},
    {"=", Op::kAssign},    {".", Op::kDot},       {":", Op::kColon},  {"|", Op::kPipe},
    {",", Op::kComma},     {";", Op::kSemicolon},
};

class Lexer {
 public:
  Lexer(std::string_view src, const LexOptions& opts) : s_(src), opts_(opts) {}

  Result<std::vector<Token>> run() {
    size_t pos = 0;
    bool line_starting = true;
    while (pos < s_.size()) {
      // Root state: find the next tag opener.
      size_t i = pos;
      while (true) {
        i = s_.find('{', i);
        if (i == std::string_view::npos || i + 1 >= s_.size()) {
          i = std::string_view::npos;
          break;
        }
        const char k = s_[i + 1];
        if (k == '{' || k == '%' || k == '#') break;
        ++i;
      }
      if (i == std::string_view::npos) {
        emit_data(s_.substr(pos), static_cast<uint32_t>(pos));
        break;
      }
      const char kind = s_[i + 1];
      size_t j = i + 2;
      char sign = 0;
      if (j < s_.size() && (s_[j] == '-' || s_[j] == '+')) sign = s_[j++];

      // {% raw %} is matched before an ordinary block opener.
      size_t raw_body = 0;
      bool raw = false;
      if (kind == '%') raw = match_raw_begin(j, &raw_body);

      std::string_view text = s_.substr(pos, i - pos);
      text = strip_text(text, sign, kind != '{', line_starting);
      emit_data(text, static_cast<uint32_t>(pos));

      if (raw) {
        MINNOW_RETURN_IF_ERROR(lex_raw(i, raw_body, &pos, &line_starting));
        continue;
      }
      if (kind == '#') {
        MINNOW_RETURN_IF_ERROR(lex_comment(i, j, &pos, &line_starting));
        continue;
      }
      MINNOW_RETURN_IF_ERROR(lex_tag(kind, i, j, &pos, &line_starting));
    }
    Token eof;
    eof.type = TokenType::kEof;
    eof.offset = static_cast<uint32_t>(s_.size());
    toks_.push_back(std::move(eof));
    return std::move(toks_);
  }

 private:
  Status error(size_t offset, const std::string& msg) const {
    return Status::error(location(s_, static_cast<uint32_t>(offset)) + ": " + msg);
  }

  // jinja2's OptionalLStrip: `-` strips all whitespace before the tag; otherwise, for blocks
  // and comments with lstrip_blocks, whitespace between the line start and the tag goes.
  std::string_view strip_text(std::string_view text, char sign, bool not_variable,
                              bool line_starting) const {
    if (sign == '-') return rstrip_space(text);
    if (sign != '+' && opts_.lstrip_blocks && not_variable) {
      const size_t nl = text.rfind('\n');
      const size_t l_pos = nl == std::string_view::npos ? 0 : nl + 1;
      if ((l_pos > 0 || line_starting) && all_space(text.substr(l_pos))) {
        return text.substr(0, l_pos);
      }
    }
    return text;
  }

  void emit_data(std::string_view text, uint32_t offset) {
    if (text.empty()) return;
    Token t;
    t.type = TokenType::kData;
    t.offset = offset;
    t.text = std::string(text);
    toks_.push_back(std::move(t));
  }

  void emit(TokenType type, size_t offset) {
    Token t;
    t.type = type;
    t.offset = static_cast<uint32_t>(offset);
    toks_.push_back(std::move(t));
  }

  // `{%[-+]?\s*raw\s*(-%}\s*|%})` after the opener; sets *body to where the raw text starts.
  bool match_raw_begin(size_t j, size_t* body) const {
    size_t p = skip_space(s_, j);
    if (!starts_with(s_, p, "raw")) return false;
    p = skip_space(s_, p + 3);
    if (starts_with(s_, p, "-%}")) {
      *body = skip_space(s_, p + 3);
      return true;
    }
    if (starts_with(s_, p, "%}")) {
      *body = p + 2;
      return true;
    }
    return false;
  }

  Status lex_raw(size_t begin, size_t body, size_t* pos, bool* line_starting) {
    // Earliest `{%[-+]?\s*endraw\s*(+%}|-%}\s*|%}\n?)`.
    for (size_t p = s_.find("{%", body); p != std::string_view::npos; p = s_.find("{%", p + 1)) {
      size_t q = p + 2;
      char sign = 0;
      if (q < s_.size() && (s_[q] == '-' || s_[q] == '+')) sign = s_[q++];
      q = skip_space(s_, q);
      if (!starts_with(s_, q, "endraw")) continue;
      q = skip_space(s_, q + 6);
      size_t end;
      if (starts_with(s_, q, "+%}")) {
        end = q + 3;
      } else if (starts_with(s_, q, "-%}")) {
        end = skip_space(s_, q + 3);
      } else if (starts_with(s_, q, "%}")) {
        end = q + 2;
        if (opts_.trim_blocks && end < s_.size() && s_[end] == '\n') ++end;
      } else {
        continue;
      }
      std::string_view text = strip_text(s_.substr(body, p - body), sign, true, *line_starting);
      emit_data(text, static_cast<uint32_t>(body));
      *line_starting = end > 0 && s_[end - 1] == '\n';
      *pos = end;
      return Status();
    }
    return error(begin, "missing end of raw directive");
  }

  Status lex_comment(size_t begin, size_t j, size_t* pos, bool* line_starting) {
    for (size_t q = s_.find("#}", j); q != std::string_view::npos; q = s_.find("#}", q + 1)) {
      size_t end;
      if (q > j && s_[q - 1] == '+') {
        end = q + 2;
      } else if (q > j && s_[q - 1] == '-') {
        end = skip_space(s_, q + 2);
      } else {
        end = q + 2;
        if (opts_.trim_blocks && end < s_.size() && s_[end] == '\n') ++end;
      }
      *line_starting = s_[end - 1] == '\n';
      *pos = end;
      return Status();
    }
    return error(begin, "missing end of comment tag");
  }

  Status lex_tag(char kind, size_t begin, size_t j, size_t* pos, bool* line_starting) {
    const bool block = kind == '%';
    emit(block ? TokenType::kBlockBegin : TokenType::kVarBegin, begin);
    std::vector<char> balance;  // expected closing brackets
    size_t p = j;
    while (true) {
      if (p >= s_.size()) {
        return error(begin, block ? "unexpected end of template: unclosed '{%' (missing '%}')"
                                  : "unexpected end of template: unclosed '{{' (missing '}}')");
      }
      if (balance.empty()) {
        size_t end = 0;
        if (block) {
          if (starts_with(s_, p, "+%}")) {
            end = p + 3;
          } else if (starts_with(s_, p, "-%}")) {
            end = skip_space(s_, p + 3);
          } else if (starts_with(s_, p, "%}")) {
            end = p + 2;
            if (opts_.trim_blocks && end < s_.size() && s_[end] == '\n') ++end;
          }
        } else {
          if (starts_with(s_, p, "-}}")) {
            end = skip_space(s_, p + 3);
          } else if (starts_with(s_, p, "}}")) {
            end = p + 2;
          }
        }
        if (end != 0) {
          emit(block ? TokenType::kBlockEnd : TokenType::kVarEnd, p);
          *line_starting = s_[end - 1] == '\n';
          *pos = end;
          return Status();
        }
      }
      const size_t ws = skip_space(s_, p);
      if (ws != p) {
        p = ws;
        continue;
      }
      const char c = s_[p];
      // float, integer, name, string, operator: jinja2's rule order
      if (size_t f = scan_float(s_, p); f != p) {
        Token t;
        t.type = TokenType::kFloat;
        t.offset = static_cast<uint32_t>(p);
        std::string digits;
        for (size_t k = p; k < f; ++k) {
          if (s_[k] != '_') digits.push_back(s_[k]);
        }
        t.float_value = std::strtod(digits.c_str(), nullptr);
        toks_.push_back(std::move(t));
        p = f;
        continue;
      }
      int base = 10;
      if (size_t e = scan_int(s_, p, &base); e != p) {
        Token t;
        t.type = TokenType::kInt;
        t.offset = static_cast<uint32_t>(p);
        std::string digits;
        for (size_t k = (base == 10 ? p : p + 2); k < e; ++k) {
          if (s_[k] != '_') digits.push_back(s_[k]);
        }
        errno = 0;
        const unsigned long long v = std::strtoull(digits.c_str(), nullptr, base);
        if (errno == ERANGE || v > static_cast<unsigned long long>(INT64_MAX)) {
          return error(p, "integer literal too large");
        }
        t.int_value = static_cast<int64_t>(v);
        toks_.push_back(std::move(t));
        p = e;
        continue;
      }
      if (is_name_start(c)) {
        size_t e = p + 1;
        while (e < s_.size() && is_name_char(s_[e])) ++e;
        Token t;
        t.type = TokenType::kName;
        t.offset = static_cast<uint32_t>(p);
        t.text = std::string(s_.substr(p, e - p));
        toks_.push_back(std::move(t));
        p = e;
        continue;
      }
      if (c == '\'' || c == '"') {
        MINNOW_RETURN_IF_ERROR(lex_string(&p));
        continue;
      }
      bool matched = false;
      for (const auto& o : kOps) {
        if (!starts_with(s_, p, o.text)) continue;
        if (o.op == Op::kLParen) balance.push_back(')');
        if (o.op == Op::kLBracket) balance.push_back(']');
        if (o.op == Op::kLBrace) balance.push_back('}');
        if (o.op == Op::kRParen || o.op == Op::kRBracket || o.op == Op::kRBrace) {
          if (balance.empty()) return error(p, "unexpected '" + std::string(o.text) + "'");
          if (balance.back() != o.text[0]) {
            return error(p, "unexpected '" + std::string(o.text) + "', expected '" +
                                std::string(1, balance.back()) + "'");
          }
          balance.pop_back();
        }
        Token t;
        t.type = TokenType::kOp;
        t.op = o.op;
        t.offset = static_cast<uint32_t>(p);
        toks_.push_back(std::move(t));
        p += o.text.size();
        matched = true;
        break;
      }
      if (!matched) {
        char32_t cp;
        const size_t n = decode_at(s_, p, &cp);
        return error(p, "unexpected char " + std::string(s_.substr(p, n)));
      }
    }
  }

  // A quoted literal with Python's unicode-escape rules (unknown escapes keep the backslash).
  Status lex_string(size_t* pos) {
    const size_t start = *pos;
    const char quote = s_[start];
    std::string out;
    size_t p = start + 1;
    while (true) {
      if (p >= s_.size()) return error(start, "unterminated string literal");
      const char c = s_[p];
      if (c == quote) {
        ++p;
        break;
      }
      if (c != '\\') {
        out.push_back(c);
        ++p;
        continue;
      }
      if (p + 1 >= s_.size()) return error(start, "unterminated string literal");
      const char e = s_[p + 1];
      p += 2;
      switch (e) {
        case '\n':
          break;
        case '\\':
          out.push_back('\\');
          break;
        case '\'':
          out.push_back('\'');
          break;
        case '"':
          out.push_back('"');
          break;
        case 'a':
          out.push_back('\a');
          break;
        case 'b':
          out.push_back('\b');
          break;
        case 'f':
          out.push_back('\f');
          break;
        case 'n':
          out.push_back('\n');
          break;
        case 'r':
          out.push_back('\r');
          break;
        case 't':
          out.push_back('\t');
          break;
        case 'v':
          out.push_back('\v');
          break;
        case 'x':
        case 'u':
        case 'U': {
          const size_t n = e == 'x' ? 2 : e == 'u' ? 4 : 8;
          if (p + n > s_.size())
            return error(p - 2, "truncated \\" + std::string(1, e) + " escape");
          uint32_t v = 0;
          for (size_t k = 0; k < n; ++k) {
            const char h = s_[p + k];
            if (!is_hex(h)) return error(p - 2, "truncated \\" + std::string(1, e) + " escape");
            v = v * 16 + static_cast<uint32_t>(is_digit(h) ? h - '0' : (h | 0x20) - 'a' + 10);
          }
          if (v > 0x10FFFF) return error(p - 2, "illegal Unicode character in escape");
          utf8_append(out, v);
          p += n;
          break;
        }
        default:
          if (e >= '0' && e <= '7') {
            uint32_t v = static_cast<uint32_t>(e - '0');
            for (int k = 0; k < 2 && p < s_.size() && s_[p] >= '0' && s_[p] <= '7'; ++k, ++p) {
              v = v * 8 + static_cast<uint32_t>(s_[p] - '0');
            }
            utf8_append(out, v);
          } else {
            out.push_back('\\');
            --p;  // the escaped character is ordinary text
          }
      }
    }
    Token t;
    t.type = TokenType::kString;
    t.offset = static_cast<uint32_t>(start);
    t.text = std::move(out);
    toks_.push_back(std::move(t));
    *pos = p;
    return Status();
  }

  std::string_view s_;
  LexOptions opts_;
  std::vector<Token> toks_;
};

}  // namespace

std::string normalize_source(std::string_view source) {
  std::string out;
  out.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      out.push_back('\n');
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      out.push_back(source[i]);
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

Result<std::vector<Token>> tokenize(std::string_view source, const LexOptions& options) {
  return Lexer(source, options).run();
}

std::string location(std::string_view source, uint32_t offset) {
  size_t line = 1, col = 1;
  const size_t end = std::min<size_t>(offset, source.size());
  for (size_t i = 0; i < end; ++i) {
    if (source[i] == '\n') {
      ++line;
      col = 1;
    } else if ((static_cast<unsigned char>(source[i]) & 0xC0) != 0x80) {
      ++col;
    }
  }
  return std::to_string(line) + ":" + std::to_string(col);
}

std::string_view op_text(Op op) {
  for (const auto& o : kOps) {
    if (o.op == op) return o.text;
  }
  return "?";
}

}  // namespace minnow::text::jinja
