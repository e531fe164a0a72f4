// The pre-tokenizer of byte-level BPE vocabularies: `tokenizer.ggml.pre` names a list of split
// patterns (taken from each model's tokenizer.json as llama.cpp adapts them) and a few flags.
// Each pattern splits every piece produced by the previous one into matches and the gaps
// between them ("isolated" splitting), using PCRE2 in UTF + UCP mode with JIT.
//
// Patterns are rewritten once at load so that PCRE2 means what llama.cpp's engines mean:
//   \s, \S          -> \p{White_Space}, \P{White_Space} (PCRE2's \s also takes U+180E)
//   \p{Lu|Ll|Lt|Lm|Lo} -> \p{L} (llama.cpp collapses the letter sub-categories)
//   $               -> end of the piece only (PCRE2_DOLLAR_ENDONLY)
// Differences that remain are documented in src/text/README.md.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "util/status.h"

namespace minnow::text {

struct PreTokenizerInfo {
  std::string_view name;  // canonical kind name, e.g. "llama3"
  std::vector<std::string_view> patterns;
  bool byte_encode = true;         // GPT-2 byte alphabet (false: raw UTF-8, <0xNN> bytes)
  bool ignore_merges = false;      // a word that is itself a token skips the merges
  bool clean_spaces = true;        // detokenize applies clean_up_tokenization_spaces
  bool add_bos = false;            // default for add_bos before the GGUF key
  bool escape_whitespace = false;  // ' ' -> U+2581 before splitting (SPM-style BPE)
  bool no_bos = false;             // the kind disables the BOS token (chatglm)
  bool newline_words = false;      // a word of only '\n' that is a token skips the merges
};

// Looks up `tokenizer.ggml.pre` (empty -> "default"). Unknown or unsupported names are errors.
Result<PreTokenizerInfo> find_pre_tokenizer(std::string_view pre);

// A compiled list of split patterns. Immutable and safe to share between threads.
class RegexSplitter {
 public:
  struct Piece {
    uint32_t offset;
    uint32_t length;
  };

  static Result<std::unique_ptr<RegexSplitter>> create(
      const std::vector<std::string_view>& patterns);
  ~RegexSplitter();
  RegexSplitter(const RegexSplitter&) = delete;
  RegexSplitter& operator=(const RegexSplitter&) = delete;

  // Splits `text` (valid UTF-8, no surrogates) into consecutive pieces that cover it, written
  // to `out` (cleared first). Fails only when PCRE2 runs out of its resource limits.
  Status split(std::string_view text, std::vector<Piece>& out) const;

  // The pattern as compiled, after the rewrites above (for tests and error messages).
  static std::string rewrite(std::string_view pattern);

 private:
  RegexSplitter() = default;
  struct Compiled;
  std::vector<Compiled*> compiled_;
};

}  // namespace minnow::text
