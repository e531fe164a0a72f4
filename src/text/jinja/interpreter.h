// The tree-walking evaluator behind Template::render, and the services the builtin filters,
// tests, methods and globals use (attribute lookup, calling, iteration, resource checks).
// Internal to jinja/.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "text/jinja/ast.h"
#include "text/jinja/template.h"
#include "text/jinja/value.h"
#include "util/status.h"

namespace minnow::text::jinja {

// One variable scope: the template root, a loop iteration, a macro call, a with block.
struct Frame {
  std::shared_ptr<Frame> parent;
  std::vector<std::pair<std::string, Value>> vars;

  const Value* find(std::string_view name) const;
  void set(std::string name, Value value);
};

class Interpreter {
 public:
  Interpreter(std::string_view source, const Limits& limits, const Variables& globals);
  ~Interpreter();
  Interpreter(const Interpreter&) = delete;
  Interpreter& operator=(const Interpreter&) = delete;

  // Runs the template body; errors carry the line:column of the innermost failing node.
  Result<std::string> run(const Body& body);

  // ---- services for builtins ----
  const Limits& limits() const { return limits_; }
  // A string / list of n bytes / items about to be built: checked against the size limits and
  // charged to the step budget, so that repeated large copies cannot stall a render.
  Status check_bytes(size_t n);
  Status check_items(size_t n);
  Status charge(size_t work_units);

  // jinja2 sandbox's getattr (obj.name) and getitem (obj[key]).
  Result<Value> getattr(const Value& obj, std::string_view name);
  Result<Value> getitem(const Value& obj, const Value& key);
  Result<Value> call(const Value& callee, Args& args);
  // The elements of an iterable (list/tuple items, dict keys, string characters; Undefined
  // is empty).
  Result<std::vector<Value>> iterate(const Value& v);
  Result<Value> apply_filter(std::string_view name, const Value& input, Args& args);
  Result<bool> apply_test(std::string_view name, const Value& input, Args& args);
  bool has_filter(std::string_view name) const;
  bool has_test(std::string_view name) const;
  // `in` as Python evaluates it.
  Result<bool> contains(const Value& container, const Value& item);

  // Objects that can hold references back to frames or to themselves (macros, namespaces)
  // register here so their references can be dropped when the render ends (no leaks from
  // reference cycles such as a namespace holding itself).
  void track(const std::shared_ptr<Object>& obj);

  // Evaluates `e` as jinja2's compile-time constant folding (as_const) would: no variables, no
  // calls, the sandbox's getitem even for slices. Fails where folding is impossible.
  Result<Value> fold(const Expr& e);

  // Macro calls and recursive loops re-enter the evaluator.
  Result<std::string> call_macro(const Stmt& def, const std::shared_ptr<Frame>& closure,
                                 const std::string& name, Args& args, const Value& caller);
  Result<std::string> run_loop(const Stmt& loop, const Value& iterable,
                               const std::shared_ptr<Frame>& scope, int depth);

 private:
  friend struct DepthGuard;
  enum class Flow : uint8_t { kNormal, kBreak, kContinue };

  // Evaluation is split into one function per node kind (see eval_inner); they are kept out
  // of line so the frames on a deep recursion stay small.
#define MINNOW_JINJA_NOINLINE __attribute__((noinline))
  Result<Value> eval(const Expr& e);
  MINNOW_JINJA_NOINLINE Result<Value> eval_inner(const Expr& e);
  MINNOW_JINJA_NOINLINE Result<Value> eval_getattr(const Expr& e);
  MINNOW_JINJA_NOINLINE Result<Value> eval_getitem(const Expr& e);
  MINNOW_JINJA_NOINLINE Result<Value> eval_test(const Expr& e);
  MINNOW_JINJA_NOINLINE Result<Value> eval_unary(const Expr& e);
  MINNOW_JINJA_NOINLINE Result<Value> eval_binary_expr(const Expr& e);
  MINNOW_JINJA_NOINLINE Result<Value> eval_logic(const Expr& e);
  MINNOW_JINJA_NOINLINE Result<Value> eval_concat(const Expr& e);
  MINNOW_JINJA_NOINLINE Result<Value> eval_cond(const Expr& e);
  MINNOW_JINJA_NOINLINE Result<Value> eval_sequence(const Expr& e);
  MINNOW_JINJA_NOINLINE Result<Value> eval_dict(const Expr& e);
  MINNOW_JINJA_NOINLINE Result<Value> eval_call(const Expr& e);
  MINNOW_JINJA_NOINLINE Result<Value> eval_filter(const Expr& e, const Value* block_input);
  MINNOW_JINJA_NOINLINE Result<Value> eval_compare(const Expr& e);

 public:
  // A binary operator as templates apply it (used by tests such as divisibleby).
  Result<Value> eval_binary(Op op, const Value& a, const Value& b);

 private:
  Status exec_body(const Body& body);
  MINNOW_JINJA_NOINLINE Status exec(const Stmt& s);
  MINNOW_JINJA_NOINLINE Status exec_output(const Stmt& s);
  MINNOW_JINJA_NOINLINE Status exec_if(const Stmt& s);
  MINNOW_JINJA_NOINLINE Status exec_for_stmt(const Stmt& s);
  MINNOW_JINJA_NOINLINE Status exec_set(const Stmt& s);
  MINNOW_JINJA_NOINLINE Status exec_set_ns(const Stmt& s);
  MINNOW_JINJA_NOINLINE Status exec_set_block(const Stmt& s);
  MINNOW_JINJA_NOINLINE Status exec_call_block(const Stmt& s);
  MINNOW_JINJA_NOINLINE Status exec_filter_block(const Stmt& s);
  MINNOW_JINJA_NOINLINE Status exec_scoped(const Stmt& s);
#undef MINNOW_JINJA_NOINLINE
  Status exec_for(const Stmt& s, const Value& iterable, int depth);
  Status assign(const Target& t, const Value& v);
  Result<Args> eval_args(const Expr& e, size_t first);
  Result<Value> lookup(const std::string& name);
  Result<std::string> capture(const Body& body);
  Status emit(std::string_view s);
  Status enter();  // recursion + step budget
  Status fail_at(uint32_t offset, Status st);

  std::string_view source_;
  const Limits& limits_;
  const Variables& globals_;
  std::shared_ptr<Frame> frame_;
  std::string* out_ = nullptr;
  Flow flow_ = Flow::kNormal;
  bool folding_ = false;  // evaluating as jinja2's compile-time constant folding would
  int depth_ = 0;
  int call_depth_ = 0;
  int64_t steps_ = 0;
  uintptr_t stack_base_ = 0;  // frame address where run() started
  int64_t iterations_ = 0;
  bool error_located_ = false;
  uint32_t error_offset_ = 0;
  std::vector<std::weak_ptr<Object>> tracked_;
  size_t tracked_prune_at_ = 64;
};

}  // namespace minnow::text::jinja
