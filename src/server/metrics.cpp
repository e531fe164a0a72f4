#include "server/metrics.h"

#include <cstdio>

namespace minnow::server {

void Histogram::observe(double seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  size_t i = 0;
  while (i < kBounds.size() && seconds > kBounds[i]) ++i;
  ++counts_[i];
  sum_ += seconds;
  ++count_;
}

std::string Histogram::render(const std::string& name, const std::string& help) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string out = "# HELP " + name + " " + help + "\n# TYPE " + name + " histogram\n";
  uint64_t cumulative = 0;
  char buf[160];
  for (size_t i = 0; i < kBounds.size(); ++i) {
    cumulative += counts_[i];
    std::snprintf(buf, sizeof(buf), "%s_bucket{le=\"%g\"} %llu\n", name.c_str(), kBounds[i],
                  static_cast<unsigned long long>(cumulative));
    out += buf;
  }
  cumulative += counts_.back();
  std::snprintf(buf, sizeof(buf), "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.9g\n%s_count %llu\n",
                name.c_str(), static_cast<unsigned long long>(cumulative), name.c_str(), sum_,
                name.c_str(), static_cast<unsigned long long>(count_));
  out += buf;
  return out;
}

void Metrics::request(const std::string& endpoint, int status) {
  std::lock_guard<std::mutex> lock(mu_);
  ++requests_[{endpoint, status}];
}

std::string Metrics::render(const Gauges& g) const {
  std::string out;
  char buf[256];
  out += "# HELP minnow_requests_total HTTP requests by endpoint and status.\n";
  out += "# TYPE minnow_requests_total counter\n";
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [key, n] : requests_) {
      std::snprintf(buf, sizeof(buf), "minnow_requests_total{endpoint=\"%s\",status=\"%d\"} %llu\n",
                    key.first.c_str(), key.second, static_cast<unsigned long long>(n));
      out += buf;
    }
  }
  auto gauge = [&](const char* name, const char* help, double v, const char* type = "gauge") {
    std::snprintf(buf, sizeof(buf), "# HELP %s %s\n# TYPE %s %s\n%s %.17g\n", name, help, name,
                  type, name, v);
    out += buf;
  };
  gauge("minnow_queue_depth", "Requests waiting for a place in a batch.", double(g.queued));
  gauge("minnow_running_sequences", "Sequences generating now.", double(g.running));
  gauge("minnow_prompt_tokens_total", "Prompt tokens evaluated.", double(prompt_tokens.load()),
        "counter");
  gauge("minnow_generated_tokens_total", "Tokens generated.", double(generated_tokens.load()),
        "counter");
  gauge("minnow_kv_cache_bytes", "KV cache memory of the loaded models.", double(g.kv_bytes));
  gauge("minnow_kv_cache_used_bytes", "KV cache blocks held by running sequences.",
        double(g.kv_used_bytes));
  gauge("minnow_kv_cache_prefix_bytes", "KV cache blocks kept for prefix reuse.",
        double(g.kv_cached_bytes));
  gauge("minnow_prefix_blocks_reused_total", "KV blocks of 64 positions taken from the prefix cache.",
        double(g.prefix_blocks_reused), "counter");
  gauge("minnow_loaded_models", "Models loaded.", double(g.loaded_models));
  out += ttft.render("minnow_time_to_first_token_seconds", "Time from request to first token.");
  out += inter_token.render("minnow_inter_token_seconds", "Time between generated tokens.");
  return out;
}

Metrics& metrics() {
  static Metrics m;
  return m;
}

}  // namespace minnow::server
