// model::describe() and the `minnow inspect` JSON/text built from it, on GGUF files written
// here with gguf::Writer (every field known) and on the real models when they are in the cache.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "cli/inspect.h"
#include "gguf/gguf.h"
#include "model/gguf_keys.h"
#include "model/model_info.h"

namespace minnow {
namespace {

using model::gguf_key;
using model::Key;

// Keeps the bytes alive for as long as the parsed File points into them.
struct Parsed {
  std::vector<uint8_t> bytes;
  std::unique_ptr<gguf::File> file;
};

Parsed parse(const gguf::Writer& w) {
  Parsed p;
  p.bytes = w.to_bytes();
  auto f = gguf::File::parse("test.gguf", p.bytes.data(), p.bytes.size());
  EXPECT_TRUE(f.ok()) << f.error();
  if (f) p.file = std::move(*f);
  return p;
}

// A small llama-shaped file: two tensors of different types and the usual hyper-parameters.
gguf::Writer llama_writer() {
  gguf::Writer w;
  w.add_string(gguf_key(Key::kGeneralArchitecture), "llama");
  w.add_string(gguf_key(Key::kGeneralName), "tiny");
  w.add_u32(gguf_key(Key::kGeneralFileType), 3);
  w.add_u32(gguf_key(Key::kContextLength, "llama"), 2048);
  w.add_u32(gguf_key(Key::kEmbeddingLength, "llama"), 64);
  w.add_u32(gguf_key(Key::kBlockCount, "llama"), 2);
  w.add_u32(gguf_key(Key::kFeedForwardLength, "llama"), 128);
  w.add_u32(gguf_key(Key::kHeadCount, "llama"), 4);
  w.add_u32(gguf_key(Key::kHeadCountKv, "llama"), 2);
  w.add_f32(gguf_key(Key::kRopeFreqBase, "llama"), 10000.0f);
  w.add_u32(gguf_key(Key::kRopeDimensionCount, "llama"), 16);
  w.add_string(gguf_key(Key::kRopeScalingType, "llama"), "linear");
  w.add_f32(gguf_key(Key::kRopeScalingFactor, "llama"), 4.0f);
  w.add_string(gguf_key(Key::kTokenizerModel), "gpt2");
  w.add_string_array(gguf_key(Key::kTokenizerTokens), {"a", "b", "c"});
  w.add_string(gguf_key(Key::kTokenizerChatTemplate), "{{ messages }}");
  std::vector<float> norm(64, 1.0f);
  EXPECT_TRUE(w.add_tensor("norm.weight", TensorType::F32, {64}, norm.data(), 64 * 4).ok());
  // Q4_1: blocks of 32 elements in 20 bytes; 64 x 3 elements -> 6 blocks.
  std::vector<uint8_t> q(6 * 20, 0);
  EXPECT_TRUE(w.add_tensor("w.weight", TensorType::Q4_1, {64, 3}, q.data(), q.size()).ok());
  return w;
}

TEST(GgufKeys, ArchitectureIsFilledIn) {
  EXPECT_EQ(gguf_key(Key::kContextLength, "gemma3"), "gemma3.context_length");
  EXPECT_EQ(gguf_key(Key::kHeadCountKv, "llama"), "llama.attention.head_count_kv");
  EXPECT_EQ(gguf_key(Key::kTokenizerChatTemplate, "llama"), "tokenizer.chat_template");
  std::set<std::string_view> seen(std::begin(model::kKeyPatterns), std::end(model::kKeyPatterns));
  EXPECT_EQ(seen.size(), std::size(model::kKeyPatterns)) << "a key pattern is listed twice";
}

TEST(FileTypeName, NamesLlamaFtypes) {
  EXPECT_EQ(model::file_type_name(3), "MOSTLY_Q4_1");
  EXPECT_EQ(model::file_type_name(15), "MOSTLY_Q4_K_M");
  EXPECT_EQ(model::file_type_name(0), "ALL_F32");
  EXPECT_EQ(model::file_type_name(4), "");  // removed from the format
  EXPECT_EQ(model::file_type_name(9999), "");
}

TEST(Describe, ReadsEveryField) {
  Parsed p = parse(llama_writer());
  ASSERT_TRUE(p.file);
  auto info = model::describe(*p.file);
  ASSERT_TRUE(info.ok()) << info.error();
  EXPECT_EQ(info->architecture, "llama");
  EXPECT_EQ(info->name, "tiny");
  EXPECT_EQ(info->file_type, 3u);
  EXPECT_EQ(info->quantization_version, std::nullopt);
  EXPECT_EQ(info->parameter_count, 64u + 64u * 3u);
  EXPECT_EQ(info->tensor_count, 2u);
  EXPECT_EQ(info->tensor_bytes, 64u * 4u + 120u);
  ASSERT_EQ(info->tensor_types.size(), 2u);
  EXPECT_EQ(info->tensor_types[0].type, TensorType::F32);  // ordered by type id
  EXPECT_EQ(info->tensor_types[0].bytes, 256u);
  EXPECT_EQ(info->tensor_types[1].type, TensorType::Q4_1);
  EXPECT_EQ(info->tensor_types[1].elements, 192u);
  EXPECT_EQ(info->context_length, 2048u);
  EXPECT_EQ(info->embedding_length, 64u);
  EXPECT_EQ(info->block_count, 2u);
  EXPECT_EQ(info->feed_forward_length, 128u);
  EXPECT_EQ(info->head_count, std::vector<uint64_t>{4});
  EXPECT_EQ(info->head_count_kv, std::vector<uint64_t>{2});
  EXPECT_EQ(info->key_length, std::nullopt);
  EXPECT_EQ(info->rope_freq_base, 10000.0);
  EXPECT_EQ(info->rope_dimension_count, 16u);
  EXPECT_EQ(info->rope_scaling_type, "linear");
  EXPECT_EQ(info->rope_scaling_factor, 4.0);
  EXPECT_EQ(info->tokenizer_model, "gpt2");
  EXPECT_EQ(info->vocab_size, 3u);
  EXPECT_EQ(info->chat_template_bytes, 14u);
}

TEST(Describe, MissingArchitectureIsAnError) {
  gguf::Writer w;
  w.add_u32("llama.context_length", 1);
  Parsed p = parse(w);
  ASSERT_TRUE(p.file);
  auto info = model::describe(*p.file);
  ASSERT_FALSE(info.ok());
  EXPECT_NE(info.error().find("general.architecture"), std::string::npos) << info.error();
}

TEST(Describe, MistypedKeyIsAnErrorNamingIt) {
  gguf::Writer w;
  w.add_string("general.architecture", "llama");
  w.add_string("llama.context_length", "long");
  Parsed p = parse(w);
  ASSERT_TRUE(p.file);
  auto info = model::describe(*p.file);
  ASSERT_FALSE(info.ok());
  EXPECT_NE(info.error().find("llama.context_length"), std::string::npos) << info.error();

  gguf::Writer w2;
  w2.add_string("general.architecture", "llama");
  w2.add_string("llama.rope.freq_base", "fast");
  Parsed p2 = parse(w2);
  ASSERT_TRUE(p2.file);
  auto info2 = model::describe(*p2.file);
  ASSERT_FALSE(info2.ok());
  EXPECT_NE(info2.error().find("llama.rope.freq_base"), std::string::npos) << info2.error();
}

TEST(Describe, PerLayerHeadCounts) {
  gguf::Writer w;
  w.add_string("general.architecture", "openelm");
  w.add_i32_array("openelm.attention.head_count", {4, 6, 8});
  w.add_u32_array("openelm.attention.head_count_kv", {1, 2, 2});
  Parsed p = parse(w);
  ASSERT_TRUE(p.file);
  auto info = model::describe(*p.file);
  ASSERT_TRUE(info.ok()) << info.error();
  EXPECT_EQ(info->head_count, (std::vector<uint64_t>{4, 6, 8}));
  EXPECT_EQ(info->head_count_kv, (std::vector<uint64_t>{1, 2, 2}));
  EXPECT_EQ(info->parameter_count, 0u);
  EXPECT_EQ(info->vocab_size, std::nullopt);

  auto j = cli::inspect_json(*p.file, *info, {});
  EXPECT_EQ(j["hparams"]["head_count"], 8);
  EXPECT_EQ(j["hparams"]["head_count_kv"], 2);
  EXPECT_EQ(j["hparams"]["head_count_per_layer"], nlohmann::json({4, 6, 8}));
  EXPECT_TRUE(j["hparams"]["context_length"].is_null());
  EXPECT_TRUE(j["tensor_types"].empty());
}

TEST(InspectJson, SchemaAndTensors) {
  Parsed p = parse(llama_writer());
  ASSERT_TRUE(p.file);
  auto info = model::describe(*p.file);
  ASSERT_TRUE(info.ok()) << info.error();

  auto brief = cli::inspect_json(*p.file, *info, {"tiny:1m", false});
  EXPECT_FALSE(brief.contains("tensors"));
  EXPECT_EQ(brief["schema_version"], cli::kInspectSchemaVersion);
  EXPECT_EQ(brief["source"]["name"], "tiny:1m");
  EXPECT_EQ(brief["source"]["bytes"], p.bytes.size());

  auto j = cli::inspect_json(*p.file, *info, {"", true});
  EXPECT_TRUE(j["source"]["name"].is_null());
  EXPECT_EQ(j["gguf"]["version"], 3);
  EXPECT_EQ(j["gguf"]["tensor_count"], 2);
  EXPECT_EQ(j["gguf"]["metadata_keys"], p.file->metadata().size());
  EXPECT_EQ(j["architecture"], "llama");
  EXPECT_EQ(j["parameters"], 256);
  EXPECT_EQ(j["file_type"]["name"], "MOSTLY_Q4_1");
  EXPECT_EQ(j["tensor_types"][1]["type"], "Q4_1");
  EXPECT_EQ(j["tensor_types"][1]["type_id"], 3);
  EXPECT_EQ(j["hparams"]["rope"]["freq_base"], 10000.0);
  EXPECT_EQ(j["hparams"]["rope"]["scaling"]["type"], "linear");
  EXPECT_EQ(j["hparams"]["rope"]["scaling"]["factor"], 4.0);
  EXPECT_TRUE(j["hparams"]["rope"]["scaling"]["original_context_length"].is_null());
  EXPECT_TRUE(j["hparams"]["head_count_per_layer"].is_null());
  EXPECT_EQ(j["tokenizer"]["vocab_size"], 3);
  EXPECT_EQ(j["tokenizer"]["chat_template"], true);
  ASSERT_EQ(j["tensors"].size(), 2u);
  const auto& t = j["tensors"][1];
  EXPECT_EQ(t["name"], "w.weight");
  EXPECT_EQ(t["type"], "Q4_1");
  EXPECT_EQ(t["shape"], nlohmann::json({64, 3}));
  EXPECT_EQ(t["bytes"], 120);
  const gguf::TensorInfo* w = p.file->find_tensor("w.weight");
  EXPECT_EQ(t["offset"], w->offset);
  EXPECT_EQ(t["file_offset"], p.file->data_offset() + w->offset);
  EXPECT_EQ(w->data, p.file->bytes() + t["file_offset"].get<uint64_t>());
}

TEST(InspectText, NamesTheEssentials) {
  Parsed p = parse(llama_writer());
  ASSERT_TRUE(p.file);
  auto info = model::describe(*p.file);
  ASSERT_TRUE(info.ok()) << info.error();
  std::string text = cli::inspect_text(*p.file, *info, {"", true});
  for (const char* want : {"architecture   llama", "MOSTLY_Q4_1 (3)", "Q4_1 x1",
                           "context        2048", "heads          4, kv 2", "scaling linear x4",
                           "vocab 3", "embedded (14 bytes)", "w.weight", "[64, 3]"}) {
    EXPECT_NE(text.find(want), std::string::npos) << "missing '" << want << "' in:\n" << text;
  }
}

// The real models, when setup has put them in the cache. The expected figures were read with
// gguf-py 0.19.0's GGUFReader (tests/python/test_inspect.py checks every tensor against it).
std::string cached(const char* file) {
  const char* cache = std::getenv("MINNOW_CACHE");
  std::string dir = cache && *cache ? cache
                                    : std::string(std::getenv("HOME") ? std::getenv("HOME") : "") +
                                          "/.cache/minnow/models";
  return dir + "/" + file;
}

TEST(RealModels, SmolLM2) {
  std::string path = cached("SmolLM2-135M-Instruct.Q4_1.gguf");
  if (!std::filesystem::exists(path)) GTEST_SKIP() << path << " absent; run scripts/quickstart.sh";
  auto f = gguf::File::open(path);
  ASSERT_TRUE(f.ok()) << f.error();
  auto info = model::describe(**f);
  ASSERT_TRUE(info.ok()) << info.error();
  EXPECT_EQ(info->architecture, "llama");
  EXPECT_EQ(info->tensor_count, 272u);
  EXPECT_EQ(info->parameter_count, 134515008u);
  EXPECT_EQ(info->tensor_bytes, 96576768u);
  EXPECT_EQ(info->file_type, 3u);
  EXPECT_EQ(info->context_length, 8192u);
  EXPECT_EQ(info->embedding_length, 576u);
  EXPECT_EQ(info->block_count, 30u);
  EXPECT_EQ(info->head_count, std::vector<uint64_t>{9});
  EXPECT_EQ(info->head_count_kv, std::vector<uint64_t>{3});
  EXPECT_EQ(info->rope_freq_base, 100000.0);
  EXPECT_EQ(info->rope_dimension_count, 64u);
  EXPECT_EQ(info->tokenizer_model, "gpt2");
  EXPECT_EQ(info->vocab_size, 49152u);
  EXPECT_EQ(info->chat_template_bytes, 368u);
}

TEST(RealModels, Gemma3) {
  std::string path = cached("gemma-3-270m-q4_k_m.gguf");
  if (!std::filesystem::exists(path)) GTEST_SKIP() << path << " absent; run scripts/quickstart.sh";
  auto f = gguf::File::open(path);
  ASSERT_TRUE(f.ok()) << f.error();
  auto info = model::describe(**f);
  ASSERT_TRUE(info.ok()) << info.error();
  EXPECT_EQ(info->architecture, "gemma3");
  EXPECT_EQ(info->tensor_count, 236u);
  EXPECT_EQ(info->parameter_count, 268098176u);
  EXPECT_EQ(info->tensor_bytes, 246587904u);
  EXPECT_EQ(model::file_type_name(*info->file_type), "MOSTLY_Q4_K_M");
  EXPECT_EQ(info->context_length, 32768u);
  EXPECT_EQ(info->embedding_length, 640u);
  EXPECT_EQ(info->block_count, 18u);
  EXPECT_EQ(info->head_count, std::vector<uint64_t>{4});
  EXPECT_EQ(info->head_count_kv, std::vector<uint64_t>{1});
  EXPECT_EQ(info->key_length, 256u);
  EXPECT_EQ(info->sliding_window, 512u);
  EXPECT_EQ(info->rope_freq_base, 1000000.0);
  EXPECT_EQ(info->tokenizer_model, "llama");
  EXPECT_EQ(info->vocab_size, 262144u);
  EXPECT_EQ(info->chat_template_bytes, std::nullopt);  // this file embeds none
  std::set<std::string_view> types;
  for (const auto& c : info->tensor_types) types.insert(tensor_type_name(c.type));
  EXPECT_EQ(types, (std::set<std::string_view>{"F32", "Q4_K", "Q5_0", "Q6_K", "Q8_0"}));
}

}  // namespace
}  // namespace minnow
