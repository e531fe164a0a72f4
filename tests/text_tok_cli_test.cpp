// `minnow tokenize` and `minnow detokenize`, run in-process on a synthetic vocabulary written
// to a temporary GGUF file, with stdin/stdout redirected through files.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "tests/text_tok_vocab.h"

namespace {

namespace fs = std::filesystem;
using minnow::text::testing::byte_level_spec;
using minnow::text::testing::VocabSpec;

std::string write_vocab(const VocabSpec& spec, const std::string& name) {
  minnow::gguf::Writer w;
  w.add_string("general.architecture", "llama");
  w.add_string("tokenizer.ggml.model", spec.model);
  w.add_string("tokenizer.ggml.pre", spec.pre);
  w.add_string_array("tokenizer.ggml.tokens", spec.tokens);
  w.add_i32_array("tokenizer.ggml.token_type", spec.types);
  w.add_string_array("tokenizer.ggml.merges", spec.merges);
  const std::string path = (fs::temp_directory_path() / name).string();
  EXPECT_TRUE(w.write(path).ok());
  return path;
}

struct CliRun {
  int status = 0;
  std::string out;
  std::string err;
};

// Runs `minnow ARGS...` with `input` on stdin.
CliRun run(std::vector<std::string> args, const std::string& input = "") {
  const fs::path dir = fs::temp_directory_path();
  // Per process: ctest runs the tests of this file in parallel.
  const std::string tag = std::to_string(getpid());
  const std::string in_path = (dir / ("minnow_tok_cli_in_" + tag)).string();
  const std::string out_path = (dir / ("minnow_tok_cli_out_" + tag)).string();
  std::ofstream(in_path, std::ios::binary) << input;

  CLI::App app{"minnow"};
  app.require_subcommand(1);
  minnow::cli::register_tokenize(app);
  minnow::cli::register_detokenize(app);
  std::vector<const char*> argv{"minnow"};
  for (const std::string& a : args) argv.push_back(a.c_str());

  std::fflush(stdout);
  const int saved_in = dup(0), saved_out = dup(1);
  const int in_fd = open(in_path.c_str(), O_RDONLY);
  const int out_fd = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  dup2(in_fd, 0);
  dup2(out_fd, 1);
  clearerr(stdin);  // forget the end of the previous run's input
  std::cin.clear();
  CliRun r;
  try {
    app.parse(static_cast<int>(argv.size()), argv.data());
  } catch (const CLI::ParseError& e) {
    r.status = 2;
    r.err = e.what();
  } catch (const std::exception& e) {
    r.status = 1;
    r.err = e.what();
  }
  std::fflush(stdout);
  dup2(saved_in, 0);
  dup2(saved_out, 1);
  close(in_fd);
  close(out_fd);
  close(saved_in);
  close(saved_out);
  clearerr(stdin);
  std::cin.clear();
  std::ifstream f(out_path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  r.out = ss.str();
  fs::remove(in_path);
  fs::remove(out_path);
  return r;
}

class TokCli : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = write_vocab(byte_level_spec(), "minnow_tok_cli_" + std::to_string(getpid()) + ".gguf");
  }
  void TearDown() override { fs::remove(path_); }
  std::string path_;
};

TEST_F(TokCli, TokenizeJson) {
  CliRun r = run({"tokenize", path_, "hello world", "--json"});
  ASSERT_EQ(r.status, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["ids"], nlohmann::json({259, 264}));
  EXPECT_EQ(j["pieces"], nlohmann::json({"hello", " world"}));
}

TEST_F(TokCli, TokenizeTableAndIds) {
  CliRun r = run({"tokenize", path_, "hello\n"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "259\thello\n10\t\\n\n");
  r = run({"tokenize", path_, "--ids"}, "hello world");  // text from stdin
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "259 264\n");
}

TEST_F(TokCli, ParseSpecialOnlyWhenAsked) {
  CliRun r = run({"tokenize", path_, "hello<|endoftext|>", "--ids"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out.find("266"), std::string::npos) << r.out;
  r = run({"tokenize", path_, "hello<|endoftext|>", "--ids", "--parse-special"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "259 266\n");
}

TEST_F(TokCli, Detokenize) {
  CliRun r = run({"detokenize", path_, "259", "264"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "hello world\n");
  r = run({"detokenize", path_}, "[259, 264, 266]");  // ids from stdin, JSON-style
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "hello world\n");
  r = run({"detokenize", path_, "259,266", "--special"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "hello<|endoftext|>\n");
}

TEST_F(TokCli, Errors) {
  CliRun r = run({"detokenize", path_, "259", "99999"});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("99999"), std::string::npos) << r.err;
  r = run({"detokenize", path_, "12x"});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("not a token id"), std::string::npos) << r.err;
  r = run({"tokenize", (fs::temp_directory_path() / "no_such_model.gguf").string(), "x"});
  EXPECT_EQ(r.status, 1);
  EXPECT_FALSE(r.err.empty());
}

}  // namespace
