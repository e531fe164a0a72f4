// Helpers shared by the commands that run a model: resolve a name or path and load it,
// throwing (the CLI boundary) with the model's own error message.
#pragma once

#include <memory>
#include <stdexcept>
#include <string>
#include <thread>

#include "model/model.h"
#include "store/registry.h"

namespace minnow::cli {

inline std::unique_ptr<model::Model> load_model(const std::string& name_or_path,
                                                const model::LoadOptions& options = {}) {
  auto resolved = store::resolve_model(name_or_path);
  if (!resolved) throw std::runtime_error(resolved.error());
  auto m = model::Model::load(resolved->path, options);
  if (!m) throw std::runtime_error(m.error());
  return std::move(*m);
}

// --threads 0 means one per core.
inline int thread_count(int requested) {
  if (requested > 0) return requested;
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

}  // namespace minnow::cli
