// Tokenization time grows linearly on adversarial input: one repeated character, white space
// only, letters without spaces, newlines only. Each input is tokenized at full size (1 MB, or
// 128 KB under sanitizers) and at an eighth of it; a quadratic algorithm would take 64 times
// as long, a linear one 8 (n log n a little more). CPU time of this thread is measured, so a
// busy machine slows both runs alike.
#include <gtest/gtest.h>
#include <time.h>

#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>

#include "tests/text_tok_vocab.h"
#include "text/tokenizer.h"

namespace minnow::text {
namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr size_t kFull = 128 << 10;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr size_t kFull = 128 << 10;
#else
constexpr size_t kFull = 1 << 20;
#endif
#else
constexpr size_t kFull = 1 << 20;
#endif

constexpr double kMaxRatio = 20.0;      // full / eighth; linear is 8, quadratic 64
constexpr double kSlackSeconds = 0.05;  // timer noise on small runs
constexpr double kMaxFullSeconds = 30.0;

double thread_seconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

std::string make_input(char kind, size_t n) {
  switch (kind) {
    case 'a':
      return std::string(n, 'a');
    case ' ':
      return std::string(n, ' ');
    case '\n':
      return std::string(n, '\n');
    default: {  // letters without spaces
      std::mt19937 rng(99);
      std::string s(n, 'a');
      for (char& c : s) c = static_cast<char>('a' + rng() % 26);
      return s;
    }
  }
}

double time_tokenize(const Tokenizer& tok, const std::string& text, size_t* n_tokens) {
  const double t0 = thread_seconds();
  auto ids = tok.tokenize(text, true, false);
  const double t1 = thread_seconds();
  EXPECT_TRUE(ids.ok()) << (ids.ok() ? "" : ids.error());
  *n_tokens = ids.ok() ? ids->size() : 0;
  return t1 - t0;
}

void check_linear(const Tokenizer& tok, const char* label) {
  for (char kind : {'a', ' ', '\n', 'z'}) {
    SCOPED_TRACE(std::string(label) + " input kind '" +
                 (kind == '\n' ? std::string("\\n") : std::string(1, kind)) + "'");
    size_t n_small = 0, n_full = 0;
    const std::string small = make_input(kind, kFull / 8);
    const std::string full = make_input(kind, kFull);
    time_tokenize(tok, small, &n_small);  // warm up
    const double t_small = time_tokenize(tok, small, &n_small);
    const double t_full = time_tokenize(tok, full, &n_full);
    EXPECT_GT(n_full, 0u);
    EXPECT_LT(t_full, kMaxFullSeconds);
    EXPECT_LE(t_full, kMaxRatio * t_small + kSlackSeconds)
        << "eighth: " << t_small << " s, full: " << t_full << " s";
  }
}

std::string cache_dir() {
  if (const char* v = std::getenv("MINNOW_CACHE"); v && *v) return v;
  const char* home = std::getenv("HOME");
  return std::string(home ? home : ".") + "/.cache/minnow/models";
}

void check_model(const char* file) {
  const std::string path = cache_dir() + "/" + file;
  if (!std::filesystem::exists(path)) GTEST_SKIP() << path << " not found (set MINNOW_CACHE)";
  auto tok = Tokenizer::load(path);
  ASSERT_TRUE(tok.ok()) << tok.error();
  check_linear(**tok, file);
}

TEST(TokLinear, SmolLM2) { check_model("SmolLM2-135M-Instruct.Q4_1.gguf"); }
TEST(TokLinear, Gemma3) { check_model("gemma-3-270m-q4_k_m.gguf"); }

TEST(TokLinear, SyntheticBpe) {
  auto tok = testing::build_tokenizer(testing::byte_level_spec());
  ASSERT_TRUE(tok.ok()) << tok.error();
  check_linear(**tok, "synthetic byte-level BPE");
}

TEST(TokLinear, SyntheticSpm) {
  auto tok = testing::build_tokenizer(testing::spm_spec());
  ASSERT_TRUE(tok.ok()) << tok.error();
  check_linear(**tok, "synthetic SentencePiece");
}

}  // namespace
}  // namespace minnow::text
