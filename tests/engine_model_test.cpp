// The forward pass and the generation loop on tiny random-weight models of each architecture.
// Numerical agreement with an independent float64 implementation is tested in
// tests/python/test_engine_tiny.py; here, under the sanitizers, the engine must agree with
// itself however the work is split (prefill batches vs one token at a time, rings vs full
// caches, rollback, shift) and fail clearly on bad files and inputs.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "engine/session.h"
#include "model/context.h"
#include "model/model.h"
#include "support/tiny_model.h"

namespace minnow {
namespace {

using model::Context;
using model::ContextOptions;
using model::Model;

std::string tiny_path(const std::string& name) {
  return (std::filesystem::path(::testing::TempDir()) / ("minnow_engine_" + name + ".gguf"))
      .string();
}

std::unique_ptr<Model> make_model(const tiny::TinyModelSpec& spec, const std::string& name) {
  const std::string path = tiny_path(name);
  const Status s = tiny::write_tiny_model(spec, path);
  EXPECT_TRUE(s.ok()) << s.message();
  auto m = Model::load(path);
  EXPECT_TRUE(m.ok()) << m.error();
  return m.ok() ? std::move(*m) : nullptr;
}

std::unique_ptr<Model> make_model(const std::string& arch, const std::string& variant = "default",
                                  TensorType type = TensorType::F32) {
  auto spec = tiny::tiny_model_spec(arch, type, variant);
  EXPECT_TRUE(spec.ok()) << spec.error();
  return make_model(*spec, arch + "_" + variant + "_" + std::string(tensor_type_name(type)));
}

std::vector<int32_t> prompt_of(int n, int n_vocab) {
  std::vector<int32_t> p(n);
  for (int i = 0; i < n; ++i) p[i] = (i * 37 + 11) % n_vocab;
  return p;
}

// Logits after feeding `tokens` in pieces of `step` tokens (each piece one eval call).
std::vector<float> logits_after(const Model& m, const std::vector<int32_t>& tokens, int step,
                                ContextOptions opts, ThreadPool& pool) {
  auto ctx = Context::create(m, pool, opts);
  EXPECT_TRUE(ctx.ok()) << ctx.error();
  std::span<const float> l;
  for (size_t i = 0; i < tokens.size(); i += step) {
    const size_t n = std::min(tokens.size() - i, size_t(step));
    auto r = (*ctx)->eval(std::span(tokens).subspan(i, n));
    EXPECT_TRUE(r.ok()) << r.error();
    l = *r;
  }
  return {l.begin(), l.end()};
}

float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  float d = 0;
  for (size_t i = 0; i < a.size(); ++i) d = std::max(d, std::fabs(a[i] - b[i]));
  return d;
}

// The logit range, at least 1: tolerances are relative to it (some tiny models have nearly
// flat logits).
float range(const std::vector<float>& a) {
  auto [lo, hi] = std::minmax_element(a.begin(), a.end());
  return std::max(1.0f, *hi - *lo);
}

class ArchTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ArchTest, PrefillEqualsDecodeWhateverTheSplitBitForBit) {
  // The kernels give a row the same result whatever batch it comes in (matmul tiles, attention
  // over aligned, padded key ranges), so a prompt's logits do not depend on how it is split
  // into calls: a reused prefix gives exactly what a fresh prompt gives.
  auto m = make_model(GetParam());
  ASSERT_TRUE(m);
  ThreadPool pool(2);
  const auto prompt = prompt_of(13, m->config().n_vocab);
  ContextOptions opts;
  opts.n_ctx = 32;
  const auto whole = logits_after(*m, prompt, 13, opts, pool);
  for (int step : {1, 4, 6}) {
    EXPECT_EQ(whole, logits_after(*m, prompt, step, opts, pool)) << "step " << step;
  }
  ThreadPool one(1);
  EXPECT_EQ(whole, logits_after(*m, prompt, 13, opts, one));
}

TEST_P(ArchTest, Q8CacheStaysClose) {
  auto m = make_model(GetParam());
  ASSERT_TRUE(m);
  if (m->config().k_dim() % 32 || m->config().v_dim() % 32)
    GTEST_SKIP() << "K/V width not a multiple of 32";
  ThreadPool pool(2);
  const auto prompt = prompt_of(10, m->config().n_vocab);
  ContextOptions opts;
  opts.n_ctx = 16;
  const auto f16 = logits_after(*m, prompt, 3, opts, pool);
  opts.kv_type = model::KvType::kQ8_0;
  EXPECT_LT(max_abs_diff(f16, logits_after(*m, prompt, 3, opts, pool)), 0.05f * range(f16));
}

TEST_P(ArchTest, TruncateThenReevaluateGivesTheSameLogits) {
  auto m = make_model(GetParam());
  ASSERT_TRUE(m);
  ThreadPool pool(2);
  auto prompt = prompt_of(12, m->config().n_vocab);
  ContextOptions opts;
  opts.n_ctx = 24;
  opts.n_batch = 4;
  const auto fresh = logits_after(*m, prompt, 12, opts, pool);
  auto ctx = Context::create(*m, pool, opts);
  ASSERT_TRUE(ctx.ok());
  auto other = prompt;
  std::reverse(other.begin() + 5, other.end());
  ASSERT_TRUE((*ctx)->eval(other).ok());
  // Keep the common prefix; a sliding-window ring that no longer holds the window of
  // position 5 (gemma3 here: 7 slots, 12 positions written) makes it start over.
  const int kept = (*ctx)->truncate(5);
  EXPECT_EQ(kept, GetParam() == "gemma3" ? 0 : 5);
  auto r = (*ctx)->eval(std::span(prompt).subspan(kept));
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(fresh, std::vector<float>(r->begin(), r->end()));
}

TEST_P(ArchTest, ShiftMatchesAFreshContextOfTheKeptTokens) {
  // One layer: beyond the first, the kept tokens' keys and values were computed while the
  // dropped ones were visible, so a shifted cache is not a fresh one by design.
  auto spec = tiny::tiny_model_spec(GetParam());
  ASSERT_TRUE(spec.ok());
  spec->n_layer = 1;
  auto m = make_model(*spec, GetParam() + "_one_layer");
  ASSERT_TRUE(m);
  ThreadPool pool(2);
  const auto prompt = prompt_of(14, m->config().n_vocab);
  ContextOptions opts;
  opts.n_ctx = 16;
  auto ctx = Context::create(*m, pool, opts);
  ASSERT_TRUE(ctx.ok());
  ASSERT_TRUE((*ctx)->eval(prompt).ok());
  ASSERT_TRUE((*ctx)->shift(2, 5).ok());
  EXPECT_EQ((*ctx)->n_past(), 9);
  const int32_t next[1] = {7};
  auto shifted = (*ctx)->eval(next);
  ASSERT_TRUE(shifted.ok()) << shifted.error();
  std::vector<int32_t> kept(prompt.begin(), prompt.begin() + 2);
  kept.insert(kept.end(), prompt.begin() + 7, prompt.end());
  kept.push_back(7);
  const auto fresh = logits_after(*m, kept, 16, opts, pool);
  // Keys re-rotated in f16: close, not identical.
  EXPECT_LT(max_abs_diff(fresh, {shifted->begin(), shifted->end()}), 0.02f * range(fresh));
  EXPECT_FALSE((*ctx)->shift(0, 100).ok());
}

// Batched evaluation over a paged pool (engine::Scheduler's path).
struct PagedRun {
  std::vector<float> a, b;  // last logits of sequences A and B
};

// Feeds A and B their prompts in chunks of `chunk` tokens (together in one eval_batch call
// when `together`), then `n_decode` greedy-free decode steps of fixed tokens.
PagedRun run_paged(Context& ctx, const std::vector<int32_t>& pa, const std::vector<int32_t>& pb,
                   const std::vector<int32_t>& blocks_a, const std::vector<int32_t>& blocks_b,
                   int chunk, bool together) {
  PagedRun out;
  const int n_vocab = ctx.model().config().n_vocab;
  size_t ia = 0, ib = 0;
  auto take = [&](const std::vector<float>& l, size_t row, std::vector<float>& dst) {
    dst.assign(l.begin() + row * n_vocab, l.begin() + (row + 1) * n_vocab);
  };
  while (ia < pa.size() || ib < pb.size()) {
    std::vector<model::SeqInput> in;
    const size_t na = std::min(pa.size() - ia, size_t(chunk));
    const size_t nb = std::min(pb.size() - ib, size_t(chunk));
    if (na) in.push_back({std::span(pa).subspan(ia, na), int(ia), blocks_a, true});
    if (nb) in.push_back({std::span(pb).subspan(ib, nb), int(ib), blocks_b, true});
    if (!together && in.size() == 2) {
      for (int k = 0; k < 2; ++k) {
        auto r = ctx.eval_batch({&in[k], 1});
        EXPECT_TRUE(r.ok()) << r.error();
        if (!r.ok()) return out;
        take({r->begin(), r->end()}, 0, k == 0 ? out.a : out.b);
      }
    } else {
      auto r = ctx.eval_batch(in);
      EXPECT_TRUE(r.ok()) << r.error();
      if (!r.ok()) return out;
      const std::vector<float> l(r->begin(), r->end());
      size_t row = 0;
      if (na) take(l, row++, out.a);
      if (nb) take(l, row++, out.b);
    }
    ia += na;
    ib += nb;
  }
  return out;
}

TEST_P(ArchTest, BatchedSequencesGiveWhatEachGetsAloneBitForBit) {
  auto m = make_model(GetParam());
  ASSERT_TRUE(m);
  ThreadPool pool(2);
  const int n_vocab = m->config().n_vocab;
  const auto pa = prompt_of(150, n_vocab);  // 3 blocks
  auto pb = prompt_of(70, n_vocab);         // 2 blocks
  for (int32_t& t : pb) t = (t * 7 + 3) % n_vocab;
  ContextOptions opts;
  opts.paged = true;
  opts.n_ctx = 10 * model::kSlotAlign;
  opts.n_seq = 4;
  opts.n_batch = 64;
  opts.n_ctx_seq = 4 * model::kSlotAlign;
  auto ctx = Context::create(*m, pool, opts);
  ASSERT_TRUE(ctx.ok()) << ctx.error();
  ASSERT_EQ((*ctx)->n_blocks(), 10);
  // Scattered blocks: A in three runs, B in one.
  const std::vector<int32_t> ba = {5, 2, 8}, bb = {0, 1};
  const PagedRun together = run_paged(**ctx, pa, pb, ba, bb, 23, true);
  for (int b : {0, 1, 2, 5, 8}) (*ctx)->clear_block(b);
  const PagedRun alone = run_paged(**ctx, pa, pb, ba, bb, 23, false);
  EXPECT_EQ(together.a, alone.a);
  EXPECT_EQ(together.b, alone.b);
  // Another split of the prompts, the same bits.
  for (int b : {0, 1, 2, 5, 8}) (*ctx)->clear_block(b);
  const PagedRun split = run_paged(**ctx, pa, pb, ba, bb, 32, true);
  EXPECT_EQ(together.a, split.a);
  EXPECT_EQ(together.b, split.b);
  // Against the sequence's own contiguous cache: equal bits when its blocks are one run and
  // no ring differs (llama-like), close otherwise (the runs are summed one after another).
  ContextOptions own;
  own.n_ctx = 4 * model::kSlotAlign;
  const auto ref_b = logits_after(*m, pb, 64, own, pool);
  const auto ref_a = logits_after(*m, pa, 64, own, pool);
  if (m->config().sliding_window == 0) {
    EXPECT_EQ(ref_b, together.b);
  }
  EXPECT_LT(max_abs_diff(ref_b, together.b), 1e-4f * range(ref_b));
  EXPECT_LT(max_abs_diff(ref_a, together.a), 1e-4f * range(ref_a));
}

TEST(ContextEvalBatch, BadInputIsAnErrorThatChangesNothing) {
  auto m = make_model("llama");
  ASSERT_TRUE(m);
  ThreadPool pool(2);
  ContextOptions opts;
  opts.paged = true;
  opts.n_ctx = 4 * model::kSlotAlign;
  opts.n_seq = 2;
  opts.n_batch = 32;
  auto ctx = Context::create(*m, pool, opts);
  ASSERT_TRUE(ctx.ok());
  const std::vector<int32_t> toks = {1, 2, 3}, blocks = {0}, bad_block = {7};
  const std::vector<int32_t> many(40, 1);
  EXPECT_FALSE((*ctx)->eval(toks).ok());  // a paged context evaluates through eval_batch
  model::SeqInput in{toks, 0, bad_block, true};
  auto r = (*ctx)->eval_batch({&in, 1});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("block 7"), std::string::npos) << r.error();
  in = {toks, 62, blocks, true};  // positions 62..64 need two blocks
  EXPECT_FALSE((*ctx)->eval_batch({&in, 1}).ok());
  in = {many, 0, blocks, true};  // more than the batch
  EXPECT_FALSE((*ctx)->eval_batch({&in, 1}).ok());
  model::SeqInput three[3] = {{toks, 0, blocks, true}, {toks, 0, blocks, true},
                              {toks, 0, blocks, true}};
  r = (*ctx)->eval_batch(three);  // more sequences with logits than n_seq
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("more than 2"), std::string::npos) << r.error();
  const std::vector<int32_t> oov = {m->config().n_vocab};
  in = {oov, 0, blocks, true};
  EXPECT_FALSE((*ctx)->eval_batch({&in, 1}).ok());
}

INSTANTIATE_TEST_SUITE_P(Archs, ArchTest, ::testing::Values("llama", "qwen2", "gemma3", "phi3"));

TEST(Gemma3Ring, SlidingLayersWithRingEqualFullCache) {
  auto spec = tiny::tiny_model_spec("gemma3");
  ASSERT_TRUE(spec.ok());
  auto m = make_model(*spec, "gemma3_ring");
  ASSERT_TRUE(m);
  ASSERT_GT(m->config().sliding_window, 0);
  const int window = m->config().sliding_window;
  ThreadPool pool(2);
  const auto prompt = prompt_of(3 * window + 5, m->config().n_vocab);
  ContextOptions full;  // rings only when window + n_batch - 1 < n_ctx
  full.n_ctx = 64;
  full.n_batch = 64;
  ContextOptions ring = full;
  ring.n_batch = 3;
  auto ctx = Context::create(*m, pool, ring);
  ASSERT_TRUE(ctx.ok());
  bool any_ring = false;
  for (int il = 0; il < m->config().n_layer; ++il) any_ring |= (*ctx)->cache().layer(il).ring;
  ASSERT_TRUE(any_ring);
  const auto a = logits_after(*m, prompt, 64, full, pool);
  EXPECT_LT(max_abs_diff(a, logits_after(*m, prompt, 3, ring, pool)), 1e-3f * range(a));
  EXPECT_LT(max_abs_diff(a, logits_after(*m, prompt, 1, ring, pool)), 1e-3f * range(a));
  // Rolling back inside a ring, then going on.
  auto c2 = Context::create(*m, pool, ring);
  ASSERT_TRUE(c2.ok());
  ASSERT_TRUE((*c2)->eval(prompt).ok());
  (*c2)->truncate(int(prompt.size()) - 2);
  auto r = (*c2)->eval(std::span(prompt).last(2));
  ASSERT_TRUE(r.ok());
  EXPECT_LT(max_abs_diff(a, {r->begin(), r->end()}), 1e-3f * range(a));
}

TEST(ModelLoad, MissingTensorIsNamed) {
  auto spec = tiny::tiny_model_spec("llama");
  ASSERT_TRUE(spec.ok());
  spec->drop_tensors = {"blk.1.attn_k.weight"};
  const std::string path = tiny_path("missing");
  ASSERT_TRUE(tiny::write_tiny_model(*spec, path).ok());
  auto m = Model::load(path);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.error().find("missing tensor blk.1.attn_k.weight"), std::string::npos) << m.error();
}

TEST(ModelLoad, UnknownArchitectureIsNamed) {
  auto spec = tiny::tiny_model_spec("llama");
  ASSERT_TRUE(spec.ok());
  spec->arch_name = "mamba9";
  const std::string path = tiny_path("unknown_arch");
  ASSERT_TRUE(tiny::write_tiny_model(*spec, path).ok());
  auto m = Model::load(path);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.error().find("architecture 'mamba9' is not supported"), std::string::npos)
      << m.error();
}

TEST(ContextEval, BadTokensAndOverflowAreErrorsThatChangeNothing) {
  auto m = make_model("llama");
  ASSERT_TRUE(m);
  ThreadPool pool(1);
  ContextOptions opts;
  opts.n_ctx = 8;
  auto ctx = Context::create(*m, pool, opts);
  ASSERT_TRUE(ctx.ok());
  const int32_t bad[2] = {1, m->config().n_vocab};
  auto r = (*ctx)->eval(bad);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("outside the vocabulary"), std::string::npos) << r.error();
  const auto nine = prompt_of(9, m->config().n_vocab);
  r = (*ctx)->eval(nine);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("9 tokens do not fit in the context of 8"), std::string::npos)
      << r.error();
  EXPECT_EQ((*ctx)->n_past(), 0);
}

TEST(SessionGenerate, GreedyIsDeterministicAndReusesThePrefix) {
  auto m = make_model("llama");
  ASSERT_TRUE(m);
  ASSERT_NE(m->tokenizer(), nullptr);
  ThreadPool pool(2);
  ContextOptions opts;
  opts.n_ctx = 64;
  auto s = engine::Session::create(*m, pool, opts);
  ASSERT_TRUE(s.ok());
  engine::GenerateOptions g;
  g.sampling.temperature = 0;
  g.num_predict = 8;
  const auto prompt = prompt_of(6, m->config().n_vocab);
  std::string text1, text2;
  auto r1 = (*s)->generate(prompt, g, [&](std::string_view p) {
    text1 += p;
    return true;
  });
  ASSERT_TRUE(r1.ok()) << r1.error();
  EXPECT_EQ(r1->prompt_evaluated, 6);
  auto r2 = (*s)->generate(prompt, g, [&](std::string_view p) {
    text2 += p;
    return true;
  });
  ASSERT_TRUE(r2.ok()) << r2.error();
  EXPECT_EQ(r2->prompt_evaluated, 1);  // the rest came from the cache
  EXPECT_EQ(r1->tokens, r2->tokens);
  EXPECT_EQ(text1, text2);
  if (r1->done_reason == "length") {
    EXPECT_EQ(r1->generated_tokens, 8);
  }

  // Sampling: the same seed gives the same tokens.
  g.sampling.temperature = 1.5f;
  g.sampling.top_k = 0;
  g.sampling.top_p = 1.0f;
  g.sampling.seed = 123;
  auto r3 = (*s)->generate(prompt, g, [](std::string_view) { return true; });
  auto r4 = (*s)->generate(prompt, g, [](std::string_view) { return true; });
  ASSERT_TRUE(r3.ok() && r4.ok());
  EXPECT_EQ(r3->tokens, r4->tokens);
}

TEST(SessionGenerate, PromptLongerThanTheContext) {
  auto m = make_model("llama");
  ASSERT_TRUE(m);
  ThreadPool pool(1);
  ContextOptions opts;
  opts.n_ctx = 16;
  auto s = engine::Session::create(*m, pool, opts);
  ASSERT_TRUE(s.ok());
  engine::GenerateOptions g;
  g.sampling.temperature = 0;
  g.num_predict = 30;
  const auto prompt = prompt_of(20, m->config().n_vocab);
  auto r = (*s)->generate(prompt, g, [](std::string_view) { return true; });
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("the prompt has 20 tokens, more than fit in the context of 16"),
            std::string::npos)
      << r.error();
  g.context_shift = true;
  g.n_keep = 2;
  r = (*s)->generate(prompt, g, [](std::string_view) { return true; });
  ASSERT_TRUE(r.ok()) << r.error();
  // Generation went on past the context size by shifting (unless the model ended itself).
  if (r->done_reason == "length") {
    EXPECT_EQ(r->generated_tokens, 30);
  }
}

}  // namespace
}  // namespace minnow
