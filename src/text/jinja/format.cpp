// Python string formatting for templates: str.format (through the sandbox's attribute rules),
// the format-spec mini-language, and printf-style `%` (used by the `format` filter and `%`).
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>

#include "text/jinja/builtins.h"
#include "text/jinja/unicode.h"

namespace minnow::text::jinja {

namespace {

constexpr size_t kMaxWidth = 1u << 20;  // a width / precision larger than this is refused

struct Spec {
  char32_t fill = ' ';
  char align = 0;  // < > = ^
  char sign = '-';
  bool alt = false;
  bool zero = false;
  size_t width = 0;
  char grouping = 0;
  int precision = -1;
  char type = 0;
};

Result<Spec> parse_spec(std::string_view s) {
  Spec sp;
  const std::u32string cps = utf8_decode(s);
  size_t i = 0;
  auto is_align = [](char32_t c) { return c == '<' || c == '>' || c == '=' || c == '^'; };
  if (cps.size() >= 2 && is_align(cps[1])) {
    sp.fill = cps[0];
    sp.align = static_cast<char>(cps[1]);
    i = 2;
  } else if (!cps.empty() && is_align(cps[0])) {
    sp.align = static_cast<char>(cps[0]);
    i = 1;
  }
  if (i < cps.size() && (cps[i] == '+' || cps[i] == '-' || cps[i] == ' ')) {
    sp.sign = static_cast<char>(cps[i++]);
  }
  if (i < cps.size() && cps[i] == '#') sp.alt = true, ++i;
  if (i < cps.size() && cps[i] == '0') sp.zero = true, ++i;
  while (i < cps.size() && cps[i] >= '0' && cps[i] <= '9') {
    sp.width = sp.width * 10 + (cps[i++] - '0');
    if (sp.width > kMaxWidth) return Status::error("format width too large");
  }
  if (i < cps.size() && (cps[i] == ',' || cps[i] == '_')) sp.grouping = static_cast<char>(cps[i++]);
  if (i < cps.size() && cps[i] == '.') {
    ++i;
    if (i >= cps.size() || cps[i] < '0' || cps[i] > '9') {
      return Status::error("Format specifier missing precision");
    }
    sp.precision = 0;
    while (i < cps.size() && cps[i] >= '0' && cps[i] <= '9') {
      sp.precision = sp.precision * 10 + static_cast<int>(cps[i++] - '0');
      if (sp.precision > static_cast<int>(kMaxWidth)) return Status::error("precision too large");
    }
  }
  if (i < cps.size()) sp.type = static_cast<char>(cps[i++]);
  if (i != cps.size()) return Status::error("Invalid format specifier");
  return sp;
}

std::string group_digits(const std::string& digits, char sep) {
  std::string out;
  const size_t n = digits.size();
  for (size_t i = 0; i < n; ++i) {
    out.push_back(digits[i]);
    const size_t left = n - i - 1;
    if (left > 0 && left % 3 == 0) out.push_back(sep);
  }
  return out;
}

// Pads `body` (with `sign_prefix` kept left of '=' padding) to the spec's width.
std::string pad(const Spec& sp, std::string sign_prefix, std::string body, char default_align) {
  char align = sp.align ? sp.align : default_align;
  char32_t fill = sp.fill;
  if (!sp.align && sp.zero && default_align == '>') {
    align = '=';
    fill = '0';
  }
  const size_t len = utf8_length(sign_prefix) + utf8_length(body);
  if (len >= sp.width) return sign_prefix + body;
  const size_t n = sp.width - len;
  std::string f;
  utf8_append(f, fill);
  auto fills = [&](size_t k) {
    std::string s;
    for (size_t i = 0; i < k; ++i) s += f;
    return s;
  };
  switch (align) {
    case '<':
      return sign_prefix + body + fills(n);
    case '^':
      return fills(n / 2) + sign_prefix + body + fills(n - n / 2);
    case '=':
      return sign_prefix + fills(n) + body;
    default:
      return fills(n) + sign_prefix + body;
  }
}

std::string c_format(const char* conv, int precision, double d) {
  char fmt[16];
  std::snprintf(fmt, sizeof(fmt), "%%.%d%s", precision, conv);
  const int n = std::snprintf(nullptr, 0, fmt, d);
  std::string out(static_cast<size_t>(n), '\0');
  std::snprintf(out.data(), out.size() + 1, fmt, d);
  return out;
}

Result<std::string> format_float_spec(double d, const Spec& sp) {
  std::string body;
  const bool neg = std::signbit(d) && !std::isnan(d);
  const double a = std::fabs(d);
  char type = sp.type;
  if (std::isnan(a) || std::isinf(a)) {
    body = std::isnan(a) ? "nan" : "inf";
    if (type == 'F' || type == 'E' || type == 'G') body = std::isnan(a) ? "NAN" : "INF";
    if (type == '%') body += "%";
  } else if (type == 'f' || type == 'F') {
    body = c_format("f", sp.precision < 0 ? 6 : sp.precision, a);
  } else if (type == 'e' || type == 'E') {
    body = c_format(type == 'e' ? "e" : "E", sp.precision < 0 ? 6 : sp.precision, a);
  } else if (type == 'g' || type == 'G') {
    const int p = sp.precision < 0 ? 6 : (sp.precision == 0 ? 1 : sp.precision);
    body = c_format(sp.alt ? (type == 'g' ? "#g" : "#G") : (type == 'g' ? "g" : "G"), p, a);
  } else if (type == '%') {
    body = c_format("f", sp.precision < 0 ? 6 : sp.precision, a * 100) + "%";
  } else if (type == 0) {
    if (sp.precision < 0) {
      body = format_float(a);
    } else {
      body = c_format("g", sp.precision == 0 ? 1 : sp.precision, a);
      if (body.find_first_of(".en") == std::string::npos) body += ".0";
    }
  } else {
    return Status::error(std::string("Unknown format code '") + type +
                         "' for object of type 'float'");
  }
  if (sp.grouping && std::isfinite(a)) {
    const size_t dot = body.find_first_of(".e%");
    const std::string int_part = body.substr(0, dot);
    body = group_digits(int_part, sp.grouping) + (dot == std::string::npos ? "" : body.substr(dot));
  }
  std::string sign = neg ? "-" : (sp.sign == '+' ? "+" : (sp.sign == ' ' ? " " : ""));
  return pad(sp, sign, body, '>');
}

Result<std::string> format_int_spec(int64_t v, const Spec& sp) {
  char type = sp.type ? sp.type : 'd';
  if (type == 'e' || type == 'E' || type == 'f' || type == 'F' || type == 'g' || type == 'G' ||
      type == '%') {
    return format_float_spec(static_cast<double>(v), sp);
  }
  if (sp.precision >= 0) return Status::error("Precision not allowed in integer format specifier");
  const bool neg = v < 0;
  const uint64_t mag = neg ? 0 - static_cast<uint64_t>(v) : static_cast<uint64_t>(v);
  std::string body, prefix;
  if (type == 'c') {
    utf8_append(body, static_cast<char32_t>(mag));
  } else {
    int base = 10;
    if (type == 'x' || type == 'X') base = 16, prefix = type == 'x' ? "0x" : "0X";
    if (type == 'o') base = 8, prefix = "0o";
    if (type == 'b') base = 2, prefix = "0b";
    if (type != 'd' && type != 'n' && base == 10) {
      return Status::error(std::string("Unknown format code '") + type +
                           "' for object of type 'int'");
    }
    const char* digits = type == 'X' ? "0123456789ABCDEF" : "0123456789abcdef";
    uint64_t m = mag;
    do {
      body.insert(body.begin(), digits[m % static_cast<uint64_t>(base)]);
      m /= static_cast<uint64_t>(base);
    } while (m);
    if (sp.grouping) body = group_digits(body, sp.grouping);
  }
  std::string sign = neg ? "-" : (sp.sign == '+' ? "+" : (sp.sign == ' ' ? " " : ""));
  if (sp.alt) sign += prefix;
  return pad(sp, sign, body, '>');
}

}  // namespace

Result<std::string> apply_format_spec(const Value& v, std::string_view spec) {
  if (spec.empty()) return to_str(v);
  auto parsed = parse_spec(spec);
  if (!parsed.ok()) return parsed.status();
  const Spec& sp = *parsed;
  if (v.is_string()) {
    if (sp.type != 0 && sp.type != 's') {
      return Status::error(std::string("Unknown format code '") + sp.type +
                           "' for object of type 'str'");
    }
    std::string s = v.as_string();
    if (sp.precision >= 0) {
      const std::u32string cps = utf8_decode(s);
      if (cps.size() > static_cast<size_t>(sp.precision)) {
        s = utf8_encode(std::u32string_view(cps).substr(0, static_cast<size_t>(sp.precision)));
      }
    }
    return pad(sp, "", s, '<');
  }
  if (v.is_int() || v.is_bool()) return format_int_spec(v.to_int(), sp);
  if (v.is_float()) return format_float_spec(v.as_float(), sp);
  return Status::error("unsupported format string passed to " + type_name(v) + ".__format__");
}

Result<std::string> str_format(Interpreter& in, std::string_view fmt, const Args& args) {
  std::string out;
  size_t auto_index = 0;
  enum { kUnknown, kAuto, kManual } numbering = kUnknown;
  // Resolves one replacement field "name[.attr][key]!conv:spec" to its formatted text.
  std::function<Result<std::string>(std::string_view)> field;
  field = [&](std::string_view f) -> Result<std::string> {
    size_t end = 0;
    while (end < f.size() && f[end] != '.' && f[end] != '[' && f[end] != '!' && f[end] != ':') {
      ++end;
    }
    const std::string_view first = f.substr(0, end);
    Value v;
    bool numeric = !first.empty();
    for (char c : first) numeric = numeric && c >= '0' && c <= '9';
    if (first.empty() || numeric) {
      size_t idx;
      if (first.empty()) {
        if (numbering == kManual) {
          return Status::error(
              "cannot switch from manual field specification to automatic field "
              "numbering");
        }
        numbering = kAuto;
        idx = auto_index++;
      } else {
        if (numbering == kAuto) {
          return Status::error(
              "cannot switch from automatic field numbering to manual field "
              "specification");
        }
        numbering = kManual;
        idx = std::strtoull(std::string(first).c_str(), nullptr, 10);
      }
      if (idx >= args.pos.size()) {
        return Status::error("Replacement index " + std::to_string(idx) +
                             " out of range for positional args tuple");
      }
      v = args.pos[idx];
    } else {
      const Value* kv = args.kwarg(first);
      if (!kv) return Status::error("KeyError: " + repr_string(first));
      v = *kv;
    }
    size_t i = end;
    while (i < f.size() && (f[i] == '.' || f[i] == '[')) {
      if (f[i] == '.') {
        size_t j = i + 1;
        while (j < f.size() && f[j] != '.' && f[j] != '[' && f[j] != '!' && f[j] != ':') ++j;
        auto r = in.getattr(v, f.substr(i + 1, j - i - 1));
        if (!r.ok()) return r.status();
        v = std::move(*r);
        i = j;
      } else {
        const size_t j = f.find(']', i);
        if (j == std::string_view::npos) return Status::error("Missing ']' in format string");
        const std::string_view key = f.substr(i + 1, j - i - 1);
        bool digits = !key.empty();
        for (char c : key) digits = digits && c >= '0' && c <= '9';
        Value k =
            digits
                ? Value(static_cast<int64_t>(std::strtoll(std::string(key).c_str(), nullptr, 10)))
                : Value(key);
        auto r = in.getitem(v, k);
        if (!r.ok()) return r.status();
        v = std::move(*r);
        i = j + 1;
      }
    }
    if (i < f.size() && f[i] == '!') {
      if (i + 1 >= f.size())
        return Status::error("end of string while looking for conversion specifier");
      const char conv = f[i + 1];
      if (conv == 'r' || conv == 'a') {
        v = Value(repr(v));
      } else if (conv == 's') {
        v = Value(to_str(v));
      } else {
        return Status::error(std::string("Unknown conversion specifier ") + conv);
      }
      i += 2;
    }
    std::string spec;
    if (i < f.size()) {
      if (f[i] != ':') return Status::error("expected ':' after conversion specifier");
      // nested replacement fields inside the spec
      const std::string_view raw = f.substr(i + 1);
      for (size_t k = 0; k < raw.size(); ++k) {
        if (raw[k] == '{') {
          const size_t close = raw.find('}', k);
          if (close == std::string_view::npos) return Status::error("unmatched '{' in format spec");
          auto inner = field(raw.substr(k + 1, close - k - 1));
          if (!inner.ok()) return inner;
          spec += *inner;
          k = close;
        } else {
          spec.push_back(raw[k]);
        }
      }
    }
    if (v.is_undefined()) return to_str(v);
    return apply_format_spec(v, spec);
  };
  for (size_t i = 0; i < fmt.size(); ++i) {
    const char c = fmt[i];
    if (c == '{') {
      if (i + 1 < fmt.size() && fmt[i + 1] == '{') {
        out.push_back('{');
        ++i;
        continue;
      }
      int depth = 1;
      size_t j = i + 1;
      for (; j < fmt.size(); ++j) {
        if (fmt[j] == '{') ++depth;
        if (fmt[j] == '}' && --depth == 0) break;
      }
      if (j >= fmt.size()) return Status::error("Single '{' encountered in format string");
      auto r = field(fmt.substr(i + 1, j - i - 1));
      if (!r.ok()) return r;
      out += *r;
      MINNOW_RETURN_IF_ERROR(in.check_bytes(out.size()));
      i = j;
    } else if (c == '}') {
      if (i + 1 < fmt.size() && fmt[i + 1] == '}') {
        out.push_back('}');
        ++i;
        continue;
      }
      return Status::error("Single '}' encountered in format string");
    } else {
      out.push_back(c);
    }
  }
  return out;
}

Result<std::string> percent_format(std::string_view fmt, const Value& args) {
  std::vector<Value> values;
  const Dict* mapping = nullptr;
  // CPython treats any subscriptable non-tuple argument (dict, list) as a possible mapping and
  // then does not complain about arguments left unconverted.
  bool lenient = false;
  if (args.is_tuple()) {
    values = args.items();
  } else {
    values.push_back(args);
    if (args.is_dict()) mapping = &args.as_dict();
    lenient = args.is_dict() || args.is_list() || args.is_undefined();
  }
  size_t next = 0;
  bool used_mapping = false;
  std::string out;
  for (size_t i = 0; i < fmt.size(); ++i) {
    if (fmt[i] != '%') {
      out.push_back(fmt[i]);
      continue;
    }
    if (++i >= fmt.size()) return Status::error("incomplete format");
    const Value* arg = nullptr;
    if (fmt[i] == '(') {
      const size_t close = fmt.find(')', i);
      if (close == std::string_view::npos) return Status::error("incomplete format key");
      if (!mapping) return Status::error("format requires a mapping");
      arg = mapping->find(fmt.substr(i + 1, close - i - 1));
      if (!arg) return Status::error("KeyError: " + repr_string(fmt.substr(i + 1, close - i - 1)));
      used_mapping = true;
      i = close + 1;
    }
    Spec sp;
    sp.align = '>';
    for (; i < fmt.size(); ++i) {
      const char f = fmt[i];
      if (f == '-')
        sp.align = '<';
      else if (f == '+')
        sp.sign = '+';
      else if (f == ' ') {
        if (sp.sign != '+') sp.sign = ' ';
      } else if (f == '#')
        sp.alt = true;
      else if (f == '0')
        sp.zero = true;
      else
        break;
    }
    while (i < fmt.size() && fmt[i] >= '0' && fmt[i] <= '9') {
      sp.width = sp.width * 10 + static_cast<size_t>(fmt[i++] - '0');
      if (sp.width > kMaxWidth) return Status::error("format width too large");
    }
    if (i < fmt.size() && fmt[i] == '.') {
      sp.precision = 0;
      ++i;
      while (i < fmt.size() && fmt[i] >= '0' && fmt[i] <= '9') {
        sp.precision = sp.precision * 10 + (fmt[i++] - '0');
        if (sp.precision > static_cast<int>(kMaxWidth)) return Status::error("precision too large");
      }
    }
    while (i < fmt.size() && (fmt[i] == 'h' || fmt[i] == 'l' || fmt[i] == 'L')) ++i;
    if (i >= fmt.size()) return Status::error("incomplete format");
    const char type = fmt[i];
    if (type == '%') {
      out.push_back('%');
      continue;
    }
    if (!arg) {
      if (next >= values.size()) return Status::error("not enough arguments for format string");
      arg = &values[next++];
    }
    if (sp.zero && sp.align == '<') sp.zero = false;
    if (sp.zero) sp.align = 0;  // zero padding goes between sign and digits
    std::string piece;
    switch (type) {
      case 's':
      case 'r':
      case 'a': {
        std::string s = type == 's' ? to_str(*arg) : repr(*arg);
        if (sp.precision >= 0) {
          const std::u32string cps = utf8_decode(s);
          if (cps.size() > static_cast<size_t>(sp.precision)) {
            s = utf8_encode(std::u32string_view(cps).substr(0, static_cast<size_t>(sp.precision)));
          }
        }
        Spec ss = sp;
        ss.zero = false;
        if (!ss.align) ss.align = '>';
        piece = pad(ss, "", s, '>');
        break;
      }
      case 'd':
      case 'i':
      case 'u':
      case 'x':
      case 'X':
      case 'o':
      case 'c': {
        if (!arg->is_number()) {
          return Status::error(std::string("%") + type +
                               " format: a real number is required, not " + type_name(*arg));
        }
        Spec is = sp;
        is.precision = -1;
        is.type = (type == 'i' || type == 'u') ? 'd' : type;
        is.alt = sp.alt && type != 'd';
        auto r = format_int_spec(
            arg->is_float() ? static_cast<int64_t>(arg->as_float()) : arg->to_int(), is);
        if (!r.ok()) return r;
        piece = std::move(*r);
        break;
      }
      case 'f':
      case 'F':
      case 'e':
      case 'E':
      case 'g':
      case 'G': {
        if (!arg->is_number()) {
          return Status::error("must be real number, not " + type_name(*arg));
        }
        Spec fs = sp;
        fs.type = type;
        auto r = format_float_spec(arg->to_double(), fs);
        if (!r.ok()) return r;
        piece = std::move(*r);
        break;
      }
      default:
        return Status::error(std::string("unsupported format character '") + type + "'");
    }
    out += piece;
  }
  if (!used_mapping && next < values.size() && !lenient) {
    return Status::error("not all arguments converted during string formatting");
  }
  return out;
}

}  // namespace minnow::text::jinja
