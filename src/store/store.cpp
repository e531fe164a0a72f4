#include "store/store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "gguf/gguf.h"
#include "store/registry.h"
#include "store/sha256.h"

namespace minnow::store {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

constexpr std::string_view kTmpPrefix = ".tmp-";
constexpr size_t kChunk = 1 << 20;
constexpr size_t kVerifyBelowBytes = 1 << 20;  // text layers are re-hashed when read

std::string errno_text() { return std::strerror(errno); }

std::string parent_of(const std::string& path) { return fs::path(path).parent_path().string(); }

// A temporary name next to `path`, unique within this process and across processes.
std::string temp_name_for(const std::string& path) {
  static std::atomic<uint64_t> counter{0};
  const fs::path p(path);
  return (p.parent_path() / (std::string(kTmpPrefix) + p.filename().string() + "-" +
                             std::to_string(getpid()) + "-" + std::to_string(counter++)))
      .string();
}

Status fsync_dir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return Status::error(dir + ": " + errno_text());
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return Status::error(dir + ": fsync: " + errno_text());
  return Status();
}

Status write_all(int fd, const char* data, size_t n, const std::string& what) {
  while (n > 0) {
    const ssize_t w = ::write(fd, data, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return Status::error("writing " + what + ": " + errno_text());
    data += w;
    n -= static_cast<size_t>(w);
  }
  return Status();
}

Result<std::string> read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::error(path + ": cannot read");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Json params_json(const Parameters& params) {
  Json j = Json::object();
  for (const auto& [name, values] : params) {
    auto type = parameter_type(name);
    if (!type.ok() || values.empty()) continue;
    if (*type == ParamType::kStringList) {
      j[name] = values;
    } else if (*type == ParamType::kInt) {
      j[name] = std::stoll(values.back());
    } else {
      j[name] = std::stod(values.back());
    }
  }
  return j;
}

Result<Parameters> params_from_json(const Json& j, const std::string& where) {
  if (!j.is_object()) return Status::error(where + ": parameters are not a JSON object");
  Parameters out;
  for (const auto& [name, value] : j.items()) {
    std::vector<std::string> values;
    if (value.is_array()) {
      for (const auto& v : value) values.push_back(v.is_string() ? v.get<std::string>() : v.dump());
    } else {
      values.push_back(value.is_string() ? value.get<std::string>() : value.dump());
    }
    for (const auto& v : values) {
      Status s = add_parameter(out, name, v);
      if (!s.ok()) return Status::error(where + ": " + s.message());
    }
  }
  return out;
}

// The config blob, as Ollama writes it (its `show` reads model_family from here).
std::string config_bytes(std::string_view arch) {
  return Json{{"model_format", "gguf"},
              {"model_family", arch},
              {"model_families", Json::array({arch})},
              {"os", "linux"},
              {"architecture", "amd64"}}
      .dump();
}

Json layer_json(const Layer& l) {
  return Json{{"mediaType", l.media_type}, {"digest", l.digest}, {"size", l.size}};
}

Result<Layer> layer_from_json(const Json& j, const std::string& where) {
  if (!j.is_object() || !j.contains("mediaType") || !j.contains("digest") || !j.contains("size") ||
      !j["mediaType"].is_string() || !j["digest"].is_string() || !j["size"].is_number_unsigned()) {
    return Status::error(where + ": a layer needs mediaType, digest and size");
  }
  Layer l{j["mediaType"].get<std::string>(), j["digest"].get<std::string>(),
          j["size"].get<uint64_t>()};
  auto hex = parse_digest(l.digest);
  if (!hex.ok()) return Status::error(where + ": " + hex.error());
  return l;
}

}  // namespace

Result<std::string> default_store_root() {
  const char* env = std::getenv("MINNOW_MODELS");
  if (env && *env) return std::string(env);
  const char* home = std::getenv("HOME");
  if (!home || !*home)
    return Status::error("cannot locate the model store: neither MINNOW_MODELS nor HOME is set");
  return std::string(home) + "/.minnow/models";
}

Result<Store> Store::open_default() {
  auto root = default_store_root();
  if (!root.ok()) return root.status();
  return Store(*root);
}

Status write_file_atomic(const std::string& path, std::string_view bytes) {
  const std::string tmp = temp_name_for(path);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return Status::error(tmp + ": " + errno_text());
  Status s = write_all(fd, bytes.data(), bytes.size(), path);
  if (s.ok() && ::fsync(fd) != 0) s = Status::error(path + ": fsync: " + errno_text());
  if (::close(fd) != 0 && s.ok()) s = Status::error(path + ": close: " + errno_text());
  if (s.ok() && ::rename(tmp.c_str(), path.c_str()) != 0)
    s = Status::error(path + ": rename: " + errno_text());
  if (!s.ok()) {
    ::unlink(tmp.c_str());
    return s;
  }
  return fsync_dir(parent_of(path));
}

Result<std::string> validate_gguf(const std::string& path) {
  auto f = gguf::File::open(path);
  if (!f.ok()) return Status::error("not a valid GGUF file: " + f.error());
  auto arch = (*f)->get_string("general.architecture");
  if (!arch.ok()) return Status::error("not a model: " + arch.error());
  return std::string(*arch);
}

std::string Store::blob_path(std::string_view hex) const {
  return root_ + "/blobs/" + blob_file_name(hex);
}

std::string Store::manifest_file(const ModelName& name) const {
  return root_ + "/manifests/" + name.manifest_path();
}

Status Store::ensure_dirs() {
  std::error_code ec;
  fs::create_directories(root_ + "/blobs", ec);
  if (!ec) fs::create_directories(root_ + "/manifests", ec);
  if (ec) return Status::error("cannot create the model store at " + root_ + ": " + ec.message());
  return Status();
}

Store::Lock::~Lock() {
  if (fd_ >= 0) ::close(fd_);  // closing releases the flock
}

Result<Store::Lock> Store::lock() {
  MINNOW_RETURN_IF_ERROR(ensure_dirs());
  const std::string path = root_ + "/.lock";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return Status::error(path + ": " + errno_text());
  while (::flock(fd, LOCK_EX) != 0) {
    if (errno != EINTR) {
      ::close(fd);
      return Status::error(path + ": flock: " + errno_text());
    }
  }
  return Lock(fd);
}

bool Store::has_blob(std::string_view hex) const {
  std::error_code ec;
  return fs::is_regular_file(blob_path(hex), ec);
}

Result<Layer> Store::put_blob(std::string_view bytes, std::string_view media_type) {
  MINNOW_RETURN_IF_ERROR(ensure_dirs());
  const std::string hex = sha256_hex(bytes);
  Layer layer{std::string(media_type), "sha256:" + hex, bytes.size()};
  if (has_blob(hex)) return layer;
  MINNOW_RETURN_IF_ERROR(write_file_atomic(blob_path(hex), bytes));
  return layer;
}

Result<Layer> Store::import_file(const std::string& path, std::string_view media_type, bool link,
                                 const std::optional<std::string>& known_hex) {
  MINNOW_RETURN_IF_ERROR(ensure_dirs());
  std::error_code ec;
  const uint64_t size = fs::file_size(path, ec);
  if (ec) return Status::error(path + ": " + ec.message());
  if (known_hex && has_blob(*known_hex) && fs::file_size(blob_path(*known_hex), ec) == size)
    return Layer{std::string(media_type), "sha256:" + *known_hex, size};

  const std::string tmp = temp_name_for(root_ + "/blobs/import");
  auto finish = [&](const std::string& hex) -> Result<Layer> {
    if (known_hex && hex != *known_hex) {
      ::unlink(tmp.c_str());
      return Status::error(path + ": sha256 is " + hex + ", expected " + *known_hex);
    }
    if (::rename(tmp.c_str(), blob_path(hex).c_str()) != 0) {
      const std::string err = errno_text();
      ::unlink(tmp.c_str());
      return Status::error(blob_path(hex) + ": rename: " + err);
    }
    MINNOW_RETURN_IF_ERROR(fsync_dir(root_ + "/blobs"));
    return Layer{std::string(media_type), "sha256:" + hex, size};
  };

  // A hard link shares the cached file's blocks: the store costs no extra disk.
  if (link && ::link(path.c_str(), tmp.c_str()) == 0) {
    if (known_hex) return finish(*known_hex);
    auto hex = sha256_file(tmp);
    if (!hex.ok()) {
      ::unlink(tmp.c_str());
      return hex.status();
    }
    return finish(*hex);
  }

  int in = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) return Status::error(path + ": " + errno_text());
  int out = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (out < 0) {
    const std::string err = errno_text();
    ::close(in);
    return Status::error(tmp + ": " + err);
  }
  Sha256 h;
  std::vector<char> buf(kChunk);
  Status s;
  uint64_t copied = 0;
  while (s.ok()) {
    const ssize_t n = ::read(in, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      s = Status::error(path + ": read: " + errno_text());
      break;
    }
    if (n == 0) break;
    h.update(buf.data(), static_cast<size_t>(n));
    s = write_all(out, buf.data(), static_cast<size_t>(n), "a blob of the model store");
    copied += static_cast<uint64_t>(n);
  }
  if (s.ok() && copied != size) s = Status::error(path + ": changed size while being copied");
  if (s.ok() && ::fsync(out) != 0) s = Status::error(tmp + ": fsync: " + errno_text());
  ::close(in);
  if (::close(out) != 0 && s.ok()) s = Status::error(tmp + ": close: " + errno_text());
  if (!s.ok()) {
    ::unlink(tmp.c_str());
    return s;
  }
  return finish(h.hex());
}

Result<Layer> Store::adopt_file(const std::string& tmp_path, const std::string& hex,
                                std::string_view media_type) {
  MINNOW_RETURN_IF_ERROR(ensure_dirs());
  std::error_code ec;
  const uint64_t size = fs::file_size(tmp_path, ec);
  if (ec) return Status::error(tmp_path + ": " + ec.message());
  if (::rename(tmp_path.c_str(), blob_path(hex).c_str()) != 0)
    return Status::error(blob_path(hex) + ": rename: " + errno_text());
  MINNOW_RETURN_IF_ERROR(fsync_dir(root_ + "/blobs"));
  return Layer{std::string(media_type), "sha256:" + hex, size};
}

Result<Manifest> Store::read_manifest(const std::string& path) const {
  auto text = read_text(path);
  if (!text.ok()) return text.status();
  Json j = Json::parse(*text, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return Status::error(path + ": the manifest is not a JSON object");
  Manifest m;
  if (!j.contains("config")) return Status::error(path + ": the manifest has no config");
  auto config = layer_from_json(j["config"], path);
  if (!config.ok()) return config.status();
  m.config = *config;
  if (!j.contains("layers") || !j["layers"].is_array())
    return Status::error(path + ": the manifest has no layers");
  for (const auto& l : j["layers"]) {
    auto layer = layer_from_json(l, path);
    if (!layer.ok()) return layer.status();
    m.layers.push_back(*layer);
  }
  return m;
}

Result<StoredModel> Store::load(const ModelName& name, const std::string& path) const {
  auto manifest = read_manifest(path);
  if (!manifest.ok()) return manifest.status();
  auto bytes = read_text(path);
  if (!bytes.ok()) return bytes.status();
  StoredModel out;
  out.name = name;
  out.id = sha256_hex(*bytes);
  out.manifest = *manifest;
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) out.modified = st.st_mtime;
  const std::string who = "model '" + name.display() + "'";

  // Small layers are read (and re-hashed); the model layer is only checked to be there.
  auto read_layer = [&](const Layer& l) -> Result<std::string> {
    const std::string hex = *parse_digest(l.digest);
    auto text = read_text(blob_path(hex));
    if (!text.ok()) return Status::error(who + ": blob " + l.digest + " is missing");
    if (text->size() != l.size || (text->size() < kVerifyBelowBytes && sha256_hex(*text) != hex))
      return Status::error(who + ": blob " + l.digest + " is damaged (size or sha256 differs)");
    return std::move(*text);
  };
  if (auto cfg = read_layer(manifest->config); cfg.ok()) {
    Json j = Json::parse(*cfg, nullptr, false);
    if (j.is_object() && j.contains("model_family") && j["model_family"].is_string())
      out.architecture = j["model_family"].get<std::string>();
  } else {
    return cfg.status();
  }
  for (const Layer& l : manifest->layers) {
    out.total_bytes += l.size;
    const std::string hex = *parse_digest(l.digest);
    if (l.media_type == kMediaModel) {
      std::error_code ec;
      const uint64_t size = fs::file_size(blob_path(hex), ec);
      if (ec) return Status::error(who + ": its GGUF blob " + l.digest + " is missing");
      if (size != l.size) {
        return Status::error(who + ": its GGUF blob " + l.digest + " has " + std::to_string(size) +
                             " bytes, the manifest says " + std::to_string(l.size));
      }
      out.model_path = blob_path(hex);
      out.model_digest = l.digest;
      out.model_bytes = l.size;
      continue;
    }
    auto text = read_layer(l);
    if (!text.ok()) return text.status();
    if (l.media_type == kMediaParams) {
      Json j = Json::parse(*text, nullptr, false);
      auto p = params_from_json(j, who);
      if (!p.ok()) return p.status();
      out.parameters = std::move(*p);
    } else if (l.media_type == kMediaTemplate) {
      out.template_text = std::move(*text);
    } else if (l.media_type == kMediaSystem) {
      out.system = std::move(*text);
    } else if (l.media_type == kMediaLicense) {
      out.licenses.push_back(std::move(*text));
    } else if (l.media_type == kMediaMessages) {
      Json j = Json::parse(*text, nullptr, false);
      if (!j.is_array()) return Status::error(who + ": messages are not a JSON list");
      for (const auto& m : j) {
        if (!m.is_object() || !m.contains("role") || !m["role"].is_string() ||
            !m.contains("content") || !m["content"].is_string())
          return Status::error(who + ": a message needs a role and a content");
        out.messages.push_back({m["role"].get<std::string>(), m["content"].get<std::string>()});
      }
    }
    // Other media types (projectors, adapters from Ollama's store) are carried, not used.
  }
  if (out.model_path.empty()) return Status::error(who + ": the manifest has no model layer");
  return out;
}

bool Store::exists(const ModelName& name) const {
  std::error_code ec;
  return fs::is_regular_file(manifest_file(name), ec);
}

Result<StoredModel> Store::get(const ModelName& name) const {
  if (!exists(name)) return Status::error("model '" + name.display() + "' not found");
  return load(name, manifest_file(name));
}

Status Store::put_manifest(const ModelName& name, const Manifest& manifest) {
  Json layers = Json::array();
  for (const Layer& l : manifest.layers) layers.push_back(layer_json(l));
  Json j{{"schemaVersion", 2},
         {"mediaType", kMediaManifest},
         {"config", layer_json(manifest.config)},
         {"layers", layers}};
  // Every blob must be in place before the manifest that names it.
  for (const Layer& l : manifest.layers) {
    auto hex = parse_digest(l.digest);
    if (!hex.ok()) return hex.status();
    if (!has_blob(*hex)) return Status::error("blob " + l.digest + " is not in the store");
  }
  const std::string path = manifest_file(name);
  std::error_code ec;
  fs::create_directories(parent_of(path), ec);
  if (ec) return Status::error(parent_of(path) + ": " + ec.message());
  return write_file_atomic(path, j.dump(-1, ' ', false, Json::error_handler_t::replace));
}

Result<std::vector<StoredModel>> Store::list() const {
  std::vector<StoredModel> out;
  const fs::path dir = root_ + "/manifests";
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return out;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    if (!it->is_regular_file()) continue;
    const fs::path rel = fs::relative(it->path(), dir, ec);
    std::vector<std::string> parts;
    for (const auto& p : rel) parts.push_back(p.string());
    if (parts.size() != 4 || parts[3].starts_with(kTmpPrefix)) continue;
    auto name = parse_model_name(parts[0] + "/" + parts[1] + "/" + parts[2] + ":" + parts[3]);
    if (!name.ok()) continue;
    auto m = load(*name, it->path().string());
    if (m.ok()) out.push_back(std::move(*m));
  }
  std::sort(out.begin(), out.end(), [](const StoredModel& a, const StoredModel& b) {
    return a.name.display() < b.name.display();
  });
  return out;
}

Status Store::copy(const ModelName& source, const ModelName& destination) {
  auto lk = lock();
  if (!lk.ok()) return lk.status();
  auto src = get(source);
  if (!src.ok()) return src.status();
  return put_manifest(destination, src->manifest);
}

Status Store::remove(const ModelName& name) {
  auto lk = lock();
  if (!lk.ok()) return lk.status();
  const std::string path = manifest_file(name);
  if (!exists(name)) return Status::error("model '" + name.display() + "' not found");
  if (::unlink(path.c_str()) != 0) return Status::error(path + ": " + errno_text());
  MINNOW_RETURN_IF_ERROR(fsync_dir(parent_of(path)));
  // Empty folders of the name go too (never manifests/ itself).
  std::error_code ec;
  fs::path p = fs::path(path).parent_path();
  for (int i = 0; i < 3 && fs::is_empty(p, ec) && !ec; ++i) {
    fs::remove(p, ec);
    p = p.parent_path();
  }
  // The model is gone either way; a store whose other manifests cannot be read keeps its
  // blobs (collect_garbage says why) rather than fail the removal.
  (void)collect_garbage_locked();
  return Status();
}

Result<int> Store::collect_garbage() {
  auto lk = lock();
  if (!lk.ok()) return lk.status();
  return collect_garbage_locked();
}

Result<int> Store::collect_garbage_locked() {
  std::set<std::string> referenced;
  const fs::path mdir = root_ + "/manifests";
  std::error_code ec;
  if (fs::is_directory(mdir, ec)) {
    for (auto it = fs::recursive_directory_iterator(mdir, ec); !ec && it != fs::end(it);
         it.increment(ec)) {
      if (!it->is_regular_file() || it->path().filename().string().starts_with(kTmpPrefix))
        continue;
      auto m = read_manifest(it->path().string());
      // A manifest we cannot read might still name blobs: keep everything rather than guess.
      if (!m.ok()) return Status::error("not collecting garbage: " + m.error());
      referenced.insert(m->config.digest.substr(7));
      for (const Layer& l : m->layers) referenced.insert(l.digest.substr(7));
    }
  }
  if (ec) return Status::error(mdir.string() + ": " + ec.message());
  int removed = 0;
  const auto stale = fs::file_time_type::clock::now() - std::chrono::hours(1);
  for (const auto& e : fs::directory_iterator(root_ + "/blobs", ec)) {
    const std::string fname = e.path().filename().string();
    bool drop = false;
    if (fname.starts_with(kTmpPrefix)) {
      drop = e.last_write_time(ec) < stale;  // a crashed write's leftover
    } else if (fname.starts_with("sha256-") && fname.size() == 7 + 64) {
      drop = !referenced.contains(fname.substr(7));
    }
    if (drop && fs::remove(e.path(), ec)) ++removed;
  }
  return removed;
}

Result<Layer> Store::make_config(const std::string& gguf_path) {
  auto arch = validate_gguf(gguf_path);
  if (!arch.ok()) return Status::error(gguf_path + ": " + arch.error());
  return put_blob(config_bytes(*arch), kMediaConfig);
}

Result<StoredModel> Store::register_model(const ModelName& name, const Layer& model_layer) {
  auto lk = lock();
  if (!lk.ok()) return lk.status();
  Manifest m;
  auto cfg = make_config(blob_path(model_layer.digest.substr(7)));
  if (!cfg.ok()) return cfg.status();
  m.config = *cfg;
  m.layers.push_back(model_layer);
  MINNOW_RETURN_IF_ERROR(put_manifest(name, m));
  return get(name);
}

Result<StoredModel> Store::create(const ModelName& name, const Modelfile& mf,
                                  const std::string& base_dir,
                                  const std::function<void(const std::string&)>& progress) {
  auto say = [&](const std::string& s) {
    if (progress) progress(s);
  };
  auto lk = lock();
  if (!lk.ok()) return lk.status();

  Layer model_layer;
  Parameters params;
  std::string template_text, system;
  std::vector<Message> messages;
  std::vector<std::string> licenses;
  std::error_code ec;
  auto from_name = parse_model_name(mf.from);
  const bool path_like = mf.from.find('/') != std::string::npos || mf.from.ends_with(".gguf");
  fs::path from_path(mf.from);
  if (from_path.is_relative() && !base_dir.empty()) from_path = fs::path(base_dir) / from_path;

  if (from_name.ok() && exists(*from_name)) {
    say("using existing model " + from_name->display());
    auto base = get(*from_name);
    if (!base.ok()) return base.status();
    for (const Layer& l : base->manifest.layers) {
      if (l.media_type == kMediaModel) model_layer = l;
    }
    params = base->parameters;
    template_text = base->template_text;
    system = base->system;
    messages = base->messages;
    licenses = base->licenses;
  } else if (const KnownModel* known = find_model(mf.from);
             known && !(path_like && fs::is_regular_file(from_path, ec))) {
    auto cached = resolve_model(mf.from);  // the cache's file, size checked
    if (!cached.ok()) return cached.status();
    say("importing " + cached->path);
    auto l = import_file(cached->path, kMediaModel, /*link=*/true, std::string(known->sha256));
    if (!l.ok()) return l.status();
    model_layer = *l;
  } else if (fs::is_regular_file(from_path, ec)) {
    say("parsing GGUF " + from_path.string());
    auto arch = validate_gguf(from_path.string());
    if (!arch.ok()) return Status::error("FROM " + from_path.string() + ": " + arch.error());
    say("copying model data");
    auto l = import_file(from_path.string(), kMediaModel, /*link=*/false);
    if (!l.ok()) return l.status();
    model_layer = *l;
  } else {
    return Status::error("FROM '" + mf.from + "': no model of that name in the store (" + root_ +
                         ") and no such GGUF file");
  }

  for (const auto& [k, v] : mf.parameters) params[k] = v;
  if (mf.template_text) template_text = *mf.template_text;
  if (mf.system) system = *mf.system;
  if (!mf.messages.empty()) messages = mf.messages;
  if (!mf.licenses.empty()) licenses = mf.licenses;

  Manifest m;
  m.layers.push_back(model_layer);
  auto add = [&](std::string_view bytes, std::string_view media) -> Status {
    auto l = put_blob(bytes, media);
    if (!l.ok()) return l.status();
    m.layers.push_back(*l);
    return Status();
  };
  if (!params.empty()) MINNOW_RETURN_IF_ERROR(add(params_json(params).dump(), kMediaParams));
  if (!template_text.empty()) MINNOW_RETURN_IF_ERROR(add(template_text, kMediaTemplate));
  if (!system.empty()) MINNOW_RETURN_IF_ERROR(add(system, kMediaSystem));
  if (!messages.empty()) {
    Json j = Json::array();
    for (const auto& msg : messages)
      j.push_back(Json{{"role", msg.role}, {"content", msg.content}});
    MINNOW_RETURN_IF_ERROR(add(j.dump(), kMediaMessages));
  }
  for (const auto& l : licenses) MINNOW_RETURN_IF_ERROR(add(l, kMediaLicense));
  auto cfg = make_config(blob_path(model_layer.digest.substr(7)));
  if (!cfg.ok()) return cfg.status();
  m.config = *cfg;
  say("writing manifest");
  MINNOW_RETURN_IF_ERROR(put_manifest(name, m));
  say("success");
  return get(name);
}

Status import_known_models(Store& store) {
  const std::string marker = store.root() + "/.imported-known";
  auto already = [&]() {
    std::set<std::string> names;
    std::ifstream in(marker);
    for (std::string line; std::getline(in, line);) names.insert(line);
    return names;
  };
  auto cache = model_cache_dir();
  if (!cache.ok()) return cache.status();
  std::vector<const KnownModel*> todo;
  std::error_code ec;
  {
    const auto done = already();
    for (const KnownModel& k : known_models()) {
      const std::string file = *cache + "/" + std::string(k.file);
      if (!done.contains(std::string(k.name)) && fs::file_size(file, ec) == k.bytes && !ec)
        todo.push_back(&k);
    }
  }
  if (todo.empty()) return Status();
  auto lk = store.lock();
  if (!lk.ok()) return lk.status();
  auto done = already();  // again, under the lock: another process may have done it
  std::string text;
  for (const auto& n : done) text += n + "\n";
  for (const KnownModel* k : todo) {
    if (done.contains(std::string(k->name))) continue;
    auto name = parse_model_name(k->name);
    if (!name.ok()) return name.status();
    if (!store.exists(*name)) {
      auto layer = store.import_file(*cache + "/" + std::string(k->file), kMediaModel,
                                     /*link=*/true, std::string(k->sha256));
      if (!layer.ok()) return layer.status();
      Manifest m;
      auto cfg = store.put_blob(config_bytes(k->architecture), kMediaConfig);
      if (!cfg.ok()) return cfg.status();
      m.config = *cfg;
      m.layers.push_back(*layer);
      MINNOW_RETURN_IF_ERROR(store.put_manifest(*name, m));
    }
    text += std::string(k->name) + "\n";
  }
  return write_file_atomic(marker, text);
}

}  // namespace minnow::store
