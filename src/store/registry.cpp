#include "store/registry.h"

#include <cstdlib>
#include <filesystem>
#include <system_error>

namespace minnow::store {
namespace {

constexpr KnownModel kKnownModels[] = {
#include "known_models.inc"
};

constexpr std::string_view kSetupHint =
    "run ./scripts/quickstart.sh, or python3 scripts/fetch_models.py to fetch models only";

}  // namespace

std::span<const KnownModel> known_models() { return kKnownModels; }

const KnownModel& default_model() { return kKnownModels[0]; }

const KnownModel* find_model(std::string_view name) {
  for (const KnownModel& m : kKnownModels) {
    if (m.name == name) return &m;
  }
  return nullptr;
}

std::string known_model_names() {
  std::string out;
  for (const KnownModel& m : kKnownModels) {
    if (!out.empty()) out += ", ";
    out += m.name;
  }
  return out;
}

Result<std::string> model_cache_dir() {
  const char* cache = std::getenv("MINNOW_CACHE");
  if (cache && *cache) return std::string(cache);
  const char* home = std::getenv("HOME");
  if (!home || !*home) {
    return Status::error("cannot locate the model cache: neither MINNOW_CACHE nor HOME is set");
  }
  return std::string(home) + "/.cache/minnow/models";
}

Result<ResolvedModel> resolve_model(std::string_view name_or_path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (const KnownModel* known = find_model(name_or_path)) {
    auto dir = model_cache_dir();
    if (!dir) return dir.status();
    std::string path = *dir + "/" + std::string(known->file);
    uint64_t size = fs::file_size(path, ec);
    if (ec) {
      return Status::error("model '" + std::string(known->name) + "' is not in the model cache (" +
                           path + " is missing); " + std::string(kSetupHint));
    }
    if (size != known->bytes) {
      return Status::error("model '" + std::string(known->name) + "': " + path + " has " +
                           std::to_string(size) + " bytes, expected " +
                           std::to_string(known->bytes) + "; " + std::string(kSetupHint));
    }
    return ResolvedModel{std::move(path), known};
  }

  std::string path(name_or_path);
  fs::file_status st = fs::status(path, ec);
  if (!ec && fs::is_regular_file(st)) return ResolvedModel{std::move(path), nullptr};
  if (!ec && fs::exists(st)) return Status::error(path + ": not a regular file");

  const bool looks_like_path =
      name_or_path.find('/') != std::string_view::npos || name_or_path.ends_with(".gguf");
  if (looks_like_path) return Status::error(path + ": no such file");
  return Status::error("unknown model '" + path + "'; known models: " + known_model_names() +
                       " (or give the path to a .gguf file)");
}

}  // namespace minnow::store
