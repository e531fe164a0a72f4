#include "server/http.h"

#include <httplib.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <thread>

#include "server/metrics.h"

namespace minnow::server {

namespace {
int default_threads() {
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}
}  // namespace

Server::Server(const ServerOptions& options)
    : options_(options),
      models_(std::make_unique<ModelManager>(options.threads > 0 ? options.threads
                                                                 : default_threads())),
      http_(std::make_unique<httplib::Server>()) {
  httplib::Server& h = *http_;
  const int http_threads = options_.http_threads;
  h.new_task_queue = [http_threads] { return new httplib::ThreadPool(http_threads); };
  h.set_payload_max_length(options_.max_body_bytes);
  h.set_read_timeout(options_.read_timeout_s, 0);
  h.set_write_timeout(options_.write_timeout_s, 0);
  h.set_keep_alive_max_count(1000);
  h.set_keep_alive_timeout(30);
  h.Get("/health", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(R"({"status":"ok"})", "application/json");
  });
  register_ollama_routes(h, *models_);
  register_openai_routes(h, *models_);
  register_extra_routes(h, *models_);
  ModelManager* models = models_.get();
  h.Get("/metrics", [models](const httplib::Request&, httplib::Response& res) {
    uint64_t kv = 0;
    const auto loaded = models->loaded();
    for (const auto& m : loaded) kv += m.kv_bytes;
    res.set_content(metrics().render(kv, loaded.size()), "text/plain; version=0.0.4");
  });
  // Requests by endpoint and status; ids in paths are folded so the label set stays small.
  h.set_logger([](const httplib::Request& req, const httplib::Response& res) {
    std::string endpoint = req.path;
    if (endpoint.rfind("/v1/models/", 0) == 0) endpoint = "/v1/models/{id}";
    metrics().request(req.method + " " + endpoint, res.status);
  });
  h.set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
        std::string what = "internal error";
        try {
          if (ep) std::rethrow_exception(ep);
        } catch (const std::exception& e) {
          what = e.what();
        } catch (...) {
        }
        res.status = 500;
        res.set_content(nlohmann::json({{"error", what}})
                            .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                        "application/json");
      });
}

Server::~Server() = default;

Status Server::run() {
  if (!http_->bind_to_port(options_.host.c_str(), options_.port)) {
    return Status::error("cannot listen on " + options_.host + ":" + std::to_string(options_.port) +
                         " (in use, or not a local address?)");
  }
  std::fprintf(stderr, "minnow: listening on http://%s:%d\n", options_.host.c_str(), options_.port);
  std::fflush(stderr);
  // Returns after stop(), once the connection threads have finished their requests.
  http_->listen_after_bind();
  return Status();
}

void Server::stop() { http_->stop(); }

}  // namespace minnow::server
