// Streaming detokenizer: turns generated token ids into text as they arrive.
//
// What it emits is always valid UTF-8 and never has to be taken back:
//   - bytes of a character split across tokens (byte-fallback <0xNN> tokens, byte-level BPE
//     pieces) are held until the character is complete;
//   - clean_up_tokenization_spaces (for models that use it) needs up to three characters of
//     look-ahead, so a trailing space or apostrophe may be held for a token or two;
//   - text that could be the beginning of a stop string is held until it is known not to be;
//     when a stop string appears, the text before it is emitted and the stream stops.
// The leading-space rule is that of Tokenizer::detokenize with remove_special: a leading BOS
// is skipped, otherwise the first piece loses one leading space when the model adds a space
// prefix. Without stop strings, the concatenated output of push()* + finish() equals
// detokenize(ids, /*remove_special=*/true, special) for any ids not ending with the EOS that
// the model appends itself, with malformed UTF-8 replaced by U+FFFD.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "text/tokenizer.h"

namespace minnow::text {

struct StreamOptions {
  bool special = false;           // render control tokens as their text
  std::vector<std::string> stop;  // stop strings (empty ones are ignored)
};

class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tokenizer, StreamOptions options = {});
  ~StreamDecoder();

  // Adds one token; returns the text that became final (possibly empty).
  std::string push(TokenId id);
  // Ends the stream: releases everything held (an incomplete character becomes U+FFFD).
  std::string finish();

  // True once a stop string has been found; push() then returns "" and finish() too.
  bool stopped() const { return stopped_; }
  // The stop string that ended the stream ("" if none).
  const std::string& stop_found() const { return stop_found_; }

 private:
  class CleanSpaces;
  void feed(std::string_view bytes, std::string& out, bool final);
  void release(std::string_view text, std::string& out, bool final);

  const Tokenizer& tok_;
  StreamOptions opts_;
  std::unique_ptr<CleanSpaces> clean_;
  bool first_ = true;
  bool strip_space_;
  std::string utf8_pending_;  // bytes of an incomplete character
  std::string stop_pending_;  // text that may start a stop string
  bool stopped_ = false;
  std::string stop_found_;
};

}  // namespace minnow::text
