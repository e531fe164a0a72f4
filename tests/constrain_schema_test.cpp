// JSON Schema -> GBNF (src/constrain/json_schema.*), checked through the GBNF parser and the
// whole-string matcher of src/constrain:
//   - each golden schema (tests/golden/schemas/*.json: schema, valid and invalid documents,
//     raw texts, and valid documents the grammar leaves out on purpose) compiles and its grammar
//     accepts / rejects each example; tests/python/test_structured_schema.py checks the same
//     examples against the `jsonschema` package, so the golden data is itself validated;
//   - integer and number ranges against arithmetic, patterns against std::regex;
//   - every unsupported keyword and limit is an error naming the keyword and where it is.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "constrain/constrain.h"
#include "constrain/json_schema.h"

namespace minnow::constrain {
namespace {

using Json = nlohmann::ordered_json;
namespace fs = std::filesystem;

fs::path golden_dir() { return fs::path(MINNOW_SOURCE_DIR) / "tests" / "golden" / "schemas"; }

std::vector<std::string> golden_names() {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(golden_dir())) {
    if (e.path().extension() == ".json") names.push_back(e.path().stem().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

Json read_json(const fs::path& p) {
  std::ifstream f(p);
  std::stringstream ss;
  ss << f.rdbuf();
  return Json::parse(ss.str());
}

// The grammar of a schema, or a test failure.
std::shared_ptr<const Grammar> grammar_of(const std::string& schema) {
  auto gbnf = json_schema_to_gbnf(schema);
  EXPECT_TRUE(gbnf.ok()) << schema << "\n" << (gbnf.ok() ? "" : gbnf.error());
  if (!gbnf.ok()) return nullptr;
  auto g = Grammar::parse(*gbnf);
  EXPECT_TRUE(g.ok()) << (g.ok() ? "" : g.error()) << "\n" << *gbnf;
  return g.ok() ? *g : nullptr;
}

TEST(ConstrainSchemaGolden, HasTheSuite) { EXPECT_GE(golden_names().size(), 40u); }

class GoldenSchema : public testing::TestWithParam<std::string> {};

TEST_P(GoldenSchema, AcceptsValidRejectsInvalid) {
  Json c = read_json(golden_dir() / (GetParam() + ".json"));
  ASSERT_TRUE(c.contains("schema") && c.contains("valid") && c.contains("invalid"));
  auto g = grammar_of(c["schema"].dump());
  ASSERT_TRUE(g);
  bool pretty = c.value("pretty", true);
  for (const auto& v : c["valid"]) {
    EXPECT_TRUE(accepts(*g, v.dump())) << "valid: " << v.dump();
    if (pretty) {
      EXPECT_TRUE(accepts(*g, v.dump(2))) << "valid, indented:\n" << v.dump(2);
    }
  }
  for (const auto& v : c["invalid"]) EXPECT_FALSE(accepts(*g, v.dump())) << "invalid: " << v.dump();
  for (const auto& t : c.value("valid_text", Json::array())) {
    EXPECT_TRUE(accepts(*g, t.get<std::string>())) << "valid text: " << t.get<std::string>();
  }
  for (const auto& t : c.value("invalid_text", Json::array())) {
    EXPECT_FALSE(accepts(*g, t.get<std::string>())) << "invalid text: " << t.get<std::string>();
  }
  for (const auto& v : c.value("outside_grammar", Json::array())) {
    EXPECT_FALSE(accepts(*g, v.dump())) << "left out by the grammar: " << v.dump();
  }
}

INSTANTIATE_TEST_SUITE_P(All, GoldenSchema, testing::ValuesIn(golden_names()),
                         [](const testing::TestParamInfo<std::string>& i) { return i.param; });

// --- numbers against arithmetic ---

struct IntCase {
  std::string schema;
  long long lo, hi;  // inclusive; the test sweeps around them
};

TEST(ConstrainSchemaNumbers, IntegerRangesAreExact) {
  const std::vector<IntCase> cases = {
      {R"({"type":"integer","minimum":0,"maximum":0})", 0, 0},
      {R"({"type":"integer","minimum":7,"maximum":7})", 7, 7},
      {R"({"type":"integer","minimum":0,"maximum":9})", 0, 9},
      {R"({"type":"integer","minimum":1,"maximum":10})", 1, 10},
      {R"({"type":"integer","minimum":17,"maximum":1234})", 17, 1234},
      {R"({"type":"integer","minimum":100,"maximum":999})", 100, 999},
      {R"({"type":"integer","minimum":-250,"maximum":-13})", -250, -13},
      {R"({"type":"integer","minimum":-1001,"maximum":999})", -1001, 999},
      {R"({"type":"integer","exclusiveMinimum":-1,"exclusiveMaximum":100})", 0, 99},
      {R"({"type":"integer","minimum":2.5,"maximum":19.5})", 3, 19},
      {R"({"type":"integer","exclusiveMinimum":2.5,"exclusiveMaximum":19.5})", 3, 19},
      {R"({"type":"integer","minimum":5,"exclusiveMinimum":10,"maximum":2000})", 11, 2000},
      {R"({"type":"integer","minimum":0,"maximum":10,"exclusiveMaximum":true,
           "exclusiveMinimum":true})",
       1, 9},
  };
  for (const auto& c : cases) {
    auto g = grammar_of(c.schema);
    ASSERT_TRUE(g);
    for (long long n = c.lo - 1100; n <= c.hi + 1100; ++n) {
      EXPECT_EQ(accepts(*g, std::to_string(n)), n >= c.lo && n <= c.hi) << c.schema << " " << n;
    }
    std::string leading_zero = "0";
    leading_zero += std::to_string(std::max(c.lo, 1LL));
    EXPECT_FALSE(accepts(*g, leading_zero)) << "leading zero";
    EXPECT_FALSE(accepts(*g, "-0")) << c.schema;
    EXPECT_FALSE(accepts(*g, std::to_string(c.lo) + ".0")) << "integers have no fraction";
  }
}

TEST(ConstrainSchemaNumbers, OneSidedIntegerRanges) {
  auto ge = grammar_of(R"({"type":"integer","minimum":-37})");
  auto lt = grammar_of(R"({"type":"integer","exclusiveMaximum":4096})");
  ASSERT_TRUE(ge && lt);
  std::mt19937_64 rng(1);
  for (int i = 0; i < 4000; ++i) {
    int digits = 1 + int(rng() % 15);
    long long n = (long long)(rng() % 1000000000000000ULL);
    n = n % (long long)std::pow(10.0, digits);
    if (rng() % 2) n = -n;
    EXPECT_EQ(accepts(*ge, std::to_string(n)), n >= -37) << n;
    EXPECT_EQ(accepts(*lt, std::to_string(n)), n < 4096) << n;
  }
  EXPECT_TRUE(accepts(*ge, "999999999999999"));
  EXPECT_FALSE(accepts(*ge, "1000000000000000")) << "at most 15 digits";
}

TEST(ConstrainSchemaNumbers, NumberRangesWithFractions) {
  struct Case {
    std::string schema;
    double lo, hi;
    bool lo_excl, hi_excl;
  };
  const std::vector<Case> cases = {
      {R"({"type":"number","minimum":0,"maximum":1})", 0, 1, false, false},
      {R"({"type":"number","exclusiveMinimum":0,"exclusiveMaximum":1})", 0, 1, true, true},
      {R"({"type":"number","minimum":-3,"exclusiveMaximum":12})", -3, 12, false, true},
      {R"({"type":"number","exclusiveMinimum":-20,"maximum":-5})", -20, -5, true, false},
      {R"({"type":"number","minimum":-1.0,"maximum":0})", -1, 0, false, false},
  };
  std::mt19937 rng(2);
  for (const auto& c : cases) {
    auto g = grammar_of(c.schema);
    ASSERT_TRUE(g);
    for (int i = 0; i < 3000; ++i) {
      // Decimal strings around the range: integer part, optional fraction of 1-4 digits.
      long long ip = (long long)(rng() % 40) - 20;
      std::string s = std::to_string(std::llabs(ip));
      int frac_digits = int(rng() % 5);
      if (frac_digits) {
        s += '.';
        for (int d = 0; d < frac_digits; ++d) s += char('0' + (i % 3 == 0 ? 0 : rng() % 10));
      }
      bool negative = ip < 0 || (ip == 0 && rng() % 2);
      if (negative) s = "-" + s;
      double x = std::stod(s);
      bool in = (c.lo_excl ? x > c.lo : x >= c.lo) && (c.hi_excl ? x < c.hi : x <= c.hi);
      // "-0", "-0.00": the grammar never writes a negative zero (it is 0, but reads oddly).
      if (negative && x == 0) in = false;
      EXPECT_EQ(accepts(*g, s), in) << c.schema << " " << s;
    }
  }
}

// --- patterns against std::regex (ECMAScript), through JSON encoding ---

TEST(ConstrainSchemaPatterns, MatchTheWholeStringLikeARegex) {
  const std::vector<std::string> patterns = {"^[a-c]{1,3}$",
                                             "^(ab|cd)*e?$",
                                             "^x+y*$",
                                             "^[^a-z]{2}$",
                                             "^\\d{2}-\\w+$",
                                             "^a.c$",
                                             "^[\"\\\\]{1,2}$",
                                             "^(?:foo|ba[rz])(\\.[a-z]{1,2})?$",
                                             "^\\s?[A-F0-9]{2,}$",
                                             "^[-+]?\\d{1,3}(,\\d{3})*$",
                                             "^\\W\\D\\S$",
                                             "^[\\w.-]{1,4}$"};
  const std::vector<std::string> samples = {"",     "a",         "abc",    "abcd", "ababe",  "cd",
                                            "e",    "xy",        "xyyy",   "y",    "AB",     "A1",
                                            "ab",   "12-ab_9",   "1-",     "abc",  "a\"c",   "a\nc",
                                            "\"",   "\\\"",      "\"\"\"", "foo",  "bar.ab", "baz.",
                                            "bat",  " AF",       "A",      "FF00", "+1,234", "-12",
                                            "1,23", "!a ",       "#x!",    " 1x",  "a.-_",   "a b",
                                            "\t0F", "1,234,567", "a\\c"};  // ASCII: std::regex
                                                                           // works on bytes
  for (const auto& p : patterns) {
    Json schema = {{"type", "string"}, {"pattern", p}};
    auto g = grammar_of(schema.dump());
    ASSERT_TRUE(g) << p;
    std::regex re(p, std::regex::ECMAScript);
    for (const auto& s : samples) {
      bool expected = std::regex_match(s, re);
      EXPECT_EQ(accepts(*g, Json(s).dump()), expected)
          << "pattern " << p << " on " << Json(s).dump();
    }
  }
}

TEST(ConstrainSchemaPatterns, UnicodeClassesAndLiterals) {
  auto g = grammar_of(R"({"type":"string","pattern":"^[α-ω]{2}😀?[^a-z😀]$"})");
  ASSERT_TRUE(g);
  EXPECT_FALSE(accepts(*g, "\"αβx\""));
  EXPECT_TRUE(accepts(*g, "\"αβA\""));
  EXPECT_TRUE(accepts(*g, "\"αβ😀日\""));
  EXPECT_TRUE(accepts(*g, "\"αβ😁\""));
  EXPECT_FALSE(accepts(*g, "\"αβ😀😀\""));
  EXPECT_FALSE(accepts(*g, "\"abA\""));
  EXPECT_TRUE(accepts(*g, "\"αβ\\\"\""));  // a quote, escaped in the JSON string
}

// --- what the grammar allows around values ---

TEST(ConstrainSchemaShape, WhitespaceIsBounded) {
  auto g = grammar_of(R"({"type":"object","properties":{"a":{"type":"array","items":
                          {"type":"integer"}}},"required":["a"],"additionalProperties":false})");
  ASSERT_TRUE(g);
  EXPECT_TRUE(accepts(*g, R"({"a":[1,2]})"));
  EXPECT_TRUE(accepts(*g, "{ \"a\": [ 1, 2 ] }"));
  EXPECT_TRUE(accepts(*g, "{\n\t\"a\": [\n\t\t1,\n\t\t2\n\t]\n}"));
  EXPECT_FALSE(accepts(*g, "{  \"a\": [1]}"));
  EXPECT_FALSE(accepts(*g, "{\n\n\"a\": [1]}"));
  EXPECT_FALSE(accepts(*g, "{\"a\" : [1]}"));
  EXPECT_FALSE(accepts(*g, "{\"a\": [1] , 2}"));
  EXPECT_FALSE(accepts(*g, "{\n" + std::string(17, ' ') + "\"a\": [1]}"));
  EXPECT_FALSE(accepts(*g, " {\"a\": [1]}"));
}

TEST(ConstrainSchemaShape, OptionalPropertiesKeepOrderAndCommas) {
  auto g = grammar_of(R"({"type":"object","properties":{"a":{"type":"integer"},
      "b":{"type":"integer"},"c":{"type":"integer"},"d":{"type":"integer"}},"required":["c"]})");
  ASSERT_TRUE(g);
  // Every subset of {a, b, d} with c, in declared order.
  for (int mask = 0; mask < 8; ++mask) {
    std::string doc = "{";
    bool first = true;
    auto add = [&](const char* k) {
      if (!first) doc += ',';
      doc += '"';
      doc += k;
      doc += "\":1";
      first = false;
    };
    if (mask & 1) add("a");
    if (mask & 2) add("b");
    add("c");
    if (mask & 4) add("d");
    doc += "}";
    EXPECT_TRUE(accepts(*g, doc)) << doc;
  }
  EXPECT_FALSE(accepts(*g, R"({})"));
  EXPECT_FALSE(accepts(*g, R"({"a":1})"));
  EXPECT_FALSE(accepts(*g, R"({,"c":1})"));
  EXPECT_FALSE(accepts(*g, R"({"c":1,})"));
  EXPECT_FALSE(accepts(*g, R"({"b":1,"a":1,"c":1})"));
  EXPECT_FALSE(accepts(*g, R"({"a":1,"a":1,"c":1})"));
  EXPECT_FALSE(accepts(*g, R"({"c":1,"e":1})"));
}

TEST(ConstrainSchemaShape, ExtraKeysAreNeverDeclaredNames) {
  auto g = grammar_of(R"({"type":"object","properties":{"ab":{"type":"integer"},
      "abc":{"type":"integer"},"é":{"type":"integer"}},"additionalProperties":{"type":"string"}})");
  ASSERT_TRUE(g);
  EXPECT_TRUE(accepts(*g, R"({"ab":1,"abc":2,"a":"x","abcd":"y","b":"z","":"e","éé":"f"})"));
  for (const char* key : {"ab", "abc", "é"}) {
    EXPECT_FALSE(accepts(*g, std::string(R"({"ab":1,")") + key + R"(":"x"})")) << key;
  }
  EXPECT_TRUE(accepts(*g, R"({"é":3})"));
  EXPECT_FALSE(accepts(*g, R"({"a":1})")) << "extra values follow additionalProperties";
}

TEST(ConstrainSchemaShape, StringLengthsCountCharacters) {
  auto g = grammar_of(R"({"type":"string","minLength":2,"maxLength":3})");
  ASSERT_TRUE(g);
  EXPECT_TRUE(accepts(*g, "\"ab\""));
  EXPECT_TRUE(accepts(*g, "\"日本語\""));
  EXPECT_TRUE(accepts(*g, "\"\\n\\u00e9\\\\\""));
  EXPECT_FALSE(accepts(*g, "\"日本語x\""));
  EXPECT_FALSE(accepts(*g, "\"a\""));
  EXPECT_FALSE(accepts(*g, "\"\\ud83d\\ude00\""));  // surrogate escapes would miscount
}

TEST(ConstrainSchemaShape, RecursionThroughRefs) {
  auto g = grammar_of(R"({"$defs":{"e":{"anyOf":[{"type":"integer","minimum":0,"maximum":9},
      {"type":"array","items":{"$ref":"#/$defs/e"},"maxItems":2}]}},"$ref":"#/$defs/e"})");
  ASSERT_TRUE(g);
  EXPECT_TRUE(accepts(*g, "[[1,[2,[3]]],4]"));
  EXPECT_TRUE(accepts(*g, "[[[[[[[]]]]]]]"));
  EXPECT_FALSE(accepts(*g, "[1,2,3]"));
  EXPECT_FALSE(accepts(*g, "[[10]]"));
}

// --- errors: unsupported features name the keyword and the pointer ---

struct ErrorCase {
  std::string schema;
  std::string message;  // a substring of the error
};

TEST(ConstrainSchemaErrors, UnsupportedKeywordsNameKeywordAndPointer) {
  const std::vector<ErrorCase> cases = {
      {R"({"type":"object","properties":{"tags":{"type":"array","uniqueItems":true}}})",
       "schema at /properties/tags: 'uniqueItems' is not supported"},
      {R"({"not":{"type":"string"}})", "schema at /: 'not' is not supported"},
      {R"({"if":{"type":"string"},"then":{"maxLength":3}})", "schema at /: 'if' is not supported"},
      {R"({"type":"object","patternProperties":{"^x":{}}})",
       "'patternProperties' is not supported"},
      {R"({"type":"object","propertyNames":{"maxLength":3}})", "'propertyNames' is not supported"},
      {R"({"type":"number","multipleOf":5})", "'multipleOf' is not supported"},
      {R"({"type":"object","minProperties":1})", "'minProperties' is not supported"},
      {R"({"type":"object","maxProperties":1})", "'maxProperties' is not supported"},
      {R"({"type":"object","dependentRequired":{"a":["b"]}})",
       "'dependentRequired' is not supported"},
      {R"({"type":"array","contains":{"type":"integer"}})", "'contains' is not supported"},
      {R"({"type":"object","unevaluatedProperties":false})", "'unevaluatedProperties' is not"},
      {R"({"$dynamicRef":"#node"})", "'$dynamicRef' is not supported"},
      {R"({"anyOf":[{"type":"string"},{"type":"object","properties":{"a":{"foo":1}}}]})",
       "schema at /anyOf/1/properties/a: unknown keyword 'foo'"},
      {R"({"type":"string","format":"uri"})", "format 'uri' is not supported"},
      {R"({"$ref":"https://example.com/schema.json"})", "only references inside the schema"},
      {R"({"$ref":"#node"})", "only references inside the schema"},
      {R"({"$ref":"#/$defs/missing"})", "'#/$defs/missing' points to nothing"},
      {R"({"$defs":{"a":{"$ref":"#/$defs/a"}},"$ref":"#/$defs/a"})", "refers to itself"},
      {R"({"type":"number","minimum":0.5})",
       "only integer-valued bounds are supported for numbers"},
      {R"({"type":"number","exclusiveMaximum":2.25})", "'exclusiveMaximum'"},
      {R"({"type":"integer","minimum":10,"maximum":5})", "no number lies between the bounds"},
      {R"({"oneOf":[{"type":"integer"},{"type":"number"}]})",
       "schema at /: 'oneOf' branches 0 and 1 may both match"},
      {R"({"oneOf":[{"type":"object","properties":{"a":{"type":"string"}}},
                    {"type":"object","properties":{"b":{"type":"string"}}}]})",
       "'oneOf' branches"},
      {R"({"allOf":[{"type":"string","pattern":"^a"},{"pattern":"b$"}]})",
       "schema at /allOf/1: 'pattern' differs between the schemas of an allOf"},
      {R"({"allOf":[{"type":"object","properties":{"a":{}},"additionalProperties":false},
                    {"properties":{"b":{}}}]})",
       "property 'b' of another schema of the allOf"},
      {R"({"allOf":[{"type":"string"},{"type":"integer"}]})", "no type in common"},
      {"false", "schema at /: the schema 'false' allows nothing"},
      {R"({"type":"object","properties":{"a":false},"required":["a"]})",
       "schema at /properties/a: a required property whose schema is false"},
      {R"({"type":"object","required":["x"],"additionalProperties":false})",
       "required property 'x' is not in 'properties'"},
      {R"({"type":"string","maxLength":100000})", "'maxLength' 100000 is above minnow's limit"},
      {R"({"type":"array","minItems":3,"maxItems":2})", "no array length satisfies"},
      {R"({"type":"array","prefixItems":[{},{}],"items":false,"minItems":3})",
       "no array length satisfies"},
      {R"({"type":"string","pattern":"^(?=a)b$"})", "lookaround"},
      {R"({"type":"string","pattern":"^(a)\\1$"})", "escape '\\1' is not supported"},
      {R"({"type":"string","pattern":"\\bword"})", "word boundaries are not supported"},
      {R"({"type":"string","pattern":"a^b"})", "anchor '^' inside the pattern"},
      {R"({"type":"string","pattern":"^[a-"})", "unterminated character class"},
      {R"({"type":"string","pattern":"^a{2,1}$"})", "n < m"},
      {R"({"properties":{"p":{"type":"string","pattern":"(a"}}})",
       "schema at /properties/p: pattern '(a' at offset"},
      {R"({"type":"string","pattern":"^x$","maxLength":3})", "together with 'pattern'"},
      {R"({"type":"string","format":"date","minLength":3})", "together with 'format'"},
      {R"({"type":"str"})", "'type' \"str\" is not a JSON Schema type"},
      {R"({"enum":["a","b"],"maxLength":1})", "'maxLength' together with 'enum'/'const'"},
      {R"({"type":"integer","enum":["a","b"]})", "no value of 'enum'/'const' is allowed"},
      {R"({"type":"object","properties":{"a":{"type":"integer"}},"anyOf":[{}],"oneOf":[{}]})",
       "'anyOf' together with 'oneOf'"},
      {R"({"type": "object", "properties": )", "not valid JSON"},
      {R"([1,2])", "a schema must be an object or a boolean"},
  };
  for (const auto& c : cases) {
    auto r = json_schema_to_gbnf(c.schema);
    ASSERT_FALSE(r.ok()) << c.schema << " compiled to\n" << *r;
    EXPECT_NE(r.error().find(c.message), std::string::npos)
        << c.schema << "\n  error:    " << r.error() << "\n  expected: " << c.message;
  }
}

TEST(ConstrainSchemaErrors, LimitsAreErrors) {
  std::string deep = "{}";
  for (int i = 0; i < kMaxSchemaDepth + 5; ++i) deep = R"({"type":"array","items":)" + deep + "}";
  auto r = json_schema_to_gbnf(deep);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("nested deeper than"), std::string::npos) << r.error();

  std::string big(kMaxSchemaBytes + 1, ' ');
  r = json_schema_to_gbnf(big);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("more than the limit"), std::string::npos) << r.error();

  // Many properties each with a long enum: the grammar outgrows its limit.
  Json s = {{"type", "object"}, {"properties", Json::object()}};
  Json values = Json::array();
  for (int i = 0; i < 2000; ++i) values.push_back("value-number-" + std::to_string(i));
  for (int i = 0; i < 40; ++i) {
    std::string key = "p";
    key += std::to_string(i);
    s["properties"][key] = {{"enum", values}};
  }
  r = json_schema_to_gbnf(s.dump());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("bytes"), std::string::npos) << r.error();
}

TEST(ConstrainSchemaErrors, AnnotationsAreIgnored) {
  auto plain = json_schema_to_gbnf(R"({"type":"string","maxLength":3})");
  auto annotated = json_schema_to_gbnf(
      R"({"$schema":"https://json-schema.org/draft/2020-12/schema","$id":"x","title":"t",
          "description":"d","default":"a","examples":["b"],"$comment":"c","readOnly":true,
          "writeOnly":false,"deprecated":true,"x-vendor":{"a":1},"type":"string","maxLength":3})");
  ASSERT_TRUE(plain.ok() && annotated.ok());
  EXPECT_EQ(*plain, *annotated);
}

}  // namespace
}  // namespace minnow::constrain
