#include "server/models.h"

#include "engine/chat.h"
#include "store/registry.h"

namespace minnow::server {

namespace {
constexpr std::chrono::seconds kDefaultKeepAlive{300};
}

ModelManager::ModelManager(int threads) : pool_(threads) {}

Result<ModelManager::Lease> ModelManager::acquire(const std::string& name, int num_ctx) {
  std::unique_lock<std::mutex> guard(mu_);
  unload_expired_locked();
  auto it = models_.find(name);
  double load_ms = 0;
  if (it != models_.end() && num_ctx > 0 && it->second->num_ctx != num_ctx) {
    // Another context size: wait for the model to be free, then make a new session for it.
    std::unique_lock<std::mutex> use(it->second->use);
    model::ContextOptions opts;
    opts.n_ctx = num_ctx;
    auto s = engine::Session::create(*it->second->model, pool_, opts);
    if (!s.ok()) return Status::error(s.error());
    it->second->session = std::move(*s);
    it->second->num_ctx = num_ctx;
  }
  if (it == models_.end()) {
    auto resolved = store::resolve_model(name);
    if (!resolved.ok()) return Status::error("model '" + name + "' not found: " + resolved.error());
    auto m = model::Model::load(resolved->path);
    if (!m.ok()) return Status::error(m.error());
    auto lm = std::make_unique<LoadedModel>();
    lm->name = name;
    lm->path = resolved->path;
    lm->model = std::move(*m);
    if (!lm->model->tokenizer())
      return Status::error(resolved->path + ": the file has no tokenizer");
    model::ContextOptions opts;
    opts.n_ctx = num_ctx;
    auto s = engine::Session::create(*lm->model, pool_, opts);
    if (!s.ok()) return Status::error(s.error());
    lm->session = std::move(*s);
    lm->num_ctx = lm->session->n_ctx();
    auto tmpl = engine::chat_template_for(*lm->model);
    if (tmpl.ok()) lm->chat_template = std::move(*tmpl);
    lm->load_ms = lm->model->load_ms();
    load_ms = lm->load_ms;
    it = models_.emplace(name, std::move(lm)).first;
  }
  LoadedModel* m = it->second.get();
  guard.unlock();
  std::unique_lock<std::mutex> use(m->use);
  return Lease(m, std::move(use), load_ms);
}

void ModelManager::release(Lease lease, std::optional<std::chrono::seconds> keep_alive) {
  LoadedModel& m = *lease;
  const std::string name = m.name;
  const auto ka = keep_alive.value_or(kDefaultKeepAlive);
  m.forever = ka.count() < 0;
  m.expires = Clock::now() + ka;
  m.expires_wall = std::chrono::system_clock::now() + ka;
  { Lease done = std::move(lease); }  // unlocks the model
  if (ka.count() == 0) unload(name);
}

void ModelManager::unload(const std::string& name) {
  std::unique_lock<std::mutex> guard(mu_);
  auto it = models_.find(name);
  if (it == models_.end()) return;
  // Wait for a request still using it.
  std::unique_lock<std::mutex> use(it->second->use);
  use.unlock();
  models_.erase(it);
}

void ModelManager::unload_expired_locked() {
  const auto now = Clock::now();
  for (auto it = models_.begin(); it != models_.end();) {
    LoadedModel& m = *it->second;
    std::unique_lock<std::mutex> use(m.use, std::try_to_lock);
    if (use.owns_lock() && !m.forever && m.expires.time_since_epoch().count() != 0 &&
        m.expires <= now) {
      use.unlock();
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
    out.push_back(Info{name, m->path, m->model->file().file_size(), m->expires_wall, m->forever,
                       m->num_ctx, m->session->context().cache().bytes()});
  }
  return out;
}

}  // namespace minnow::server
