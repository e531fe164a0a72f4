// The token-level constraint: synthetic vocabularies for the corner cases (tokens spanning
// grammar elements, code points split across tokens, the SentencePiece leading space, EOG,
// forced runs, the stack cap) and the real SmolLM2 and Gemma 3 vocabularies (mask() equal to
// the brute-force check of every token, multi-byte characters, EOG, forced()).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "constrain/constrain.h"
#include "text/tokenizer.h"

namespace mc = minnow::constrain;
namespace mt = minnow::text;

namespace {

std::shared_ptr<const mc::Grammar> grammar(std::string_view text) {
  auto g = mc::Grammar::parse(text);
  EXPECT_TRUE(g.ok()) << (g.ok() ? "" : g.error());
  return g.ok() ? *g : nullptr;
}

std::unique_ptr<mc::GrammarConstraint> constraint(std::string_view gbnf,
                                                  std::shared_ptr<const mc::Vocab> vocab) {
  auto c = mc::GrammarConstraint::create(grammar(gbnf), std::move(vocab));
  EXPECT_TRUE(c.ok()) << (c.ok() ? "" : c.error());
  return c.ok() ? std::move(*c) : nullptr;
}

// The ids whose logits mask() leaves finite.
std::vector<int32_t> masked_allowed(mc::GrammarConstraint& c, int32_t n_vocab) {
  std::vector<float> logits(size_t(n_vocab), 0.0f);
  c.mask(logits);
  std::vector<int32_t> ids;
  for (int32_t i = 0; i < n_vocab; ++i) {
    if (std::isfinite(logits[size_t(i)])) ids.push_back(i);
  }
  return ids;
}

// The brute force: every token checked on its own.
std::vector<int32_t> brute_allowed(mc::GrammarConstraint& c, int32_t n_vocab) {
  std::vector<int32_t> ids;
  for (int32_t i = 0; i < n_vocab; ++i) {
    if (c.allows(i)) ids.push_back(i);
  }
  return ids;
}

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string golden_grammar(const char* name) {
  return read_file(std::filesystem::path(MINNOW_SOURCE_DIR) / "tests/golden/grammars" / name);
}

// Synthetic vocabulary: ids are the positions in the list.
std::shared_ptr<const mc::Vocab> small_vocab(bool strip_first_space = false) {
  return mc::Vocab::from_pieces(
      {
          "{",             // 0
          "\"",            // 1
          "a",             // 2
          "ab",            // 3
          "\"}",           // 4  spans the string's end and the object's end
          " {",            // 5
          "\xCE",          // 6  first byte of a Greek letter (U+0380..U+03BF)
          "\xB1",          // 7  continuation byte: completes U+03B1 after \xCE
          "\xCE\xB1",      // 8  α whole
          "\xC3",          // 9  first byte of U+00C0..U+00FF
          "\xCE\xB1\xCE",  // 10 α and the start of another
          "",              // 11 a control token (no bytes)
          "</s>",          // 12 EOG (its text never counts)
          "{\"",           // 13
          "b",             // 14
          " ",             // 15
      },
      {12}, strip_first_space);
}

}  // namespace

TEST(ConstrainToken, TokensSpanningElementsAndEog) {
  auto v = small_vocab();
  auto c = constraint(R"(root ::= "{" "\"" [ab]{1,3} "\"}")", v);
  ASSERT_TRUE(c);
  EXPECT_EQ(masked_allowed(*c, v->n_tokens()), (std::vector<int32_t>{0, 13}));
  EXPECT_FALSE(c->allows(12));  // EOG before the grammar is complete
  EXPECT_FALSE(c->allows(11));  // no bytes
  c->accept(13);                // {"
  EXPECT_EQ(masked_allowed(*c, v->n_tokens()), (std::vector<int32_t>{2, 3, 14}));
  c->accept(3);  // ab
  EXPECT_EQ(masked_allowed(*c, v->n_tokens()), (std::vector<int32_t>{1, 2, 4, 14}));
  c->accept(4);  // "}
  EXPECT_TRUE(c->complete());
  EXPECT_TRUE(c->finished());
  EXPECT_EQ(masked_allowed(*c, v->n_tokens()), (std::vector<int32_t>{12}));  // only EOG
  EXPECT_TRUE(c->status().ok());
}

TEST(ConstrainToken, CodePointsSplitAcrossTokens) {
  auto v = small_vocab();
  auto c = constraint(R"(root ::= [α-ω]{3})", v);
  ASSERT_TRUE(c);
  // \xCE can start α..ο (U+03B1..U+03BF); \xC3 cannot start any Greek letter.
  EXPECT_EQ(masked_allowed(*c, v->n_tokens()), (std::vector<int32_t>{6, 8, 10}));
  c->accept(6);
  EXPECT_FALSE(c->complete());
  EXPECT_EQ(masked_allowed(*c, v->n_tokens()), (std::vector<int32_t>{7}));
  c->accept(7);
  c->accept(10);  // α then half of the next letter
  EXPECT_FALSE(c->complete());
  EXPECT_FALSE(c->allows(12));
  EXPECT_EQ(masked_allowed(*c, v->n_tokens()), (std::vector<int32_t>{7}));
  c->accept(7);
  EXPECT_TRUE(c->complete());
}

TEST(ConstrainToken, LeadingSpaceOfTheFirstPieceIsDropped) {
  auto v = small_vocab(/*strip_first_space=*/true);
  auto c = constraint(R"(root ::= "{" " "? "a")", v);
  ASSERT_TRUE(c);
  // " {" is shown as "{" at the start; a lone " " as nothing.
  EXPECT_EQ(masked_allowed(*c, v->n_tokens()), (std::vector<int32_t>{0, 5, 15}));
  c->accept(5);
  EXPECT_EQ(masked_allowed(*c, v->n_tokens()), (std::vector<int32_t>{2, 15}));
  c->accept(15);  // now a real space
  EXPECT_EQ(masked_allowed(*c, v->n_tokens()), (std::vector<int32_t>{2}));

  auto plain = small_vocab(false);
  auto d = constraint(R"(root ::= "{" " "? "a")", plain);
  ASSERT_TRUE(d);
  EXPECT_EQ(masked_allowed(*d, plain->n_tokens()), (std::vector<int32_t>{0}));
}

TEST(ConstrainToken, ForcedRunsAreGreedyLongestMatches) {
  auto v = small_vocab();
  auto c = constraint(R"(root ::= "{\"ab" [ab] "\"}")", v);
  ASSERT_TRUE(c);
  std::vector<int32_t> f;
  c->forced(f);
  EXPECT_EQ(f, (std::vector<int32_t>{13, 3}));  // {" then ab
  for (int32_t t : f) c->accept(t);
  f.clear();
  c->forced(f);
  EXPECT_TRUE(f.empty());  // a choice between a and b
  c->accept(14);
  c->forced(f);
  EXPECT_EQ(f, (std::vector<int32_t>{4}));
  c->accept(4);
  f.clear();
  c->forced(f);
  EXPECT_TRUE(f.empty());  // complete: EOG is up to the model
}

TEST(ConstrainToken, TooManyStacksFailsClearly) {
  // Each "a" doubles the pending continuations (x or y for every level).
  auto v = mc::Vocab::from_pieces({"a", "x", "y"}, {});
  auto c = constraint("root ::= \"a\" root \"x\" | \"a\" root \"y\" | \"\"", v);
  ASSERT_TRUE(c);
  for (int i = 0; i < 20 && c->status().ok(); ++i) c->accept(0);
  ASSERT_FALSE(c->status().ok());
  EXPECT_NE(c->status().message().find("more than 10000 parse stacks"), std::string::npos)
      << c->status().message();
  EXPECT_FALSE(c->allows(0));
  std::vector<float> logits(3, 1.0f);
  c->mask(logits);
  for (float l : logits) EXPECT_TRUE(std::isinf(l));
}

TEST(ConstrainToken, RejectedTokenIsAnError) {
  auto v = small_vocab();
  auto c = constraint(R"(root ::= "a")", v);
  ASSERT_TRUE(c);
  c->accept(14);
  EXPECT_FALSE(c->status().ok());
  EXPECT_NE(c->status().message().find("token 14"), std::string::npos);
}

// --- the real vocabularies ---

namespace {

std::filesystem::path model_file(const char* name) {
  const char* env = std::getenv("MINNOW_CACHE");
  std::filesystem::path dir =
      env && *env ? std::filesystem::path(env)
                  : std::filesystem::path(std::getenv("HOME") ? std::getenv("HOME") : "") /
                        ".cache/minnow/models";
  return dir / name;
}

struct RealVocab {
  std::unique_ptr<mt::Tokenizer> tok;
  std::shared_ptr<const mc::Vocab> vocab;
};

// Loaded once per process and file: gemma's 262k tokens take a moment under the sanitizers.
const RealVocab* real_vocab(const char* file) {
  static std::map<std::string, RealVocab> cache;
  auto it = cache.find(file);
  if (it != cache.end()) return &it->second;
  const auto path = model_file(file);
  if (!std::filesystem::exists(path)) return nullptr;
  auto tok = mt::Tokenizer::load(path.string());
  EXPECT_TRUE(tok.ok()) << (tok.ok() ? "" : tok.error());
  if (!tok.ok()) return nullptr;
  RealVocab rv;
  rv.vocab = mc::Vocab::from_tokenizer(**tok);
  rv.tok = std::move(*tok);
  return &cache.emplace(file, std::move(rv)).first->second;
}

class ConstrainReal : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    rv_ = real_vocab(GetParam());
    if (!rv_) GTEST_SKIP() << model_file(GetParam()) << " absent (set MINNOW_CACHE)";
  }
  std::vector<int32_t> ids(std::string_view text) {
    auto r = rv_->tok->tokenize(text, false, false);
    EXPECT_TRUE(r.ok());
    return r.ok() ? *r : std::vector<int32_t>{};
  }
  std::string bytes_of(const std::vector<int32_t>& ids) {
    std::string s;
    for (int32_t t : ids) s += rv_->vocab->piece(t);
    return s;
  }
  const RealVocab* rv_ = nullptr;
};

}  // namespace

TEST_P(ConstrainReal, MaskEqualsBruteForceAlongRandomWalks) {
  const int32_t n = rv_->vocab->n_tokens();
  std::mt19937 rng(1234);
  for (const char* file : {"json.gbnf", "greek.gbnf", "csv_line.gbnf"}) {
    auto c = constraint(golden_grammar(file), rv_->vocab);
    ASSERT_TRUE(c);
    for (int step = 0; step < 12; ++step) {
      const auto fast = masked_allowed(*c, n);
      // Every 3rd step, the whole vocabulary by brute force; otherwise a random sample of it.
      if (step % 3 == 0) {
        ASSERT_EQ(fast, brute_allowed(*c, n)) << file << " step " << step;
      } else {
        std::vector<bool> in_fast(size_t(n), false);
        for (int32_t t : fast) in_fast[size_t(t)] = true;
        for (int k = 0; k < 4000; ++k) {
          const int32_t t = int32_t(rng() % uint32_t(n));
          ASSERT_EQ(in_fast[size_t(t)], c->allows(t)) << file << " token " << t;
        }
      }
      ASSERT_FALSE(fast.empty()) << file;
      // Walk on with an allowed non-EOG token when there is one.
      std::vector<int32_t> cont;
      for (int32_t t : fast) {
        if (!rv_->vocab->is_eog(t)) cont.push_back(t);
      }
      if (cont.empty()) break;
      c->accept(cont[rng() % cont.size()]);
      ASSERT_TRUE(c->status().ok()) << c->status().message();
    }
  }
}

// Inside strings the walk allows whole subtrees at once (plain ASCII, then any text): the mask
// must still be exactly the brute force there, bounded strings and a near-full one included.
TEST_P(ConstrainReal, MaskEqualsBruteForceInsideStrings) {
  const int32_t n = rv_->vocab->n_tokens();
  struct Case {
    std::string gbnf;
    const char* prefix;
  };
  const std::vector<Case> cases = {
      {mc::json_gbnf(true), "{\"name\": \"Sa"},
      {mc::json_gbnf(true), "{\"name\": \"caf\xC3\xA9 "},
      {golden_grammar("json.gbnf"), "{\"k\": \""},
      {golden_grammar("json.gbnf"), "{\"k\": \"0123456789012345678"},  // 5 characters left
      {"root ::= \"<\" [^<>]{0,3} \">\"", "<"},
      {"root ::= [ -~]{0,6} \".\"", "ab"},
  };
  for (const auto& k : cases) {
    auto c = constraint(k.gbnf, rv_->vocab);
    ASSERT_TRUE(c);
    for (int32_t t : ids(k.prefix)) c->accept(t);
    ASSERT_TRUE(c->status().ok()) << k.prefix;
    EXPECT_EQ(masked_allowed(*c, n), brute_allowed(*c, n)) << k.prefix;
    EXPECT_EQ(masked_allowed(*c, n), brute_allowed(*c, n)) << k.prefix << " (warm)";
  }
}

TEST_P(ConstrainReal, TokenizedTextIsAcceptedAndEogOnlyWhenComplete) {
  struct Case {
    const char* file;
    const char* text;
  };
  for (const Case& k : {Case{"greek.gbnf", "καλημέρα, φίλε"}, Case{"date.gbnf", "1969-07-20"},
                        Case{"json.gbnf", "{\"name\": \"Zoë\", \"tags\": [\"a\", 1.5]}"},
                        Case{"chess.gbnf", "Nbd7+"}}) {
    const auto g = grammar(golden_grammar(k.file));
    ASSERT_TRUE(g);
    auto c = mc::GrammarConstraint::create(g, rv_->vocab);
    ASSERT_TRUE(c.ok());
    const auto toks = ids(k.text);
    ASSERT_EQ(bytes_of(toks), k.text);
    std::string prefix;
    for (size_t i = 0; i < toks.size(); ++i) {
      ASSERT_TRUE((*c)->allows(toks[i])) << k.file << ": token " << i << " of " << k.text;
      // EOG exactly where the text so far is a whole sentence (checked on its own).
      for (int32_t e : rv_->vocab->eog()) {
        EXPECT_EQ((*c)->allows(e), mc::accepts(*g, prefix)) << k.file << " after " << prefix;
      }
      (*c)->accept(toks[i]);
      prefix += rv_->vocab->piece(toks[i]);
    }
    auto& cc = *c;
    EXPECT_TRUE(cc->complete()) << k.file;
    for (int32_t e : rv_->vocab->eog()) EXPECT_TRUE(cc->allows(e)) << k.file;
  }
}

TEST_P(ConstrainReal, SplitMultiByteCharactersInAClass) {
  // Single-byte tokens: the lead byte of a Greek letter is allowed, its continuation only
  // after it, and a lead byte of another script never.
  auto c = constraint(golden_grammar("greek.gbnf"), rv_->vocab);
  ASSERT_TRUE(c);
  auto single = [&](uint8_t b) -> int32_t {
    for (int32_t t = 0; t < rv_->vocab->n_tokens(); ++t) {
      const auto p = rv_->vocab->piece(t);
      if (p.size() == 1 && uint8_t(p[0]) == b) return t;
    }
    return -1;
  };
  const int32_t lead = single(0xCE), cont = single(0xB1), other = single(0xD0);  // α = CE B1
  ASSERT_GE(lead, 0);
  ASSERT_GE(cont, 0);
  ASSERT_GE(other, 0);
  EXPECT_TRUE(c->allows(lead));
  EXPECT_FALSE(c->allows(cont));
  EXPECT_FALSE(c->allows(other));  // Cyrillic
  c->accept(lead);
  EXPECT_TRUE(c->allows(cont));
  EXPECT_FALSE(c->allows(lead));
  for (int32_t e : rv_->vocab->eog()) EXPECT_FALSE(c->allows(e));
  c->accept(cont);
  EXPECT_TRUE(c->complete());
}

TEST_P(ConstrainReal, ForcedSpellsTheOnlyContinuation) {
  auto c = constraint(golden_grammar("tool_call.gbnf"), rv_->vocab);
  ASSERT_TRUE(c);
  std::vector<int32_t> f;
  c->forced(f);
  ASSERT_FALSE(f.empty());
  EXPECT_EQ(bytes_of(f), "{\"name\": \"");
  for (int32_t t : f) c->accept(t);
  f.clear();
  c->forced(f);
  EXPECT_TRUE(f.empty());  // get_weather or search
  for (int32_t t : ids("search")) c->accept(t);
  c->forced(f);
  EXPECT_EQ(bytes_of(f), "\", \"arguments\": {\"query\": \"");
  ASSERT_TRUE(c->status().ok());
}

TEST_P(ConstrainReal, ChoiceOnlyAllowsPrefixesOfTheChoices) {
  const std::vector<std::string> choices = {"billing", "technical", "feature_request", "complaint",
                                            "other"};
  auto c = constraint(mc::choice_to_gbnf(choices), rv_->vocab);
  ASSERT_TRUE(c);
  const auto allowed = masked_allowed(*c, rv_->vocab->n_tokens());
  ASSERT_FALSE(allowed.empty());
  for (int32_t t : allowed) {
    const auto p = rv_->vocab->piece(t);
    bool prefix = false;
    for (const auto& ch : choices) {
      prefix |= p.size() <= ch.size() && ch.compare(0, p.size(), p) == 0;
    }
    EXPECT_TRUE(prefix) << "token " << t << " '" << p << "'";
  }
  const auto whole = ids("billing");
  if (whole.size() == 1) {
    EXPECT_TRUE(c->allows(whole[0]));
  }
}

INSTANTIATE_TEST_SUITE_P(Models, ConstrainReal,
                         ::testing::Values("SmolLM2-135M-Instruct.Q4_1.gguf",
                                           "gemma-3-270m-q4_k_m.gguf"),
                         [](const auto& info) {
                           return std::string(info.param).find("gemma") == 0 ? "gemma3" : "smollm2";
                         });
