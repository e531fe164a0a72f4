// Sampler chain cost (Google Benchmark): ns per sample() on random logits for the vocabulary
// sizes of SmolLM2 (49,152) and Gemma 3 (262,144).
//
//   build/minnow_sampling_bench [--benchmark_filter=Default]
//
// Greedy and the Ollama default chain (temperature 0.8, top_k 40, top_p 0.9, repeat penalty
// 1.1 over the last 64 tokens, every sampled token accepted), with and without 20 logprobs,
// and top_k off (top_p over the whole vocabulary, on the random rows and on a peaked one). Beside
// them, the ways of finding the top 40 of a row: the sampler's blocked heap, std::nth_element +
// sort on a copy, std::partial_sort on a copy, and a full std::sort — the reason the chain uses the
// first.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <random>
#include <vector>

#include "sampling/fast_math.h"
#include "sampling/sampler.h"

namespace {

using minnow::sampling::Candidate;
using minnow::sampling::Sampler;
using minnow::sampling::SamplingParams;

// Four rows of N(0, 3) logits, cycled so that no single row stays hot in L1.
const std::vector<std::vector<float>>& rows(size_t n_vocab) {
  static std::vector<std::vector<float>> cache[2];
  auto& r = cache[n_vocab > 100000];
  if (r.empty()) {
    std::mt19937 rng{uint32_t(n_vocab)};
    std::normal_distribution<float> d(0.0f, 3.0f);
    r.resize(4);
    for (auto& row : r) {
      row.resize(n_vocab);
      for (float& x : row) x = d(rng);
    }
  }
  return r;
}

void run_chain(benchmark::State& state, SamplingParams p) {
  const auto n_vocab = int32_t(state.range(0));
  const auto& r = rows(size_t(n_vocab));
  p.seed = 1;
  auto s = Sampler::create(p, n_vocab);
  if (!s.ok()) {
    state.SkipWithError(s.error().c_str());
    return;
  }
  size_t i = 0;
  for (auto _ : state) {
    const int32_t t = s->sample(r[i++ % r.size()]);
    s->accept(t);
    benchmark::DoNotOptimize(t);
  }
}

void BM_Greedy(benchmark::State& state) {
  SamplingParams p;
  p.temperature = 0.0f;
  p.repeat_penalty = 1.0f;
  run_chain(state, p);
}

void BM_GreedyPenalised(benchmark::State& state) {
  SamplingParams p;
  p.temperature = 0.0f;
  run_chain(state, p);
}

void BM_Default(benchmark::State& state) { run_chain(state, SamplingParams()); }

void BM_DefaultLogprobs20(benchmark::State& state) {
  SamplingParams p;
  p.n_logprobs = 20;
  run_chain(state, p);
}

void BM_TopKOffTopP09(benchmark::State& state) {
  SamplingParams p;
  p.top_k = 0;
  run_chain(state, p);
}

// A peaked row, as a model's usually is: 8 tokens 15-22 above the N(0, 3) bulk hold nearly all
// the mass, so the best 256 reach top_p.
void BM_TopKOffTopP09Peaked(benchmark::State& state) {
  const auto n_vocab = int32_t(state.range(0));
  std::vector<float> row = rows(size_t(n_vocab))[0];
  for (int i = 0; i < 8; ++i) row[size_t(i) * 997 % row.size()] = 15.0f + float(i);
  SamplingParams p;
  p.top_k = 0;
  p.seed = 1;
  auto s = Sampler::create(p, n_vocab);
  for (auto _ : state) {
    const int32_t t = s->sample(row);
    s->accept(t);
    benchmark::DoNotOptimize(t);
  }
}

void BM_LogSumExp(benchmark::State& state) {
  const auto& r = rows(size_t(state.range(0)));
  size_t i = 0;
  for (auto _ : state) benchmark::DoNotOptimize(minnow::sampling::log_sum_exp(r[i++ % 4]));
}

// The top 40 of a row, four ways.
void BM_Top40Heap(benchmark::State& state) {
  const auto& r = rows(size_t(state.range(0)));
  std::vector<Candidate> out(40);
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(minnow::sampling::select_top_k(r[i++ % 4], 40, out.data()));
    benchmark::ClobberMemory();
  }
}

template <int kMethod>
void BM_Top40Std(benchmark::State& state) {
  const auto& r = rows(size_t(state.range(0)));
  std::vector<Candidate> c(r[0].size());
  auto better = [](const Candidate& a, const Candidate& b) {
    return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
  };
  size_t i = 0;
  for (auto _ : state) {
    const auto& row = r[i++ % 4];
    for (size_t j = 0; j < row.size(); ++j) c[j] = {row[j], int32_t(j)};
    if (kMethod == 0) {
      std::nth_element(c.begin(), c.begin() + 40, c.end(), better);
      std::sort(c.begin(), c.begin() + 40, better);
    } else if (kMethod == 1) {
      std::partial_sort(c.begin(), c.begin() + 40, c.end(), better);
    } else {
      std::sort(c.begin(), c.end(), better);
    }
    benchmark::DoNotOptimize(c[0]);
  }
}

#define VOCABS Arg(49152)->Arg(262144)->Unit(benchmark::kMicrosecond)
BENCHMARK(BM_Greedy)->VOCABS;
BENCHMARK(BM_GreedyPenalised)->VOCABS;
BENCHMARK(BM_Default)->VOCABS;
BENCHMARK(BM_DefaultLogprobs20)->VOCABS;
BENCHMARK(BM_TopKOffTopP09)->VOCABS;
BENCHMARK(BM_TopKOffTopP09Peaked)->VOCABS;
BENCHMARK(BM_LogSumExp)->VOCABS;
BENCHMARK(BM_Top40Heap)->VOCABS;
BENCHMARK(BM_Top40Std<0>)->Name("BM_Top40NthElement")->VOCABS;
BENCHMARK(BM_Top40Std<1>)->Name("BM_Top40PartialSort")->VOCABS;
BENCHMARK(BM_Top40Std<2>)->Name("BM_Top40FullSort")->VOCABS;

}  // namespace

BENCHMARK_MAIN();
