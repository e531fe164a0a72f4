// The router's rules (src/router/rules.h): first match wins, each condition, refusals, and
// regexes that stay bounded on long or hostile input and are safe to share between threads.
#include "router/rules.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "router/config.h"

namespace minnow::router {
namespace {

RouterConfig three_tiers() {
  RouterConfig c;
  for (const char* n : {"small", "medium", "cloud"}) {
    TierConfig t;
    t.name = n;
    t.model = n;
    c.tiers.push_back(t);
  }
  return c;
}

Rule rule(const std::string& name, const std::string& tier, bool pin = false) {
  Rule r;
  r.name = name;
  r.tier = tier;
  r.pin = pin;
  return r;
}

RequestFeatures text(const std::string& t, const std::string& task = "chat") {
  RequestFeatures f;
  f.text = t;
  f.task = task;
  f.prompt_chars = t.size();
  return f;
}

TEST(RouterRules, FirstMatchingRuleWins) {
  RouterConfig c = three_tiers();
  Rule tagged = rule("tagged", "cloud", true);
  tagged.tag = "vip";
  Rule legal = rule("legal", "medium");
  legal.keywords = {"Contract", "lawsuit"};
  Rule long_prompt = rule("long", "cloud", true);
  long_prompt.min_prompt_chars = 100;
  Rule json = rule("json", "medium");
  json.task = "json";
  Rule tools = rule("tools", "cloud");
  tools.has_tools = true;
  Rule schema_short = rule("schema-short", "small", true);
  schema_short.has_schema = true;
  schema_short.max_prompt_chars = 20;
  Rule order = rule("order-id", "medium");
  order.regex = "\\bORD-\\d{6}\\b";
  c.rules = {tagged, legal, long_prompt, json, tools, schema_short, order};
  auto rules = Rules::compile(c);
  ASSERT_TRUE(rules.ok()) << rules.error();

  RouteStart s = rules->choose(text("hello"));
  EXPECT_EQ(s.tier, 0u);
  EXPECT_FALSE(s.pin);
  EXPECT_EQ(s.rule, "");

  RequestFeatures f = text("my CONTRACT was broken");
  f.tag = "vip";
  s = rules->choose(f);  // both match: the first listed decides
  EXPECT_EQ(s.rule, "tagged");
  EXPECT_EQ(s.tier, 2u);
  EXPECT_TRUE(s.pin);
  f.tag = "other";
  s = rules->choose(f);
  EXPECT_EQ(s.rule, "legal");  // keywords are case-insensitive both ways
  EXPECT_EQ(s.tier, 1u);
  EXPECT_FALSE(s.pin);

  EXPECT_EQ(rules->choose(text(std::string(100, 'x'))).rule, "long");
  EXPECT_EQ(rules->choose(text(std::string(99, 'x'))).rule, "");
  EXPECT_EQ(rules->choose(text("give me json", "json")).rule, "json");
  f = text("call a tool");
  f.has_tools = true;
  EXPECT_EQ(rules->choose(f).rule, "tools");
  f = text("short", "schema");
  f.has_schema = true;
  EXPECT_EQ(rules->choose(f).rule, "schema-short");
  f.prompt_chars = 21;  // both conditions must hold
  EXPECT_EQ(rules->choose(f).rule, "");
  EXPECT_EQ(rules->choose(text("where is ORD-123456?")).rule, "order-id");
  EXPECT_EQ(rules->choose(text("where is ORD-1234567?")).rule, "");
  EXPECT_EQ(rules->choose(text("where is ord-123456?")).rule, "");  // regex: case as written
}

TEST(RouterRules, ARuleWithoutATierStartsAtTheFirst) {
  RouterConfig c = three_tiers();
  Rule keep;
  keep.name = "keep-small";
  keep.tag = "cheap";
  keep.pin = true;
  Rule rest = rule("rest", "cloud");
  c.rules = {keep, rest};  // rest has no conditions: matches everything else
  auto rules = Rules::compile(c);
  ASSERT_TRUE(rules.ok());
  RequestFeatures f = text("x");
  f.tag = "cheap";
  RouteStart s = rules->choose(f);
  EXPECT_EQ(s.tier, 0u);
  EXPECT_TRUE(s.pin);
  EXPECT_EQ(s.rule, "keep-small");
  s = rules->choose(text("y"));
  EXPECT_EQ(s.rule, "rest");
  EXPECT_EQ(s.tier, 2u);
}

TEST(RouterRules, CompileErrors) {
  RouterConfig c = three_tiers();
  c.rules = {rule("r", "nowhere")};
  auto r = Rules::compile(c);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("rule[0] (r).tier"), std::string::npos) << r.error();
  c.rules = {rule("r", "small")};
  c.rules[0].regex = "a(b";
  r = Rules::compile(c);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("rule[0] (r).regex"), std::string::npos) << r.error();
  c.rules.clear();
  c.refusal_patterns = {"[z-a]"};
  r = Rules::compile(c);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("refusal_patterns[0]"), std::string::npos) << r.error();
  EXPECT_FALSE(Rules::compile(RouterConfig{}).ok());  // no tiers
}

TEST(RouterRules, DefaultRefusals) {
  auto rules = Rules::compile(three_tiers());
  ASSERT_TRUE(rules.ok());
  for (const char* yes :
       {"I don't know.", "Honestly, I do not know the answer.", "i dont know", "I’m not sure.",
        "I am not certain about that", "I cannot help with that request.", "I can't answer that.",
        "As an AI language model, I have no opinions.", "I'm sorry, but I can't do that.",
        "I don't have enough information to say.", "I'M NOT SURE"}) {
    EXPECT_TRUE(rules->is_refusal(yes)) << yes;
  }
  for (const char* no :
       {"Paris.", "billing", "I know the answer: 42.", "Sure! Here it is.", "I'm sure it is Paris.",
        "The cannot-fail test", "", "{\"name\": \"I\"}"}) {
    EXPECT_FALSE(rules->is_refusal(no)) << no;
  }
}

TEST(RouterRules, ConfiguredRefusalsReplaceTheDefaultsAndIgnoreCase) {
  RouterConfig c = three_tiers();
  c.refusal_patterns = {"\\bzebra\\b", "(?-i)CASE"};
  auto rules = Rules::compile(c);
  ASSERT_TRUE(rules.ok());
  EXPECT_TRUE(rules->is_refusal("A ZEBRA!"));
  EXPECT_FALSE(rules->is_refusal("zebras"));
  EXPECT_FALSE(rules->is_refusal("I don't know"));  // the defaults no longer apply
  EXPECT_TRUE(rules->is_refusal("CASE"));
  EXPECT_FALSE(rules->is_refusal("case"));  // an inline flag overrides
}

TEST(RouterRules, RegexesStayBoundedOnHostileInput) {
  RouterConfig c = three_tiers();
  Rule evil = rule("evil", "cloud");
  evil.regex = "^(a+)+$";  // catastrophic backtracking on "aaaa...b"
  Rule word = rule("word", "medium");
  word.regex = "needle";
  c.rules = {evil, word};
  auto rules = Rules::compile(c);
  ASSERT_TRUE(rules.ok());
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(rules->choose(text(std::string(5000, 'a') + "b")).rule, "");
  // A long prompt (std::regex would recurse per character here and overflow the stack).
  std::string big(2'000'000, 'a');
  EXPECT_EQ(rules->choose(text(big)).rule, "evil");
  big += " needle";
  EXPECT_EQ(rules->choose(text(big)).rule, "word");
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_LT(s, 20.0);
  // Invalid UTF-8 in the prompt is no error: the rest still matches.
  EXPECT_EQ(rules->choose(text("\xff\xfe bad bytes \xc3 then needle")).rule, "word");
  EXPECT_TRUE(rules->is_refusal("\xff I don't know \xe2\x82"));
}

TEST(RouterRules, PatternCompileReportsTheOffset) {
  auto p = Pattern::compile("ab(c", false);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.error().find("offset 4"), std::string::npos) << p.error();
  auto q = Pattern::compile("straße", true);
  ASSERT_TRUE(q.ok());
  EXPECT_TRUE(q->search("STRASSE is not it, but STRAßE is"));
}

TEST(RouterRules, SafeFromManyThreads) {
  RouterConfig c = three_tiers();
  Rule legal = rule("legal", "medium");
  legal.keywords = {"contract"};
  Rule order = rule("order", "cloud");
  order.regex = "ORD-\\d+";
  c.rules = {legal, order};
  auto rules = Rules::compile(c);
  ASSERT_TRUE(rules.ok());
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 500; ++i) {
        const int k = (i + t) % 3;
        const std::string s = k == 0 ? "a contract" : k == 1 ? "ORD-42" : "I don't know";
        const RouteStart r = rules->choose(text(s));
        const size_t want = k == 0 ? 1 : k == 1 ? 2 : 0;
        if (r.tier != want || rules->is_refusal(s) != (k == 2)) ++wrong;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
}

}  // namespace
}  // namespace minnow::router
