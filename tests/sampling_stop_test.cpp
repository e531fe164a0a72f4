#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "sampling/stop_matcher.h"

namespace {

using minnow::sampling::StopMatcher;

struct Outcome {
  std::string emitted;
  bool stopped = false;
  int index = -1;
};

// Feeds the pieces, then flushes; returns all that was emitted.
Outcome run(const std::vector<std::string>& stops, const std::vector<std::string>& pieces) {
  StopMatcher m(stops);
  Outcome r;
  for (const auto& p : pieces) r.emitted += m.feed(p);
  r.emitted += m.flush();
  r.stopped = m.stopped();
  r.index = m.stop_index();
  return r;
}

// What the matcher must do on the whole text: cut at the stop that ends first (longest on a
// tie), found by brute force over every end position.
Outcome reference(const std::vector<std::string>& stops, const std::string& text) {
  for (size_t end = 1; end <= text.size(); ++end) {
    int best = -1;
    size_t best_len = 0;
    for (size_t i = 0; i < stops.size(); ++i) {
      const std::string& s = stops[i];
      if (s.empty() || s.size() > end || text.compare(end - s.size(), s.size(), s) != 0) continue;
      if (s.size() > best_len) best = int(i), best_len = s.size();
    }
    if (best >= 0) return {text.substr(0, end - best_len), true, best};
  }
  return {text, false, -1};
}

TEST(StopMatcher, SplitAcrossPiecesAndTailNeverEmitted) {
  StopMatcher m(std::vector<std::string>{"</s>"});
  EXPECT_EQ(m.feed("abc<"), "abc");
  EXPECT_EQ(m.held_bytes(), 1u);
  EXPECT_EQ(m.feed("/s"), "");
  EXPECT_EQ(m.held_bytes(), 3u);
  EXPECT_EQ(m.feed(">tail"), "");
  EXPECT_TRUE(m.stopped());
  EXPECT_EQ(m.stop_index(), 0);
  EXPECT_EQ(m.feed("more"), "");
  EXPECT_EQ(m.flush(), "");
}

TEST(StopMatcher, FalseStartIsReleased) {
  StopMatcher m(std::vector<std::string>{"</s>"});
  EXPECT_EQ(m.feed("x</"), "x");
  EXPECT_EQ(m.feed("b>"), "</b>");
  EXPECT_FALSE(m.stopped());
  EXPECT_EQ(m.feed("<"), "");
  EXPECT_EQ(m.flush(), "<");  // the end of generation releases a held prefix
}

TEST(StopMatcher, OverlappingPrefixes) {
  StopMatcher m(std::vector<std::string>{"ab"});
  EXPECT_EQ(m.feed("a"), "");
  EXPECT_EQ(m.feed("a"), "a");
  EXPECT_EQ(m.feed("b"), "");
  EXPECT_TRUE(m.stopped());
  EXPECT_EQ(run({"aab"}, {"a", "a", "a", "b", "c"}).emitted, "a");
  EXPECT_EQ(run({"abab"}, {"aab", "ab"}).emitted, "a");  // held "ab" completes the stop
}

TEST(StopMatcher, EarliestEndWinsThenLongest) {
  for (const auto& pieces : std::vector<std::vector<std::string>>{{"abc"}, {"a", "b", "c"}}) {
    const Outcome r = run({"abc", "b"}, pieces);
    EXPECT_EQ(r.emitted, "a");
    EXPECT_EQ(r.index, 1);
  }
  const Outcome r = run({"bc", "abc"}, {"xab", "c"});
  EXPECT_EQ(r.emitted, "x");
  EXPECT_EQ(r.index, 1);
}

TEST(StopMatcher, MultipleStops) {
  const Outcome r = run({"User:", "\n\n"}, {"Hi", " there.\n", "\nUser: next"});
  EXPECT_EQ(r.emitted, "Hi there.");
  EXPECT_EQ(r.index, 1);
}

TEST(StopMatcher, Utf8MultibytePieces) {
  const std::string text = "你好。再见";  // the stop "。" is E3 80 82
  std::vector<std::string> bytes;
  for (char c : text) bytes.emplace_back(1, c);
  Outcome r = run({"。"}, bytes);
  EXPECT_EQ(r.emitted, "你好");
  EXPECT_TRUE(r.stopped);
  // A stop sharing the first two bytes with a character that is not it: released whole.
  r = run({"é!"}, {"\xC3", "\xA8", "!"});  // "è!" is C3 A8 21, "é!" is C3 A9 21
  EXPECT_EQ(r.emitted, "è!");
  EXPECT_FALSE(r.stopped);
  // The cut before a multibyte stop leaves whole characters.
  r = run({"é"}, {"caf\xC3", "\xA9 au lait"});
  EXPECT_EQ(r.emitted, "caf");
}

TEST(StopMatcher, EmptyAndDuplicateStopsAreIgnored) {
  StopMatcher m(std::vector<std::string>{"", "x", "x"});
  EXPECT_EQ(m.feed("abc"), "abc");
  EXPECT_EQ(m.feed("-x-"), "-");
  EXPECT_EQ(m.stop_index(), 1);  // the first "x"
  StopMatcher none;
  EXPECT_EQ(none.feed("anything"), "anything");
  EXPECT_EQ(none.held_bytes(), 0u);
}

TEST(StopMatcher, ResetKeepsStops) {
  StopMatcher m(std::vector<std::string>{"stop"});
  EXPECT_EQ(m.feed("a stop b"), "a ");
  m.reset();
  EXPECT_FALSE(m.stopped());
  EXPECT_EQ(m.feed("st"), "");
  EXPECT_EQ(m.feed("op"), "");
  EXPECT_TRUE(m.stopped());
}

// Random texts over a small alphabet, random stops, random cuts: the output never depends on
// how the text was cut, and equals the brute-force reference.
TEST(StopMatcher, RandomChunkingMatchesReference) {
  std::mt19937 rng(1234);
  auto rand_str = [&](size_t lo, size_t hi) {
    std::string s(std::uniform_int_distribution<size_t>(lo, hi)(rng), 'a');
    for (char& c : s) c = char('a' + std::uniform_int_distribution<int>(0, 2)(rng));
    return s;
  };
  for (int iter = 0; iter < 3000; ++iter) {
    std::vector<std::string> stops;
    const int n_stops = std::uniform_int_distribution<int>(0, 3)(rng);
    for (int i = 0; i < n_stops; ++i) stops.push_back(rand_str(0, 4));
    const std::string text = rand_str(0, 30);
    std::vector<std::string> pieces;
    for (size_t i = 0; i < text.size();) {
      const size_t len = std::uniform_int_distribution<size_t>(0, 5)(rng);
      pieces.push_back(text.substr(i, len));
      i += len;
    }
    const Outcome got = run(stops, pieces);
    const Outcome want = reference(stops, text);
    ASSERT_EQ(got.emitted, want.emitted) << "text " << text << " iter " << iter;
    ASSERT_EQ(got.stopped, want.stopped) << "text " << text;
    if (want.stopped) {
      // Duplicates keep the first index; the reference picks the first of equal length too.
      ASSERT_EQ(stops[size_t(got.index)], stops[size_t(want.index)]) << "text " << text;
    }
  }
}

}  // namespace
