#include "store/registry.h"

#include <cstdlib>
#include <filesystem>
#include <system_error>

#include "store/store.h"

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
  if (auto name = parse_model_name(name_or_path); name.ok()) {
    if (auto store = Store::open_default(); store.ok() && store->exists(*name)) {
      auto m = store->get(*name);
      if (!m.ok()) return m.status();
      ResolvedModel r;
      r.path = m->model_path;
      r.name = m->name.display();
      r.digest = m->model_digest;
      r.parameters = m->parameters;
      r.template_text = m->template_text;
      r.system = m->system;
      r.messages = m->messages;
      r.licenses = m->licenses;
      r.from_store = true;
      // A known model the store holds as setup fetched it (smollm2:135m imported from the
      // cache) still reads as that known model: its name, and the cache's file when that is
      // the same content (a hard link of the blob), so that messages name the familiar file.
      if (const KnownModel* known = find_model(r.name);
          known && r.digest == "sha256:" + std::string(known->sha256)) {
        r.known = known;
        if (auto dir = model_cache_dir(); dir.ok()) {
          const std::string cached = *dir + "/" + std::string(known->file);
          if (fs::file_size(cached, ec) == known->bytes && !ec) r.path = cached;
        }
      }
      return r;
    }
  }
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
    ResolvedModel r;
    r.path = std::move(path);
    r.known = known;
    r.name = std::string(known->name);
    r.digest = "sha256:" + std::string(known->sha256);
    return r;
  }

  std::string path(name_or_path);
  fs::file_status st = fs::status(path, ec);
  if (!ec && fs::is_regular_file(st)) {
    ResolvedModel r;
    r.path = std::move(path);
    return r;
  }
  if (!ec && fs::exists(st)) return Status::error(path + ": not a regular file");

  const bool looks_like_path =
      name_or_path.find('/') != std::string_view::npos || name_or_path.ends_with(".gguf");
  if (looks_like_path) return Status::error(path + ": no such file");
  return Status::error("unknown model '" + path + "'; known models: " + known_model_names() +
                       ", those of `minnow list` (or give the path to a .gguf file)");
}

}  // namespace minnow::store
