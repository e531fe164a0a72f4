#include "server/http.h"

#include <httplib.h>

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <thread>

#include "server/job.h"
#include "server/metrics.h"

namespace minnow::server {

namespace {
int default_threads() {
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

// The error shape of the API a path belongs to.
void access_error(const httplib::Request& req, httplib::Response& res, int status,
                  const std::string& message, const char* code) {
  res.status = status;
  nlohmann::json body;
  if (req.path.rfind("/v1/", 0) == 0)
    body = {{"error", {{"message", message}, {"type", "invalid_request_error"}, {"param", nullptr},
                       {"code", code}}}};
  else
    body = {{"error", message}};
  res.set_content(body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                  "application/json");
}

bool is_loopback(const std::string& host) {
  return host == "127.0.0.1" || host == "localhost" || host == "::1" || host == "[::1]" ||
         host.rfind("127.", 0) == 0;
}

// The host part of a Host header: "localhost:11434" -> "localhost", "[::1]:80" -> "[::1]".
std::string host_of(const std::string& header) {
  if (!header.empty() && header[0] == '[') {
    const auto end = header.find(']');
    return end == std::string::npos ? header : header.substr(0, end + 1);
  }
  return header.substr(0, header.find(':'));
}

ManagerOptions manager_options(const ServerOptions& o) {
  ManagerOptions m;
  m.threads = o.threads > 0 ? o.threads : default_threads();
  m.parallel = std::max(1, o.parallel);
  m.default_num_ctx = std::max(64, o.num_ctx);
  m.max_memory_bytes = o.max_memory_bytes;
  return m;
}
}  // namespace

Server::Server(const ServerOptions& options)
    : options_(options),
      models_(std::make_unique<ModelManager>(manager_options(options))),
      http_(std::make_unique<httplib::Server>()) {
  httplib::Server& h = *http_;
  set_request_limit(options_.max_queue > 0 ? options_.max_queue + options_.parallel : 0);
  set_request_timeout_s(options_.request_timeout_s);
  // Enough connection threads that requests beyond the queue reach the 503 instead of
  // waiting unseen in the transport's own queue.
  const int http_threads =
      std::max(options_.http_threads, std::max(options_.max_queue, 0) + options_.parallel + 8);
  h.new_task_queue = [http_threads] { return new httplib::ThreadPool(http_threads); };
  h.set_payload_max_length(options_.max_body_bytes);
  h.set_read_timeout(options_.read_timeout_s, 0);
  h.set_write_timeout(options_.write_timeout_s, 0);
  h.set_keep_alive_max_count(1000);
  // Idle keep-alive connections hold a thread and delay a graceful stop by up to this long.
  h.set_keep_alive_timeout(5);
  // Before any route: the Host check (DNS rebinding: a web page on evil.example resolving to
  // 127.0.0.1 must not reach a loopback server), CORS for the allowed origins, the API key.
  h.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (is_loopback(options_.host)) {
      const std::string host = host_of(req.get_header_value("Host"));
      if (!host.empty() && !is_loopback(host) && host != options_.host) {
        access_error(req, res, 403,
                     "Host '" + host + "' is not this server's address (only local names "
                     "are accepted while it listens on loopback)",
                     "forbidden_host");
        return httplib::Server::HandlerResponse::Handled;
      }
    }
    const std::string origin = req.get_header_value("Origin");
    if (!origin.empty()) {
      const bool allowed =
          std::find(options_.origins.begin(), options_.origins.end(), origin) !=
              options_.origins.end() ||
          std::find(options_.origins.begin(), options_.origins.end(), "*") !=
              options_.origins.end();
      if (!allowed) {
        access_error(req, res, 403,
                     "origin '" + origin + "' is not allowed (set MINNOW_ORIGINS to allow it)",
                     "forbidden_origin");
        return httplib::Server::HandlerResponse::Handled;
      }
      res.set_header("Access-Control-Allow-Origin", origin);
      res.set_header("Vary", "Origin");
      if (req.method == "OPTIONS") {  // preflight
        res.set_header("Access-Control-Allow-Methods", "GET, POST, DELETE, HEAD, OPTIONS");
        res.set_header("Access-Control-Allow-Headers",
                       "Authorization, Content-Type, User-Agent, Accept, X-Requested-With, "
                       "OpenAI-Beta, X-Stainless-Lang, X-Stainless-Package-Version, "
                       "X-Stainless-OS, X-Stainless-Arch, X-Stainless-Runtime, "
                       "X-Stainless-Runtime-Version, X-Stainless-Retry-Count, "
                       "X-Stainless-Timeout");
        res.set_header("Access-Control-Max-Age", "600");
        res.status = 204;
        return httplib::Server::HandlerResponse::Handled;
      }
    }
    if (!options_.api_key.empty() && req.path != "/health" && req.method != "OPTIONS") {
      const std::string auth = req.get_header_value("Authorization");
      const std::string want = "Bearer " + options_.api_key;
      if (auth != want) {
        res.set_header("WWW-Authenticate", "Bearer");
        access_error(req, res, 401,
                     auth.empty() ? "an API key is required: Authorization: Bearer <key>"
                                  : "the API key is not valid",
                     "invalid_api_key");
        return httplib::Server::HandlerResponse::Handled;
      }
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  h.Get("/health", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(R"({"status":"ok"})", "application/json");
  });
  register_store_routes(h, *models_);  // before the Ollama routes' placeholders
  register_ollama_routes(h, *models_);
  register_openai_routes(h, *models_);
  register_extra_routes(h, *models_);
  ModelManager* models = models_.get();
  h.Get("/metrics", [models](const httplib::Request&, httplib::Response& res) {
    Metrics::Gauges g;
    const auto loaded = models->loaded();
    g.loaded_models = loaded.size();
    for (const auto& m : loaded) {
      g.kv_bytes += m.kv_bytes;
      const uint64_t per_block =
          m.stats.blocks_total > 0 ? m.kv_bytes / uint64_t(m.stats.blocks_total) : 0;
      g.kv_used_bytes += per_block * uint64_t(m.stats.blocks_used);
      g.kv_cached_bytes += per_block * uint64_t(m.stats.blocks_cached);
      g.running += m.stats.running;
      g.queued += m.stats.waiting;
      g.prefix_blocks_reused += m.stats.prefix_blocks_reused;
    }
    // Requests admitted but not yet handed to a scheduler (loading a model) count as queued.
    g.queued = std::max<int64_t>(g.queued, in_flight().load() - g.running);
    std::string text = metrics().render(g);
    if (router::Router* r = active_router()) text += r->render_metrics();
    res.set_content(text, "text/plain; version=0.0.4");
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
