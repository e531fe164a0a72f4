#include "text/jinja/parser.h"

#include <algorithm>
#include <initializer_list>
#include <string>

namespace minnow::text::jinja {

namespace {

#define PARSE_TRY(x)     \
  do {                   \
    if (!(x)) return {}; \
  } while (0)

std::string describe(const Token& t) {
  switch (t.type) {
    case TokenType::kData:
      return "template data";
    case TokenType::kVarBegin:
      return "'{{'";
    case TokenType::kVarEnd:
      return "end of print statement '}}'";
    case TokenType::kBlockBegin:
      return "'{%'";
    case TokenType::kBlockEnd:
      return "end of statement block '%}'";
    case TokenType::kName:
      return "'" + t.text + "'";
    case TokenType::kString:
      return "string literal";
    case TokenType::kInt:
      return "integer literal";
    case TokenType::kFloat:
      return "float literal";
    case TokenType::kOp:
      return "'" + std::string(op_text(t.op)) + "'";
    case TokenType::kEof:
      return "end of template";
  }
  return "token";
}

bool is_const_name(const std::string& n) {
  return n == "true" || n == "false" || n == "none" || n == "True" || n == "False" || n == "None";
}

class Parser {
 public:
  Parser(std::string_view src, const std::vector<Token>& toks, int max_nesting)
      : src_(src), toks_(toks), max_nesting_(max_nesting) {}

  Result<Body> run() {
    Body body;
    if (!parse_statements(&body, {}, 0, "") || failed_) return Status::error(error_);
    return body;
  }

 private:
  // ---- token stream ----
  const Token& cur() const { return toks_[pos_]; }
  const Token& look() const { return toks_[std::min(pos_ + 1, toks_.size() - 1)]; }
  void next() {
    if (pos_ + 1 < toks_.size()) ++pos_;
  }
  bool is_op(Op op) const { return cur().type == TokenType::kOp && cur().op == op; }
  bool is_name(std::string_view n) const {
    return cur().type == TokenType::kName && cur().text == n;
  }
  bool skip_op(Op op) {
    if (!is_op(op)) return false;
    next();
    return true;
  }
  bool skip_name(std::string_view n) {
    if (!is_name(n)) return false;
    next();
    return true;
  }

  // Records the first error; returns false so callers can `return fail(...)`.
  bool fail(uint32_t offset, const std::string& msg) {
    if (!failed_) {
      failed_ = true;
      error_ = location(src_, offset) + ": " + msg;
    }
    return false;
  }
  bool fail_here(const std::string& msg) { return fail(cur().offset, msg); }
  bool expect_op(Op op) {
    if (skip_op(op)) return true;
    return fail_here("expected '" + std::string(op_text(op)) + "', got " + describe(cur()));
  }
  bool expect_type(TokenType type, const char* what) {
    if (cur().type == type) {
      next();
      return true;
    }
    return fail_here(std::string("expected ") + what + ", got " + describe(cur()));
  }

  // Nesting guard: statements and expressions each count one level per recursive entry.
  struct Nest {
    Parser* p;
    bool ok;
    explicit Nest(Parser* parser) : p(parser) {
      ok = ++p->nesting_ <= p->max_nesting_;
      if (!ok) {
        p->fail_here("template nested too deeply (more than " + std::to_string(p->max_nesting_) +
                     " levels)");
      }
    }
    ~Nest() { --p->nesting_; }
  };

  ExprPtr node(ExprKind k, uint32_t offset) { return std::make_unique<Expr>(k, offset); }

  // Sets the node's subtree height and enforces the bound (chains like a+b+c+... or
  // x|f|f|f... grow the tree without recursing in the parser, but the evaluator recurses).
  ExprPtr finish(ExprPtr e) {
    if (!e) return nullptr;
    uint32_t d = 0;
    for (const auto& k : e->kids) {
      if (k) d = std::max(d, k->depth);
    }
    for (const auto& [name, k] : e->kwargs) {
      if (k) d = std::max(d, k->depth);
    }
    e->depth = d + 1;
    if (e->depth > static_cast<uint32_t>(max_nesting_)) {
      fail(e->offset,
           "expression nested too deeply (more than " + std::to_string(max_nesting_) + " levels)");
      return nullptr;
    }
    return e;
  }

  // ---- statements ----

  // Parses until a block whose first name is one of `ends` (left unconsumed: the caller reads
  // it). At end of input with `ends` non-empty, reports the unclosed tag opened at `open_off`.
  bool parse_statements(Body* out, std::initializer_list<std::string_view> ends, uint32_t open_off,
                        std::string_view open_tag) {
    while (true) {
      const Token& t = cur();
      switch (t.type) {
        case TokenType::kData: {
          auto s = std::make_unique<Stmt>(StmtKind::kText, t.offset);
          s->text = t.text;
          out->push_back(std::move(s));
          next();
          break;
        }
        case TokenType::kVarBegin: {
          const uint32_t off = t.offset;
          next();
          auto s = std::make_unique<Stmt>(StmtKind::kOutput, off);
          s->expr = parse_tuple(true, {}, false);
          PARSE_TRY(s->expr);
          PARSE_TRY(expect_type(TokenType::kVarEnd, "end of print statement '}}'"));
          out->push_back(std::move(s));
          break;
        }
        case TokenType::kBlockBegin: {
          next();
          if (cur().type == TokenType::kName) {
            for (auto e : ends) {
              if (cur().text == e) return true;
            }
          }
          StmtPtr s = parse_statement();
          PARSE_TRY(s);
          PARSE_TRY(expect_type(TokenType::kBlockEnd, "end of statement block '%}'"));
          out->push_back(std::move(s));
          break;
        }
        case TokenType::kEof: {
          if (ends.size() == 0) return true;
          std::string want;
          for (auto e : ends) {
            if (!want.empty()) want += " or ";
            want += "'" + std::string(e) + "'";
          }
          return fail(open_off, "unexpected end of template: the '" + std::string(open_tag) +
                                    "' tag opened here is never closed (looking for " + want + ")");
        }
        default:
          return fail_here("unexpected " + describe(t));
      }
    }
  }

  // A tag's body: the rest of the opening tag must be its '%}'.
  bool parse_body(Body* out, std::initializer_list<std::string_view> ends, uint32_t open_off,
                  std::string_view open_tag) {
    if (!expect_type(TokenType::kBlockEnd, "end of statement block '%}'")) return false;
    return parse_statements(out, ends, open_off, open_tag);
  }

  // Consumes the end tag name the body stopped at and checks nothing else follows it.
  bool end_tag() {
    next();  // the name
    if (cur().type != TokenType::kBlockEnd) {
      return fail_here("expected end of statement block '%}', got " + describe(cur()));
    }
    return true;
  }

  StmtPtr parse_statement() {
    Nest nest(this);
    PARSE_TRY(nest.ok);
    const Token& t = cur();
    if (t.type != TokenType::kName) {
      fail_here("expected a tag name, got " + describe(t));
      return nullptr;
    }
    const std::string name = t.text;
    const uint32_t off = t.offset;
    if (name == "for") return parse_for();
    if (name == "if") return parse_if();
    if (name == "set") return parse_set();
    if (name == "macro") return parse_macro();
    if (name == "call") return parse_call_block();
    if (name == "filter") return parse_filter_block();
    if (name == "with") return parse_with();
    if (name == "generation") {
      next();
      auto s = std::make_unique<Stmt>(StmtKind::kGeneration, off);
      PARSE_TRY(parse_body(&s->body, {"endgeneration"}, off, "generation"));
      PARSE_TRY(end_tag());
      return s;
    }
    if (name == "print") {
      next();
      auto s = std::make_unique<Stmt>(StmtKind::kOutput, off);
      s->expr = parse_tuple(true, {}, false);
      PARSE_TRY(s->expr);
      return s;
    }
    if (name == "break" || name == "continue") {
      if (loop_depth_ == 0) {
        fail(off, "'" + name + "' outside of a loop");
        return nullptr;
      }
      next();
      return std::make_unique<Stmt>(name == "break" ? StmtKind::kBreak : StmtKind::kContinue, off);
    }
    if (name == "include" || name == "extends" || name == "import" || name == "from") {
      fail(off,
           "'" + name + "' is not supported: a sandboxed template cannot load other templates");
      return nullptr;
    }
    fail(off, "unknown tag '" + name + "'");
    return nullptr;
  }

  StmtPtr parse_for() {
    const uint32_t off = cur().offset;
    next();
    auto s = std::make_unique<Stmt>(StmtKind::kFor, off);
    PARSE_TRY(parse_target(&s->target, "in"));
    if (!skip_name("in")) {
      fail_here("expected 'in', got " + describe(cur()));
      return nullptr;
    }
    s->expr = parse_tuple(false, "recursive", false);
    PARSE_TRY(s->expr);
    if (skip_name("if")) {
      s->filter = parse_expression(true);
      PARSE_TRY(s->filter);
    }
    s->recursive = skip_name("recursive");
    ++loop_depth_;
    const bool ok = parse_body(&s->body, {"endfor", "else"}, off, "for");
    --loop_depth_;
    PARSE_TRY(ok);
    if (is_name("else")) {
      next();
      PARSE_TRY(parse_body(&s->else_body, {"endfor"}, off, "for"));
    }
    PARSE_TRY(end_tag());
    return s;
  }

  StmtPtr parse_if() {
    const uint32_t off = cur().offset;
    next();
    auto s = std::make_unique<Stmt>(StmtKind::kIf, off);
    while (true) {
      ExprPtr test = parse_tuple(false, {}, false);
      PARSE_TRY(test);
      Body body;
      PARSE_TRY(parse_body(&body, {"elif", "else", "endif"}, off, "if"));
      s->branches.emplace_back(std::move(test), std::move(body));
      if (is_name("elif")) {
        next();
        continue;
      }
      if (is_name("else")) {
        next();
        PARSE_TRY(parse_body(&s->else_body, {"endif"}, off, "if"));
      }
      PARSE_TRY(end_tag());
      return s;
    }
  }

  StmtPtr parse_set() {
    const uint32_t off = cur().offset;
    next();
    if (cur().type == TokenType::kName && look().type == TokenType::kOp && look().op == Op::kDot) {
      auto s = std::make_unique<Stmt>(StmtKind::kSetNs, off);
      s->text = cur().text;
      next();
      next();
      if (cur().type != TokenType::kName) {
        fail_here("expected an attribute name, got " + describe(cur()));
        return nullptr;
      }
      s->attr = cur().text;
      next();
      PARSE_TRY(expect_op(Op::kAssign));
      s->expr = parse_tuple(true, {}, false);
      PARSE_TRY(s->expr);
      return s;
    }
    Target target;
    PARSE_TRY(parse_target(&target, {}));
    if (skip_op(Op::kAssign)) {
      auto s = std::make_unique<Stmt>(StmtKind::kSet, off);
      s->target = std::move(target);
      s->expr = parse_tuple(true, {}, false);
      PARSE_TRY(s->expr);
      return s;
    }
    auto s = std::make_unique<Stmt>(StmtKind::kSetBlock, off);
    s->target = std::move(target);
    if (is_op(Op::kPipe)) {
      s->expr = parse_filter(nullptr, false);
      PARSE_TRY(s->expr);
    }
    if (cur().type != TokenType::kBlockEnd) {
      fail_here("expected '=' or end of statement block '%}', got " + describe(cur()));
      return nullptr;
    }
    PARSE_TRY(parse_body(&s->body, {"endset"}, off, "set"));
    PARSE_TRY(end_tag());
    return s;
  }

  bool parse_signature(Stmt* s) {
    if (!expect_op(Op::kLParen)) return false;
    while (!is_op(Op::kRParen)) {
      if (!s->params.empty() && !expect_op(Op::kComma)) return false;
      if (is_op(Op::kRParen)) break;
      if (cur().type != TokenType::kName || is_const_name(cur().text)) {
        return fail_here("expected a parameter name, got " + describe(cur()));
      }
      s->params.push_back(cur().text);
      next();
      if (skip_op(Op::kAssign)) {
        ExprPtr d = parse_expression(true);
        if (!d) return false;
        s->defaults.push_back(std::move(d));
      } else if (!s->defaults.empty()) {
        return fail_here("non-default parameter follows default parameter");
      }
    }
    next();
    return true;
  }

  StmtPtr parse_macro() {
    const uint32_t off = cur().offset;
    next();
    auto s = std::make_unique<Stmt>(StmtKind::kMacro, off);
    if (cur().type != TokenType::kName) {
      fail_here("expected a macro name, got " + describe(cur()));
      return nullptr;
    }
    s->text = cur().text;
    next();
    PARSE_TRY(parse_signature(s.get()));
    const int saved = loop_depth_;
    loop_depth_ = 0;
    const bool ok = parse_body(&s->body, {"endmacro"}, off, "macro");
    loop_depth_ = saved;
    PARSE_TRY(ok);
    PARSE_TRY(end_tag());
    return s;
  }

  StmtPtr parse_call_block() {
    const uint32_t off = cur().offset;
    next();
    auto s = std::make_unique<Stmt>(StmtKind::kCallBlock, off);
    if (is_op(Op::kLParen)) PARSE_TRY(parse_signature(s.get()));
    s->expr = parse_expression(true);
    PARSE_TRY(s->expr);
    if (s->expr->kind != ExprKind::kCall) {
      fail(off, "expected a call after 'call'");
      return nullptr;
    }
    const int saved = loop_depth_;
    loop_depth_ = 0;
    const bool ok = parse_body(&s->body, {"endcall"}, off, "call");
    loop_depth_ = saved;
    PARSE_TRY(ok);
    PARSE_TRY(end_tag());
    return s;
  }

  StmtPtr parse_filter_block() {
    const uint32_t off = cur().offset;
    next();
    auto s = std::make_unique<Stmt>(StmtKind::kFilterBlock, off);
    s->expr = parse_filter(nullptr, true);
    PARSE_TRY(s->expr);
    PARSE_TRY(parse_body(&s->body, {"endfilter"}, off, "filter"));
    PARSE_TRY(end_tag());
    return s;
  }

  StmtPtr parse_with() {
    const uint32_t off = cur().offset;
    next();
    auto s = std::make_unique<Stmt>(StmtKind::kWith, off);
    while (cur().type != TokenType::kBlockEnd) {
      if (!s->with_targets.empty()) PARSE_TRY(expect_op(Op::kComma));
      Target t;
      if (cur().type != TokenType::kName || is_const_name(cur().text)) {
        fail_here("expected a name, got " + describe(cur()));
        return nullptr;
      }
      t.name = cur().text;
      t.offset = cur().offset;
      next();
      PARSE_TRY(expect_op(Op::kAssign));
      ExprPtr v = parse_expression(true);
      PARSE_TRY(v);
      s->with_targets.push_back(std::move(t));
      s->with_values.push_back(std::move(v));
    }
    PARSE_TRY(parse_body(&s->body, {"endwith"}, off, "with"));
    PARSE_TRY(end_tag());
    return s;
  }

  // Assignment target: name, or names/parenthesized tuples separated by commas.
  bool parse_target_primary(Target* t) {
    Nest nest(this);
    if (!nest.ok) return false;
    t->offset = cur().offset;
    if (cur().type == TokenType::kName) {
      if (is_const_name(cur().text)) return fail_here("cannot assign to " + describe(cur()));
      t->name = cur().text;
      next();
      return true;
    }
    if (skip_op(Op::kLParen)) {
      if (!parse_target(t, {})) return false;
      return expect_op(Op::kRParen);
    }
    return fail_here("expected a name to assign to, got " + describe(cur()));
  }

  bool target_end(std::string_view extra) const {
    const Token& t = cur();
    if (t.type == TokenType::kBlockEnd || t.type == TokenType::kVarEnd) return true;
    if (t.type == TokenType::kOp && (t.op == Op::kRParen || t.op == Op::kAssign)) return true;
    return !extra.empty() && t.type == TokenType::kName && t.text == extra;
  }

  bool parse_target(Target* t, std::string_view extra_end) {
    Target first;
    if (!parse_target_primary(&first)) return false;
    if (!is_op(Op::kComma)) {
      *t = std::move(first);
      return true;
    }
    t->offset = first.offset;
    t->items.push_back(std::move(first));
    while (skip_op(Op::kComma)) {
      if (target_end(extra_end)) break;
      Target item;
      if (!parse_target_primary(&item)) return false;
      t->items.push_back(std::move(item));
    }
    return true;
  }

  // ---- expressions ----

  bool tuple_end(std::string_view extra) const {
    const Token& t = cur();
    if (t.type == TokenType::kVarEnd || t.type == TokenType::kBlockEnd ||
        t.type == TokenType::kEof) {
      return true;
    }
    if (t.type == TokenType::kOp && t.op == Op::kRParen) return true;
    return !extra.empty() && t.type == TokenType::kName && t.text == extra;
  }

  // jinja2's parse_tuple: a single expression, or a tuple when commas appear.
  ExprPtr parse_tuple(bool with_condexpr, std::string_view extra_end, bool explicit_parens) {
    const uint32_t off = cur().offset;
    std::vector<ExprPtr> items;
    bool is_tuple = false;
    while (true) {
      if (!items.empty() && !expect_op(Op::kComma)) return nullptr;
      if (tuple_end(extra_end)) break;
      ExprPtr e = parse_expression(with_condexpr);
      PARSE_TRY(e);
      items.push_back(std::move(e));
      if (is_op(Op::kComma)) {
        is_tuple = true;
      } else {
        break;
      }
    }
    if (!is_tuple) {
      if (!items.empty()) return std::move(items[0]);
      if (!explicit_parens) {
        fail_here("expected an expression, got " + describe(cur()));
        return nullptr;
      }
    }
    auto t = node(ExprKind::kTuple, off);
    t->kids = std::move(items);
    return finish(std::move(t));
  }

  ExprPtr parse_expression(bool with_condexpr) {
    Nest nest(this);
    PARSE_TRY(nest.ok);
    if (!with_condexpr) return parse_or();
    const uint32_t off = cur().offset;
    ExprPtr expr = parse_or();
    PARSE_TRY(expr);
    while (is_name("if")) {
      next();
      ExprPtr test = parse_or();
      PARSE_TRY(test);
      ExprPtr otherwise;
      if (skip_name("else")) {
        otherwise = parse_expression(true);
        PARSE_TRY(otherwise);
      }
      auto c = node(ExprKind::kCond, off);
      c->kids.push_back(std::move(test));
      c->kids.push_back(std::move(expr));
      c->kids.push_back(std::move(otherwise));
      expr = finish(std::move(c));
      PARSE_TRY(expr);
    }
    return expr;
  }

  ExprPtr parse_or() {
    ExprPtr left = parse_and();
    PARSE_TRY(left);
    while (is_name("or")) {
      const uint32_t off = cur().offset;
      next();
      ExprPtr right = parse_and();
      PARSE_TRY(right);
      auto n = node(ExprKind::kOr, off);
      n->kids.push_back(std::move(left));
      n->kids.push_back(std::move(right));
      left = finish(std::move(n));
      PARSE_TRY(left);
    }
    return left;
  }

  ExprPtr parse_and() {
    ExprPtr left = parse_not();
    PARSE_TRY(left);
    while (is_name("and")) {
      const uint32_t off = cur().offset;
      next();
      ExprPtr right = parse_not();
      PARSE_TRY(right);
      auto n = node(ExprKind::kAnd, off);
      n->kids.push_back(std::move(left));
      n->kids.push_back(std::move(right));
      left = finish(std::move(n));
      PARSE_TRY(left);
    }
    return left;
  }

  ExprPtr parse_not() {
    if (is_name("not")) {
      Nest nest(this);
      PARSE_TRY(nest.ok);
      const uint32_t off = cur().offset;
      next();
      ExprPtr operand = parse_not();
      PARSE_TRY(operand);
      auto n = node(ExprKind::kNot, off);
      n->kids.push_back(std::move(operand));
      return finish(std::move(n));
    }
    return parse_compare();
  }

  ExprPtr parse_compare() {
    const uint32_t off = cur().offset;
    ExprPtr first = parse_math1();
    PARSE_TRY(first);
    auto cmp = node(ExprKind::kCompare, off);
    while (true) {
      CmpOp op;
      if (cur().type == TokenType::kOp && cur().op == Op::kEq) {
        op = CmpOp::kEq;
      } else if (is_op(Op::kNe)) {
        op = CmpOp::kNe;
      } else if (is_op(Op::kLt)) {
        op = CmpOp::kLt;
      } else if (is_op(Op::kLe)) {
        op = CmpOp::kLe;
      } else if (is_op(Op::kGt)) {
        op = CmpOp::kGt;
      } else if (is_op(Op::kGe)) {
        op = CmpOp::kGe;
      } else if (is_name("in")) {
        op = CmpOp::kIn;
      } else if (is_name("not") && look().type == TokenType::kName && look().text == "in") {
        op = CmpOp::kNotIn;
        next();
      } else {
        break;
      }
      next();
      ExprPtr operand = parse_math1();
      PARSE_TRY(operand);
      cmp->cmp_ops.push_back(op);
      if (cmp->kids.empty()) cmp->kids.push_back(std::move(first));
      cmp->kids.push_back(std::move(operand));
    }
    if (cmp->kids.empty()) return first;
    return finish(std::move(cmp));
  }

  ExprPtr binary(Op op, uint32_t off, ExprPtr l, ExprPtr r) {
    auto n = node(ExprKind::kBinary, off);
    n->op = op;
    n->kids.push_back(std::move(l));
    n->kids.push_back(std::move(r));
    return finish(std::move(n));
  }

  ExprPtr parse_math1() {
    ExprPtr left = parse_concat();
    PARSE_TRY(left);
    while (is_op(Op::kAdd) || is_op(Op::kSub)) {
      const Op op = cur().op;
      const uint32_t off = cur().offset;
      next();
      ExprPtr right = parse_concat();
      PARSE_TRY(right);
      left = binary(op, off, std::move(left), std::move(right));
      PARSE_TRY(left);
    }
    return left;
  }

  ExprPtr parse_concat() {
    const uint32_t off = cur().offset;
    ExprPtr first = parse_math2();
    PARSE_TRY(first);
    if (!is_op(Op::kTilde)) return first;
    auto n = node(ExprKind::kConcat, off);
    n->kids.push_back(std::move(first));
    while (skip_op(Op::kTilde)) {
      ExprPtr e = parse_math2();
      PARSE_TRY(e);
      n->kids.push_back(std::move(e));
    }
    return finish(std::move(n));
  }

  ExprPtr parse_math2() {
    ExprPtr left = parse_pow();
    PARSE_TRY(left);
    while (is_op(Op::kMul) || is_op(Op::kDiv) || is_op(Op::kFloorDiv) || is_op(Op::kMod)) {
      const Op op = cur().op;
      const uint32_t off = cur().offset;
      next();
      ExprPtr right = parse_pow();
      PARSE_TRY(right);
      left = binary(op, off, std::move(left), std::move(right));
      PARSE_TRY(left);
    }
    return left;
  }

  ExprPtr parse_pow() {
    ExprPtr left = parse_unary(true);
    PARSE_TRY(left);
    while (is_op(Op::kPow)) {
      const uint32_t off = cur().offset;
      next();
      ExprPtr right = parse_unary(true);
      PARSE_TRY(right);
      left = binary(Op::kPow, off, std::move(left), std::move(right));
      PARSE_TRY(left);
    }
    return left;
  }

  ExprPtr parse_unary(bool with_filter) {
    ExprPtr n;
    if (is_op(Op::kSub) || is_op(Op::kAdd)) {
      Nest nest(this);
      PARSE_TRY(nest.ok);
      const bool neg = is_op(Op::kSub);
      const uint32_t off = cur().offset;
      next();
      ExprPtr operand = parse_unary(false);
      PARSE_TRY(operand);
      n = node(neg ? ExprKind::kNeg : ExprKind::kPos, off);
      n->kids.push_back(std::move(operand));
      n = finish(std::move(n));
    } else {
      n = parse_primary();
    }
    PARSE_TRY(n);
    n = parse_postfix(std::move(n));
    PARSE_TRY(n);
    if (with_filter) n = parse_filter_expr(std::move(n));
    return n;
  }

  ExprPtr parse_primary() {
    const Token& t = cur();
    const uint32_t off = t.offset;
    switch (t.type) {
      case TokenType::kName: {
        auto n = node(ExprKind::kConst, off);
        if (t.text == "true" || t.text == "True") {
          n->value = Value(true);
        } else if (t.text == "false" || t.text == "False") {
          n->value = Value(false);
        } else if (t.text == "none" || t.text == "None") {
          n->value = Value::none();
        } else {
          n->kind = ExprKind::kName;
          n->name = t.text;
        }
        next();
        return n;
      }
      case TokenType::kString: {
        std::string s = t.text;
        next();
        while (cur().type == TokenType::kString) {  // adjacent literals concatenate
          s += cur().text;
          next();
        }
        auto n = node(ExprKind::kConst, off);
        n->value = Value(std::move(s));
        return n;
      }
      case TokenType::kInt: {
        auto n = node(ExprKind::kConst, off);
        n->value = Value(t.int_value);
        next();
        return n;
      }
      case TokenType::kFloat: {
        auto n = node(ExprKind::kConst, off);
        n->value = Value(t.float_value);
        next();
        return n;
      }
      case TokenType::kOp:
        if (t.op == Op::kLParen) {
          next();
          ExprPtr e = parse_tuple(true, {}, true);
          PARSE_TRY(e);
          PARSE_TRY(expect_op(Op::kRParen));
          return e;
        }
        if (t.op == Op::kLBracket) return parse_list();
        if (t.op == Op::kLBrace) return parse_dict();
        break;
      default:
        break;
    }
    fail_here("unexpected " + describe(t));
    return nullptr;
  }

  ExprPtr parse_list() {
    auto n = node(ExprKind::kList, cur().offset);
    next();
    while (!is_op(Op::kRBracket)) {
      if (!n->kids.empty()) PARSE_TRY(expect_op(Op::kComma));
      if (is_op(Op::kRBracket)) break;
      ExprPtr e = parse_expression(true);
      PARSE_TRY(e);
      n->kids.push_back(std::move(e));
    }
    next();
    return finish(std::move(n));
  }

  ExprPtr parse_dict() {
    auto n = node(ExprKind::kDict, cur().offset);
    next();
    while (!is_op(Op::kRBrace)) {
      if (!n->kids.empty()) PARSE_TRY(expect_op(Op::kComma));
      if (is_op(Op::kRBrace)) break;
      ExprPtr k = parse_expression(true);
      PARSE_TRY(k);
      PARSE_TRY(expect_op(Op::kColon));
      ExprPtr v = parse_expression(true);
      PARSE_TRY(v);
      n->kids.push_back(std::move(k));
      n->kids.push_back(std::move(v));
    }
    next();
    return finish(std::move(n));
  }

  ExprPtr parse_postfix(ExprPtr n) {
    while (true) {
      if (is_op(Op::kDot) || is_op(Op::kLBracket)) {
        n = parse_subscript(std::move(n));
      } else if (is_op(Op::kLParen)) {
        n = parse_call(std::move(n));
      } else {
        return n;
      }
      PARSE_TRY(n);
    }
  }

  ExprPtr parse_filter_expr(ExprPtr n) {
    while (true) {
      if (is_op(Op::kPipe)) {
        n = parse_filter(std::move(n), false);
      } else if (is_name("is")) {
        n = parse_test(std::move(n));
      } else if (is_op(Op::kLParen)) {
        n = parse_call(std::move(n));
      } else {
        return n;
      }
      PARSE_TRY(n);
    }
  }

  ExprPtr parse_subscript(ExprPtr obj) {
    const uint32_t off = cur().offset;
    if (skip_op(Op::kDot)) {
      const Token& a = cur();
      if (a.type == TokenType::kName) {
        auto n = node(ExprKind::kGetattr, off);
        n->name = a.text;
        n->kids.push_back(std::move(obj));
        next();
        return finish(std::move(n));
      }
      if (a.type == TokenType::kInt) {
        auto n = node(ExprKind::kGetitem, off);
        auto k = node(ExprKind::kConst, a.offset);
        k->value = Value(a.int_value);
        n->kids.push_back(std::move(obj));
        n->kids.push_back(std::move(k));
        next();
        return finish(std::move(n));
      }
      fail_here("expected a name or number after '.', got " + describe(a));
      return nullptr;
    }
    next();  // [
    std::vector<ExprPtr> args;
    while (!is_op(Op::kRBracket)) {
      if (!args.empty()) PARSE_TRY(expect_op(Op::kComma));
      ExprPtr a = parse_subscribed();
      PARSE_TRY(a);
      args.push_back(std::move(a));
    }
    next();
    if (args.empty()) {
      fail(off, "expected a subscript expression");
      return nullptr;
    }
    auto n = node(ExprKind::kGetitem, off);
    n->kids.push_back(std::move(obj));
    if (args.size() == 1) {
      n->kids.push_back(std::move(args[0]));
    } else {
      auto t = node(ExprKind::kTuple, off);
      t->kids = std::move(args);
      t = finish(std::move(t));
      PARSE_TRY(t);
      n->kids.push_back(std::move(t));
    }
    return finish(std::move(n));
  }

  ExprPtr parse_subscribed() {
    const uint32_t off = cur().offset;
    ExprPtr start;
    if (!is_op(Op::kColon)) {
      start = parse_expression(true);
      PARSE_TRY(start);
      if (!is_op(Op::kColon)) return start;
    }
    next();  // first ':'
    auto s = node(ExprKind::kSlice, off);
    ExprPtr stop, step;
    if (!is_op(Op::kColon) && !is_op(Op::kRBracket) && !is_op(Op::kComma)) {
      stop = parse_expression(true);
      PARSE_TRY(stop);
    }
    if (skip_op(Op::kColon)) {
      if (!is_op(Op::kRBracket) && !is_op(Op::kComma)) {
        step = parse_expression(true);
        PARSE_TRY(step);
      }
    }
    s->kids.push_back(std::move(start));
    s->kids.push_back(std::move(stop));
    s->kids.push_back(std::move(step));
    return finish(std::move(s));
  }

  // Appends `(args, kw=...)` to n->kids / n->kwargs.
  bool parse_call_args(Expr* n) {
    if (!expect_op(Op::kLParen)) return false;
    bool need_comma = false;
    while (!is_op(Op::kRParen)) {
      if (need_comma) {
        if (!expect_op(Op::kComma)) return false;
        if (is_op(Op::kRParen)) break;
      }
      if (is_op(Op::kMul) || is_op(Op::kPow)) {
        return fail_here("*args / **kwargs in calls are not supported");
      }
      if (cur().type == TokenType::kName && look().type == TokenType::kOp &&
          look().op == Op::kAssign) {
        std::string key = cur().text;
        next();
        next();
        ExprPtr v = parse_expression(true);
        if (!v) return false;
        n->kwargs.emplace_back(std::move(key), std::move(v));
      } else {
        if (!n->kwargs.empty()) return fail_here("positional argument follows keyword argument");
        ExprPtr v = parse_expression(true);
        if (!v) return false;
        n->kids.push_back(std::move(v));
      }
      need_comma = true;
    }
    next();
    return true;
  }

  ExprPtr parse_call(ExprPtr callee) {
    auto n = node(ExprKind::kCall, cur().offset);
    n->kids.push_back(std::move(callee));
    PARSE_TRY(parse_call_args(n.get()));
    return finish(std::move(n));
  }

  // `| name(args) | name2 ...`; with start_inline the first name has no leading pipe.
  ExprPtr parse_filter(ExprPtr input, bool start_inline) {
    while (is_op(Op::kPipe) || start_inline) {
      if (!start_inline) next();
      start_inline = false;
      if (cur().type != TokenType::kName) {
        fail_here("expected a filter name, got " + describe(cur()));
        return nullptr;
      }
      auto n = node(ExprKind::kFilter, cur().offset);
      n->name = cur().text;
      next();
      while (is_op(Op::kDot)) {
        next();
        if (cur().type != TokenType::kName) {
          fail_here("expected a name, got " + describe(cur()));
          return nullptr;
        }
        n->name += "." + cur().text;
        next();
      }
      n->kids.push_back(std::move(input));
      if (is_op(Op::kLParen)) PARSE_TRY(parse_call_args(n.get()));
      input = finish(std::move(n));
      PARSE_TRY(input);
    }
    return input;
  }

  ExprPtr parse_test(ExprPtr input) {
    const uint32_t off = cur().offset;
    next();  // is
    const bool negated = skip_name("not");
    if (cur().type != TokenType::kName) {
      fail_here("expected a test name, got " + describe(cur()));
      return nullptr;
    }
    auto n = node(ExprKind::kTest, off);
    n->name = cur().text;
    next();
    while (is_op(Op::kDot)) {
      next();
      if (cur().type != TokenType::kName) {
        fail_here("expected a name, got " + describe(cur()));
        return nullptr;
      }
      n->name += "." + cur().text;
      next();
    }
    n->kids.push_back(std::move(input));
    if (is_op(Op::kLParen)) {
      PARSE_TRY(parse_call_args(n.get()));
    } else {
      const Token& t = cur();
      const bool starts_arg =
          t.type == TokenType::kName || t.type == TokenType::kString || t.type == TokenType::kInt ||
          t.type == TokenType::kFloat ||
          (t.type == TokenType::kOp && (t.op == Op::kLBracket || t.op == Op::kLBrace));
      if (starts_arg && !is_name("else") && !is_name("or") && !is_name("and")) {
        if (is_name("is")) {
          fail_here("you cannot chain multiple tests with 'is'");
          return nullptr;
        }
        ExprPtr arg = parse_primary();
        PARSE_TRY(arg);
        arg = parse_postfix(std::move(arg));
        PARSE_TRY(arg);
        n->kids.push_back(std::move(arg));
      }
    }
    ExprPtr result = finish(std::move(n));
    PARSE_TRY(result);
    if (negated) {
      auto neg = node(ExprKind::kNot, off);
      neg->kids.push_back(std::move(result));
      return finish(std::move(neg));
    }
    return result;
  }

  std::string_view src_;
  const std::vector<Token>& toks_;
  size_t pos_ = 0;
  int max_nesting_;
  int nesting_ = 0;
  int loop_depth_ = 0;
  bool failed_ = false;
  std::string error_;
};

}  // namespace

Result<Body> parse(std::string_view source, const std::vector<Token>& tokens, int max_nesting) {
  return Parser(source, tokens, max_nesting).run();
}

}  // namespace minnow::text::jinja
