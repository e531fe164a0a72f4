// The model store on disk: create / cp / rm / list, garbage collection, refusal of damaged or
// hostile manifests, and atomicity (a blob write that fails leaves no manifest and no litter).
#include "store/store.h"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "gguf/gguf.h"
#include "store/registry.h"
#include "store/sha256.h"

namespace minnow::store {
namespace {

namespace fs = std::filesystem;

class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() {
    if (old_)
      setenv(name_, old_->c_str(), 1);
    else
      unsetenv(name_);
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "minnow-store-XXXXXX").string();
    dir_ = mkdtemp(tmpl.data());
    root_ = dir_ + "/models";
    // The known models of the real cache must not leak into these stores.
    cache_.emplace("MINNOW_CACHE", dir_ + "/empty-cache");
    models_.emplace("MINNOW_MODELS", root_);
  }
  void TearDown() override {
    models_.reset();
    cache_.reset();
    fs::remove_all(dir_);
  }

  // A small GGUF the reader accepts: an architecture and one f32 tensor of `n` values.
  std::string make_gguf(const std::string& name, size_t n = 1000, float fill = 1.0f) {
    gguf::Writer w;
    w.add_string("general.architecture", "llama");
    std::vector<float> data(n, fill);
    EXPECT_TRUE(w.add_tensor("t", TensorType::F32, {n}, data.data(), n * 4).ok());
    const std::string path = dir_ + "/" + name;
    EXPECT_TRUE(w.write(path).ok());
    return path;
  }

  std::string write_text(const std::string& name, const std::string& text) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path, std::ios::binary) << text;
    return path;
  }

  Modelfile modelfile(const std::string& text) {
    auto mf = parse_modelfile(text);
    EXPECT_TRUE(mf.ok()) << mf.error();
    return mf.ok() ? *mf : Modelfile{};
  }

  ModelName name(const std::string& text) { return *parse_model_name(text); }

  std::set<std::string> files_under(const std::string& sub) {
    std::set<std::string> out;
    std::error_code ec;
    for (auto& e : fs::recursive_directory_iterator(root_ + "/" + sub, ec))
      if (e.is_regular_file()) out.insert(fs::relative(e.path(), root_ + "/" + sub).string());
    return out;
  }

  std::string dir_, root_;
  std::optional<ScopedEnv> cache_, models_;
};

TEST_F(StoreTest, CreateFromGgufThenResolveByName) {
  const std::string gguf = make_gguf("tiny.gguf");
  Store s(root_);
  std::vector<std::string> statuses;
  auto m = s.create(name("tiny"), modelfile(R"(FROM ./tiny.gguf
PARAMETER temperature 0.25
PARAMETER stop <end>
PARAMETER stop "###"
TEMPLATE {{ .Prompt }}
SYSTEM Be terse.
MESSAGE user hi
MESSAGE assistant hello
LICENSE MIT)"),
                    dir_, [&](const std::string& st) { statuses.push_back(st); });
  ASSERT_TRUE(m.ok()) << m.error();
  EXPECT_EQ(statuses.back(), "success");
  const std::string hex = *sha256_file(gguf);
  EXPECT_EQ(m->model_digest, "sha256:" + hex);
  EXPECT_EQ(m->model_path, root_ + "/blobs/sha256-" + hex);
  EXPECT_EQ(m->architecture, "llama");
  EXPECT_TRUE(fs::exists(root_ + "/manifests/registry.ollama.ai/library/tiny/latest"));
  // The blob is a copy: changing the original later must not change the model.
  EXPECT_NE(fs::hard_link_count(gguf), 2u);

  auto r = resolve_model("tiny");
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_TRUE(r->from_store);
  EXPECT_EQ(r->name, "tiny:latest");
  EXPECT_EQ(r->path, m->model_path);
  EXPECT_EQ(r->digest, "sha256:" + hex);
  EXPECT_EQ(r->parameters.at("temperature"), std::vector<std::string>{"0.25"});
  EXPECT_EQ(r->parameters.at("stop"), (std::vector<std::string>{"<end>", "###"}));
  EXPECT_EQ(r->template_text, "{{ .Prompt }}");
  EXPECT_EQ(r->system, "Be terse.");
  EXPECT_EQ(r->messages, (std::vector<Message>{{"user", "hi"}, {"assistant", "hello"}}));
  EXPECT_EQ(r->licenses, std::vector<std::string>{"MIT"});
  // Paths still resolve to themselves.
  auto p = resolve_model(gguf);
  ASSERT_TRUE(p.ok());
  EXPECT_FALSE(p->from_store);
  EXPECT_EQ(p->path, gguf);
}

TEST_F(StoreTest, CreateFromAModelInheritsAndOverrides) {
  make_gguf("tiny.gguf");
  Store s(root_);
  ASSERT_TRUE(s.create(name("base"),
                       modelfile("FROM tiny.gguf\nPARAMETER temperature 0.5\n"
                                 "PARAMETER top_k 7\nSYSTEM base system\n"),
                       dir_)
                  .ok());
  auto child =
      s.create(name("me/child:v1"), modelfile("FROM base\nPARAMETER temperature 0.9\n"), dir_);
  ASSERT_TRUE(child.ok()) << child.error();
  EXPECT_EQ(child->parameters.at("temperature"), std::vector<std::string>{"0.9"});
  EXPECT_EQ(child->parameters.at("top_k"), std::vector<std::string>{"7"});
  EXPECT_EQ(child->system, "base system");
  EXPECT_EQ(child->model_digest, s.get(name("base"))->model_digest);
  EXPECT_TRUE(fs::exists(root_ + "/manifests/registry.ollama.ai/me/child/v1"));
}

TEST_F(StoreTest, CreateRefusesBadSources) {
  Store s(root_);
  auto missing = s.create(name("x"), modelfile("FROM ./absent.gguf\n"), dir_);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().find("no such GGUF file"), std::string::npos) << missing.error();
  write_text("junk.gguf", "this is not a gguf file at all, just text");
  auto junk = s.create(name("x"), modelfile("FROM ./junk.gguf\n"), dir_);
  ASSERT_FALSE(junk.ok());
  EXPECT_NE(junk.error().find("not a valid GGUF file"), std::string::npos) << junk.error();
  EXPECT_FALSE(s.exists(name("x")));
  EXPECT_TRUE(files_under("blobs").empty());
}

TEST_F(StoreTest, CopyListRemoveAndGarbageCollection) {
  make_gguf("a.gguf", 1000, 1.0f);
  make_gguf("b.gguf", 1000, 2.0f);
  Store s(root_);
  ASSERT_TRUE(s.create(name("a"), modelfile("FROM a.gguf\nSYSTEM sa\n"), dir_).ok());
  ASSERT_TRUE(s.create(name("b"), modelfile("FROM b.gguf\n"), dir_).ok());
  ASSERT_TRUE(s.copy(name("a"), name("team/a-copy:v2")).ok());
  auto missing = s.copy(name("nope"), name("x"));
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.message().find("model 'nope:latest' not found"), std::string::npos);

  auto list = s.list();
  ASSERT_TRUE(list.ok());
  std::vector<std::string> names;
  for (const auto& m : *list) names.push_back(m.name.display());
  EXPECT_EQ(names, (std::vector<std::string>{"a:latest", "b:latest", "team/a-copy:v2"}));
  EXPECT_EQ((*list)[0].id, (*list)[2].id);  // the same manifest bytes

  const auto blobs_before = files_under("blobs");
  const std::string a_model = s.get(name("a"))->model_path;
  // a's blobs are still used by the copy: removing a deletes none of them.
  ASSERT_TRUE(s.remove(name("a")).ok());
  EXPECT_EQ(files_under("blobs"), blobs_before);
  EXPECT_FALSE(s.exists(name("a")));
  EXPECT_FALSE(fs::exists(root_ + "/manifests/registry.ollama.ai/library/a"));
  // The last user goes: its model blob and its system blob go with it; b's stay.
  ASSERT_TRUE(s.remove(name("team/a-copy:v2")).ok());
  EXPECT_FALSE(fs::exists(a_model));
  EXPECT_TRUE(fs::exists(s.get(name("b"))->model_path));
  EXPECT_EQ(files_under("blobs").size(), 2u);  // b: model + config
  auto again = s.remove(name("a"));
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.message().find("not found"), std::string::npos);
}

TEST_F(StoreTest, DamagedOrHostileManifestsAreRefused) {
  make_gguf("a.gguf");
  Store s(root_);
  ASSERT_TRUE(s.create(name("a"), modelfile("FROM a.gguf\nSYSTEM hello\n"), dir_).ok());
  const std::string manifest = root_ + "/manifests/registry.ollama.ai/library/a/latest";
  std::ifstream in(manifest);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());

  // A digest that tries to leave blobs/.
  std::string hostile = text;
  const size_t at = hostile.find("sha256:", hostile.find("layers"));
  hostile.replace(at, 71, "sha256:../../../../../../etc/passwd");
  write_file_atomic(manifest, hostile);
  auto r = s.get(name("a"));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("invalid digest"), std::string::npos) << r.error();
  // The GC refuses to guess while a manifest is unreadable.
  EXPECT_FALSE(s.collect_garbage().ok());

  // A blob changed on disk (the system text) is noticed.
  write_file_atomic(manifest, text);
  auto good = s.get(name("a"));
  ASSERT_TRUE(good.ok()) << good.error();
  for (const Layer& l : good->manifest.layers) {
    if (l.media_type == kMediaSystem) write_file_atomic(s.blob_path(l.digest.substr(7)), "HELLO");
  }
  auto damaged = s.get(name("a"));
  ASSERT_FALSE(damaged.ok());
  EXPECT_NE(damaged.error().find("damaged"), std::string::npos) << damaged.error();

  // A missing model blob is named.
  write_file_atomic(manifest, text);
  fs::remove(good->model_path);
  auto gone = s.get(name("a"));
  ASSERT_FALSE(gone.ok());
  EXPECT_NE(gone.error().find("GGUF blob"), std::string::npos) << gone.error();
  // Not JSON at all.
  write_file_atomic(manifest, "{not json");
  EXPECT_FALSE(s.get(name("a")).ok());
  // list() skips what it cannot read rather than failing the whole listing.
  EXPECT_TRUE(s.list()->empty());
}

// A full disk in miniature: RLIMIT_FSIZE makes write() fail with EFBIG part way through the
// model blob. The store must answer with an error, write no manifest, and leave no file behind.
TEST_F(StoreTest, FailedBlobWriteLeavesNoManifestAndNoLitter) {
  make_gguf("big.gguf", 64 * 1024);  // 256 KiB of tensor data
  Store s(root_);
  ASSERT_TRUE(s.lock().ok());  // creates the folders before the limit applies
  struct rlimit old {};
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old), 0);
  auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  struct rlimit small = old;
  small.rlim_cur = 100 * 1024;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &small), 0);
  auto m = s.create(name("big"), modelfile("FROM big.gguf\n"), dir_);
  setrlimit(RLIMIT_FSIZE, &old);
  std::signal(SIGXFSZ, old_handler);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.error().find("writing a blob"), std::string::npos) << m.error();
  EXPECT_FALSE(s.exists(name("big")));
  EXPECT_TRUE(files_under("manifests").empty());
  EXPECT_TRUE(files_under("blobs").empty()) << *files_under("blobs").begin();
  // With room again, the same create succeeds.
  EXPECT_TRUE(s.create(name("big"), modelfile("FROM big.gguf\n"), dir_).ok());
}

TEST_F(StoreTest, AtomicWriteReplacesWholeOrNotAtAll) {
  fs::create_directories(root_);
  const std::string path = root_ + "/f";
  ASSERT_TRUE(write_file_atomic(path, "first").ok());
  ASSERT_TRUE(write_file_atomic(path, "second").ok());
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text, "second");
  // Into a folder that does not exist: an error, nothing written.
  EXPECT_FALSE(write_file_atomic(root_ + "/no/such/dir/f", "x").ok());
  EXPECT_EQ(std::distance(fs::directory_iterator(root_), fs::directory_iterator()), 1);
}

TEST_F(StoreTest, StaleTemporaryFilesAreCollected) {
  make_gguf("a.gguf");
  Store s(root_);
  ASSERT_TRUE(s.create(name("a"), modelfile("FROM a.gguf\n"), dir_).ok());
  // What a crash mid-write leaves: a temporary file, and a blob no manifest names.
  const std::string tmp = root_ + "/blobs/.tmp-import-1-0";
  std::ofstream(tmp) << "half a blob";
  fs::last_write_time(tmp, fs::file_time_type::clock::now() - std::chrono::hours(2));
  const std::string fresh_tmp = root_ + "/blobs/.tmp-import-1-1";  // maybe being written now
  std::ofstream(fresh_tmp) << "in progress";
  const std::string orphan = s.blob_path(std::string(64, 'e'));
  std::ofstream(orphan) << "orphan";
  const std::string partial = s.blob_path(std::string(64, 'f')) + "-partial";  // a paused pull
  std::ofstream(partial) << "resumable";
  auto n = s.collect_garbage();
  ASSERT_TRUE(n.ok()) << n.error();
  EXPECT_EQ(*n, 2);
  EXPECT_FALSE(fs::exists(tmp));
  EXPECT_FALSE(fs::exists(orphan));
  EXPECT_TRUE(fs::exists(fresh_tmp));
  EXPECT_TRUE(fs::exists(partial));
  EXPECT_TRUE(s.get(name("a")).ok());
}

TEST_F(StoreTest, KnownModelsOfTheCacheAreImportedOnceByHardLink) {
  const KnownModel& k = known_models()[0];
  // A stand-in for the cached file: right size (sparse), and the table's sha256 is trusted
  // as setup verified it. validate is not run on import, so any bytes do.
  fs::create_directories(dir_ + "/cache");
  ScopedEnv cache("MINNOW_CACHE", dir_ + "/cache");
  const std::string cached = dir_ + "/cache/" + std::string(k.file);
  std::ofstream(cached).put('x');
  fs::resize_file(cached, k.bytes);
  Store s(root_);
  ASSERT_TRUE(import_known_models(s).ok());
  const ModelName n = name(std::string(k.name));
  ASSERT_TRUE(s.exists(n));
  EXPECT_EQ(fs::hard_link_count(cached), 2u);  // linked, not copied
  auto r = resolve_model(k.name);
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_TRUE(r->from_store);
  EXPECT_EQ(r->digest, "sha256:" + std::string(k.sha256));
  // Removed by the user: not imported again.
  ASSERT_TRUE(s.remove(n).ok());
  EXPECT_EQ(fs::hard_link_count(cached), 1u);
  ASSERT_TRUE(import_known_models(s).ok());
  EXPECT_FALSE(s.exists(n));
}

}  // namespace
}  // namespace minnow::store
