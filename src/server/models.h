// The models a server has loaded. A request names a model; acquire() loads it on first use
// (Model::load + a Scheduler) and returns a Lease that keeps it loaded while the request runs.
// Requests to one model run at once, batched by its Scheduler (continuous batching; its block
// cache serves prefixes shared between requests). Models stay loaded for their keep_alive
// (Ollama's default: 5 minutes) after their last use; 0 unloads at once, negative never.
//
// Memory: a model costs its file plus a KV pool of parallel × num_ctx positions. With a budget
// (MINNOW_MAX_MEMORY) a model that needs more than the whole budget is refused before anything
// is read; otherwise idle models are unloaded, least recently used first, until it fits, and
// when the models in use leave no room the request is refused as busy (503, retry later).
#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "constrain/constrain.h"
#include "engine/scheduler.h"
#include "engine/session.h"
#include "model/model.h"
#include "text/chat_template.h"
#include "util/status.h"
#include "util/thread_pool.h"

namespace minnow::server {

using Clock = std::chrono::steady_clock;

// Messages of errors the APIs map to their own status codes (job_error).
inline constexpr const char* kBusyPrefix = "server busy: ";        // 503 + Retry-After
inline constexpr const char* kTooLargePrefix = "out of memory: ";  // 507

struct ManagerOptions {
  int threads = 1;               // compute threads, shared by all models
  int parallel = 4;              // sequences batched at once per model
  int default_num_ctx = 4096;    // per sequence, when a request does not say
  uint64_t max_memory_bytes = 0;  // 0: no budget
};

struct LoadedModel {
  std::string name;  // as requested ("smollm2:135m" or a path)
  std::string path;
  std::unique_ptr<model::Model> model;
  // When num_thread asked for another thread count (declared before the scheduler, which
  // uses it, so that it is destroyed after).
  std::unique_ptr<ThreadPool> own_pool;
  std::unique_ptr<engine::Scheduler> scheduler;
  std::optional<text::ChatTemplate> chat_template;
  int num_ctx = 0;
  int num_thread = 0;  // 0: the server's pool
  uint64_t bytes = 0;  // file + KV pool
  double load_ms = 0;
  std::chrono::system_clock::time_point expires_wall;
  Clock::time_point expires;
  Clock::time_point last_used;
  bool forever = false;
  int active = 0;  // leases held (under the manager's lock)
  // The vocabulary as bytes for constrained decoding, built on first use.
  std::shared_ptr<const constrain::Vocab> constraint_vocab() {
    std::call_once(vocab_once, [&] { vocab = constrain::Vocab::from_tokenizer(*model->tokenizer()); });
    return vocab;
  }
  std::once_flag vocab_once;
  std::shared_ptr<const constrain::Vocab> vocab;
  // Embeddings run in a context of their own, one at a time.
  std::mutex embed_mu;
  std::unique_ptr<engine::Session> embed_session;
};

class ModelManager {
 public:
  explicit ModelManager(const ManagerOptions& options);
  ~ModelManager();

  class Lease {
   public:
    Lease(ModelManager* mm, LoadedModel* m, double load_ms) : mm_(mm), m_(m), load_ms_(load_ms) {}
    Lease(Lease&& o) noexcept : mm_(o.mm_), m_(o.m_), load_ms_(o.load_ms_) { o.m_ = nullptr; }
    Lease& operator=(Lease&&) = delete;
    ~Lease();
    LoadedModel& operator*() const { return *m_; }
    LoadedModel* operator->() const { return m_; }
    double load_ms() const { return load_ms_; }  // spent loading for this request (0 if warm)

   private:
    friend class ModelManager;
    ModelManager* mm_;
    LoadedModel* m_;
    double load_ms_;
  };

  // Loads `name` if needed (num_ctx 0: the model's current or the default) and keeps it loaded
  // until the lease is dropped. Errors: "model '<name>' not found..." for unknown models,
  // kTooLargePrefix / kBusyPrefix for memory. Another num_ctx or num_thread (> 0) than the
  // loaded one waits for the model's requests to finish and sets it up again, as Ollama
  // reloads a model for them.
  Result<Lease> acquire(const std::string& name, int num_ctx, int num_thread = 0);
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
    uint64_t kv_bytes = 0;  // KV pool allocated for its scheduler
    engine::Scheduler::Stats stats;
  };
  std::vector<Info> loaded();
  ThreadPool& pool() { return pool_; }
  const ManagerOptions& options() const { return options_; }

 private:
  void unload_expired_locked();
  // Unloads idle models, least recently used first, until `need` more bytes fit the budget.
  bool make_room_locked(uint64_t need);
  uint64_t used_bytes_locked() const;

  ManagerOptions options_;
  ThreadPool pool_;
  std::mutex mu_;
  std::condition_variable idle_;  // a lease was dropped
  std::map<std::string, std::unique_ptr<LoadedModel>> models_;
};

// Bytes a model file and its KV pool will take: what the memory budget counts.
Result<uint64_t> model_bytes(const std::string& path, int num_ctx, int parallel);

}  // namespace minnow::server
