// The tiny-model writer: what it writes reads back through minnow's GGUF reader with the keys,
// tensor names, shapes and types llama.cpp's converters use; it is deterministic; dropped
// tensors leave the others unchanged; weights have the intended scale.
#include "support/tiny_model.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "gguf/gguf.h"
#include "kernels/quants.h"

namespace minnow::tiny {
namespace {

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() /
          ("minnow_tiny_" + std::to_string(::getpid()) + "_" + name + ".gguf"))
      .string();
}

std::vector<char> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Writes `spec` and opens it; the file is removed when the test ends.
struct Written {
  explicit Written(const TinyModelSpec& spec, const std::string& name) : path(temp_path(name)) {
    const Status st = write_tiny_model(spec, path);
    EXPECT_TRUE(st.ok()) << st.message();
    auto f = gguf::File::open(path);
    EXPECT_TRUE(f.ok()) << f.error();
    if (f.ok()) file = std::move(*f);
  }
  ~Written() { std::remove(path.c_str()); }
  std::string path;
  std::unique_ptr<gguf::File> file;
};

// The tensor names llama.cpp's loader looks for in each architecture (gguf-py's
// MODEL_TENSORS), for the spec's variant.
std::set<std::string> expected_tensors(const TinyModelSpec& s) {
  std::set<std::string> names = {"token_embd.weight", "output_norm.weight"};
  if (!s.tied_output) names.insert("output.weight");
  if (s.rope_freqs) names.insert("rope_freqs.weight");
  if (s.rope_factors) {
    names.insert("rope_factors_long.weight");
    names.insert("rope_factors_short.weight");
  }
  for (uint32_t il = 0; il < s.n_layer; ++il) {
    const std::string b = "blk." + std::to_string(il) + ".";
    std::vector<std::string> w = {"attn_norm", "attn_output", "ffn_norm", "ffn_up", "ffn_down"};
    if (s.arch == "phi3") {
      w.push_back("attn_qkv");
    } else {
      for (const char* x : {"attn_q", "attn_k", "attn_v", "ffn_gate"}) w.push_back(x);
    }
    if (s.arch == "gemma3") {
      for (const char* x : {"attn_q_norm", "attn_k_norm", "post_attention_norm", "post_ffw_norm"})
        w.push_back(x);
    }
    for (const std::string& x : w) names.insert(b + x + ".weight");
    if (s.qkv_bias) {
      for (const char* x : {"attn_q", "attn_k", "attn_v"}) names.insert(b + x + ".bias");
    }
  }
  return names;
}

std::vector<float> dequantized(const gguf::TensorInfo& t) {
  std::vector<float> out(t.n_elements);
  const uint64_t bytes_per_row = t.n_bytes / t.rows();
  for (uint64_t r = 0; r < t.rows(); ++r) {
    kernels::dequantize_row_ref(t.type, t.data + r * bytes_per_row, out.data() + r * t.ne[0],
                                static_cast<int64_t>(t.ne[0]));
  }
  return out;
}

TEST(TinyModel, EveryArchVariantAndTypeReadsBackAsSpecified) {
  for (const char* arch : {"llama", "qwen2", "gemma3", "phi3"}) {
    for (const std::string& variant : tiny_model_variants(arch)) {
      // Every variant in F32, the default one quantized too. (The k-quants' reference
      // quantizer is too slow for a sanitized unit test; the Python tests write those.)
      for (TensorType type : {TensorType::F32, TensorType::Q8_0}) {
        if (type != TensorType::F32 && variant != "default") continue;
        SCOPED_TRACE(std::string(arch) + "/" + variant + "/" + std::string(tensor_type_name(type)));
        auto spec = tiny_model_spec(arch, type, variant);
        ASSERT_TRUE(spec.ok()) << spec.error();
        Written w(*spec, "rb");
        ASSERT_TRUE(w.file);
        const gguf::File& f = *w.file;
        EXPECT_EQ(*f.get_string("general.architecture"), arch);
        const std::string k = std::string(arch) + ".";
        EXPECT_EQ(*f.get_u32(k + "embedding_length"), spec->n_embd);
        EXPECT_EQ(*f.get_u32(k + "block_count"), spec->n_layer);
        EXPECT_EQ(*f.get_u32(k + "attention.head_count"), 4u);
        EXPECT_EQ(*f.get_u32(k + "attention.head_count_kv"), variant == "mha"   ? 4u
                                                             : variant == "mqa" ? 1u
                                                                                : 2u);
        // gemma3's converter writes key_length and no rope.dimension_count; the others derive
        // head_dim from n_embd / n_head.
        EXPECT_EQ(f.has(k + "attention.key_length"), std::string(arch) == "gemma3");
        EXPECT_EQ(f.has(k + "rope.dimension_count"), std::string(arch) != "gemma3");
        if (std::string(arch) == "gemma3") {
          EXPECT_EQ(*f.get_u32(k + "attention.key_length"), 2 * spec->n_embd / spec->n_head);
          EXPECT_EQ(*f.get_u32(k + "attention.sliding_window"), 4u);
          EXPECT_EQ(spec->n_layer, 7u);
        } else {
          EXPECT_EQ(spec->head_dim, spec->n_embd / spec->n_head);
        }

        std::set<std::string> got;
        for (const gguf::TensorInfo& t : f.tensors()) {
          got.insert(std::string(t.name));
          EXPECT_EQ(t.type, t.n_dims == 1 ? TensorType::F32 : type) << t.name;
        }
        EXPECT_EQ(got, expected_tensors(*spec));

        const uint64_t n_q = uint64_t{spec->n_head} * spec->head_dim;
        const uint64_t n_kv = uint64_t{spec->n_head_kv} * spec->head_dim;
        const gguf::TensorInfo* embd = f.find_tensor("token_embd.weight");
        ASSERT_NE(embd, nullptr);
        EXPECT_EQ(embd->ne[0], spec->n_embd);
        EXPECT_EQ(embd->ne[1], 300u);
        const gguf::TensorInfo* out = f.find_tensor("blk.1.attn_output.weight");
        ASSERT_NE(out, nullptr);
        EXPECT_EQ(out->ne[0], n_q);
        EXPECT_EQ(out->ne[1], spec->n_embd);
        if (std::string(arch) == "phi3") {
          EXPECT_EQ(f.find_tensor("blk.0.attn_qkv.weight")->ne[1], n_q + 2 * n_kv);
          EXPECT_EQ(f.find_tensor("blk.0.ffn_up.weight")->ne[1], 2u * spec->n_ff);
        } else {
          EXPECT_EQ(f.find_tensor("blk.0.attn_k.weight")->ne[1], n_kv);
        }
        if (spec->rope_factors) {
          EXPECT_EQ(f.find_tensor("rope_factors_long.weight")->ne[0], spec->rope_dim / 2);
        }
      }
    }
  }
}

TEST(TinyModel, SameSpecSameBytesOtherSeedOtherWeights) {
  auto spec = tiny_model_spec("qwen2", TensorType::Q4_0);
  ASSERT_TRUE(spec.ok());
  const std::string a = temp_path("a"), b = temp_path("b"), c = temp_path("c");
  ASSERT_TRUE(write_tiny_model(*spec, a).ok());
  ASSERT_TRUE(write_tiny_model(*spec, b).ok());
  spec->seed = 2;
  ASSERT_TRUE(write_tiny_model(*spec, c).ok());
  EXPECT_EQ(read_bytes(a), read_bytes(b));
  EXPECT_NE(read_bytes(a), read_bytes(c));
  EXPECT_EQ(read_bytes(a).size(), read_bytes(c).size());
  for (const std::string& p : {a, b, c}) std::remove(p.c_str());
}

TEST(TinyModel, DroppedTensorLeavesTheOthersUnchanged) {
  auto spec = tiny_model_spec("llama");
  ASSERT_TRUE(spec.ok());
  Written full(*spec, "full");
  spec->drop_tensors = {"blk.0.attn_k.weight"};
  Written dropped(*spec, "dropped");
  ASSERT_TRUE(full.file && dropped.file);
  EXPECT_EQ(dropped.file->find_tensor("blk.0.attn_k.weight"), nullptr);
  EXPECT_EQ(dropped.file->tensors().size() + 1, full.file->tensors().size());
  for (const gguf::TensorInfo& t : dropped.file->tensors()) {
    const gguf::TensorInfo* u = full.file->find_tensor(t.name);
    ASSERT_NE(u, nullptr) << t.name;
    ASSERT_EQ(t.n_bytes, u->n_bytes);
    EXPECT_EQ(0, std::memcmp(t.data, u->data, t.n_bytes)) << t.name;
  }
}

TEST(TinyModel, UnknownArchitectureNameIsWrittenAsGiven) {
  auto spec = tiny_model_spec("llama");
  ASSERT_TRUE(spec.ok());
  spec->arch_name = "mamba9";
  Written w(*spec, "mamba9");
  ASSERT_TRUE(w.file);
  EXPECT_EQ(*w.file->get_string("general.architecture"), "mamba9");
  EXPECT_TRUE(w.file->has("mamba9.block_count"));
  EXPECT_FALSE(w.file->has("llama.block_count"));
}

TEST(TinyModel, WeightsHaveTheIntendedScale) {
  auto spec = tiny_model_spec("llama");
  ASSERT_TRUE(spec.ok());
  Written w(*spec, "scale");
  ASSERT_TRUE(w.file);
  auto stats = [&](const char* name, double* mean, double* sd) {
    const std::vector<float> v = dequantized(*w.file->find_tensor(name));
    double s = 0, s2 = 0;
    for (float x : v) s += x;
    *mean = s / static_cast<double>(v.size());
    for (float x : v) s2 += (x - *mean) * (x - *mean);
    *sd = std::sqrt(s2 / static_cast<double>(v.size()));
  };
  double mean, sd;
  stats("blk.0.attn_q.weight", &mean, &sd);  // N(0, 1/64)
  EXPECT_NEAR(mean, 0.0, 0.01);
  EXPECT_NEAR(sd, 1.0 / 8.0, 0.01);
  stats("blk.1.ffn_down.weight", &mean, &sd);  // fan-in n_ff = 128
  EXPECT_NEAR(sd, 1.0 / std::sqrt(128.0), 0.01);
  stats("output_norm.weight", &mean, &sd);  // 1 + N(0, 0.01)
  EXPECT_NEAR(mean, 1.0, 0.05);
  EXPECT_NEAR(sd, 0.1, 0.04);
}

TEST(TinyModel, SpecErrorsNameTheProblem) {
  auto a = tiny_model_spec("mamba");
  ASSERT_FALSE(a.ok());
  EXPECT_NE(a.error().find("unknown arch 'mamba'"), std::string::npos) << a.error();
  auto v = tiny_model_spec("phi3", TensorType::F32, "tied");
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.error().find("no variant 'tied'"), std::string::npos) << v.error();
  EXPECT_NE(v.error().find("longrope"), std::string::npos) << v.error();
  auto k = tiny_model_spec("gemma3", TensorType::Q6_K);
  ASSERT_TRUE(k.ok());
  EXPECT_EQ(k->n_embd % 256, 0u);
  EXPECT_EQ(k->n_ff % 256, 0u);
  EXPECT_EQ((k->n_head * k->head_dim) % 256, 0u);
}

TEST(TinyModel, RowsThatDoNotFitTheBlockAreAnError) {
  auto spec = tiny_model_spec("llama", TensorType::Q4_0);
  ASSERT_TRUE(spec.ok());
  spec->type = TensorType::Q4_K;  // 64-element rows, 256-element blocks
  const std::string path = temp_path("misfit");
  const Status st = write_tiny_model(*spec, path);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("token_embd.weight"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("256"), std::string::npos) << st.message();
  EXPECT_FALSE(std::filesystem::exists(path));
}

}  // namespace
}  // namespace minnow::tiny
