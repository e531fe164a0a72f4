// The router file (src/router/config.h): the bundled example loads as documented, defaults,
// every validation error names file:line:column and the key path, and save/load round-trips.
#include "router/config.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace minnow::router {
namespace {

namespace fs = std::filesystem;

// A fresh directory, set as HOME for the test (so ~ and the default log path are checked).
class RouterConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("minnow_router_config_" + std::to_string(getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    if (const char* h = std::getenv("HOME")) old_home_ = h;
    setenv("HOME", dir_.c_str(), 1);
    unsetenv("MINNOW_ROUTER");
  }
  void TearDown() override {
    setenv("HOME", old_home_.c_str(), 1);
    fs::remove_all(dir_);
  }
  std::string write(const std::string& name, const std::string& text) {
    const fs::path p = dir_ / name;
    std::ofstream(p) << text;
    return p.string();
  }
  fs::path dir_;
  std::string old_home_;
};

const char* kOneTier = "[[tier]]\nmodel = \"smollm2:135m\"\n";

TEST_F(RouterConfigTest, BundledExampleLoads) {
  auto c = load_router_config(std::string(MINNOW_SOURCE_DIR) + "/examples/router.toml");
  ASSERT_TRUE(c.ok()) << c.error();
  EXPECT_EQ(c->name, "auto");
  EXPECT_EQ(c->hold_tokens, 24);
  EXPECT_EQ(c->log_path, dir_.string() + "/.minnow/router.jsonl");  // ~ expanded
  ASSERT_EQ(c->tiers.size(), 3u);
  const TierConfig& small = c->tiers[0];
  EXPECT_EQ(small.name, "small");
  EXPECT_EQ(small.kind, TierConfig::Kind::kLocal);
  EXPECT_EQ(small.model, "smollm2:135m");
  EXPECT_EQ(small.thresholds.min_choice_mass, 0.6);
  EXPECT_EQ(small.thresholds.min_mean_logprob, -1.2);
  EXPECT_EQ(small.thresholds.min_token_logprob, -8.0);
  EXPECT_TRUE(small.thresholds.escalate_on_invalid);
  EXPECT_FALSE(c->tiers[1].thresholds.min_token_logprob.has_value());
  const TierConfig& cloud = c->tiers[2];
  EXPECT_EQ(cloud.kind, TierConfig::Kind::kRemote);
  EXPECT_EQ(cloud.base_url, "http://127.0.0.1:11500/v1");
  EXPECT_EQ(cloud.api_key_env, "");  // commented out: the stand-in upstream needs no key
  EXPECT_EQ(cloud.price_in_per_m, 0.15);
  EXPECT_EQ(cloud.price_out_per_m, 0.60);
  EXPECT_EQ(cloud.timeout_s, 30);
  EXPECT_EQ(cloud.max_retries, 2);
  EXPECT_EQ(cloud.breaker_failures, 5);
  EXPECT_TRUE(cloud.minnow_extensions);
  ASSERT_EQ(c->rules.size(), 4u);
  EXPECT_EQ(c->rules[0].name, "long-prompts");
  EXPECT_EQ(c->rules[0].min_prompt_chars, 4000);
  EXPECT_TRUE(c->rules[0].pin);
  EXPECT_EQ(c->rules[2].keywords, (std::vector<std::string>{"contract", "lawsuit", "liability"}));
  EXPECT_EQ(c->rules[3].has_tools, true);
  EXPECT_FALSE(c->rules[3].pin);
  EXPECT_EQ(c->refusal_patterns.size(), 3u);
}

TEST_F(RouterConfigTest, Defaults) {
  auto c = parse_router_config(kOneTier, "r.toml");
  ASSERT_TRUE(c.ok()) << c.error();
  EXPECT_EQ(c->name, "auto");
  EXPECT_EQ(c->hold_tokens, 24);
  EXPECT_EQ(c->log_path, dir_.string() + "/.minnow/router.jsonl");
  EXPECT_TRUE(c->refusal_patterns.empty());
  ASSERT_EQ(c->tiers.size(), 1u);
  const TierConfig& t = c->tiers[0];
  EXPECT_EQ(t.name, "smollm2:135m");  // the name defaults to the model
  EXPECT_EQ(t.kind, TierConfig::Kind::kLocal);
  EXPECT_EQ(t.thresholds, Thresholds{});
  EXPECT_EQ(t.price_in_per_m, 0);
  EXPECT_TRUE(c->rules.empty());
  // log = "" turns the log off; a rule's name defaults to its position.
  c = parse_router_config(std::string("log = \"\"\n") + kOneTier + "[[rule]]\ntag = \"x\"\n",
                          "r.toml");
  ASSERT_TRUE(c.ok()) << c.error();
  EXPECT_EQ(c->log_path, "");
  EXPECT_EQ(c->rules[0].name, "rule[0]");
  EXPECT_FALSE(c->rules[0].tier.has_value());
  // A remote tier's defaults.
  c = parse_router_config("[[tier]]\nbase_url = \"https://api.example.com/v1\"\nmodel = \"m\"\n",
                          "r.toml");
  ASSERT_TRUE(c.ok()) << c.error();
  EXPECT_EQ(c->tiers[0].kind, TierConfig::Kind::kRemote);
  EXPECT_EQ(c->tiers[0].timeout_s, 60);
  EXPECT_EQ(c->tiers[0].max_retries, 2);
  EXPECT_EQ(c->tiers[0].api_key_env, "");
}

TEST_F(RouterConfigTest, HomeIsExpanded) {
  auto c = parse_router_config("log = \"~/logs/r.jsonl\"\n[[tier]]\nmodel = \"~/m.gguf\"\n", "r");
  ASSERT_TRUE(c.ok()) << c.error();
  EXPECT_EQ(c->log_path, dir_.string() + "/logs/r.jsonl");
  EXPECT_EQ(c->tiers[0].model, dir_.string() + "/m.gguf");
  // The file path itself too.
  write("router.toml", kOneTier);
  EXPECT_TRUE(load_router_config("~/router.toml").ok());
}

TEST_F(RouterConfigTest, DefaultPath) {
  EXPECT_EQ(default_router_config_path(), dir_.string() + "/.minnow/router.toml");
  setenv("MINNOW_ROUTER", "/etc/minnow/r.toml", 1);
  EXPECT_EQ(default_router_config_path(), "/etc/minnow/r.toml");
  unsetenv("MINNOW_ROUTER");
}

struct BadCase {
  std::string toml;
  std::vector<std::string> want;  // substrings of the error
};

TEST_F(RouterConfigTest, ErrorsNameTheFileTheKeyAndTheLine) {
  const std::string remote =
      "[[tier]]\nmodel = \"a\"\n[[tier]]\nname = \"cloud\"\nbase_url = \"http://h/v1\"\n"
      "model = \"m\"\n";
  const std::vector<BadCase> cases = {
      {"name = \"auto\"\n[[tier]\nmodel = \"x\"\n", {"bad.toml:2:", "TOML syntax"}},
      {"name = \"auto\"\n", {"bad.toml", "no tiers"}},
      {"nmae = \"auto\"\n" + std::string(kOneTier),
       {"bad.toml:1:1:", "nmae", "unknown key", "did you mean 'name'"}},
      {remote + "timout_s = 3\n",
       {"bad.toml:7:1:", "tier[1].timout_s", "unknown key", "did you mean 'timeout_s'"}},
      {remote + "timeout_s = 0\n", {"bad.toml:7:", "tier[1].timeout_s", "> 0"}},
      {remote + "timeout_s = \"30\"\n", {"tier[1].timeout_s", "must be a number, not a string"}},
      {remote + "max_retries = 1.5\n", {"tier[1].max_retries", "must be an integer"}},
      {remote + "max_retries = -1\n", {"tier[1].max_retries"}},
      {remote + "backoff_ms = 500\nbackoff_max_ms = 100\n", {"tier[1].backoff_max_ms"}},
      {remote + "breaker_failures = 0\n", {"tier[1].breaker_failures"}},
      {remote + "price_out_per_m = -1\n", {"tier[1].price_out_per_m", ">= 0"}},
      {remote + "api_key_env = \"sk-123 secret\"\n", {"tier[1].api_key_env"}},
      {"[[tier]]\nbase_url = \"ftp://h\"\nmodel = \"m\"\n",
       {"bad.toml:2:", "tier[0].base_url", "http://"}},
      {"[[tier]]\nbase_url = \"http://\"\nmodel = \"m\"\n", {"tier[0].base_url"}},
      {"[[tier]]\nbase_url = \"http://h\"\n", {"tier[0].model", "missing"}},
      {"[[tier]]\nname = \"x\"\n", {"bad.toml:1:", "tier[0].model", "missing"}},
      {"[[tier]]\nmodel = \"a\"\ntimeout_s = 5\n",
       {"bad.toml:3:", "tier[0].timeout_s", "only for remote tiers"}},
      {"[[tier]]\nmodel = \"a\"\n[[tier]]\nmodel = \"a\"\n", {"tier[1].name", "unique"}},
      {"[[tier]]\nmodel = \"a\"\nmin_mean_logprob = 0.5\n",
       {"bad.toml:3:", "tier[0].min_mean_logprob", "<= 0"}},
      {"[[tier]]\nmodel = \"a\"\nmin_token_logprob = 1\n", {"tier[0].min_token_logprob"}},
      {"[[tier]]\nmodel = \"a\"\nmin_choice_mass = 1.5\n",
       {"tier[0].min_choice_mass", "between 0 and 1"}},
      {"[[tier]]\nmodel = \"a\"\nescalate_on_invalid = 1\n",
       {"tier[0].escalate_on_invalid", "true or false"}},
      {"[[tier]]\nmodel = \"a\"\nmin_mean_logprob = nan\n", {"tier[0].min_mean_logprob", "finite"}},
      {"[tier]\nmodel = \"a\"\n", {"bad.toml:1:", "tier", "[[tier]]"}},
      {"hold_tokens = \"24\"\n" + std::string(kOneTier), {"bad.toml:1:", "hold_tokens"}},
      {"hold_tokens = -1\n" + std::string(kOneTier), {"hold_tokens", "between"}},
      {"name = \"\"\n" + std::string(kOneTier), {"name", "empty"}},
      {"refusal_patterns = [\"ok\", \"(unclosed\"]\n" + std::string(kOneTier),
       {"bad.toml:1:", "refusal_patterns[1]", "offset"}},
      {"refusal_patterns = \"x\"\n" + std::string(kOneTier), {"refusal_patterns", "list"}},
      {std::string(kOneTier) + "[[rule]]\ntier = \"nope\"\ntag = \"x\"\n",
       {"bad.toml:4:", "rule[0].tier", "no tier named \"nope\"", "smollm2:135m"}},
      {std::string(kOneTier) + "[[rule]]\nregex = \"([a-z\"\n", {"bad.toml:4:", "rule[0].regex"}},
      {std::string(kOneTier) + "[[rule]]\ntask = \"poetry\"\n",
       {"rule[0].task", "one of", "choice"}},
      {std::string(kOneTier) + "[[rule]]\nkeyword = [\"a\"]\n",
       {"rule[0].keyword", "did you mean 'keywords'"}},
      {std::string(kOneTier) + "[[rule]]\nkeywords = [\"a\", 3]\n", {"rule[0].keywords[1]"}},
      {std::string(kOneTier) + "[[rule]]\nkeywords = [\"\"]\n", {"rule[0].keywords", "empty"}},
      {std::string(kOneTier) + "[[rule]]\nmin_prompt_chars = 10\nmax_prompt_chars = 5\n",
       {"rule[0].max_prompt_chars", "min_prompt_chars"}},
      {std::string(kOneTier) + "[[rule]]\nname = \"a\"\ntag = \"x\"\n[[rule]]\nname = \"a\"\n"
                               "tag = \"y\"\n",
       {"rule[1].name", "already"}},
      {std::string(kOneTier) + "[[rule]]\nname = \"all\"\npin = true\n[[rule]]\ntag = \"y\"\n",
       {"rule[0]", "no conditions"}},
  };
  for (const BadCase& bc : cases) {
    const std::string path = write("bad.toml", bc.toml);
    auto c = load_router_config(path);
    ASSERT_FALSE(c.ok()) << "accepted:\n" << bc.toml;
    for (const std::string& w : bc.want) {
      EXPECT_NE(c.error().find(w), std::string::npos)
          << "error: " << c.error() << "\nmissing: " << w << "\nfile:\n"
          << bc.toml;
    }
    EXPECT_EQ(c.error().rfind(path, 0), 0u) << c.error();  // starts with the file name
  }
  auto missing = load_router_config((dir_ / "none.toml").string());
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().find("none.toml"), std::string::npos);
  auto dir = load_router_config(dir_.string());
  ASSERT_FALSE(dir.ok());
  EXPECT_NE(dir.error().find("directory"), std::string::npos) << dir.error();
}

TEST_F(RouterConfigTest, SaveThenLoadGivesTheSameConfig) {
  auto c = load_router_config(std::string(MINNOW_SOURCE_DIR) + "/examples/router.toml");
  ASSERT_TRUE(c.ok()) << c.error();
  const std::string out = (dir_ / "sub" / "saved.toml").string();
  ASSERT_TRUE(save_router_config(*c, out).ok());
  auto back = load_router_config(out);
  ASSERT_TRUE(back.ok()) << back.error();
  EXPECT_EQ(back->source_path, out);
  back->source_path = c->source_path;
  EXPECT_EQ(*back, *c);

  // Every field off its default, awkward strings and numbers that do not print short.
  RouterConfig x;
  x.name = "router \"quoted\" \\ ünïcode";
  x.hold_tokens = 0;
  x.log_path = "";
  x.refusal_patterns = {"(?i)no\\s+idea", "tab\there"};
  TierConfig a;
  a.name = "a\nb";
  a.model = "/models/x.gguf";
  a.price_in_per_m = 1.0 / 3;
  a.price_out_per_m = 1e-7;
  a.thresholds.min_mean_logprob = -0.1;
  a.thresholds.min_token_logprob = -12.345678901234567;
  a.thresholds.min_choice_mass = 0.30000000000000004;
  a.thresholds.escalate_on_invalid = false;
  a.thresholds.escalate_on_refusal = false;
  TierConfig r;
  r.name = "cloud";
  r.kind = TierConfig::Kind::kRemote;
  r.model = "gpt";
  r.base_url = "https://api.example.com/v1";
  r.api_key_env = "KEY_1";
  r.timeout_s = 2.5;
  r.max_retries = 0;
  r.backoff_ms = 10;
  r.backoff_max_ms = 10;
  r.breaker_failures = 1;
  r.breaker_cooldown_s = 0;
  r.minnow_extensions = true;
  r.thresholds.min_choice_mass = 1;
  x.tiers = {a, r};
  Rule rule;
  rule.name = "everything";
  rule.tag = "t";
  rule.task = "schema";
  rule.min_prompt_chars = 0;
  rule.max_prompt_chars = 2147483647;
  rule.regex = "\\d+\"";
  rule.keywords = {"a", "b\"c"};
  rule.has_tools = false;
  rule.has_schema = true;
  rule.tier = "cloud";
  rule.pin = true;
  Rule bare;
  bare.name = "bare";
  x.rules = {rule, bare};
  x.source_path = (dir_ / "x.toml").string();
  ASSERT_TRUE(save_router_config(x, x.source_path).ok());
  auto y = load_router_config(x.source_path);
  ASSERT_TRUE(y.ok()) << y.error();
  EXPECT_EQ(*y, x);
  // The thresholds are written, so the file states them.
  std::stringstream text;
  text << std::ifstream(x.source_path).rdbuf();
  EXPECT_NE(text.str().find("min_token_logprob = -12.345678901234567"), std::string::npos)
      << text.str();
}

TEST_F(RouterConfigTest, SaveIsAtomicAndRefusesWhatWouldNotLoad) {
  const std::string path = write("r.toml", "# the user's file\n" + std::string(kOneTier));
  auto c = load_router_config(path);
  ASSERT_TRUE(c.ok());
  RouterConfig bad = *c;
  Rule rule;
  rule.name = "x";
  rule.tier = "no-such-tier";
  bad.rules = {rule};
  const Status s = save_router_config(bad, path);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("no-such-tier"), std::string::npos) << s.message();
  // The old file is untouched and no temporary is left.
  std::stringstream text;
  text << std::ifstream(path).rdbuf();
  EXPECT_EQ(text.str(), "# the user's file\n" + std::string(kOneTier));
  c->tiers[0].thresholds.min_mean_logprob = -2;
  ASSERT_TRUE(save_router_config(*c, path).ok());
  auto again = load_router_config(path);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->tiers[0].thresholds.min_mean_logprob, -2.0);
  size_t files = 0;
  for (const auto& e : fs::directory_iterator(dir_)) files += e.is_regular_file() ? 1 : 0;
  EXPECT_EQ(files, 1u);
}

}  // namespace
}  // namespace minnow::router
