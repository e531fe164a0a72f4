#include "text/jinja/fold.h"

#include "text/jinja/interpreter.h"
#include "text/jinja/lexer.h"

namespace minnow::text::jinja {

namespace {

// compiler.has_safe_repr
bool safe_repr(const Value& v) {
  switch (v.kind()) {
    case Kind::kNone:
    case Kind::kBool:
    case Kind::kInt:
    case Kind::kFloat:
    case Kind::kString:
      return true;
    case Kind::kList:
      for (const Value& x : v.items()) {
        if (!safe_repr(x)) return false;
      }
      return true;
    case Kind::kDict:
      for (const auto& [k, x] : v.as_dict().entries()) {
        if (!safe_repr(k) || !safe_repr(x)) return false;
      }
      return true;
    case Kind::kObject:
      return v.as_object().type_name() == "range";
    default:
      return false;
  }
}

// Folded values are stored in the template; big ones stay runtime work instead.
constexpr size_t kMaxFoldedBytes = 64 * 1024;

bool small(const Value& v) {
  if (v.is_string()) return v.as_string().size() <= kMaxFoldedBytes;
  if (v.is_list()) return v.items().size() <= 1024 && repr(v).size() <= kMaxFoldedBytes;
  if (v.is_dict()) return v.as_dict().size() <= 1024 && repr(v).size() <= kMaxFoldedBytes;
  return true;
}

// Node kinds jinja2's code generator runs the optimizer on (its @optimizeconst visitors).
bool optimized_kind(ExprKind k) {
  switch (k) {
    case ExprKind::kBinary:
    case ExprKind::kAnd:
    case ExprKind::kOr:
    case ExprKind::kNot:
    case ExprKind::kNeg:
    case ExprKind::kPos:
    case ExprKind::kConcat:
    case ExprKind::kCompare:
    case ExprKind::kGetattr:
    case ExprKind::kGetitem:
    case ExprKind::kFilter:
    case ExprKind::kTest:
    case ExprKind::kCond:
    case ExprKind::kCall:
      return true;
    default:
      return false;
  }
}

class Folder {
 public:
  Folder(std::string_view source, const Limits& limits)
      : src_(source), in_(source, limits, no_vars_) {}

  Status body(Body& b) {
    for (auto& s : b) MINNOW_RETURN_IF_ERROR(stmt(*s));
    return Status();
  }

 private:
  Status stmt(Stmt& s) {
    if (s.kind == StmtKind::kOutput) {
      // jinja2 writes an output expression it can evaluate at compile time as text
      if (Result<Value> v = in_.fold(*s.expr); v.ok() && small(*v)) {
        s.kind = StmtKind::kText;
        s.text = to_str(*v);
        s.expr.reset();
        return Status();
      }
    }
    // a set-block / filter-block chain filters the block's text: nothing to fold there
    if (s.kind != StmtKind::kSetBlock && s.kind != StmtKind::kFilterBlock) {
      MINNOW_RETURN_IF_ERROR(expr(s.expr, false));
    }
    MINNOW_RETURN_IF_ERROR(expr(s.filter, false));
    for (auto& [test, b] : s.branches) {
      MINNOW_RETURN_IF_ERROR(expr(test, false));
      MINNOW_RETURN_IF_ERROR(body(b));
    }
    for (auto& d : s.defaults) MINNOW_RETURN_IF_ERROR(expr(d, false));
    for (auto& v : s.with_values) MINNOW_RETURN_IF_ERROR(expr(v, false));
    MINNOW_RETURN_IF_ERROR(body(s.body));
    return body(s.else_body);
  }

  // Post-order, as jinja2's optimizer visits: children first, then this node.
  Status expr(ExprPtr& e, bool optimized) {
    if (!e) return Status();
    optimized = optimized || optimized_kind(e->kind);
    for (auto& k : e->kids) MINNOW_RETURN_IF_ERROR(expr(k, optimized));
    for (auto& [name, k] : e->kwargs) MINNOW_RETURN_IF_ERROR(expr(k, optimized));
    if (e->kind == ExprKind::kDict && optimized) MINNOW_RETURN_IF_ERROR(check_dict(*e));
    switch (e->kind) {
      case ExprKind::kConst:
      case ExprKind::kName:
      case ExprKind::kCall:
      case ExprKind::kSlice:  // folded with its subscript
        return Status();
      default:
        break;
    }
    Result<Value> v = in_.fold(*e);
    if (!v.ok() || !safe_repr(*v) || !small(*v)) return Status();
    auto c = std::make_unique<Expr>(ExprKind::kConst, e->offset);
    c->value = std::move(*v);
    e = std::move(c);
    return Status();
  }

  // jinja2's Dict.as_const builds the dict pair by pair and lets the TypeError of an unhashable
  // constant key escape (its other failures just mean "not constant").
  Status check_dict(const Expr& e) {
    for (size_t i = 0; i + 1 < e.kids.size(); i += 2) {
      const Expr& key = *e.kids[i];
      if (key.kind != ExprKind::kConst || e.kids[i + 1]->kind != ExprKind::kConst) break;
      if (auto h = hash_key(key.value); !h.ok()) {
        return Status::error(location(src_, key.offset) + ": " + h.error());
      }
    }
    return Status();
  }

  std::string_view src_;
  Variables no_vars_;
  Interpreter in_;
};

}  // namespace

Status fold_constants(std::string_view source, const Limits& limits, Body& body) {
  return Folder(source, limits).body(body);
}

}  // namespace minnow::text::jinja
