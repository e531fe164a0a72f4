#include "text/unicode.h"

#include <cstring>

namespace minnow::text {
namespace {

bool is_cont(uint8_t b) { return (b & 0xC0) == 0x80; }

// Lenient decode of one unit at `i`, as llama.cpp does: returns the code point and its byte
// length, or length 0 when the unit is malformed (the caller then consumes one byte as U+FFFD).
struct Unit {
  uint32_t cp;
  size_t len;
};

Unit decode_lenient(std::string_view s, size_t i) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  const size_t n = s.size();
  const uint8_t b = p[i];
  if (b < 0x80) return {b, 1};
  if (!(b & 0x40)) return {0, 0};
  if (!(b & 0x20)) {
    if (i + 1 >= n || !is_cont(p[i + 1])) return {0, 0};
    return {(uint32_t(b & 0x1F) << 6) | (p[i + 1] & 0x3F), 2};
  }
  if (!(b & 0x10)) {
    if (i + 2 >= n || !is_cont(p[i + 1]) || !is_cont(p[i + 2])) return {0, 0};
    return {(uint32_t(b & 0x0F) << 12) | (uint32_t(p[i + 1] & 0x3F) << 6) | (p[i + 2] & 0x3F), 3};
  }
  if (!(b & 0x08)) {
    if (i + 3 >= n || !is_cont(p[i + 1]) || !is_cont(p[i + 2]) || !is_cont(p[i + 3])) {
      return {0, 0};
    }
    return {(uint32_t(b & 0x07) << 18) | (uint32_t(p[i + 1] & 0x3F) << 12) |
                (uint32_t(p[i + 2] & 0x3F) << 6) | (p[i + 3] & 0x3F),
            4};
  }
  return {0, 0};
}

size_t encoded_len(uint32_t cp) { return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4; }

// Length of the strictly valid UTF-8 sequence at `i`, or 0 with `*bad` set to the length of the
// maximal invalid subpart (the bytes a validator consumes before it can tell the sequence is bad).
size_t strict_len(const uint8_t* p, size_t n, size_t i, size_t* bad) {
  const uint8_t b = p[i];
  if (b < 0x80) return 1;
  size_t len;
  uint8_t lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (b >= 0xC2 && b <= 0xDF) {
    len = 2;
  } else if (b >= 0xE0 && b <= 0xEF) {
    len = 3;
    if (b == 0xE0) lo = 0xA0;
    if (b == 0xED) hi = 0x9F;
  } else if (b >= 0xF0 && b <= 0xF4) {
    len = 4;
    if (b == 0xF0) lo = 0x90;
    if (b == 0xF4) hi = 0x8F;
  } else {
    *bad = 1;
    return 0;
  }
  for (size_t k = 1; k < len; ++k) {
    if (i + k >= n) {
      *bad = k;
      return 0;
    }
    const uint8_t c = p[i + k];
    const bool ok = k == 1 ? (c >= lo && c <= hi) : is_cont(c);
    if (!ok) {
      *bad = k;
      return 0;
    }
  }
  return len;
}

}  // namespace

void append_utf8(uint32_t cp, std::string& out) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

bool canonicalize_utf8(std::string_view raw, std::string& out) {
  const auto* p = reinterpret_cast<const uint8_t*>(raw.data());
  const size_t n = raw.size();
  // Find the first unit that needs rewriting; ASCII is skipped eight bytes at a time.
  size_t i = 0;
  for (;;) {
    while (i + 8 <= n) {
      uint64_t w;
      std::memcpy(&w, p + i, 8);
      if (w & 0x8080808080808080ull) break;
      i += 8;
    }
    if (i >= n) return false;
    if (p[i] < 0x80) {
      ++i;
      continue;
    }
    const Unit u = decode_lenient(raw, i);
    if (u.len == 0 || u.cp > 0x10FFFF || encoded_len(u.cp) != u.len) break;
    i += u.len;
  }
  out.assign(raw.substr(0, i));
  while (i < n) {
    const Unit u = decode_lenient(raw, i);
    if (u.len == 0) {
      append_utf8(kReplacementChar, out);
      ++i;
    } else {
      append_utf8(u.cp > 0x10FFFF ? kReplacementChar : u.cp, out);
      i += u.len;
    }
  }
  return true;
}

size_t incomplete_utf8_suffix(std::string_view s) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  const size_t n = s.size();
  for (size_t back = 1; back <= 3 && back <= n; ++back) {
    const size_t i = n - back;
    if (is_cont(p[i])) continue;
    size_t bad = 0;
    if (strict_len(p, n, i, &bad) != 0) return 0;  // a complete sequence ends the text
    // Incomplete rather than invalid when every byte present was acceptable.
    return (bad == back && p[i] >= 0xC2 && p[i] <= 0xF4) ? back : 0;
  }
  return 0;
}

void append_valid_utf8(std::string_view s, std::string& out) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    size_t bad = 0;
    const size_t len = strict_len(p, n, i, &bad);
    if (len) {
      out.append(s.substr(i, len));
      i += len;
    } else {
      append_utf8(kReplacementChar, out);
      i += bad;
    }
  }
}

const ByteAlphabet& ByteAlphabet::get() {
  static const ByteAlphabet alphabet = [] {
    ByteAlphabet a;
    a.from_cp.fill(-1);
    int extra = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
      a.to_cp[b] = printable ? b : 256 + extra++;
      a.from_cp[a.to_cp[b]] = static_cast<int16_t>(b);
    }
    return a;
  }();
  return alphabet;
}

}  // namespace minnow::text
