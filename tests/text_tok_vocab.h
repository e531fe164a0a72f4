// Small synthetic tokenizer vocabularies written as in-memory GGUF files, so that tokenizer
// behaviour is tested without any downloaded model.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "gguf/gguf.h"
#include "text/tokenizer.h"
#include "text/unicode.h"

namespace minnow::text::testing {

struct VocabSpec {
  std::string model = "gpt2";
  std::string pre;   // empty: no tokenizer.ggml.pre key
  std::string name;  // general.name, empty: none
  std::vector<std::string> tokens;
  std::vector<float> scores;   // empty: no key
  std::vector<int32_t> types;  // empty: no key
  std::vector<std::string> merges;
  std::map<std::string, uint32_t> ids;  // e.g. "bos" -> tokenizer.ggml.bos_token_id
  std::map<std::string, bool> flags;    // e.g. "add_bos_token"
};

inline Result<std::unique_ptr<Tokenizer>> build_tokenizer(const VocabSpec& spec) {
  gguf::Writer w;
  w.add_string("general.architecture", "llama");
  if (!spec.name.empty()) w.add_string("general.name", spec.name);
  if (!spec.model.empty()) w.add_string("tokenizer.ggml.model", spec.model);
  if (!spec.pre.empty()) w.add_string("tokenizer.ggml.pre", spec.pre);
  w.add_string_array("tokenizer.ggml.tokens", spec.tokens);
  if (!spec.scores.empty()) w.add_f32_array("tokenizer.ggml.scores", spec.scores);
  if (!spec.types.empty()) w.add_i32_array("tokenizer.ggml.token_type", spec.types);
  if (!spec.merges.empty()) w.add_string_array("tokenizer.ggml.merges", spec.merges);
  for (const auto& [k, v] : spec.ids) w.add_u32("tokenizer.ggml." + k + "_token_id", v);
  for (const auto& [k, v] : spec.flags) w.add_bool("tokenizer.ggml." + k, v);
  const std::vector<uint8_t> bytes = w.to_bytes();
  auto file = gguf::File::parse("synthetic.gguf", bytes.data(), bytes.size());
  if (!file) return file.status();
  return Tokenizer::load(**file);
}

// A byte-level BPE vocabulary: ids 0..255 are the GPT-2 alphabet characters in byte order,
// then:  256 he, 257 ll, 258 hell, 259 hello, 260 Ġw, 261 or, 262 Ġwor, 263 Ġworl, 264 Ġworld,
// 265 aa, 266 <|endoftext|> (control), 267 <user> (user-defined), 268 <|im_start|> (control).
inline VocabSpec byte_level_spec() {
  VocabSpec s;
  s.pre = "gpt-2";
  const ByteAlphabet& a = ByteAlphabet::get();
  for (int b = 0; b < 256; ++b) {
    std::string ch;
    append_utf8(a.to_cp[b], ch);
    s.tokens.push_back(ch);
  }
  for (const char* t : {"he", "ll", "hell", "hello", "Ġw", "or", "Ġwor", "Ġworl", "Ġworld", "aa",
                        "<|endoftext|>", "<user>", "<|im_start|>"}) {
    s.tokens.push_back(t);
  }
  s.types.assign(s.tokens.size(), 1);
  s.types[266] = 3;
  s.types[267] = 4;
  s.types[268] = 3;
  s.merges = {"l l", "h e", "he ll", "hell o", "Ġ w", "o r", "Ġw or", "Ġwor l", "Ġworl d", "a a"};
  return s;
}

// A SentencePiece-style vocabulary: 0 <unk>, 1 <s>, 2 </s>, 3..258 <0x00>..<0xFF>, then
// 259 ▁, 260 h, 261 e, 262 l, 263 o, 264 ▁h, 265 he, 266 ll, 267 ▁he, 268 llo, 269 ▁hello,
// 270 w, 271 ▁w, 272 <ctl> (control), with scores that make "hello" one token.
inline VocabSpec spm_spec() {
  VocabSpec s;
  s.model = "llama";
  s.tokens = {"<unk>", "<s>", "</s>"};
  s.types = {2, 3, 3};
  s.scores = {0, 0, 0};
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (int b = 0; b < 256; ++b) {
    s.tokens.push_back(std::string("<0x") + kHex[b >> 4] + kHex[b & 15] + ">");
    s.types.push_back(6);
    s.scores.push_back(0);
  }
  const std::vector<std::pair<const char*, float>> rest = {
      {"▁", -10},        {"h", -10}, {"e", -10},    {"l", -10},     {"o", -10},
      {"▁h", -1},        {"he", -2}, {"ll", -0.5f}, {"▁he", -1.5f}, {"llo", -3},
      {"▁hello", -0.1f}, {"w", -10}, {"▁w", -4},    {"<ctl>", 0}};
  for (const auto& [t, sc] : rest) {
    s.tokens.push_back(t);
    s.scores.push_back(sc);
    s.types.push_back(1);
  }
  s.types.back() = 3;
  return s;
}

}  // namespace minnow::text::testing
