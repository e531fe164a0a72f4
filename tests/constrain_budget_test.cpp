// The constraint's budget (GrammarConstraint::set_budget): distances to completion, and an
// adversarial "model" that always prefers to go on (open more, add members, never close) must
// still produce a whole sentence of the grammar, ended by EOG, within N tokens, for every N
// from the shortest sentence's length up — on small vocabularies and on the real SmolLM2 and
// Gemma 3 vocabularies (skipped when the model files are absent).
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
#include "constrain/json_schema.h"
#include "constrain/matcher.h"
#include "text/tokenizer.h"

namespace mc = minnow::constrain;
namespace mt = minnow::text;

namespace {

std::shared_ptr<const mc::Grammar> grammar(std::string_view text) {
  auto g = mc::Grammar::parse(text);
  EXPECT_TRUE(g.ok()) << (g.ok() ? "" : g.error());
  return g.ok() ? *g : nullptr;
}

std::unique_ptr<mc::GrammarConstraint> constraint(std::shared_ptr<const mc::Grammar> g,
                                                  std::shared_ptr<const mc::Vocab> vocab) {
  auto c = mc::GrammarConstraint::create(std::move(g), std::move(vocab));
  EXPECT_TRUE(c.ok()) << (c.ok() ? "" : c.error());
  return c.ok() ? std::move(*c) : nullptr;
}

// Every printable ASCII byte as a token, then longer tokens that keep structures open, then
// EOG (the last id).
std::shared_ptr<const mc::Vocab> small_vocab() {
  std::vector<std::string> pieces;
  for (int b = 0x20; b < 0x7F; ++b) pieces.emplace_back(1, char(b));
  pieces.push_back("\n");
  for (const char* p :
       {"[[",  "[[[[",    ",[",   ", [",      "aaaa", "a,a,a,", "{\"",
        "\":", "\": {\"", ", \"", "\"a\": [", "true", "null",   "123456",
        "\"}", "]]",      "}}",   "\xCE\xB1", "\xCE", "\xB1",   "\xCE\xB1\xCE\xB1"}) {
    pieces.emplace_back(p);
  }
  pieces.emplace_back("</s>");
  const auto eog = int32_t(pieces.size() - 1);
  return mc::Vocab::from_pieces(std::move(pieces), {eog});
}

// What the model "wants": long tokens that open structures or add members first, closing
// brackets and the end last. `noise` (a seeded PRNG) adds random preferences on top.
std::vector<float> adversarial_logits(const mc::Vocab& v, std::mt19937* noise) {
  std::vector<float> logits(size_t(v.n_tokens()));
  std::uniform_real_distribution<float> u(0.0f, 3.0f);
  for (int32_t id = 0; id < v.n_tokens(); ++id) {
    const std::string_view p = v.piece(id);
    float l = float(std::min<size_t>(p.size(), 8));
    for (char c : p) {
      if (c == '[' || c == '{' || c == ',' || c == '"' || c == ':') l += 2.0f;
      if (c == ']' || c == '}') l -= 6.0f;
    }
    if (v.is_eog(id)) l = -20.0f;
    if (noise) l += u(*noise);
    logits[size_t(id)] = l;
  }
  return logits;
}

struct Outcome {
  std::string text;
  int tokens = 0;
  bool ended = false;  // by EOG (not cut off by the limit)
};

// The engine's loop (engine::Generation::step) in small: budget, sample (the cheap check, then
// the mask on a rejection, as the sampler does), forced tokens, up to `limit` tokens.
Outcome generate(mc::GrammarConstraint& c, const mc::Vocab& v, int limit, uint32_t seed,
                 bool use_noise) {
  std::mt19937 noise(seed);
  Outcome out;
  while (true) {
    if (out.tokens >= limit) return out;
    c.set_budget(limit - out.tokens);
    std::vector<float> logits = adversarial_logits(v, use_noise ? &noise : nullptr);
    auto argmax = [&] {
      int32_t best = -1;
      for (int32_t id = 0; id < v.n_tokens(); ++id) {
        if (std::isfinite(logits[size_t(id)]) &&
            (best < 0 || logits[size_t(id)] > logits[size_t(best)])) {
          best = id;
        }
      }
      return best;
    };
    int32_t id = argmax();
    if (!c.allows(id)) {
      c.mask(logits);
      id = argmax();
    }
    EXPECT_GE(id, 0) << "no token allowed after \"" << out.text << "\"";
    if (id < 0) return out;
    EXPECT_TRUE(c.allows(id)) << "mask allowed a token allows() refuses";
    if (v.is_eog(id)) {
      out.ended = true;
      return out;
    }
    c.accept(id);
    EXPECT_TRUE(c.status().ok()) << c.status().message();
    out.text += v.piece(id);
    ++out.tokens;
    std::vector<int32_t> forced;
    c.forced(forced);
    for (int32_t f : forced) {
      if (out.tokens >= limit) break;
      c.accept(f);
      out.text += v.piece(f);
      ++out.tokens;
    }
  }
}

// For each limit from the shortest sentence's length (plus one for EOG) up to max_limit: the
// adversary ends with a whole sentence within the limit, greedy and with noise.
void expect_closes_in_time(const std::string& gbnf, std::shared_ptr<const mc::Vocab> vocab,
                           int max_limit, int seeds) {
  auto g = grammar(gbnf);
  ASSERT_TRUE(g);
  auto probe = constraint(g, vocab);
  ASSERT_TRUE(probe);
  const int shortest = int(probe->distance());
  ASSERT_LT(shortest, max_limit);
  for (int limit = shortest + 1; limit <= max_limit; ++limit) {
    for (int seed = 0; seed <= seeds; ++seed) {
      auto c = constraint(g, vocab);
      ASSERT_TRUE(c);
      const Outcome o = generate(*c, *vocab, limit, uint32_t(seed), seed > 0);
      EXPECT_TRUE(o.ended) << "limit " << limit << " seed " << seed << ": cut off at \"" << o.text
                           << "\"";
      EXPECT_LE(o.tokens, limit - 1);
      EXPECT_TRUE(mc::accepts(*g, o.text))
          << "limit " << limit << " seed " << seed << ": \"" << o.text << "\"";
    }
  }
}

}  // namespace

TEST(ConstrainBudget, DistanceIsTheShortestCompletionInBytes) {
  auto v = small_vocab();
  auto id = [&](std::string_view p) {
    for (int32_t i = 0; i < v->n_tokens(); ++i) {
      if (v->piece(i) == p) return i;
    }
    ADD_FAILURE() << "no token " << p;
    return int32_t(0);
  };
  auto c = constraint(grammar(R"(root ::= "[" ( item ( "," item )* )? "]"
                                 item ::= "a" | "{" "\"" [a-z]+ "\"" ":" item "}" | [α-ω])"),
                      v);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->distance(), 2u);  // []
  c->accept(id("["));
  EXPECT_EQ(c->distance(), 1u);  // ]
  c->accept(id("{\""));
  EXPECT_EQ(c->distance(), 6u);  // x":a}]
  c->accept(id("a"));
  EXPECT_EQ(c->distance(), 5u);  // ":a}]
  c->accept(id("\":"));
  EXPECT_EQ(c->distance(), 3u);  // a}]
  c->accept(id("\xCE"));         // the first byte of a Greek letter
  EXPECT_EQ(c->distance(), 3u);  // its last byte, }]
  c->accept(id("\xB1"));
  EXPECT_EQ(c->distance(), 2u);
  c->accept(id("}"));
  c->accept(id("]"));
  EXPECT_EQ(c->distance(), 0u);
  EXPECT_TRUE(c->complete());

  // A rule that never ends: no distance.
  auto never = constraint(grammar("root ::= \"a\" root"), v);
  ASSERT_TRUE(never);
  EXPECT_EQ(never->distance(), mc::Matcher::kNoEnd);
}

TEST(ConstrainBudget, FarBudgetChangesNothing) {
  auto v = small_vocab();
  auto g = grammar(mc::json_gbnf(false));
  auto a = constraint(g, v), b = constraint(g, v);
  ASSERT_TRUE(a && b);
  a->set_budget(1000);
  for (const char* p : {"{\"", "a", "\":", " ", "[["}) {
    std::vector<float> la(size_t(v->n_tokens()), 0.0f), lb = la;
    a->mask(la);
    b->mask(lb);
    for (size_t i = 0; i < la.size(); ++i) {
      ASSERT_EQ(std::isfinite(la[i]), std::isfinite(lb[i])) << "token " << i << " before " << p;
    }
    for (int32_t i = 0; i < v->n_tokens(); ++i) {
      if (v->piece(i) == p) {
        a->accept(i);
        b->accept(i);
        break;
      }
    }
  }
}

TEST(ConstrainBudget, TightBudgetAllowsOnlyTokensThatFit) {
  auto v = small_vocab();
  auto tok = [&](std::string_view p) {
    for (int32_t i = 0; i < v->n_tokens(); ++i) {
      if (v->piece(i) == p) return i;
    }
    ADD_FAILURE() << "no token " << p;
    return int32_t(0);
  };
  auto c = constraint(grammar(R"(root ::= "[" ( "a"+ ( "," "a"+ )* )? "]")"), v);
  ASSERT_TRUE(c);
  c->accept(tok("["));
  c->accept(tok("a"));
  // 3 tokens left, one of them for the end: after the next token the output may need at most
  // 1 more byte. "a" (then "]") and "]" fit, "," (then "a]") does not.
  c->set_budget(3);
  EXPECT_TRUE(c->allows(tok("a")));
  EXPECT_FALSE(c->allows(tok(",")));
  EXPECT_TRUE(c->allows(tok("]")));
  EXPECT_TRUE(c->allows(v->eog()[0]) == false);
  c->set_budget(-1);
  EXPECT_TRUE(c->allows(tok(",")));
  // Out of reach ("[a," needs "a]" and the end, 3 tokens; 1 is left): only tokens that bring
  // the end closer.
  c->accept(tok(","));
  c->set_budget(1);
  EXPECT_TRUE(c->allows(tok("a")));
  EXPECT_TRUE(c->allows(tok("aaaa")));
  EXPECT_FALSE(c->allows(tok("a,a,a,")));
  c->set_budget(10);
  EXPECT_TRUE(c->allows(tok("a,a,a,")));
}

TEST(ConstrainBudget, AdversaryClosesArraysInTime) {
  expect_closes_in_time(R"(root ::= "[" ( item ( "," item )* )? "]"
                           item ::= "a"+ | root)",
                        small_vocab(), 24, 2);
}

TEST(ConstrainBudget, AdversaryClosesAnyJsonInTime) {
  expect_closes_in_time(mc::json_gbnf(false), small_vocab(), 24, 2);
  expect_closes_in_time(mc::json_gbnf(true), small_vocab(), 24, 2);
}

TEST(ConstrainBudget, AdversaryClosesSchemaObjectsInTime) {
  // additionalProperties with a schema of nested arrays, and a required property.
  auto gbnf = mc::json_schema_to_gbnf(R"({"type":"object","properties":{"id":{"type":"integer"}},
      "required":["id"],"additionalProperties":{"type":"array","items":{"type":"array"}}})");
  ASSERT_TRUE(gbnf.ok()) << gbnf.error();
  expect_closes_in_time(*gbnf, small_vocab(), 30, 1);
}

TEST(ConstrainBudget, AdversaryClosesMultiByteTextInTime) {
  expect_closes_in_time(R"(root ::= "\"" [α-ω]* "\"")", small_vocab(), 12, 2);
}

namespace {

std::filesystem::path model_file(const char* name) {
  const char* env = std::getenv("MINNOW_CACHE");
  const auto dir = env && *env
                       ? std::filesystem::path(env)
                       : std::filesystem::path(std::getenv("HOME") ? std::getenv("HOME") : "") /
                             ".cache/minnow/models";
  return dir / name;
}

class ConstrainBudgetReal : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    static std::map<std::string, std::shared_ptr<const mc::Vocab>> cache;
    auto& v = cache[GetParam()];
    if (!v) {
      const auto path = model_file(GetParam());
      if (!std::filesystem::exists(path)) {
        GTEST_SKIP() << path << " absent (set MINNOW_CACHE)";
      }
      auto tok = mt::Tokenizer::load(path.string());
      ASSERT_TRUE(tok.ok()) << tok.error();
      v = mc::Vocab::from_tokenizer(**tok);
    }
    vocab_ = v;
  }
  std::shared_ptr<const mc::Vocab> vocab_;
};

}  // namespace

// The assumption the budget rests on: every byte a shortest completion may need is a token of
// its own — printable ASCII, tab, newline, carriage return, and the bytes of any character up to
// U+3FFFF. (SmolLM2 has no token for a few control bytes, for F1/F2, which start only characters
// of unassigned planes, nor for bytes that never occur in UTF-8: no grammar's shortest way out
// goes through those unless a class holds nothing else.)
TEST_P(ConstrainBudgetReal, EveryByteOfAShortestCompletionIsAToken) {
  std::vector<bool> seen(256, false);
  for (int32_t id = 0; id < vocab_->n_tokens(); ++id) {
    if (vocab_->piece(id).size() == 1) seen[uint8_t(vocab_->piece(id)[0])] = true;
  }
  for (int b = 0; b < 256; ++b) {
    const bool needed = b == '\t' || b == '\n' || b == '\r' || (b >= 0x20 && b < 0x7F) ||
                        (b >= 0x80 && b <= 0xBF) || (b >= 0xC2 && b <= 0xF0);
    if (needed) {
      EXPECT_TRUE(seen[size_t(b)]) << "no token for byte " << b;
    }
  }
}

TEST_P(ConstrainBudgetReal, AdversaryClosesJsonInTime) {
  auto g = grammar(mc::json_gbnf(false));
  ASSERT_TRUE(g);
  for (int limit : {3, 8, 17, 40}) {
    auto c = constraint(g, vocab_);
    ASSERT_TRUE(c);
    const Outcome o = generate(*c, *vocab_, limit, uint32_t(limit), true);
    EXPECT_TRUE(o.ended) << "limit " << limit << ": cut off at \"" << o.text << "\"";
    EXPECT_TRUE(mc::accepts(*g, o.text)) << "limit " << limit << ": \"" << o.text << "\"";
  }
}

// Under a tight budget mask() and allows() agree on every token.
TEST_P(ConstrainBudgetReal, MaskEqualsBruteForceUnderABudget) {
  auto g = grammar(mc::json_gbnf(false));
  auto c = constraint(g, vocab_);
  ASSERT_TRUE(c);
  const int32_t n = vocab_->n_tokens();
  int32_t open = -1;
  for (int32_t id = 0; id < n && open < 0; ++id) {
    if (vocab_->piece(id) == "{\"") open = id;
  }
  ASSERT_GE(open, 0);
  c->accept(open);  // {"   needs at least ":0}
  for (int budget : {5, 6, 8}) {
    c->set_budget(budget);
    std::vector<float> logits(size_t(n), 0.0f);
    c->mask(logits);
    for (int32_t id = 0; id < n; ++id) {
      ASSERT_EQ(std::isfinite(logits[size_t(id)]), c->allows(id))
          << "budget " << budget << " token " << id << " '" << vocab_->piece(id) << "'";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Models, ConstrainBudgetReal,
                         ::testing::Values("SmolLM2-135M-Instruct.Q4_1.gguf",
                                           "gemma-3-270m-q4_k_m.gguf"),
                         [](const auto& info) {
                           return std::string(info.param).find("gemma") == 0 ? "gemma3" : "smollm2";
                         });
