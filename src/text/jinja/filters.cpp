// jinja2's builtin filters, with Hugging Face's tojson (json.dumps with ensure_ascii=False).
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "text/jinja/builtins.h"
#include "text/jinja/unicode.h"

namespace minnow::text::jinja {

namespace {

#define BIND(var, fn, ...)                      \
  auto var##_r = bind(args, {__VA_ARGS__}, fn); \
  if (!var##_r.ok()) return var##_r.status();   \
  const Bound& var = *var##_r

#define TRY_ASSIGN(lhs, expr)                 \
  auto lhs##_r = (expr);                      \
  if (!lhs##_r.ok()) return lhs##_r.status(); \
  auto& lhs = *lhs##_r

// jinja2's soft_str: str(), with Undefined as "".
std::string soft_str(const Value& v) { return to_str(v); }

// jinja2's make_attrgetter: "a.b.0" looked up part by part with the sandbox's getitem.
Result<Value> get_path(Interpreter& in, const Value& item, const Value& attribute) {
  if (!attribute.is_string()) return in.getitem(item, attribute);
  Value cur = item;
  std::string_view path = attribute.as_string();
  while (true) {
    const size_t dot = path.find('.');
    const std::string_view part = path.substr(0, dot);
    bool digits = !part.empty();
    for (char c : part) digits = digits && c >= '0' && c <= '9';
    const Value key =
        digits ? Value(static_cast<int64_t>(std::strtoll(std::string(part).c_str(), nullptr, 10)))
               : Value(part);
    auto r = in.getitem(cur, key);
    if (!r.ok()) return r;
    cur = std::move(*r);
    if (dot == std::string_view::npos) return cur;
    path.remove_prefix(dot + 1);
  }
}

// Filters built on str methods keep a Markup a Markup (markupsafe wraps those methods).
Value same_kind(const Value& input, std::string s) {
  return input.is_markup() ? Value::markup(std::move(s)) : Value(std::move(s));
}

Value generator(std::vector<Value> items, const char* origin) {
  return Sequence::make(Sequence::Type::kGenerator, std::move(items), origin);
}

// A generator filter's failure surfaces when the generator is iterated, as in jinja2.
Result<Value> lazy_errors(Result<Value> r, const char* origin) {
  if (r.ok()) return r;
  return Sequence::failing(origin, r.status());
}

// Sort key: lower-cased strings unless case-sensitive.
Value fold(const Value& v, bool case_sensitive) {
  if (!case_sensitive && v.is_string()) return Value(py_lower(v.as_string()));
  return v;
}

// Stable sort of items by keys with Python's ordering; fails on unorderable keys.
Status sort_by_keys(std::vector<std::pair<Value, Value>>& kv, bool reverse) {
  Status err;
  std::stable_sort(kv.begin(), kv.end(), [&](const auto& a, const auto& b) {
    if (!err.ok()) return false;
    auto c = reverse ? compare(b.first, a.first, "<") : compare(a.first, b.first, "<");
    if (!c.ok()) {
      err = c.status();
      return false;
    }
    return *c < 0;
  });
  return err;
}

Result<Value> f_abs(Interpreter&, const Value& v, Args& args) {
  BIND(b, "abs");
  (void)b;
  if (v.is_undefined()) return undefined_error(v);
  if (v.is_float()) return Value(std::fabs(v.as_float()));
  if (v.is_int() || v.is_bool()) {
    if (v.to_int() == INT64_MIN) return Status::error("integer overflow");
    return Value(v.to_int() < 0 ? -v.to_int() : v.to_int());
  }
  return Status::error("bad operand type for abs(): '" + type_name(v) + "'");
}

Result<Value> f_attr(Interpreter&, const Value& v, Args& args) {
  BIND(b, "attr", "name");
  TRY_ASSIGN(name, arg_str(b.get(0), "", "attr name"));
  if (v.is_undefined()) return undefined_error(v);
  if (name.starts_with("__")) {
    UndefinedInfo info{name, repr_string(type_name(v)) + " object", false, true};
    return Value::undefined(std::move(info));
  }
  MethodFn fn = nullptr;
  switch (find_method(v, name, &fn)) {
    case MethodAccess::kSafe:
      return make_bound_method(v, name, fn);
    case MethodAccess::kUnsafe: {
      UndefinedInfo info{name, repr_string(type_name(v)) + " object", false, true};
      return Value::undefined(std::move(info));
    }
    case MethodAccess::kNone:
      break;
  }
  if (v.is_object()) {
    if (auto a = v.as_object().attr(name)) return *a;
  }
  return Value::undefined(UndefinedInfo{name, object_type_repr(v)});
}

Result<Value> f_batch_eager(Interpreter& in, const Value& v, Args& args) {
  BIND(b, "batch", "linecount", "fill_with");
  TRY_ASSIGN(n, arg_int(b.get(0), 0, "linecount"));
  if (n <= 0) return Status::error("batch size must be positive");
  TRY_ASSIGN(items, in.iterate(v));
  std::vector<Value> out, cur;
  for (const Value& item : items) {
    cur.push_back(item);
    if (static_cast<int64_t>(cur.size()) == n) {
      out.push_back(Value::list(std::move(cur)));
      cur.clear();
    }
  }
  if (!cur.empty()) {
    if (b.has(1) && !b.get(1)->is_none()) {
      while (static_cast<int64_t>(cur.size()) < n) cur.push_back(*b.get(1));
    }
    out.push_back(Value::list(std::move(cur)));
  }
  return generator(std::move(out), "do_batch");
}
Result<Value> f_batch(Interpreter& in, const Value& v, Args& args) {
  return lazy_errors(f_batch_eager(in, v, args), "do_batch");
}

std::string capitalize_str(std::string_view s) {
  std::u32string cps = utf8_decode(s);
  for (size_t i = 0; i < cps.size(); ++i) cps[i] = i == 0 ? to_title(cps[i]) : to_lower(cps[i]);
  return utf8_encode(cps);
}

Result<Value> f_capitalize(Interpreter&, const Value& v, Args& args) {
  BIND(b, "capitalize");
  (void)b;
  return Value(capitalize_str(soft_str(v)));
}

Result<Value> f_center(Interpreter& in, const Value& v, Args& args) {
  BIND(b, "center", "width");
  TRY_ASSIGN(width, arg_int(b.get(0), 80, "width"));
  const std::string s = soft_str(v);
  const int64_t len = static_cast<int64_t>(utf8_length(s));
  if (width <= len) return Value(s);
  const size_t n = static_cast<size_t>(width - len);
  MINNOW_RETURN_IF_ERROR(in.check_bytes(s.size() + n));
  const size_t left = n / 2 + (n & static_cast<size_t>(width) & 1);
  return Value(std::string(left, ' ') + s + std::string(n - left, ' '));
}

Result<Value> f_default(Interpreter&, const Value& v, Args& args) {
  BIND(b, "default", "default_value", "boolean");
  const bool boolean = arg_bool(b.get(1), false);
  if (v.is_undefined() || (boolean && !truthy(v))) return b.has(0) ? *b.get(0) : Value("");
  return v;
}

Result<Value> f_dictsort(Interpreter&, const Value& v, Args& args) {
  BIND(b, "dictsort", "case_sensitive", "by", "reverse");
  const bool cs = arg_bool(b.get(0), false);
  TRY_ASSIGN(by, arg_str(b.get(1), "key", "by"));
  const bool reverse = arg_bool(b.get(2), false);
  if (by != "key" && by != "value")
    return Status::error("You can only sort by either 'key' or 'value'");
  if (!v.is_dict()) return Status::error("dictsort needs a mapping, not " + type_name(v));
  std::vector<std::pair<Value, Value>> kv;
  for (const auto& [k, val] : v.as_dict().entries()) {
    kv.emplace_back(fold(by == "key" ? k : val, cs), Value::tuple({k, val}));
  }
  MINNOW_RETURN_IF_ERROR(sort_by_keys(kv, reverse));
  std::vector<Value> out;
  for (auto& [k, item] : kv) out.push_back(std::move(item));
  return Value::list(std::move(out));
}

Result<Value> f_escape(Interpreter& in, const Value& v, Args& args) {
  BIND(b, "escape");
  (void)b;
  if (v.is_markup()) return v;  // already safe
  std::string out = html_escape(soft_str(v));
  MINNOW_RETURN_IF_ERROR(in.check_bytes(out.size()));
  return Value::markup(std::move(out));
}

Result<Value> f_forceescape(Interpreter& in, const Value& v, Args& args) {
  BIND(b, "forceescape");
  (void)b;
  std::string out = html_escape(soft_str(v));
  MINNOW_RETURN_IF_ERROR(in.check_bytes(out.size()));
  return Value::markup(std::move(out));
}

Result<Value> f_first(Interpreter& in, const Value& v, Args& args) {
  BIND(b, "first");
  (void)b;
  if (v.is_list()) {
    if (!v.items().empty()) return v.items().front();
  } else if (v.is_object() && dynamic_cast<Sequence*>(&v.as_object())) {
    if (auto x = static_cast<Sequence&>(v.as_object()).next()) return *x;  // consumes one
  } else {
    TRY_ASSIGN(items, in.iterate(v));
    if (!items.empty()) return items.front();
  }
  return Value::undefined(UndefinedInfo{"No first item, sequence was empty.", ""});
}

Result<Value> f_last(Interpreter& in, const Value& v, Args& args) {
  BIND(b, "last");
  (void)b;
  if (v.is_list()) {
    if (!v.items().empty()) return v.items().back();
  } else if (v.is_object() && !v.as_object().length()) {
    return Status::error("'" + type_name(v) + "' object is not reversible");
  } else {
    TRY_ASSIGN(items, in.iterate(v));
    if (!items.empty()) return items.back();
  }
  return Value::undefined(UndefinedInfo{"No last item, sequence was empty.", ""});
}

// Python float(str): optional whitespace, sign, digits with '_', inf/nan.
bool parse_py_float(const std::string& s, double* out) {
  const std::string t = py_strip(s, nullptr, true, true);
  if (t.empty()) return false;
  std::string clean;
  for (size_t i = 0; i < t.size(); ++i) {
    if (t[i] == '_') {
      if (i == 0 || i + 1 >= t.size() || !std::isdigit(static_cast<unsigned char>(t[i - 1])) ||
          !std::isdigit(static_cast<unsigned char>(t[i + 1]))) {
        return false;
      }
      continue;
    }
    clean.push_back(t[i]);
  }
  std::string lower = py_lower(clean);
  std::string_view body = lower;
  if (!body.empty() && (body[0] == '+' || body[0] == '-')) body.remove_prefix(1);
  if (body == "inf" || body == "infinity" || body == "nan") {
    *out = std::strtod(lower.c_str(), nullptr);
    return true;
  }
  for (char c : body) {
    if (!(std::isdigit(static_cast<unsigned char>(c)) || c == '.' || c == 'e' || c == '+' ||
          c == '-')) {
      return false;
    }
  }
  char* end = nullptr;
  *out = std::strtod(clean.c_str(), &end);
  return end && *end == '\0';
}

// Python int(str, base): optional whitespace, sign, digits with '_'.
bool parse_py_int(const std::string& s, int base, int64_t* out) {
  const std::string t = py_strip(s, nullptr, true, true);
  std::string clean;
  for (size_t i = 0; i < t.size(); ++i) {
    if (t[i] == '_') {
      if (i == 0 || i + 1 >= t.size()) return false;
      continue;
    }
    clean.push_back(t[i]);
  }
  if (clean.empty()) return false;
  size_t start = (clean[0] == '+' || clean[0] == '-') ? 1 : 0;
  // a 0x / 0o / 0b prefix is allowed when it names the base
  if (clean.size() >= start + 2 && clean[start] == '0') {
    const char p = static_cast<char>(clean[start + 1] | 0x20);
    if ((p == 'x' && base == 16) || (p == 'o' && base == 8) || (p == 'b' && base == 2)) {
      clean.erase(start, 2);
    }
  }
  if (start >= clean.size()) return false;
  for (size_t i = start; i < clean.size(); ++i) {
    const char c = static_cast<char>(clean[i] | 0x20);
    const int d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'z') ? c - 'a' + 10 : 99;
    if (d >= base) return false;
  }
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(clean.c_str(), &end, base);
  if (errno == ERANGE || !end || *end != '\0') return false;
  *out = v;
  return true;
}

Result<Value> f_float(Interpreter&, const Value& v, Args& args) {
  BIND(b, "float", "default");
  if (v.is_undefined()) return undefined_error(v);  // float(Undefined) raises
  const Value dflt = b.has(0) ? *b.get(0) : Value(0.0);
  if (v.is_number()) return Value(v.to_double());
  double d;
  if (v.is_string() && parse_py_float(v.as_string(), &d)) return Value(d);
  return dflt;
}

Result<Value> f_int(Interpreter&, const Value& v, Args& args) {
  BIND(b, "int", "default", "base");
  const Value dflt = b.has(0) ? *b.get(0) : Value(0);
  TRY_ASSIGN(base, arg_int(b.get(1), 10, "base"));
  if (v.is_undefined()) return undefined_error(v);  // int(Undefined) raises
  if (v.is_int() || v.is_bool()) return Value(v.to_int());
  if (v.is_float()) {
    const double d = v.as_float();
    if (std::isnan(d)) return Status::error("cannot convert float NaN to integer");
    if (std::isinf(d)) return Status::error("cannot convert float infinity to integer");
    if (std::fabs(d) >= 9.2e18) return Status::error("integer overflow");
    return Value(static_cast<int64_t>(d));
  }
  if (v.is_string()) {
    int64_t i;
    if (base >= 2 && base <= 36 && parse_py_int(v.as_string(), static_cast<int>(base), &i)) {
      return Value(i);
    }
    double d;
    if (parse_py_float(v.as_string(), &d) && std::isfinite(d) && std::fabs(d) < 9.2e18) {
      return Value(static_cast<int64_t>(d));
    }
  }
  return dflt;
}

Result<Value> f_format(Interpreter& in, const Value& v, Args& args) {
  if (!args.pos.empty() && !args.kw.empty()) {
    return Status::error("can't handle positional and keyword arguments at the same time");
  }
  Value fmt_args;
  if (!args.kw.empty()) {
    auto d = std::make_shared<Dict>();
    for (const auto& [k, val] : args.kw) d->set(k, val);
    fmt_args = Value(std::shared_ptr<const Dict>(std::move(d)));
  } else {
    fmt_args = Value::tuple(args.pos);
  }
  TRY_ASSIGN(s, percent_format(soft_str(v), fmt_args));
  MINNOW_RETURN_IF_ERROR(in.check_bytes(s.size()));
  return Value(std::move(s));
}

Result<Value> f_groupby(Interpreter& in, const Value& v, Args& args) {
  BIND(b, "groupby", "attribute", "default", "case_sensitive");
  if (!b.has(0)) return Status::error("groupby() needs an attribute");
  const bool cs = arg_bool(b.get(2), false);
  TRY_ASSIGN(items, in.iterate(v));
  std::vector<std::pair<Value, Value>> kv;
  for (const Value& item : items) {
    TRY_ASSIGN(key, get_path(in, item, *b.get(0)));
    if (key.is_undefined() && b.has(1)) key = *b.get(1);
    kv.emplace_back(fold(key, cs), item);
  }
  MINNOW_RETURN_IF_ERROR(sort_by_keys(kv, false));
  std::vector<Value> groups;
  for (size_t i = 0; i < kv.size();) {
    size_t j = i;
    std::vector<Value> members;
    while (j < kv.size() && equals(kv[j].first, kv[i].first)) members.push_back(kv[j++].second);
    Value grouper = kv[i].first;
    if (!cs) {  // the group key is the first original (not case-folded) key
      auto orig = get_path(in, members.front(), *b.get(0));
      if (orig.ok() && !orig->is_undefined()) grouper = *orig;
    }
    groups.push_back(Value::tuple({grouper, Value::list(std::move(members))}));
    i = j;
  }
  return Value::list(std::move(groups));
}

std::vector<std::string> split_lines(const std::string& s) {
  std::vector<std::string> out;
  const std::u32string cps = utf8_decode(s);
  size_t start = 0;
  for (size_t i = 0; i < cps.size(); ++i) {
    const char32_t c = cps[i];
    if (!(c == '\n' || c == '\r' || c == 0x0B || c == 0x0C || c == 0x1C || c == 0x1D || c == 0x1E ||
          c == 0x85 || c == 0x2028 || c == 0x2029)) {
      continue;
    }
    out.push_back(utf8_encode(std::u32string_view(cps).substr(start, i - start)));
    if (c == '\r' && i + 1 < cps.size() && cps[i + 1] == '\n') ++i;
    start = i + 1;
  }
  if (start < cps.size()) out.push_back(utf8_encode(std::u32string_view(cps).substr(start)));
  return out;
}

Result<Value> f_indent(Interpreter& in, const Value& v, Args& args) {
  BIND(b, "indent", "width", "first", "blank");
  std::string pad;
  if (b.has(0) && b.get(0)->is_string()) {
    pad = b.get(0)->as_string();
  } else {
    TRY_ASSIGN(w, arg_int(b.get(0), 4, "width"));
    if (w > 0) {
      MINNOW_RETURN_IF_ERROR(in.check_bytes(static_cast<size_t>(w)));
      pad.assign(static_cast<size_t>(w), ' ');
    }
  }
  const bool first = arg_bool(b.get(1), false);
  const bool blank = arg_bool(b.get(2), false);
  // jinja2 appends "\n" to the value itself, which only strings survive
  if (v.is_undefined()) return undefined_error(v);
  if (!v.is_string())
    return Status::error("'" + type_name(v) + "' object has no attribute 'splitlines'");
  std::vector<std::string> lines = split_lines(soft_str(v) + "\n");
  std::string out;
  if (blank) {
    for (size_t i = 0; i < lines.size(); ++i) {
      if (i > 0) out += "\n" + pad;
      out += lines[i];
      MINNOW_RETURN_IF_ERROR(in.check_bytes(out.size()));
    }
  } else {
    out = lines.empty() ? std::string() : lines[0];
    for (size_t i = 1; i < lines.size(); ++i) {
      out += "\n";
      if (!lines[i].empty()) out += pad;
      out += lines[i];
      MINNOW_RETURN_IF_ERROR(in.check_bytes(out.size()));
    }
  }
  if (first) out = pad + out;
  return same_kind(v, std::move(out));
}

Result<Value> f_items_eager(Interpreter&, const Value& v, Args& args) {
  BIND(b, "items");
  (void)b;
  if (v.is_undefined()) return generator({}, "do_items");
  if (!v.is_dict()) return Status::error("Can only get item pairs from a mapping.");
  std::vector<Value> out;
  for (const auto& [k, val] : v.as_dict().entries()) out.push_back(Value::tuple({k, val}));
  return generator(std::move(out), "do_items");
}
Result<Value> f_items(Interpreter& in, const Value& v, Args& args) {
  return lazy_errors(f_items_eager(in, v, args), "do_items");
}

Result<Value> f_join(Interpreter& in, const Value& v, Args& args) {
  BIND(b, "join", "d", "attribute");
  TRY_ASSIGN(sep, arg_str(b.get(0), "", "join separator"));
  TRY_ASSIGN(items, in.iterate(v));
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += sep;
    if (b.has(1) && !b.get(1)->is_none()) {
      TRY_ASSIGN(x, get_path(in, items[i], *b.get(1)));
      append_str(out, x);
    } else {
      append_str(out, items[i]);
    }
    MINNOW_RETURN_IF_ERROR(in.check_bytes(out.size()));
  }
  return Value(std::move(out));
}

Result<Value> f_length(Interpreter&, const Value& v, Args& args) {
  BIND(b, "length");
  (void)b;
  switch (v.kind()) {
    case Kind::kUndefined:
      return Value(0);
    case Kind::kString:
      return Value(static_cast<int64_t>(utf8_length(v.as_string())));
    case Kind::kList:
      return Value(static_cast<int64_t>(v.items().size()));
    case Kind::kDict:
      return Value(static_cast<int64_t>(v.as_dict().size()));
    case Kind::kObject:
      if (auto n = v.as_object().length()) return Value(static_cast<int64_t>(*n));
      [[fallthrough]];
    default:
      return Status::error("object of type '" + type_name(v) + "' has no len()");
  }
}

Result<Value> f_list(Interpreter& in, const Value& v, Args& args) {
  BIND(b, "list");
  (void)b;
  TRY_ASSIGN(items, in.iterate(v));
  return Value::list(std::move(items));
}

Result<Value> f_lower(Interpreter&, const Value& v, Args& args) {
  BIND(b, "lower");
  (void)b;
  return same_kind(v, py_lower(soft_str(v)));
}

Result<Value> f_upper(Interpreter&, const Value& v, Args& args) {
  BIND(b, "upper");
  (void)b;
  return same_kind(v, py_upper(soft_str(v)));
}

Result<Value> f_map_eager(Interpreter& in, const Value& v, Args& args) {
  if (!truthy(v)) return generator({}, "sync_do_map");  // jinja2: `if value:` guards the loop
  TRY_ASSIGN(items, in.iterate(v));
  std::vector<Value> out;
  out.reserve(items.size());
  if (args.pos.empty()) {
    const Value* attribute = args.kwarg("attribute");
    const Value* dflt = args.kwarg("default");
    for (const auto& [k, val] : args.kw) {
      if (k != "attribute" && k != "default") {
        return Status::error("map() got an unexpected keyword argument '" + k + "'");
      }
    }
    if (!attribute) return Status::error("map requires a filter name or attribute=");
    for (const Value& item : items) {
      TRY_ASSIGN(x, get_path(in, item, *attribute));
      out.push_back(x.is_undefined() && dflt ? *dflt : x);
    }
    return generator(std::move(out), "sync_do_map");
  }
  if (!args.pos[0].is_string()) return Status::error("map() filter name must be a string");
  const std::string name = args.pos[0].as_string();
  Args rest;
  rest.pos.assign(args.pos.begin() + 1, args.pos.end());
  rest.kw = args.kw;
  for (const Value& item : items) {
    Args a = rest;
    TRY_ASSIGN(x, in.apply_filter(name, item, a));
    out.push_back(std::move(x));
  }
  return generator(std::move(out), "sync_do_map");
}
Result<Value> f_map(Interpreter& in, const Value& v, Args& args) {
  return lazy_errors(f_map_eager(in, v, args), "sync_do_map");
}

Result<Value> min_max(Interpreter& in, const Value& v, Args& args, bool want_max) {
  BIND(b, want_max ? "max" : "min", "case_sensitive", "attribute");
  const bool cs = arg_bool(b.get(0), false);
  TRY_ASSIGN(items, in.iterate(v));
  if (items.empty())
    return Value::undefined(UndefinedInfo{"No aggregated item, sequence was empty.", ""});
  const Value* best = nullptr;
  Value best_key;
  for (const Value& item : items) {
    Value key = item;
    if (b.has(1) && !b.get(1)->is_none()) {
      TRY_ASSIGN(k, get_path(in, item, *b.get(1)));
      key = k;
    }
    key = fold(key, cs);
    if (!best) {
      best = &item;
      best_key = key;
      continue;
    }
    TRY_ASSIGN(c, compare(key, best_key, want_max ? ">" : "<"));
    if (want_max ? c > 0 : c < 0) {
      best = &item;
      best_key = key;
    }
  }
  return *best;
}
Result<Value> f_max(Interpreter& in, const Value& v, Args& a) { return min_max(in, v, a, true); }
Result<Value> f_min(Interpreter& in, const Value& v, Args& a) { return min_max(in, v, a, false); }

// pprint.pformat sorts dict keys; it also wraps past 80 columns, which this does not do.
void append_pretty(std::string& out, const Value& v) {
  if (v.is_dict()) {
    std::vector<std::pair<Value, Value>> kv = v.as_dict().entries();
    Status ignored = sort_by_keys(kv, false);  // unorderable keys keep insertion order
    (void)ignored;
    out.push_back('{');
    for (size_t i = 0; i < kv.size(); ++i) {
      if (i > 0) out += ", ";
      append_pretty(out, kv[i].first);
      out += ": ";
      append_pretty(out, kv[i].second);
    }
    out.push_back('}');
  } else if (v.is_list()) {
    out.push_back(v.is_tuple() ? '(' : '[');
    for (size_t i = 0; i < v.items().size(); ++i) {
      if (i > 0) out += ", ";
      append_pretty(out, v.items()[i]);
    }
    if (v.is_tuple() && v.items().size() == 1) out.push_back(',');
    out.push_back(v.is_tuple() ? ')' : ']');
  } else {
    append_repr(out, v);
  }
}

Result<Value> f_pprint(Interpreter&, const Value& v, Args& args) {
  BIND(b, "pprint");
  (void)b;
  std::string out;
  append_pretty(out, v);
  return Value(std::move(out));
}

// select / reject / selectattr / rejectattr
Result<Value> select_eager(Interpreter& in, const Value& v, Args& args, bool by_attr, bool keep) {
  const char* origin = by_attr ? (keep ? "sync_do_selectattr" : "sync_do_rejectattr")
                               : (keep ? "sync_do_select" : "sync_do_reject");
  if (!truthy(v)) return generator({}, origin);  // jinja2: `if value:` guards the loop
  TRY_ASSIGN(items, in.iterate(v));
  size_t next = 0;
  Value attribute;
  if (by_attr) {
    if (args.pos.empty()) return Status::error("selectattr/rejectattr need an attribute");
    attribute = args.pos[next++];
  }
  std::string test;
  if (next < args.pos.size()) {
    if (!args.pos[next].is_string()) return Status::error("test name must be a string");
    test = args.pos[next++].as_string();
  }
  Args rest;
  rest.pos.assign(args.pos.begin() + static_cast<std::ptrdiff_t>(next), args.pos.end());
  rest.kw = args.kw;
  std::vector<Value> out;
  for (const Value& item : items) {
    Value subject = item;
    if (by_attr) {
      TRY_ASSIGN(x, get_path(in, item, attribute));
      subject = x;
    }
    bool pass;
    if (test.empty()) {
      pass = truthy(subject);
    } else {
      Args a = rest;
      TRY_ASSIGN(t, in.apply_test(test, subject, a));
      pass = t;
    }
    if (pass == keep) out.push_back(item);
  }
  return generator(std::move(out), origin);
}
Result<Value> select_impl(Interpreter& in, const Value& v, Args& args, bool by_attr, bool keep) {
  return lazy_errors(select_eager(in, v, args, by_attr, keep), "select_or_reject");
}
Result<Value> f_select(Interpreter& in, const Value& v, Args& a) {
  return select_impl(in, v, a, false, true);
}
Result<Value> f_reject(Interpreter& in, const Value& v, Args& a) {
  return select_impl(in, v, a, false, false);
}
Result<Value> f_selectattr(Interpreter& in, const Value& v, Args& a) {
  return select_impl(in, v, a, true, true);
}
Result<Value> f_rejectattr(Interpreter& in, const Value& v, Args& a) {
  return select_impl(in, v, a, true, false);
}

Result<Value> f_replace(Interpreter& in, const Value& v, Args& args) {
  BIND(b, "replace", "old", "new", "count");
  if (!b.has(0) || !b.has(1)) return Status::error("replace() needs old and new");
  Args a;
  a.pos = {Value(soft_str(*b.get(0))), Value(soft_str(*b.get(1)))};
  if (b.has(2) && !b.get(2)->is_none()) a.pos.push_back(*b.get(2));
  MethodFn fn = nullptr;
  const Value s(soft_str(v));
  find_method(s, "replace", &fn);
  return fn(in, s, a);
}

Result<Value> f_reverse(Interpreter& in, const Value& v, Args& args) {
  BIND(b, "reverse");
  (void)b;
  if (v.is_string()) {
    std::u32string cps = utf8_decode(v.as_string());
    std::reverse(cps.begin(), cps.end());
    return Value(utf8_encode(cps));
  }
  // reversed() where the value supports it (an iterator), else a reversed list
  // (Undefined has __len__ and __getitem__, so reversed() accepts it)
  const auto* seq = v.is_object() ? dynamic_cast<const Sequence*>(&v.as_object()) : nullptr;
  const bool reversible =
      v.is_list() || v.is_dict() || v.is_undefined() || (seq && !seq->one_shot());
  TRY_ASSIGN(items, in.iterate(v));
  std::reverse(items.begin(), items.end());
  if (reversible) return Sequence::make(Sequence::Type::kIterator, std::move(items));
  return Value::list(std::move(items));
}

Result<Value> f_round(Interpreter&, const Value& v, Args& args) {
  BIND(b, "round", "precision", "method");
  TRY_ASSIGN(precision, arg_int(b.get(0), 0, "precision"));
  TRY_ASSIGN(method, arg_str(b.get(1), "common", "method"));
  if (method != "common" && method != "ceil" && method != "floor") {
    return Status::error("method must be common, ceil or floor");
  }
  if (v.is_undefined()) return undefined_error(v);
  if (!v.is_number())
    return Status::error("type " + type_name(v) + " doesn't define __round__ method");
  if (method == "common") {
    if (!v.is_float()) return Value(v.to_int());  // Python's round(int, n) stays an int
    const double d = v.as_float();
    if (!std::isfinite(d)) return v;
    if (precision >= 0 && precision < 300) {
      char buf[512];
      std::snprintf(buf, sizeof(buf), "%.*f", static_cast<int>(precision), d);
      return Value(std::strtod(buf, nullptr));
    }
    const double scale = std::pow(10.0, static_cast<double>(-precision));
    return Value(std::nearbyint(d / scale) * scale);
  }
  const double scale = std::pow(10.0, static_cast<double>(precision));
  const double d = v.to_double() * scale;
  return Value((method == "ceil" ? std::ceil(d) : std::floor(d)) / scale);
}

Result<Value> f_safe(Interpreter&, const Value& v, Args& args) {
  BIND(b, "safe");
  (void)b;
  return Value::markup(soft_str(v));
}

Result<Value> f_slice_eager(Interpreter& in, const Value& v, Args& args) {
  BIND(b, "slice", "slices", "fill_with");
  TRY_ASSIGN(slices, arg_int(b.get(0), 0, "slices"));
  if (slices <= 0) return Status::error("slice count must be positive");
  TRY_ASSIGN(seq, in.iterate(v));
  const size_t n = static_cast<size_t>(slices);
  const size_t per = seq.size() / n, extra = seq.size() % n;
  std::vector<Value> out;
  size_t offset = 0;
  for (size_t i = 0; i < n; ++i) {
    const size_t start = offset + i * per;
    if (i < extra) ++offset;
    const size_t end = offset + (i + 1) * per;
    std::vector<Value> part(seq.begin() + static_cast<std::ptrdiff_t>(start),
                            seq.begin() + static_cast<std::ptrdiff_t>(end));
    if (b.has(1) && !b.get(1)->is_none() && i >= extra) part.push_back(*b.get(1));
    out.push_back(Value::list(std::move(part)));
  }
  return generator(std::move(out), "sync_do_slice");
}
Result<Value> f_slice(Interpreter& in, const Value& v, Args& args) {
  return lazy_errors(f_slice_eager(in, v, args), "sync_do_slice");
}

Result<Value> f_sort(Interpreter& in, const Value& v, Args& args) {
  BIND(b, "sort", "reverse", "case_sensitive", "attribute");
  const bool reverse = arg_bool(b.get(0), false);
  const bool cs = arg_bool(b.get(1), false);
  TRY_ASSIGN(items, in.iterate(v));
  std::vector<std::pair<Value, Value>> kv;
  for (const Value& item : items) {
    Value key = item;
    if (b.has(2) && !b.get(2)->is_none()) {
      TRY_ASSIGN(k, get_path(in, item, *b.get(2)));
      key = k;
    }
    kv.emplace_back(fold(key, cs), item);
  }
  MINNOW_RETURN_IF_ERROR(sort_by_keys(kv, reverse));
  std::vector<Value> out;
  for (auto& [k, item] : kv) out.push_back(std::move(item));
  return Value::list(std::move(out));
}

Result<Value> f_string(Interpreter&, const Value& v, Args& args) {
  BIND(b, "string");
  (void)b;
  return Value(soft_str(v));
}

Result<Value> f_striptags(Interpreter&, const Value& v, Args& args) {
  BIND(b, "striptags");
  (void)b;
  std::string s = soft_str(v);
  std::string out;
  for (size_t i = 0; i < s.size();) {
    if (s.compare(i, 4, "<!--") == 0) {
      const size_t e = s.find("-->", i + 4);
      if (e == std::string::npos) {
        out.append(s, i, std::string::npos);
        break;
      }
      i = e + 3;
    } else if (s[i] == '<') {
      const size_t e = s.find('>', i + 1);
      if (e == std::string::npos) {
        out.append(s, i, std::string::npos);
        break;
      }
      i = e + 1;
    } else {
      out.push_back(s[i++]);
    }
  }
  // unescape the entities html_escape produces, then collapse whitespace
  const std::pair<const char*, const char*> ents[] = {{"&lt;", "<"},   {"&gt;", ">"},
                                                      {"&#34;", "\""}, {"&quot;", "\""},
                                                      {"&#39;", "'"},  {"&amp;", "&"}};
  for (const auto& [from, to] : ents) {
    std::string r;
    const std::string f = from;
    size_t p = 0;
    for (size_t q = out.find(f); q != std::string::npos; q = out.find(f, p)) {
      r.append(out, p, q - p);
      r += to;
      p = q + f.size();
    }
    r.append(out, p, std::string::npos);
    out = std::move(r);
  }
  std::string collapsed;
  for (const Value& w : [&] {
         std::vector<Value> words;
         const std::u32string cps = utf8_decode(out);
         size_t i = 0;
         while (i < cps.size()) {
           while (i < cps.size() && py_isspace(cps[i])) ++i;
           size_t j = i;
           while (j < cps.size() && !py_isspace(cps[j])) ++j;
           if (j > i) words.emplace_back(utf8_encode(std::u32string_view(cps).substr(i, j - i)));
           i = j;
         }
         return words;
       }()) {
    if (!collapsed.empty()) collapsed.push_back(' ');
    collapsed += w.as_string();
  }
  return Value(std::move(collapsed));
}

Result<Value> f_sum(Interpreter& in, const Value& v, Args& args) {
  BIND(b, "sum", "attribute", "start");
  TRY_ASSIGN(items, in.iterate(v));
  Value total = b.has(1) ? *b.get(1) : Value(0);
  for (const Value& item : items) {
    Value x = item;
    if (b.has(0) && !b.get(0)->is_none()) {
      TRY_ASSIGN(k, get_path(in, item, *b.get(0)));
      x = k;
    }
    if (x.is_undefined()) return undefined_error(x);
    if (!total.is_number() || !x.is_number()) {
      return Status::error("unsupported operand type(s) for +: '" + type_name(total) + "' and '" +
                           type_name(x) + "'");
    }
    if (total.is_float() || x.is_float()) {
      total = Value(total.to_double() + x.to_double());
    } else {
      int64_t r;
      if (__builtin_add_overflow(total.to_int(), x.to_int(), &r))
        return Status::error("integer overflow");
      total = Value(r);
    }
  }
  return total;
}

// jinja2's title: upper-case the first character of each word, where words start after
// whitespace or one of - ( { [ <.
Result<Value> f_title(Interpreter&, const Value& v, Args& args) {
  BIND(b, "title");
  (void)b;
  std::u32string cps = utf8_decode(soft_str(v));
  bool start = true;
  for (char32_t& c : cps) {
    const bool boundary = py_isspace(c) || c == '-' || c == '(' || c == '{' || c == '[' || c == '<';
    if (boundary) {
      start = true;
      continue;
    }
    c = start ? to_upper(c) : to_lower(c);
    start = false;
  }
  return Value(utf8_encode(cps));
}

Result<Value> f_tojson(Interpreter& in, const Value& v, Args& args) {
  BIND(b, "tojson", "ensure_ascii", "indent", "separators", "sort_keys");
  JsonOptions o;
  o.ensure_ascii = arg_bool(b.get(0), false);
  if (b.has(1) && !b.get(1)->is_none()) {
    const Value& ind = *b.get(1);
    o.has_indent = true;
    o.item_separator = ",";
    if (ind.is_string()) {
      o.indent = ind.as_string();
    } else if (ind.is_int() || ind.is_bool()) {
      const int64_t n = ind.to_int();
      if (n > 0) {
        MINNOW_RETURN_IF_ERROR(in.check_bytes(static_cast<size_t>(n)));
        o.indent.assign(static_cast<size_t>(n), ' ');
      }
    } else {
      return Status::error("tojson indent must be an int or a string");
    }
  }
  if (b.has(2) && !b.get(2)->is_none()) {
    const Value& sep = *b.get(2);
    if (!sep.is_list() || sep.items().size() != 2 || !sep.items()[0].is_string() ||
        !sep.items()[1].is_string()) {
      return Status::error("tojson separators must be a pair of strings");
    }
    o.item_separator = sep.items()[0].as_string();
    o.key_separator = sep.items()[1].as_string();
  }
  o.sort_keys = arg_bool(b.get(3), false);
  MINNOW_RETURN_IF_ERROR(in.charge(0));
  TRY_ASSIGN(s, to_json(v, o, in.limits().max_output_bytes));
  MINNOW_RETURN_IF_ERROR(in.check_bytes(s.size()));
  return Value(std::move(s));
}

Result<Value> f_trim(Interpreter&, const Value& v, Args& args) {
  BIND(b, "trim", "chars");
  const std::string s = soft_str(v);
  if (b.has(0) && !b.get(0)->is_none()) {
    TRY_ASSIGN(chars, arg_str(b.get(0), "", "trim chars"));
    return same_kind(v, py_strip(s, &chars, true, true));
  }
  return same_kind(v, py_strip(s, nullptr, true, true));
}

Result<Value> f_truncate(Interpreter&, const Value& v, Args& args) {
  BIND(b, "truncate", "length", "killwords", "end", "leeway");
  TRY_ASSIGN(length, arg_int(b.get(0), 255, "length"));
  const bool killwords = arg_bool(b.get(1), false);
  TRY_ASSIGN(end, arg_str(b.get(2), "...", "end"));
  TRY_ASSIGN(leeway, arg_int(b.get(3), 5, "leeway"));
  const int64_t end_len = static_cast<int64_t>(utf8_length(end));
  if (length < end_len) return Status::error("expected length >= " + std::to_string(end_len));
  if (leeway < 0) return Status::error("expected leeway >= 0");
  if (!v.is_string()) {
    // jinja2 measures the value itself: short containers come back unchanged
    size_t n;
    if (v.is_undefined()) {
      n = 0;
    } else if (v.is_list()) {
      n = v.items().size();
    } else if (v.is_dict()) {
      n = v.as_dict().size();
    } else {
      return Status::error("object of type '" + type_name(v) + "' has no len()");
    }
    if (static_cast<int64_t>(n) <= length + leeway) return v;
    return Status::error("'" + type_name(v) + "' object has no attribute 'rsplit'");
  }
  const std::u32string cps = utf8_decode(soft_str(v));
  if (static_cast<int64_t>(cps.size()) <= length + leeway) return Value(utf8_encode(cps));
  std::string head =
      utf8_encode(std::u32string_view(cps).substr(0, static_cast<size_t>(length - end_len)));
  if (killwords) return Value(head + end);
  const size_t sp = head.rfind(' ');
  if (sp != std::string::npos) head.resize(sp);
  return Value(head + end);
}

Result<Value> f_unique_eager(Interpreter& in, const Value& v, Args& args) {
  BIND(b, "unique", "case_sensitive", "attribute");
  const bool cs = arg_bool(b.get(0), false);
  TRY_ASSIGN(items, in.iterate(v));
  std::vector<Value> out;
  Dict seen;
  for (const Value& item : items) {
    Value key = item;
    if (b.has(1) && !b.get(1)->is_none()) {
      TRY_ASSIGN(k, get_path(in, item, *b.get(1)));
      key = k;
    }
    key = fold(key, cs);
    if (seen.find(key)) continue;
    MINNOW_RETURN_IF_ERROR(seen.set(key, Value(true)));
    out.push_back(item);
  }
  return generator(std::move(out), "do_unique");
}
Result<Value> f_unique(Interpreter& in, const Value& v, Args& args) {
  return lazy_errors(f_unique_eager(in, v, args), "do_unique");
}

// urllib.parse.quote; for a query string (for_qs) '/' is escaped too and spaces become '+'.
std::string url_quote(std::string_view s, bool for_qs) {
  std::string out;
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) || c == '_' || c == '.' || c == '-' || c == '~' || (!for_qs && c == '/')) {
      out.push_back(ch);
    } else if (for_qs && c == ' ') {
      out.push_back('+');
    } else {
      char buf[4];
      std::snprintf(buf, sizeof(buf), "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

Result<Value> f_urlencode(Interpreter& in, const Value& v, Args& args) {
  BIND(b, "urlencode");
  (void)b;
  const bool iterable = v.is_list() || v.is_dict() || v.is_undefined() ||
                        (v.is_object() && dynamic_cast<const Sequence*>(&v.as_object()));
  if (v.is_string() || !iterable) return Value(url_quote(to_str(v), false));
  std::vector<std::pair<Value, Value>> pairs;
  if (v.is_dict()) {
    pairs = v.as_dict().entries();
  } else {
    TRY_ASSIGN(items, in.iterate(v));
    for (const Value& item : items) {
      TRY_ASSIGN(kv, in.iterate(item));
      if (kv.size() != 2) {
        return Status::error(kv.size() > 2 ? "too many values to unpack (expected 2)"
                                           : "not enough values to unpack (expected 2)");
      }
      pairs.emplace_back(kv[0], kv[1]);
    }
  }
  std::string out;
  for (const auto& [k, val] : pairs) {
    if (!out.empty()) out.push_back('&');
    out += url_quote(to_str(k), true) + "=" + url_quote(to_str(val), true);
  }
  return Value(std::move(out));
}

Result<Value> f_wordcount(Interpreter&, const Value& v, Args& args) {
  BIND(b, "wordcount");
  (void)b;
  int64_t n = 0;
  bool in_word = false;
  for (char32_t c : utf8_decode(soft_str(v))) {
    const bool w = py_isalnum(c) || c == '_';
    if (w && !in_word) ++n;
    in_word = w;
  }
  return Value(n);
}

Result<Value> f_filesizeformat(Interpreter&, const Value& v, Args& args) {
  BIND(b, "filesizeformat", "binary");
  const bool binary = arg_bool(b.get(0), false);
  double bytes;
  if (v.is_number()) {
    bytes = v.to_double();
  } else if (!v.is_string() || !parse_py_float(v.as_string(), &bytes)) {
    return Status::error("filesizeformat needs a number");
  }
  const double base = binary ? 1024 : 1000;
  static const char* kBin[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"};
  static const char* kDec[] = {"kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"};
  char buf[64];
  if (bytes == 1) return Value("1 Byte");
  if (bytes < base) {
    std::snprintf(buf, sizeof(buf), "%lld Bytes", static_cast<long long>(bytes));
    return Value(std::string(buf));
  }
  double unit = base;
  for (int i = 0; i < 8; ++i) {
    unit *= base;
    if (bytes < unit || i == 7) {
      std::snprintf(buf, sizeof(buf), "%.1f %s", base * bytes / unit, binary ? kBin[i] : kDec[i]);
      return Value(std::string(buf));
    }
  }
  return Value("");
}

struct FilterEntry {
  std::string_view name;
  FilterFn fn;
};

constexpr FilterEntry kFilters[] = {
    {"abs", f_abs},
    {"attr", f_attr},
    {"batch", f_batch},
    {"capitalize", f_capitalize},
    {"center", f_center},
    {"count", f_length},
    {"d", f_default},
    {"default", f_default},
    {"dictsort", f_dictsort},
    {"e", f_escape},
    {"escape", f_escape},
    {"forceescape", f_forceescape},
    {"filesizeformat", f_filesizeformat},
    {"first", f_first},
    {"float", f_float},
    {"format", f_format},
    {"groupby", f_groupby},
    {"indent", f_indent},
    {"int", f_int},
    {"items", f_items},
    {"join", f_join},
    {"last", f_last},
    {"length", f_length},
    {"list", f_list},
    {"lower", f_lower},
    {"map", f_map},
    {"max", f_max},
    {"min", f_min},
    {"pprint", f_pprint},
    {"reject", f_reject},
    {"rejectattr", f_rejectattr},
    {"replace", f_replace},
    {"reverse", f_reverse},
    {"round", f_round},
    {"safe", f_safe},
    {"select", f_select},
    {"selectattr", f_selectattr},
    {"slice", f_slice},
    {"sort", f_sort},
    {"string", f_string},
    {"striptags", f_striptags},
    {"sum", f_sum},
    {"title", f_title},
    {"tojson", f_tojson},
    {"trim", f_trim},
    {"truncate", f_truncate},
    {"unique", f_unique},
    {"upper", f_upper},
    {"urlencode", f_urlencode},
    {"wordcount", f_wordcount},
};

}  // namespace

std::string html_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&#34;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

FilterFn find_filter(std::string_view name) {
  for (const auto& f : kFilters) {
    if (f.name == name) return f.fn;
  }
  return nullptr;
}

}  // namespace minnow::text::jinja
