// Tokenizer throughput (Google Benchmark): MB/s of English prose through each real model's
// tokenizer, the adversarial inputs of the linear-time tests, and streaming detokenization.
//
//   build/minnow_tokenizer_bench [--benchmark_filter=Prose]
//
// Models come from $MINNOW_CACHE (~/.cache/minnow/models). The prose is $MINNOW_BENCH_TEXT
// when set, else the license texts in /usr/share/common-licenses (about 300 KB of English),
// taken once: one call over the whole text (its words repeat, so the per-call word cache
// helps) and one call per paragraph (short inputs: no cache).
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "text/stream_decoder.h"
#include "text/tokenizer.h"

namespace {

using minnow::text::TokenId;
using minnow::text::Tokenizer;

std::string cache_dir() {
  if (const char* v = std::getenv("MINNOW_CACHE"); v && *v) return v;
  const char* home = std::getenv("HOME");
  return std::string(home ? home : ".") + "/.cache/minnow/models";
}

const Tokenizer* tokenizer(const std::string& file) {
  static std::map<std::string, std::unique_ptr<Tokenizer>> cache;
  auto it = cache.find(file);
  if (it != cache.end()) return it->second.get();
  auto tok = Tokenizer::load(cache_dir() + "/" + file);
  Tokenizer* p = tok ? tok->release() : nullptr;
  cache[file].reset(p);
  return p;
}

std::string read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

const std::string& prose() {
  static const std::string text = [] {
    std::string base;
    if (const char* v = std::getenv("MINNOW_BENCH_TEXT"); v && *v) {
      base = read_all(v);
    } else {
      std::error_code ec;
      for (const auto& e : std::filesystem::directory_iterator("/usr/share/common-licenses", ec)) {
        if (!e.is_symlink() && e.is_regular_file()) base += read_all(e.path().string());
      }
    }
    return base;
  }();
  return text;
}

std::vector<std::string> paragraphs() {
  std::vector<std::string> out;
  const std::string& t = prose();
  for (size_t pos = 0; pos < t.size();) {
    size_t end = t.find("\n\n", pos);
    end = end == std::string::npos ? t.size() : end + 2;
    out.push_back(t.substr(pos, end - pos));
    pos = end;
  }
  return out;
}

std::string adversarial(int kind, size_t n) {
  switch (kind) {
    case 0:
      return std::string(n, 'a');
    case 1:
      return std::string(n, ' ');
    default: {
      std::mt19937 rng(7);
      std::string s(n, 'a');
      for (char& c : s) c = static_cast<char>('a' + rng() % 26);
      return s;
    }
  }
}

void run_tokenize(benchmark::State& state, const char* file, const std::string& text) {
  const Tokenizer* tok = tokenizer(file);
  if (!tok) {
    state.SkipWithError((std::string(file) + " not found in the model cache").c_str());
    return;
  }
  if (text.empty()) {
    state.SkipWithError("no prose text (set MINNOW_BENCH_TEXT)");
    return;
  }
  size_t n_tokens = 0;
  for (auto _ : state) {
    auto ids = tok->tokenize(text, true, false);
    if (!ids) {
      state.SkipWithError(ids.error().c_str());
      return;
    }
    n_tokens = ids->size();
    benchmark::DoNotOptimize(ids->data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
  state.counters["tokens"] = static_cast<double>(n_tokens);
  state.counters["bytes_per_token"] =
      static_cast<double>(text.size()) / std::max<size_t>(1, n_tokens);
}

void BM_ProseSmolLM2(benchmark::State& state) {
  run_tokenize(state, "SmolLM2-135M-Instruct.Q4_1.gguf", prose());
}
void BM_ProseGemma3(benchmark::State& state) {
  run_tokenize(state, "gemma-3-270m-q4_k_m.gguf", prose());
}
BENCHMARK(BM_ProseSmolLM2)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ProseGemma3)->Unit(benchmark::kMillisecond);

void run_paragraphs(benchmark::State& state, const char* file) {
  const Tokenizer* tok = tokenizer(file);
  const std::vector<std::string> paras = paragraphs();
  if (!tok || paras.empty()) {
    state.SkipWithError("model or prose missing");
    return;
  }
  size_t bytes = 0;
  for (const std::string& p : paras) bytes += p.size();
  for (auto _ : state) {
    for (const std::string& p : paras) {
      auto ids = tok->tokenize(p, true, false);
      benchmark::DoNotOptimize(ids.ok());
    }
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes));
  state.counters["paragraphs"] = static_cast<double>(paras.size());
}
void BM_ParagraphsSmolLM2(benchmark::State& state) {
  run_paragraphs(state, "SmolLM2-135M-Instruct.Q4_1.gguf");
}
void BM_ParagraphsGemma3(benchmark::State& state) {
  run_paragraphs(state, "gemma-3-270m-q4_k_m.gguf");
}
BENCHMARK(BM_ParagraphsSmolLM2)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ParagraphsGemma3)->Unit(benchmark::kMillisecond);

// 1 MB of one character / of spaces / of letters without spaces.
void BM_AdversarialSmolLM2(benchmark::State& state) {
  run_tokenize(state, "SmolLM2-135M-Instruct.Q4_1.gguf",
               adversarial(static_cast<int>(state.range(0)), 1u << 20));
}
void BM_AdversarialGemma3(benchmark::State& state) {
  run_tokenize(state, "gemma-3-270m-q4_k_m.gguf",
               adversarial(static_cast<int>(state.range(0)), 1u << 20));
}
// kind: 0 = one repeated letter, 1 = spaces, 2 = random letters without spaces.
BENCHMARK(BM_AdversarialSmolLM2)->DenseRange(0, 2)->ArgName("kind")->Unit(benchmark::kMillisecond);
BENCHMARK(BM_AdversarialGemma3)->DenseRange(0, 2)->ArgName("kind")->Unit(benchmark::kMillisecond);

// Streaming detokenization of the prose's ids, one push per token.
void run_stream(benchmark::State& state, const char* file) {
  const Tokenizer* tok = tokenizer(file);
  if (!tok || prose().empty()) {
    state.SkipWithError("model or prose missing");
    return;
  }
  auto ids = tok->tokenize(prose(), true, false);
  if (!ids) {
    state.SkipWithError(ids.error().c_str());
    return;
  }
  size_t bytes = 0;
  for (auto _ : state) {
    minnow::text::StreamDecoder stream(*tok, {false, {"\nUser:"}});
    bytes = 0;
    for (TokenId id : *ids) bytes += stream.push(id).size();
    bytes += stream.finish().size();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes));
  state.counters["tokens"] = static_cast<double>(ids->size());
}
void BM_StreamSmolLM2(benchmark::State& state) {
  run_stream(state, "SmolLM2-135M-Instruct.Q4_1.gguf");
}
void BM_StreamGemma3(benchmark::State& state) { run_stream(state, "gemma-3-270m-q4_k_m.gguf"); }
BENCHMARK(BM_StreamSmolLM2)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_StreamGemma3)->Unit(benchmark::kMillisecond);

void BM_LoadTokenizer(benchmark::State& state, const char* file) {
  for (auto _ : state) {
    auto tok = Tokenizer::load(cache_dir() + "/" + file);
    if (!tok) {
      state.SkipWithError(tok.error().c_str());
      return;
    }
    benchmark::DoNotOptimize(tok->get());
  }
}
BENCHMARK_CAPTURE(BM_LoadTokenizer, smollm2, "SmolLM2-135M-Instruct.Q4_1.gguf")
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_LoadTokenizer, gemma3, "gemma-3-270m-q4_k_m.gguf")
    ->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
