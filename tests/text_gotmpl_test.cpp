// GoTemplate: Ollama's published templates against hand-derived goldens, Go text/template
// semantics one feature at a time, every parse and execution error with its position, and the
// limits that keep a hostile template from hanging or exhausting memory.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "text/go_template.h"

namespace minnow::text {
namespace {

using Message = GoTemplate::Message;

std::string golden_dir() { return std::string(MINNOW_SOURCE_DIR) + "/tests/golden/gotemplates/"; }

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot open " << path;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

const char* kTools =
    R"([{"type":"function","function":{"name":"get_weather","description":"Weather in a city",)"
    R"("parameters":{"type":"object","required":["city"],"properties":{"city":{"type":"string",)"
    R"("description":"City name"}}}}}])";

std::vector<Message> conversation(const std::string& name) {
  if (name == "user") return {{"user", "What is 2+2?"}};
  if (name == "user-assistant-user")
    return {{"user", "What is 2+2?"}, {"assistant", "4."}, {"user", "And times 3?"}};
  if (name == "system-user-assistant-user")
    return {{"system", "You are terse."},
            {"user", "What is 2+2?"},
            {"assistant", "4."},
            {"user", "And times 3?"}};
  if (name == "system-assistant-system-user")
    return {{"system", "Be brief."},
            {"assistant", "Hello."},
            {"system", "Use French."},
            {"user", "Hi?"}};
  if (name == "tool-call-only") {
    Message call{"assistant", ""};
    call.tool_calls_json =
        R"([{"function":{"name":"get_weather","arguments":{"location":"San Francisco, CA"}}}])";
    return {call};
  }
  if (name == "tools") {
    Message call{"assistant", ""};
    call.tool_calls_json = R"([{"function":{"name":"get_weather","arguments":{"city":"Paris"}}}])";
    Message result{"tool", R"({"temp": 18})"};
    result.tool_name = "get_weather";
    return {{"system", "You are terse."}, {"user", "Weather in Paris?"}, call, result};
  }
  ADD_FAILURE() << "unknown conversation " << name;
  return {};
}

struct GoldenCase {
  const char* tmpl;
  const char* name;
};

class Golden : public ::testing::TestWithParam<GoldenCase> {};

TEST_P(Golden, MatchesHandDerivedPrompt) {
  const GoldenCase& c = GetParam();
  std::string source = read_file(golden_dir() + c.tmpl + ".gotmpl");
  std::string expected = read_file(golden_dir() + "expected/" + c.tmpl + "/" + c.name + ".txt");
  auto t = GoTemplate::parse(source);
  ASSERT_TRUE(t.ok()) << t.error();
  Result<std::string> out = Status::error("unset");
  if (std::string(c.name) == "generate") {
    GoTemplate::Data d;
    d.system = "You are terse.";
    d.prompt = "What is 2+2?";
    d.has_messages = false;
    out = t->render(d);
  } else {
    std::string tools = std::string(c.name) == "tools" ? kTools : "";
    out = t->render_ollama(conversation(c.name), tools);
  }
  ASSERT_TRUE(out.ok()) << out.error();
  EXPECT_EQ(*out, expected);
}

std::string case_name(const ::testing::TestParamInfo<GoldenCase>& info) {
  std::string s = std::string(info.param.tmpl) + "_" + info.param.name;
  for (char& ch : s)
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return s;
}

INSTANTIATE_TEST_SUITE_P(
    Ollama, Golden,
    ::testing::Values(
        GoldenCase{"llama3-instruct", "user"}, GoldenCase{"llama3-instruct", "user-assistant-user"},
        GoldenCase{"llama3-instruct", "system-user-assistant-user"},
        GoldenCase{"llama3-instruct-legacy", "user"},
        GoldenCase{"llama3-instruct-legacy", "user-assistant-user"},
        GoldenCase{"llama3-instruct-legacy", "system-user-assistant-user"},
        GoldenCase{"llama3-instruct-legacy", "generate"}, GoldenCase{"chatml", "user"},
        GoldenCase{"chatml", "user-assistant-user"},
        GoldenCase{"chatml", "system-user-assistant-user"}, GoldenCase{"gemma-instruct", "user"},
        GoldenCase{"gemma-instruct", "user-assistant-user"},
        GoldenCase{"gemma-instruct", "system-user-assistant-user"},
        GoldenCase{"gemma-instruct", "system-assistant-system-user"},
        GoldenCase{"gemma-instruct-legacy", "user"},
        GoldenCase{"gemma-instruct-legacy", "user-assistant-user"},
        GoldenCase{"gemma-instruct-legacy", "system-user-assistant-user"},
        GoldenCase{"gemma-instruct-legacy", "generate"}, GoldenCase{"phi-3", "user"},
        GoldenCase{"phi-3", "user-assistant-user"},
        GoldenCase{"phi-3", "system-user-assistant-user"}, GoldenCase{"phi-3-legacy", "user"},
        GoldenCase{"phi-3-legacy", "user-assistant-user"},
        GoldenCase{"phi-3-legacy", "system-user-assistant-user"},
        GoldenCase{"mistral-instruct", "user"},
        GoldenCase{"mistral-instruct", "user-assistant-user"},
        GoldenCase{"mistral-instruct", "system-user-assistant-user"},
        GoldenCase{"mistral-instruct-legacy", "user"},
        GoldenCase{"mistral-instruct-legacy", "user-assistant-user"},
        GoldenCase{"mistral-instruct-legacy", "system-user-assistant-user"},
        GoldenCase{"mistral-instruct-legacy", "generate"}, GoldenCase{"tools-chatml", "user"},
        GoldenCase{"tools-chatml", "system-user-assistant-user"},
        GoldenCase{"tools-chatml", "tools"}, GoldenCase{"command-r", "tool-call-only"},
        GoldenCase{"command-r", "tools"}, GoldenCase{"command-r", "user-assistant-user"}),
    case_name);

// ---- semantics, one feature at a time

std::string render(const std::string& source, const GoTemplate::Data& data = {}) {
  auto t = GoTemplate::parse(source);
  if (!t.ok()) return "PARSE ERROR: " + t.error();
  auto out = t->render(data);
  if (!out.ok()) return "EXEC ERROR: " + out.error();
  return *out;
}

GoTemplate::Data chat() {
  GoTemplate::Data d;
  d.system = "sys";
  d.prompt = "p";
  d.messages = {{"user", "hi"}, {"assistant", "yo"}, {"user", "bye"}};
  return d;
}

TEST(GoTemplate, TextAndTrimMarkers) {
  EXPECT_EQ(render("plain text"), "plain text");
  EXPECT_EQ(render("a  \n {{- \"b\" -}} \n\t c"), "abc");
  EXPECT_EQ(render("a {{- \"b\" }} c"), "ab c");
  EXPECT_EQ(render("a {{ \"b\" -}} c"), "a bc");
  // "{{-3}}" is the number -3, not a trim marker; "{{3-}}" is a bad number.
  EXPECT_EQ(render("a {{-3}} b"), "a -3 b");
  EXPECT_EQ(render(""), "");
  EXPECT_EQ(render("a {{/* a comment */}} b"), "a  b");
  EXPECT_EQ(render("a {{- /* trimmed comment */ -}} b"), "ab");
  EXPECT_EQ(render("x{{\"}}\"}}y"), "x}}y");  // a delimiter inside a string is text
  EXPECT_EQ(render("{{ `raw \\n` }}"), "raw \\n");
  EXPECT_EQ(render("{{ \"esc\\t\\\"q\\\"\\u00e9\" }}"), "esc\t\"q\"\xc3\xa9");
}

TEST(GoTemplate, FieldsAndPrinting) {
  auto d = chat();
  EXPECT_EQ(render("{{ .System }}/{{ .Prompt }}/{{ .Response }}", d), "sys/p/");
  EXPECT_EQ(render("{{ .Nope }}", d), "<no value>");  // missing key of a map, as Go prints it
  EXPECT_EQ(render("{{ .Nope.Deeper }}", d), "<no value>");
  EXPECT_EQ(render("{{ len .Messages }} {{ (index .Messages 1).Role }}", d), "3 assistant");
  EXPECT_EQ(render("{{ 42 }} {{ -7 }} {{ 1.5 }} {{ 1e21 }} {{ 0x1F }} {{ 'a' }} {{ true }}"),
            "42 -7 1.5 1e+21 31 97 true");
  EXPECT_EQ(render("{{ .Tools }}|{{ if .Tools }}yes{{ else }}no{{ end }}"), "|no");
  GoTemplate::Data t;
  t.tools_json = R"([{"type":"function","function":{"name":"f"}}])";
  EXPECT_EQ(render("{{ .Tools }}", t), t.tools_json);
  EXPECT_EQ(render("{{ range .Tools }}{{ .Type }}:{{ .Function.Name }}{{ end }}", t), "function:f");
  EXPECT_EQ(render("{{ (index .Messages 0).Images }}", d), "[]");
}

TEST(GoTemplate, StructFieldsAreChecked) {
  auto d = chat();
  std::string out = render("{{ range .Messages }}{{ .Rolez }}{{ end }}", d);
  EXPECT_NE(out.find("EXEC ERROR: go template 1:25: executing: can't evaluate field Rolez"),
            std::string::npos)
      << out;
  EXPECT_NE(render("{{ .System.Length }}", d).find("can't evaluate field Length in type string"),
            std::string::npos);
}

TEST(GoTemplate, IfElseChains) {
  auto d = chat();
  const char* t =
      "{{ range .Messages }}{{ if eq .Role \"user\" }}U{{ else if eq .Role \"assistant\" }}A"
      "{{ else }}?{{ end }}{{ end }}";
  EXPECT_EQ(render(t, d), "UAU");
  EXPECT_EQ(render("{{ if 0 }}a{{ else if \"\" }}b{{ else if 0.0 }}c{{ else }}d{{ end }}"), "d");
  EXPECT_EQ(render("{{ if .Nope }}a{{ else }}b{{ end }}"), "b");
  EXPECT_EQ(render("{{ with .System }}[{{ . }}]{{ else }}none{{ end }}", d), "[sys]");
  EXPECT_EQ(render("{{ with .Response }}[{{ . }}]{{ else with .System }}<{{ . }}>{{ end }}", d),
            "<sys>");
  EXPECT_EQ(render("{{ with $x := .Prompt }}{{ $x }}{{ . }}{{ end }}", d), "pp");
}

TEST(GoTemplate, RangeForms) {
  auto d = chat();
  EXPECT_EQ(render("{{ range $i, $m := .Messages }}{{ $i }}={{ $m.Content }};{{ end }}", d),
            "0=hi;1=yo;2=bye;");
  EXPECT_EQ(render("{{ range $m := .Messages }}{{ $m.Role }} {{ end }}", d),
            "user assistant user ");
  EXPECT_EQ(render("{{ range .Nope }}x{{ else }}empty{{ end }}", d), "empty");
  EXPECT_EQ(render("{{ range 3 }}{{ . }}{{ end }}"), "012");
  EXPECT_EQ(render("{{ range $i, $m := .Messages }}{{ if eq $i 1 }}{{ continue }}{{ end }}"
                   "{{ $m.Content }}{{ end }}",
                   d),
            "hibye");
  EXPECT_EQ(render("{{ range .Messages }}{{ if eq .Content \"yo\" }}{{ break }}{{ end }}"
                   "{{ .Content }}{{ end }}",
                   d),
            "hi");
  // Maps range in sorted key order; $ is the root inside any block.
  GoTemplate::Data t;
  t.tools_json =
      R"([{"function":{"parameters":{"properties":{"b":{"type":"int"},"a":{"type":"str"}}}}}])";
  EXPECT_EQ(render("{{ range .Tools }}{{ range $k, $v := .Function.Parameters.Properties }}"
                   "{{ $k }}:{{ $v.Type }} {{ end }}{{ end }}",
                   t),
            "a:str b:int ");
  EXPECT_EQ(render("{{ range .Messages }}{{ $.System }}{{ end }}", d), "syssyssys");
}

TEST(GoTemplate, VariablesAndScope) {
  EXPECT_EQ(render("{{ $x := 1 }}{{ if true }}{{ $x = 2 }}{{ $y := 3 }}{{ $y }}{{ end }}{{ $x }}"),
            "32");
  EXPECT_EQ(
      render("{{ $x := \"a\" }}{{ range 3 }}{{ $x = printf \"%s%d\" $x . }}{{ end }}{{ $x }}"),
      "a012");
  // A variable declared inside a block ends with it.
  EXPECT_NE(render("{{ if true }}{{ $y := 1 }}{{ end }}{{ $y }}")
                .find("PARSE ERROR: go template 1:39: "
                      "undefined variable \"$y\""),
            std::string::npos);
}

TEST(GoTemplate, Functions) {
  auto d = chat();
  EXPECT_EQ(render("{{ and 1 0 2 }} {{ and 1 2 }} {{ or 0 \"\" }} {{ or 0 \"x\" 1 }} {{ not 0 }}"),
            "0 2  x true");
  // and/or stop evaluating at the deciding argument (index would fail on the nil).
  EXPECT_EQ(render("{{ if and .Nope (index .Nope 0) }}x{{ else }}y{{ end }}", d), "y");
  EXPECT_EQ(render("{{ eq 1 2 3 1 }} {{ ne \"a\" \"b\" }} {{ lt 1 2 }} {{ le 2 2 }} {{ gt 1.5 2 }} "
                   "{{ ge \"b\" \"a\" }}"),
            "true true true true false true");
  EXPECT_EQ(render("{{ len \"héllo\" }} {{ index \"abc\" 1 }} {{ slice \"abcdef\" 1 3 }}"),
            "6 98 bc");
  EXPECT_EQ(render("{{ range slice .Messages 1 }}{{ .Content }}{{ end }}", d), "yobye");
  EXPECT_EQ(render("{{ len (slice .Messages 1 2) }}", d), "1");
  EXPECT_EQ(render("{{ printf \"%s-%d-%5.2f-%q-%v-%t-%x-%%-%03d|%-4s|\" \"a\" 7 3.14159 \"q\" 1.5 "
                   "true 255 7 \"ab\" }}"),
            "a-7- 3.14-\"q\"-1.5-true-ff-%-007|ab  |");
  EXPECT_EQ(render("{{ printf \"%s %s\" \"one\" }}|{{ printf \"%d\" \"s\" }}|{{ printf \"x\" 1 }}"),
            "one %!s(MISSING)|%!d(string=s)|x%!(EXTRA int=1)");
  EXPECT_EQ(render("{{ print \"a\" \"b\" 1 2 }}|{{ println \"a\" 1 }}"), "ab1 2|a 1\n");
  EXPECT_EQ(render("{{ \"x\" | printf \"%s!\" }} {{ .System | len }}", d), "x! 3");
  EXPECT_EQ(render("{{ json \"<a&b>\\n\" }} {{ json 1.5 }} {{ json .Messages }}", d),
            "\"\\u003ca\\u0026b\\u003e\\n\" 1.5 "
            "[{\"role\":\"user\",\"content\":\"hi\"},{\"role\":\"assistant\",\"content\":\"yo\"},"
            "{\"role\":\"user\",\"content\":\"bye\"}]");
  GoTemplate::Data t;
  t.messages = {{"assistant", ""}};
  t.messages[0].tool_calls_json = R"([{"function":{"name":"f","arguments":{"n":3,"x":[1,2.5]}}}])";
  EXPECT_EQ(render("{{ range (index .Messages 0).ToolCalls }}{{ .Function.Arguments }} "
                   "{{ .Function.Arguments.n }} {{ .Function.Arguments.x }}{{ end }}",
                   t),
            "{\"n\":3,\"x\":[1,2.5]} 3 [1 2.5]");
  // Arguments are a Go map: printed and ranged over with sorted keys, at every depth.
  t.messages[0].tool_calls_json =
      R"([{"function":{"name":"f","arguments":{"z":{"b":1,"a":2},"a":"<&>"}}}])";
  EXPECT_EQ(render("{{ range (index .Messages 0).ToolCalls }}{{ .Function.Arguments }}|"
                   "{{ range $k, $v := .Function.Arguments }}{{ $k }} {{ end }}{{ end }}",
                   t),
            "{\"a\":\"\\u003c\\u0026\\u003e\",\"z\":{\"a\":2,\"b\":1}}|a z ");
}

// ---- Ollama's Execute

TEST(GoTemplate, OllamaCollatesAndPicksMode) {
  auto t = GoTemplate::parse(read_file(golden_dir() + "chatml.gotmpl"));
  ASSERT_TRUE(t.ok()) << t.error();
  EXPECT_TRUE(t->mentions("messages"));
  EXPECT_FALSE(t->mentions("prompt"));
  auto out = t->render_ollama({{"user", "a"}, {"user", "b"}}, "");
  ASSERT_TRUE(out.ok()) << out.error();
  EXPECT_EQ(*out, "<|im_start|>user\na\n\nb<|im_end|>\n<|im_start|>assistant\n");

  // Neither Messages nor Response: Ollama appends {{ .Response }}, and cuts the last turn there.
  auto bare = GoTemplate::parse("{{ .System }}|{{ .Prompt }}");
  ASSERT_TRUE(bare.ok());
  out = bare->render_ollama({{"user", "What is 2+2?"}, {"assistant", "4."}, {"user", "And?"}}, "");
  ASSERT_TRUE(out.ok()) << out.error();
  EXPECT_EQ(*out, "|What is 2+2?4.|And?");

  // Fill-in-the-middle: Prompt and Suffix only.
  auto fim = GoTemplate::parse("<PRE> {{ .Prompt }} <SUF>{{ .Suffix }} <MID>");
  ASSERT_TRUE(fim.ok());
  out = fim->render_ollama({}, "", "def f(", "    return x");
  ASSERT_TRUE(out.ok()) << out.error();
  EXPECT_EQ(*out, "<PRE> def f( <SUF>    return x <MID>");
}

TEST(GoTemplate, OllamaLegacyCutKeepsConditionsAndDropsTheRest) {
  // Everything after the last turn's {{ .Response }} goes, even inside the same if.
  auto t = GoTemplate::parse(
      "{{ if .Prompt }}U:{{ .Prompt }} {{ end }}A:{{ if true }}{{ .Response }}"
      "END{{ end }}TAIL");
  ASSERT_TRUE(t.ok()) << t.error();
  auto out = t->render_ollama({{"user", "q1"}, {"assistant", "r1"}, {"user", "q2"}}, "");
  ASSERT_TRUE(out.ok()) << out.error();
  EXPECT_EQ(*out, "U:q1 A:r1ENDTAILU:q2 A:");
}

// ---- errors name line:col

struct ErrorCase {
  const char* source;
  const char* message;  // expected substring
};

class ParseErrors : public ::testing::TestWithParam<ErrorCase> {};

TEST_P(ParseErrors, NamePosition) {
  auto t = GoTemplate::parse(GetParam().source);
  ASSERT_FALSE(t.ok()) << "parsed: " << GetParam().source;
  EXPECT_NE(t.error().find(GetParam().message), std::string::npos) << t.error();
}

INSTANTIATE_TEST_SUITE_P(
    All, ParseErrors,
    ::testing::Values(
        ErrorCase{"abc {{ .System", "go template 1:5: unclosed action"},
        ErrorCase{"x\n  {{ if .A }}y", "go template 2:6: unexpected EOF: {{if}} has no {{end}}"},
        ErrorCase{"{{ end }}", "1:4: unexpected {{end}}"},
        ErrorCase{"{{ else }}", "1:4: unexpected {{else}}"},
        ErrorCase{"{{ if 1 }}{{ else }}{{ else }}{{ end }}", "1:24: expected end; found {{else}}"},
        ErrorCase{"{{ foo .X }}", "1:4: function \"foo\" not defined"},
        ErrorCase{"{{ call .X }}", "function \"call\" not defined"},
        ErrorCase{"{{ define \"x\" }}{{ end }}", "1:4: {{define}} is not supported"},
        ErrorCase{"{{ template \"x\" }}", "{{template}} is not supported"},
        ErrorCase{"{{ }}", "1:1: missing value for command"},
        ErrorCase{"{{ if }}{{ end }}", "missing value for if"},
        ErrorCase{"{{ .A | }}", "1:7: missing command after |"},
        ErrorCase{"{{ | .A }}", "1:4: missing value for command"},
        ErrorCase{"{{ (.A }}", "1:4: unclosed left paren"},
        ErrorCase{"{{ .A) }}", "1:6: unexpected \")\" in operand"},
        ErrorCase{"{{ \"abc }}", "1:4: unterminated quoted string"},
        ErrorCase{"{{ `abc }}", "1:4: unterminated raw quoted string"},
        ErrorCase{"{{ 'ab' }}", "1:4: bad character constant"},
        ErrorCase{"{{ \"\\q\" }}", "unknown escape sequence"},
        ErrorCase{"{{ 12x }}", "1:4: bad number syntax: 12x"},
        ErrorCase{"{{ .A-}}", "bad number syntax"},
        ErrorCase{"{{ # }}", "1:4: unrecognized character in action: '#'"},
        ErrorCase{"{{ $x }}", "1:4: undefined variable \"$x\""},
        ErrorCase{"{{ $x = 1 }}", "undefined variable \"$x\""},
        ErrorCase{"{{ $a, $b := 1 }}", "too many declarations in command"},
        ErrorCase{"{{ break }}", "1:4: {{break}} outside {{range}}"},
        ErrorCase{"{{ range .A }}{{ continue 1 }}{{ end }}", "unexpected \"1\" in {{continue}}"},
        ErrorCase{"{{/* open", "1:1: unclosed comment"},
        ErrorCase{"{{/* c */ }}", "comment ends before closing delimiter"},
        ErrorCase{"{{ if 1 }}{{ end 2 }}", "unexpected \"2\" in {{end}}"},
        ErrorCase{"{{ range 1 }}{{ else if 1 }}{{ end }}", "1:22: unexpected \"if\" in {{else}}"},
        ErrorCase{"{{ if 1 }}{{ else with 1 }}{{ end }}", "1:19: unexpected \"with\" in {{else}}"},
        ErrorCase{"{{ \"a\"\"b\" }}", "unexpected quoted string after quoted string"},
        ErrorCase{"{{ .A :x }}", "expected :="}));

TEST(GoTemplate, ExecutionErrorsNamePosition) {
  auto d = chat();
  struct {
    const char* source;
    const char* message;
  } cases[] = {
      {"{{ index .Messages 9 }}", "1:4: executing: error calling index: index out of range: 9"},
      {"\n{{ index .Nope 0 }}", "2:4: executing: error calling index: index of untyped nil"},
      {"{{ slice .System 2 1 }}", "invalid slice index: 2 > 1"},
      {"{{ slice .System 0 9 }}", "index out of range: 9"},
      {"{{ len 3 }}", "len of type int"},
      {"{{ eq .System 1 }}", "incompatible types for comparison"},
      {"{{ lt true false }}", "invalid type for comparison: bool"},
      {"{{ not }}", "wrong number of args for not: want 1 got 0"},
      {"{{ eq 1 }}", "wrong number of args for eq"},
      {"{{ .System 1 }}", "1:12: executing: can't give argument to non-function .System"},
      {"{{ 1 | .System }}", "can't give argument to non-function .System"},
      {"{{ nil }}", "nil is not a command"},
      {"{{ if nil }}{{ end }}", "1:7: executing: nil is not a command"},
      {"{{ range .System }}{{ end }}", "range can't iterate over string"},
      {"{{ printf 1 }}", "format must be a string"},
  };
  for (const auto& c : cases) {
    auto t = GoTemplate::parse(c.source);
    ASSERT_TRUE(t.ok()) << c.source << ": " << t.error();
    auto out = t->render(d);
    ASSERT_FALSE(out.ok()) << c.source << " rendered " << *out;
    EXPECT_NE(out.error().find(c.message), std::string::npos) << c.source << ": " << out.error();
  }
}

TEST(GoTemplate, BadJsonInDataIsAnError) {
  auto t = GoTemplate::parse("{{ .Tools }}");
  ASSERT_TRUE(t.ok());
  GoTemplate::Data d;
  d.tools_json = "[{\"a\": }]";
  auto out = t->render(d);
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.error().find("tools: unexpected character at offset 7"), std::string::npos)
      << out.error();
  d.tools_json = "{}";
  EXPECT_FALSE(t->render(d).ok());
  d.tools_json = std::string(1000, '[') + std::string(1000, ']');
  out = t->render(d);
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.error().find("nested too deeply"), std::string::npos) << out.error();
}

// ---- limits

TEST(GoTemplate, LoopsAreBounded) {
  GoTemplate::Limits limits;
  limits.max_steps = 100000;
  auto t = GoTemplate::parse("{{ range 1000000000 }}{{ end }}", limits);
  ASSERT_TRUE(t.ok());
  auto out = t->render({});
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.error().find("1:4: executing: template exceeded its step limit (100000)"),
            std::string::npos)
      << out.error();
  // Nested ranges over the messages multiply: steps bound them too.
  GoTemplate::Limits small;
  small.max_steps = 5000;
  std::string nested = "{{ range 100 }}{{ range 100 }}{{ range 100 }}x{{ end }}{{ end }}{{ end }}";
  t = GoTemplate::parse(nested, small);
  ASSERT_TRUE(t.ok());
  out = t->render({});
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.error().find("step limit (5000)"), std::string::npos) << out.error();
}

TEST(GoTemplate, OutputAndStringsAreBounded) {
  GoTemplate::Limits small;
  small.max_output_bytes = 1000;
  auto t = GoTemplate::parse("{{ range 2000 }}x{{ end }}", small);
  ASSERT_TRUE(t.ok());
  auto out = t->render({});
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.error().find("output exceeds 1000 bytes"), std::string::npos) << out.error();
  // A string doubled in a variable never reaches the output; it is bounded all the same.
  t = GoTemplate::parse("{{ $s := \"ab\" }}{{ range 64 }}{{ $s = printf \"%s%s\" $s $s }}{{ end }}",
                        small);
  ASSERT_TRUE(t.ok());
  out = t->render({});
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.error().find("exceeds 1000 bytes"), std::string::npos) << out.error();
  t = GoTemplate::parse("{{ printf \"%99999999d\" 1 }}", small);
  ASSERT_TRUE(t.ok());
  EXPECT_FALSE(t->render({}).ok());
  // The default output limit is 1 MiB.
  t = GoTemplate::parse("{{ range 2000 }}{{ printf \"%1000s\" \"x\" }}{{ end }}");
  ASSERT_TRUE(t.ok());
  out = t->render({});
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.error().find("output exceeds 1048576 bytes"), std::string::npos) << out.error();
}

TEST(GoTemplate, WorkOnLargeStringsIsBounded) {
  // Growing a string by one byte per iteration copies it each time: quadratic work that the step
  // limit alone would let run for minutes.
  auto t = GoTemplate::parse(
      "{{ $s := \"\" }}{{ range 1000000 }}{{ $s = printf \"%s.\" $s }}{{ end }}{{ len $s }}");
  ASSERT_TRUE(t.ok()) << t.error();
  auto out = t->render({});
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.error().find("bytes of strings"), std::string::npos) << out.error();
  // Comparing a large request string over and over costs its length each time.
  GoTemplate::Data big;
  big.system = std::string(1 << 20, 'a');
  t = GoTemplate::parse("{{ range 100000 }}{{ if eq $.System $.System }}{{ end }}{{ end }}");
  ASSERT_TRUE(t.ok());
  out = t->render(big);
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.error().find("bytes of strings"), std::string::npos) << out.error();
  // Ollama's legacy mode renders once per turn; the turns share one budget.
  GoTemplate::Limits small;
  small.max_steps = 10000;
  t = GoTemplate::parse("{{ range 900 }}{{ end }}{{ .Prompt }}{{ .Response }}", small);
  ASSERT_TRUE(t.ok());
  std::vector<GoTemplate::Message> turns;
  for (int k = 0; k < 20; ++k) {
    turns.push_back({"user", "q"});
    turns.push_back({"assistant", "a"});
  }
  ASSERT_TRUE(t->render_ollama({turns.begin(), turns.begin() + 4}, "").ok());
  auto many = t->render_ollama(turns, "");
  ASSERT_FALSE(many.ok());
  EXPECT_NE(many.error().find("step limit (10000)"), std::string::npos) << many.error();
}

TEST(GoTemplate, NestingAndSourceAreBounded) {
  std::string deep;
  for (int k = 0; k < 5000; ++k) deep += "{{ if 1 }}";
  auto t = GoTemplate::parse(deep);
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.error().find("nested too deeply"), std::string::npos) << t.error();
  std::string parens = "{{ " + std::string(5000, '(') + "1" + std::string(5000, ')') + " }}";
  t = GoTemplate::parse(parens);
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.error().find("nested too deeply"), std::string::npos) << t.error();
  // Just under the limit works.
  std::string ok_deep;
  for (int k = 0; k < 90; ++k) ok_deep += "{{ if 1 }}";
  ok_deep += "x";
  for (int k = 0; k < 90; ++k) ok_deep += "{{ end }}";
  EXPECT_EQ(render(ok_deep), "x");
  GoTemplate::Limits small;
  small.max_source_bytes = 10;
  EXPECT_FALSE(GoTemplate::parse("01234567890", small).ok());
}

// Truncations and mutations of real templates must fail cleanly or render, never crash (run
// under ASan/UBSan in CI).
TEST(GoTemplate, MangledTemplatesNeverCrash) {
  const char* names[] = {"llama3-instruct-legacy", "gemma-instruct", "mistral-instruct-legacy",
                         "tools-chatml"};
  const char kNoise[] = "{}()|-$.\"`'/*= \n:,";
  auto d = chat();
  d.tools_json = kTools;
  size_t parsed = 0, failed = 0;
  for (const char* name : names) {
    std::string src = read_file(golden_dir() + name + ".gotmpl");
    for (size_t cut = 0; cut <= src.size(); ++cut) {
      auto t = GoTemplate::parse(src.substr(0, cut));
      if (t.ok()) {
        ++parsed;
        (void)t->render(d);
      } else {
        ++failed;
        EXPECT_EQ(t.error().rfind("go template ", 0), 0u) << t.error();
      }
    }
    uint32_t rng = 12345;
    for (int k = 0; k < 300; ++k) {
      std::string m = src;
      rng = rng * 1664525u + 1013904223u;
      size_t at = (rng >> 8) % m.size();
      rng = rng * 1664525u + 1013904223u;
      char ch = kNoise[(rng >> 8) % (sizeof(kNoise) - 1)];
      if (rng & 1)
        m[at] = ch;
      else
        m.insert(at, 1, ch);
      auto t = GoTemplate::parse(m);
      if (t.ok()) {
        (void)t->render(d);
        (void)t->render_ollama(d.messages, kTools);
      }
    }
  }
  EXPECT_GT(parsed, 0u);
  EXPECT_GT(failed, 0u);
}

}  // namespace
}  // namespace minnow::text
