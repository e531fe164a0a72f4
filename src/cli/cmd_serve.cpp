// `minnow serve [--host H] [--port P] [--threads N]`: the Ollama- and OpenAI-compatible HTTP
// server (src/server). MINNOW_HOST=host[:port] sets the address as OLLAMA_HOST does for
// Ollama; MINNOW_NUM_PARALLEL, MINNOW_CONTEXT_LENGTH, MINNOW_MAX_MEMORY, MINNOW_MAX_QUEUE,
// MINNOW_REQUEST_TIMEOUT, MINNOW_API_KEY and MINNOW_ORIGINS as README describes. SIGTERM / SIGINT: stop accepting, let in-flight requests finish (up to
// --drain-timeout seconds), exit 0.
#include <malloc.h>
#include <pthread.h>

#include <cctype>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>

#include "cli/commands.h"
#include "router/config.h"
#include "router/router.h"
#include "server/http.h"
#include "server/job.h"

namespace minnow::cli {
namespace {

struct ServeArgs {
  server::ServerOptions opts;
  std::string host;
  int port = 0;
  std::string router;
};

void apply_env(ServeArgs& a) {
  const char* env = std::getenv("MINNOW_HOST");
  if (!env || !*env) return;
  std::string v = env;
  if (v.rfind("http://", 0) == 0) v = v.substr(7);
  const auto colon = v.rfind(':');
  if (colon != std::string::npos) {
    a.opts.host = v.substr(0, colon);
    try {
      a.opts.port = std::stoi(v.substr(colon + 1));
    } catch (const std::exception&) {
      throw std::runtime_error("MINNOW_HOST='" + std::string(env) + "': the port is not a number");
    }
  } else {
    a.opts.host = v;
  }
}

// "8GiB", "512MB", "1.5G", "1000000" (bytes) -> bytes; powers of 1024 for K/M/G/T with or
// without "iB", as Ollama's memory settings read.
uint64_t parse_bytes(const std::string& name, const std::string& v) {
  size_t pos = 0;
  double n = 0;
  try {
    n = std::stod(v, &pos);
  } catch (const std::exception&) {
    pos = 0;
  }
  std::string unit = v.substr(pos);
  for (char& c : unit) c = char(std::toupper(static_cast<unsigned char>(c)));
  if (unit.size() > 1 && unit.back() == 'B') unit.pop_back();
  if (unit.size() > 1 && unit.back() == 'I') unit.pop_back();
  const std::string units = "KMGT";
  double mult = 1;
  if (unit.size() == 1 && units.find(unit[0]) != std::string::npos) {
    mult = std::pow(1024.0, double(units.find(unit[0]) + 1));
  } else if (!unit.empty() && unit != "B") {
    pos = 0;
  }
  if (pos == 0 || n < 0) {
    throw std::runtime_error(name + "='" + v + "': expected a size such as 8GiB, 512MB or a number of bytes");
  }
  return uint64_t(n * mult);
}

int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  try {
    size_t pos = 0;
    const int n = std::stoi(v, &pos);
    if (pos == std::string(v).size()) return n;
  } catch (const std::exception&) {
  }
  throw std::runtime_error(std::string(name) + "='" + v + "': expected a whole number");
}

void apply_limits_env(ServeArgs& a) {
  server::ServerOptions& o = a.opts;
  o.parallel = env_int("MINNOW_NUM_PARALLEL", o.parallel);
  o.num_ctx = env_int("MINNOW_CONTEXT_LENGTH", o.num_ctx);
  o.max_queue = env_int("MINNOW_MAX_QUEUE", o.max_queue);
  o.request_timeout_s = env_int("MINNOW_REQUEST_TIMEOUT", o.request_timeout_s);
  if (const char* m = std::getenv("MINNOW_MAX_MEMORY"); m && *m)
    o.max_memory_bytes = parse_bytes("MINNOW_MAX_MEMORY", m);
  if (const char* k = std::getenv("MINNOW_API_KEY"); k && *k) o.api_key = k;
  if (const char* origins = std::getenv("MINNOW_ORIGINS"); origins && *origins) {
    std::string list = origins;
    size_t start = 0;
    while (start <= list.size()) {
      const size_t comma = std::min(list.find(',', start), list.size());
      std::string item = list.substr(start, comma - start);
      item.erase(0, item.find_first_not_of(" \t"));
      item.erase(item.find_last_not_of(" \t") + 1);
      if (!item.empty()) o.origins.push_back(item);
      start = comma + 1;
    }
  }
  if (o.parallel < 1 || o.parallel > 256)
    throw std::runtime_error("MINNOW_NUM_PARALLEL must be between 1 and 256");
  if (o.num_ctx < 64) throw std::runtime_error("MINNOW_CONTEXT_LENGTH must be at least 64");
}

void serve(ServeArgs& a) {
  // Many connection threads each get a malloc arena by default, and memory freed in one is
  // kept there: two arenas keep the server's resident memory flat under load.
  mallopt(M_ARENA_MAX, 2);
  apply_env(a);
  apply_limits_env(a);
  if (!a.host.empty()) a.opts.host = a.host;
  if (a.port > 0) a.opts.port = a.port;
  // Signals go to one thread that waits for them; every other thread has them blocked.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  // The router: --router FILE, else $MINNOW_ROUTER / ~/.minnow/router.toml when it exists.
  std::string router_path = a.router;
  if (router_path.empty() && std::filesystem::exists(router::default_router_config_path()))
    router_path = router::default_router_config_path();
  if (!router_path.empty()) {
    auto cfg = router::load_router_config(router_path);
    if (!cfg.ok()) throw std::runtime_error(cfg.error());
    auto r = router::Router::create(std::move(*cfg));
    if (!r.ok()) throw std::runtime_error(router_path + ": " + r.error());
    std::string tiers;
    for (const auto& t : (*r)->config().tiers) tiers += (tiers.empty() ? "" : " -> ") + t.name;
    std::fprintf(stderr, "minnow: router '%s' (%s): %s\n", (*r)->name().c_str(),
                 router_path.c_str(), tiers.c_str());
    server::set_router(std::shared_ptr<router::Router>(std::move(*r)));
  }
  server::Server srv(a.opts);
  std::thread waiter([&srv, set, drain = a.opts.drain_timeout_s] {
    int sig = 0;
    sigwait(&set, &sig);
    std::fprintf(stderr, "minnow: %s, finishing requests in flight\n",
                 sig == SIGTERM ? "SIGTERM" : "SIGINT");
    srv.stop();
    // Requests still running after the deadline are cut off.
    std::this_thread::sleep_for(std::chrono::seconds(drain));
    std::fprintf(stderr, "minnow: drain deadline passed, exiting\n");
    std::_Exit(0);
  });
  waiter.detach();
  const Status s = srv.run();
  if (!s.ok()) throw std::runtime_error(s.message());
  std::fprintf(stderr, "minnow: stopped\n");
}

}  // namespace

void register_serve(CLI::App& app) {
  auto a = std::make_shared<ServeArgs>();
  CLI::App* cmd = app.add_subcommand("serve", "Serve models over the Ollama and OpenAI HTTP APIs");
  cmd->add_option("--host", a->host, "Address to listen on (default 127.0.0.1, or MINNOW_HOST)");
  cmd->add_option("--port", a->port, "Port (default 11434)");
  cmd->add_option("--threads", a->opts.threads, "Compute threads (0 = one per core)");
  cmd->add_option("--router", a->router,
                  "Router file (TOML, docs/router.md): serves its virtual model, e.g. 'auto' "
                  "(default: $MINNOW_ROUTER or ~/.minnow/router.toml when present)");
  cmd->add_option("--drain-timeout", a->opts.drain_timeout_s,
                  "Seconds in-flight requests may take to finish on SIGTERM")
      ->capture_default_str();
  cmd->callback([a] { serve(*a); });
}

}  // namespace minnow::cli
