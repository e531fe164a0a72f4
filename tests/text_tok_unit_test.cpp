// Tokenizer behaviour on synthetic vocabularies (no model files needed): merge order and
// ties, SentencePiece scores and byte fallback, special tokens and parse_special, BOS/EOS,
// detokenization rules, the streaming detokenizer, the pre-tokenizer and load errors.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <thread>
#include <vector>

#include "tests/text_tok_vocab.h"
#include "text/pretokenizer.h"
#include "text/stream_decoder.h"
#include "text/tokenizer.h"
#include "text/unicode.h"

namespace minnow::text {
namespace {

using testing::build_tokenizer;
using testing::byte_level_spec;
using testing::spm_spec;
using testing::VocabSpec;
using Ids = std::vector<TokenId>;

std::unique_ptr<Tokenizer> must(Result<std::unique_ptr<Tokenizer>> r) {
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error());
  return r.ok() ? std::move(*r) : nullptr;
}

Ids ids(const Tokenizer& t, std::string_view text, bool add_special = false,
        bool parse_special = false) {
  auto r = t.tokenize(text, add_special, parse_special);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error());
  return r.ok() ? *r : Ids{};
}

std::string detok(const Tokenizer& t, const Ids& v, bool remove_special = false,
                  bool special = false) {
  auto r = t.detokenize(v, remove_special, special);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error());
  return r.ok() ? *r : std::string();
}

std::string stream_all(const Tokenizer& t, const Ids& v, StreamOptions o = {}) {
  StreamDecoder s(t, o);
  std::string out;
  for (TokenId id : v) out += s.push(id);
  return out + s.finish();
}

TokenId byte_id(uint8_t b) { return b; }  // byte-level vocab: id = byte

// ---------------------------------------------------------------------------------------------
// Byte-level BPE

TEST(TokBpe, MergesByRank) {
  auto t = must(build_tokenizer(byte_level_spec()));
  ASSERT_TRUE(t);
  EXPECT_EQ(ids(*t, "hello world"), (Ids{259, 264}));
  EXPECT_EQ(ids(*t, "hell"), (Ids{258}));
  EXPECT_EQ(ids(*t, "help"), (Ids{256, byte_id('l'), byte_id('p')}));
  EXPECT_EQ(detok(*t, {259, 264}), "hello world");
}

TEST(TokBpe, EqualRanksMergeLeftmostFirst) {
  auto t = must(build_tokenizer(byte_level_spec()));
  ASSERT_TRUE(t);
  EXPECT_EQ(ids(*t, "aaa"), (Ids{265, byte_id('a')}));
  EXPECT_EQ(ids(*t, "aaaa"), (Ids{265, 265}));
  EXPECT_EQ(ids(*t, "aaaaa"), (Ids{265, 265, byte_id('a')}));
}

TEST(TokBpe, PreTokenizerSplitsWords) {
  auto t = must(build_tokenizer(byte_level_spec()));
  ASSERT_TRUE(t);
  // "hello" and "hello" are separate words: no merge across the space.
  EXPECT_EQ(ids(*t, "hellohello"), (Ids{259, 259}));  // one word: merges apply left to right
  // " hello" is the word "Ġhello": no merge takes Ġ, so it is Ġ + hello.
  EXPECT_EQ(ids(*t, "hello hello"), (Ids{259, byte_id(' '), 259}));
  EXPECT_EQ(detok(*t, {259, byte_id(' '), 259}), "hello hello");
}

TEST(TokBpe, SpecialTokensOnlyWhenAllowed) {
  auto t = must(build_tokenizer(byte_level_spec()));
  ASSERT_TRUE(t);
  const std::string text = "hello<|endoftext|>";
  const Ids plain = ids(*t, text, false, false);
  EXPECT_EQ(plain.front(), 259);
  EXPECT_GT(plain.size(), 2u);  // "<|endoftext|>" spelled out
  EXPECT_EQ(std::count(plain.begin(), plain.end(), 266), 0);
  EXPECT_EQ(ids(*t, text, false, true), (Ids{259, 266}));
  // User-defined tokens are recognised either way.
  EXPECT_EQ(ids(*t, "hello<user>", false, false), (Ids{259, 267}));
  // Control tokens are not printed unless asked for.
  EXPECT_EQ(detok(*t, {259, 266}), "hello");
  EXPECT_EQ(detok(*t, {259, 266}, false, true), "hello<|endoftext|>");
  EXPECT_EQ(detok(*t, {267}), "<user>");
}

TEST(TokBpe, BosAndEos) {
  VocabSpec s = byte_level_spec();
  s.ids["bos"] = 268;
  s.ids["eos"] = 266;
  s.flags["add_bos_token"] = true;
  s.flags["add_eos_token"] = true;
  auto t = must(build_tokenizer(s));
  ASSERT_TRUE(t);
  EXPECT_EQ(ids(*t, "hello", true), (Ids{268, 259, 266}));
  EXPECT_EQ(ids(*t, "hello", false), (Ids{259}));
  EXPECT_EQ(ids(*t, "", true), (Ids{268, 266}));
  EXPECT_TRUE(t->is_eog(266));
  EXPECT_EQ(detok(*t, {268, 259, 266}, true, true), "hello");
  EXPECT_EQ(detok(*t, {268, 259, 266}, false, true), "<|im_start|>hello<|endoftext|>");
}

TEST(TokBpe, CleanUpSpacesOnDetokenize) {
  auto t = must(build_tokenizer(byte_level_spec()));  // gpt-2 cleans up spaces
  ASSERT_TRUE(t);
  ASSERT_TRUE(t->clean_spaces());
  EXPECT_EQ(detok(*t, ids(*t, "hello , world ! it 's ' ok '")), "hello, world! it's'ok '");
}

TEST(TokBpe, MalformedUtf8ReadsLikeLlamaCpp) {
  auto t = must(build_tokenizer(byte_level_spec()));
  ASSERT_TRUE(t);
  // A stray byte reads as U+FFFD (EF BF BD), an overlong '/' as '/'.
  const Ids bad = ids(*t, "a\xff");
  EXPECT_EQ(bad, (Ids{byte_id('a'), byte_id(0xEF), byte_id(0xBF), byte_id(0xBD)}));
  EXPECT_EQ(ids(*t, "\xc0\xaf"), (Ids{byte_id('/')}));
}

TEST(TokBpe, DetokenizeRejectsUnknownIds) {
  auto t = must(build_tokenizer(byte_level_spec()));
  ASSERT_TRUE(t);
  auto r = t->detokenize(Ids{1, 100000}, false, false);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("100000"), std::string::npos);
  EXPECT_EQ(t->piece(-1, true), "");
}

// ---------------------------------------------------------------------------------------------
// SentencePiece

TEST(TokSpm, MergesByScoreWithSpacePrefix) {
  auto t = must(build_tokenizer(spm_spec()));
  ASSERT_TRUE(t);
  EXPECT_TRUE(t->add_bos());
  EXPECT_TRUE(t->add_space_prefix());
  EXPECT_EQ(ids(*t, "hello"), (Ids{269}));
  EXPECT_EQ(ids(*t, "hello", true), (Ids{1, 269}));
  EXPECT_EQ(ids(*t, "hello hello"), (Ids{269, 269}));
  EXPECT_EQ(detok(*t, {269, 269}), "hello hello");  // the first piece loses its space
  // llama.cpp: a BOS removed by remove_special keeps the space; a BOS kept takes the strip.
  EXPECT_EQ(detok(*t, {1, 269}, true), " hello");
  EXPECT_EQ(detok(*t, {1, 269}, false), " hello");
  EXPECT_EQ(detok(*t, {1, 269}, false, true), "<s> hello");
}

TEST(TokSpm, ByteFallback) {
  auto t = must(build_tokenizer(spm_spec()));
  ASSERT_TRUE(t);
  // "é" is not in the vocabulary: its two bytes.
  EXPECT_EQ(ids(*t, "é"), (Ids{259, 3 + 0xC3, 3 + 0xA9}));
  EXPECT_EQ(detok(*t, ids(*t, "é")), "é");
}

TEST(TokSpm, SpacePrefixAfterSpecialTokens) {
  auto t = must(build_tokenizer(spm_spec()));
  ASSERT_TRUE(t);
  // Text after a special token gets the prefix space again, as in llama.cpp.
  EXPECT_EQ(ids(*t, "hello<ctl>hello", false, true), (Ids{269, 272, 269}));
  EXPECT_EQ(ids(*t, "<s>hello", false, true), (Ids{1, 269}));
}

TEST(TokSpm, PhiNamedModelsStripAfterSpecialTokens) {
  VocabSpec s = spm_spec();
  s.name = "Phi3 mini";  // llama.cpp sets rstrip on special tokens by this name
  auto t = must(build_tokenizer(s));
  ASSERT_TRUE(t);
  EXPECT_EQ(ids(*t, "<ctl>  \n hello", false, true), (Ids{272, 269}));
  EXPECT_EQ(ids(*t, "<s>  hello", false, true), (Ids{1, 259, 259, 269}));  // not for <s>
}

// ---------------------------------------------------------------------------------------------
// Streaming

TEST(TokStream, HoldsBackPartialCharacters) {
  auto t = must(build_tokenizer(spm_spec()));
  ASSERT_TRUE(t);
  StreamDecoder s(*t);
  EXPECT_EQ(s.push(259), "");       // "▁" at the start loses its space
  EXPECT_EQ(s.push(3 + 0xC3), "");  // first byte of "é"
  EXPECT_EQ(s.push(3 + 0xA9), "é");
  EXPECT_EQ(s.push(3 + 0xE4), "");
  EXPECT_EQ(s.push(3 + 0xB8), "");
  EXPECT_EQ(s.push(3 + 0xAD), "中");
  EXPECT_EQ(s.finish(), "");
}

TEST(TokStream, InvalidBytesBecomeReplacementCharacters) {
  auto t = must(build_tokenizer(spm_spec()));
  ASSERT_TRUE(t);
  EXPECT_EQ(stream_all(*t, {3 + 0xC3, 260}), "\xEF\xBF\xBDh");
  EXPECT_EQ(stream_all(*t, {260, 3 + 0xE4, 3 + 0xB8}), "h\xEF\xBF\xBD");  // cut short at the end
  EXPECT_EQ(stream_all(*t, {3 + 0xFF}), "\xEF\xBF\xBD");
}

TEST(TokStream, LeadingSpaceAndBos) {
  auto t = must(build_tokenizer(spm_spec()));
  ASSERT_TRUE(t);
  EXPECT_EQ(stream_all(*t, {269, 269}), "hello hello");
  EXPECT_EQ(stream_all(*t, {1, 269}), " hello");  // as detokenize(remove_special)
  EXPECT_EQ(stream_all(*t, {272, 269}, {true, {}}), "<ctl> hello");
  EXPECT_EQ(stream_all(*t, {272, 269}), " hello");  // the control token prints nothing
}

TEST(TokStream, StopStrings) {
  auto t = must(build_tokenizer(byte_level_spec()));
  ASSERT_TRUE(t);
  StreamDecoder s(*t, {false, {"o w", "xyz"}});
  EXPECT_EQ(s.push(259), "hell");  // "o" might start "o w"
  EXPECT_FALSE(s.stopped());
  EXPECT_EQ(s.push(264), "");
  EXPECT_TRUE(s.stopped());
  EXPECT_EQ(s.stop_found(), "o w");
  EXPECT_EQ(s.push(259), "");
  EXPECT_EQ(s.finish(), "");

  // A held prefix that does not complete is released.
  StreamDecoder s2(*t, {false, {"o!"}});
  EXPECT_EQ(s2.push(259), "hell");
  EXPECT_EQ(s2.push(264), "o world");
  EXPECT_EQ(s2.finish(), "");

  // A stop string made of control-token text is only seen when control tokens are rendered.
  StreamDecoder s3(*t, {true, {"<|endoftext|>"}});
  EXPECT_EQ(s3.push(259), "hello");
  EXPECT_EQ(s3.push(266), "");
  EXPECT_TRUE(s3.stopped());
}

// Streaming equals detokenize for random sequences, through clean_up_spaces' look-ahead.
TEST(TokStream, RandomSequencesMatchDetokenize) {
  auto t = must(build_tokenizer(byte_level_spec()));
  ASSERT_TRUE(t);
  const std::string alphabet = " '?.,!smrevtdla";
  std::vector<TokenId> pool;
  for (char c : alphabet) pool.push_back(ids(*t, std::string(1, c)).front());
  pool.push_back(259);
  pool.push_back(264);
  std::mt19937 rng(1234);
  for (int iter = 0; iter < 3000; ++iter) {
    Ids v(rng() % 12);
    for (TokenId& id : v) id = pool[rng() % pool.size()];
    ASSERT_EQ(stream_all(*t, v), detok(*t, v, true)) << "iteration " << iter;
  }
}

TEST(TokCleanSpaces, MatchesLlamaCppRules) {
  auto clean = [](std::string s) {
    clean_up_spaces(s);
    return s;
  };
  EXPECT_EQ(clean("a , b . c ? d ! e"), "a, b. c? d! e");
  EXPECT_EQ(clean(" ?"), "?");
  EXPECT_EQ(clean("it ' s"), "it's");
  EXPECT_EQ(clean("a ' ' b"), "a'' b");
  EXPECT_EQ(clean("it 's I 'm we 're they 've"), "it's I'm we're they've");
  EXPECT_EQ(clean("don 't we 'll I 'd"), "don 't we 'll I 'd");
  EXPECT_EQ(clean(" 'r"), " 'r");
  EXPECT_EQ(clean(""), "");
}

// ---------------------------------------------------------------------------------------------
// Pre-tokenizer and UTF-8

TEST(TokPre, RewritesForLlamaCppSemantics) {
  EXPECT_EQ(RegexSplitter::rewrite(R"(\s+(?!\S))"), R"(\p{White_Space}+(?!\P{White_Space}))");
  EXPECT_EQ(RegexSplitter::rewrite(R"([^\s\p{L}])"), R"([^\p{White_Space}\p{L}])");
  EXPECT_EQ(RegexSplitter::rewrite(R"(\p{Lu}\p{Ll}\d[\d])"), R"(\p{L}\p{L}[0-9][0-9])");
  EXPECT_EQ(RegexSplitter::rewrite(R"(\\s)"), R"(\\s)");
}

TEST(TokPre, SplitsWithGpt2Pattern) {
  auto info = find_pre_tokenizer("gpt-2");
  ASSERT_TRUE(info.ok());
  auto split = RegexSplitter::create(info->patterns);
  ASSERT_TRUE(split.ok()) << split.error();
  const std::string text = "Hello world's  test\u180E 42!";
  std::vector<RegexSplitter::Piece> pieces;
  ASSERT_TRUE((*split)->split(text, pieces).ok());
  std::vector<std::string> words;
  for (auto p : pieces) words.push_back(text.substr(p.offset, p.length));
  // U+180E is not white space for llama.cpp (PCRE2's \s would take it).
  EXPECT_EQ(words, (std::vector<std::string>{"Hello", " world", "'s", " ", " test", "\u180E", " 42",
                                             "!"}));
}

std::vector<std::string> split_with(const char* pre, const std::string& text) {
  auto info = find_pre_tokenizer(pre);
  EXPECT_TRUE(info.ok()) << pre;
  auto split = RegexSplitter::create(info->patterns);
  EXPECT_TRUE(split.ok()) << (split.ok() ? "" : split.error());
  std::vector<RegexSplitter::Piece> pieces;
  EXPECT_TRUE((*split)->split(text, pieces).ok());
  std::vector<std::string> words;
  for (auto p : pieces) words.push_back(text.substr(p.offset, p.length));
  return words;
}

TEST(TokPre, Llama3AndTekkenSplits) {
  EXPECT_EQ(split_with("llama-bpe", "I'm 12345 abc\n\n  x"),
            (std::vector<std::string>{"I", "'m", " ", "123", "45", " abc", "\n\n", " ", " x"}));
  // Tekken splits case runs: an upper-case run may lead a lower-case one.
  EXPECT_EQ(split_with("tekken",
                       "HelloWorld ABCdef x1 \xC3\xA9"
                       "A"),
            (std::vector<std::string>{"Hello", "World", " ABCdef", " x", "1", " \xC3\xA9", "A"}));
}

TEST(TokPre, UnknownNamesAreErrors) {
  EXPECT_FALSE(find_pre_tokenizer("no-such-pre").ok());
  EXPECT_TRUE(find_pre_tokenizer("").ok());  // default
  for (const char* name : {"llama-bpe", "qwen2", "smollm", "deepseek-llm", "tekken", "gpt-4o",
                           "chatglm-bpe", "gemma4", "superbpe", "viking"}) {
    auto info = find_pre_tokenizer(name);
    ASSERT_TRUE(info.ok()) << name;
    EXPECT_TRUE(RegexSplitter::create(info->patterns).ok()) << name;
  }
}

TEST(TokUtf8, Canonicalize) {
  std::string out;
  EXPECT_FALSE(canonicalize_utf8("plain ascii and ünïcödé", out));
  ASSERT_TRUE(canonicalize_utf8("a\xffz", out));
  EXPECT_EQ(out, "a\xEF\xBF\xBDz");
  ASSERT_TRUE(canonicalize_utf8("\xe0\x81\x81", out));  // overlong 'A'
  EXPECT_EQ(out, "A");
  ASSERT_TRUE(canonicalize_utf8("\xe4\xb8", out));  // truncated: each byte replaced
  EXPECT_EQ(out, "\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(incomplete_utf8_suffix("ab\xe4\xb8"), 2u);
  EXPECT_EQ(incomplete_utf8_suffix("ab\xe4\xb8\xad"), 0u);
  EXPECT_EQ(incomplete_utf8_suffix("ab\xff"), 0u);
  std::string v;
  append_valid_utf8("x\xed\xa0\x80y", v);  // a surrogate is not valid UTF-8
  EXPECT_EQ(v, "x\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBDy");
}

// One Tokenizer used from several threads at once gives each the same ids.
TEST(TokThreads, SharedTokenizer) {
  auto bpe = must(build_tokenizer(byte_level_spec()));
  auto spm = must(build_tokenizer(spm_spec()));
  ASSERT_TRUE(bpe && spm);
  std::vector<std::string> texts;
  for (int i = 0; i < 40; ++i) {
    std::string t;
    for (int k = 0; k <= 4 * i; ++k) t += (k % 3 ? "hello world " : "aaaa<user> é\n");  // to 2 KB
    texts.push_back(t);
  }
  std::vector<Ids> want_bpe, want_spm;
  for (const std::string& t : texts) {
    want_bpe.push_back(ids(*bpe, t));
    want_spm.push_back(ids(*spm, t));
  }
  std::vector<int> bad(4, 0);
  std::vector<std::thread> threads;
  for (int th = 0; th < 4; ++th) {
    threads.emplace_back([&, th] {
      for (int rep = 0; rep < 20; ++rep) {
        for (size_t i = 0; i < texts.size(); ++i) {
          auto a = bpe->tokenize(texts[i], false, false);
          auto b = spm->tokenize(texts[i], false, false);
          if (!a.ok() || *a != want_bpe[i] || !b.ok() || *b != want_spm[i]) ++bad[th];
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(bad, std::vector<int>(4, 0));
}

// ---------------------------------------------------------------------------------------------
// Load errors name the key at fault

TEST(TokLoad, Errors) {
  VocabSpec s = byte_level_spec();
  s.model = "";
  auto r = build_tokenizer(s);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("tokenizer.ggml.model"), std::string::npos) << r.error();

  s = byte_level_spec();
  s.model = "bert";
  r = build_tokenizer(s);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("unsupported tokenizer model 'bert'"), std::string::npos) << r.error();

  s = byte_level_spec();
  s.pre = "kimi-k2";
  r = build_tokenizer(s);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("kimi-k2"), std::string::npos) << r.error();

  s = byte_level_spec();
  s.merges.clear();
  r = build_tokenizer(s);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("tokenizer.ggml.merges"), std::string::npos) << r.error();

  s = byte_level_spec();
  s.tokens[300 - 32] = s.tokens[0];  // a repeated text
  r = build_tokenizer(s);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("repeats"), std::string::npos) << r.error();

  s = byte_level_spec();
  s.types.resize(10);
  r = build_tokenizer(s);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("tokenizer.ggml.token_type"), std::string::npos) << r.error();

  s = spm_spec();
  s.scores.resize(3);
  r = build_tokenizer(s);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("tokenizer.ggml.scores"), std::string::npos) << r.error();
}

}  // namespace
}  // namespace minnow::text
