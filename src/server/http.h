// `minnow serve`: the HTTP server. Routes (Ollama API, OpenAI API, health) are registered by
// api_ollama.cpp and api_openai.cpp; this file owns the transport: keep-alive, chunked
// streaming, timeouts, the request body limit and graceful shutdown.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

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
  // Scheduling and memory (environment: MINNOW_NUM_PARALLEL, MINNOW_CONTEXT_LENGTH,
  // MINNOW_MAX_MEMORY, MINNOW_MAX_QUEUE, MINNOW_REQUEST_TIMEOUT).
  int parallel = 4;              // sequences batched at once per model
  int num_ctx = 4096;            // per sequence, when a request does not say
  uint64_t max_memory_bytes = 0;  // 0: no budget
  int max_queue = 64;            // requests waiting beyond the running ones, then 503
  int request_timeout_s = 600;   // a generation running longer is stopped (0: none)
  // Access (MINNOW_API_KEY, MINNOW_ORIGINS).
  std::string api_key;               // when set, "Authorization: Bearer KEY" on all but /health
  std::vector<std::string> origins;  // browser origins allowed (CORS); "*" allows any
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
// The model store: /api/create, /api/blobs, /api/copy, /api/delete, /api/pull.
void register_store_routes(httplib::Server& http, ModelManager& models);
// llama.cpp server's /tokenize, /detokenize, /apply-template.
void register_extra_routes(httplib::Server& http, ModelManager& models);

}  // namespace minnow::server
