// `minnow serve`: the HTTP server. Routes (Ollama API, OpenAI API, health) are registered by
// api_ollama.cpp and api_openai.cpp; this file owns the transport: keep-alive, chunked
// streaming, timeouts, the request body limit and graceful shutdown.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "server/models.h"
#include "util/status.h"

namespace httplib {
class Server;
}

namespace minnow::server {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 11434;
  int threads = 0;       // compute threads (0: one per core)
  int http_threads = 8;  // connections served at once
  size_t max_body_bytes = 32u << 20;
  int read_timeout_s = 60;
  int write_timeout_s = 60;
  int drain_timeout_s = 30;  // on SIGTERM, how long in-flight requests may finish
};

class Server {
 public:
  explicit Server(const ServerOptions& options);
  ~Server();
  // Binds and serves until stop(); returns an error when the address cannot be bound.
  Status run();
  // From any thread (a signal handler's helper thread): stop accepting, let requests finish.
  void stop();
  ModelManager& models() { return *models_; }
  const ServerOptions& options() const { return options_; }

 private:
  ServerOptions options_;
  std::unique_ptr<ModelManager> models_;
  std::unique_ptr<httplib::Server> http_;
};

// The routes, in their own files.
void register_ollama_routes(httplib::Server& http, ModelManager& models);
void register_openai_routes(httplib::Server& http, ModelManager& models);
// llama.cpp server's /tokenize, /detokenize, /apply-template.
void register_extra_routes(httplib::Server& http, ModelManager& models);

}  // namespace minnow::server
