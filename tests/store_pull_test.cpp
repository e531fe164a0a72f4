// `pull` against a Hugging Face stand-in served in-process on loopback (cpp-httplib): resume
// after a dropped connection and after a cancel, refusal of a wrong size / wrong hash / non-GGUF
// download with nothing registered, and how specs name models. Runs under ASan in CI (the
// Python tests drive the same paths through the binary).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <sys/file.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "gguf/gguf.h"
#include "store/pull.h"
#include "store/sha256.h"
#include "store/store.h"

namespace minnow::store {
namespace {

namespace fs = std::filesystem;

std::string gguf_bytes(float fill, size_t n) {
  gguf::Writer w;
  w.add_string("general.architecture", "llama");
  std::vector<float> data(n, fill);
  EXPECT_TRUE(w.add_tensor("t", TensorType::F32, {n}, data.data(), n * 4).ok());
  auto bytes = w.to_bytes();
  return std::string(bytes.begin(), bytes.end());
}

struct HubFile {
  std::string data;
  std::optional<uint64_t> published_size;
  std::optional<std::string> published_sha;
  int drop_first = 0;  // downloads cut off half way
};

// /api/models/U/R/tree/main, /U/R/resolve/main/F (302 to /cdn/U/R/F), /cdn/U/R/F with Range.
class Hub {
 public:
  Hub() {
    srv_.Get(R"(/api/models/([^/]+)/([^/]+)/tree/main)", [this](const httplib::Request& req,
                                                                httplib::Response& res) {
      std::lock_guard<std::mutex> g(mu_);
      nlohmann::json list = nlohmann::json::array();
      bool any = false;
      for (auto& [key, f] : files_) {
        if (key.rfind(req.matches[1].str() + "/" + req.matches[2].str() + "/", 0) != 0) continue;
        any = true;
        const std::string name = key.substr(key.rfind('/') + 1);
        const uint64_t size = f.published_size.value_or(f.data.size());
        list.push_back(
            {{"type", "file"},
             {"path", name},
             {"size", size},
             {"lfs", {{"oid", f.published_sha.value_or(sha256_hex(f.data))}, {"size", size}}}});
      }
      if (!any) {
        res.status = 404;
        return;
      }
      res.set_content(list.dump(), "application/json");
    });
    srv_.Get(R"(/([^/]+)/([^/]+)/resolve/main/([^/]+))",
             [](const httplib::Request& req, httplib::Response& res) {
               res.set_redirect("/cdn/" + req.matches[1].str() + "/" + req.matches[2].str() + "/" +
                                req.matches[3].str());
             });
    srv_.Get(R"(/cdn/(.+))", [this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard<std::mutex> g(mu_);
      ranges_.push_back(req.get_header_value("Range"));
      auto it = files_.find(req.matches[1].str());
      if (it == files_.end()) {
        res.status = 404;
        return;
      }
      HubFile& f = it->second;
      // cpp-httplib's server applies the Range header itself (206, Content-Range) to what the
      // provider offers: the whole file, at absolute offsets.
      size_t start = 0;
      const std::string range = req.get_header_value("Range");
      if (range.rfind("bytes=", 0) == 0) start = std::stoull(range.substr(6));
      const bool drop = f.drop_first > 0;
      if (drop) --f.drop_first;
      const size_t cut = start + (f.data.size() - start) / 2;
      const std::string data = f.data;
      res.set_content_provider(
          data.size(), "application/octet-stream",
          [data, drop, cut](size_t offset, size_t length, httplib::DataSink& sink) {
            if (drop && offset >= cut) return false;  // the connection dies half way
            size_t n = std::min<size_t>(length, 64 * 1024);
            if (drop) n = std::min(n, cut - offset);
            sink.write(data.data() + offset, n);
            return true;
          });
    });
    port_ = srv_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { srv_.listen_after_bind(); });
  }
  ~Hub() {
    srv_.stop();
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  void add(const std::string& key, HubFile f) {
    std::lock_guard<std::mutex> g(mu_);
    files_[key] = std::move(f);
  }
  std::vector<std::string> ranges() {
    std::lock_guard<std::mutex> g(mu_);
    return ranges_;
  }

 private:
  httplib::Server srv_;
  int port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::map<std::string, HubFile> files_;
  std::vector<std::string> ranges_;
};

class PullTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "minnow-pull-XXXXXX").string();
    dir_ = mkdtemp(tmpl.data());
    store_.emplace(dir_ + "/models");
    opts_.hf_endpoint = hub_.url();
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::vector<std::string> blobs() {
    std::vector<std::string> out;
    std::error_code ec;
    for (auto& e : fs::directory_iterator(dir_ + "/models/blobs", ec))
      out.push_back(e.path().filename().string());
    return out;
  }

  Hub hub_;
  std::string dir_;
  std::optional<Store> store_;
  PullOptions opts_;
};

TEST_F(PullTest, ResumesADroppedConnectionAndVerifies) {
  const std::string data = gguf_bytes(1.0f, 100000);
  hub_.add("u/Repo-GGUF/repo-Q4_K_M.gguf", {data, {}, {}, 1});
  hub_.add("u/Repo-GGUF/repo-Q8_0.gguf", {gguf_bytes(2.0f, 10), {}, {}, 0});
  std::vector<PullProgress> seen;
  opts_.progress = [&](const PullProgress& p) {
    seen.push_back(p);
    return true;
  };
  auto m = pull(*store_, "hf.co/u/Repo-GGUF", opts_);
  ASSERT_TRUE(m.ok()) << m.error();
  EXPECT_EQ(m->name.display(), "hf.co/u/Repo-GGUF:latest");
  EXPECT_EQ(m->model_digest, "sha256:" + sha256_hex(data));
  const auto ranges = hub_.ranges();
  ASSERT_EQ(ranges.size(), 2u);
  EXPECT_EQ(ranges[0], "");
  EXPECT_EQ(ranges[1], "bytes=" + std::to_string(data.size() / 2) + "-");
  EXPECT_EQ(seen.front().status, "pulling manifest");
  EXPECT_EQ(seen.back().status, "success");
  EXPECT_FALSE(fs::exists(store_->blob_path(sha256_hex(data)) + "-partial"));
}

TEST_F(PullTest, CancelKeepsThePartialForTheNextPull) {
  const std::string data = gguf_bytes(3.0f, 1 << 20);  // 4 MiB: several progress reports
  hub_.add("u/Big/big-Q4_K_M.gguf", {data, {}, {}, 0});
  opts_.progress = [](const PullProgress& p) { return p.completed < (2u << 20); };
  auto cancelled = pull(*store_, "hf.co/u/Big", opts_);
  ASSERT_FALSE(cancelled.ok());
  EXPECT_NE(cancelled.error().find("cancelled"), std::string::npos) << cancelled.error();
  const std::string partial = store_->blob_path(sha256_hex(data)) + "-partial";
  ASSERT_TRUE(fs::exists(partial));
  const uint64_t kept = fs::file_size(partial);
  EXPECT_GT(kept, 0u);
  EXPECT_LT(kept, data.size());
  EXPECT_FALSE(store_->exists(*parse_model_name("hf.co/u/Big")));
  opts_.progress = nullptr;
  auto m = pull(*store_, "hf.co/u/Big", opts_);
  ASSERT_TRUE(m.ok()) << m.error();
  EXPECT_EQ(hub_.ranges().back(), "bytes=" + std::to_string(kept) + "-");
}

TEST_F(PullTest, WrongSizeWrongHashAndNotGgufRegisterNothing) {
  const std::string data = gguf_bytes(4.0f, 1000);
  hub_.add("u/Size/s-Q4_K_M.gguf", {data, data.size() + 10, {}, 0});
  hub_.add("u/Hash/h-Q4_K_M.gguf", {data, {}, std::string(64, 'c'), 0});
  hub_.add("u/Junk/j-Q4_K_M.gguf", {std::string(5000, 'j'), {}, {}, 0});
  auto size = pull(*store_, "hf.co/u/Size", opts_);
  ASSERT_FALSE(size.ok());
  EXPECT_NE(size.error().find("published size"), std::string::npos) << size.error();
  auto hash = pull(*store_, "hf.co/u/Hash", opts_);
  ASSERT_FALSE(hash.ok());
  EXPECT_NE(hash.error().find("sha256 mismatch"), std::string::npos) << hash.error();
  auto junk = pull(*store_, "hf.co/u/Junk", opts_);
  ASSERT_FALSE(junk.ok());
  EXPECT_NE(junk.error().find("not a valid GGUF file"), std::string::npos) << junk.error();
  EXPECT_TRUE(store_->list()->empty());
  EXPECT_TRUE(blobs().empty()) << blobs()[0];
}

TEST_F(PullTest, OnePullPerFileAtATime) {
  const std::string data = gguf_bytes(6.0f, 1000);
  hub_.add("u/Busy/b-Q4_K_M.gguf", {data, {}, {}, 0});
  fs::create_directories(dir_ + "/models/blobs");
  const std::string partial = store_->blob_path(sha256_hex(data)) + "-partial";
  const int fd = ::open(partial.c_str(), O_WRONLY | O_CREAT, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::flock(fd, LOCK_EX), 0);  // as another pull holds it
  auto busy = pull(*store_, "hf.co/u/Busy", opts_);
  ::close(fd);
  ASSERT_FALSE(busy.ok());
  EXPECT_NE(busy.error().find("another pull is downloading"), std::string::npos) << busy.error();
  EXPECT_TRUE(pull(*store_, "hf.co/u/Busy", opts_).ok());
}

TEST_F(PullTest, MissingRepositoryAndQuant) {
  hub_.add("u/Only/only-Q8_0.gguf", {gguf_bytes(5.0f, 10), {}, {}, 0});
  auto repo = pull(*store_, "hf.co/u/Absent", opts_);
  ASSERT_FALSE(repo.ok());
  EXPECT_NE(repo.error().find("no such repository"), std::string::npos) << repo.error();
  auto quant = pull(*store_, "hf.co/u/Only", opts_);  // default Q4_K_M
  ASSERT_FALSE(quant.ok());
  EXPECT_NE(quant.error().find("no .gguf file matching 'Q4_K_M' (it has: only-Q8_0.gguf)"),
            std::string::npos)
      << quant.error();
}

TEST(PullSpec, NamesAndRefusals) {
  auto hf = parse_pull_spec("hf.co/bartowski/SmolLM2-GGUF:Q6_K");
  ASSERT_TRUE(hf.ok()) << hf.error();
  EXPECT_TRUE(hf->huggingface);
  EXPECT_EQ(hf->user, "bartowski");
  EXPECT_EQ(hf->repo, "SmolLM2-GGUF");
  EXPECT_EQ(hf->quant, "Q6_K");
  auto untagged = parse_pull_spec("huggingface.co/a/b");
  ASSERT_TRUE(untagged.ok());
  EXPECT_EQ(untagged->quant, "");
  EXPECT_EQ(untagged->name.tag, "latest");
  auto url = parse_pull_spec("https://example.com/x/My Model.Q4_K_M.gguf?download=1");
  ASSERT_TRUE(url.ok()) << url.error();
  EXPECT_EQ(url->name.display(), "my-model.q4_k_m:latest");
  for (const char* bad : {"llama3", "library/llama3:8b", "hf.co/../x", "ftp://h/x.gguf",
                          "https://h/readme.txt", "hf.co/u"}) {
    EXPECT_FALSE(parse_pull_spec(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace minnow::store
