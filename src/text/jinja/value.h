// The values a template computes with, modelled on the Python objects jinja2 sees when Hugging
// Face renders a chat template: None, bool, int, float, str, list, tuple, dict (insertion
// ordered), jinja2's Undefined, and a few interpreter objects (macros, loop, namespace...).
// Lists, tuples and dicts are immutable once built (the sandbox forbids mutating them), so they
// are shared by pointer; only Namespace objects change in place. This header knows nothing of
// JSON: adapters convert to and from it outside the engine.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include "util/status.h"

namespace minnow::text::jinja {

class Value;
class Dict;
class Object;
class Interpreter;

enum class Kind : uint8_t {
  kUndefined,
  kNone,
  kBool,
  kInt,
  kFloat,
  kString,
  kList,
  kDict,
  kObject
};

struct List {
  std::vector<Value> items;
  bool is_tuple = false;
  uint32_t depth = 1;  // container nesting, this level included (see nesting())
};

// What an Undefined remembers for its error message, like jinja2's Undefined(obj, name, hint).
struct UndefinedInfo {
  std::string name;             // the missing name / attribute / key (repr'd in messages)
  std::string owner;            // "dict object", "None"... empty for a plain missing variable
  bool key_is_element = false;  // a non-string subscript: "has no element 0"
  bool unsafe = false;          // sandbox refusal: using it is a security error
};

class Value {
 public:
  Value() = default;                                          // Undefined with no name
  Value(bool b) : v_(b) {}                                    // NOLINT: implicit on purpose
  Value(int i) : v_(static_cast<int64_t>(i)) {}               // NOLINT
  Value(int64_t i) : v_(i) {}                                 // NOLINT
  Value(double d) : v_(d) {}                                  // NOLINT
  Value(std::string s) : v_(std::move(s)) {}                  // NOLINT
  Value(std::string_view s) : v_(std::string(s)) {}           // NOLINT
  Value(const char* s) : v_(std::string(s)) {}                // NOLINT
  Value(std::shared_ptr<const List> l) : v_(std::move(l)) {}  // NOLINT
  Value(std::shared_ptr<const Dict> d) : v_(std::move(d)) {}  // NOLINT
  Value(std::shared_ptr<Object> o) : v_(std::move(o)) {}      // NOLINT

  static Value none() {
    Value v;
    v.v_ = NoneTag{};
    return v;
  }
  static Value undefined(std::string name);
  static Value undefined(UndefinedInfo info);
  static Value list(std::vector<Value> items);
  static Value tuple(std::vector<Value> items);
  // markupsafe.Markup: a string marked safe (the `safe` / `escape` filters). Adding a plain
  // string to it HTML-escapes that string, as jinja2 does even with autoescape off.
  static Value markup(std::string s) {
    Value v(std::move(s));
    v.markup_ = true;
    return v;
  }

  Kind kind() const { return static_cast<Kind>(v_.index()); }
  bool is_undefined() const { return kind() == Kind::kUndefined; }
  bool is_none() const { return kind() == Kind::kNone; }
  bool is_bool() const { return kind() == Kind::kBool; }
  bool is_int() const { return kind() == Kind::kInt; }
  bool is_float() const { return kind() == Kind::kFloat; }
  // int, float or bool (Python's bool is an int)
  bool is_number() const { return is_int() || is_float() || is_bool(); }
  bool is_string() const { return kind() == Kind::kString; }
  bool is_markup() const { return markup_ && is_string(); }
  bool is_list() const { return kind() == Kind::kList; }  // list or tuple
  bool is_tuple() const { return is_list() && list_ptr()->is_tuple; }
  bool is_dict() const { return kind() == Kind::kDict; }
  bool is_object() const { return kind() == Kind::kObject; }

  bool as_bool() const { return std::get<bool>(v_); }
  int64_t as_int() const { return std::get<int64_t>(v_); }
  double as_float() const { return std::get<double>(v_); }
  // An int/bool/float as int64 or double (callers check is_number first).
  int64_t to_int() const;
  double to_double() const;
  const std::string& as_string() const { return std::get<std::string>(v_); }
  const List& as_list() const { return *list_ptr(); }
  const std::vector<Value>& items() const { return list_ptr()->items; }
  const Dict& as_dict() const { return *std::get<std::shared_ptr<const Dict>>(v_); }
  const std::shared_ptr<const Dict>& dict_ptr() const {
    return std::get<std::shared_ptr<const Dict>>(v_);
  }
  const std::shared_ptr<const List>& list_ptr() const {
    return std::get<std::shared_ptr<const List>>(v_);
  }
  Object& as_object() const { return *std::get<std::shared_ptr<Object>>(v_); }
  const std::shared_ptr<Object>& object_ptr() const {
    return std::get<std::shared_ptr<Object>>(v_);
  }
  // Only for Undefined values (may be null for a bare Value()).
  const UndefinedInfo* undefined_info() const { return std::get<UndefinedPtr>(v_).get(); }

 private:
  struct NoneTag {};
  using UndefinedPtr = std::shared_ptr<const UndefinedInfo>;
  std::variant<UndefinedPtr, NoneTag, bool, int64_t, double, std::string,
               std::shared_ptr<const List>, std::shared_ptr<const Dict>, std::shared_ptr<Object>>
      v_;
  bool markup_ = false;
};

// An insertion-ordered dict with Python key equality (1 == 1.0 == True; strings by content).
class Dict {
 public:
  // Inserts or replaces (a replaced key keeps its position, as in Python). Fails on an
  // unhashable key (list, dict).
  Status set(Value key, Value value);
  void set(std::string key, Value value);
  const Value* find(const Value& key) const;
  const Value* find(std::string_view key) const;
  size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }
  uint32_t depth() const { return depth_; }
  const std::vector<std::pair<Value, Value>>& entries() const { return entries_; }

 private:
  std::vector<std::pair<Value, Value>> entries_;
  std::unordered_map<std::string, size_t> index_;  // hash_key(key) -> position in entries_
  uint32_t depth_ = 1;
};

// Call arguments: positional, then keyword (in call order).
struct Args {
  std::vector<Value> pos;
  std::vector<std::pair<std::string, Value>> kw;

  const Value* kwarg(std::string_view name) const;
};

// Interpreter-level objects: callables, the loop variable, namespaces, cyclers.
class Object {
 public:
  virtual ~Object() = default;
  virtual std::string_view type_name() const = 0;  // Python class name, for messages
  virtual std::string repr() const = 0;
  virtual bool callable() const { return false; }
  virtual Result<Value> call(Interpreter& interp, Args& args);
  // Attribute lookup; nullopt when the object has no such attribute.
  virtual std::optional<Value> attr(std::string_view name) const;
  // Namespace attribute assignment; false when the object does not allow it.
  virtual bool set_attr(std::string_view name, Value value);
  // Drops references this object holds to frames and values, called when a render ends so that
  // reference cycles (a namespace holding itself, a macro stored in its own scope) are freed.
  virtual void release() {}
  virtual bool truthy() const { return true; }
  // Python's len(); nullopt for objects without one.
  virtual std::optional<size_t> length() const { return std::nullopt; }
  // The items iteration yields (consuming them, for one-shot iterators); nullopt when the
  // object is not iterable.
  virtual std::optional<std::vector<Value>> iterate() { return std::nullopt; }
};

// Python iterables that are not lists: what jinja2's map/select/... filters return
// (generators: single use, no len(), not JSON-serializable, always true), reversed() iterators,
// dict views (.keys() / .values() / .items()), and range objects.
class Sequence final : public Object {
 public:
  enum class Type : uint8_t { kGenerator, kIterator, kDictKeys, kDictValues, kDictItems, kRange };
  Sequence(Type type, std::vector<Value> items, std::string origin = "")
      : type_(type), items_(std::move(items)), origin_(std::move(origin)) {}
  static Value make(Type type, std::vector<Value> items, std::string origin = "") {
    return Value(std::shared_ptr<Object>(
        std::make_shared<Sequence>(type, std::move(items), std::move(origin))));
  }
  static Value range(int64_t start, int64_t stop, int64_t step, std::vector<Value> items);
  // A generator whose body fails when it runs: jinja2's generator filters (map, unique...)
  // report bad input only once something iterates them.
  static Value failing(std::string origin, Status error) {
    auto seq =
        std::make_shared<Sequence>(Type::kGenerator, std::vector<Value>(), std::move(origin));
    seq->failure_ = std::move(error);
    return Value(std::shared_ptr<Object>(std::move(seq)));
  }
  const Status& failure() const { return failure_; }

  Type type() const { return type_; }
  bool one_shot() const { return type_ == Type::kGenerator || type_ == Type::kIterator; }
  std::string_view type_name() const override;
  std::string repr() const override;
  bool truthy() const override { return one_shot() || !items_.empty(); }
  std::optional<size_t> length() const override;
  std::optional<std::vector<Value>> iterate() override;
  // next(): the next item of a one-shot iterator (the first item otherwise).
  std::optional<Value> next();
  // Items without consuming them (for range indexing and views).
  const std::vector<Value>& peek() const { return items_; }

 private:
  Type type_;
  std::vector<Value> items_;
  std::string origin_;  // generator function name, for repr
  size_t pos_ = 0;      // consumed items of a one-shot iterator
  Status failure_;      // set for a generator whose body raises
  int64_t range_[3] = {0, 0, 1};
};

Value make_dict(std::vector<std::pair<std::string, Value>> entries);

// How deeply lists/dicts nest inside v (0 for a scalar). Kept in each container so that code
// which recurses over values (repr, tojson, equality) can be bounded before it runs.
uint32_t nesting(const Value& v);

// ---- Python semantics over values ----

bool truthy(const Value& v);
// Python's type(v).__name__ ("str", "int", "NoneType", "dict"...).
std::string type_name(const Value& v);
// jinja2's object_type_repr, used in undefined messages: "dict object", "None", "list object".
std::string object_type_repr(const Value& v);
// str(v) as Python prints it; Undefined prints as "".
std::string to_str(const Value& v);
void append_str(std::string& out, const Value& v);
// repr(v) as Python prints it.
std::string repr(const Value& v);
void append_repr(std::string& out, const Value& v);
std::string repr_string(std::string_view s);
// Python's repr(float).
std::string format_float(double d);
// ==, as Python compares (numbers across int/float/bool, containers deeply; list != tuple).
bool equals(const Value& a, const Value& b);
// <, <=, >, >= via a three-way compare; fails (TypeError) for types Python cannot order.
Result<int> compare(const Value& a, const Value& b, std::string_view op);
// Key used to index dicts; fails for unhashable values (list, dict).
Result<std::string> hash_key(const Value& v);
// The message a use of this Undefined raises ("'x' is undefined").
std::string undefined_message(const Value& v);

}  // namespace minnow::text::jinja
