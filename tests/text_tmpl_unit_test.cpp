// The chat-template API around the interpreter: GGUF loading and the ChatML fallback, special
// tokens, raise_exception / strftime_now, the JSON adapter, and values' Python semantics.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "gguf/gguf.h"
#include "text/chat_template.h"
#include "text/jinja/template.h"
#include "text/jinja/value.h"

namespace minnow::text {
namespace {

using Json = nlohmann::ordered_json;

std::unique_ptr<gguf::File> make_gguf(std::vector<uint8_t>* storage,
                                      const std::function<void(gguf::Writer&)>& fill) {
  gguf::Writer w;
  w.add_string("general.architecture", "llama");
  w.add_string_array("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>", "hello"});
  w.add_u32("tokenizer.ggml.bos_token_id", 1);
  w.add_u32("tokenizer.ggml.eos_token_id", 2);
  fill(w);
  *storage = w.to_bytes();
  auto f = gguf::File::parse("test.gguf", storage->data(), storage->size());
  EXPECT_TRUE(f.ok()) << f.error();
  return f.ok() ? std::move(*f) : nullptr;
}

ChatRequest request(const char* messages_json, bool add_generation_prompt = false) {
  ChatRequest r;
  r.messages = *value_from_json(Json::parse(messages_json));
  r.add_generation_prompt = add_generation_prompt;
  return r;
}

TEST(ChatTemplate, FromGgufUsesEmbeddedTemplateAndTokens) {
  std::vector<uint8_t> bytes;
  auto file = make_gguf(&bytes, [](gguf::Writer& w) {
    w.add_string("tokenizer.chat_template",
                 "{{ bos_token }}{% for m in messages %}[{{ m.role }}:{{ m.content }}]{% endfor %}"
                 "{{ eos_token }}");
  });
  ASSERT_TRUE(file);
  auto t = ChatTemplate::from_gguf(*file);
  ASSERT_TRUE(t.ok()) << t.error();
  EXPECT_FALSE(t->is_default());
  EXPECT_TRUE(t->warning().empty());
  auto out = t->render(request(R"([{"role": "user", "content": "hi"}])"));
  ASSERT_TRUE(out.ok()) << out.error();
  EXPECT_EQ(*out, "<s>[user:hi]</s>");
}

TEST(ChatTemplate, MissingTemplateFallsBackToChatMLWithWarning) {
  std::vector<uint8_t> bytes;
  auto file = make_gguf(&bytes, [](gguf::Writer&) {});
  ASSERT_TRUE(file);
  auto t = ChatTemplate::from_gguf(*file);
  ASSERT_TRUE(t.ok()) << t.error();
  EXPECT_TRUE(t->is_default());
  EXPECT_NE(t->warning().find("test.gguf"), std::string::npos) << t->warning();
  EXPECT_NE(t->warning().find("ChatML"), std::string::npos) << t->warning();
  auto out = t->render(request(
      R"([{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "image"},
          {"type": "text", "text": "b"}]}, {"role": "assistant", "content": null}])",
      true));
  ASSERT_TRUE(out.ok()) << out.error();
  EXPECT_EQ(*out,
            "<|im_start|>user\nab<|im_end|>\n<|im_start|>assistant\n<|im_end|>\n"
            "<|im_start|>assistant\n");
}

TEST(ChatTemplate, ToolUseTemplateIsChosenWhenToolsArePresent) {
  std::vector<uint8_t> bytes;
  auto file = make_gguf(&bytes, [](gguf::Writer& w) {
    w.add_string("tokenizer.chat_template", "plain");
    w.add_string("tokenizer.chat_template.tool_use", "tools={{ tools|length }}");
  });
  ASSERT_TRUE(file);
  auto t = ChatTemplate::from_gguf(*file);
  ASSERT_TRUE(t.ok()) << t.error();
  ChatRequest r = request("[]");
  EXPECT_EQ(t->render(r).value(), "plain");
  r.tools = *value_from_json(Json::parse(R"([{"type": "function"}])"));
  EXPECT_EQ(t->render(r).value(), "tools=1");
}

TEST(ChatTemplate, BadTemplatesAreErrorsNamingTheFile) {
  std::vector<uint8_t> bytes;
  auto file = make_gguf(&bytes, [](gguf::Writer& w) {
    w.add_string("tokenizer.chat_template", "{% for m in messages %}");
  });
  ASSERT_TRUE(file);
  auto t = ChatTemplate::from_gguf(*file);
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.error().find("test.gguf"), std::string::npos) << t.error();
  EXPECT_NE(t.error().find("1:4"), std::string::npos) << t.error();

  auto bad_type =
      make_gguf(&bytes, [](gguf::Writer& w) { w.add_u32("tokenizer.chat_template", 3); });
  ASSERT_TRUE(bad_type);
  EXPECT_FALSE(ChatTemplate::from_gguf(*bad_type).ok());
}

TEST(ChatTemplate, RaiseExceptionCarriesTheTemplatesMessage) {
  auto t = ChatTemplate::from_source(
      "{% if messages[0].role != 'user' %}{{ raise_exception('Conversation must start with a "
      "user message') }}{% endif %}ok",
      std::nullopt, std::nullopt);
  ASSERT_TRUE(t.ok()) << t.error();
  auto out = t->render(request(R"([{"role": "assistant", "content": "x"}])"));
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.error().find("Conversation must start with a user message"), std::string::npos)
      << out.error();
  EXPECT_EQ(t->render(request(R"([{"role": "user", "content": "x"}])")).value(), "ok");
}

TEST(ChatTemplate, AbsentSpecialTokensStayUndefined) {
  auto t = ChatTemplate::from_source("{{ bos_token is defined }}|{{ eos_token }}", std::nullopt,
                                     "<eos>");
  ASSERT_TRUE(t.ok()) << t.error();
  EXPECT_EQ(t->render(request("[]")).value(), "False|<eos>");
}

TEST(ChatTemplate, StrftimeNowFormatsPinnedOrCurrentTime) {
  std::tm tm{};
  tm.tm_year = 2025 - 1900;
  tm.tm_mon = 0;
  tm.tm_mday = 2;
  tm.tm_hour = 3;
  tm.tm_isdst = -1;
  ChatTemplateOptions pinned;
  pinned.fixed_now = std::mktime(&tm);
  auto t = ChatTemplate::from_source("{{ strftime_now('%d %b %Y %H') }}", std::nullopt,
                                     std::nullopt, pinned);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->render(request("[]")).value(), "02 Jan 2025 03");
  auto now = ChatTemplate::from_source("{{ strftime_now('%Y') }}", std::nullopt, std::nullopt);
  ASSERT_TRUE(now.ok());
  const std::string year = now->render(request("[]")).value();
  EXPECT_EQ(year.size(), 4u);
  EXPECT_GE(std::stoi(year), 2024);
}

TEST(ChatTemplate, ExtraVariablesReachTheTemplate) {
  auto t = ChatTemplate::from_source("{{ enable_thinking }}", std::nullopt, std::nullopt);
  ASSERT_TRUE(t.ok());
  ChatRequest r = request("[]");
  r.extra.emplace_back("enable_thinking", jinja::Value(false));
  EXPECT_EQ(t->render(r).value(), "False");
}

TEST(ChatTemplate, RendersConcurrently) {
  auto t = ChatTemplate::from_source(
      "{% for m in messages %}{{ m.content|upper }}{% set ns = namespace(n=loop.index) %}"
      "{{ ns.n }}{% endfor %}",
      std::nullopt, std::nullopt);
  ASSERT_TRUE(t.ok());
  const ChatRequest r =
      request(R"([{"role": "user", "content": "a"}, {"role": "user", "content": "b"}])");
  std::vector<std::thread> threads;
  std::vector<std::string> outs(4);
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      for (int k = 0; k < 200; ++k) outs[static_cast<size_t>(i)] = t->render(r).value();
    });
  }
  for (auto& th : threads) th.join();
  for (const auto& o : outs) EXPECT_EQ(o, "A1B2");
}

TEST(JsonAdapter, KeepsOrderTypesAndRejectsDeepNesting) {
  auto v = value_from_json(
      Json::parse(R"({"z": 1, "a": 2.0, "m": [true, null, "s", 18446744073709551615]})"));
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(jinja::repr(*v), "{'z': 1, 'a': 2.0, 'm': [True, None, 's', 1.8446744073709552e+19]}");
  std::string deep(1000, '[');
  deep += std::string(1000, ']');
  auto d = value_from_json(Json::parse(deep));
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.error().find("nested deeper"), std::string::npos);
}

TEST(Values, PythonReprAndEquality) {
  using jinja::Value;
  EXPECT_EQ(jinja::format_float(0.1 + 0.2), "0.30000000000000004");
  EXPECT_EQ(jinja::format_float(1e16), "1e+16");
  EXPECT_EQ(jinja::format_float(123456789012345678.0), "1.2345678901234568e+17");
  EXPECT_EQ(jinja::format_float(1e-5), "1e-05");
  EXPECT_EQ(jinja::format_float(-0.0), "-0.0");
  EXPECT_EQ(jinja::repr(Value("it's")), "\"it's\"");
  EXPECT_EQ(jinja::repr(Value("a\x01\xc3\xa9")), "'a\\x01\xc3\xa9'");
  EXPECT_EQ(jinja::repr(Value::tuple({Value(1)})), "(1,)");
  EXPECT_TRUE(jinja::equals(Value(1), Value(1.0)));
  EXPECT_TRUE(jinja::equals(Value(true), Value(1)));
  EXPECT_FALSE(jinja::equals(Value::list({Value(1)}), Value::tuple({Value(1)})));
  auto d = std::make_shared<jinja::Dict>();
  ASSERT_TRUE(d->set(Value(1), Value("one")).ok());
  EXPECT_NE(d->find(Value(1.0)), nullptr);
  EXPECT_NE(d->find(Value(true)), nullptr);
  EXPECT_FALSE(d->set(Value::list({}), Value(1)).ok());  // unhashable
}

}  // namespace
}  // namespace minnow::text
