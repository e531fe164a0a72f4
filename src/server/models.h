// The models a server has loaded. A request names a model; acquire() loads it on first use
// (Model::load + a Session) and hands out exclusive use of it until the Lease is dropped, so
// requests to one model run one after another over the same Session (whose KV cache then
// serves as a prefix cache between requests). Models stay loaded for their keep_alive
// (Ollama's default: 5 minutes) after their last use; 0 unloads at once, negative never.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "engine/session.h"
#include "model/model.h"
#include "text/chat_template.h"
#include "util/status.h"
#include "util/thread_pool.h"

namespace minnow::server {

using Clock = std::chrono::steady_clock;

struct LoadedModel {
  std::string name;  // as requested ("smollm2:135m" or a path)
  std::string path;
  std::unique_ptr<model::Model> model;
  std::unique_ptr<engine::Session> session;
  std::optional<text::ChatTemplate> chat_template;
  int num_ctx = 0;
  double load_ms = 0;
  std::chrono::system_clock::time_point expires_wall;
  Clock::time_point expires;
  bool forever = false;
  std::mutex use;  // held by the request using it
};

class ModelManager {
 public:
  explicit ModelManager(int threads);

  class Lease {
   public:
    Lease(LoadedModel* m, std::unique_lock<std::mutex> lock, double load_ms)
        : m_(m), lock_(std::move(lock)), load_ms_(load_ms) {}
    LoadedModel& operator*() const { return *m_; }
    LoadedModel* operator->() const { return m_; }
    double load_ms() const { return load_ms_; }  // spent loading for this request (0 if warm)

   private:
    LoadedModel* m_;
    std::unique_lock<std::mutex> lock_;
    double load_ms_;
  };

  // Loads `name` if needed (num_ctx 0: the model's default) and waits for exclusive use. An
  // unknown model is an error whose message starts with "model '<name>' not found".
  Result<Lease> acquire(const std::string& name, int num_ctx);
  // After a request: the model stays loaded for keep_alive (nullopt: the default 5 minutes;
  // zero: unload now; negative: forever).
  void release(Lease lease, std::optional<std::chrono::seconds> keep_alive);
  void unload(const std::string& name);

  struct Info {
    std::string name, path;
    uint64_t size_bytes = 0;
    std::chrono::system_clock::time_point expires_at;
    bool forever = false;
    int num_ctx = 0;
    uint64_t kv_bytes = 0;  // KV cache allocated for its session
  };
  std::vector<Info> loaded();
  ThreadPool& pool() { return pool_; }

 private:
  void unload_expired_locked();

  ThreadPool pool_;
  std::mutex mu_;  // guards models_ (not the models' use)
  std::map<std::string, std::unique_ptr<LoadedModel>> models_;
};

}  // namespace minnow::server
