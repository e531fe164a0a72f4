// GBNF parsing (good input and every error), whole-string matching on the golden grammars
// (tests/golden/grammars/*.gbnf with their own accept/reject examples), the built-in JSON and
// choice grammars and the regex converter. No model needed.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "constrain/constrain.h"

namespace mc = minnow::constrain;

namespace {

std::shared_ptr<const mc::Grammar> must_parse(std::string_view text) {
  auto g = mc::Grammar::parse(text);
  EXPECT_TRUE(g.ok()) << (g.ok() ? "" : g.error()) << "\n" << text;
  return g.ok() ? *g : nullptr;
}

// The error of parsing `text`, "" if it parsed.
std::string parse_error(std::string_view text) {
  auto g = mc::Grammar::parse(text);
  return g.ok() ? "" : g.error();
}

bool has(const std::string& s, std::string_view part) { return s.find(part) != std::string::npos; }

}  // namespace

TEST(ConstrainGrammar, ParsesTheFormat) {
  auto g = must_parse(R"(
# a comment
root ::= greeting ws name ("!" | "?")?   # trailing comment
greeting ::= "hello" | "hi"
name ::= [A-Z] [a-z]*
ws ::= [ \t]+
)");
  ASSERT_TRUE(g);
  EXPECT_TRUE(mc::accepts(*g, "hello Bob"));
  EXPECT_TRUE(mc::accepts(*g, "hi\t \tAlice!"));
  EXPECT_TRUE(mc::accepts(*g, "hi Z?"));
  EXPECT_FALSE(mc::accepts(*g, "hi bob"));
  EXPECT_FALSE(mc::accepts(*g, "hiBob"));
  EXPECT_FALSE(mc::accepts(*g, "hello Bob!!"));
  EXPECT_FALSE(mc::accepts(*g, "hello"));
}

TEST(ConstrainGrammar, EscapesAndClasses) {
  auto g = must_parse(R"(root ::= "a\n\t\"\\\x41\u00e9\U0001F600" [^a-c\]] [\x30-\x39] . "[\]")");
  ASSERT_TRUE(g);
  EXPECT_TRUE(mc::accepts(*g,
                          "a\n\t\"\\A\xC3\xA9\xF0\x9F\x98\x80"
                          "d5\xE2\x82\xAC[]"));
  EXPECT_FALSE(mc::accepts(*g,
                           "a\n\t\"\\A\xC3\xA9\xF0\x9F\x98\x80"
                           "b5x[]"));  // b in [^a-c]
  EXPECT_FALSE(mc::accepts(*g,
                           "a\n\t\"\\A\xC3\xA9\xF0\x9F\x98\x80"
                           "]5x[]"));  // ] excluded
}

TEST(ConstrainGrammar, Repetitions) {
  auto g = must_parse(R"(root ::= "a"{2} "b"{1,3} "c"{2,} "d"? "ef"*)");
  ASSERT_TRUE(g);
  EXPECT_TRUE(mc::accepts(*g, "aabcc"));
  EXPECT_TRUE(mc::accepts(*g, "aabbbccccdefef"));
  EXPECT_FALSE(mc::accepts(*g, "abcc"));
  EXPECT_FALSE(mc::accepts(*g, "aabbbbcc"));
  EXPECT_FALSE(mc::accepts(*g, "aabc"));
  EXPECT_FALSE(mc::accepts(*g, "aabccdd"));
  EXPECT_FALSE(mc::accepts(*g, "aabccefe"));  // the literal repeats as a whole
}

TEST(ConstrainGrammar, AlternativesOnFollowingLinesAndNestedGroups) {
  auto g = must_parse("root ::= \"x\"\n  | \"y\" (\n  \"1\" |\n  \"2\"\n)\nother ::= \"z\"\n");
  ASSERT_TRUE(g);
  EXPECT_TRUE(mc::accepts(*g, "x"));
  EXPECT_TRUE(mc::accepts(*g, "y2"));
  EXPECT_FALSE(mc::accepts(*g, "z"));
  EXPECT_FALSE(mc::accepts(*g, "y"));
}

TEST(ConstrainGrammar, RightRecursionAndEmptyRoot) {
  auto g = must_parse("root ::= \"a\" root | \"\"");
  ASSERT_TRUE(g);
  EXPECT_TRUE(mc::accepts(*g, ""));
  EXPECT_TRUE(mc::accepts(*g, std::string(5000, 'a')));  // flat stacks: no blow-up
  EXPECT_FALSE(mc::accepts(*g, "ab"));
  auto paren = must_parse("root ::= \"(\" root \")\" root | \"\"");
  ASSERT_TRUE(paren);
  EXPECT_TRUE(mc::accepts(*paren, "(()(()))()"));
  EXPECT_FALSE(mc::accepts(*paren, "(()"));
  EXPECT_FALSE(mc::accepts(*paren, ")("));
}

TEST(ConstrainGrammar, ParseErrorsSayWhatAndWhere) {
  struct Case {
    const char* text;
    std::vector<const char*> parts;  // each must appear in the message
  };
  const std::vector<Case> cases = {
      {"root ::= foo", {"rule 'foo'", "line 1:10", "never defined"}},
      {"start ::= \"a\"", {"no rule named 'root'"}},
      {"root ::= \"a\"\nroot ::= \"b\"", {"defined twice", "line 2"}},
      {"root := \"a\"", {"expected '::='", "line 1:6"}},
      {"root ::= \"abc", {"unterminated string", "rule 'root'"}},
      {"root ::= [a-", {"unterminated character class"}},
      {"root ::= [z-a]", {"out of order"}},
      {"root ::= (\"a\"", {"expected ')'"}},
      {"root ::= \"a\" )", {"unexpected ')'"}},
      {"root ::= * \"a\"", {"nothing to repeat"}},
      {"root ::= \"a\"{3,1}", {"n < m"}},
      {"root ::= \"a\"{2", {"expected '}'"}},
      {"root ::= \"\\q\"", {"unknown escape"}},
      {"root ::= \"\\x4\"", {"hex digits"}},
      {"root ::= \"a\"{10001}", {"repetition count above 10000"}},
      {"root ::= expr\nexpr ::= expr \"+\" term | term\nterm ::= [0-9]",
       {"left recursion", "expr -> expr"}},
      {"root ::= a\na ::= b? \"x\"\nb ::= a | \"\"", {"left recursion"}},
      {"root ::= (\"a\"?)*", {"left recursion"}},
      {"::= \"a\"", {"expected a rule name"}},
  };
  for (const auto& c : cases) {
    const std::string err = parse_error(c.text);
    ASSERT_FALSE(err.empty()) << "parsed: " << c.text;
    for (const char* part : c.parts) EXPECT_TRUE(has(err, part)) << err << "\nfor: " << c.text;
  }
  EXPECT_TRUE(has(parse_error(std::string(mc::kMaxGrammarBytes + 1, ' ')), "bytes"));
  // 120 characters repeated 10000 times: past the element budget once expanded.
  const std::string big = "root ::= \"" + std::string(120, 'a') + "\"{10000}";
  EXPECT_TRUE(has(parse_error(big), "elements once its repetitions are expanded"))
      << parse_error(big);
}

// Every grammar file, against the examples in its comments.
TEST(ConstrainGrammar, GoldenGrammarsAcceptAndRejectTheirExamples) {
  const std::filesystem::path dir =
      std::filesystem::path(MINNOW_SOURCE_DIR) / "tests/golden/grammars";
  int n_files = 0, n_examples = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".gbnf") continue;
    ++n_files;
    std::ifstream in(entry.path());
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string text = ss.str();
    auto g = mc::Grammar::parse(text);
    ASSERT_TRUE(g.ok()) << entry.path() << ": " << g.error();
    std::istringstream lines(text);
    std::string line;
    int n_accept = 0, n_reject = 0;
    while (std::getline(lines, line)) {
      for (const std::string tag : {"# accept: ", "# reject: "}) {
        if (line.rfind(tag, 0) != 0) continue;
        const std::string example = nlohmann::json::parse(line.substr(tag.size()));
        const bool want = tag == "# accept: ";
        EXPECT_EQ(mc::accepts(**g, example), want)
            << entry.path().filename() << (want ? " should accept " : " should reject ")
            << line.substr(tag.size());
        (want ? n_accept : n_reject)++;
        ++n_examples;
      }
    }
    EXPECT_GE(n_accept, 2) << entry.path();
    EXPECT_GE(n_reject, 3) << entry.path();
  }
  EXPECT_GE(n_files, 10);
  EXPECT_GE(n_examples, 80);
}

TEST(ConstrainGrammar, BuiltInJson) {
  auto any = must_parse(mc::json_gbnf(false));
  auto obj = must_parse(mc::json_gbnf(true));
  ASSERT_TRUE(any && obj);
  for (const char* ok : {"{}", "[]", "0", "-1.5e+10", "\"a\\u00e9\\n\"", "true", "null",
                         "{\"a\": [1, {\"b\": false}], \"c\": \"d\"}",
                         "{\n  \"k\": [\n    1,\n    2\n  ]\n}", "\"caf\xC3\xA9\""}) {
    EXPECT_TRUE(mc::accepts(*any, ok)) << ok;
  }
  for (const char* bad : {"", "{", "{\"a\" 1}", "[1,]", "01", "1.", "\"\x01\"", "{'a': 1}", "tru",
                          "\"\\x\"", " {}"}) {
    EXPECT_FALSE(mc::accepts(*any, bad)) << bad;
  }
  EXPECT_TRUE(mc::accepts(*obj, "{\"a\": 1}"));
  EXPECT_FALSE(mc::accepts(*obj, "[1]"));
  EXPECT_FALSE(mc::accepts(*obj, "1"));
}

TEST(ConstrainGrammar, Choice) {
  const std::vector<std::string> choices = {"billing", "bill", "say \"hi\"\n", "caf\xC3\xA9"};
  auto g = must_parse(mc::choice_to_gbnf(choices));
  ASSERT_TRUE(g);
  for (const auto& c : choices) EXPECT_TRUE(mc::accepts(*g, c)) << c;
  EXPECT_FALSE(mc::accepts(*g, "bil"));
  EXPECT_FALSE(mc::accepts(*g, "billings"));
  EXPECT_FALSE(mc::accepts(*g, "cafe"));
}

TEST(ConstrainGrammar, Regexes) {
  struct Case {
    const char* re;
    std::vector<const char*> ok, bad;
  };
  const std::vector<Case> cases = {
      {"\\d{3}-\\d{4}", {"555-1234"}, {"5551234", "55-1234", "555-12345"}},
      {"^[A-Z][a-z]+$", {"Paris", "Ab"}, {"paris", "A", "Paris!"}},
      {"(yes|no|maybe)", {"yes", "maybe"}, {"ye", "yesno"}},
      {"[a-z0-9._%+-]+@[a-z0-9.-]+\\.[a-z]{2,4}",
       {"a.b@c.io", "x_y%z@mail.example.com"},
       {"a@b", "@c.io", "a@b.c"}},
      {"\\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\\d|3[01])",
       {"2024-02-29", "1999-12-31"},
       {"2024-13-01", "2024-1-01"}},
      {"(?:ab)*c?", {"", "abab", "abc", "c"}, {"aba", "cc"}},
      {"-?(0|[1-9]\\d*)(\\.\\d+)?", {"0", "-12.50", "7"}, {"01", "1.", "--1"}},
      {"[^,\\n]+(,[^,\\n]+){2}", {"a,b,c", "x y,2,3"}, {"a,b", "a,,c", "a,b,c,d"}},
      {"#[0-9a-fA-F]{6}", {"#ff00AA"}, {"#ff00A", "ff00AA"}},
      {"\\w+\\s\\w+", {"hello world", "a_1\tb"}, {"hello  world", "hello"}},
      {"(?<word>[αβγ]+)\\.", {"αβγ.", "γ."}, {"abc.", "."}},
      {"a.c",
       {"abc",
        "a\xC3\xA9"
        "c"},
       {"a\nc", "ac"}},
      {"\\u00e9\\x41[\\u0400-\\u04FF]",
       {"\xC3\xA9"
        "A\xD0\x96"},
       {"eA\xD0\x96"}},
      {"(a|b){2,3}?x", {"abx", "abax"}, {"ax", "ababx"}},
      {"[\\d\\s]+", {"1 2\n3"}, {"1a"}},
      {"[^\\d]", {"x", "\xC3\xA9"}, {"5"}},
      {"a\\.b\\(c\\)\\[d\\]\\{e\\}\\\\\\/", {"a.b(c)[d]{e}\\/"}, {"aXb(c)[d]{e}\\/"}},
  };
  for (const auto& c : cases) {
    auto gbnf = mc::regex_to_gbnf(c.re);
    ASSERT_TRUE(gbnf.ok()) << c.re << ": " << gbnf.error();
    auto g = mc::Grammar::parse(*gbnf);
    ASSERT_TRUE(g.ok()) << c.re << " -> " << *gbnf << ": " << g.error();
    for (const char* s : c.ok) EXPECT_TRUE(mc::accepts(**g, s)) << c.re << " should match " << s;
    for (const char* s : c.bad)
      EXPECT_FALSE(mc::accepts(**g, s)) << c.re << " should not match " << s;
  }
}

TEST(ConstrainGrammar, RegexErrorsNameTheProblemAndOffset) {
  struct Case {
    const char* re;
    const char* part;
  };
  const std::vector<Case> cases = {
      {"(a)\\1", "backreference \\1 is not supported at offset 4"},
      {"a(?=b)", "lookaround"},
      {"a(?!b)", "lookaround"},
      {"(?<=a)b", "lookaround"},
      {"\\bword", "word boundary"},
      {"a{1001}", "repetition count above 1000"},
      {"a{3,2}", "n < m"},
      {"(ab", "missing ')'"},
      {"ab)", "unmatched ')'"},
      {"[abc", "unterminated character class"},
      {"a**", "nothing to repeat"},
      {"*a", "nothing to repeat"},
      {"a^b", "'^' is only supported at the start"},
      {"a$b", "'$' is only supported at the end"},
      {"\\p{L}", "unicode property"},
      {"[z-a]", "out of order"},
  };
  for (const auto& c : cases) {
    auto r = mc::regex_to_gbnf(c.re);
    ASSERT_FALSE(r.ok()) << c.re << " converted to " << *r;
    EXPECT_TRUE(has(r.error(), c.part)) << c.re << ": " << r.error();
  }
}
