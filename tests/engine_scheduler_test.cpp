// Continuous batching (engine::Scheduler) on tiny random-weight models, under the sanitizers:
// concurrent requests give the tokens each would get alone in a Session, a shared prefix is
// taken from the block cache, cancellation frees blocks at once, errors are clear.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "engine/scheduler.h"
#include "engine/session.h"
#include "model/model.h"
#include "support/tiny_model.h"

namespace minnow {
namespace {

std::unique_ptr<model::Model> tiny(const std::string& arch) {
  auto spec = tiny::tiny_model_spec(arch, TensorType::F32, "default");
  EXPECT_TRUE(spec.ok());
  const std::string path =
      (std::filesystem::path(::testing::TempDir()) / ("minnow_sched_" + arch + ".gguf")).string();
  EXPECT_TRUE(tiny::write_tiny_model(*spec, path).ok());
  auto m = model::Model::load(path);
  EXPECT_TRUE(m.ok()) << m.error();
  return m.ok() ? std::move(*m) : nullptr;
}

std::vector<int32_t> prompt_of(int n, int salt, int n_vocab) {
  std::vector<int32_t> p(n);
  for (int i = 0; i < n; ++i) p[i] = (i * 37 + salt * 101 + 11) % n_vocab;
  return p;
}

struct Out {
  engine::GenerateResult r;
  std::string text;
  std::string error;
};

Out session_generate(const model::Model& m, ThreadPool& pool, const std::vector<int32_t>& prompt,
                     const engine::GenerateOptions& g) {
  model::ContextOptions opts;
  opts.n_ctx = 512;
  auto s = engine::Session::create(m, pool, opts);
  EXPECT_TRUE(s.ok());
  Out o;
  auto r = (*s)->generate(prompt, g, [&](std::string_view p) {
    o.text += p;
    return true;
  });
  if (r.ok()) o.r = *r;
  else o.error = r.error();
  return o;
}

Out sched_generate(engine::Scheduler& s, const std::vector<int32_t>& prompt,
                   const engine::GenerateOptions& g, const std::atomic<bool>* cancel = nullptr) {
  Out o;
  auto r = s.generate(
      prompt, g,
      [&](std::string_view p) {
        o.text += p;
        return true;
      },
      {}, cancel);
  if (r.ok()) o.r = *r;
  else o.error = r.error();
  return o;
}

class SchedulerArch : public ::testing::TestWithParam<std::string> {};

TEST_P(SchedulerArch, ConcurrentRequestsGetWhatEachGetsAlone) {
  auto m = tiny(GetParam());
  ASSERT_TRUE(m);
  ThreadPool pool(2);
  engine::SchedulerOptions so;
  so.n_ctx = 512;
  so.max_seqs = 3;  // 6 requests: some wait for a place
  so.n_batch = 48;  // prompts are spread over several steps
  auto sched = engine::Scheduler::create(*m, pool, so);
  ASSERT_TRUE(sched.ok()) << sched.error();
  engine::GenerateOptions g;
  g.sampling.temperature = 0;
  g.sampling.repeat_penalty = 1.0f;
  g.num_predict = 24;
  const int n_vocab = m->config().n_vocab;
  std::vector<std::vector<int32_t>> prompts;
  for (int i = 0; i < 6; ++i) prompts.push_back(prompt_of(20 + 30 * i, i, n_vocab));
  std::vector<Out> got(prompts.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < prompts.size(); ++i)
    threads.emplace_back([&, i] { got[i] = sched_generate(**sched, prompts[i], g); });
  for (auto& t : threads) t.join();
  for (size_t i = 0; i < prompts.size(); ++i) {
    const Out want = session_generate(*m, pool, prompts[i], g);
    ASSERT_EQ(got[i].error, "") << i;
    EXPECT_EQ(got[i].r.tokens, want.r.tokens) << "request " << i;
    EXPECT_EQ(got[i].text, want.text) << "request " << i;
    EXPECT_EQ(got[i].r.done_reason, want.r.done_reason) << "request " << i;
    EXPECT_EQ(got[i].r.prompt_tokens, int(prompts[i].size()));
  }
  const auto st = (*sched)->stats();
  EXPECT_EQ(st.running, 0);
  EXPECT_EQ(st.blocks_used, 0);  // everything released; full blocks stay cached
  EXPECT_GT(st.steps, 0u);
}

INSTANTIATE_TEST_SUITE_P(Archs, SchedulerArch,
                         ::testing::Values("llama", "qwen2", "gemma3", "phi3"));

TEST(Scheduler, SharedPrefixComesFromTheBlockCache) {
  auto m = tiny("llama");
  ASSERT_TRUE(m);
  ThreadPool pool(2);
  engine::SchedulerOptions so;
  so.n_ctx = 512;
  so.max_seqs = 2;
  auto sched = engine::Scheduler::create(*m, pool, so);
  ASSERT_TRUE(sched.ok());
  engine::GenerateOptions g;
  g.sampling.temperature = 0;
  g.num_predict = 8;
  const int n_vocab = m->config().n_vocab;
  const auto system = prompt_of(200, 7, n_vocab);  // 3 full blocks
  auto a = system, b = system;
  for (int i = 0; i < 10; ++i) a.push_back((i * 13 + 5) % n_vocab);
  for (int i = 0; i < 12; ++i) b.push_back((i * 17 + 3) % n_vocab);
  const Out ra = sched_generate(**sched, a, g);
  ASSERT_EQ(ra.error, "");
  EXPECT_EQ(ra.r.prompt_evaluated, int(a.size()));
  const Out rb = sched_generate(**sched, b, g);
  ASSERT_EQ(rb.error, "");
  EXPECT_EQ(rb.r.prompt_evaluated, int(b.size()) - 192);  // 3 blocks of 64 reused
  EXPECT_EQ(rb.r.tokens, session_generate(*m, pool, b, g).r.tokens);
  EXPECT_EQ((*sched)->stats().prefix_blocks_reused, 3u);
  // The same prompt again: all but the block holding its last token is reused.
  const Out ra2 = sched_generate(**sched, a, g);
  EXPECT_EQ(ra2.r.prompt_evaluated, int(a.size()) - 192);
  EXPECT_EQ(ra2.r.tokens, ra.r.tokens);
}

TEST(Scheduler, CancelFreesBlocksAndOthersGoOn) {
  auto m = tiny("llama");
  ASSERT_TRUE(m);
  ThreadPool pool(2);
  engine::SchedulerOptions so;
  so.n_ctx = 256;
  so.max_seqs = 2;
  auto sched = engine::Scheduler::create(*m, pool, so);
  ASSERT_TRUE(sched.ok());
  engine::GenerateOptions g;
  g.sampling.temperature = 0;
  g.num_predict = 200;
  const int n_vocab = m->config().n_vocab;
  for (int id = 0; id < n_vocab; ++id) {  // no end of generation: only a cancel ends it early
    if (m->tokenizer()->is_eog(id)) g.sampling.logit_bias.push_back({id, -1e30f});
  }
  // A callback that says stop after 3 tokens: done_reason cancel, long before 200 tokens.
  int tokens = 0;
  auto r = (*sched)->generate(
      prompt_of(30, 1, n_vocab), g, [&](std::string_view) { return true; },
      [&](const engine::TokenEvent&) { return ++tokens < 3; });
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(r->done_reason, "cancel");
  EXPECT_LT(r->generated_tokens, 200);
  EXPECT_EQ(tokens, 3);  // nothing is delivered after the callback said stop
  // The cancel flag, as the server sets it when a client disconnects (here: after 2 tokens).
  std::atomic<bool> cancel{false};
  int seen = 0;
  Out c;
  auto rc = (*sched)->generate(
      prompt_of(40, 2, n_vocab), g, [&](std::string_view) { return true; },
      [&](const engine::TokenEvent&) {
        if (++seen == 2) cancel = true;
        return true;
      },
      &cancel);
  ASSERT_TRUE(rc.ok());
  c.r = *rc;
  EXPECT_LT(c.r.generated_tokens, 200);
  EXPECT_EQ(c.error, "");
  EXPECT_EQ(c.r.done_reason, "cancel");
  for (int i = 0; i < 100 && (*sched)->stats().blocks_used != 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));  // stats follow the answer
  EXPECT_EQ((*sched)->stats().blocks_used, 0);
  // A flag already set: the request ends before it starts.
  const Out d = sched_generate(**sched, prompt_of(40, 3, n_vocab), g, &cancel);
  EXPECT_EQ(d.r.done_reason, "cancel");
  EXPECT_EQ(d.r.generated_tokens, 0);
}

TEST(Scheduler, ErrorsAreClearAndDoNotStopTheOthers) {
  auto m = tiny("llama");
  ASSERT_TRUE(m);
  ThreadPool pool(2);
  engine::SchedulerOptions so;
  so.n_ctx = 64;
  auto sched = engine::Scheduler::create(*m, pool, so);
  ASSERT_TRUE(sched.ok());
  engine::GenerateOptions g;
  g.sampling.temperature = 0;
  g.num_predict = 4;
  const int n_vocab = m->config().n_vocab;
  const Out big = sched_generate(**sched, prompt_of(100, 1, n_vocab), g);
  EXPECT_NE(big.error.find("the prompt has 100 tokens, more than fit in the context of 64"),
            std::string::npos)
      << big.error;
  const std::vector<int32_t> bad = {1, n_vocab + 5};
  const Out oov = sched_generate(**sched, bad, g);
  EXPECT_NE(oov.error.find("outside the vocabulary"), std::string::npos) << oov.error;
  g.sampling.top_p = 7;  // invalid
  const Out badp = sched_generate(**sched, prompt_of(5, 1, n_vocab), g);
  EXPECT_NE(badp.error, "");
  g.sampling.top_p = 1;
  const Out ok = sched_generate(**sched, prompt_of(5, 1, n_vocab), g);
  EXPECT_EQ(ok.error, "");
  // Reaching the context: done_reason length (as in a Session, the last token sampled is
  // returned without being evaluated).
  g.num_predict = -1;
  const Out full = sched_generate(**sched, prompt_of(50, 2, n_vocab), g);
  EXPECT_EQ(full.error, "");
  if (full.r.done_reason == "length") {
    EXPECT_EQ(50 + full.r.generated_tokens, 65);
  }
}

}  // namespace
}  // namespace minnow
