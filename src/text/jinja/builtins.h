// Registries of the builtin filters, tests, str/list/dict methods and global functions, and
// the argument-binding helper they share. Internal to jinja/.
#pragma once

#include <array>
#include <cstddef>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

#include "text/jinja/interpreter.h"
#include "text/jinja/value.h"
#include "util/status.h"

namespace minnow::text::jinja {

using FilterFn = Result<Value> (*)(Interpreter& in, const Value& input, Args& args);
using TestFn = Result<bool> (*)(Interpreter& in, const Value& input, Args& args);
using MethodFn = Result<Value> (*)(Interpreter& in, const Value& self, Args& args);

FilterFn find_filter(std::string_view name);
TestFn find_test(std::string_view name);

// What the sandbox allows for obj.name when `name` is a method of obj's Python type.
enum class MethodAccess { kNone, kSafe, kUnsafe };
MethodAccess find_method(const Value& self, std::string_view name, MethodFn* fn);

// range, dict, namespace, cycler, joiner (what jinja2 provides to every template).
std::optional<Value> find_global(std::string_view name);

// A callable wrapping a method of a value (what `'abc'.upper` evaluates to).
Value make_bound_method(const Value& self, std::string name, MethodFn fn);

// Binds call arguments to named parameters, Python style: positional first, then keywords.
// Unknown keywords and surplus positionals are errors naming `fn`.
constexpr size_t kMaxParams = 8;
class Bound {
 public:
  const Value* get(size_t i) const { return v_[i]; }
  bool has(size_t i) const { return v_[i] != nullptr; }
  std::array<const Value*, kMaxParams> v_{};
};
Result<Bound> bind(const Args& args, std::initializer_list<std::string_view> names,
                   std::string_view fn);

// Argument converters with Python-like type errors.
Result<int64_t> arg_int(const Value* v, int64_t fallback, std::string_view what);
Result<std::string> arg_str(const Value* v, std::string fallback, std::string_view what);
bool arg_bool(const Value* v, bool fallback);

// markupsafe.escape: & < > " ' as HTML entities.
std::string html_escape(std::string_view s);

// An error for using an Undefined (jinja2's UndefinedError, or its SecurityError).
Status undefined_error(const Value& v);

// Python's json.dumps with Hugging Face's tojson defaults (ensure_ascii=False).
struct JsonOptions {
  bool has_indent = false;
  std::string indent;                 // repeated per level
  std::string item_separator = ", ";  // ", " without indent, "," with
  std::string key_separator = ": ";
  bool sort_keys = false;
  bool ensure_ascii = false;
};
Result<std::string> to_json(const Value& v, const JsonOptions& options, size_t max_bytes);

// str.format, Python's format-spec mini-language, and printf-style `%` formatting.
Result<std::string> str_format(Interpreter& in, std::string_view fmt, const Args& args);
Result<std::string> apply_format_spec(const Value& v, std::string_view spec);
Result<std::string> percent_format(std::string_view fmt, const Value& args);

}  // namespace minnow::text::jinja
