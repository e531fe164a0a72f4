#include "sampling/stop_matcher.h"

#include <algorithm>

namespace minnow::sampling {

StopMatcher::StopMatcher(std::span<const std::string> stops) {
  for (size_t i = 0; i < stops.size(); ++i) {
    const std::string& s = stops[i];
    if (s.empty()) continue;
    const bool seen =
        std::any_of(stops_.begin(), stops_.end(), [&](const Stop& st) { return st.text == s; });
    if (!seen) stops_.push_back({s, int(i)});
  }
}

void StopMatcher::reset() {
  held_.clear();
  out_.clear();
  stop_index_ = -1;
}

std::string_view StopMatcher::feed(std::string_view piece) {
  out_.clear();
  if (stopped()) return {};
  held_.append(piece);

  // The held text before this piece contains no complete stop, so every match found here ends
  // inside the piece; the first occurrence of a stop is also its earliest end.
  size_t best_end = std::string::npos;
  size_t best_start = 0;
  int best = -1;
  for (const Stop& st : stops_) {
    const size_t pos = held_.find(st.text);
    if (pos == std::string::npos) continue;
    const size_t end = pos + st.text.size();
    if (end < best_end || (end == best_end && pos < best_start)) {
      best_end = end;
      best_start = pos;
      best = st.index;
    }
  }
  if (best >= 0) {
    stop_index_ = best;
    out_.assign(held_, 0, best_start);
    held_.clear();
    return out_;
  }

  // Hold back the longest suffix that is a proper prefix of some stop string.
  size_t hold = 0;
  for (const Stop& st : stops_) {
    const size_t max_len = std::min(held_.size(), st.text.size() - 1);
    for (size_t len = max_len; len > hold; --len) {
      if (std::string_view(held_).substr(held_.size() - len) ==
          std::string_view(st.text).substr(0, len)) {
        hold = len;
        break;
      }
    }
  }
  out_.assign(held_, 0, held_.size() - hold);
  held_.erase(0, held_.size() - hold);
  return out_;
}

std::string_view StopMatcher::flush() {
  out_.clear();
  if (stopped()) return {};
  out_.swap(held_);
  held_.clear();
  return out_;
}

}  // namespace minnow::sampling
