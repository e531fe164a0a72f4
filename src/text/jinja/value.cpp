#include "text/jinja/value.h"

// GCC 12 falsely reports -Wrestrict inside std::operator+(const char*, std::string&&) (GCC bug
// 105329); the pattern is correct and used throughout for error messages.
#pragma GCC diagnostic ignored "-Wrestrict"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "text/jinja/unicode.h"

namespace minnow::text::jinja {

Value Value::undefined(std::string name) {
  UndefinedInfo info;
  info.name = std::move(name);
  return undefined(std::move(info));
}

Value Value::undefined(UndefinedInfo info) {
  Value v;
  v.v_ = std::make_shared<const UndefinedInfo>(std::move(info));
  return v;
}

namespace {
Value make_list(std::vector<Value> items, bool is_tuple) {
  auto l = std::make_shared<List>();
  uint32_t d = 0;
  for (const Value& v : items) d = std::max(d, nesting(v));
  l->items = std::move(items);
  l->is_tuple = is_tuple;
  l->depth = d + 1;
  return Value(std::shared_ptr<const List>(std::move(l)));
}
}  // namespace

Value Value::list(std::vector<Value> items) { return make_list(std::move(items), false); }
Value Value::tuple(std::vector<Value> items) { return make_list(std::move(items), true); }

uint32_t nesting(const Value& v) {
  if (v.is_list()) return v.as_list().depth;
  if (v.is_dict()) return v.as_dict().depth();
  return 0;
}

int64_t Value::to_int() const {
  if (is_bool()) return as_bool() ? 1 : 0;
  if (is_float()) return static_cast<int64_t>(as_float());
  return as_int();
}

double Value::to_double() const {
  if (is_bool()) return as_bool() ? 1.0 : 0.0;
  if (is_int()) return static_cast<double>(as_int());
  return as_float();
}

// ---- Dict ----

Status Dict::set(Value key, Value value) {
  auto k = hash_key(key);
  if (!k.ok()) return k.status();
  depth_ = std::max(depth_, nesting(value) + 1);
  auto [it, inserted] = index_.try_emplace(std::move(*k), entries_.size());
  if (inserted) {
    entries_.emplace_back(std::move(key), std::move(value));
  } else {
    entries_[it->second].second = std::move(value);
  }
  return Status();
}

void Dict::set(std::string key, Value value) {
  depth_ = std::max(depth_, nesting(value) + 1);
  auto [it, inserted] = index_.try_emplace("s" + key, entries_.size());
  if (inserted) {
    entries_.emplace_back(Value(std::move(key)), std::move(value));
  } else {
    entries_[it->second].second = std::move(value);
  }
}

const Value* Dict::find(const Value& key) const {
  if (key.is_string()) return find(std::string_view(key.as_string()));
  auto k = hash_key(key);
  if (!k.ok()) return nullptr;
  auto it = index_.find(*k);
  return it == index_.end() ? nullptr : &entries_[it->second].second;
}

const Value* Dict::find(std::string_view key) const {
  std::string k;
  k.reserve(key.size() + 1);
  k.push_back('s');
  k.append(key);
  auto it = index_.find(k);
  return it == index_.end() ? nullptr : &entries_[it->second].second;
}

Value make_dict(std::vector<std::pair<std::string, Value>> entries) {
  auto d = std::make_shared<Dict>();
  for (auto& [k, v] : entries) d->set(std::move(k), std::move(v));
  return Value(std::shared_ptr<const Dict>(std::move(d)));
}

const Value* Args::kwarg(std::string_view name) const {
  for (const auto& [k, v] : kw) {
    if (k == name) return &v;
  }
  return nullptr;
}

// ---- Sequence ----

Value Sequence::range(int64_t start, int64_t stop, int64_t step, std::vector<Value> items) {
  auto seq = std::make_shared<Sequence>(Type::kRange, std::move(items));
  seq->range_[0] = start;
  seq->range_[1] = stop;
  seq->range_[2] = step;
  return Value(std::shared_ptr<Object>(std::move(seq)));
}

std::string_view Sequence::type_name() const {
  switch (type_) {
    case Type::kGenerator:
      return "generator";
    case Type::kIterator:
      return "list_reverseiterator";
    case Type::kDictKeys:
      return "dict_keys";
    case Type::kDictValues:
      return "dict_values";
    case Type::kDictItems:
      return "dict_items";
    case Type::kRange:
      return "range";
  }
  return "iterator";
}

std::string Sequence::repr() const {
  switch (type_) {
    // CPython prints the object's address here; a fixed one keeps the shape (and word count)
    case Type::kGenerator:
      return "<generator object " + origin_ + " at 0x7f0000000000>";
    case Type::kIterator:
      return "<list_reverseiterator object at 0x7f0000000000>";
    case Type::kRange: {
      std::string out = "range(" + std::to_string(range_[0]) + ", " + std::to_string(range_[1]);
      if (range_[2] != 1) out += ", " + std::to_string(range_[2]);
      return out + ")";
    }
    default: {
      std::string out(type_name());
      out += "(";
      append_repr(out, Value::list(items_));
      return out + ")";
    }
  }
}

std::optional<size_t> Sequence::length() const {
  if (one_shot()) return std::nullopt;
  return items_.size();
}

std::optional<std::vector<Value>> Sequence::iterate() {
  if (!one_shot()) return items_;
  std::vector<Value> rest(items_.begin() + static_cast<std::ptrdiff_t>(pos_), items_.end());
  pos_ = items_.size();
  return rest;
}

std::optional<Value> Sequence::next() {
  if (!one_shot()) {
    if (items_.empty()) return std::nullopt;
    return items_.front();
  }
  if (pos_ >= items_.size()) return std::nullopt;
  return items_[pos_++];
}

// ---- Object defaults ----

Result<Value> Object::call(Interpreter&, Args&) {
  return Status::error("'" + std::string(type_name()) + "' object is not callable");
}
std::optional<Value> Object::attr(std::string_view) const { return std::nullopt; }
bool Object::set_attr(std::string_view, Value) { return false; }

// ---- Python semantics ----

bool truthy(const Value& v) {
  switch (v.kind()) {
    case Kind::kUndefined:
    case Kind::kNone:
      return false;
    case Kind::kBool:
      return v.as_bool();
    case Kind::kInt:
      return v.as_int() != 0;
    case Kind::kFloat:
      return v.as_float() != 0.0;
    case Kind::kString:
      return !v.as_string().empty();
    case Kind::kList:
      return !v.items().empty();
    case Kind::kDict:
      return !v.as_dict().empty();
    case Kind::kObject:
      return v.as_object().truthy();
  }
  return false;
}

std::string type_name(const Value& v) {
  switch (v.kind()) {
    case Kind::kUndefined:
      return "Undefined";
    case Kind::kNone:
      return "NoneType";
    case Kind::kBool:
      return "bool";
    case Kind::kInt:
      return "int";
    case Kind::kFloat:
      return "float";
    case Kind::kString:
      return v.is_markup() ? "Markup" : "str";
    case Kind::kList:
      return v.is_tuple() ? "tuple" : "list";
    case Kind::kDict:
      return "dict";
    case Kind::kObject:
      return std::string(v.as_object().type_name());
  }
  return "object";
}

std::string object_type_repr(const Value& v) {
  if (v.is_none()) return "None";
  return type_name(v) + " object";
}

std::string format_float(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d < 0 ? "-inf" : "inf";
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), d, std::chars_format::scientific);
  std::string_view sci(buf, static_cast<size_t>(res.ptr - buf));
  // sci is "[-]D[.DDD]e[+-]XX": split into sign, digits and exponent.
  std::string out;
  if (!sci.empty() && sci[0] == '-') {
    out.push_back('-');
    sci.remove_prefix(1);
  }
  const size_t e_pos = sci.find('e');
  std::string digits;
  for (char c : sci.substr(0, e_pos)) {
    if (c != '.') digits.push_back(c);
  }
  const int exp = std::atoi(std::string(sci.substr(e_pos + 1)).c_str());
  const int decpt = exp + 1;  // position of the decimal point relative to the digits
  const int n = static_cast<int>(digits.size());
  if (decpt > -4 && decpt <= 16) {
    if (decpt <= 0) {
      out += "0.";
      out.append(static_cast<size_t>(-decpt), '0');
      out += digits;
    } else if (decpt >= n) {
      out += digits;
      out.append(static_cast<size_t>(decpt - n), '0');
      out += ".0";
    } else {
      out += digits.substr(0, static_cast<size_t>(decpt));
      out.push_back('.');
      out += digits.substr(static_cast<size_t>(decpt));
    }
  } else {
    out.push_back(digits[0]);
    if (n > 1) {
      out.push_back('.');
      out += digits.substr(1);
    }
    char ebuf[16];
    std::snprintf(ebuf, sizeof(ebuf), "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
    out += ebuf;
  }
  return out;
}

std::string repr_string(std::string_view s) {
  const bool has_single = s.find('\'') != std::string_view::npos;
  const bool has_double = s.find('"') != std::string_view::npos;
  const char quote = (has_single && !has_double) ? '"' : '\'';
  std::string out;
  out.reserve(s.size() + 2);
  out.push_back(quote);
  for (char32_t cp : utf8_decode(s)) {
    if (cp == static_cast<char32_t>(quote) || cp == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(cp));
    } else if (cp == '\t') {
      out += "\\t";
    } else if (cp == '\n') {
      out += "\\n";
    } else if (cp == '\r') {
      out += "\\r";
    } else if (py_isprintable(cp)) {
      utf8_append(out, cp);
    } else {
      char buf[16];
      if (cp <= 0xFF) {
        std::snprintf(buf, sizeof(buf), "\\x%02x", static_cast<unsigned>(cp));
      } else if (cp <= 0xFFFF) {
        std::snprintf(buf, sizeof(buf), "\\u%04x", static_cast<unsigned>(cp));
      } else {
        std::snprintf(buf, sizeof(buf), "\\U%08x", static_cast<unsigned>(cp));
      }
      out += buf;
    }
  }
  out.push_back(quote);
  return out;
}

void append_repr(std::string& out, const Value& v) {
  switch (v.kind()) {
    case Kind::kString:
      if (v.is_markup()) {
        out += "Markup(" + repr_string(v.as_string()) + ")";
      } else {
        out += repr_string(v.as_string());
      }
      return;
    case Kind::kList: {
      const bool tuple = v.is_tuple();
      out.push_back(tuple ? '(' : '[');
      bool first = true;
      for (const Value& item : v.items()) {
        if (!first) out += ", ";
        first = false;
        append_repr(out, item);
      }
      if (tuple && v.items().size() == 1) out.push_back(',');
      out.push_back(tuple ? ')' : ']');
      return;
    }
    case Kind::kDict: {
      out.push_back('{');
      bool first = true;
      for (const auto& [k, val] : v.as_dict().entries()) {
        if (!first) out += ", ";
        first = false;
        append_repr(out, k);
        out += ": ";
        append_repr(out, val);
      }
      out.push_back('}');
      return;
    }
    case Kind::kUndefined:
      out += "Undefined";  // repr(jinja2.Undefined()), seen when one sits inside a container
      return;
    default:
      append_str(out, v);
  }
}

std::string repr(const Value& v) {
  std::string out;
  append_repr(out, v);
  return out;
}

void append_str(std::string& out, const Value& v) {
  switch (v.kind()) {
    case Kind::kUndefined:
      return;
    case Kind::kNone:
      out += "None";
      return;
    case Kind::kBool:
      out += v.as_bool() ? "True" : "False";
      return;
    case Kind::kInt: {
      char buf[32];
      auto res = std::to_chars(buf, buf + sizeof(buf), v.as_int());
      out.append(buf, res.ptr);
      return;
    }
    case Kind::kFloat:
      out += format_float(v.as_float());
      return;
    case Kind::kString:
      out += v.as_string();
      return;
    case Kind::kList:
    case Kind::kDict:
      append_repr(out, v);
      return;
    case Kind::kObject:
      out += v.as_object().repr();
      return;
  }
}

std::string to_str(const Value& v) {
  if (v.is_string()) return v.as_string();
  std::string out;
  append_str(out, v);
  return out;
}

bool equals(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return a.to_double() == b.to_double();
    return a.to_int() == b.to_int();
  }
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Kind::kUndefined:
    case Kind::kNone:
      return true;
    case Kind::kString:
      return a.as_string() == b.as_string();
    case Kind::kList: {
      if (a.is_tuple() != b.is_tuple()) return false;
      const auto& x = a.items();
      const auto& y = b.items();
      if (x.size() != y.size()) return false;
      for (size_t i = 0; i < x.size(); ++i) {
        if (!equals(x[i], y[i])) return false;
      }
      return true;
    }
    case Kind::kDict: {
      const Dict& x = a.as_dict();
      const Dict& y = b.as_dict();
      if (x.size() != y.size()) return false;
      for (const auto& [k, v] : x.entries()) {
        const Value* other = y.find(k);
        if (!other || !equals(v, *other)) return false;
      }
      return true;
    }
    case Kind::kObject:
      return a.object_ptr() == b.object_ptr();
    default:
      return false;
  }
}

Result<int> compare(const Value& a, const Value& b, std::string_view op) {
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) {
      const double x = a.to_double(), y = b.to_double();
      return x < y ? -1 : (x > y ? 1 : 0);
    }
    const int64_t x = a.to_int(), y = b.to_int();
    return x < y ? -1 : (x > y ? 1 : 0);
  }
  if (a.is_string() && b.is_string()) {
    const int c = a.as_string().compare(b.as_string());  // UTF-8 byte order == code point order
    return c < 0 ? -1 : (c > 0 ? 1 : 0);
  }
  if (a.is_list() && b.is_list() && a.is_tuple() == b.is_tuple()) {
    const auto& x = a.items();
    const auto& y = b.items();
    for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
      if (equals(x[i], y[i])) continue;
      return compare(x[i], y[i], op);
    }
    return x.size() < y.size() ? -1 : (x.size() > y.size() ? 1 : 0);
  }
  return Status::error("'" + std::string(op) + "' not supported between instances of '" +
                       type_name(a) + "' and '" + type_name(b) + "'");
}

Result<std::string> hash_key(const Value& v) {
  switch (v.kind()) {
    case Kind::kString:
      return "s" + v.as_string();
    case Kind::kBool:
    case Kind::kInt:
      return "i" + std::to_string(v.to_int());
    case Kind::kFloat: {
      const double d = v.as_float();
      if (std::floor(d) == d && std::fabs(d) < 9.2e18) {
        return "i" + std::to_string(static_cast<int64_t>(d));
      }
      return "f" + format_float(d);
    }
    case Kind::kNone:
      return std::string("N");
    case Kind::kUndefined:
      return std::string("U");
    case Kind::kList: {
      if (!v.is_tuple()) return Status::error("unhashable type: 'list'");
      std::string k = "t(";
      for (const Value& item : v.items()) {
        auto ik = hash_key(item);
        if (!ik.ok()) return ik;
        k += *ik;
        k.push_back('\x1f');
      }
      k.push_back(')');
      return k;
    }
    case Kind::kDict:
      return Status::error("unhashable type: 'dict'");
    case Kind::kObject: {
      if (auto* seq = dynamic_cast<const Sequence*>(&v.as_object());
          seq &&
          (seq->type() == Sequence::Type::kDictKeys || seq->type() == Sequence::Type::kDictValues ||
           seq->type() == Sequence::Type::kDictItems)) {
        return Status::error("unhashable type: '" + std::string(seq->type_name()) + "'");
      }
      char buf[32];
      std::snprintf(buf, sizeof(buf), "o%p", static_cast<const void*>(v.object_ptr().get()));
      return std::string(buf);
    }
  }
  return Status::error("unhashable value");
}

std::string undefined_message(const Value& v) {
  const UndefinedInfo* info = v.is_undefined() ? v.undefined_info() : nullptr;
  if (!info) return "value is undefined";
  if (info->unsafe) {
    return "access to attribute " + repr_string(info->name) + " of " + info->owner + " is unsafe.";
  }
  if (info->owner.empty()) return repr_string(info->name) + " is undefined";
  if (info->key_is_element) return info->owner + " has no element " + info->name;
  return repr_string(info->owner) + " has no attribute " + repr_string(info->name);
}

}  // namespace minnow::text::jinja
