// The model registry (compiled from scripts/models.tsv) and name/path resolution.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "store/registry.h"

namespace minnow::store {
namespace {

namespace fs = std::filesystem;

// Sets an environment variable for one test and restores it afterwards.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) {
      setenv(name, value, 1);
    } else {
      unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (old_) {
      setenv(name_, old_->c_str(), 1);
    } else {
      unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "minnow-store-XXXXXX").string();
    path_ = mkdtemp(tmpl.data());
  }
  ~TempDir() { fs::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

void make_file(const std::string& path, uint64_t bytes) {
  std::ofstream(path).put('x');
  fs::resize_file(path, bytes);  // sparse: the size is what resolution checks
}

struct Row {
  std::string name, arch, file;
  uint64_t bytes;
  std::string sha256;
};

std::vector<Row> manifest_rows() {
  std::ifstream in(std::string(MINNOW_SOURCE_DIR) + "/scripts/models.tsv");
  std::vector<Row> rows;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::vector<std::string> cols;
    std::stringstream ss(line);
    for (std::string col; std::getline(ss, col, '\t');) cols.push_back(col);
    if (cols.size() < 5) continue;
    rows.push_back({cols[0], cols[1], cols[2], std::stoull(cols[3]), cols[4]});
  }
  return rows;
}

TEST(Registry, MatchesTheManifestRowForRow) {
  std::vector<Row> rows = manifest_rows();
  ASSERT_GE(rows.size(), 2u);
  ASSERT_EQ(known_models().size(), rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    const KnownModel& m = known_models()[i];
    EXPECT_EQ(m.name, rows[i].name);
    EXPECT_EQ(m.architecture, rows[i].arch);
    EXPECT_EQ(m.file, rows[i].file);
    EXPECT_EQ(m.bytes, rows[i].bytes);
    EXPECT_EQ(m.sha256, rows[i].sha256);
    EXPECT_EQ(m.sha256.size(), 64u);
  }
  EXPECT_EQ(default_model().name, "smollm2:135m");
  EXPECT_EQ(find_model("gemma3:270m")->file, "gemma-3-270m-q4_k_m.gguf");
  EXPECT_EQ(find_model("gemma3"), nullptr);
  EXPECT_EQ(known_model_names(), "smollm2:135m, gemma3:270m");
}

TEST(Registry, CacheDirFollowsMinnowCacheThenHome) {
  {
    ScopedEnv cache("MINNOW_CACHE", "/somewhere/models");
    EXPECT_EQ(*model_cache_dir(), "/somewhere/models");
  }
  ScopedEnv cache("MINNOW_CACHE", "");
  ScopedEnv home("HOME", "/home/someone");
  EXPECT_EQ(*model_cache_dir(), "/home/someone/.cache/minnow/models");
  ScopedEnv no_home("HOME", nullptr);
  auto r = model_cache_dir();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("MINNOW_CACHE"), std::string::npos);
}

TEST(Resolve, KnownNameFindsTheFileInTheCache) {
  TempDir dir;
  ScopedEnv cache("MINNOW_CACHE", dir.path().c_str());
  // An empty store, so that these names are looked up in the cache (store_store_test covers
  // names in the store).
  const std::string store = dir.path() + "/store";
  ScopedEnv models("MINNOW_MODELS", store.c_str());
  const KnownModel& m = *find_model("smollm2:135m");
  make_file(dir.path() + "/" + std::string(m.file), m.bytes);
  auto r = resolve_model("smollm2:135m");
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(r->path, dir.path() + "/" + std::string(m.file));
  EXPECT_EQ(r->known, &m);
}

TEST(Resolve, KnownNameMissingFromCacheSaysHowToFetch) {
  TempDir dir;
  ScopedEnv cache("MINNOW_CACHE", dir.path().c_str());
  // An empty store, so that these names are looked up in the cache (store_store_test covers
  // names in the store).
  const std::string store = dir.path() + "/store";
  ScopedEnv models("MINNOW_MODELS", store.c_str());
  auto r = resolve_model("gemma3:270m");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("not in the model cache"), std::string::npos) << r.error();
  EXPECT_NE(r.error().find("quickstart.sh"), std::string::npos) << r.error();
}

TEST(Resolve, KnownNameWithWrongSizeIsRejected) {
  TempDir dir;
  ScopedEnv cache("MINNOW_CACHE", dir.path().c_str());
  // An empty store, so that these names are looked up in the cache (store_store_test covers
  // names in the store).
  const std::string store = dir.path() + "/store";
  ScopedEnv models("MINNOW_MODELS", store.c_str());
  const KnownModel& m = *find_model("gemma3:270m");
  make_file(dir.path() + "/" + std::string(m.file), m.bytes - 1);  // e.g. a truncated copy
  auto r = resolve_model("gemma3:270m");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("expected " + std::to_string(m.bytes)), std::string::npos) << r.error();
}

TEST(Resolve, PathsResolveToThemselves) {
  TempDir dir;
  std::string path = dir.path() + "/my model.gguf";
  make_file(path, 100);
  auto r = resolve_model(path);
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(r->path, path);
  EXPECT_EQ(r->known, nullptr);

  auto missing = resolve_model(dir.path() + "/absent.gguf");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().find("no such file"), std::string::npos) << missing.error();

  auto directory = resolve_model(dir.path());
  ASSERT_FALSE(directory.ok());
  EXPECT_NE(directory.error().find("not a regular file"), std::string::npos);
}

TEST(Resolve, UnknownNameListsTheKnownOnes) {
  TempDir dir;
  const std::string store = dir.path() + "/store";
  ScopedEnv models("MINNOW_MODELS", store.c_str());
  auto r = resolve_model("llama3:8b");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("unknown model 'llama3:8b'"), std::string::npos) << r.error();
  for (const KnownModel& m : known_models()) {
    EXPECT_NE(r.error().find(std::string(m.name)), std::string::npos) << r.error();
  }
}

}  // namespace
}  // namespace minnow::store
