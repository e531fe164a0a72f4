// jinja2's compile-time constant folding, which rendered output depends on in corner cases:
//  - a {{ }} expression computable from literals alone becomes template text;
//  - any other expression computable from literals whose value has a source representation
//    (None, bools, numbers, strings, containers of those) becomes that constant;
//  - a constant dict literal with an unhashable key fails to compile when jinja2's optimizer
//    reaches it (inside an operator, filter, test, subscript, call or inline if).
// Folded and runtime evaluation differ where jinja2's do: a slice of something unsliceable is
// Undefined when folded but an error at runtime.
#pragma once

#include <string_view>

#include "text/jinja/ast.h"
#include "text/jinja/template.h"
#include "util/status.h"

namespace minnow::text::jinja {

// Errors read "LINE:COLUMN: message".
Status fold_constants(std::string_view source, const Limits& limits, Body& body);

}  // namespace minnow::text::jinja
