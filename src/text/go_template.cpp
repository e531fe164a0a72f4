// Go text/template, the subset Ollama's templates use (see go_template.h). Written from the
// text/template documentation: a lexer that splits the source into text and actions (handling
// trim markers and comments), a recursive-descent parser into a small tree, and a tree-walking
// evaluator over immutable Values with Go's truth, comparison and printing rules.
#include "text/go_template.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <map>
#include <optional>
#include <utility>

namespace minnow::text {
namespace gotmpl {

// ---------------------------------------------------------------- values

struct Value;
using List = std::vector<Value>;
struct Entry;
using Map = std::vector<Entry>;

struct Value {
  enum class Kind { kNil, kBool, kInt, kFloat, kString, kList, kMap };
  Kind kind = Kind::kNil;
  bool b = false;
  int64_t i = 0;
  double f = 0;
  std::shared_ptr<const std::string> s;
  std::shared_ptr<const List> list;
  std::shared_ptr<const Map> map;
  // Lists: the text printed for the value (.Tools prints as the request's JSON).
  std::shared_ptr<const std::string> print_as;
  // Maps: true for Go structs (api.Message), where an unknown field is an error; false for
  // JSON objects and the root map (a missing key is nil), which match keys case-insensitively.
  bool strict = false;

  static Value nil() { return {}; }
  static Value boolean(bool v) {
    Value x;
    x.kind = Kind::kBool;
    x.b = v;
    return x;
  }
  static Value integer(int64_t v) {
    Value x;
    x.kind = Kind::kInt;
    x.i = v;
    return x;
  }
  static Value floating(double v) {
    Value x;
    x.kind = Kind::kFloat;
    x.f = v;
    return x;
  }
  static Value string(std::string v) {
    Value x;
    x.kind = Kind::kString;
    x.s = std::make_shared<const std::string>(std::move(v));
    return x;
  }
  static Value of_list(List v) {
    Value x;
    x.kind = Kind::kList;
    x.list = std::make_shared<const List>(std::move(v));
    return x;
  }
  static Value of_map(Map v, bool strict) {
    Value x;
    x.kind = Kind::kMap;
    x.map = std::make_shared<const Map>(std::move(v));
    x.strict = strict;
    return x;
  }
};

struct Entry {
  std::string name;       // as templates name it (.Role) or the JSON key
  std::string json_name;  // as json marshals it ("role")
  Value value;
};

const char* type_name(const Value& v) {
  switch (v.kind) {
    case Value::Kind::kNil:
      return "nil";
    case Value::Kind::kBool:
      return "bool";
    case Value::Kind::kInt:
      return "int";
    case Value::Kind::kFloat:
      return "float64";
    case Value::Kind::kString:
      return "string";
    case Value::Kind::kList:
      return "slice";
    case Value::Kind::kMap:
      return v.strict ? "struct" : "map";
  }
  return "?";
}

bool truth(const Value& v) {
  switch (v.kind) {
    case Value::Kind::kNil:
      return false;
    case Value::Kind::kBool:
      return v.b;
    case Value::Kind::kInt:
      return v.i != 0;
    case Value::Kind::kFloat:
      return v.f != 0;
    case Value::Kind::kString:
      return !v.s->empty();
    case Value::Kind::kList:
      return !v.list->empty();
    case Value::Kind::kMap:
      return !v.map->empty();
  }
  return false;
}

// Shortest round-trip digits of |x| and its decimal exponent: x = 0.d1d2... * 10^(exp10+1).
void shortest_digits(double x, std::string& digits, int& exp10) {
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, std::fabs(x), std::chars_format::scientific);
  std::string_view sv(buf, r.ptr - buf);
  size_t e = sv.find('e');
  digits.clear();
  for (char c : sv.substr(0, e))
    if (c != '.') digits += c;
  while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
  exp10 = std::atoi(std::string(sv.substr(e + 1)).c_str());
}

std::string plain_decimal(const std::string& digits, int exp10) {
  std::string out;
  if (exp10 < 0) {
    out = "0." + std::string(static_cast<size_t>(-exp10 - 1), '0') + digits;
  } else if (static_cast<size_t>(exp10) + 1 >= digits.size()) {
    out = digits + std::string(static_cast<size_t>(exp10) + 1 - digits.size(), '0');
  } else {
    out = digits.substr(0, exp10 + 1) + "." + digits.substr(exp10 + 1);
  }
  return out;
}

std::string exp_form(const std::string& digits, int exp10, bool two_digit_exp) {
  std::string out = digits.substr(0, 1);
  if (digits.size() > 1) out += "." + digits.substr(1);
  out += exp10 < 0 ? "e-" : "e+";
  std::string e = std::to_string(std::abs(exp10));
  if (two_digit_exp && e.size() < 2) e = "0" + e;
  return out + e;
}

// fmt's %v of a float64: shortest digits, exponent form below 1e-4 or from 1e21.
std::string format_float_v(double x) {
  if (std::isnan(x)) return "NaN";
  if (std::isinf(x)) return x > 0 ? "+Inf" : "-Inf";
  if (x == 0) return std::signbit(x) ? "-0" : "0";
  std::string digits;
  int exp10 = 0;
  shortest_digits(x, digits, exp10);
  std::string body =
      (exp10 < -4 || exp10 >= 21) ? exp_form(digits, exp10, true) : plain_decimal(digits, exp10);
  return x < 0 ? "-" + body : body;
}

// encoding/json's float64: plain decimal, exponent form below 1e-6 or from 1e21 ("1e-07"
// shortened to "1e-7").
std::string format_float_json(double x) {
  if (!std::isfinite(x)) return "null";  // Go refuses; we degrade rather than fail a prompt
  if (x == 0) return "0";
  std::string digits;
  int exp10 = 0;
  shortest_digits(x, digits, exp10);
  double ax = std::fabs(x);
  std::string body =
      (ax < 1e-6 || ax >= 1e21) ? exp_form(digits, exp10, false) : plain_decimal(digits, exp10);
  return x < 0 ? "-" + body : body;
}

// encoding/json string escaping, HTML-safe as json.Marshal writes it.
void json_quote(std::string_view s, std::string& out) {
  static const char* kHex = "0123456789abcdef";
  out += '"';
  for (size_t k = 0; k < s.size(); ++k) {
    unsigned char c = static_cast<unsigned char>(s[k]);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '<':
      case '>':
      case '&':
        out += "\\u00";
        out += kHex[c >> 4];
        out += kHex[c & 15];
        break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out += kHex[c >> 4];
          out += kHex[c & 15];
        } else if (c == 0xE2 && k + 2 < s.size() && static_cast<unsigned char>(s[k + 1]) == 0x80 &&
                   (static_cast<unsigned char>(s[k + 2]) == 0xA8 ||
                    static_cast<unsigned char>(s[k + 2]) == 0xA9)) {
          out += static_cast<unsigned char>(s[k + 2]) == 0xA8 ? "\\u2028" : "\\u2029";
          k += 2;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}

void to_json(const Value& v, std::string& out) {
  switch (v.kind) {
    case Value::Kind::kNil:
      out += "null";
      return;
    case Value::Kind::kBool:
      out += v.b ? "true" : "false";
      return;
    case Value::Kind::kInt:
      out += std::to_string(v.i);
      return;
    case Value::Kind::kFloat:
      out += format_float_json(v.f);
      return;
    case Value::Kind::kString:
      json_quote(*v.s, out);
      return;
    case Value::Kind::kList: {
      out += '[';
      for (size_t k = 0; k < v.list->size(); ++k) {
        if (k) out += ',';
        to_json((*v.list)[k], out);
      }
      out += ']';
      return;
    }
    case Value::Kind::kMap: {
      out += '{';
      bool first = true;
      for (const Entry& e : *v.map) {
        // Struct fields left empty are omitted, as api.Message's omitempty tags do.
        if (v.strict && !truth(e.value) && e.json_name != "role" && e.json_name != "content")
          continue;
        if (!first) out += ',';
        first = false;
        json_quote(e.json_name, out);
        out += ':';
        to_json(e.value, out);
      }
      out += '}';
      return;
    }
  }
}

// What {{ value }} prints (fmt's %v, with Ollama's JSON String() methods for tools and
// arguments: maps print as JSON).
void print_value(const Value& v, std::string& out) {
  switch (v.kind) {
    case Value::Kind::kNil:
      out += "<no value>";
      return;
    case Value::Kind::kBool:
      out += v.b ? "true" : "false";
      return;
    case Value::Kind::kInt:
      out += std::to_string(v.i);
      return;
    case Value::Kind::kFloat:
      out += format_float_v(v.f);
      return;
    case Value::Kind::kString:
      out += *v.s;
      return;
    case Value::Kind::kList:
      if (v.print_as) {
        out += *v.print_as;
        return;
      }
      out += '[';
      for (size_t k = 0; k < v.list->size(); ++k) {
        if (k) out += ' ';
        const Value& e = (*v.list)[k];
        if (e.kind == Value::Kind::kNil)
          out += "<nil>";
        else
          print_value(e, out);
      }
      out += ']';
      return;
    case Value::Kind::kMap:
      to_json(v, out);
      return;
  }
}

// ---------------------------------------------------------------- JSON input

class JsonReader {
 public:
  JsonReader(std::string_view text, int max_depth) : t_(text), max_depth_(max_depth) {}

  Result<Value> read_document() {
    auto v = read(0);
    if (!v.ok()) return v;
    skip_ws();
    if (p_ != t_.size()) return fail("trailing characters");
    return v;
  }

 private:
  Status fail(const std::string& what) const {
    return Status::error(what + " at offset " + std::to_string(p_));
  }
  void skip_ws() {
    while (p_ < t_.size() && (t_[p_] == ' ' || t_[p_] == '\n' || t_[p_] == '\r' || t_[p_] == '\t'))
      ++p_;
  }
  bool eat(char c) {
    skip_ws();
    if (p_ < t_.size() && t_[p_] == c) {
      ++p_;
      return true;
    }
    return false;
  }
  static void put_utf8(uint32_t cp, std::string& out) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }
  bool hex4(uint32_t& cp) {
    if (p_ + 4 > t_.size()) return false;
    cp = 0;
    for (int k = 0; k < 4; ++k) {
      char c = t_[p_++];
      cp <<= 4;
      if (c >= '0' && c <= '9')
        cp |= c - '0';
      else if (c >= 'a' && c <= 'f')
        cp |= c - 'a' + 10;
      else if (c >= 'A' && c <= 'F')
        cp |= c - 'A' + 10;
      else
        return false;
    }
    return true;
  }
  Result<std::string> read_string() {
    ++p_;  // opening quote
    std::string out;
    while (true) {
      if (p_ >= t_.size()) return fail("unterminated string");
      char c = t_[p_++];
      if (c == '"') return out;
      if (static_cast<unsigned char>(c) < 0x20) return fail("control character in string");
      if (c != '\\') {
        out += c;
        continue;
      }
      if (p_ >= t_.size()) return fail("unterminated string");
      char e = t_[p_++];
      switch (e) {
        case '"':
          out += '"';
          break;
        case '\\':
          out += '\\';
          break;
        case '/':
          out += '/';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'u': {
          uint32_t cp = 0;
          if (!hex4(cp)) return fail("bad \\u escape");
          if (cp >= 0xD800 && cp < 0xDC00 && p_ + 1 < t_.size() && t_[p_] == '\\' &&
              t_[p_ + 1] == 'u') {
            p_ += 2;
            uint32_t lo = 0;
            if (!hex4(lo)) return fail("bad \\u escape");
            if (lo >= 0xDC00 && lo < 0xE000)
              cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            else
              cp = 0xFFFD;
          } else if (cp >= 0xD800 && cp < 0xE000) {
            cp = 0xFFFD;
          }
          put_utf8(cp, out);
          break;
        }
        default:
          return fail("bad escape");
      }
    }
  }
  Result<Value> read(int depth) {
    if (depth > max_depth_) return fail("JSON nested too deeply");
    skip_ws();
    if (p_ >= t_.size()) return fail("unexpected end of JSON");
    char c = t_[p_];
    if (c == '{') {
      ++p_;
      Map m;
      if (eat('}')) return Value::of_map(std::move(m), false);
      do {
        skip_ws();
        if (p_ >= t_.size() || t_[p_] != '"') return fail("expected a key");
        auto key = read_string();
        if (!key.ok()) return key.status();
        if (!eat(':')) return fail("expected ':'");
        auto v = read(depth + 1);
        if (!v.ok()) return v;
        m.push_back({*key, *key, std::move(*v)});
      } while (eat(','));
      if (!eat('}')) return fail("expected ',' or '}'");
      return Value::of_map(std::move(m), false);
    }
    if (c == '[') {
      ++p_;
      List l;
      if (eat(']')) return Value::of_list(std::move(l));
      do {
        auto v = read(depth + 1);
        if (!v.ok()) return v;
        l.push_back(std::move(*v));
      } while (eat(','));
      if (!eat(']')) return fail("expected ',' or ']'");
      return Value::of_list(std::move(l));
    }
    if (c == '"') {
      auto s = read_string();
      if (!s.ok()) return s.status();
      return Value::string(std::move(*s));
    }
    for (auto [word, value] : {std::pair<const char*, int>{"true", 1}, {"false", 0}, {"null", 2}}) {
      size_t n = std::strlen(word);
      if (t_.substr(p_, n) == word) {
        p_ += n;
        return value == 2 ? Value::nil() : Value::boolean(value == 1);
      }
    }
    size_t start = p_;
    while (p_ < t_.size() && std::strchr("+-0123456789.eE", t_[p_]) != nullptr) ++p_;
    if (start == p_) return fail("unexpected character");
    double d = 0;
    auto r = std::from_chars(t_.data() + start, t_.data() + p_, d);
    if (r.ec != std::errc() || r.ptr != t_.data() + p_) {
      p_ = start;
      return fail("bad number");
    }
    // Go decodes JSON numbers into interface values as float64.
    return Value::floating(d);
  }

  std::string_view t_;
  size_t p_ = 0;
  int max_depth_;
};

// ---------------------------------------------------------------- tree

struct Pipeline;

struct Arg {
  enum class Kind { kDot, kField, kVariable, kFunc, kString, kInt, kFloat, kBool, kNil, kPipe };
  Kind kind = Kind::kNil;
  std::string name;                 // variable ("$x", "$") or function name, string value
  std::vector<std::string> fields;  // field chain after the term (.A.B)
  int64_t i = 0;
  double f = 0;
  bool b = false;
  std::shared_ptr<Pipeline> pipe;
  size_t pos = 0;
};

struct Command {
  std::vector<Arg> args;
  size_t pos = 0;
};

struct Pipeline {
  std::vector<std::string> decl;  // declared or assigned variables
  bool assign = false;            // $x = ... rather than $x := ...
  std::vector<Command> cmds;
  size_t pos = 0;
};

struct Node {
  enum class Kind { kText, kAction, kIf, kRange, kWith, kBreak, kContinue };
  Kind kind = Kind::kText;
  std::string text;
  std::shared_ptr<Pipeline> pipe;
  std::vector<Node> list, else_list;
  size_t pos = 0;
};

struct Tree {
  std::string source;
  GoTemplate::Limits limits;
  std::vector<Node> root;
  std::vector<std::string> vars;  // lower-cased identifiers, as Ollama's Template.Vars
};

std::string where(const std::string& source, size_t pos) {
  size_t line = 1, col = 1;
  for (size_t k = 0; k < pos && k < source.size(); ++k) {
    if (source[k] == '\n') {
      ++line;
      col = 1;
    } else {
      ++col;
    }
  }
  return "go template " + std::to_string(line) + ":" + std::to_string(col) + ": ";
}

// ---------------------------------------------------------------- lexer

struct Token {
  enum class Kind {
    kIdent,     // keyword or function name
    kField,     // .Name
    kDot,       // .
    kVariable,  // $ or $name
    kString,    // decoded "..." or `...`
    kChar,      // 'x' (its code point in i)
    kNumber,
    kBool,
    kNil,
    kLParen,
    kRParen,
    kPipe,
    kDeclare,  // :=
    kAssign,   // =
    kComma,
  };
  Kind kind;
  std::string text;
  size_t pos;
  bool spaced;  // whitespace before it (a field right after a term continues its chain)
  int64_t i = 0;
  double f = 0;
  bool is_float = false;
};

struct Item {
  bool is_action = false;
  std::string text;  // text items
  std::vector<Token> tokens;
  size_t pos = 0;  // of "{{" or of the text
  size_t end = 0;  // just past "}}"
};

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
bool is_alpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
         static_cast<unsigned char>(c) >= 0x80;
}
bool is_digit(char c) { return c >= '0' && c <= '9'; }

class Lexer {
 public:
  explicit Lexer(const std::string& src) : s_(src) {}

  Status run(std::vector<Item>& items) {
    size_t p = 0;
    bool trim_next = false;
    while (p < s_.size()) {
      size_t open = s_.find("{{", p);
      std::string text = s_.substr(p, open == std::string::npos ? std::string::npos : open - p);
      if (trim_next) {
        size_t k = 0;
        while (k < text.size() && is_space(text[k])) ++k;
        text.erase(0, k);
      }
      // "{{- " (a dash then a space) trims the text before the action.
      bool trim_left = open != std::string::npos && open + 3 < s_.size() && s_[open + 2] == '-' &&
                       is_space(s_[open + 3]);
      if (trim_left) {
        while (!text.empty() && is_space(text.back())) text.pop_back();
      }
      if (!text.empty()) {
        Item t;
        t.text = std::move(text);
        t.pos = p;
        items.push_back(std::move(t));
      }
      if (open == std::string::npos) break;
      Item a;
      a.is_action = true;
      a.pos = open;
      size_t q = open + 2 + (trim_left ? 2 : 0);
      auto st = lex_action(q, a, trim_next);
      if (!st.ok()) return st;
      p = a.end;
      // A comment-only action leaves no item, like Go's parser.
      if (!a.tokens.empty() || !is_comment_) items.push_back(std::move(a));
    }
    return {};
  }

 private:
  Status err(size_t pos, const std::string& msg) const {
    return Status::error(where(s_, pos) + msg);
  }

  // Is there a right delimiter at q? Sets *len and *trim.
  bool right_delim(size_t q, bool spaced, size_t* len, bool* trim) const {
    if (spaced && s_.compare(q, 3, "-}}") == 0) {
      *len = 3;
      *trim = true;
      return true;
    }
    if (s_.compare(q, 2, "}}") == 0) {
      *len = 2;
      *trim = false;
      return true;
    }
    return false;
  }

  Status lex_action(size_t q, Item& a, bool& trim_next) {
    is_comment_ = false;
    size_t len = 0;
    bool trim = false;
    if (s_.compare(q, 2, "/*") == 0) {
      size_t close = s_.find("*/", q + 2);
      if (close == std::string::npos) return err(a.pos, "unclosed comment");
      size_t r = close + 2;
      bool spaced = false;
      if (r < s_.size() && is_space(s_[r])) {
        while (r < s_.size() && is_space(s_[r])) ++r;
        spaced = true;
      }
      if (!right_delim(r, spaced, &len, &trim))
        return err(close, "comment ends before closing delimiter");
      if (spaced && !trim) return err(close, "comment ends before closing delimiter");
      is_comment_ = true;
      a.end = r + len;
      trim_next = trim;
      return {};
    }
    while (true) {
      size_t start = q;
      while (q < s_.size() && is_space(s_[q])) ++q;
      bool spaced = q > start;
      if (q >= s_.size()) return err(a.pos, "unclosed action");
      if (right_delim(q, spaced, &len, &trim)) {
        a.end = q + len;
        trim_next = trim;
        return {};
      }
      Token t{Token::Kind::kIdent, "", q, spaced};
      char c = s_[q];
      if (c == '"' || c == '`' || c == '\'') {
        auto st = lex_quoted(q, t);
        if (!st.ok()) return st;
      } else if (c == '(') {
        t.kind = Token::Kind::kLParen;
        ++q;
      } else if (c == ')') {
        t.kind = Token::Kind::kRParen;
        ++q;
      } else if (c == '|') {
        t.kind = Token::Kind::kPipe;
        ++q;
      } else if (c == ',') {
        t.kind = Token::Kind::kComma;
        ++q;
      } else if (c == ':') {
        if (q + 1 >= s_.size() || s_[q + 1] != '=') return err(q, "expected :=");
        t.kind = Token::Kind::kDeclare;
        q += 2;
      } else if (c == '=') {
        t.kind = Token::Kind::kAssign;
        ++q;
      } else if (c == '$') {
        size_t e = q + 1;
        while (e < s_.size() && (is_alpha(s_[e]) || is_digit(s_[e]))) ++e;
        t.kind = Token::Kind::kVariable;
        t.text = s_.substr(q, e - q);
        q = e;
      } else if (c == '.' && !(q + 1 < s_.size() && is_digit(s_[q + 1]))) {
        size_t e = q + 1;
        while (e < s_.size() && (is_alpha(s_[e]) || is_digit(s_[e]))) ++e;
        if (e == q + 1) {
          t.kind = Token::Kind::kDot;
        } else {
          t.kind = Token::Kind::kField;
          t.text = s_.substr(q + 1, e - q - 1);
        }
        q = e;
      } else if (is_digit(c) || c == '-' || c == '+' || c == '.') {
        auto st = lex_number(q, t);
        if (!st.ok()) return st;
      } else if (is_alpha(c)) {
        size_t e = q;
        while (e < s_.size() && (is_alpha(s_[e]) || is_digit(s_[e]))) ++e;
        t.text = s_.substr(q, e - q);
        if (t.text == "true" || t.text == "false") {
          t.kind = Token::Kind::kBool;
          t.i = t.text == "true";
        } else if (t.text == "nil") {
          t.kind = Token::Kind::kNil;
        }
        q = e;
      } else {
        return err(q, std::string("unrecognized character in action: '") + c + "'");
      }
      a.tokens.push_back(std::move(t));
      if (q > s_.size()) return err(a.pos, "unclosed action");
      // Only an operator or space may follow a term; "1x" or "\"a\"b" are errors in Go.
    }
  }

  Status lex_quoted(size_t& q, Token& t) {
    char quote = s_[q];
    size_t start = q++;
    std::string out;
    if (quote == '`') {
      size_t close = s_.find('`', q);
      if (close == std::string::npos) return err(start, "unterminated raw quoted string");
      out = s_.substr(q, close - q);
      out.erase(std::remove(out.begin(), out.end(), '\r'), out.end());
      q = close + 1;
      t.kind = Token::Kind::kString;
      t.text = std::move(out);
      return {};
    }
    while (true) {
      if (q >= s_.size() || s_[q] == '\n') {
        return err(start,
                   quote == '"' ? "unterminated quoted string" : "unterminated character constant");
      }
      char c = s_[q++];
      if (c == quote) break;
      if (c != '\\') {
        out += c;
        continue;
      }
      if (q >= s_.size()) return err(start, "unterminated quoted string");
      char e = s_[q++];
      switch (e) {
        case 'n':
          out += '\n';
          break;
        case 't':
          out += '\t';
          break;
        case 'r':
          out += '\r';
          break;
        case 'a':
          out += '\a';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'v':
          out += '\v';
          break;
        case '\\':
          out += '\\';
          break;
        case '"':
          out += '"';
          break;
        case '\'':
          out += '\'';
          break;
        case 'x': {
          if (q + 2 > s_.size()) return err(q, "bad \\x escape");
          int v = 0;
          auto r = std::from_chars(s_.data() + q, s_.data() + q + 2, v, 16);
          if (r.ptr != s_.data() + q + 2) return err(q, "bad \\x escape");
          out += static_cast<char>(v);
          q += 2;
          break;
        }
        case 'u':
        case 'U': {
          size_t n = e == 'u' ? 4 : 8;
          if (q + n > s_.size()) return err(q, "bad unicode escape");
          uint32_t v = 0;
          auto r = std::from_chars(s_.data() + q, s_.data() + q + n, v, 16);
          if (r.ptr != s_.data() + q + n || v > 0x10FFFF || (v >= 0xD800 && v < 0xE000))
            return err(q, "bad unicode escape");
          std::string enc;
          if (v < 0x80) {
            enc += static_cast<char>(v);
          } else if (v < 0x800) {
            enc += static_cast<char>(0xC0 | (v >> 6));
            enc += static_cast<char>(0x80 | (v & 0x3F));
          } else if (v < 0x10000) {
            enc += static_cast<char>(0xE0 | (v >> 12));
            enc += static_cast<char>(0x80 | ((v >> 6) & 0x3F));
            enc += static_cast<char>(0x80 | (v & 0x3F));
          } else {
            enc += static_cast<char>(0xF0 | (v >> 18));
            enc += static_cast<char>(0x80 | ((v >> 12) & 0x3F));
            enc += static_cast<char>(0x80 | ((v >> 6) & 0x3F));
            enc += static_cast<char>(0x80 | (v & 0x3F));
          }
          out += enc;
          q += n;
          break;
        }
        default:
          return err(q - 2, std::string("unknown escape sequence: \\") + e);
      }
    }
    if (quote == '"') {
      t.kind = Token::Kind::kString;
      t.text = std::move(out);
      return {};
    }
    // Character constant: exactly one (UTF-8) character, valued as its code point.
    if (out.empty()) return err(start, "empty character constant");
    unsigned char c0 = static_cast<unsigned char>(out[0]);
    size_t n = c0 < 0x80 ? 1 : c0 < 0xE0 ? 2 : c0 < 0xF0 ? 3 : 4;
    if (out.size() != n) return err(start, "bad character constant");
    uint32_t cp = n == 1 ? c0 : n == 2 ? c0 & 0x1F : n == 3 ? c0 & 0x0F : c0 & 0x07;
    for (size_t k = 1; k < n; ++k) cp = (cp << 6) | (static_cast<unsigned char>(out[k]) & 0x3F);
    t.kind = Token::Kind::kChar;
    t.i = cp;
    return {};
  }

  Status lex_number(size_t& q, Token& t) {
    size_t start = q;
    size_t e = q;
    if (s_[e] == '+' || s_[e] == '-') ++e;
    while (e < s_.size() &&
           (is_alpha(s_[e]) || is_digit(s_[e]) || s_[e] == '.' ||
            ((s_[e] == '+' || s_[e] == '-') &&
             (s_[e - 1] == 'e' || s_[e - 1] == 'E' || s_[e - 1] == 'p' || s_[e - 1] == 'P'))))
      ++e;
    std::string word = s_.substr(start, e - start);
    q = e;
    std::string digits;
    for (char c : word)
      if (c != '_') digits += c;
    bool neg = !digits.empty() && digits[0] == '-';
    std::string body =
        (!digits.empty() && (digits[0] == '-' || digits[0] == '+')) ? digits.substr(1) : digits;
    t.kind = Token::Kind::kNumber;
    t.text = word;
    auto bad = [&] { return err(start, "bad number syntax: " + word); };
    if (body.empty()) return bad();
    int base = 10;
    std::string_view num = body;
    if (body.size() > 2 && body[0] == '0' && (body[1] == 'x' || body[1] == 'X')) {
      base = 16;
    } else if (body.size() > 2 && body[0] == '0' && (body[1] == 'b' || body[1] == 'B')) {
      base = 2;
    } else if (body.size() > 2 && body[0] == '0' && (body[1] == 'o' || body[1] == 'O')) {
      base = 8;
    }
    if (base != 10) {
      num.remove_prefix(2);
      uint64_t v = 0;
      auto r = std::from_chars(num.data(), num.data() + num.size(), v, base);
      if (r.ec != std::errc() || r.ptr != num.data() + num.size() || v > INT64_MAX) return bad();
      t.i = neg ? -static_cast<int64_t>(v) : static_cast<int64_t>(v);
      t.f = static_cast<double>(t.i);
      return {};
    }
    bool is_float = body.find_first_of(".eE") != std::string::npos;
    if (!is_float) {
      int64_t v = 0;
      auto r =
          std::from_chars(digits.data() + (digits[0] == '+'), digits.data() + digits.size(), v);
      if (r.ec == std::errc() && r.ptr == digits.data() + digits.size()) {
        t.i = v;
        t.f = static_cast<double>(v);
        return {};
      }
      // Too large for an int: Go keeps it as a float constant.
    }
    double d = 0;
    auto r = std::from_chars(body.data(), body.data() + body.size(), d);
    if (r.ec != std::errc() || r.ptr != body.data() + body.size()) return bad();
    t.f = neg ? -d : d;
    t.is_float = true;
    return {};
  }

  const std::string& s_;
  bool is_comment_ = false;
};

// ---------------------------------------------------------------- parser

const char* const kFunctions[] = {"and",    "or",    "not",     "len", "index", "slice",
                                  "printf", "print", "println", "eq",  "ne",    "lt",
                                  "le",     "gt",    "ge",      "json"};

bool is_function(const std::string& name) {
  for (const char* f : kFunctions)
    if (name == f) return true;
  return false;
}

class Parser {
 public:
  Parser(Tree& tree, std::vector<Item>& items) : tree_(tree), items_(items) {}

  Status run() {
    vars_.push_back({"$"});
    Item* term = nullptr;
    auto st = parse_list(tree_.root, &term);
    if (!st.ok()) return st;
    if (term != nullptr) {
      return err(term->tokens[0].pos, "unexpected {{" + term->tokens[0].text + "}}");
    }
    return {};
  }

 private:
  Status err(size_t pos, const std::string& msg) const {
    return Status::error(where(tree_.source, pos) + msg);
  }

  // Parses nodes until {{end}} / {{else ...}} (returned in *term, left for the caller) or the end
  // of input (*term == nullptr).
  Status parse_list(std::vector<Node>& out, Item** term) {
    *term = nullptr;
    while (next_ < items_.size()) {
      Item& it = items_[next_];
      if (!it.is_action) {
        Node n;
        n.kind = Node::Kind::kText;
        n.text = it.text;
        n.pos = it.pos;
        out.push_back(std::move(n));
        ++next_;
        continue;
      }
      if (it.tokens.empty()) return err(it.pos, "missing value for command");
      const Token& t0 = it.tokens[0];
      if (t0.kind == Token::Kind::kIdent && (t0.text == "end" || t0.text == "else")) {
        *term = &it;
        ++next_;
        return {};
      }
      ++next_;
      if (t0.kind == Token::Kind::kIdent &&
          (t0.text == "if" || t0.text == "range" || t0.text == "with")) {
        Node n;
        auto st = parse_control(it, 0, n);
        if (!st.ok()) return st;
        out.push_back(std::move(n));
        continue;
      }
      if (t0.kind == Token::Kind::kIdent && (t0.text == "break" || t0.text == "continue")) {
        if (range_depth_ == 0) return err(t0.pos, "{{" + t0.text + "}} outside {{range}}");
        if (it.tokens.size() > 1)
          return err(it.tokens[1].pos,
                     "unexpected " + describe(it.tokens[1]) + " in {{" + t0.text + "}}");
        Node n;
        n.kind = t0.text == "break" ? Node::Kind::kBreak : Node::Kind::kContinue;
        n.pos = t0.pos;
        out.push_back(std::move(n));
        continue;
      }
      if (t0.kind == Token::Kind::kIdent &&
          (t0.text == "define" || t0.text == "template" || t0.text == "block")) {
        return err(t0.pos, "{{" + t0.text + "}} is not supported");
      }
      Node n;
      n.kind = Node::Kind::kAction;
      n.pos = it.pos;
      size_t k = 0;
      auto pipe = parse_pipeline(it, k, "command", /*max_decl=*/1);
      if (!pipe.ok()) return pipe.status();
      n.pipe = std::move(*pipe);
      out.push_back(std::move(n));
    }
    return {};
  }

  // {{if|range|with pipeline}} list [{{else [if|with ...]}} list] {{end}}; `first` is the index of
  // the keyword token in `it` (1 for "else if").
  Status parse_control(Item& it, size_t first, Node& n) {
    const Token& kw = it.tokens[first];
    if (++nesting_ > tree_.limits.max_nesting) return err(kw.pos, "template nested too deeply");
    n.kind = kw.text == "if"      ? Node::Kind::kIf
             : kw.text == "range" ? Node::Kind::kRange
                                  : Node::Kind::kWith;
    n.pos = kw.pos;
    size_t k = first + 1;
    vars_.push_back({});
    auto pipe = parse_pipeline(it, k, kw.text, n.kind == Node::Kind::kRange ? 2 : 1);
    if (!pipe.ok()) return pipe.status();
    n.pipe = std::move(*pipe);
    if (n.kind == Node::Kind::kRange) ++range_depth_;
    Item* term = nullptr;
    vars_.push_back({});
    auto st = parse_list(n.list, &term);
    vars_.pop_back();
    if (n.kind == Node::Kind::kRange) --range_depth_;
    if (!st.ok()) return st;
    if (term == nullptr) return err(kw.pos, "unexpected EOF: {{" + kw.text + "}} has no {{end}}");
    if (term->tokens[0].text == "else") {
      if (term->tokens.size() > 1) {
        const Token& t1 = term->tokens[1];
        // As in Go: "else if" continues an if, "else with" a with, nothing else.
        bool chain =
            t1.kind == Token::Kind::kIdent && ((t1.text == "if" && n.kind == Node::Kind::kIf) ||
                                               (t1.text == "with" && n.kind == Node::Kind::kWith));
        if (!chain) return err(t1.pos, "unexpected " + describe(t1) + " in {{else}}");
        // {{else if x}} is {{else}}{{if x}}...{{end}}{{end}} sharing one {{end}}.
        Node inner;
        st = parse_control(*term, 1, inner);
        if (!st.ok()) return st;
        n.else_list.push_back(std::move(inner));
      } else {
        vars_.push_back({});
        Item* term2 = nullptr;
        st = parse_list(n.else_list, &term2);
        vars_.pop_back();
        if (!st.ok()) return st;
        if (term2 == nullptr)
          return err(kw.pos, "unexpected EOF: {{" + kw.text + "}} has no {{end}}");
        if (term2->tokens[0].text != "end")
          return err(term2->tokens[0].pos, "expected end; found {{else}}");
        if (term2->tokens.size() > 1)
          return err(term2->tokens[1].pos,
                     "unexpected " + describe(term2->tokens[1]) + " in {{end}}");
      }
    } else if (term->tokens.size() > 1) {
      return err(term->tokens[1].pos, "unexpected " + describe(term->tokens[1]) + " in {{end}}");
    }
    vars_.pop_back();
    --nesting_;
    return {};
  }

  static std::string describe(const Token& t) {
    switch (t.kind) {
      case Token::Kind::kLParen:
        return "\"(\"";
      case Token::Kind::kRParen:
        return "\")\"";
      case Token::Kind::kPipe:
        return "\"|\"";
      case Token::Kind::kComma:
        return "\",\"";
      case Token::Kind::kDeclare:
        return "\":=\"";
      case Token::Kind::kAssign:
        return "\"=\"";
      case Token::Kind::kDot:
        return "\".\"";
      case Token::Kind::kField:
        return "\"." + t.text + "\"";
      case Token::Kind::kString:
        return "quoted string";
      default:
        return "\"" + t.text + "\"";
    }
  }

  bool declared(const std::string& name) const {
    for (const auto& scope : vars_)
      for (const auto& v : scope)
        if (v == name) return true;
    return false;
  }

  void note_var(const std::string& name) {
    std::string lower;
    for (char c : name) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (std::find(tree_.vars.begin(), tree_.vars.end(), lower) == tree_.vars.end())
      tree_.vars.push_back(lower);
  }

  // pipeline: [decl] command ('|' command)*, ending at the end of the action (or ')' when
  // `in_parens`).
  Result<std::shared_ptr<Pipeline>> parse_pipeline(Item& it, size_t& k, const std::string& ctx,
                                                   size_t max_decl, bool in_parens = false) {
    auto& toks = it.tokens;
    auto pipe = std::make_shared<Pipeline>();
    pipe->pos = k < toks.size() ? toks[k].pos : it.pos;
    // Declarations: $x :=, $x =, $i, $e :=
    if (k < toks.size() && toks[k].kind == Token::Kind::kVariable && k + 1 < toks.size()) {
      const Token& next = toks[k + 1];
      if (next.kind == Token::Kind::kDeclare || next.kind == Token::Kind::kAssign) {
        pipe->decl.push_back(toks[k].text);
        pipe->assign = next.kind == Token::Kind::kAssign;
        if (pipe->assign && !declared(toks[k].text))
          return err(toks[k].pos, "undefined variable \"" + toks[k].text + "\"");
        k += 2;
      } else if (next.kind == Token::Kind::kComma && max_decl >= 2) {
        if (k + 3 < toks.size() && toks[k + 2].kind == Token::Kind::kVariable &&
            (toks[k + 3].kind == Token::Kind::kDeclare ||
             toks[k + 3].kind == Token::Kind::kAssign)) {
          pipe->decl = {toks[k].text, toks[k + 2].text};
          pipe->assign = toks[k + 3].kind == Token::Kind::kAssign;
          if (pipe->assign)
            for (auto& v : pipe->decl)
              if (!declared(v)) return err(toks[k].pos, "undefined variable \"" + v + "\"");
          k += 4;
        } else {
          return err(next.pos, "too many declarations in " + ctx);
        }
      } else if (next.kind == Token::Kind::kComma) {
        return err(next.pos, "too many declarations in " + ctx);
      }
    }
    while (true) {
      Command cmd;
      cmd.pos = k < toks.size() ? toks[k].pos : it.pos;
      while (k < toks.size() && toks[k].kind != Token::Kind::kPipe &&
             !(in_parens && toks[k].kind == Token::Kind::kRParen)) {
        auto arg = parse_operand(it, k);
        if (!arg.ok()) return arg.status();
        cmd.args.push_back(std::move(*arg));
      }
      if (cmd.args.empty()) {
        if (pipe->cmds.empty() && k >= toks.size() && !in_parens)
          return err(it.pos, "missing value for " + ctx);
        return err(k < toks.size() ? toks[k].pos : it.pos, "missing value for command");
      }
      pipe->cmds.push_back(std::move(cmd));
      if (k < toks.size() && toks[k].kind == Token::Kind::kPipe) {
        ++k;
        if (k >= toks.size() || (in_parens && toks[k].kind == Token::Kind::kRParen))
          return err(toks[k - 1].pos, "missing command after |");
        continue;
      }
      break;
    }
    for (const auto& v : pipe->decl) {
      note_var(v.substr(1));
      if (!pipe->assign) vars_.back().push_back(v);
    }
    return pipe;
  }

  Result<Arg> parse_operand(Item& it, size_t& k) {
    auto& toks = it.tokens;
    const Token& t = toks[k];
    Arg a;
    a.pos = t.pos;
    switch (t.kind) {
      case Token::Kind::kDot:
        a.kind = Arg::Kind::kDot;
        ++k;
        break;
      case Token::Kind::kField:
        a.kind = Arg::Kind::kField;
        while (k < toks.size() && toks[k].kind == Token::Kind::kField &&
               (a.fields.empty() || !toks[k].spaced)) {
          a.fields.push_back(toks[k].text);
          note_var(toks[k].text);
          ++k;
        }
        return a;
      case Token::Kind::kVariable:
        if (!declared(t.text)) return err(t.pos, "undefined variable \"" + t.text + "\"");
        a.kind = Arg::Kind::kVariable;
        a.name = t.text;
        note_var(t.text == "$" ? "$" : t.text.substr(1));
        ++k;
        while (k < toks.size() && toks[k].kind == Token::Kind::kField && !toks[k].spaced) {
          a.fields.push_back(toks[k].text);
          note_var(toks[k].text);
          ++k;
        }
        return a;
      case Token::Kind::kIdent:
        if (!is_function(t.text)) {
          static const char* kKeywords[] = {"if",    "else",     "end",    "range",    "with",
                                            "break", "continue", "define", "template", "block"};
          for (const char* kw : kKeywords)
            if (t.text == kw) return err(t.pos, "unexpected keyword \"" + t.text + "\" in operand");
          return err(t.pos, "function \"" + t.text + "\" not defined");
        }
        a.kind = Arg::Kind::kFunc;
        a.name = t.text;
        ++k;
        break;
      case Token::Kind::kString:
        a.kind = Arg::Kind::kString;
        a.name = t.text;
        ++k;
        break;
      case Token::Kind::kChar:
        a.kind = Arg::Kind::kInt;
        a.i = t.i;
        ++k;
        break;
      case Token::Kind::kNumber:
        a.kind = t.is_float ? Arg::Kind::kFloat : Arg::Kind::kInt;
        a.i = t.i;
        a.f = t.f;
        ++k;
        break;
      case Token::Kind::kBool:
        a.kind = Arg::Kind::kBool;
        a.b = t.i != 0;
        ++k;
        break;
      case Token::Kind::kNil:
        a.kind = Arg::Kind::kNil;
        ++k;
        break;
      case Token::Kind::kLParen: {
        if (++nesting_ > tree_.limits.max_nesting) return err(t.pos, "template nested too deeply");
        ++k;
        auto pipe = parse_pipeline(it, k, "parenthesized pipeline", 1, /*in_parens=*/true);
        if (!pipe.ok()) return pipe.status();
        if (k >= toks.size() || toks[k].kind != Token::Kind::kRParen)
          return err(t.pos, "unclosed left paren");
        ++k;
        --nesting_;
        a.kind = Arg::Kind::kPipe;
        a.pipe = std::move(*pipe);
        break;
      }
      default:
        return err(t.pos, "unexpected " + describe(t) + " in operand");
    }
    // A field chain right after a term: (pipeline).Field, "x".Field (an error when evaluated).
    while (k < toks.size() && toks[k].kind == Token::Kind::kField && !toks[k].spaced) {
      if (a.kind != Arg::Kind::kPipe && a.kind != Arg::Kind::kDot)
        return err(toks[k].pos, "unexpected ." + toks[k].text + " after " + describe(t));
      a.fields.push_back(toks[k].text);
      ++k;
    }
    if (a.kind == Arg::Kind::kDot && !a.fields.empty()) a.kind = Arg::Kind::kField;
    // Go requires a space, delimiter or operator after a term ("1(" or "\"a\"$x" are errors).
    if (k < toks.size() && !toks[k].spaced && toks[k].kind != Token::Kind::kRParen &&
        toks[k].kind != Token::Kind::kPipe && toks[k].kind != Token::Kind::kComma &&
        toks[k].kind != Token::Kind::kDeclare && toks[k].kind != Token::Kind::kAssign) {
      return err(toks[k].pos, "unexpected " + describe(toks[k]) + " after " + describe(t));
    }
    return a;
  }

  Tree& tree_;
  std::vector<Item>& items_;
  size_t next_ = 0;
  int nesting_ = 0;
  int range_depth_ = 0;
  std::vector<std::vector<std::string>> vars_;
};

// ---------------------------------------------------------------- evaluator

enum class Flow { kNormal, kBreak, kContinue };

// What one render may spend, shared by the several executions of an Ollama legacy render: nodes
// executed and loop iterations (steps), and bytes of strings built or compared (work), so that a
// loop re-copying a large string is stopped as surely as a loop doing nothing.
struct Budget {
  int64_t steps = 0;
  uint64_t work_bytes = 0;
};

class Exec {
 public:
  Exec(const Tree& tree, const Value& root, Budget& budget) : tree_(tree), budget_(budget) {
    vars_.push_back({"$", root});
  }

  Status run(const std::vector<Node>& nodes, const Value& dot) {
    Flow flow = Flow::kNormal;
    return walk_list(nodes, dot, flow);
  }
  std::string take() { return std::move(out_); }

 private:
  Status err(size_t pos, const std::string& msg) const {
    return Status::error(where(tree_.source, pos) + "executing: " + msg);
  }
  Status step(size_t pos) {
    if (++budget_.steps > tree_.limits.max_steps)
      return err(pos, "template exceeded its step limit (" +
                          std::to_string(tree_.limits.max_steps) + "); does it loop?");
    return {};
  }
  Status charge(size_t bytes, size_t pos) {
    budget_.work_bytes += bytes;
    if (budget_.work_bytes > tree_.limits.max_work_bytes)
      return err(pos, "template built or compared more than " +
                          std::to_string(tree_.limits.max_work_bytes) + " bytes of strings");
    return {};
  }
  Status emit(const std::string& s, size_t pos) {
    if (out_.size() + s.size() > tree_.limits.max_output_bytes)
      return err(pos, "output exceeds " + std::to_string(tree_.limits.max_output_bytes) + " bytes");
    out_ += s;
    return {};
  }
  Status check_size(size_t n, size_t pos) {
    if (n > tree_.limits.max_output_bytes)
      return err(pos, "string exceeds " + std::to_string(tree_.limits.max_output_bytes) + " bytes");
    return charge(n, pos);
  }

  Status walk_list(const std::vector<Node>& nodes, const Value& dot, Flow& flow) {
    size_t mark = vars_.size();
    for (const Node& n : nodes) {
      auto st = walk(n, dot, flow);
      if (!st.ok()) return st;
      if (flow != Flow::kNormal) break;
    }
    vars_.resize(mark);
    return {};
  }

  Status walk(const Node& n, const Value& dot, Flow& flow) {
    MINNOW_RETURN_IF_ERROR(step(n.pos));
    switch (n.kind) {
      case Node::Kind::kText:
        return emit(n.text, n.pos);
      case Node::Kind::kBreak:
        flow = Flow::kBreak;
        return {};
      case Node::Kind::kContinue:
        flow = Flow::kContinue;
        return {};
      case Node::Kind::kAction: {
        auto v = eval_pipeline(*n.pipe, dot);
        if (!v.ok()) return v.status();
        if (!n.pipe->decl.empty()) return {};  // declarations print nothing
        std::string s;
        print_value(*v, s);
        MINNOW_RETURN_IF_ERROR(charge(s.size(), n.pos));
        return emit(s, n.pos);
      }
      case Node::Kind::kIf:
      case Node::Kind::kWith: {
        size_t mark = vars_.size();
        auto v = eval_pipeline(*n.pipe, dot);
        if (!v.ok()) return v.status();
        Status st;
        if (truth(*v))
          st = walk_list(n.list, n.kind == Node::Kind::kWith ? *v : dot, flow);
        else
          st = walk_list(n.else_list, dot, flow);
        vars_.resize(mark);
        return st;
      }
      case Node::Kind::kRange:
        return walk_range(n, dot, flow);
    }
    return {};
  }

  Status walk_range(const Node& n, const Value& dot, Flow& outer_flow) {
    size_t mark = vars_.size();
    // The range's own pipeline declares the loop variables, not the pipeline's value.
    Pipeline bare = *n.pipe;
    bare.decl.clear();
    auto v = eval_pipeline(bare, dot);
    if (!v.ok()) return v.status();
    const auto& decl = n.pipe->decl;
    auto body = [&](const Value& key, const Value& elem) -> Result<bool> {
      MINNOW_RETURN_IF_ERROR(step(n.pos));
      size_t m = vars_.size();
      if (n.pipe->assign) {
        if (decl.size() == 1) {
          set_var(decl[0], elem);
        } else if (decl.size() == 2) {
          set_var(decl[0], key);
          set_var(decl[1], elem);
        }
      } else if (decl.size() == 1) {
        vars_.push_back({decl[0], elem});
      } else if (decl.size() == 2) {
        vars_.push_back({decl[0], key});
        vars_.push_back({decl[1], elem});
      }
      Flow flow = Flow::kNormal;
      auto st = walk_list(n.list, elem, flow);
      vars_.resize(m);
      if (!st.ok()) return st;
      return flow != Flow::kBreak;
    };
    bool any = false;
    Status st;
    switch (v->kind) {
      case Value::Kind::kList:
        for (size_t k = 0; k < v->list->size(); ++k) {
          any = true;
          auto go = body(Value::integer(static_cast<int64_t>(k)), (*v->list)[k]);
          if (!go.ok()) return go.status();
          if (!*go) break;
        }
        break;
      case Value::Kind::kMap: {
        // Go ranges over a map in sorted key order.
        std::vector<const Entry*> sorted;
        for (const Entry& e : *v->map) sorted.push_back(&e);
        std::stable_sort(sorted.begin(), sorted.end(),
                         [](const Entry* a, const Entry* b) { return a->name < b->name; });
        for (const Entry* e : sorted) {
          any = true;
          auto go = body(Value::string(e->name), e->value);
          if (!go.ok()) return go.status();
          if (!*go) break;
        }
        break;
      }
      case Value::Kind::kInt:
        if (decl.size() > 1) return err(n.pos, "can't use two variables when ranging over int");
        for (int64_t k = 0; k < v->i; ++k) {
          any = true;
          auto go = body(Value::integer(k), Value::integer(k));
          if (!go.ok()) return go.status();
          if (!*go) break;
        }
        break;
      case Value::Kind::kNil:
        break;
      default:
        return err(n.pos, std::string("range can't iterate over ") + type_name(*v));
    }
    if (!any) st = walk_list(n.else_list, dot, outer_flow);
    vars_.resize(mark);
    return st;
  }

  void set_var(const std::string& name, const Value& v) {
    for (size_t k = vars_.size(); k-- > 0;) {
      if (vars_[k].first == name) {
        vars_[k].second = v;
        return;
      }
    }
  }

  Result<Value> eval_pipeline(const Pipeline& p, const Value& dot) {
    Value v;
    bool has = false;
    for (const Command& c : p.cmds) {
      auto r = eval_command(c, dot, has ? &v : nullptr);
      if (!r.ok()) return r;
      v = std::move(*r);
      has = true;
    }
    if (p.decl.size() == 1) {
      if (p.assign)
        set_var(p.decl[0], v);
      else
        vars_.push_back({p.decl[0], v});
    }
    return v;
  }

  Result<Value> eval_command(const Command& c, const Value& dot, const Value* piped) {
    MINNOW_RETURN_IF_ERROR(step(c.pos));
    const Arg& a0 = c.args[0];
    if (a0.kind == Arg::Kind::kFunc) return call(a0, c.args, 1, dot, piped);
    if (c.args.size() > 1 || piped != nullptr) {
      size_t pos = c.args.size() > 1 ? c.args[1].pos : a0.pos;
      return err(pos, "can't give argument to non-function " + arg_text(a0));
    }
    if (a0.kind == Arg::Kind::kNil) return err(a0.pos, "nil is not a command");
    return eval_arg(a0, dot);
  }

  static std::string arg_text(const Arg& a) {
    std::string s;
    switch (a.kind) {
      case Arg::Kind::kDot:
        s = ".";
        break;
      case Arg::Kind::kVariable:
        s = a.name;
        break;
      case Arg::Kind::kString:
        s = "\"" + a.name + "\"";
        break;
      case Arg::Kind::kInt:
        s = std::to_string(a.i);
        break;
      case Arg::Kind::kFloat:
        s = format_float_v(a.f);
        break;
      case Arg::Kind::kBool:
        s = a.b ? "true" : "false";
        break;
      case Arg::Kind::kNil:
        s = "nil";
        break;
      case Arg::Kind::kPipe:
        s = "(...)";
        break;
      default:
        break;
    }
    for (const auto& f : a.fields) s += "." + f;
    return s;
  }

  Result<Value> field(const Value& v, const std::string& name, size_t pos) {
    switch (v.kind) {
      case Value::Kind::kNil:
        return Value::nil();  // a missing key's fields are missing too
      case Value::Kind::kMap: {
        for (const Entry& e : *v.map)
          if (e.name == name) return e.value;
        if (!v.strict) {
          for (const Entry& e : *v.map) {
            if (e.name.size() == name.size() &&
                std::equal(e.name.begin(), e.name.end(), name.begin(), [](char x, char y) {
                  return std::tolower(static_cast<unsigned char>(x)) ==
                         std::tolower(static_cast<unsigned char>(y));
                }))
              return e.value;
          }
          return Value::nil();
        }
        return err(pos, "can't evaluate field " + name + " in type message");
      }
      default:
        return err(pos, "can't evaluate field " + name + " in type " + type_name(v));
    }
  }

  Result<Value> eval_arg(const Arg& a, const Value& dot) {
    Value v;
    switch (a.kind) {
      case Arg::Kind::kDot:
      case Arg::Kind::kField:
        v = dot;
        break;
      case Arg::Kind::kVariable: {
        bool found = false;
        for (size_t k = vars_.size(); k-- > 0;) {
          if (vars_[k].first == a.name) {
            v = vars_[k].second;
            found = true;
            break;
          }
        }
        if (!found) return err(a.pos, "undefined variable: " + a.name);
        break;
      }
      case Arg::Kind::kFunc: {
        std::vector<Arg> only{a};
        return call(a, only, 1, dot, nullptr);
      }
      case Arg::Kind::kString:
        v = Value::string(a.name);
        break;
      case Arg::Kind::kInt:
        v = Value::integer(a.i);
        break;
      case Arg::Kind::kFloat:
        v = Value::floating(a.f);
        break;
      case Arg::Kind::kBool:
        v = Value::boolean(a.b);
        break;
      case Arg::Kind::kNil:
        v = Value::nil();
        break;
      case Arg::Kind::kPipe: {
        size_t mark = vars_.size();
        auto r = eval_pipeline(*a.pipe, dot);
        vars_.resize(mark);
        if (!r.ok()) return r;
        v = std::move(*r);
        break;
      }
    }
    for (const auto& f : a.fields) {
      auto r = field(v, f, a.pos);
      if (!r.ok()) return r;
      v = std::move(*r);
    }
    return v;
  }

  static bool is_number(const Value& v) {
    return v.kind == Value::Kind::kInt || v.kind == Value::Kind::kFloat;
  }

  Result<bool> equal(const Value& a, const Value& b, size_t pos) {
    if (is_number(a) && is_number(b)) {
      if (a.kind == Value::Kind::kInt && b.kind == Value::Kind::kInt) return a.i == b.i;
      double x = a.kind == Value::Kind::kInt ? static_cast<double>(a.i) : a.f;
      double y = b.kind == Value::Kind::kInt ? static_cast<double>(b.i) : b.f;
      return x == y;
    }
    if (a.kind == Value::Kind::kNil || b.kind == Value::Kind::kNil) return a.kind == b.kind;
    if (a.kind != b.kind) return err(pos, "incompatible types for comparison");
    switch (a.kind) {
      case Value::Kind::kBool:
        return a.b == b.b;
      case Value::Kind::kString:
        MINNOW_RETURN_IF_ERROR(charge(std::min(a.s->size(), b.s->size()), pos));
        return *a.s == *b.s;
      default:
        return err(pos, std::string("non-comparable type ") + type_name(a));
    }
  }

  Result<int> order(const Value& a, const Value& b, size_t pos) {
    if (is_number(a) && is_number(b)) {
      if (a.kind == Value::Kind::kInt && b.kind == Value::Kind::kInt)
        return a.i < b.i ? -1 : a.i > b.i ? 1 : 0;
      double x = a.kind == Value::Kind::kInt ? static_cast<double>(a.i) : a.f;
      double y = b.kind == Value::Kind::kInt ? static_cast<double>(b.i) : b.f;
      return x < y ? -1 : x > y ? 1 : 0;
    }
    if (a.kind == Value::Kind::kString && b.kind == Value::Kind::kString) {
      MINNOW_RETURN_IF_ERROR(charge(std::min(a.s->size(), b.s->size()), pos));
      int c = a.s->compare(*b.s);
      return c < 0 ? -1 : c > 0 ? 1 : 0;
    }
    if (a.kind != b.kind) return err(pos, "incompatible types for comparison");
    return err(pos, std::string("invalid type for comparison: ") + type_name(a));
  }

  Result<int64_t> to_index(const Value& v, size_t pos) {
    if (v.kind == Value::Kind::kInt) return v.i;
    if (v.kind == Value::Kind::kFloat && v.f == std::floor(v.f) && std::fabs(v.f) < 9e18)
      return static_cast<int64_t>(v.f);
    return err(pos, std::string("cannot index with type ") + type_name(v));
  }

  // Go's fmt.Sprintf for the verbs templates use.
  Result<std::string> sprintf(const std::string& fmt, const std::vector<Value>& args, size_t pos) {
    std::string out;
    size_t used = 0;
    for (size_t k = 0; k < fmt.size(); ++k) {
      if (out.size() > tree_.limits.max_output_bytes) return check_size(out.size(), pos);
      char c = fmt[k];
      if (c != '%') {
        out += c;
        continue;
      }
      if (++k >= fmt.size()) {
        out += "%!(NOVERB)";
        break;
      }
      bool minus = false, zero = false, plus = false;
      for (; k < fmt.size() && std::strchr("-0+ #", fmt[k]) != nullptr; ++k) {
        if (fmt[k] == '-') minus = true;
        if (fmt[k] == '0') zero = true;
        if (fmt[k] == '+') plus = true;
      }
      size_t width = 0;
      for (; k < fmt.size() && is_digit(fmt[k]); ++k) {
        width = width * 10 + (fmt[k] - '0');
        if (width > tree_.limits.max_output_bytes) return err(pos, "printf width too large");
      }
      int prec = -1;
      if (k < fmt.size() && fmt[k] == '.') {
        prec = 0;
        for (++k; k < fmt.size() && is_digit(fmt[k]); ++k) {
          prec = prec * 10 + (fmt[k] - '0');
          if (prec > 1000) return err(pos, "printf precision too large");
        }
      }
      if (k >= fmt.size()) {
        out += "%!(NOVERB)";
        break;
      }
      char verb = fmt[k];
      if (verb == '%') {
        out += '%';
        continue;
      }
      if (used >= args.size()) {
        out += std::string("%!") + verb + "(MISSING)";
        continue;
      }
      const Value& v = args[used++];
      std::string s;
      auto bad = [&] {
        std::string b = std::string("%!") + verb + "(" + type_name(v) + "=";
        print_value(v, b);
        return b + ")";
      };
      switch (verb) {
        case 'v':
        case 's':
          if (verb == 's' && (v.kind == Value::Kind::kInt || v.kind == Value::Kind::kFloat ||
                              v.kind == Value::Kind::kBool)) {
            s = bad();
            break;
          }
          print_value(v, s);
          if (v.kind == Value::Kind::kNil) s = "<nil>";
          if (prec >= 0 && v.kind == Value::Kind::kString && s.size() > static_cast<size_t>(prec))
            s.resize(prec);
          break;
        case 'q':
          if (v.kind != Value::Kind::kString) {
            s = bad();
            break;
          }
          json_quote(*v.s, s);  // Go's %q differs only on <, >, & and non-printables
          break;
        case 'd':
          if (v.kind != Value::Kind::kInt) {
            s = bad();
            break;
          }
          s = std::to_string(v.i);
          if (plus && v.i >= 0) s = "+" + s;
          break;
        case 'x':
        case 'X': {
          char buf[32];
          if (v.kind == Value::Kind::kInt) {
            auto r = std::to_chars(buf, buf + sizeof buf, v.i, 16);
            s.assign(buf, r.ptr);
          } else if (v.kind == Value::Kind::kString) {
            static const char* kHex = "0123456789abcdef";
            for (unsigned char ch : *v.s) {
              s += kHex[ch >> 4];
              s += kHex[ch & 15];
            }
          } else {
            s = bad();
            break;
          }
          if (verb == 'X')
            for (char& ch : s) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
          break;
        }
        case 'c':
          if (v.kind != Value::Kind::kInt || v.i < 0 || v.i > 0x10FFFF) {
            s = bad();
            break;
          }
          {
            uint32_t cp = static_cast<uint32_t>(v.i);
            if (cp < 0x80) {
              s += static_cast<char>(cp);
            } else if (cp < 0x800) {
              s += static_cast<char>(0xC0 | (cp >> 6));
              s += static_cast<char>(0x80 | (cp & 0x3F));
            } else if (cp < 0x10000) {
              s += static_cast<char>(0xE0 | (cp >> 12));
              s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
              s += static_cast<char>(0x80 | (cp & 0x3F));
            } else {
              s += static_cast<char>(0xF0 | (cp >> 18));
              s += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
              s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
              s += static_cast<char>(0x80 | (cp & 0x3F));
            }
          }
          break;
        case 't':
          if (v.kind != Value::Kind::kBool) {
            s = bad();
            break;
          }
          s = v.b ? "true" : "false";
          break;
        case 'f':
        case 'e':
        case 'g': {
          if (!is_number(v)) {
            s = bad();
            break;
          }
          double d = v.kind == Value::Kind::kInt ? static_cast<double>(v.i) : v.f;
          if (v.kind == Value::Kind::kInt) {
            s = bad();  // Go: %f of an int is %!f(int=5)
            break;
          }
          if (verb == 'g' && prec < 0) {
            std::string digits;
            int e10 = 0;
            if (d == 0) {
              s = "0";
            } else {
              shortest_digits(d, digits, e10);
              s = (e10 < -4 || e10 >= 21) ? exp_form(digits, e10, true)
                                          : plain_decimal(digits, e10);
              if (d < 0) s = "-" + s;
            }
          } else {
            char buf[1200];
            std::chars_format f = verb == 'f'   ? std::chars_format::fixed
                                  : verb == 'e' ? std::chars_format::scientific
                                                : std::chars_format::general;
            auto r = std::to_chars(buf, buf + sizeof buf, d, f, prec < 0 ? 6 : prec);
            if (r.ec != std::errc()) return err(pos, "printf: number too long");
            s.assign(buf, r.ptr);
          }
          if (plus && d >= 0) s = "+" + s;
          break;
        }
        default:
          s = bad();
          break;
      }
      if (s.size() < width) {
        size_t padn = width - s.size();
        if (minus)
          s += std::string(padn, ' ');
        else if (zero && verb != 's' && verb != 'v' && verb != 'q')
          s.insert(s[0] == '-' || s[0] == '+' ? 1 : 0, std::string(padn, '0'));
        else
          s.insert(0, std::string(padn, ' '));
      }
      out += s;
    }
    if (used < args.size()) {
      out += "%!(EXTRA ";
      for (size_t k = used; k < args.size(); ++k) {
        if (k > used) out += ", ";
        out += type_name(args[k]);
        out += "=";
        print_value(args[k], out);
      }
      out += ")";
    }
    MINNOW_RETURN_IF_ERROR(check_size(out.size(), pos));
    return out;
  }

  // Calls function `f` with args[first..] and then the piped value, if any.
  Result<Value> call(const Arg& f, const std::vector<Arg>& all, size_t first, const Value& dot,
                     const Value* piped) {
    const std::string& name = f.name;
    size_t n = all.size() - first + (piped ? 1 : 0);
    auto arg_at = [&](size_t k) -> Result<Value> {
      if (first + k < all.size()) return eval_arg(all[first + k], dot);
      return *piped;
    };
    auto want = [&](size_t lo, size_t hi) -> Status {
      if (n < lo || n > hi) {
        return err(f.pos, "wrong number of args for " + name + ": want " +
                              (lo == hi ? std::to_string(lo) : "at least " + std::to_string(lo)) +
                              " got " + std::to_string(n));
      }
      return {};
    };
    if (name == "and" || name == "or") {
      MINNOW_RETURN_IF_ERROR(want(1, SIZE_MAX));
      Value v;
      for (size_t k = 0; k < n; ++k) {
        auto r = arg_at(k);
        if (!r.ok()) return r;
        v = std::move(*r);
        if (truth(v) != (name == "and")) break;  // short-circuits as Go 1.18+
      }
      return v;
    }
    std::vector<Value> args;
    for (size_t k = 0; k < n; ++k) {
      auto r = arg_at(k);
      if (!r.ok()) return r;
      args.push_back(std::move(*r));
    }
    if (name == "not") {
      MINNOW_RETURN_IF_ERROR(want(1, 1));
      return Value::boolean(!truth(args[0]));
    }
    if (name == "len") {
      MINNOW_RETURN_IF_ERROR(want(1, 1));
      const Value& v = args[0];
      if (v.kind == Value::Kind::kString) return Value::integer(static_cast<int64_t>(v.s->size()));
      if (v.kind == Value::Kind::kList) return Value::integer(static_cast<int64_t>(v.list->size()));
      if (v.kind == Value::Kind::kMap) return Value::integer(static_cast<int64_t>(v.map->size()));
      return err(f.pos, std::string("error calling len: len of type ") + type_name(v));
    }
    if (name == "index") {
      MINNOW_RETURN_IF_ERROR(want(1, SIZE_MAX));
      Value v = args[0];
      for (size_t k = 1; k < args.size(); ++k) {
        if (v.kind == Value::Kind::kList || v.kind == Value::Kind::kString) {
          auto idx = to_index(args[k], f.pos);
          if (!idx.ok()) return idx.status();
          size_t size = v.kind == Value::Kind::kList ? v.list->size() : v.s->size();
          if (*idx < 0 || static_cast<uint64_t>(*idx) >= size)
            return err(f.pos, "error calling index: index out of range: " + std::to_string(*idx));
          if (v.kind == Value::Kind::kList)
            v = (*v.list)[*idx];
          else
            v = Value::integer(static_cast<unsigned char>((*v.s)[*idx]));
        } else if (v.kind == Value::Kind::kMap) {
          if (args[k].kind != Value::Kind::kString)
            return err(f.pos, "error calling index: value has type " +
                                  std::string(type_name(args[k])) + "; should be string");
          Value found;
          for (const Entry& e : *v.map)
            if (e.name == *args[k].s) found = e.value;
          v = found;
        } else if (v.kind == Value::Kind::kNil) {
          return err(f.pos, "error calling index: index of untyped nil");
        } else {
          return err(f.pos,
                     std::string("error calling index: can't index item of type ") + type_name(v));
        }
      }
      return v;
    }
    if (name == "slice") {
      MINNOW_RETURN_IF_ERROR(want(1, 4));
      const Value& v = args[0];
      if (v.kind != Value::Kind::kList && v.kind != Value::Kind::kString)
        return err(f.pos,
                   std::string("error calling slice: can't slice item of type ") + type_name(v));
      if (v.kind == Value::Kind::kString && args.size() == 4)
        return err(f.pos, "error calling slice: cannot 3-index slice a string");
      int64_t size =
          static_cast<int64_t>(v.kind == Value::Kind::kList ? v.list->size() : v.s->size());
      int64_t idx[3] = {0, size, size};
      for (size_t k = 1; k < args.size(); ++k) {
        auto r = to_index(args[k], f.pos);
        if (!r.ok()) return r.status();
        if (*r < 0 || *r > size)
          return err(f.pos, "error calling slice: index out of range: " + std::to_string(*r));
        idx[k - 1] = *r;
      }
      if (idx[0] > idx[1] || (args.size() == 4 && idx[1] > idx[2]))
        return err(f.pos, "error calling slice: invalid slice index: " + std::to_string(idx[0]) +
                              " > " + std::to_string(idx[1]));
      if (v.kind == Value::Kind::kString) {
        MINNOW_RETURN_IF_ERROR(charge(static_cast<size_t>(idx[1] - idx[0]), f.pos));
        return Value::string(v.s->substr(idx[0], idx[1] - idx[0]));
      }
      MINNOW_RETURN_IF_ERROR(charge(static_cast<size_t>(idx[1] - idx[0]) * sizeof(Value), f.pos));
      return Value::of_list(List(v.list->begin() + idx[0], v.list->begin() + idx[1]));
    }
    if (name == "printf") {
      MINNOW_RETURN_IF_ERROR(want(1, SIZE_MAX));
      if (args[0].kind != Value::Kind::kString)
        return err(f.pos,
                   "printf: format must be a string, not " + std::string(type_name(args[0])));
      std::vector<Value> rest(args.begin() + 1, args.end());
      auto s = sprintf(*args[0].s, rest, f.pos);
      if (!s.ok()) return s.status();
      return Value::string(std::move(*s));
    }
    if (name == "print" || name == "println") {
      std::string s;
      for (size_t k = 0; k < args.size(); ++k) {
        // Sprint separates operands when neither is a string; Sprintln always does.
        if (k > 0 && (name == "println" || (args[k].kind != Value::Kind::kString &&
                                            args[k - 1].kind != Value::Kind::kString)))
          s += ' ';
        if (args[k].kind == Value::Kind::kNil)
          s += "<nil>";
        else
          print_value(args[k], s);
        if (s.size() > tree_.limits.max_output_bytes) return check_size(s.size(), f.pos);
      }
      if (name == "println") s += '\n';
      MINNOW_RETURN_IF_ERROR(check_size(s.size(), f.pos));
      return Value::string(std::move(s));
    }
    if (name == "json") {
      MINNOW_RETURN_IF_ERROR(want(1, 1));
      std::string s;
      to_json(args[0], s);
      MINNOW_RETURN_IF_ERROR(check_size(s.size(), f.pos));
      return Value::string(std::move(s));
    }
    if (name == "eq") {
      MINNOW_RETURN_IF_ERROR(want(2, SIZE_MAX));
      for (size_t k = 1; k < args.size(); ++k) {
        auto r = equal(args[0], args[k], f.pos);
        if (!r.ok()) return r.status();
        if (*r) return Value::boolean(true);
      }
      return Value::boolean(false);
    }
    if (name == "ne") {
      MINNOW_RETURN_IF_ERROR(want(2, 2));
      auto r = equal(args[0], args[1], f.pos);
      if (!r.ok()) return r.status();
      return Value::boolean(!*r);
    }
    // lt le gt ge
    MINNOW_RETURN_IF_ERROR(want(2, 2));
    auto r = order(args[0], args[1], f.pos);
    if (!r.ok()) return r.status();
    if (name == "lt") return Value::boolean(*r < 0);
    if (name == "le") return Value::boolean(*r <= 0);
    if (name == "gt") return Value::boolean(*r > 0);
    return Value::boolean(*r >= 0);
  }

  const Tree& tree_;
  std::vector<std::pair<std::string, Value>> vars_;
  std::string out_;
  Budget& budget_;
};

// ---------------------------------------------------------------- Ollama's legacy cut

// Ollama renders the last legacy turn only up to its {{ .Response }}: walking the tree in order,
// everything after the first field naming Response is dropped (branch conditions are kept).
class Cutter {
 public:
  void list(std::vector<Node>& nodes) {
    std::vector<Node> kept;
    for (Node& n : nodes) {
      if (cut_) break;
      if (node(n)) kept.push_back(std::move(n));
    }
    nodes = std::move(kept);
  }

 private:
  bool node(Node& n) {
    switch (n.kind) {
      case Node::Kind::kIf:
      case Node::Kind::kRange:
      case Node::Kind::kWith:
        list(n.list);
        list(n.else_list);
        return true;
      case Node::Kind::kAction:
        return pipe(*n.pipe);
      default:
        return true;
    }
  }
  bool pipe(Pipeline& p) {
    std::vector<Command> cmds;
    for (Command& c : p.cmds) {
      std::vector<Arg> args;
      for (Arg& a : c.args) {
        if (cut_) break;
        if (a.kind == Arg::Kind::kField &&
            std::find(a.fields.begin(), a.fields.end(), "Response") != a.fields.end()) {
          cut_ = true;
          args.push_back(a);
          continue;
        }
        if (a.kind == Arg::Kind::kPipe) {
          auto copy = std::make_shared<Pipeline>(*a.pipe);
          if (!pipe(*copy)) continue;
          a.pipe = copy;
        }
        args.push_back(a);
      }
      if (args.empty()) return false;
      c.args = std::move(args);
      cmds.push_back(std::move(c));
    }
    if (cmds.empty()) return false;
    p.cmds = std::move(cmds);
    return true;
  }

  bool cut_ = false;
};

// Pipelines are shared between copies of a tree; the cutter rewrites them, so copy them first.
void deep_copy(std::vector<Node>& nodes) {
  for (Node& n : nodes) {
    if (n.pipe) n.pipe = std::make_shared<Pipeline>(*n.pipe);
    deep_copy(n.list);
    deep_copy(n.else_list);
  }
}

}  // namespace gotmpl

using gotmpl::Entry;
using gotmpl::Value;

Result<GoTemplate> GoTemplate::parse(std::string_view source, const Limits& limits) {
  if (source.size() > limits.max_source_bytes) {
    return Status::error("go template: source is " + std::to_string(source.size()) +
                         " bytes, over the limit of " + std::to_string(limits.max_source_bytes));
  }
  auto tree = std::make_shared<gotmpl::Tree>();
  tree->source = std::string(source);
  tree->limits = limits;
  std::vector<gotmpl::Item> items;
  gotmpl::Lexer lexer(tree->source);
  MINNOW_RETURN_IF_ERROR(lexer.run(items));
  gotmpl::Parser parser(*tree, items);
  MINNOW_RETURN_IF_ERROR(parser.run());
  GoTemplate t;
  t.tree_ = std::move(tree);
  return t;
}

Result<GoTemplate> GoTemplate::parse(std::string_view source) { return parse(source, Limits()); }

const std::string& GoTemplate::source() const { return tree_->source; }

bool GoTemplate::mentions(std::string_view lower_name) const {
  return std::find(tree_->vars.begin(), tree_->vars.end(), lower_name) != tree_->vars.end();
}

namespace {

// Go holds tool call arguments in a map[string]any, which json.Marshal writes with sorted keys
// (and ranges over in sorted order): sort them, at every depth, so they print as Ollama's do.
Value sorted_maps(const Value& v) {
  if (v.kind == Value::Kind::kList) {
    gotmpl::List l;
    for (const Value& e : *v.list) l.push_back(sorted_maps(e));
    return Value::of_list(std::move(l));
  }
  if (v.kind != Value::Kind::kMap) return v;
  gotmpl::Map m;
  for (const Entry& e : *v.map) m.push_back({e.name, e.json_name, sorted_maps(e.value)});
  std::stable_sort(m.begin(), m.end(),
                   [](const Entry& a, const Entry& b) { return a.name < b.name; });
  // A repeated key keeps its last value, as Go's decoder does.
  gotmpl::Map unique;
  for (Entry& e : m) {
    if (!unique.empty() && unique.back().name == e.name)
      unique.back() = std::move(e);
    else
      unique.push_back(std::move(e));
  }
  return Value::of_map(std::move(unique), v.strict);
}

// Each call's function.arguments with its keys sorted; the rest as given.
Value sort_call_arguments(const Value& calls) {
  gotmpl::List out;
  for (const Value& call : *calls.list) {
    if (call.kind != Value::Kind::kMap) {
      out.push_back(call);
      continue;
    }
    gotmpl::Map c = *call.map;
    for (Entry& e : c) {
      if (e.name != "function" || e.value.kind != Value::Kind::kMap) continue;
      gotmpl::Map f = *e.value.map;
      for (Entry& fe : f)
        if (fe.name == "arguments") fe.value = sorted_maps(fe.value);
      e.value = Value::of_map(std::move(f), false);
    }
    out.push_back(Value::of_map(std::move(c), false));
  }
  return Value::of_list(std::move(out));
}

Result<Value> parse_json_list(const std::string& text, int max_depth, const char* what) {
  gotmpl::JsonReader reader(text, max_depth);
  auto v = reader.read_document();
  if (!v.ok()) return Status::error(std::string("go template: ") + what + ": " + v.error());
  if (v->kind != Value::Kind::kList)
    return Status::error(std::string("go template: ") + what + ": expected a JSON array");
  return v;
}

Result<Value> make_root(const GoTemplate::Data& d, const GoTemplate::Limits& limits,
                        bool legacy_only) {
  gotmpl::Map root;
  root.push_back({"System", "System", Value::string(d.system)});
  root.push_back({"Prompt", "Prompt", Value::string(d.prompt)});
  root.push_back({"Response", "Response", Value::string(d.response)});
  if (legacy_only) return Value::of_map(std::move(root), false);
  root.push_back({"Suffix", "Suffix", Value::string(d.suffix)});
  if (d.has_messages) {
    gotmpl::List messages;
    for (const auto& m : d.messages) {
      Value calls = Value::of_list({});
      if (!m.tool_calls_json.empty()) {
        auto parsed = parse_json_list(m.tool_calls_json, limits.max_json_depth, "tool_calls");
        if (!parsed.ok()) return parsed;
        calls = sort_call_arguments(*parsed);
      }
      gotmpl::Map msg;
      msg.push_back({"Role", "role", Value::string(m.role)});
      msg.push_back({"Content", "content", Value::string(m.content)});
      msg.push_back({"Thinking", "thinking", Value::string(m.thinking)});
      msg.push_back({"Images", "images", Value::of_list({})});
      msg.push_back({"ToolCalls", "tool_calls", std::move(calls)});
      msg.push_back({"ToolName", "tool_name", Value::string(m.tool_name)});
      messages.push_back(Value::of_map(std::move(msg), true));
    }
    root.push_back({"Messages", "Messages", Value::of_list(std::move(messages))});
  }
  Value tools = Value::of_list({});
  if (!d.tools_json.empty()) {
    auto parsed = parse_json_list(d.tools_json, limits.max_json_depth, "tools");
    if (!parsed.ok()) return parsed;
    tools = std::move(*parsed);
  }
  tools.print_as = std::make_shared<const std::string>(d.tools_json);
  root.push_back({"Tools", "Tools", std::move(tools)});
  return Value::of_map(std::move(root), false);
}

Result<std::string> execute(const gotmpl::Tree& tree, const std::vector<gotmpl::Node>& nodes,
                            const Value& root, gotmpl::Budget& budget) {
  gotmpl::Exec exec(tree, root, budget);
  MINNOW_RETURN_IF_ERROR(exec.run(nodes, root));
  return exec.take();
}

}  // namespace

Result<std::string> GoTemplate::render(const Data& data) const {
  auto root = make_root(data, tree_->limits, false);
  if (!root.ok()) return root.status();
  gotmpl::Budget budget;
  return execute(*tree_, tree_->root, *root, budget);
}

Result<std::string> GoTemplate::render_ollama(const std::vector<Message>& messages,
                                              std::string_view tools_json, std::string_view prompt,
                                              std::string_view suffix) const {
  gotmpl::Budget budget;  // one for all the executions below
  // Without Messages or Response in the template, Ollama appends {{ .Response }}.
  std::vector<gotmpl::Node> nodes = tree_->root;
  if (!mentions("messages") && !mentions("response")) {
    gotmpl::Node n;
    n.kind = gotmpl::Node::Kind::kAction;
    n.pos = tree_->source.size();
    n.pipe = std::make_shared<gotmpl::Pipeline>();
    gotmpl::Command c;
    gotmpl::Arg a;
    a.kind = gotmpl::Arg::Kind::kField;
    a.fields = {"Response"};
    c.args.push_back(a);
    n.pipe->cmds.push_back(c);
    nodes.push_back(std::move(n));
  }

  if (!prompt.empty() && !suffix.empty()) {
    gotmpl::Map root;
    root.push_back({"Prompt", "Prompt", Value::string(std::string(prompt))});
    root.push_back({"Suffix", "Suffix", Value::string(std::string(suffix))});
    root.push_back({"Response", "Response", Value::string("")});
    return execute(*tree_, nodes, Value::of_map(std::move(root), false), budget);
  }

  // Collate: merge consecutive messages of one role, gather system messages.
  std::string system;
  bool any_system = false;
  std::vector<Message> collated;
  for (const Message& m : messages) {
    if (m.role == "system") {
      if (any_system) system += "\n\n";
      system += m.content;
      any_system = true;
    }
    if (!collated.empty() && collated.back().role == m.role)
      collated.back().content += "\n\n" + m.content;
    else
      collated.push_back(m);
  }

  if (mentions("messages")) {
    Data d;
    d.system = system;
    d.messages = std::move(collated);
    d.tools_json = std::string(tools_json);
    auto full = make_root(d, tree_->limits, false);
    if (!full.ok()) return full.status();
    // Ollama passes exactly {System, Messages, Tools, Response}; Prompt and Suffix are absent.
    gotmpl::Map root;
    for (const Entry& e : *full->map)
      if (e.name != "Prompt" && e.name != "Suffix") root.push_back(e);
    return execute(*tree_, nodes, Value::of_map(std::move(root), false), budget);
  }

  // Legacy: one render per turn, the last cut after its {{ .Response }}.
  std::string out;
  Data turn;
  auto flush = [&]() -> Status {
    auto root = make_root(turn, tree_->limits, true);
    if (!root.ok()) return root.status();
    auto r = execute(*tree_, nodes, *root, budget);
    if (!r.ok()) return r.status();
    out += *r;
    if (out.size() > tree_->limits.max_output_bytes)
      return Status::error("go template: output exceeds " +
                           std::to_string(tree_->limits.max_output_bytes) + " bytes");
    turn = Data{};
    return {};
  };
  for (const Message& m : collated) {
    if (m.role == "system") {
      if (!turn.prompt.empty() || !turn.response.empty()) MINNOW_RETURN_IF_ERROR(flush());
      turn.system = m.content;
    } else if (m.role == "user") {
      if (!turn.response.empty()) MINNOW_RETURN_IF_ERROR(flush());
      turn.prompt = m.content;
    } else if (m.role == "assistant") {
      turn.response = m.content;
    }
  }
  gotmpl::deep_copy(nodes);
  gotmpl::Cutter().list(nodes);
  auto root = make_root(turn, tree_->limits, true);
  if (!root.ok()) return root.status();
  auto last = execute(*tree_, nodes, *root, budget);
  if (!last.ok()) return last.status();
  out += *last;
  if (out.size() > tree_->limits.max_output_bytes)
    return Status::error("go template: output exceeds " +
                         std::to_string(tree_->limits.max_output_bytes) + " bytes");
  return out;
}

}  // namespace minnow::text
