// JSON Schema -> GBNF: the grammar of the JSON documents a schema allows, for constrained
// decoding (Grammar::parse of the result; the start rule is `root`).
//
// The grammar generates a subset of the documents the schema validates, chosen so that a small
// model cannot wander off: every document it accepts validates (by e.g. Python's `jsonschema`,
// formats included), but not every valid document is accepted. The choices:
//   - whitespace: at most one run between tokens, after `{` `[` `,` `:` and before `}` `]`: one
//     space, or one newline followed by up to 16 spaces/tabs of indentation; none around the
//     whole document. Numbers have at most 15 integer and 15 fraction digits.
//   - objects: the declared `properties` in the order given (optional ones may be left out).
//     `additionalProperties` absent: no other property when `properties` is declared (a model
//     never needs to invent fields), any when it is not; `true` or a schema: further properties
//     after the declared ones, with keys that are not declared names; `false`: none.
//   - `pattern` is matched against the whole string (the schema's semantics is a search; a full
//     match is one); \d \w \s and their negations stand for their ASCII members.
//   - `oneOf` is compiled as `anyOf` when the branches are provably disjoint (different types,
//     distinct `const`/`enum` values, a discriminating property); otherwise it is an error.
//   - formats: date and date-time (years 1000-9999, no 29 February), time (RFC 3339, offset
//     required), uuid, email (ASCII local part and domain).
//   - numbers with bounds: integer-valued bounds are exact (digit-wise ranges) and exponents are
//     then not generated; fractional bounds on `number` are an error. Integer bounds may be any.
// Anything the grammar cannot express is an error naming the keyword and its JSON pointer, e.g.
// "schema at /properties/tags: 'uniqueItems' is not supported"; annotations (title,
// description, default, examples, $schema, $id, $comment, readOnly, deprecated, ...) and
// keywords starting with "x-" are ignored on purpose.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "util/status.h"

namespace minnow::constrain {

inline constexpr size_t kMaxSchemaBytes = 1 << 20;         // schema JSON text
inline constexpr int kMaxSchemaDepth = 64;                 // nested subschemas (and allOf merges)
inline constexpr size_t kMaxSchemaGrammarBytes = 1 << 20;  // generated GBNF
inline constexpr size_t kMaxSchemaRules = 10000;           // generated rules
inline constexpr long long kMaxSchemaRepeat = 4096;        // minLength/maxLength/minItems/...

// GBNF (root rule `root`) for the JSON documents `schema_json` allows; see above for what is
// supported and what the grammar leaves out.
Result<std::string> json_schema_to_gbnf(std::string_view schema_json);

}  // namespace minnow::constrain
