// Code-point helpers for the template interpreter. Template strings are UTF-8 bytes, but Python
// (whose semantics the templates assume) measures, indexes, slices, strips and case-maps strings
// by code point with Unicode-aware rules; these helpers give the same answers. Invalid UTF-8 is
// decoded byte by byte as U+FFFD-free "raw" code points (0xDC80 + byte, like Python's
// surrogateescape) so that slicing and re-encoding never lose or invent bytes.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace minnow::text::jinja {

// Decodes UTF-8 into code points (see above for invalid bytes).
std::u32string utf8_decode(std::string_view s);
// Encodes code points produced by utf8_decode back to the original bytes.
std::string utf8_encode(std::u32string_view cps);
void utf8_append(std::string& out, char32_t cp);
// Number of code points (Python's len()).
size_t utf8_length(std::string_view s);
bool is_ascii(std::string_view s);

// Python's str.isspace() for one code point: category Zs, or bidi class WS, B or S.
bool py_isspace(char32_t cp);
// Python's str.isprintable() for one code point (what repr() leaves unescaped).
bool py_isprintable(char32_t cp);
bool py_isalpha(char32_t cp);
bool py_isdigit(char32_t cp);
bool py_isalnum(char32_t cp);
bool py_iscased_upper(char32_t cp);
bool py_iscased_lower(char32_t cp);
bool py_iscased(char32_t cp);
char32_t to_upper(char32_t cp);
char32_t to_lower(char32_t cp);
char32_t to_title(char32_t cp);

std::string py_upper(std::string_view s);
std::string py_lower(std::string_view s);
// str.strip()/lstrip()/rstrip(): with chars == nullptr strips Python whitespace, else any of
// the code points in *chars.
std::string py_strip(std::string_view s, const std::string* chars, bool left, bool right);

}  // namespace minnow::text::jinja
