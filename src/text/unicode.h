// UTF-8 helpers shared by the tokenizers and the streaming detokenizer.
//
// Two decoders live here on purpose. The tokenizers must read malformed input exactly as
// llama.cpp does (its lenient decoder accepts overlong forms and surrogates and turns every
// other bad byte into U+FFFD), because the token ids have to match. The stream decoder, on the
// other hand, must only ever hand strictly valid UTF-8 to clients (utf8proc's validator).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace minnow::text {

constexpr uint32_t kReplacementChar = 0xFFFD;

// Bytes announced by a lead byte, judged by its high nibble only (1 for ASCII and for stray
// continuation bytes, 2 for 0xC0-0xDF, 3 for 0xE0-0xEF, 4 for 0xF0-0xFF). This is how the
// SentencePiece and BPE merge loops cut text into initial symbols.
inline size_t utf8_seq_len(uint8_t lead) {
  static constexpr uint8_t kLen[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return kLen[lead >> 4];
}

// The code point spelled by the `len` bytes at s[i], from their payload bits alone (no
// validation; `len` as utf8_seq_len gives it).
inline uint32_t utf8_bits(std::string_view s, size_t i, size_t len) {
  const auto lead = static_cast<uint8_t>(s[i]);
  uint32_t cp = len == 1 ? lead : lead & (0x7F >> len);
  for (size_t k = 1; k < len; ++k) cp = (cp << 6) | (static_cast<uint8_t>(s[i + k]) & 0x3F);
  return cp;
}

// Appends the UTF-8 encoding of `cp` (which must be <= 0x10FFFF).
void append_utf8(uint32_t cp, std::string& out);

// Rewrites `raw` the way llama.cpp's pre-tokenizer sees it: decodes leniently (overlong forms
// and surrogates are accepted and re-encoded in shortest form; any other malformed byte
// becomes U+FFFD; a 4-byte form above U+10FFFF becomes one U+FFFD) and re-encodes.
// Returns false, leaving `out` untouched, when `raw` is already in that form (the common case),
// so callers can keep using `raw` without a copy.
bool canonicalize_utf8(std::string_view raw, std::string& out);

// Number of bytes at the end of `s` that are the start of a UTF-8 sequence which could still
// become valid when more bytes arrive (0..3).
size_t incomplete_utf8_suffix(std::string_view s);

// Appends `s` to `out` with every maximal invalid subsequence replaced by U+FFFD (strict
// validation: no overlongs, no surrogates, nothing above U+10FFFF).
void append_valid_utf8(std::string_view s, std::string& out);

// The GPT-2 byte-level alphabet: each byte is shown as one printable code point
// (printable Latin-1 bytes as themselves, the other 68 as U+0100..U+0143 in byte order).
struct ByteAlphabet {
  std::array<uint32_t, 256> to_cp{};
  // Code point -> byte, for code points below 0x144; -1 elsewhere.
  std::array<int16_t, 0x144> from_cp{};

  static const ByteAlphabet& get();
  int byte_of(uint32_t cp) const { return cp < from_cp.size() ? from_cp[cp] : -1; }
};

}  // namespace minnow::text
