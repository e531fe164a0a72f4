// jinja2's builtin tests (`x is defined`, `x is string`, `n is divisibleby 3`...).
#include "text/jinja/builtins.h"
#include "text/jinja/unicode.h"

namespace minnow::text::jinja {

namespace {

Result<const Value*> one_arg(const Args& args, const char* test) {
  if (args.pos.size() + args.kw.size() != 1) {
    return Status::error(std::string("test '") + test + "' takes exactly one argument");
  }
  return args.pos.empty() ? &args.kw[0].second : &args.pos[0];
}

Status no_arg(const Args& args, const char* test) {
  if (!args.pos.empty() || !args.kw.empty()) {
    return Status::error(std::string("test '") + test + "' takes no arguments");
  }
  return Status();
}

#define SIMPLE_TEST(fname, label, expr)                                           \
  Result<bool> fname(Interpreter&, [[maybe_unused]] const Value& v, Args& args) { \
    MINNOW_RETURN_IF_ERROR(no_arg(args, label));                                  \
    return (expr);                                                                \
  }

SIMPLE_TEST(t_defined, "defined", !v.is_undefined())
SIMPLE_TEST(t_undefined, "undefined", v.is_undefined())
SIMPLE_TEST(t_none, "none", v.is_none())
SIMPLE_TEST(t_boolean, "boolean", v.is_bool())
SIMPLE_TEST(t_true, "true", v.is_bool() && v.as_bool())
SIMPLE_TEST(t_false, "false", v.is_bool() && !v.as_bool())
SIMPLE_TEST(t_integer, "integer", v.is_int())
SIMPLE_TEST(t_float, "float", v.is_float())
SIMPLE_TEST(t_number, "number", v.is_number())
SIMPLE_TEST(t_string, "string", v.is_string())
SIMPLE_TEST(t_mapping, "mapping", v.is_dict())
// Undefined counts as iterable and as a sequence, as jinja2's Undefined has __iter__/__len__.
SIMPLE_TEST(t_iterable, "iterable",
            v.is_string() || v.is_list() || v.is_dict() || v.is_undefined() ||
                (v.is_object() && (v.as_object().type_name() == "LoopContext" ||
                                   dynamic_cast<const Sequence*>(&v.as_object()))))
// len() and __getitem__: of the non-list iterables only range has both
SIMPLE_TEST(t_sequence, "sequence",
            v.is_string() || v.is_list() || v.is_dict() || v.is_undefined() ||
                (v.is_object() && v.as_object().type_name() == "range"))
SIMPLE_TEST(t_callable, "callable", v.is_undefined() || (v.is_object() && v.as_object().callable()))
SIMPLE_TEST(t_escaped, "escaped", false)

Result<bool> t_lower(Interpreter&, const Value& v, Args& args) {
  MINNOW_RETURN_IF_ERROR(no_arg(args, "lower"));
  const std::string s = to_str(v);
  bool any = false;
  for (char32_t c : utf8_decode(s)) {
    if (py_iscased_upper(c)) return false;
    any = any || py_iscased_lower(c);
  }
  return any;
}

Result<bool> t_upper(Interpreter&, const Value& v, Args& args) {
  MINNOW_RETURN_IF_ERROR(no_arg(args, "upper"));
  const std::string s = to_str(v);
  bool any = false;
  for (char32_t c : utf8_decode(s)) {
    if (py_iscased_lower(c)) return false;
    any = any || py_iscased_upper(c);
  }
  return any;
}

// `value % num == want`, with Python's % (floats and strings included), as jinja2's tests do.
Result<bool> mod_equals(Interpreter& in, const Value& v, const Value& num, int64_t want) {
  auto r = in.eval_binary(Op::kMod, v, num);
  if (!r.ok()) return r.status();
  return equals(*r, Value(want));
}

Result<bool> t_odd(Interpreter& in, const Value& v, Args& args) {
  MINNOW_RETURN_IF_ERROR(no_arg(args, "odd"));
  return mod_equals(in, v, Value(2), 1);
}

Result<bool> t_even(Interpreter& in, const Value& v, Args& args) {
  MINNOW_RETURN_IF_ERROR(no_arg(args, "even"));
  return mod_equals(in, v, Value(2), 0);
}

Result<bool> t_divisibleby(Interpreter& in, const Value& v, Args& args) {
  auto a = one_arg(args, "divisibleby");
  if (!a.ok()) return a.status();
  return mod_equals(in, v, **a, 0);
}

Result<bool> t_eq(Interpreter&, const Value& v, Args& args) {
  auto a = one_arg(args, "eq");
  if (!a.ok()) return a.status();
  return equals(v, **a);
}

Result<bool> t_ne(Interpreter&, const Value& v, Args& args) {
  auto a = one_arg(args, "ne");
  if (!a.ok()) return a.status();
  return !equals(v, **a);
}

template <int kOp>  // 0 <, 1 <=, 2 >, 3 >=
Result<bool> t_order(Interpreter&, const Value& v, Args& args) {
  static constexpr const char* kNames[] = {"<", "<=", ">", ">="};
  auto a = one_arg(args, kNames[kOp]);
  if (!a.ok()) return a.status();
  if (v.is_undefined()) return undefined_error(v);
  if ((*a)->is_undefined()) return undefined_error(**a);
  auto c = compare(v, **a, kNames[kOp]);
  if (!c.ok()) return c.status();
  switch (kOp) {
    case 0:
      return *c < 0;
    case 1:
      return *c <= 0;
    case 2:
      return *c > 0;
    default:
      return *c >= 0;
  }
}

Result<bool> t_in(Interpreter& in, const Value& v, Args& args) {
  auto a = one_arg(args, "in");
  if (!a.ok()) return a.status();
  return in.contains(**a, v);
}

Result<bool> t_sameas(Interpreter&, const Value& v, Args& args) {
  auto a = one_arg(args, "sameas");
  if (!a.ok()) return a.status();
  const Value& o = **a;
  if (v.kind() != o.kind()) return false;
  switch (v.kind()) {
    case Kind::kNone:
    case Kind::kUndefined:
      return true;
    case Kind::kBool:
      return v.as_bool() == o.as_bool();
    case Kind::kInt:
      return v.as_int() == o.as_int();
    case Kind::kList:
      return v.list_ptr() == o.list_ptr();
    case Kind::kDict:
      return v.dict_ptr() == o.dict_ptr();
    case Kind::kObject:
      return v.object_ptr() == o.object_ptr();
    default:
      return equals(v, o);
  }
}

Result<bool> t_filter(Interpreter& in, const Value& v, Args& args) {
  MINNOW_RETURN_IF_ERROR(no_arg(args, "filter"));
  return v.is_string() && in.has_filter(v.as_string());
}

Result<bool> t_test(Interpreter& in, const Value& v, Args& args) {
  MINNOW_RETURN_IF_ERROR(no_arg(args, "test"));
  return v.is_string() && in.has_test(v.as_string());
}

struct TestEntry {
  std::string_view name;
  TestFn fn;
};

constexpr TestEntry kTests[] = {
    {"defined", t_defined},
    {"undefined", t_undefined},
    {"none", t_none},
    {"boolean", t_boolean},
    {"true", t_true},
    {"false", t_false},
    {"integer", t_integer},
    {"float", t_float},
    {"number", t_number},
    {"string", t_string},
    {"mapping", t_mapping},
    {"iterable", t_iterable},
    {"sequence", t_sequence},
    {"callable", t_callable},
    {"escaped", t_escaped},
    {"lower", t_lower},
    {"upper", t_upper},
    {"odd", t_odd},
    {"even", t_even},
    {"divisibleby", t_divisibleby},
    {"eq", t_eq},
    {"equalto", t_eq},
    {"==", t_eq},
    {"ne", t_ne},
    {"!=", t_ne},
    {"lt", t_order<0>},
    {"lessthan", t_order<0>},
    {"<", t_order<0>},
    {"le", t_order<1>},
    {"<=", t_order<1>},
    {"gt", t_order<2>},
    {"greaterthan", t_order<2>},
    {">", t_order<2>},
    {"ge", t_order<3>},
    {">=", t_order<3>},
    {"in", t_in},
    {"sameas", t_sameas},
    {"filter", t_filter},
    {"test", t_test},
};

}  // namespace

TestFn find_test(std::string_view name) {
  for (const auto& t : kTests) {
    if (t.name == name) return t.fn;
  }
  return nullptr;
}

}  // namespace minnow::text::jinja
