// Modelfile parsing: each directive, each error, and render -> parse round trips.
#include <gtest/gtest.h>

#include <string>

#include "store/modelfile.h"

namespace minnow::store {
namespace {

TEST(Modelfile, EveryDirective) {
  auto mf = parse_modelfile(R"(# a comment
from ./model.gguf
PARAMETER temperature 0.7
parameter top_k 40
PARAMETER stop "<|im_end|>"
PARAMETER stop User:
PARAMETER num_ctx 4096
PARAMETER seed -1
TEMPLATE """{{ if .System }}<|system|>{{ .System }}{{ end }}
{{ .Prompt }}"""
SYSTEM You are a pirate.
MESSAGE user Who are you?
MESSAGE assistant """Arr,
a pirate."""
LICENSE """MIT
text"""
LICENSE Apache-2.0
)");
  ASSERT_TRUE(mf.ok()) << mf.error();
  EXPECT_EQ(mf->from, "./model.gguf");
  EXPECT_EQ(mf->parameters.at("temperature"), std::vector<std::string>{"0.7"});
  EXPECT_EQ(mf->parameters.at("top_k"), std::vector<std::string>{"40"});
  EXPECT_EQ(mf->parameters.at("stop"), (std::vector<std::string>{"<|im_end|>", "User:"}));
  EXPECT_EQ(mf->parameters.at("num_ctx"), std::vector<std::string>{"4096"});
  EXPECT_EQ(mf->parameters.at("seed"), std::vector<std::string>{"-1"});
  EXPECT_EQ(*mf->template_text, "{{ if .System }}<|system|>{{ .System }}{{ end }}\n{{ .Prompt }}");
  EXPECT_EQ(*mf->system, "You are a pirate.");
  ASSERT_EQ(mf->messages.size(), 2u);
  EXPECT_EQ(mf->messages[0], (Message{"user", "Who are you?"}));
  EXPECT_EQ(mf->messages[1], (Message{"assistant", "Arr,\na pirate."}));
  EXPECT_EQ(mf->licenses, (std::vector<std::string>{"MIT\ntext", "Apache-2.0"}));
}

TEST(Modelfile, QuotedValuesAndCrlf) {
  auto mf =
      parse_modelfile("FROM m\r\nSYSTEM \"say \\\"hi\\\" \\\\ bye\"\r\nPARAMETER stop \" \"\r\n");
  ASSERT_TRUE(mf.ok()) << mf.error();
  EXPECT_EQ(*mf->system, "say \"hi\" \\ bye");
  EXPECT_EQ(mf->parameters.at("stop"), std::vector<std::string>{" "});
  // A later TEMPLATE / SYSTEM replaces an earlier one; a later parameter too (stop adds).
  auto twice =
      parse_modelfile("FROM m\nSYSTEM a\nSYSTEM b\nPARAMETER top_p 0.5\nPARAMETER top_p 0.9\n");
  ASSERT_TRUE(twice.ok()) << twice.error();
  EXPECT_EQ(*twice->system, "b");
  EXPECT_EQ(twice->parameters.at("top_p"), std::vector<std::string>{"0.9"});
}

void expect_error(const std::string& text, const std::string& want) {
  auto mf = parse_modelfile(text);
  ASSERT_FALSE(mf.ok()) << "accepted:\n" << text;
  EXPECT_NE(mf.error().find(want), std::string::npos) << mf.error();
}

TEST(Modelfile, EachErrorNamesItsLine) {
  expect_error("", "no FROM line");
  expect_error("# only a comment\nSYSTEM hi\n", "no FROM line");
  expect_error("FROM a\nFROM b\n", "line 2: FROM given twice");
  expect_error("FROM\n", "line 1: from needs an argument");
  expect_error("FROM m\nADAPTER ./lora.gguf\n",
               "line 2: ADAPTER is reserved for LoRA adapters, not supported yet");
  expect_error("FROM m\nQUANTIZE q4\n", "line 2: unknown instruction 'QUANTIZE'");
  expect_error("FROM m\nPARAMETER mirostat 1\n", "line 2: unknown parameter 'mirostat'");
  expect_error("FROM m\nPARAMETER temperature\n", "PARAMETER needs a name and a value");
  expect_error("FROM m\nPARAMETER temperature hot\n", "'hot' is not a number");
  expect_error("FROM m\nPARAMETER top_k 4.5\n", "'4.5' is not an integer");
  expect_error("FROM m\nPARAMETER num_ctx 0\n", "out of range");
  expect_error("FROM m\nPARAMETER top_p 1.5\n", "out of range");
  expect_error("FROM m\nPARAMETER temperature -1\n", "out of range");
  expect_error("FROM m\nPARAMETER num_thread -2\n", "out of range");
  expect_error("FROM m\nPARAMETER temperature nan\n", "is not a number");
  expect_error("FROM m\nMESSAGE robot hi\n", "MESSAGE role 'robot'");
  expect_error("FROM m\nSYSTEM \"\"\"never closed\nstill open\n", "line 2: unterminated \"\"\"");
  expect_error("FROM m\nSYSTEM \"open\n", "line 2: unterminated quoted value");
  expect_error("FROM m\nSYSTEM \"\"\"a\"\"\" trailing\n", "text after the closing");
}

TEST(Modelfile, EveryKnownParameterHasItsType) {
  for (const char* p : {"temperature", "top_p", "min_p", "typical_p", "repeat_penalty",
                        "presence_penalty", "frequency_penalty"}) {
    EXPECT_EQ(*parameter_type(p), ParamType::kFloat) << p;
    EXPECT_TRUE(check_parameter(p, "0.5").ok()) << p;
  }
  for (const char* p : {"top_k", "num_predict", "num_ctx", "seed", "repeat_last_n", "num_thread"}) {
    EXPECT_EQ(*parameter_type(p), ParamType::kInt) << p;
    EXPECT_TRUE(check_parameter(p, "8").ok()) << p;
    EXPECT_FALSE(check_parameter(p, "8.5").ok()) << p;
  }
  EXPECT_EQ(*parameter_type("stop"), ParamType::kStringList);
  EXPECT_FALSE(parameter_type("Temperature").ok());
}

TEST(Modelfile, RenderParsesBackToTheSameSettings) {
  Parameters params;
  ASSERT_TRUE(add_parameter(params, "temperature", "0.2").ok());
  ASSERT_TRUE(add_parameter(params, "stop", "\"quoted\"").ok());
  ASSERT_TRUE(add_parameter(params, "stop", "ends with backslash\\").ok());
  const std::string tmpl = "{{ .Prompt }}\n\"\"\" three quotes inside";
  const std::vector<Message> msgs{{"user", "multi\nline"}, {"assistant", "ok"}};
  const std::string text =
      render_modelfile("/models/x.gguf", params, tmpl, "be brief", msgs, {"MIT"});
  auto mf = parse_modelfile(text);
  ASSERT_TRUE(mf.ok()) << mf.error() << "\n" << text;
  EXPECT_EQ(mf->from, "/models/x.gguf");
  EXPECT_EQ(mf->parameters, params);
  EXPECT_EQ(*mf->template_text, tmpl);
  EXPECT_EQ(*mf->system, "be brief");
  EXPECT_EQ(mf->messages, msgs);
  EXPECT_EQ(mf->licenses, std::vector<std::string>{"MIT"});
  EXPECT_EQ(render_parameters(params).substr(0, 11), "stop       ");
}

}  // namespace
}  // namespace minnow::store
