// The model store ($MINNOW_MODELS, default ~/.minnow/models), laid out as Ollama lays out its
// own so that the two read alike:
//   blobs/sha256-<hex>                       content-addressed files (GGUF, params, text)
//   manifests/<host>/<namespace>/<model>/<tag>  JSON: a config and layers {mediaType, digest, size}
// Every write goes to a temporary file in the same folder, is fsync'ed and renamed into place,
// so a crash or a full disk leaves either the old state or the new one, never a torn file; a
// manifest is written only after all its blobs are in place. Writers take an flock on
// <root>/.lock so that `rm`'s garbage collection never sees a half-made model.
#pragma once

#include <cstdint>
#include <ctime>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "store/modelfile.h"
#include "store/names.h"
#include "util/status.h"

namespace minnow::store {

constexpr std::string_view kMediaModel = "application/vnd.ollama.image.model";
constexpr std::string_view kMediaParams = "application/vnd.ollama.image.params";
constexpr std::string_view kMediaTemplate = "application/vnd.ollama.image.template";
constexpr std::string_view kMediaSystem = "application/vnd.ollama.image.system";
constexpr std::string_view kMediaMessages = "application/vnd.ollama.image.messages";
constexpr std::string_view kMediaLicense = "application/vnd.ollama.image.license";
constexpr std::string_view kMediaConfig = "application/vnd.docker.container.image.v1+json";
constexpr std::string_view kMediaManifest = "application/vnd.docker.distribution.manifest.v2+json";

struct Layer {
  std::string media_type;
  std::string digest;  // "sha256:<hex>"
  uint64_t size = 0;
};

struct Manifest {
  Layer config;
  std::vector<Layer> layers;
};

// A model as its manifest describes it, with its text layers read.
struct StoredModel {
  ModelName name;
  std::string id;  // sha256 hex of the manifest file (`minnow list` shows its first 12)
  Manifest manifest;
  std::string model_path;    // the GGUF blob
  std::string model_digest;  // "sha256:<hex>"
  uint64_t model_bytes = 0;
  uint64_t total_bytes = 0;  // all layers
  std::time_t modified = 0;  // manifest mtime
  std::string architecture;  // from the config blob
  Parameters parameters;
  std::string template_text;
  std::string system;
  std::vector<Message> messages;
  std::vector<std::string> licenses;
};

// $MINNOW_MODELS when set and non-empty, else $HOME/.minnow/models.
Result<std::string> default_store_root();

class Store {
 public:
  // Opening creates nothing: folders are made by the first write, so lookups in a store that
  // does not exist yet simply find nothing.
  explicit Store(std::string root) : root_(std::move(root)) {}
  static Result<Store> open_default();

  const std::string& root() const { return root_; }
  std::string blob_path(std::string_view hex) const;
  std::string manifest_file(const ModelName& name) const;

  // Blobs. put_blob stores bytes; import_file stores a file's content, copying it, or (link)
  // hard-linking it when on the same file system so that a cached model is not stored twice.
  // `known_hex`: the file's sha256 when already verified (setup's table); else it is computed.
  Result<Layer> put_blob(std::string_view bytes, std::string_view media_type);
  Result<Layer> import_file(const std::string& path, std::string_view media_type, bool link,
                            const std::optional<std::string>& known_hex = std::nullopt);
  // Moves a downloaded file whose sha256 was checked to be `hex` into blobs/.
  Result<Layer> adopt_file(const std::string& tmp_path, const std::string& hex,
                           std::string_view media_type);
  bool has_blob(std::string_view hex) const;

  // Manifests.
  Result<StoredModel> get(const ModelName& name) const;  // error "model 'x' not found" if absent
  bool exists(const ModelName& name) const;
  Status put_manifest(const ModelName& name, const Manifest& manifest);
  Result<std::vector<StoredModel>> list() const;  // sorted by name; unreadable ones skipped
  Status copy(const ModelName& source, const ModelName& destination);
  // Removes the manifest, then every blob no other manifest references.
  Status remove(const ModelName& name);
  // Deletes unreferenced blobs and temporary files older than an hour (a crash's leftovers);
  // returns how many files went.
  Result<int> collect_garbage();

  // Builds a model from a Modelfile: FROM names a model in this store, a known model of the
  // cache (smollm2:135m before setup registered it) or a GGUF file (relative to base_dir),
  // which is validated and copied in. Settings of a FROM model are inherited; the Modelfile's
  // override them (parameters one by one). `progress` hears "status" lines.
  Result<StoredModel> create(const ModelName& name, const Modelfile& modelfile,
                             const std::string& base_dir,
                             const std::function<void(const std::string&)>& progress = {});

  // Registers a GGUF blob already in blobs/ as `name`, with the config it needs.
  Result<StoredModel> register_model(const ModelName& name, const Layer& model_layer);

  // Exclusive lock on the store for a sequence of writes (flock on <root>/.lock).
  class Lock {
   public:
    explicit Lock(int fd) : fd_(fd) {}
    Lock(Lock&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
    Lock(const Lock&) = delete;
    ~Lock();

   private:
    int fd_;
  };
  Result<Lock> lock();

 private:
  Status ensure_dirs();
  Result<Manifest> read_manifest(const std::string& path) const;
  Result<StoredModel> load(const ModelName& name, const std::string& path) const;
  Result<Layer> make_config(const std::string& gguf_path);
  Result<int> collect_garbage_locked();

  std::string root_;
};

// Registers the known models of the cache (scripts/models.tsv: smollm2:135m, gemma3:270m) that
// setup fetched, hard-linking their files into blobs/ (a copy across file systems). Each name is
// imported once: <root>/.imported-known remembers it, so `minnow rm smollm2:135m` sticks.
// Cheap when there is nothing to do; called by `minnow list`, `minnow pull` and GET /api/tags.
Status import_known_models(Store& store);

// Writes `bytes` to `path` through a temporary file in the same folder: fsync, rename, fsync
// of the folder. On any error the temporary file is removed and `path` is untouched.
Status write_file_atomic(const std::string& path, std::string_view bytes);
// Checks that `path` is a GGUF file the reader accepts; returns general.architecture.
Result<std::string> validate_gguf(const std::string& path);

}  // namespace minnow::store
