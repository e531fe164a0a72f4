// Byte-for-byte agreement with Python jinja2 as Hugging Face sets it up: every published
// template over every test conversation, and single interpreter features. The expected outputs
// are produced by tests/golden/templates/generate.py.
#include <gtest/gtest.h>

#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "gguf/gguf.h"
#include "text/chat_template.h"

namespace minnow::text {
namespace {

using Json = nlohmann::ordered_json;
namespace fs = std::filesystem;

const fs::path kGoldenDir = fs::path(MINNOW_SOURCE_DIR) / "tests/golden/templates";

std::string read_file(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

Json load_json(const fs::path& p) { return Json::parse(read_file(p)); }

// The instant the generator pins strftime_now to (a naive local time).
std::time_t pinned_now(const Json& golden) {
  std::tm tm{};
  std::istringstream in(golden["strftime_now"].get<std::string>());
  in >> std::get_time(&tm, "%Y-%m-%dT%H:%M:%S");
  tm.tm_isdst = -1;
  return std::mktime(&tm);
}

jinja::Value to_value(const Json& j) {
  auto v = value_from_json(j);
  EXPECT_TRUE(v.ok()) << v.error();
  return v.ok() ? *v : jinja::Value();
}

fs::path model_dir() {
  const char* env = std::getenv("MINNOW_CACHE");
  if (env && *env) return env;
  const char* home = std::getenv("HOME");
  return fs::path(home ? home : ".") / ".cache/minnow/models";
}

// Checks one rendering against its golden: same text, or a failure where jinja2 failed (with
// the same message when the template itself raised).
bool matches(const Json& expected, const Result<std::string>& got, std::string* why) {
  if (expected.contains("output")) {
    if (!got.ok()) {
      *why = "failed: " + got.error();
      return false;
    }
    if (*got != expected["output"].get<std::string>()) {
      *why = "output differs:\n--- minnow\n" + *got + "\n--- jinja2\n" +
             expected["output"].get<std::string>();
      return false;
    }
    return true;
  }
  const Json& err = expected["error"];
  if (got.ok()) {
    *why = "rendered, but jinja2 failed with " + err["type"].get<std::string>() + ": " +
           err["message"].get<std::string>() + "\n--- minnow\n" + *got;
    return false;
  }
  if (err["type"] == "TemplateError" &&
      got.error().find(err["message"].get<std::string>()) == std::string::npos) {
    *why = "error message differs: " + got.error() + " vs " + err["message"].get<std::string>();
    return false;
  }
  return true;
}

TEST(TemplateGolden, Features) {
  const Json golden = load_json(kGoldenDir / "features_expected.json");
  ChatTemplateOptions opts;
  opts.fixed_now = pinned_now(golden);
  int passed = 0, total = 0;
  for (const Json& c : golden["cases"]) {
    ++total;
    const std::string name = c["name"].get<std::string>();
    auto t = ChatTemplate::from_source(c["template"].get<std::string>(), std::nullopt, std::nullopt,
                                       opts);
    Result<std::string> got =
        t.ok() ? Result<std::string>(Status::error("unset")) : Result<std::string>(t.status());
    if (t.ok()) {
      ChatRequest req;
      req.messages = jinja::Value();  // undefined: features bind their own variables
      req.tools = jinja::Value();
      req.documents = jinja::Value();
      for (auto it = c["vars"].begin(); it != c["vars"].end(); ++it) {
        req.extra.emplace_back(it.key(), to_value(it.value()));
      }
      got = t->render(req);
    }
    std::string why;
    if (matches(c, got, &why)) {
      ++passed;
    } else {
      ADD_FAILURE() << "feature '" << name << "': " << why
                    << "\ntemplate: " << c["template"].get<std::string>();
    }
  }
  std::printf("features: %d/%d match jinja2\n", passed, total);
}

TEST(TemplateGolden, PublishedTemplatesOverConversations) {
  const Json golden = load_json(kGoldenDir / "chat_expected.json");
  ChatTemplateOptions opts;
  opts.fixed_now = pinned_now(golden);
  std::map<std::string, Result<ChatTemplate>> templates;
  for (auto it = golden["templates"].begin(); it != golden["templates"].end(); ++it) {
    const Json& info = it.value();
    std::optional<std::string> bos, eos;
    if (info.contains("bos_token")) bos = info["bos_token"].get<std::string>();
    if (info.contains("eos_token")) eos = info["eos_token"].get<std::string>();
    templates.emplace(
        it.key(), ChatTemplate::from_source(read_file(kGoldenDir / info["file"].get<std::string>()),
                                            bos, eos, opts));
  }
  std::map<std::string, std::pair<int, int>> per_template;  // name -> (passed, total)
  for (const Json& c : golden["cases"]) {
    const std::string name = c["template"].get<std::string>();
    const Json& conv = golden["conversations"][c["conversation"].get<std::string>()];
    ChatRequest req;
    req.messages = to_value(conv["messages"]);
    if (conv.contains("tools")) req.tools = to_value(conv["tools"]);
    if (conv.contains("documents")) req.documents = to_value(conv["documents"]);
    req.add_generation_prompt = c["add_generation_prompt"].get<bool>();
    const Result<ChatTemplate>& t = templates.at(name);
    const Result<std::string> got = t.ok() ? t->render(req) : Result<std::string>(t.status());
    std::string why;
    auto& [ok, total] = per_template[name];
    ++total;
    if (matches(c, got, &why)) {
      ++ok;
    } else {
      ADD_FAILURE() << name << " x " << c["conversation"].get<std::string>()
                    << (req.add_generation_prompt ? " (+generation prompt)" : "") << ": " << why;
    }
  }
  int full = 0, cases_ok = 0, cases = 0;
  for (const auto& [name, counts] : per_template) {
    full += counts.first == counts.second;
    cases_ok += counts.first;
    cases += counts.second;
  }
  std::printf("chat templates: %d/%zu templates fully identical to jinja2; %d/%d renderings\n",
              full, per_template.size(), cases_ok, cases);
}

TEST(TemplateGolden, DefaultTemplateMatchesDocumentedFile) {
  EXPECT_EQ(std::string(kDefaultChatTemplate), read_file(kGoldenDir / "chatml-default.jinja"));
}

TEST(TemplateGolden, SmolLM2EmbeddedTemplate) {
  const fs::path path = model_dir() / "SmolLM2-135M-Instruct.Q4_1.gguf";
  if (!fs::exists(path)) GTEST_SKIP() << "model not found: " << path;
  auto file = gguf::File::open(path.string());
  ASSERT_TRUE(file.ok()) << file.error();
  auto t = ChatTemplate::from_gguf(**file);
  ASSERT_TRUE(t.ok()) << t.error();
  EXPECT_FALSE(t->is_default());
  EXPECT_TRUE(t->warning().empty());
  // The template the golden generator extracted is the one in the file.
  jinja::Template expected =
      *jinja::Template::parse(read_file(kGoldenDir / "embedded/SmolLM2-135M-Instruct.jinja"));
  EXPECT_EQ(t->source(), expected.source());
  EXPECT_EQ(t->bos_token().value_or(""), "<|im_start|>");
  EXPECT_EQ(t->eos_token().value_or(""), "<|im_end|>");
  ChatRequest req;
  req.messages = *value_from_json(Json::parse(R"([{"role": "user", "content": "Hi"}])"));
  req.add_generation_prompt = true;
  auto out = t->render(req);
  ASSERT_TRUE(out.ok()) << out.error();
  EXPECT_EQ(*out,
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
            "Face<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
}

TEST(TemplateGolden, GemmaWithoutTemplateFallsBackToChatML) {
  const fs::path path = model_dir() / "gemma-3-270m-q4_k_m.gguf";
  if (!fs::exists(path)) GTEST_SKIP() << "model not found: " << path;
  auto file = gguf::File::open(path.string());
  ASSERT_TRUE(file.ok()) << file.error();
  ASSERT_FALSE((*file)->has("tokenizer.chat_template")) << "the fixture changed";
  auto t = ChatTemplate::from_gguf(**file);
  ASSERT_TRUE(t.ok()) << t.error();
  EXPECT_TRUE(t->is_default());
  EXPECT_NE(t->warning().find("no tokenizer.chat_template"), std::string::npos) << t->warning();
  EXPECT_EQ(t->bos_token().value_or(""), "<bos>");
  EXPECT_EQ(t->eos_token().value_or(""), "<eos>");
  ChatRequest req;
  req.messages = *value_from_json(Json::parse(
      R"([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}])"));
  req.add_generation_prompt = true;
  auto out = t->render(req);
  ASSERT_TRUE(out.ok()) << out.error();
  EXPECT_EQ(*out,
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
            "<|im_start|>assistant\n");
}

}  // namespace
}  // namespace minnow::text
