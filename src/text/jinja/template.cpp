#include "text/jinja/template.h"

#include "text/jinja/builtins.h"
#include "text/jinja/fold.h"
#include "text/jinja/interpreter.h"
#include "text/jinja/lexer.h"
#include "text/jinja/parser.h"

namespace minnow::text::jinja {

namespace {

// jinja2 resolves filter and test names when it compiles a template, so a template naming an
// unknown one fails to load even if that code never runs -- except inside {% if %} branches and
// inline if-expressions (its "soft frames"), where the error waits until the code runs. Loop,
// macro, call, filter and set-block bodies open a fresh frame and are strict again.
Status check_names(std::string_view src, const Body& body, bool soft);

Status check_names(std::string_view src, const Expr* e, bool soft) {
  if (!e) return Status();
  if (e->kind == ExprKind::kCond) soft = true;
  if (!soft && e->kind == ExprKind::kFilter && !find_filter(e->name)) {
    return Status::error(location(src, e->offset) + ": no filter named '" + e->name + "'");
  }
  if (!soft && e->kind == ExprKind::kTest && !find_test(e->name)) {
    return Status::error(location(src, e->offset) + ": no test named '" + e->name + "'");
  }
  for (const auto& k : e->kids) MINNOW_RETURN_IF_ERROR(check_names(src, k.get(), soft));
  for (const auto& [name, k] : e->kwargs) MINNOW_RETURN_IF_ERROR(check_names(src, k.get(), soft));
  return Status();
}

Status check_names(std::string_view src, const Body& body, bool soft) {
  for (const auto& s : body) {
    switch (s->kind) {
      case StmtKind::kIf:
        for (const auto& [test, b] : s->branches) {
          MINNOW_RETURN_IF_ERROR(check_names(src, test.get(), true));
          MINNOW_RETURN_IF_ERROR(check_names(src, b, true));
        }
        MINNOW_RETURN_IF_ERROR(check_names(src, s->else_body, true));
        break;
      case StmtKind::kFor:
        MINNOW_RETURN_IF_ERROR(check_names(src, s->expr.get(), soft));
        MINNOW_RETURN_IF_ERROR(check_names(src, s->filter.get(), false));
        MINNOW_RETURN_IF_ERROR(check_names(src, s->body, false));
        MINNOW_RETURN_IF_ERROR(check_names(src, s->else_body, false));
        break;
      case StmtKind::kWith:
        for (const auto& v : s->with_values)
          MINNOW_RETURN_IF_ERROR(check_names(src, v.get(), soft));
        MINNOW_RETURN_IF_ERROR(check_names(src, s->body, false));
        break;
      case StmtKind::kCallBlock:
        MINNOW_RETURN_IF_ERROR(check_names(src, s->expr.get(), soft));
        for (const auto& d : s->defaults) MINNOW_RETURN_IF_ERROR(check_names(src, d.get(), false));
        MINNOW_RETURN_IF_ERROR(check_names(src, s->body, false));
        break;
      default:  // output, set: this frame; macro, set/filter blocks, generation: a new frame
        MINNOW_RETURN_IF_ERROR(check_names(
            src, s->expr.get(),
            s->kind == StmtKind::kOutput || s->kind == StmtKind::kSet || s->kind == StmtKind::kSetNs
                ? soft
                : false));
        for (const auto& d : s->defaults) MINNOW_RETURN_IF_ERROR(check_names(src, d.get(), false));
        MINNOW_RETURN_IF_ERROR(check_names(src, s->body, false));
    }
  }
  return Status();
}

}  // namespace

Result<Template> Template::parse(std::string_view source, const Limits& limits) {
  auto impl = std::make_shared<Impl>();
  impl->source = normalize_source(source);
  impl->limits = limits;
  auto tokens = tokenize(impl->source, LexOptions{});
  if (!tokens.ok()) return tokens.status();
  auto body = jinja::parse(impl->source, *tokens, limits.max_nesting);
  if (!body.ok()) return body.status();
  impl->body = std::move(*body);
  // folding first: jinja2 never compiles (so never checks) what it folded away
  MINNOW_RETURN_IF_ERROR(fold_constants(impl->source, impl->limits, impl->body));
  MINNOW_RETURN_IF_ERROR(check_names(impl->source, impl->body, false));
  Template t;
  t.impl_ = std::move(impl);
  return t;
}

Result<std::string> Template::render(const Variables& vars) const {
  Interpreter in(impl_->source, impl_->limits, vars);
  return in.run(impl_->body);
}

}  // namespace minnow::text::jinja
