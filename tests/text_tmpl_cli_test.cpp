// `minnow template`, run in-process on a GGUF written here: stdout is exactly the rendered
// prompt; the ChatML fallback warns on stderr; bad input is an error naming the file.
#include <gtest/gtest.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "gguf/gguf.h"

namespace minnow::cli {
namespace {

namespace fs = std::filesystem;

class TemplateCommand : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("minnow_tmpl_cli_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
            "_" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write(const std::string& name, const std::string& text) {
    const fs::path p = dir_ / name;
    std::ofstream(p, std::ios::binary) << text;
    return p.string();
  }

  std::string model(bool with_template) {
    gguf::Writer w;
    w.add_string("general.architecture", "llama");
    w.add_string_array("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>"});
    w.add_u32("tokenizer.ggml.bos_token_id", 1);
    w.add_u32("tokenizer.ggml.eos_token_id", 2);
    if (with_template) {
      w.add_string(
          "tokenizer.chat_template",
          "{{ bos_token }}{% for m in messages %}<{{ m.role }}>{{ m.content }}{{ eos_token }}"
          "{% endfor %}{% if tools %}[{{ tools|map(attribute='function.name')|join(',') }}]"
          "{% endif %}{% if add_generation_prompt %}<assistant>{% endif %}"
          "{% if flag is defined %}({{ flag }}){% endif %}");
    }
    const fs::path p = dir_ / (with_template ? "with.gguf" : "without.gguf");
    EXPECT_TRUE(w.write(p.string()).ok());
    return p.string();
  }

  // Runs `minnow template ARGS...`; returns stdout, sets *error to the exception text if any.
  std::string run(std::vector<std::string> argv, std::string* error = nullptr) {
    CLI::App app;
    register_template(app);
    argv.insert(argv.begin(), "template");
    std::reverse(argv.begin(), argv.end());  // CLI11 takes a reversed vector
    ::testing::internal::CaptureStdout();
    try {
      app.parse(argv);
    } catch (const std::exception& e) {
      if (error) *error = e.what();
    }
    return ::testing::internal::GetCapturedStdout();
  }

  fs::path dir_;
};

TEST_F(TemplateCommand, PrintsExactlyTheRenderedPrompt) {
  const std::string gguf = model(true);
  const std::string msgs = write("m.json", R"([{"role": "user", "content": "hi"}])");
  EXPECT_EQ(run({gguf, "--messages", msgs}), "<s><user>hi</s>");
  EXPECT_EQ(run({gguf, "--messages", msgs, "--add-generation-prompt"}),
            "<s><user>hi</s><assistant>");
  const std::string tools = write("t.json", R"([{"type": "function", "function": {"name": "f"}},
                                               {"type": "function", "function": {"name": "g"}}])");
  EXPECT_EQ(run({gguf, "--messages", msgs, "--tools", tools}), "<s><user>hi</s>[f,g]");
  EXPECT_EQ(run({gguf, "--messages", msgs, "--var", "flag=false"}), "<s><user>hi</s>(False)");
  EXPECT_EQ(run({gguf, "--messages", msgs, "--var", "flag=word"}), "<s><user>hi</s>(word)");
}

TEST_F(TemplateCommand, AcceptsARequestBodyAndATemplateOverride) {
  const std::string gguf = model(true);
  const std::string body = write("b.json", R"({"messages": [{"role": "user", "content": "x"}],
      "tools": [{"type": "function", "function": {"name": "t"}}]})");
  EXPECT_EQ(run({gguf, "--messages", body}), "<s><user>x</s>[t]");
  const std::string tmpl = write("o.jinja", "{{ messages|length }}{{ eos_token }}\n");
  EXPECT_EQ(run({gguf, "--messages", body, "--template", tmpl}), "1</s>");
}

TEST_F(TemplateCommand, FallsBackToChatML) {
  const std::string msgs = write("m.json", R"([{"role": "user", "content": "hi"}])");
  ::testing::internal::CaptureStderr();
  const std::string out = run({model(false), "--messages", msgs, "--add-generation-prompt"});
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(out, "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_NE(err.find("no tokenizer.chat_template"), std::string::npos) << err;
}

TEST_F(TemplateCommand, ErrorsNameTheProblem) {
  const std::string gguf = model(true);
  std::string error;
  run({gguf, "--messages", write("bad.json", "[{")}, &error);
  EXPECT_NE(error.find("bad.json: invalid JSON"), std::string::npos) << error;
  error.clear();
  run({gguf, "--messages", write("obj.json", R"({"msgs": []})")}, &error);
  EXPECT_NE(error.find("no \"messages\""), std::string::npos) << error;
  error.clear();
  const std::string raising = write("r.jinja", "{{ raise_exception('roles must alternate') }}");
  run({gguf, "--messages", write("m.json", "[]"), "--template", raising}, &error);
  EXPECT_NE(error.find("roles must alternate"), std::string::npos) << error;
}

}  // namespace
}  // namespace minnow::cli
