// `minnow serve [--host H] [--port P] [--threads N]`: the Ollama- and OpenAI-compatible HTTP
// server (src/server). MINNOW_HOST=host[:port] sets the address as OLLAMA_HOST does for
// Ollama. SIGTERM / SIGINT: stop accepting, let in-flight requests finish (up to
// --drain-timeout seconds), exit 0.
#include <pthread.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>

#include "cli/commands.h"
#include "server/http.h"

namespace minnow::cli {
namespace {

struct ServeArgs {
  server::ServerOptions opts;
  std::string host;
  int port = 0;
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

void serve(ServeArgs& a) {
  apply_env(a);
  if (!a.host.empty()) a.opts.host = a.host;
  if (a.port > 0) a.opts.port = a.port;
  // Signals go to one thread that waits for them; every other thread has them blocked.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
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
  cmd->add_option("--drain-timeout", a->opts.drain_timeout_s,
                  "Seconds in-flight requests may take to finish on SIGTERM")
      ->capture_default_str();
  cmd->callback([a] { serve(*a); });
}

}  // namespace minnow::cli
