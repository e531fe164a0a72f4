// Methods of str, list and dict that templates call (message.content.strip(), tools.items()...).
// jinja2's ImmutableSandboxedEnvironment allows the non-mutating ones; the mutating list/dict
// methods resolve to a refusal, exactly where jinja2 raises its SecurityError.
#include <algorithm>

#include "text/jinja/builtins.h"
#include "text/jinja/unicode.h"

namespace minnow::text::jinja {

namespace {

class BoundMethod final : public Object {
 public:
  BoundMethod(Value self, std::string name, MethodFn fn)
      : self_(std::move(self)), name_(std::move(name)), fn_(fn) {}
  std::string_view type_name() const override { return "builtin_function_or_method"; }
  std::string repr() const override {
    return "<built-in method " + name_ + " of " + jinja::type_name(self_) +
           " object at 0x7f0000000000>";  // CPython prints the address
  }
  bool callable() const override { return true; }
  Result<Value> call(Interpreter& in, Args& args) override { return fn_(in, self_, args); }

 private:
  Value self_;
  std::string name_;
  MethodFn fn_;
};

#define BIND(var, fn, ...)                      \
  auto var##_r = bind(args, {__VA_ARGS__}, fn); \
  if (!var##_r.ok()) return var##_r.status();   \
  const Bound& var = *var##_r

const std::string& str(const Value& self) { return self.as_string(); }

// ---- str ----

Result<Value> strip_impl(const Value& self, Args& args, bool left, bool right, const char* fn) {
  BIND(b, fn, "chars");
  if (b.has(0) && !b.get(0)->is_none()) {
    if (!b.get(0)->is_string()) return Status::error(std::string(fn) + " arg must be None or str");
    return Value(py_strip(str(self), &b.get(0)->as_string(), left, right));
  }
  return Value(py_strip(str(self), nullptr, left, right));
}
Result<Value> m_strip(Interpreter&, const Value& s, Args& a) {
  return strip_impl(s, a, true, true, "strip");
}
Result<Value> m_lstrip(Interpreter&, const Value& s, Args& a) {
  return strip_impl(s, a, true, false, "lstrip");
}
Result<Value> m_rstrip(Interpreter&, const Value& s, Args& a) {
  return strip_impl(s, a, false, true, "rstrip");
}

Result<Value> affix_impl(const Value& self, Args& args, bool prefix) {
  const char* fn = prefix ? "startswith" : "endswith";
  BIND(b, fn, "prefix", "start", "end");
  if (!b.has(0)) return Status::error(std::string(fn) + "() takes at least 1 argument (0 given)");
  std::string_view s = str(self);
  std::string window;  // s[start:end] when bounds are given
  if (b.has(1) || b.has(2)) {
    const std::u32string cps = utf8_decode(s);
    const int64_t n = static_cast<int64_t>(cps.size());
    auto norm = [&](const Value* v, int64_t dflt) {
      if (!v || v->is_none()) return dflt;
      int64_t x = v->to_int();
      if (x < 0) x = std::max<int64_t>(0, x + n);
      return std::min(x, n);
    };
    const int64_t a = norm(b.get(1), 0), e = norm(b.get(2), n);
    if (a < e) {
      window = utf8_encode(
          std::u32string_view(cps).substr(static_cast<size_t>(a), static_cast<size_t>(e - a)));
    }
    s = window;
  }
  auto test = [&](const Value& p) -> Result<bool> {
    if (!p.is_string()) {
      return Status::error(std::string(fn) + " first arg must be str or a tuple of str, not " +
                           type_name(p));
    }
    const std::string& x = p.as_string();
    return prefix ? s.starts_with(x) : s.ends_with(x);
  };
  if (b.get(0)->is_tuple()) {
    for (const Value& p : b.get(0)->items()) {
      auto r = test(p);
      if (!r.ok()) return r.status();
      if (*r) return Value(true);
    }
    return Value(false);
  }
  auto r = test(*b.get(0));
  if (!r.ok()) return r.status();
  return Value(*r);
}
Result<Value> m_startswith(Interpreter&, const Value& s, Args& a) { return affix_impl(s, a, true); }
Result<Value> m_endswith(Interpreter&, const Value& s, Args& a) { return affix_impl(s, a, false); }

// Whitespace split (sep=None): runs of Python whitespace, no empty strings.
std::vector<Value> split_ws(std::string_view s, int64_t maxsplit, bool from_right) {
  const std::u32string cps = utf8_decode(s);
  std::vector<std::pair<size_t, size_t>> words;  // code point ranges
  size_t i = 0;
  while (i < cps.size()) {
    while (i < cps.size() && py_isspace(cps[i])) ++i;
    if (i >= cps.size()) break;
    size_t j = i;
    while (j < cps.size() && !py_isspace(cps[j])) ++j;
    words.emplace_back(i, j);
    i = j;
  }
  std::vector<Value> out;
  if (maxsplit < 0 || static_cast<size_t>(maxsplit) + 1 >= words.size()) {
    for (auto [a, b] : words)
      out.emplace_back(utf8_encode(std::u32string_view(cps).substr(a, b - a)));
    return out;
  }
  const size_t m = static_cast<size_t>(maxsplit);
  if (!from_right) {
    for (size_t k = 0; k < m; ++k) {
      out.emplace_back(utf8_encode(
          std::u32string_view(cps).substr(words[k].first, words[k].second - words[k].first)));
    }
    // the remainder is the rest of the string, trailing whitespace included
    out.emplace_back(utf8_encode(std::u32string_view(cps).substr(words[m].first)));
  } else {
    const size_t first_kept = words.size() - m;
    // the remainder is the start of the string, leading whitespace included
    out.emplace_back(utf8_encode(std::u32string_view(cps).substr(0, words[first_kept - 1].second)));
    for (size_t k = first_kept; k < words.size(); ++k) {
      out.emplace_back(utf8_encode(
          std::u32string_view(cps).substr(words[k].first, words[k].second - words[k].first)));
    }
  }
  return out;
}

Result<Value> split_impl(Interpreter& in, const Value& self, Args& args, bool from_right) {
  const char* fn = from_right ? "rsplit" : "split";
  BIND(b, fn, "sep", "maxsplit");
  auto maxsplit = arg_int(b.get(1), -1, "maxsplit");
  if (!maxsplit.ok()) return maxsplit.status();
  const std::string& s = str(self);
  MINNOW_RETURN_IF_ERROR(in.check_items(s.size()));
  if (!b.has(0) || b.get(0)->is_none()) return Value::list(split_ws(s, *maxsplit, from_right));
  if (!b.get(0)->is_string())
    return Status::error("must be str or None, not " + type_name(*b.get(0)));
  const std::string& sep = b.get(0)->as_string();
  if (sep.empty()) return Status::error("empty separator");
  std::vector<Value> parts;
  int64_t left = *maxsplit;
  if (!from_right) {
    size_t pos = 0;
    while (left != 0) {
      const size_t f = s.find(sep, pos);
      if (f == std::string::npos) break;
      parts.emplace_back(s.substr(pos, f - pos));
      pos = f + sep.size();
      if (left > 0) --left;
    }
    parts.emplace_back(s.substr(pos));
  } else {
    size_t end = s.size();
    while (left != 0 && end >= sep.size()) {
      const size_t f = s.rfind(sep, end - sep.size());
      if (f == std::string::npos) break;
      parts.emplace_back(s.substr(f + sep.size(), end - f - sep.size()));
      end = f;
      if (left > 0) --left;
    }
    parts.emplace_back(s.substr(0, end));
    std::reverse(parts.begin(), parts.end());
  }
  return Value::list(std::move(parts));
}
Result<Value> m_split(Interpreter& in, const Value& s, Args& a) {
  return split_impl(in, s, a, false);
}
Result<Value> m_rsplit(Interpreter& in, const Value& s, Args& a) {
  return split_impl(in, s, a, true);
}

bool is_line_break(char32_t c) {
  return c == '\n' || c == '\r' || c == 0x0B || c == 0x0C || c == 0x1C || c == 0x1D || c == 0x1E ||
         c == 0x85 || c == 0x2028 || c == 0x2029;
}

Result<Value> m_splitlines(Interpreter&, const Value& self, Args& args) {
  BIND(b, "splitlines", "keepends");
  const bool keep = arg_bool(b.get(0), false);
  const std::u32string cps = utf8_decode(str(self));
  std::vector<Value> out;
  size_t start = 0;
  for (size_t i = 0; i < cps.size(); ++i) {
    if (!is_line_break(cps[i])) continue;
    size_t end = i + 1;
    if (cps[i] == '\r' && i + 1 < cps.size() && cps[i + 1] == '\n') ++end;
    out.emplace_back(utf8_encode(std::u32string_view(cps).substr(start, (keep ? end : i) - start)));
    start = end;
    i = end - 1;
  }
  if (start < cps.size()) out.emplace_back(utf8_encode(std::u32string_view(cps).substr(start)));
  return Value::list(std::move(out));
}

Result<Value> m_replace(Interpreter& in, const Value& self, Args& args) {
  BIND(b, "replace", "old", "new", "count");
  auto old_s = arg_str(b.get(0), "", "replace() argument 1");
  if (!old_s.ok()) return old_s.status();
  auto new_s = arg_str(b.get(1), "", "replace() argument 2");
  if (!new_s.ok()) return new_s.status();
  if (!b.has(0) || !b.has(1)) return Status::error("replace() takes at least 2 arguments");
  auto count = arg_int(b.get(2), -1, "count");
  if (!count.ok()) return count.status();
  const std::string& s = str(self);
  std::string out;
  int64_t left = *count;
  if (old_s->empty()) {
    // Python inserts `new` before every code point and at the end
    const std::u32string cps = utf8_decode(s);
    for (size_t i = 0; i <= cps.size(); ++i) {
      if (left != 0) {
        out += *new_s;
        if (left > 0) --left;
      }
      if (i < cps.size()) utf8_append(out, cps[i]);
      MINNOW_RETURN_IF_ERROR(in.check_bytes(out.size()));
    }
    return Value(std::move(out));
  }
  size_t pos = 0;
  while (left != 0) {
    const size_t f = s.find(*old_s, pos);
    if (f == std::string::npos) break;
    out.append(s, pos, f - pos);
    out += *new_s;
    MINNOW_RETURN_IF_ERROR(in.check_bytes(out.size()));
    pos = f + old_s->size();
    if (left > 0) --left;
  }
  out.append(s, pos, std::string::npos);
  MINNOW_RETURN_IF_ERROR(in.check_bytes(out.size()));
  return Value(std::move(out));
}

Result<Value> no_args(const Args& args, const char* fn) {
  if (!args.pos.empty() || !args.kw.empty()) {
    return Status::error(std::string(fn) + "() takes no arguments");
  }
  return Value();
}

Result<Value> m_upper(Interpreter&, const Value& s, Args& a) {
  MINNOW_RETURN_IF_ERROR(no_args(a, "upper").status());
  return Value(py_upper(str(s)));
}
Result<Value> m_lower(Interpreter&, const Value& s, Args& a) {
  MINNOW_RETURN_IF_ERROR(no_args(a, "lower").status());
  return Value(py_lower(str(s)));
}

std::string py_title(std::string_view s) {
  std::u32string cps = utf8_decode(s);
  bool prev_cased = false;
  for (char32_t& c : cps) {
    const char32_t orig = c;
    c = prev_cased ? to_lower(c) : to_title(c);
    prev_cased = py_iscased(orig);
  }
  return utf8_encode(cps);
}

std::string py_capitalize(std::string_view s) {
  std::u32string cps = utf8_decode(s);
  for (size_t i = 0; i < cps.size(); ++i) cps[i] = i == 0 ? to_title(cps[i]) : to_lower(cps[i]);
  return utf8_encode(cps);
}

Result<Value> m_title(Interpreter&, const Value& s, Args& a) {
  MINNOW_RETURN_IF_ERROR(no_args(a, "title").status());
  return Value(py_title(str(s)));
}
Result<Value> m_capitalize(Interpreter&, const Value& s, Args& a) {
  MINNOW_RETURN_IF_ERROR(no_args(a, "capitalize").status());
  return Value(py_capitalize(str(s)));
}
Result<Value> m_swapcase(Interpreter&, const Value& s, Args& a) {
  MINNOW_RETURN_IF_ERROR(no_args(a, "swapcase").status());
  std::u32string cps = utf8_decode(str(s));
  for (char32_t& c : cps) {
    if (py_iscased_upper(c)) {
      c = to_lower(c);
    } else if (py_iscased_lower(c)) {
      c = to_upper(c);
    }
  }
  return Value(utf8_encode(cps));
}

// Code point index of sub in s (Python's find/rfind), or -1.
int64_t cp_find(const std::string& s, const std::string& sub, bool from_right) {
  const size_t f = from_right ? s.rfind(sub) : s.find(sub);
  if (f == std::string::npos) return -1;
  return static_cast<int64_t>(utf8_length(std::string_view(s).substr(0, f)));
}

Result<Value> find_impl(const Value& self, Args& args, bool from_right, bool raise,
                        const char* fn) {
  BIND(b, fn, "sub");
  auto sub = arg_str(b.get(0), "", std::string(fn) + "() argument");
  if (!sub.ok()) return sub.status();
  const int64_t i = cp_find(str(self), *sub, from_right);
  if (i < 0 && raise) return Status::error("substring not found");
  return Value(i);
}
Result<Value> m_find(Interpreter&, const Value& s, Args& a) {
  return find_impl(s, a, false, false, "find");
}
Result<Value> m_rfind(Interpreter&, const Value& s, Args& a) {
  return find_impl(s, a, true, false, "rfind");
}
Result<Value> m_index(Interpreter&, const Value& s, Args& a) {
  return find_impl(s, a, false, true, "index");
}
Result<Value> m_rindex(Interpreter&, const Value& s, Args& a) {
  return find_impl(s, a, true, true, "rindex");
}

Result<Value> m_count(Interpreter&, const Value& self, Args& args) {
  BIND(b, "count", "sub");
  auto sub = arg_str(b.get(0), "", "count() argument");
  if (!sub.ok()) return sub.status();
  const std::string& s = str(self);
  if (sub->empty()) return Value(static_cast<int64_t>(utf8_length(s) + 1));
  int64_t n = 0;
  for (size_t p = s.find(*sub); p != std::string::npos; p = s.find(*sub, p + sub->size())) ++n;
  return Value(n);
}

Result<Value> m_join(Interpreter& in, const Value& self, Args& args) {
  BIND(b, "join", "iterable");
  if (!b.has(0)) return Status::error("join() takes exactly one argument (0 given)");
  auto items = in.iterate(*b.get(0));
  if (!items.ok()) return items.status();
  std::string out;
  for (size_t i = 0; i < items->size(); ++i) {
    const Value& v = (*items)[i];
    if (!v.is_string()) {
      return Status::error("sequence item " + std::to_string(i) + ": expected str instance, " +
                           type_name(v) + " found");
    }
    if (i > 0) out += str(self);
    out += v.as_string();
    MINNOW_RETURN_IF_ERROR(in.check_bytes(out.size()));
  }
  return Value(std::move(out));
}

template <bool (*Pred)(char32_t)>
Result<Value> all_of(Interpreter&, const Value& self, Args& args) {
  MINNOW_RETURN_IF_ERROR(no_args(args, "is*").status());
  const std::u32string cps = utf8_decode(str(self));
  if (cps.empty()) return Value(false);
  for (char32_t c : cps) {
    if (!Pred(c)) return Value(false);
  }
  return Value(true);
}

Result<Value> cased_test(const Value& self, bool upper) {
  bool any = false;
  for (char32_t c : utf8_decode(str(self))) {
    if (upper ? py_iscased_lower(c) : py_iscased_upper(c)) return Value(false);
    if (upper ? py_iscased_upper(c) : py_iscased_lower(c)) any = true;
  }
  return Value(any);
}
Result<Value> m_isupper(Interpreter&, const Value& s, Args&) { return cased_test(s, true); }
Result<Value> m_islower(Interpreter&, const Value& s, Args&) { return cased_test(s, false); }

Result<Value> m_format(Interpreter& in, const Value& self, Args& args) {
  auto r = str_format(in, str(self), args);
  if (!r.ok()) return r.status();
  return Value(std::move(*r));
}

Result<Value> justify(Interpreter& in, const Value& self, Args& args, char how, const char* fn) {
  BIND(b, fn, "width", "fillchar");
  auto width = arg_int(b.get(0), 0, "width");
  if (!width.ok()) return width.status();
  auto fill = arg_str(b.get(1), " ", "fillchar");
  if (!fill.ok()) return fill.status();
  if (utf8_length(*fill) != 1)
    return Status::error("The fill character must be exactly one character long");
  const std::string& s = str(self);
  const int64_t len = static_cast<int64_t>(utf8_length(s));
  if (*width <= len) return self;
  const size_t n = static_cast<size_t>(*width - len);
  MINNOW_RETURN_IF_ERROR(in.check_bytes(s.size() + n * fill->size()));
  auto fills = [&](size_t k) {
    std::string f;
    for (size_t i = 0; i < k; ++i) f += *fill;
    return f;
  };
  if (how == '<') return Value(s + fills(n));
  if (how == '>') return Value(fills(n) + s);
  // Python's center puts the extra space on the right when n and width are both odd... it
  // uses left = n/2 + (n & width & 1)
  const size_t left = n / 2 + (n & static_cast<size_t>(*width) & 1);
  return Value(fills(left) + s + fills(n - left));
}
Result<Value> m_center(Interpreter& in, const Value& s, Args& a) {
  return justify(in, s, a, '^', "center");
}
Result<Value> m_ljust(Interpreter& in, const Value& s, Args& a) {
  return justify(in, s, a, '<', "ljust");
}
Result<Value> m_rjust(Interpreter& in, const Value& s, Args& a) {
  return justify(in, s, a, '>', "rjust");
}

Result<Value> m_zfill(Interpreter& in, const Value& self, Args& args) {
  BIND(b, "zfill", "width");
  auto width = arg_int(b.get(0), 0, "width");
  if (!width.ok()) return width.status();
  std::string s = str(self);
  const int64_t len = static_cast<int64_t>(utf8_length(s));
  if (*width <= len) return self;
  MINNOW_RETURN_IF_ERROR(in.check_bytes(static_cast<size_t>(*width)));
  const size_t n = static_cast<size_t>(*width - len);
  const size_t at = (!s.empty() && (s[0] == '+' || s[0] == '-')) ? 1 : 0;
  s.insert(at, n, '0');
  return Value(std::move(s));
}

Result<Value> affix_remove(const Value& self, Args& args, bool prefix) {
  BIND(b, prefix ? "removeprefix" : "removesuffix", "affix");
  auto a = arg_str(b.get(0), "", "argument");
  if (!a.ok()) return a.status();
  const std::string& s = str(self);
  if (prefix && s.starts_with(*a)) return Value(s.substr(a->size()));
  if (!prefix && s.ends_with(*a)) return Value(s.substr(0, s.size() - a->size()));
  return self;
}
Result<Value> m_removeprefix(Interpreter&, const Value& s, Args& a) {
  return affix_remove(s, a, true);
}
Result<Value> m_removesuffix(Interpreter&, const Value& s, Args& a) {
  return affix_remove(s, a, false);
}

Result<Value> partition_impl(const Value& self, Args& args, bool from_right) {
  BIND(b, from_right ? "rpartition" : "partition", "sep");
  auto sep = arg_str(b.get(0), "", "sep");
  if (!sep.ok()) return sep.status();
  if (sep->empty()) return Status::error("empty separator");
  const std::string& s = str(self);
  const size_t f = from_right ? s.rfind(*sep) : s.find(*sep);
  if (f == std::string::npos) {
    return from_right ? Value::tuple({Value(""), Value(""), self})
                      : Value::tuple({self, Value(""), Value("")});
  }
  return Value::tuple({Value(s.substr(0, f)), Value(*sep), Value(s.substr(f + sep->size()))});
}
Result<Value> m_partition(Interpreter&, const Value& s, Args& a) {
  return partition_impl(s, a, false);
}
Result<Value> m_rpartition(Interpreter&, const Value& s, Args& a) {
  return partition_impl(s, a, true);
}

// ---- dict ----

Result<Value> m_keys(Interpreter&, const Value& self, Args& args) {
  MINNOW_RETURN_IF_ERROR(no_args(args, "keys").status());
  std::vector<Value> out;
  for (const auto& [k, v] : self.as_dict().entries()) out.push_back(k);
  return Sequence::make(Sequence::Type::kDictKeys, std::move(out));
}
Result<Value> m_values(Interpreter&, const Value& self, Args& args) {
  MINNOW_RETURN_IF_ERROR(no_args(args, "values").status());
  std::vector<Value> out;
  for (const auto& [k, v] : self.as_dict().entries()) out.push_back(v);
  return Sequence::make(Sequence::Type::kDictValues, std::move(out));
}
Result<Value> m_items(Interpreter&, const Value& self, Args& args) {
  MINNOW_RETURN_IF_ERROR(no_args(args, "items").status());
  std::vector<Value> out;
  for (const auto& [k, v] : self.as_dict().entries()) out.push_back(Value::tuple({k, v}));
  return Sequence::make(Sequence::Type::kDictItems, std::move(out));
}
Result<Value> m_get(Interpreter&, const Value& self, Args& args) {
  BIND(b, "get", "key", "default");
  if (!b.has(0)) return Status::error("get expected at least 1 argument, got 0");
  auto k = hash_key(*b.get(0));
  if (!k.ok()) return k.status();
  if (const Value* v = self.as_dict().find(*b.get(0))) return *v;
  return b.has(1) ? *b.get(1) : Value::none();
}
Result<Value> m_copy(Interpreter&, const Value& self, Args& args) {
  MINNOW_RETURN_IF_ERROR(no_args(args, "copy").status());
  return self;  // containers are immutable here, so sharing is a faithful copy
}

// ---- list ----

Result<Value> m_list_count(Interpreter&, const Value& self, Args& args) {
  BIND(b, "count", "value");
  if (!b.has(0)) return Status::error("count() takes exactly one argument (0 given)");
  int64_t n = 0;
  for (const Value& v : self.items()) n += equals(v, *b.get(0)) ? 1 : 0;
  return Value(n);
}
Result<Value> m_list_index(Interpreter&, const Value& self, Args& args) {
  BIND(b, "index", "value");
  if (!b.has(0)) return Status::error("index expected at least 1 argument, got 0");
  const auto& items = self.items();
  for (size_t i = 0; i < items.size(); ++i) {
    if (equals(items[i], *b.get(0))) return Value(static_cast<int64_t>(i));
  }
  return Status::error(repr(*b.get(0)) + " is not in list");
}

struct MethodEntry {
  std::string_view name;
  MethodFn fn;  // nullptr: exists but refused by the sandbox
};

constexpr MethodEntry kStrMethods[] = {
    {"strip", m_strip},
    {"lstrip", m_lstrip},
    {"rstrip", m_rstrip},
    {"startswith", m_startswith},
    {"endswith", m_endswith},
    {"split", m_split},
    {"rsplit", m_rsplit},
    {"splitlines", m_splitlines},
    {"replace", m_replace},
    {"upper", m_upper},
    {"lower", m_lower},
    {"casefold", m_lower},
    {"title", m_title},
    {"capitalize", m_capitalize},
    {"swapcase", m_swapcase},
    {"find", m_find},
    {"rfind", m_rfind},
    {"index", m_index},
    {"rindex", m_rindex},
    {"count", m_count},
    {"join", m_join},
    {"isdigit", all_of<py_isdigit>},
    {"isdecimal", all_of<py_isdigit>},
    {"isnumeric", all_of<py_isdigit>},
    {"isalpha", all_of<py_isalpha>},
    {"isalnum", all_of<py_isalnum>},
    {"isspace", all_of<py_isspace>},
    {"isupper", m_isupper},
    {"islower", m_islower},
    {"format", m_format},
    {"center", m_center},
    {"ljust", m_ljust},
    {"rjust", m_rjust},
    {"zfill", m_zfill},
    {"removeprefix", m_removeprefix},
    {"removesuffix", m_removesuffix},
    {"partition", m_partition},
    {"rpartition", m_rpartition},
};

constexpr MethodEntry kDictMethods[] = {
    {"keys", m_keys},    {"values", m_values}, {"items", m_items},   {"get", m_get},
    {"copy", m_copy},    {"pop", nullptr},     {"popitem", nullptr}, {"setdefault", nullptr},
    {"update", nullptr}, {"clear", nullptr},
};

constexpr MethodEntry kListMethods[] = {
    {"count", m_list_count}, {"index", m_list_index}, {"copy", m_copy},   {"append", nullptr},
    {"extend", nullptr},     {"insert", nullptr},     {"pop", nullptr},   {"remove", nullptr},
    {"reverse", nullptr},    {"sort", nullptr},       {"clear", nullptr},
};

constexpr MethodEntry kTupleMethods[] = {
    {"count", m_list_count},
    {"index", m_list_index},
};

template <size_t N>
MethodAccess lookup_in(const MethodEntry (&table)[N], std::string_view name, MethodFn* fn) {
  for (const auto& e : table) {
    if (e.name == name) {
      *fn = e.fn;
      return e.fn ? MethodAccess::kSafe : MethodAccess::kUnsafe;
    }
  }
  return MethodAccess::kNone;
}

}  // namespace

MethodAccess find_method(const Value& self, std::string_view name, MethodFn* fn) {
  switch (self.kind()) {
    case Kind::kString:
      return lookup_in(kStrMethods, name, fn);
    case Kind::kDict:
      return lookup_in(kDictMethods, name, fn);
    case Kind::kList:
      return self.is_tuple() ? lookup_in(kTupleMethods, name, fn)
                             : lookup_in(kListMethods, name, fn);
    default:
      return MethodAccess::kNone;
  }
}

Value make_bound_method(const Value& self, std::string name, MethodFn fn) {
  return Value(std::shared_ptr<Object>(std::make_shared<BoundMethod>(self, std::move(name), fn)));
}

}  // namespace minnow::text::jinja
