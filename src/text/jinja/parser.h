// Recursive-descent parser over lexer tokens, following jinja2's grammar and operator
// precedence (including its quirks: `**` is left-associative and binds looser than unary
// minus; `~` binds tighter than `+`). Nesting depth is bounded so that hostile input such as
// 200 nested parentheses is a parse error rather than a stack overflow in the parser or later
// in the evaluator.
#pragma once

#include <string_view>
#include <vector>

#include "text/jinja/ast.h"
#include "text/jinja/lexer.h"
#include "util/status.h"

namespace minnow::text::jinja {

// `source` is the normalized source the tokens came from (for line:column in messages).
Result<Body> parse(std::string_view source, const std::vector<Token>& tokens, int max_nesting);

}  // namespace minnow::text::jinja
