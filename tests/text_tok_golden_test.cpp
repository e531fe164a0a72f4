// Token ids, detokenized text, special-token metadata and whole-vocabulary piece/attribute
// hashes against llama.cpp (goldens written by scripts/make_tokenizer_golden.py from
// llama-cpp-python 0.3.36). Real models come from $MINNOW_CACHE (~/.cache/minnow/models),
// vocab-only GGUFs from $MINNOW_VOCAB_DIR (~/.cache/minnow/vocab, see scripts/fetch_vocabs.sh).
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "text/stream_decoder.h"
#include "text/tokenizer.h"
#include "text/unicode.h"

namespace {

using minnow::text::TokenId;
using minnow::text::Tokenizer;
using nlohmann::json;

std::string golden_dir() { return std::string(MINNOW_SOURCE_DIR) + "/tests/golden/tokenizer"; }

std::string env_or_home(const char* var, const char* sub) {
  if (const char* v = std::getenv(var); v && *v) return v;
  const char* home = std::getenv("HOME");
  return std::string(home ? home : ".") + sub;
}

json read_json(const std::string& path) {
  std::ifstream f(path);
  if (!f) return json();
  return json::parse(f);
}

std::string from_hex(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  }
  return out;
}

std::string bytes_of(const json& enc) {
  if (enc.contains("text")) return enc["text"].get<std::string>();
  return from_hex(enc["hex"].get<std::string>());
}

std::string printable(const std::string& s) {
  std::ostringstream o;
  for (unsigned char c : s) {
    if (c == '\n')
      o << "\\n";
    else if (c < 0x20 || c == 0x7F)
      o << "\\x" << std::hex << int(c) << std::dec;
    else
      o << c;
  }
  return o.str();
}

std::string ids_str(const std::vector<TokenId>& ids) {
  std::ostringstream o;
  for (size_t i = 0; i < ids.size(); ++i) o << (i ? " " : "") << ids[i];
  return o.str();
}

// FNV-1a over records each prefixed by its 4-byte little-endian length (as the generator).
struct Fnv {
  uint64_t h = 0xcbf29ce484222325ull;
  void bytes(const void* p, size_t n) {
    const auto* b = static_cast<const unsigned char*>(p);
    for (size_t i = 0; i < n; ++i) {
      h ^= b[i];
      h *= 0x100000001b3ull;
    }
  }
  void record(std::string_view s) {
    const uint32_t n = static_cast<uint32_t>(s.size());
    const unsigned char len[4] = {static_cast<unsigned char>(n), static_cast<unsigned char>(n >> 8),
                                  static_cast<unsigned char>(n >> 16),
                                  static_cast<unsigned char>(n >> 24)};
    bytes(len, 4);
    bytes(s.data(), s.size());
  }
  std::string hex() const {
    char buf[17];
    std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(h));
    return buf;
  }
};

struct Model {
  const char* name;
  bool real;  // a full model in $MINNOW_CACHE (else a vocab-only file in $MINNOW_VOCAB_DIR)
};

const Model kModels[] = {
    {"smollm2", true}, {"gemma3", true},     {"gpt-2", false},        {"llama-bpe", false},
    {"qwen2", false},  {"qwen35", false},    {"deepseek-llm", false}, {"deepseek-coder", false},
    {"falcon", false}, {"starcoder", false}, {"refact", false},       {"command-r", false},
    {"mpt", false},    {"gpt-neox", false},  {"aquila", false},       {"llama-spm", false},
    {"phi-3", false},  {"baichuan", false},  {"gemma-4", false},
};

class TokenizerGolden : public ::testing::TestWithParam<Model> {
 protected:
  void SetUp() override {
    const Model m = GetParam();
    golden_ = read_json(golden_dir() + "/" + m.name + ".json");
    ASSERT_FALSE(golden_.is_null()) << "missing golden " << m.name << ".json";
    corpus_ = read_json(golden_dir() + "/corpus.json");
    ASSERT_FALSE(corpus_.is_null()) << "missing corpus.json";
    const std::string dir = m.real ? env_or_home("MINNOW_CACHE", "/.cache/minnow/models")
                                   : env_or_home("MINNOW_VOCAB_DIR", "/.cache/minnow/vocab");
    path_ = dir + "/" + golden_["file"].get<std::string>();
    if (!std::filesystem::exists(path_)) {
      GTEST_SKIP() << path_ << " not found"
                   << (m.real ? " (set MINNOW_CACHE to the models folder)"
                              : " (run scripts/fetch_vocabs.sh or set MINNOW_VOCAB_DIR)");
    }
    auto tok = Tokenizer::load(path_);
    ASSERT_TRUE(tok.ok()) << tok.error();
    tok_ = std::move(*tok);
  }

  json golden_;
  json corpus_;
  std::string path_;
  std::unique_ptr<Tokenizer> tok_;
};

TEST_P(TokenizerGolden, Metadata) {
  const json& m = golden_["meta"];
  EXPECT_EQ(tok_->n_tokens(), m["n_tokens"].get<size_t>());
  EXPECT_EQ(tok_->special().bos, m["bos"].get<int>());
  EXPECT_EQ(tok_->special().eos, m["eos"].get<int>());
  EXPECT_EQ(tok_->special().pad, m["pad"].get<int>());
  EXPECT_EQ(tok_->add_bos(), m["add_bos"].get<bool>());
  EXPECT_EQ(tok_->add_eos(), m["add_eos"].get<bool>());
  EXPECT_EQ(tok_->eog_ids(), m["eog"].get<std::vector<TokenId>>());
  // With several end-of-turn candidates llama.cpp picks by hash-map order; minnow the lowest
  // id. Either way the choice is an end-of-generation token.
  const TokenId eot = m["eot"].get<TokenId>();
  if (eot == -1) {
    EXPECT_EQ(tok_->special().eot, -1);
  } else {
    EXPECT_TRUE(tok_->is_eog(tok_->special().eot));
  }

  Fnv texts, attrs, pieces, pieces_special;
  for (size_t i = 0; i < tok_->n_tokens(); ++i) {
    const auto id = static_cast<TokenId>(i);
    texts.record(tok_->token_text(id));
    const uint32_t a = tok_->attr(id);
    const unsigned char ab[4] = {static_cast<unsigned char>(a), static_cast<unsigned char>(a >> 8),
                                 static_cast<unsigned char>(a >> 16),
                                 static_cast<unsigned char>(a >> 24)};
    attrs.record(std::string_view(reinterpret_cast<const char*>(ab), 4));
    pieces.record(tok_->piece(id, false));
    pieces_special.record(tok_->piece(id, true));
  }
  EXPECT_EQ(texts.hex(), m["tokens_hash"].get<std::string>()) << "different vocabulary file?";
  EXPECT_EQ(attrs.hex(), m["attrs_hash"].get<std::string>());
  EXPECT_EQ(pieces.hex(), m["pieces_hash"].get<std::string>());
  EXPECT_EQ(pieces_special.hex(), m["pieces_special_hash"].get<std::string>());
}

TEST_P(TokenizerGolden, TokenizeAndDetokenize) {
  const json& cases = corpus_["cases"];
  const json& results = golden_["results"];
  ASSERT_EQ(cases.size(), results.size());
  size_t bad_ids = 0, bad_detok = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    const json& c = cases[i];
    const json& r = results[i];
    const std::string text = bytes_of(c["in"]);
    const bool add_special = c["add_special"].get<bool>();
    const bool parse_special = c["parse_special"].get<bool>();
    const auto want = r["ids"].get<std::vector<TokenId>>();
    auto got = tok_->tokenize(text, add_special, parse_special);
    ASSERT_TRUE(got.ok()) << got.error();
    if (*got != want && ++bad_ids <= 5) {
      ADD_FAILURE() << "case " << i << " '" << printable(text) << "' add_special=" << add_special
                    << " parse_special=" << parse_special << "\n  want " << ids_str(want)
                    << "\n  got  " << ids_str(*got);
    }
    const std::string detok = r.contains("detok") ? bytes_of(r["detok"]) : text;
    const std::string detok_special =
        r.contains("detok_special") ? bytes_of(r["detok_special"]) : detok;
    auto d1 = tok_->detokenize(want, false, false);
    auto d2 = tok_->detokenize(want, true, true);
    ASSERT_TRUE(d1.ok() && d2.ok());
    if ((*d1 != detok || *d2 != detok_special) && ++bad_detok <= 5) {
      ADD_FAILURE() << "case " << i << " ids " << ids_str(want) << "\n  want '" << printable(detok)
                    << "' / '" << printable(detok_special) << "'\n  got  '" << printable(*d1)
                    << "' / '" << printable(*d2) << "'";
    }
  }
  EXPECT_EQ(bad_ids, 0u) << "of " << cases.size() << " cases";
  EXPECT_EQ(bad_detok, 0u) << "of " << cases.size() << " cases";
}

// Streaming the golden ids one by one gives detokenize's text (made valid UTF-8).
TEST_P(TokenizerGolden, StreamMatchesDetokenize) {
  const json& results = golden_["results"];
  for (size_t i = 0; i < results.size(); ++i) {
    const auto ids = results[i]["ids"].get<std::vector<TokenId>>();
    std::vector<TokenId> body = ids;
    if (tok_->add_eos() && !body.empty() && body.back() == tok_->special().eos) body.pop_back();
    for (bool special : {false, true}) {
      auto batch = tok_->detokenize(body, true, special);
      ASSERT_TRUE(batch.ok());
      std::string want;
      minnow::text::append_valid_utf8(*batch, want);
      minnow::text::StreamDecoder stream(*tok_, {special, {}});
      std::string got;
      for (TokenId id : body) got += stream.push(id);
      got += stream.finish();
      ASSERT_EQ(got, want) << "case " << i << " special=" << special << " ids " << ids_str(body);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(All, TokenizerGolden, ::testing::ValuesIn(kModels),
                         [](const ::testing::TestParamInfo<Model>& info) {
                           std::string n = info.param.name;
                           for (char& c : n) {
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           }
                           return n;
                         });

}  // namespace
