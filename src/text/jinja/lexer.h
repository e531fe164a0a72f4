// Splits template source into tokens the way jinja2's lexer does with Hugging Face's settings
// (trim_blocks, lstrip_blocks, keep_trailing_newline=False): data runs, {{ }} / {% %} tags with
// their `-` / `+` whitespace control, comments dropped, {% raw %} blocks passed through.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "util/status.h"

namespace minnow::text::jinja {

enum class TokenType : uint8_t {
  kData,
  kVarBegin,
  kVarEnd,
  kBlockBegin,
  kBlockEnd,
  kName,
  kString,
  kInt,
  kFloat,
  kOp,
  kEof,
};

enum class Op : uint8_t {
  kAdd,
  kSub,
  kDiv,
  kFloorDiv,
  kMul,
  kMod,
  kPow,
  kTilde,
  kLBracket,
  kRBracket,
  kLParen,
  kRParen,
  kLBrace,
  kRBrace,
  kEq,
  kNe,
  kGt,
  kGe,
  kLt,
  kLe,
  kAssign,
  kDot,
  kColon,
  kPipe,
  kComma,
  kSemicolon,
};

struct Token {
  TokenType type = TokenType::kEof;
  Op op = Op::kAdd;
  uint32_t offset = 0;  // byte offset in the normalized source
  std::string text;     // data, name, or the unescaped string literal
  int64_t int_value = 0;
  double float_value = 0;
};

struct LexOptions {
  bool trim_blocks = true;
  bool lstrip_blocks = true;
};

// jinja2 turns \r\n and \r into \n and drops one trailing newline before lexing.
std::string normalize_source(std::string_view source);

// Tokenizes normalized source. Errors carry "line:column: message".
Result<std::vector<Token>> tokenize(std::string_view source, const LexOptions& options);

// 1-based line and column (in code points) of a byte offset.
std::string location(std::string_view source, uint32_t offset);

std::string_view op_text(Op op);

}  // namespace minnow::text::jinja
