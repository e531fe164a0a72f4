// minnow_kernels_bench: figures for the matmul kernels.
//
//   matmul/<type>/<cols>x<rows>/b<batch>/t<threads>   one matmul, weights in GGUF layout,
//       GB/s = weight bytes read per second, GFLOP/s = 2·rows·cols·batch per second.
//       Shapes are the real models' (written ne0 x ne1 as in GGUF: cols x rows).
//   pool_dispatch/t<threads>   one ThreadPool::parallel_for of empty chunks: the fixed
//       synchronisation cost of a parallel matmul.
//   read_bandwidth/t<threads>   streaming read through a 1 GiB buffer (4x the last-level
//       cache), 128 MiB per iteration: the machine's DRAM read bandwidth, the ceiling of a
//       decode step.
//   decode_sweep/<model>/<copies>/t<threads>   one batch-1 matmul over every weight matrix
//       of a real model in layer order (q, k, v, o, gate, up, down per layer, then the output
//       matrix), as one decode step does. With 1 copy the weights may sit in the last-level
//       cache; with enough distinct copies to exceed it twice over, every byte comes from
//       DRAM. GB/s = weight bytes per second.
//
// The kernel target is the one matmul selects ($MINNOW_KERNELS=scalar|avx2|avxvnni|avx512
// lowers it). A summary at the end relates the decode sweeps to the read bandwidth.
//
// Models are looked up in $MINNOW_CACHE (default ~/.cache/minnow/models).
#include <benchmark/benchmark.h>
#include <unistd.h>
#include <xmmintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "gguf/gguf.h"
#include "kernels/matmul.h"
#include "kernels/quants.h"
#include "util/cpu_features.h"
#include "util/thread_pool.h"

namespace minnow {
namespace {

using kernels::MatmulScratch;
using kernels::WeightView;

struct AlignedFree {
  void operator()(uint8_t* p) const { std::free(p); }
};
using Buffer = std::unique_ptr<uint8_t, AlignedFree>;

Buffer alloc_bytes(size_t n) {
  return Buffer(static_cast<uint8_t*>(std::aligned_alloc(64, (n + 63) / 64 * 64)));
}

ThreadPool& pool_for(int threads) {
  static std::map<int, std::unique_ptr<ThreadPool>> pools;
  auto& p = pools[threads];
  if (!p) p = std::make_unique<ThreadPool>(threads);
  return *p;
}

// The mean and best-iteration rates of each bandwidth benchmark, for the summary.
struct Rate {
  double mean_gbps = 0, best_gbps = 0;
};
std::map<std::string, Rate>& measured() {
  static std::map<std::string, Rate> m;
  return m;
}

// Times each iteration: the mean rate, and the rate of the fastest iteration (on a machine
// shared with other work the mean absorbs preemptions; the best shows what the code does
// when it has the cores).
class Timing {
 public:
  void start() { t0_ = std::chrono::steady_clock::now(); }
  void stop() {
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
    total_s_ += s;
    best_s_ = std::min(best_s_, s);
    ++n_;
  }
  void report(benchmark::State& state, const std::string& name, double gb_per_iter) {
    if (n_ == 0) return;
    Rate r{gb_per_iter * n_ / total_s_, gb_per_iter / best_s_};
    measured()[name] = r;
    state.counters["GB/s"] = r.mean_gbps;
    state.counters["best_GB/s"] = r.best_gbps;
  }

 private:
  std::chrono::steady_clock::time_point t0_;
  double total_s_ = 0, best_s_ = 1e30;
  int64_t n_ = 0;
};

// ---- synthetic weight matrices ----

// rows x cols of `type`: kDistinct random rows quantized with the reference quantizer, then
// repeated (the kernels' speed does not depend on the values, and quantizing 170M elements
// with the reference would take minutes). Cached: the big output matrices are reused.
struct Matrix {
  Buffer data;
  WeightView view;
  size_t bytes = 0;
};

const Matrix& matrix(TensorType type, int64_t rows, int64_t cols) {
  static std::map<std::tuple<int, int64_t, int64_t>, Matrix> cache;
  auto key = std::make_tuple(static_cast<int>(type), rows, cols);
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  constexpr int64_t kDistinct = 64;
  const size_t rb = row_bytes(traits(type), cols);
  Matrix m;
  m.bytes = rb * rows;
  m.data = alloc_bytes(m.bytes);
  std::mt19937 rng(42);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> src(cols);
  for (int64_t r = 0; r < std::min(rows, kDistinct); ++r) {
    for (auto& v : src) v = dist(rng);
    kernels::quantize_row_ref(type, src.data(), m.data.get() + r * rb, cols);
  }
  for (int64_t r = kDistinct; r < rows; ++r)
    std::memcpy(m.data.get() + r * rb, m.data.get() + (r % kDistinct) * rb, rb);
  m.view = WeightView{type, m.data.get(), rows, cols};
  return cache.emplace(key, std::move(m)).first->second;
}

std::vector<float> random_activations(int64_t n) {
  std::mt19937 rng(7);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

void run_matmul(benchmark::State& state, TensorType type, int64_t rows, int64_t cols, int64_t batch,
                int threads) {
  const Matrix& m = matrix(type, rows, cols);
  std::vector<float> x = random_activations(batch * cols);
  std::vector<float> y(batch * rows);
  MatmulScratch scratch;
  auto span = scratch.get(kernels::matmul_scratch_bytes(type, cols, batch));
  ThreadPool& pool = pool_for(threads);
  // Besides the mean rate, the rate of the fastest single call: on a machine shared with
  // other work the mean absorbs preemptions, the best call shows what the kernel does when it
  // has the cores.
  double best_s = 1e30;
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    Status st = kernels::matmul(m.view, x.data(), batch, y.data(), pool, span);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
    best_s = std::min(best_s,
                      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    if (!st.ok()) {
      state.SkipWithError(st.message().c_str());
      break;
    }
  }
  const double gb = static_cast<double>(m.bytes) * 1e-9;
  const double gflop = 2e-9 * static_cast<double>(rows * cols * batch);
  state.counters["GB/s"] = benchmark::Counter(gb, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["GFLOP/s"] =
      benchmark::Counter(gflop, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["best_GB/s"] = gb / best_s;
  state.counters["best_GFLOP/s"] = gflop / best_s;
}

// ---- streaming read bandwidth ----

// Sums 64-bit words with 8 independent accumulators (the compiler vectorizes it with SSE2
// loads, far more than enough to keep up with DRAM) and prefetches 4 KiB ahead, which
// measured ~25% more bandwidth than relying on the hardware prefetchers alone on this VM:
// the figure is meant as the ceiling, so it uses the best plain read loop we have.
uint64_t read_sum(const uint64_t* p, size_t n) {
  uint64_t a[8] = {};
  for (size_t i = 0; i + 8 <= n; i += 8) {
    _mm_prefetch(reinterpret_cast<const char*>(p + i) + 4096, _MM_HINT_T0);
    for (int k = 0; k < 8; ++k) a[k] += p[i + k];
  }
  uint64_t s = 0;
  for (uint64_t v : a) s += v;
  return s;
}

void run_read_bandwidth(benchmark::State& state, int threads) {
  // Each iteration reads the next 128 MiB of a 1 GiB buffer: the buffer is 4x the LLC, so
  // every byte comes from DRAM, and an iteration is about as long as a decode sweep, so the
  // best iterations of both are comparable on a machine shared with other work.
  constexpr size_t kBytes = size_t{1} << 30;
  constexpr size_t kSliceBytes = size_t{128} << 20;
  constexpr int kSlices = static_cast<int>(kBytes / kSliceBytes);
  static Buffer buf;
  if (!buf) {
    buf = alloc_bytes(kBytes);
    std::memset(buf.get(), 1, kBytes);  // fault every page in before timing
  }
  ThreadPool& pool = pool_for(threads);
  // Each slice in 16 parts claimed dynamically: a thread slowed down by another process
  // does not stall the whole read.
  constexpr int kParts = 16;
  constexpr size_t kPartWords = kSliceBytes / 8 / kParts;
  std::vector<uint64_t> sums(kParts);
  Timing timing;
  int slice = 0;
  for (auto _ : state) {
    const auto* words = reinterpret_cast<const uint64_t*>(buf.get() + slice * kSliceBytes);
    timing.start();
    pool.parallel_for(kParts, [&](int64_t part, int) {
      sums[part] = read_sum(words + part * kPartWords, kPartWords);
    });
    benchmark::DoNotOptimize(sums.data());
    timing.stop();
    slice = (slice + 1) % kSlices;
  }
  timing.report(state, "read_bandwidth/t" + std::to_string(threads), kSliceBytes * 1e-9);
}

// ---- thread pool dispatch cost ----

// One parallel_for of `threads` empty chunks: the fixed cost every parallel matmul pays.
void run_dispatch(benchmark::State& state, int threads) {
  ThreadPool& pool = pool_for(threads);
  std::vector<int64_t> hits(threads, 0);
  for (auto _ : state) {
    pool.parallel_for(threads, [&](int64_t chunk, int) { ++hits[chunk]; });
    benchmark::ClobberMemory();
  }
  benchmark::DoNotOptimize(hits.data());
}

// ---- decode sweep over a real model ----

struct SweepModel {
  std::string name;
  std::unique_ptr<gguf::File> file;
  std::vector<WeightView> layers;  // in decode order, pointing into the mapped file
  size_t bytes = 0;
  int64_t max_cols = 0, max_rows = 0;
  std::vector<Buffer> copies;  // copy k of every matrix, back to back
  std::vector<std::vector<WeightView>> copy_views;
};

// Position of a tensor in one decode step: (layer, order within the layer); the output
// matrix last. Returns false for tensors a decode step does not multiply with.
bool decode_position(const gguf::TensorInfo& t, bool has_output, std::pair<int64_t, int>* pos) {
  static const char* kOrder[] = {"attn_q.weight",   "attn_k.weight",      "attn_v.weight",
                                 "attn_qkv.weight", "attn_output.weight", "ffn_gate.weight",
                                 "ffn_up.weight",   "ffn_down.weight"};
  if (t.n_dims != 2 || !kernels::matmul_supports(t.type)) return false;
  const std::string name(t.name);
  if (name == "output.weight" || (!has_output && name == "token_embd.weight")) {
    *pos = {1 << 30, 0};
    return true;
  }
  if (name.rfind("blk.", 0) != 0) return false;
  const size_t dot = name.find('.', 4);
  if (dot == std::string::npos) return false;
  const int64_t layer = std::atoll(name.substr(4, dot - 4).c_str());
  const std::string rest = name.substr(dot + 1);
  for (int i = 0; i < static_cast<int>(std::size(kOrder)); ++i) {
    if (rest == kOrder[i]) {
      *pos = {layer, i};
      return true;
    }
  }
  *pos = {layer, 100};  // any other matrix of the layer (experts, gates...)
  return true;
}

std::unique_ptr<SweepModel> load_sweep_model(const std::string& path, const std::string& name) {
  auto f = gguf::File::open(path);
  if (!f.ok()) return nullptr;
  auto m = std::make_unique<SweepModel>();
  m->name = name;
  m->file = std::move(f.value());
  const bool has_output = m->file->find_tensor("output.weight") != nullptr;
  std::vector<std::pair<std::pair<int64_t, int>, const gguf::TensorInfo*>> order;
  for (const auto& t : m->file->tensors()) {
    std::pair<int64_t, int> pos;
    if (decode_position(t, has_output, &pos)) order.push_back({pos, &t});
  }
  std::sort(order.begin(), order.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  for (const auto& [pos, t] : order) {
    WeightView v{t->type, t->data, static_cast<int64_t>(t->ne[1]), static_cast<int64_t>(t->ne[0])};
    m->layers.push_back(v);
    m->bytes += t->n_bytes;
    m->max_cols = std::max(m->max_cols, v.cols);
    m->max_rows = std::max(m->max_rows, v.rows);
  }
  return m;
}

size_t last_level_cache_bytes() {
  long l3 = sysconf(_SC_LEVEL3_CACHE_SIZE);
  return l3 > 0 ? static_cast<size_t>(l3) : size_t{32} << 20;
}

// Distinct copies of all the model's matrices, enough to exceed twice the LLC.
int dram_copies(const SweepModel& m) {
  return static_cast<int>((2 * last_level_cache_bytes() + m.bytes - 1) / m.bytes);
}

void ensure_copies(SweepModel& m, int copies) {
  while (static_cast<int>(m.copies.size()) < copies) {
    Buffer buf = alloc_bytes(m.bytes + 64 * m.layers.size());
    std::vector<WeightView> views;
    size_t off = 0;
    for (const WeightView& v : m.layers) {
      const size_t n = row_bytes(traits(v.type), v.cols) * v.rows;
      std::memcpy(buf.get() + off, v.data, n);
      views.push_back(WeightView{v.type, buf.get() + off, v.rows, v.cols});
      off += (n + 63) / 64 * 64;
    }
    m.copies.push_back(std::move(buf));
    m.copy_views.push_back(std::move(views));
  }
}

void run_decode_sweep(benchmark::State& state, const std::string& bench_name, SweepModel* m,
                      int copies, int threads) {
  std::vector<const std::vector<WeightView>*> sets;
  if (copies == 0) {
    sets.push_back(&m->layers);  // the mapped file itself
  } else {
    ensure_copies(*m, copies);
    for (int k = 0; k < copies; ++k) sets.push_back(&m->copy_views[k]);
  }
  std::vector<float> x = random_activations(m->max_cols);
  std::vector<float> y(m->max_rows);
  MatmulScratch scratch;
  scratch.reserve(kernels::matmul_scratch_bytes(TensorType::Q8_K, m->max_cols, 1) +
                  kernels::matmul_scratch_bytes(TensorType::Q8_0, m->max_cols, 1));
  ThreadPool& pool = pool_for(threads);
  auto sweep = [&](const std::vector<WeightView>& views) {
    for (const WeightView& v : views) {
      Status st = kernels::matmul(v, x.data(), 1, y.data(), pool,
                                  scratch.get(kernels::matmul_scratch_bytes(v.type, v.cols, 1)));
      if (!st.ok()) return st;
    }
    return Status();
  };
  for (const auto* s : sets) {
    if (Status st = sweep(*s); !st.ok()) {  // warm-up: page faults, first touch
      state.SkipWithError(st.message().c_str());
      return;
    }
  }
  size_t k = 0;
  Timing timing;
  for (auto _ : state) {
    timing.start();
    (void)sweep(*sets[k]);
    benchmark::DoNotOptimize(y.data());
    timing.stop();
    k = (k + 1) % sets.size();
  }
  timing.report(state, bench_name, static_cast<double>(m->bytes) * 1e-9);
  state.counters["MB"] = static_cast<double>(m->bytes) * 1e-6;
}

// ---- registration ----

struct Shape {
  TensorType type;
  int64_t cols, rows;  // ne0 x ne1
  bool output;         // the vocabulary-sized output matrix: decode / small batches only
};

const Shape kShapes[] = {
    // SmolLM2-135M Q4_1 (output: token_embd Q8_0)
    {TensorType::Q4_1, 576, 576, false},
    {TensorType::Q4_1, 576, 192, false},
    {TensorType::Q4_1, 576, 1536, false},
    {TensorType::Q4_1, 1536, 576, false},
    {TensorType::Q8_0, 576, 49152, true},
    // Gemma-3-270M Q4_K_M (output: token_embd Q8_0)
    {TensorType::Q5_0, 640, 1024, false},
    {TensorType::Q5_0, 640, 256, false},
    {TensorType::Q5_0, 640, 2048, false},
    {TensorType::Q8_0, 640, 256, false},
    {TensorType::Q4_K, 1024, 640, false},
    {TensorType::Q4_K, 2048, 640, false},
    {TensorType::Q6_K, 2048, 640, false},
    {TensorType::Q8_0, 640, 262144, true},
    // Float weights at an FFN shape.
    {TensorType::F16, 576, 1536, false},
    {TensorType::F32, 576, 1536, false},
};

std::string models_dir() {
  if (const char* c = std::getenv("MINNOW_CACHE")) return c;
  const char* home = std::getenv("HOME");
  return std::string(home ? home : "") + "/.cache/minnow/models";
}

std::vector<std::unique_ptr<SweepModel>>& sweep_models() {
  static std::vector<std::unique_ptr<SweepModel>> m;
  return m;
}

void register_all() {
  for (const Shape& s : kShapes) {
    for (int64_t batch : {1, 8, 32, 512}) {
      if (s.output && batch > 32) continue;  // ~1 s per call at 512
      for (int threads : {1, 2}) {
        const std::string name = "matmul/" + std::string(tensor_type_name(s.type)) + "/" +
                                 std::to_string(s.cols) + "x" + std::to_string(s.rows) + "/b" +
                                 std::to_string(batch) + "/t" + std::to_string(threads);
        benchmark::RegisterBenchmark(
            name.c_str(),
            [=](benchmark::State& st) { run_matmul(st, s.type, s.rows, s.cols, batch, threads); })
            ->UseRealTime()
            ->Unit(benchmark::kMicrosecond);
      }
    }
  }
  for (int threads : {2, 3}) {
    benchmark::RegisterBenchmark(("pool_dispatch/t" + std::to_string(threads)).c_str(),
                                 [=](benchmark::State& st) { run_dispatch(st, threads); })
        ->UseRealTime();
  }
  for (int threads : {1, 2}) {
    benchmark::RegisterBenchmark(("read_bandwidth/t" + std::to_string(threads)).c_str(),
                                 [=](benchmark::State& st) { run_read_bandwidth(st, threads); })
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
  }
  const std::pair<const char*, const char*> kModels[] = {
      {"SmolLM2-135M-Instruct.Q4_1.gguf", "SmolLM2-135M-Q4_1"},
      {"gemma-3-270m-q4_k_m.gguf", "gemma-3-270m-Q4_K_M"},
  };
  for (const auto& [file, name] : kModels) {
    auto m = load_sweep_model(models_dir() + "/" + file, name);
    if (!m) {
      std::fprintf(stderr, "decode_sweep: %s not found in %s, skipped\n", file,
                   models_dir().c_str());
      continue;
    }
    SweepModel* mp = m.get();
    sweep_models().push_back(std::move(m));
    const int copies = dram_copies(*mp);
    for (int threads : {1, 2}) {
      for (int c : {0, copies}) {
        const std::string label = c == 0 ? "mapped_file" : std::to_string(c) + "_copies";
        const std::string bname =
            "decode_sweep/" + mp->name + "/" + label + "/t" + std::to_string(threads);
        benchmark::RegisterBenchmark(
            bname.c_str(),
            [=](benchmark::State& st) { run_decode_sweep(st, bname, mp, c, threads); })
            ->UseRealTime()
            ->Unit(benchmark::kMillisecond);
      }
    }
  }
}

void print_summary() {
  const auto& g = measured();
  std::printf("\nkernel target: %s; LLC %zu MiB\n",
              std::string(kernel_target_name(kernels::matmul_target())).c_str(),
              last_level_cache_bytes() >> 20);
  for (const auto& [name, rate] : g) {
    if (name.rfind("read_bandwidth/", 0) == 0) {
      std::printf("%-50s mean %6.2f GB/s  best %6.2f GB/s\n", name.c_str(), rate.mean_gbps,
                  rate.best_gbps);
    }
  }
  for (const auto& [name, rate] : g) {
    if (name.rfind("decode_sweep/", 0) != 0) continue;
    const std::string t = name.substr(name.rfind("/t") + 1);
    auto bw = g.find("read_bandwidth/" + t);
    std::printf("%-50s mean %6.2f GB/s  best %6.2f GB/s", name.c_str(), rate.mean_gbps,
                rate.best_gbps);
    if (bw != g.end() && bw->second.best_gbps > 0) {
      std::printf("  = %5.1f%% (mean/mean), %5.1f%% (best/best) of read bandwidth %s",
                  100.0 * rate.mean_gbps / bw->second.mean_gbps,
                  100.0 * rate.best_gbps / bw->second.best_gbps, t.c_str());
    }
    std::printf("\n");
  }
}

}  // namespace
}  // namespace minnow

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  minnow::register_all();
  benchmark::RunSpecifiedBenchmarks();
  minnow::print_summary();
  benchmark::Shutdown();
  return 0;
}
