// Stop strings over streamed text. The engine feeds the detokenized text of each token as it
// comes (pieces of bytes; a stop string may span any number of pieces) and emits what feed()
// returns. Text that could still be the start of a stop string is held back until the next
// piece decides; the stop string itself and everything after it are never emitted.
//
// Matching is on bytes. A stop string is valid UTF-8 and starts with a lead byte, so the cut
// between emitted and held text falls on a character boundary whenever the input's does.
//
// Which stop wins: the one that is complete first in the stream (the earliest end), and among
// those ending at the same byte the longest. That is what a stream can know at the moment the
// stop completes, so the result does not depend on how the text was cut into pieces.
// Example: stops {"abc", "b"} on "abc" stop at "b" and emit "a".
//
// Empty stop strings are ignored (an empty string would "match" before any text; OpenAI
// clients send `stop: [""]` meaning none), and so are duplicates.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace minnow::sampling {

class StopMatcher {
 public:
  StopMatcher() = default;  // no stop strings: everything is emitted at once
  explicit StopMatcher(std::span<const std::string> stops);

  // Appends `piece` and returns the text that can be emitted now. The view stays valid until
  // the next call on this matcher. After a stop, returns nothing more.
  std::string_view feed(std::string_view piece);
  // End of generation: returns the held-back text (none after a stop).
  std::string_view flush();

  bool stopped() const { return stop_index_ >= 0; }
  // Index in the constructor's list of the stop string that matched; -1 when none.
  int stop_index() const { return stop_index_; }
  // Bytes held back now (at most the longest stop string's length - 1).
  size_t held_bytes() const { return held_.size(); }
  // Forgets the held text and the stop, keeping the stop strings.
  void reset();

 private:
  struct Stop {
    std::string text;
    int index;  // in the constructor's list
  };
  std::vector<Stop> stops_;
  std::string held_;  // text not yet emitted, ends with a possible start of a stop string
  std::string out_;   // what the last call returned
  int stop_index_ = -1;
};

}  // namespace minnow::sampling
