// Replays the GGUF fuzzing corpus (fuzz/corpus/gguf/) through the same checks the fuzzer
// applies (fuzz/gguf_check.h), without libFuzzer: in the ASan/UBSan build this is the fuzzer's
// regression test. Seeds named valid_* must parse and bad_* must be rejected; the others (found
// by the fuzzer) may go either way, but never crash, over-read or break a check.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "fuzz/gguf_check.h"

namespace minnow::gguf_fuzz {
namespace {

namespace fs = std::filesystem;

std::vector<fs::path> corpus_files() {
  std::vector<fs::path> files;
  fs::path dir = fs::path(MINNOW_SOURCE_DIR) / "fuzz" / "corpus" / "gguf";
  if (!fs::is_directory(dir)) return files;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.is_regular_file()) files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

TEST(GgufCorpus, EveryInputPassesTheFuzzerChecks) {
  std::vector<fs::path> files = corpus_files();
  // The corpus is committed; an empty or missing one means this test checks nothing.
  ASSERT_GE(files.size(), 100u) << "fuzz/corpus/gguf/ is missing or nearly empty";
  size_t valid = 0, bad = 0, parsed = 0;
  for (const fs::path& path : files) {
    // An exact-size heap buffer, so that ASan flags a read one byte past the end.
    std::vector<uint8_t> bytes(fs::file_size(path));
    std::ifstream(path, std::ios::binary)
        .read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    CheckResult r = check_input(bytes.data(), bytes.size());
    std::string name = path.filename().string();
    EXPECT_EQ(r.violation, "") << name;
    parsed += r.parsed;
    if (name.rfind("valid_", 0) == 0) {
      ++valid;
      EXPECT_TRUE(r.parsed) << name << ": " << r.error;
    } else if (name.rfind("bad_", 0) == 0) {
      ++bad;
      EXPECT_FALSE(r.parsed) << name << " parsed";
    }
  }
  EXPECT_GE(valid, 10u);
  EXPECT_GE(bad, 50u);
  EXPECT_GT(parsed, valid);  // the fuzzer found valid files of its own as well
}

}  // namespace
}  // namespace minnow::gguf_fuzz
