// Argument binding and conversion shared by the builtin filters, tests, methods and globals.
#include "text/jinja/builtins.h"

namespace minnow::text::jinja {

Result<Bound> bind(const Args& args, std::initializer_list<std::string_view> names,
                   std::string_view fn) {
  Bound b;
  const size_t n = names.size();
  if (args.pos.size() > n) {
    return Status::error(std::string(fn) + "() takes at most " + std::to_string(n) +
                         " argument(s) (" + std::to_string(args.pos.size()) + " given)");
  }
  for (size_t i = 0; i < args.pos.size(); ++i) b.v_[i] = &args.pos[i];
  for (const auto& [k, v] : args.kw) {
    size_t i = 0;
    for (auto name : names) {
      if (name == k) break;
      ++i;
    }
    if (i == n) {
      return Status::error(std::string(fn) + "() got an unexpected keyword argument '" + k + "'");
    }
    if (b.v_[i]) {
      return Status::error(std::string(fn) + "() got multiple values for argument '" + k + "'");
    }
    b.v_[i] = &v;
  }
  return b;
}

Result<int64_t> arg_int(const Value* v, int64_t fallback, std::string_view what) {
  if (!v || v->is_none()) return fallback;
  if (v->is_int() || v->is_bool()) return v->to_int();
  if (v->is_undefined()) return undefined_error(*v);
  return Status::error(std::string(what) + " must be an integer, not " + type_name(*v));
}

Result<std::string> arg_str(const Value* v, std::string fallback, std::string_view what) {
  if (!v || v->is_none()) return fallback;
  if (v->is_string()) return v->as_string();
  if (v->is_undefined()) return undefined_error(*v);
  return Status::error(std::string(what) + " must be a string, not " + type_name(*v));
}

bool arg_bool(const Value* v, bool fallback) { return v ? truthy(*v) : fallback; }

}  // namespace minnow::text::jinja
