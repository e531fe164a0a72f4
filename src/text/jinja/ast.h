// The parsed template: expression and statement nodes, mirroring jinja2's node types. Every
// node keeps the byte offset of its first token so that errors name a line and column.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "text/jinja/lexer.h"
#include "text/jinja/value.h"

namespace minnow::text::jinja {

struct Expr;
struct Stmt;
using ExprPtr = std::unique_ptr<Expr>;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

enum class ExprKind : uint8_t {
  kConst,    // value
  kName,     // name
  kGetattr,  // a.name
  kGetitem,  // a[b]  (b may be a kSlice)
  kSlice,    // start:stop:step, inside a subscript (absent parts are null)
  kCall,     // f(args, kw=...)
  kFilter,   // a | name(args)  (a is null in a {% filter %} block)
  kTest,     // a is name(args)
  kNot,      // not a
  kNeg,      // -a
  kPos,      // +a
  kBinary,   // a op b (arithmetic)
  kAnd,      // a and b
  kOr,       // a or b
  kConcat,   // a ~ b ~ c
  kCompare,  // a op b op c (chained)
  kCond,     // b if a else c
  kList,     // [a, b]
  kTuple,    // (a, b)
  kDict,     // {k: v}
};

enum class CmpOp : uint8_t { kEq, kNe, kLt, kLe, kGt, kGe, kIn, kNotIn };

struct Expr {
  explicit Expr(ExprKind k, uint32_t off) : kind(k), offset(off) {}
  ExprKind kind;
  uint32_t offset;
  uint32_t depth = 1;  // height of this subtree (bounded by the parser)

  Value value;                 // kConst
  std::string name;            // kName, kGetattr attribute, kFilter / kTest name
  Op op = Op::kAdd;            // kBinary
  std::vector<ExprPtr> kids;   // operands; see build order in parser.cpp
  std::vector<CmpOp> cmp_ops;  // kCompare: one per operand after the first
  std::vector<std::pair<std::string, ExprPtr>> kwargs;  // kCall, kFilter, kTest
};

// Assignment targets: a name or a (possibly nested) tuple of names.
struct Target {
  std::string name;  // empty for a tuple
  std::vector<Target> items;
  uint32_t offset = 0;
};

enum class StmtKind : uint8_t {
  kText,    // text
  kOutput,  // {{ expr }}
  kIf,      // branches, else
  kFor,
  kSet,       // {% set target = expr %}
  kSetNs,     // {% set ns.attr = expr %}
  kSetBlock,  // {% set target %}body{% endset %}, optional filter chain
  kMacro,
  kCallBlock,  // {% call(params) macro(args) %}body{% endcall %}
  kFilterBlock,
  kWith,
  kBreak,
  kContinue,
  kGeneration,  // Hugging Face's {% generation %}body{% endgeneration %}: renders its body
};

struct Stmt {
  explicit Stmt(StmtKind k, uint32_t off) : kind(k), offset(off) {}
  StmtKind kind;
  uint32_t offset;

  std::string text;        // kText; kMacro name; kSetNs namespace name
  std::string attr;        // kSetNs attribute
  ExprPtr expr;            // kOutput, kSet, kSetNs, kFor iterable, kCallBlock call, filter chains
  ExprPtr filter;          // kFor `if` filter
  Target target;           // kSet, kFor, kSetBlock
  bool recursive = false;  // kFor
  std::vector<std::pair<ExprPtr, Body>> branches;  // kIf
  Body body;       // kFor, kMacro, kSetBlock, kCallBlock, kFilterBlock, kWith, kGeneration
  Body else_body;  // kIf, kFor
  // kMacro / kCallBlock parameters (defaults aligned to the last params); kWith targets
  std::vector<std::string> params;
  std::vector<ExprPtr> defaults;
  std::vector<Target> with_targets;
  std::vector<ExprPtr> with_values;
};

}  // namespace minnow::text::jinja
