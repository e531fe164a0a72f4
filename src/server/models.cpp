#include "server/models.h"

#include <filesystem>

#include "engine/chat.h"
#include "gguf/gguf.h"
#include "model/arch.h"
#include "model/kv_cache.h"
#include "store/registry.h"

namespace minnow::server {

namespace {
constexpr std::chrono::seconds kDefaultKeepAlive{300};

std::string mib(uint64_t bytes) { return std::to_string((bytes + (1 << 19)) >> 20) + " MiB"; }
}  // namespace

Result<uint64_t> model_bytes(const std::string& path, int num_ctx, int parallel) {
  auto file = gguf::File::open(path);
  if (!file.ok()) return Status::error(file.error());
  auto config = model::read_config(**file);
  if (!config.ok()) return Status::error(config.error());
  const int per_seq = (num_ctx + model::kSlotAlign - 1) / model::kSlotAlign * model::kSlotAlign;
  const uint64_t kv = model::KvCache::bytes_for(*config, per_seq * parallel, model::KvType::kF16,
                                                512, /*rings=*/false);
  return uint64_t(std::filesystem::file_size(path)) + kv;
}

ModelManager::ModelManager(const ManagerOptions& options)
    : options_(options), pool_(std::max(1, options.threads)) {}

ModelManager::~ModelManager() {
  std::unique_lock<std::mutex> guard(mu_);
  models_.clear();  // schedulers end their sequences and join their workers
}

ModelManager::Lease::~Lease() {
  if (!m_) return;
  std::lock_guard<std::mutex> g(mm_->mu_);
  --m_->active;
  m_->last_used = Clock::now();
  mm_->idle_.notify_all();
}

uint64_t ModelManager::used_bytes_locked() const {
  uint64_t used = 0;
  for (const auto& [name, m] : models_) used += m->bytes;
  return used;
}

bool ModelManager::make_room_locked(uint64_t need) {
  const uint64_t budget = options_.max_memory_bytes;
  if (budget == 0) return true;
  while (used_bytes_locked() + need > budget) {
    LoadedModel* lru = nullptr;
    for (auto& [name, m] : models_) {
      if (m->active == 0 && (!lru || m->last_used < lru->last_used)) lru = m.get();
    }
    if (!lru) return false;
    std::fprintf(stderr, "minnow: unloading %s to make room (%s)\n", lru->name.c_str(),
                 mib(lru->bytes).c_str());
    models_.erase(lru->name);
  }
  return true;
}

Result<ModelManager::Lease> ModelManager::acquire(const std::string& name, int num_ctx,
                                                  int num_thread) {
  std::unique_lock<std::mutex> guard(mu_);
  unload_expired_locked();
  auto it = models_.find(name);
  double load_ms = 0;
  if (it != models_.end() && ((num_ctx > 0 && it->second->num_ctx != num_ctx) ||
                              (num_thread > 0 && it->second->num_thread != num_thread))) {
    // Another context size or thread count: wait until the model is idle, then give it a new
    // scheduler.
    LoadedModel* m = it->second.get();
    idle_.wait(guard, [&] { return m->active == 0; });
    if (num_ctx <= 0) num_ctx = m->num_ctx;
    auto need = model_bytes(m->path, num_ctx, options_.parallel);
    if (!need.ok()) return Status::error(need.error());
    m->scheduler.reset();
    {
      std::lock_guard<std::mutex> embed(m->embed_mu);
      m->embed_session.reset();
    }
    m->bytes = 0;
    if (options_.max_memory_bytes && *need > options_.max_memory_bytes) {
      models_.erase(name);
      return Status::error(std::string(kTooLargePrefix) + "model '" + name + "' with num_ctx " +
                           std::to_string(num_ctx) + " needs " + mib(*need) +
                           ", more than MINNOW_MAX_MEMORY (" + mib(options_.max_memory_bytes) +
                           ")");
    }
    ++m->active;  // not evicted while making room for itself
    const bool room = make_room_locked(*need);
    --m->active;
    if (!room) {
      models_.erase(name);
      return Status::error(std::string(kBusyPrefix) + "the memory budget is held by models in use");
    }
    if (num_thread > 0 && num_thread != m->num_thread) {
      m->own_pool = num_thread == pool_.n_threads() ? nullptr
                                                     : std::make_unique<ThreadPool>(num_thread);
      m->num_thread = num_thread;
    }
    engine::SchedulerOptions so{num_ctx, options_.parallel, 512};
    auto s = engine::Scheduler::create(*m->model, m->own_pool ? *m->own_pool : pool_, so);
    if (!s.ok()) return Status::error(s.error());
    m->scheduler = std::move(*s);
    m->num_ctx = num_ctx;
    m->bytes = *need;
  }
  if (it == models_.end()) {
    auto resolved = store::resolve_model(name);
    if (!resolved.ok()) return Status::error("model '" + name + "' not found: " + resolved.error());
    const int ctx = num_ctx > 0 ? num_ctx : options_.default_num_ctx;
    auto need = model_bytes(resolved->path, ctx, options_.parallel);
    if (!need.ok()) return Status::error(need.error());
    if (options_.max_memory_bytes && *need > options_.max_memory_bytes) {
      return Status::error(std::string(kTooLargePrefix) + "model '" + name + "' needs " +
                           mib(*need) + " (its file and a KV cache of " +
                           std::to_string(options_.parallel) + " × " + std::to_string(ctx) +
                           " positions), more than MINNOW_MAX_MEMORY (" +
                           mib(options_.max_memory_bytes) + ")");
    }
    if (!make_room_locked(*need)) {
      return Status::error(std::string(kBusyPrefix) + "model '" + name + "' needs " + mib(*need) +
                           " and the models in use hold the rest of MINNOW_MAX_MEMORY (" +
                           mib(options_.max_memory_bytes) + ")");
    }
    auto m = model::Model::load(resolved->path);
    if (!m.ok()) return Status::error(m.error());
    auto lm = std::make_unique<LoadedModel>();
    lm->name = name;
    lm->path = resolved->path;
    lm->model = std::move(*m);
    if (!lm->model->tokenizer())
      return Status::error(resolved->path + ": the file has no tokenizer");
    // The model's own context when it is smaller than asked for.
    const int n_ctx = std::min(ctx, std::max(64, lm->model->config().n_ctx_train));
    if (num_thread > 0 && num_thread != pool_.n_threads())
      lm->own_pool = std::make_unique<ThreadPool>(num_thread);
    lm->num_thread = num_thread;
    engine::SchedulerOptions so{n_ctx, options_.parallel, 512};
    auto s = engine::Scheduler::create(*lm->model, lm->own_pool ? *lm->own_pool : pool_, so);
    if (!s.ok()) return Status::error(s.error());
    lm->scheduler = std::move(*s);
    lm->num_ctx = n_ctx;
    lm->bytes = *need;
    auto tmpl = engine::chat_template_for(*lm->model);
    if (tmpl.ok()) lm->chat_template = std::move(*tmpl);
    lm->load_ms = lm->model->load_ms();
    load_ms = lm->load_ms;
    it = models_.emplace(name, std::move(lm)).first;
  }
  LoadedModel* m = it->second.get();
  ++m->active;
  m->last_used = Clock::now();
  return Lease(this, m, load_ms);
}

void ModelManager::release(Lease lease, std::optional<std::chrono::seconds> keep_alive) {
  LoadedModel& m = *lease;
  const std::string name = m.name;
  const auto ka = keep_alive.value_or(kDefaultKeepAlive);
  {
    std::lock_guard<std::mutex> g(mu_);
    m.forever = ka.count() < 0;
    m.expires = Clock::now() + ka;
    m.expires_wall = std::chrono::system_clock::now() + ka;
  }
  { Lease done = std::move(lease); }
  if (ka.count() == 0) unload(name);
}

void ModelManager::unload(const std::string& name) {
  std::unique_lock<std::mutex> guard(mu_);
  auto it = models_.find(name);
  if (it == models_.end()) return;
  // Wait for the requests still using it.
  LoadedModel* m = it->second.get();
  idle_.wait(guard, [&] { return m->active == 0; });
  models_.erase(name);
}

void ModelManager::unload_expired_locked() {
  const auto now = Clock::now();
  for (auto it = models_.begin(); it != models_.end();) {
    LoadedModel& m = *it->second;
    if (m.active == 0 && !m.forever && m.expires.time_since_epoch().count() != 0 &&
        m.expires <= now) {
      it = models_.erase(it);
    } else {
      ++it;
    }
  }
}

std::vector<ModelManager::Info> ModelManager::loaded() {
  std::unique_lock<std::mutex> guard(mu_);
  unload_expired_locked();
  std::vector<Info> out;
  for (auto& [name, m] : models_) {
    Info i{name,       m->path,    m->model->file().file_size(),
           m->expires_wall, m->forever, m->num_ctx, m->scheduler ? m->scheduler->kv_bytes() : 0,
           {}};
    if (m->scheduler) i.stats = m->scheduler->stats();
    out.push_back(std::move(i));
  }
  return out;
}

}  // namespace minnow::server
