// `minnow bench MODEL [-p 512] [-n 128] [-r 5] [--threads N] [--json]`: prompt processing
// (pp<p>: p tokens in one call, batched) and generation (tg<n>: n single-token steps) in
// tokens/s, mean ± sd over r repetitions after one warm-up, like llama.cpp's llama-bench, so
// bench/compare.sh can set the two side by side. Also time to first token (a p-token prompt
// to its first sampled token) and peak resident memory.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/load.h"
#include "kernels/matmul.h"
#include "model/context.h"

namespace minnow::cli {
namespace {

struct BenchArgs {
  std::string model;
  int n_prompt = 512;
  int n_gen = 128;
  int reps = 5;
  int threads = 0;
  int batch = 512;
  int parallel = 1;  // > 1: also tg<n> with this many sequences decoding in one batch
  bool json = false;
};

using Clock = std::chrono::steady_clock;

struct Series {
  std::string test;
  int n_prompt = 0, n_gen = 0;
  std::vector<double> ts;  // tokens/s per repetition
  double mean() const {
    double s = 0;
    for (double v : ts) s += v;
    return ts.empty() ? 0 : s / ts.size();
  }
  double sd() const {
    if (ts.size() < 2) return 0;
    const double m = mean();
    double s = 0;
    for (double v : ts) s += (v - m) * (v - m);
    return std::sqrt(s / (ts.size() - 1));
  }
};

uint64_t peak_rss_bytes() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return uint64_t(ru.ru_maxrss) * 1024;  // Linux reports KiB
}

int argmax(std::span<const float> l) {
  return int(std::max_element(l.begin(), l.end()) - l.begin());
}

void run_bench(const BenchArgs& a) {
  if (a.n_prompt < 0 || a.n_gen < 0 || a.reps < 1 || (a.n_prompt == 0 && a.n_gen == 0)) {
    throw std::runtime_error("need -p >= 0, -n >= 0 (not both 0) and -r >= 1");
  }
  auto m = load_model(a.model, model::LoadOptions{false});
  ThreadPool pool(thread_count(a.threads));
  model::ContextOptions opts;
  opts.n_ctx = std::max(a.n_prompt + a.n_gen, 16);
  opts.n_batch = a.batch;
  auto ctx = model::Context::create(*m, pool, opts);
  if (!ctx) throw std::runtime_error(ctx.error());
  model::Context& c = **ctx;

  // Random tokens (fixed seed), as llama-bench uses: speed does not depend on the text.
  std::mt19937 rng(42);
  std::uniform_int_distribution<int32_t> pick(0, m->config().n_vocab - 1);
  std::vector<int32_t> prompt(std::max(a.n_prompt, 1));
  for (auto& t : prompt) t = pick(rng);
  auto eval = [&](std::span<const int32_t> toks) {
    auto r = c.eval(toks);
    if (!r) throw std::runtime_error(r.error());
    return *r;
  };

  Series pp{"pp" + std::to_string(a.n_prompt), a.n_prompt, 0, {}};
  Series tg{"tg" + std::to_string(a.n_gen), 0, a.n_gen, {}};
  std::vector<double> ttft;
  // Warm-up: page in the weights, spin up the pool.
  c.truncate(0);
  eval(std::span(prompt).first(std::min<size_t>(prompt.size(), 32)));
  for (int r = 0; r < a.reps; ++r) {
    if (a.n_prompt > 0) {
      c.truncate(0);
      const auto t0 = Clock::now();
      auto logits = eval(prompt);
      const double s = std::chrono::duration<double>(Clock::now() - t0).count();
      argmax(logits);
      ttft.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
      pp.ts.push_back(a.n_prompt / s);
    }
    if (a.n_gen > 0) {
      c.truncate(0);
      int32_t tok = prompt[0];
      const auto t0 = Clock::now();
      for (int i = 0; i < a.n_gen; ++i) {
        const int32_t one[1] = {tok};
        tok = argmax(eval(one));
      }
      tg.ts.push_back(a.n_gen / std::chrono::duration<double>(Clock::now() - t0).count());
    }
  }
  double ttft_ms = 0;
  for (double t : ttft) ttft_ms += t / ttft.size();

  // Continuous batching's decode step: `parallel` sequences, one token each per forward pass
  // over a paged pool (what `minnow serve` runs); aggregate tokens/s.
  Series tgp{"tg" + std::to_string(a.n_gen) + "x" + std::to_string(a.parallel), 0, a.n_gen, {}};
  if (a.parallel > 1 && a.n_gen > 0) {
    const int per_seq = (a.n_gen + 1 + model::kSlotAlign - 1) / model::kSlotAlign;
    model::ContextOptions po;
    po.paged = true;
    po.n_seq = a.parallel;
    po.n_batch = std::max(a.batch, a.parallel);
    po.n_ctx_seq = per_seq * model::kSlotAlign;
    po.n_ctx = a.parallel * po.n_ctx_seq;
    auto pctx = model::Context::create(*m, pool, po);
    if (!pctx) throw std::runtime_error(pctx.error());
    std::vector<std::vector<int32_t>> blocks(a.parallel);
    for (int s = 0; s < a.parallel; ++s) {
      for (int b = 0; b < per_seq; ++b) blocks[s].push_back(s * per_seq + b);
    }
    const size_t n_vocab = size_t(m->config().n_vocab);
    for (int r = 0; r < a.reps + 1; ++r) {  // the first round warms up
      std::vector<int32_t> tok(a.parallel);
      for (int s = 0; s < a.parallel; ++s) tok[s] = prompt[s % prompt.size()];
      std::vector<model::SeqInput> in(a.parallel);
      const auto t0 = Clock::now();
      for (int i = 0; i < a.n_gen; ++i) {
        for (int s = 0; s < a.parallel; ++s) in[s] = {std::span(&tok[s], 1), i, blocks[s], true};
        auto l = (*pctx)->eval_batch(in);
        if (!l) throw std::runtime_error(l.error());
        for (int s = 0; s < a.parallel; ++s) tok[s] = argmax(l->subspan(s * n_vocab, n_vocab));
      }
      const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
      if (r > 0) tgp.ts.push_back(double(a.n_gen) * a.parallel / secs);
    }
  }

  const std::string target(kernel_target_name(kernels::matmul_target()));
  if (a.json) {
    nlohmann::ordered_json results = nlohmann::ordered_json::array();
    for (const Series* s : {&pp, &tg, &tgp}) {
      if (s->ts.empty()) continue;
      results.push_back({{"test", s->test},
                         {"n_prompt", s->n_prompt},
                         {"n_gen", s->n_gen},
                         {"avg_ts", s->mean()},
                         {"stddev_ts", s->sd()},
                         {"samples_ts", s->ts}});
    }
    nlohmann::ordered_json out = {{"model", a.model},
                                  {"file", m->path()},
                                  {"size_bytes", m->file().file_size()},
                                  {"n_params", m->n_params()},
                                  {"threads", pool.n_threads()},
                                  {"kernel_target", target},
                                  {"load_ms", m->load_ms()},
                                  {"peak_rss_bytes", peak_rss_bytes()},
                                  {"ttft_ms", ttft_ms},
                                  {"results", results}};
    std::cout << out.dump(2) << "\n";
    return;
  }
  std::printf("| %-24s | %10s | %8s | %-8s | %7s | %8s | %16s |\n", "model", "size", "params",
              "backend", "threads", "test", "t/s");
  std::printf("| %s | %s | %s | %s | %s | %s | %s |\n", std::string(24, '-').c_str(),
              std::string(10, '-').c_str(), std::string(8, '-').c_str(),
              std::string(8, '-').c_str(), std::string(7, '-').c_str(), std::string(8, '-').c_str(),
              std::string(16, '-').c_str());
  for (const Series* s : {&pp, &tg, &tgp}) {
    if (s->ts.empty()) continue;
    std::printf("| %-24s | %6.1f MiB | %6.1f M | %-8s | %7d | %8s | %7.2f ± %6.2f |\n",
                a.model.c_str(), m->file().file_size() / 1048576.0, m->n_params() / 1e6,
                target.c_str(), pool.n_threads(), s->test.c_str(), s->mean(), s->sd());
  }
  std::printf("\nload %.1f ms, time to first token (pp%d) %.1f ms, peak RSS %.1f MiB\n",
              m->load_ms(), a.n_prompt, ttft_ms, peak_rss_bytes() / 1048576.0);
}

}  // namespace

void register_bench(CLI::App& app) {
  auto a = std::make_shared<BenchArgs>();
  CLI::App* cmd =
      app.add_subcommand("bench", "Prompt-processing and generation speed (llama-bench style)");
  cmd->add_option("model", a->model, "Model name or .gguf path")->required();
  cmd->add_option("-p,--n-prompt", a->n_prompt, "Prompt tokens (pp test)")->capture_default_str();
  cmd->add_option("-n,--n-gen", a->n_gen, "Generated tokens (tg test)")->capture_default_str();
  cmd->add_option("-r,--repetitions", a->reps, "Repetitions")->capture_default_str();
  cmd->add_option("-t,--threads", a->threads, "Threads (0 = one per core)")->capture_default_str();
  cmd->add_option("-b,--batch", a->batch, "Prefill batch size")->capture_default_str();
  cmd->add_option("-P,--parallel", a->parallel,
                  "Also decode this many sequences together (tg<n>x<P>: aggregate tokens/s)")
      ->capture_default_str();
  cmd->add_flag("--json", a->json, "JSON output");
  cmd->callback([a] { run_bench(*a); });
}

}  // namespace minnow::cli
