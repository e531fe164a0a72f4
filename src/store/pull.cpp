#include "store/pull.h"

#include <fcntl.h>
#include <httplib.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "store/registry.h"
#include "store/sha256.h"

namespace minnow::store {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

constexpr std::string_view kDefaultQuant = "Q4_K_M";
constexpr uint64_t kProgressEveryBytes = 1 << 20;

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool is_hex64(std::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

struct Url {
  std::string origin;  // scheme://host[:port]
  std::string path;    // /... (with the query)
};

Result<Url> split_url(const std::string& url) {
  const size_t scheme_end = url.find("://");
  if (scheme_end == std::string::npos) return Status::error("not a URL: " + url);
  const std::string scheme = lower(url.substr(0, scheme_end));
  if (scheme != "http" && scheme != "https")
    return Status::error(url + ": only http:// and https:// URLs can be pulled");
  const size_t slash = url.find('/', scheme_end + 3);
  Url u;
  u.origin = url.substr(0, slash);
  u.path = slash == std::string::npos ? "/" : url.substr(slash);
  if (u.origin.size() <= scheme_end + 3) return Status::error("no host in URL: " + url);
  return u;
}

// Percent-encodes what may not appear raw in a path segment (file names with spaces, '#').
std::string encode_path(std::string_view path) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : path) {
    if (std::isalnum(c) || std::strchr("/-._~", c)) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::unique_ptr<httplib::Client> make_client(const std::string& origin) {
  auto cli = std::make_unique<httplib::Client>(origin);
  cli->set_follow_location(true);  // Hugging Face's resolve/ answers with a redirect to its CDN
  cli->set_connection_timeout(15, 0);
  cli->set_read_timeout(60, 0);
  cli->set_keep_alive(false);
#ifdef CPPHTTPLIB_OPENSSL_SUPPORT
  cli->enable_server_certificate_verification(true);
  for (const char* bundle :
       {"/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt"}) {
    if (fs::exists(bundle)) {
      cli->set_ca_cert_path(bundle);
      break;
    }
  }
#endif
  return cli;
}

// Hugging Face's gated and private repositories want a token: $HF_TOKEN, as its own tools read.
httplib::Headers hf_headers() {
  httplib::Headers h;
  if (const char* token = std::getenv("HF_TOKEN"); token && *token)
    h.emplace("Authorization", std::string("Bearer ") + token);
  return h;
}

std::string http_error(const std::string& url, const httplib::Result& r) {
  if (!r) return url + ": " + httplib::to_string(r.error());
  return url + ": HTTP " + std::to_string(r->status);
}

// The file to fetch and what it must turn out to be.
struct Target {
  std::string url;
  std::string file_name;
  uint64_t size = 0;         // 0: unknown
  std::string hex;           // empty: unknown
  bool huggingface = false;  // send $HF_TOKEN
};

// Hugging Face's tree API: [{"type":"file","path":..,"size":..,"lfs":{"oid":sha256,"size":..}}]
// (the model API's siblings carry the same as lfs.sha256; both spellings are read).
Result<Target> resolve_hf(const PullSource& src, const std::string& endpoint) {
  auto base = split_url(endpoint);
  if (!base.ok()) return Status::error("MINNOW_HF_ENDPOINT: " + base.error());
  const std::string api = base->path == "/" ? "" : base->path;
  const std::string repo_path = "/" + src.user + "/" + src.repo;
  const std::string list_path = api + "/api/models" + repo_path + "/tree/main";
  auto cli = make_client(base->origin);
  auto r = cli->Get(list_path, hf_headers());
  if (!r || r->status != 200) {
    if (r && (r->status == 404 || r->status == 401))
      return Status::error("hf.co" + repo_path + ": no such repository (or it is private)");
    return Status::error("listing hf.co" + repo_path + ": " + http_error(endpoint + list_path, r));
  }
  Json files = Json::parse(r->body, nullptr, false);
  if (files.is_object() && files.contains("siblings")) files = files["siblings"];
  if (!files.is_array())
    return Status::error(endpoint + list_path + ": the answer is not a list of files");
  std::vector<Target> ggufs;
  std::vector<std::string> names;
  for (const auto& f : files) {
    if (!f.is_object()) continue;
    std::string path;
    if (f.contains("path") && f["path"].is_string()) path = f["path"];
    if (f.contains("rfilename") && f["rfilename"].is_string()) path = f["rfilename"];
    if (f.contains("type") && f["type"] != "file") continue;
    if (!lower(path).ends_with(".gguf")) continue;
    Target t;
    t.file_name = path;
    t.huggingface = true;
    t.url = endpoint + repo_path + "/resolve/main/" + encode_path(path);
    if (f.contains("size") && f["size"].is_number_unsigned()) t.size = f["size"];
    if (f.contains("lfs") && f["lfs"].is_object()) {
      const Json& lfs = f["lfs"];
      for (const char* key : {"oid", "sha256"}) {
        if (lfs.contains(key) && lfs[key].is_string() && is_hex64(lfs[key].get<std::string>()))
          t.hex = lower(lfs[key].get<std::string>());
      }
      if (lfs.contains("size") && lfs["size"].is_number_unsigned()) t.size = lfs["size"];
    }
    names.push_back(path);
    const std::string want = lower(src.quant.empty() ? kDefaultQuant : src.quant);
    if (lower(path).find(want) != std::string::npos) ggufs.push_back(t);
  }
  std::string available;
  for (const auto& n : names) available += (available.empty() ? "" : ", ") + n;
  if (names.empty()) return Status::error("hf.co" + repo_path + " has no .gguf file");
  if (ggufs.empty()) {
    return Status::error("hf.co" + repo_path + " has no .gguf file matching '" +
                         (src.quant.empty() ? std::string(kDefaultQuant) : src.quant) +
                         "' (it has: " + available + ")");
  }
  // Several matches (a quant named in a longer one, Q4_K_M and Q4_K_M_L): the shortest name.
  std::sort(ggufs.begin(), ggufs.end(), [](const Target& a, const Target& b) {
    return a.file_name.size() != b.file_name.size() ? a.file_name.size() < b.file_name.size()
                                                    : a.file_name < b.file_name;
  });
  if (ggufs[0].file_name.find("-of-") != std::string::npos)
    return Status::error(ggufs[0].file_name + ": split GGUF files are not supported");
  if (ggufs[0].size == 0) return Status::error(ggufs[0].file_name + ": its size is not published");
  return ggufs[0];
}

// For a plain URL: the size and sha256 the server vouches for, when it does. Hugging Face's
// resolve URLs answer HEAD with a redirect carrying X-Linked-Size and X-Linked-Etag (the LFS
// sha256); otherwise Content-Length is the size and the hash is only computed.
Result<Target> resolve_url(const std::string& url) {
  auto u = split_url(url);
  if (!u.ok()) return u.status();
  Target t;
  t.url = url;
  std::string path = u->path.substr(0, u->path.find('?'));
  t.file_name = path.substr(path.rfind('/') + 1);
  auto cli = make_client(u->origin);
  cli->set_follow_location(false);
  auto r = cli->Head(u->path);
  if (!r) return Status::error(http_error(url, r));
  if (r->status >= 400) return Status::error(http_error(url, r));
  if (r->has_header("X-Linked-Size"))
    t.size = std::strtoull(r->get_header_value("X-Linked-Size").c_str(), nullptr, 10);
  if (r->has_header("X-Linked-Etag")) {
    std::string etag = r->get_header_value("X-Linked-Etag");
    etag.erase(std::remove(etag.begin(), etag.end(), '"'), etag.end());
    if (etag.starts_with("W/")) etag = etag.substr(2);
    if (is_hex64(etag)) t.hex = lower(etag);
  }
  if (t.size == 0 && r->status == 200 && r->has_header("Content-Length"))
    t.size = std::strtoull(r->get_header_value("Content-Length").c_str(), nullptr, 10);
  return t;
}

struct Downloader {
  const Target& target;
  std::string partial;  // the file being written
  const PullOptions& options;
  std::string digest;  // for progress lines

  bool report(uint64_t completed) const {
    if (!options.progress) return true;
    PullProgress p;
    p.status = target.hex.empty() ? "downloading " + target.file_name
                                  : "pulling " + target.hex.substr(0, 12);
    p.digest = digest;
    p.total = target.size;
    p.completed = completed;
    return options.progress(p);
  }

  // Fetches target.url into `partial`, resuming from what is there. Returns the bytes on disk.
  Result<uint64_t> run() {
    std::error_code ec;
    uint64_t have = fs::exists(partial, ec) ? fs::file_size(partial, ec) : 0;
    if (target.size && have > target.size) {  // not ours to resume: start over
      fs::remove(partial, ec);
      have = 0;
    }
    auto u = split_url(target.url);
    if (!u.ok()) return u.status();
    std::string last_error;
    // One writer per partial file: a second pull of the same file (the CLI while the server
    // pulls it) is told so instead of interleaving its bytes.
    const int fd = ::open(partial.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return Status::error(partial + ": " + std::strerror(errno));
    struct CloseFd {
      int fd;
      ~CloseFd() { ::close(fd); }
    } close_fd{fd};
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0)
      return Status::error("another pull is downloading " + target.file_name + " (" + partial +
                           ")");
    for (int attempt = 0; attempt < std::max(1, options.max_attempts); ++attempt) {
      if (target.size && have == target.size) return have;
      if (attempt > 0) std::this_thread::sleep_for(std::chrono::milliseconds(200 * attempt));
      if (::ftruncate(fd, static_cast<off_t>(have)) != 0 ||
          ::lseek(fd, static_cast<off_t>(have), SEEK_SET) < 0) {
        return Status::error(partial + ": " + std::strerror(errno));
      }
      std::string fatal;  // errors that a retry cannot fix
      bool cancelled = false;
      uint64_t next_report = have;
      httplib::Headers headers = target.huggingface ? hf_headers() : httplib::Headers{};
      if (have > 0) headers.emplace("Range", "bytes=" + std::to_string(have) + "-");
      auto cli = make_client(u->origin);
      auto r = cli->Get(
          u->path, headers,
          [&](const httplib::Response& res) {
            uint64_t total = 0;
            if (res.status == 206) {
              // Content-Range: bytes START-END/TOTAL
              const std::string cr = res.get_header_value("Content-Range");
              uint64_t start = 0;
              if (std::sscanf(cr.c_str(), "bytes %lu-%*u/%lu", &start, &total) < 1 ||
                  start != have) {
                fatal = target.url + ": the server resumed at the wrong offset (" + cr + ")";
                return false;
              }
            } else if (res.status == 200) {
              if (have > 0) {  // the server ignored Range: take the whole file again
                if (::ftruncate(fd, 0) != 0 || ::lseek(fd, 0, SEEK_SET) < 0) {
                  fatal = partial + ": " + std::strerror(errno);
                  return false;
                }
                have = 0;
              }
              if (res.has_header("Content-Length"))
                total = std::strtoull(res.get_header_value("Content-Length").c_str(), nullptr, 10);
            } else if (res.status == 416 && target.size && have == target.size) {
              return false;  // already complete
            } else {
              fatal = target.url + ": HTTP " + std::to_string(res.status);
              return false;
            }
            if (target.size && total && total != target.size) {
              fatal = target.url + ": the server sends " + std::to_string(total) +
                      " bytes, but the published size is " + std::to_string(target.size);
              return false;
            }
            return true;
          },
          [&](const char* data, size_t n) {
            if (target.size && have + n > target.size) {
              fatal = target.url + ": more data than the published size (" +
                      std::to_string(target.size) + " bytes)";
              return false;
            }
            size_t off = 0;
            while (off < n) {
              const ssize_t w = ::write(fd, data + off, n - off);
              if (w < 0 && errno == EINTR) continue;
              if (w <= 0) {
                fatal = partial + ": " + std::strerror(errno);
                return false;
              }
              off += static_cast<size_t>(w);
            }
            have += n;
            if (have >= next_report) {
              next_report = have + kProgressEveryBytes;
              if (!report(have)) {
                cancelled = true;
                return false;
              }
            }
            return true;
          });
      const bool synced = ::fsync(fd) == 0;
      if (cancelled)
        return Status::error("pull cancelled (the partial download is kept: " + partial + ")");
      if (!fatal.empty()) return Status::error(fatal);
      if (!synced) return Status::error(partial + ": fsync: " + std::strerror(errno));
      if (r && (r->status == 200 || r->status == 206)) {
        report(have);
        if (target.size == 0 || have == target.size) return have;
        last_error = "the connection ended after " + std::to_string(have) + " of " +
                     std::to_string(target.size) + " bytes";
        continue;
      }
      if (r && r->status == 416) return have;
      last_error = http_error(target.url, r) + " after " + std::to_string(have) + " bytes";
    }
    return Status::error("download failed after " + std::to_string(options.max_attempts) +
                         " attempts (" + last_error + "); run pull again to resume from " +
                         std::to_string(have) + " bytes");
  }
};

std::string name_from_file(std::string_view file) {
  std::string stem(file.substr(0, file.rfind('.')));
  std::string out;
  for (char c : lower(stem)) {
    out +=
        (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.') ? c : '-';
  }
  while (!out.empty() && !std::isalnum(static_cast<unsigned char>(out.front()))) out.erase(0, 1);
  if (out.size() > 80) out.resize(80);
  return out.empty() ? "model" : out;
}

}  // namespace

std::string hf_endpoint() {
  const char* env = std::getenv("MINNOW_HF_ENDPOINT");
  std::string ep = env && *env ? env : "https://huggingface.co";
  while (!ep.empty() && ep.back() == '/') ep.pop_back();
  return ep;
}

Result<PullSource> parse_pull_spec(std::string_view spec) {
  PullSource src;
  const std::string s(spec);
  if (lower(s).starts_with("http://") || lower(s).starts_with("https://")) {
    auto u = split_url(s);
    if (!u.ok()) return u.status();
    std::string path = u->path.substr(0, u->path.find('?'));
    const std::string file = path.substr(path.rfind('/') + 1);
    if (!lower(file).ends_with(".gguf"))
      return Status::error(s + ": a URL to pull must name a .gguf file");
    src.url = s;
    auto name = parse_model_name(name_from_file(file));
    if (!name.ok()) return name.status();
    src.name = *name;
    return src;
  }
  auto name = parse_model_name(spec);
  if (!name.ok()) return name.status();
  const std::string host = lower(name->host);
  if ((host != "hf.co" && host != "huggingface.co") || name->ns == kDefaultNamespace) {
    return Status::error("cannot pull '" + s +
                         "': minnow pulls hf.co/USER/REPO[:QUANT] (a GGUF repository on Hugging "
                         "Face) or an https://…/file.gguf URL, not models of Ollama's registry");
  }
  src.huggingface = true;
  src.user = name->ns;
  src.repo = name->model;
  const bool tagged = spec.substr(spec.rfind('/')).find(':') != std::string_view::npos;
  src.quant = tagged ? name->tag : "";
  src.name = *name;
  return src;
}

Result<StoredModel> pull(Store& store, std::string_view spec, const PullOptions& options) {
  auto say = [&](const std::string& status) {
    if (options.progress) options.progress(PullProgress{status, "", 0, 0});
  };
  // The known models (smollm2:135m...) come from the cache setup fills, not from a registry:
  // pulling one registers it, so clients that pull before they chat work as with Ollama.
  if (find_model(spec) != nullptr) {
    auto known = parse_model_name(spec);
    if (!known.ok()) return known.status();
    say("pulling manifest");
    if (!store.exists(*known)) {
      Modelfile mf;
      mf.from = std::string(spec);
      auto m = store.create(*known, mf, "");
      if (!m.ok()) return m.status();
    }
    say("success");
    return store.get(*known);
  }
  auto src = parse_pull_spec(spec);
  if (!src.ok()) return src.status();
  ModelName name = src->name;
  if (!options.name.empty()) {
    auto n = parse_model_name(options.name);
    if (!n.ok()) return n.status();
    name = *n;
  }
  say("pulling manifest");
  auto target =
      src->huggingface
          ? resolve_hf(*src, options.hf_endpoint.empty() ? hf_endpoint() : options.hf_endpoint)
          : resolve_url(src->url);
  if (!target.ok()) return target.status();

  std::error_code ec;
  fs::create_directories(store.root() + "/blobs", ec);
  if (ec) return Status::error(store.root() + "/blobs: " + ec.message());
  Layer layer;
  if (!target->hex.empty() && store.has_blob(target->hex) &&
      fs::file_size(store.blob_path(target->hex), ec) == target->size) {
    layer = Layer{std::string(kMediaModel), "sha256:" + target->hex, target->size};
    if (options.progress)
      options.progress(
          {"pulling " + target->hex.substr(0, 12), layer.digest, layer.size, layer.size});
  } else {
    // Known hash: the partial is named by it (as Ollama does), so any pull of the same file
    // resumes it; unknown: by the URL's hash.
    const std::string partial = target->hex.empty()
                                    ? store.root() + "/blobs/partial-" + sha256_hex(target->url)
                                    : store.blob_path(target->hex) + "-partial";
    Downloader d{*target, partial, options, target->hex.empty() ? "" : "sha256:" + target->hex};
    auto got = d.run();
    if (!got.ok()) {
      // A server that contradicts the published size cannot be resumed from: start clean.
      if (got.error().find("published size") != std::string::npos) fs::remove(partial, ec);
      return got.status();
    }
    if (target->size && *got != target->size) {
      fs::remove(partial, ec);
      return Status::error(target->url + ": got " + std::to_string(*got) + " bytes, expected " +
                           std::to_string(target->size));
    }
    say("verifying sha256 digest");
    auto hex = sha256_file(partial);
    if (!hex.ok()) return hex.status();
    if (!target->hex.empty() && *hex != target->hex) {
      fs::remove(partial, ec);
      return Status::error(target->url + ": sha256 mismatch: the download hashes to " + *hex +
                           ", the published sha256 is " + target->hex +
                           " (the download was deleted)");
    }
    auto arch = validate_gguf(partial);
    if (!arch.ok()) {
      fs::remove(partial, ec);
      return Status::error(target->url + ": " + arch.error() + " (the download was deleted)");
    }
    auto adopted = store.adopt_file(partial, *hex, kMediaModel);
    if (!adopted.ok()) return adopted.status();
    layer = *adopted;
  }
  say("writing manifest");
  auto m = store.register_model(name, layer);
  if (!m.ok()) return m.status();
  say("success");
  return m;
}

}  // namespace minnow::store
