// Server metrics in Prometheus' text exposition format (GET /metrics): requests by endpoint and
// status, queue depth, running sequences, prompt and generated tokens, time-to-first-token and
// inter-token latency histograms, KV cache bytes and loaded models.
#pragma once

#include <array>
#include <atomic>
#include <map>
#include <mutex>
#include <string>
#include <utility>

namespace minnow::server {

class Histogram {
 public:
  static constexpr std::array<double, 12> kBounds = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                     0.5,   1,    2.5,   5,    10,  30};
  void observe(double seconds);
  std::string render(const std::string& name, const std::string& help) const;

 private:
  mutable std::mutex mu_;
  std::array<uint64_t, kBounds.size() + 1> counts_{};
  double sum_ = 0;
  uint64_t count_ = 0;
};

class Metrics {
 public:
  void request(const std::string& endpoint, int status);
  std::atomic<uint64_t> prompt_tokens{0};
  std::atomic<uint64_t> generated_tokens{0};
  Histogram ttft;
  Histogram inter_token;
  // What the loaded models' schedulers say now, gathered by the caller.
  struct Gauges {
    int64_t queued = 0;   // requests admitted, waiting for a place in a batch
    int64_t running = 0;  // sequences in a batch
    uint64_t kv_bytes = 0, kv_used_bytes = 0, kv_cached_bytes = 0;
    uint64_t prefix_blocks_reused = 0;
    size_t loaded_models = 0;
  };
  std::string render(const Gauges& g) const;

 private:
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;
};

Metrics& metrics();  // the process's

}  // namespace minnow::server
