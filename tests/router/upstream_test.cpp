// The router's remote upstream client against a scripted in-process HTTP server (each request
// takes the script's next step; the server counts what reached it and what it answered), and
// the pure request / answer translations.
#include "router/upstream.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace minnow::router {
namespace {

using Json = nlohmann::json;
using Clock = std::chrono::steady_clock;
using Kind = UpstreamErrorKind;

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

struct Step {
  int status = 200;
  std::string body;  // "" with 200: a chat completion numbered by the request
  int sleep_ms = 0;
  std::map<std::string, std::string> headers;
};

Step ok() { return Step{}; }
Step status(int code, std::string body = R"({"error":{"message":"boom"}})") {
  return Step{code, std::move(body), 0, {}};
}
Step slow(int ms) { return Step{200, "", ms, {}}; }

std::string completion(int n) {
  return Json{{"id", "chatcmpl-" + std::to_string(n)},
              {"object", "chat.completion"},
              {"choices",
               {{{"index", 0},
                 {"message", {{"role", "assistant"}, {"content", "answer " + std::to_string(n)}}},
                 {"finish_reason", "stop"}}}},
              {"usage", {{"prompt_tokens", 7}, {"completion_tokens", 3}}}}
      .dump();
}

// An OpenAI-compatible endpoint on a loopback ephemeral port whose behaviour is a script.
class ScriptedServer {
 public:
  explicit ScriptedServer(std::function<Step(int)> script) : script_(std::move(script)) {
    svr_.Post(R"(/v1/chat/completions)",
              [this](const httplib::Request& req, httplib::Response& res) {
                int n;
                Step step;
                {
                  std::lock_guard<std::mutex> lock(mu_);
                  n = requests_++;
                  last_body_ = Json::parse(req.body, nullptr, false);
                  last_auth_ = req.get_header_value("Authorization");
                  step = script_(n);
                }
                if (step.sleep_ms)
                  std::this_thread::sleep_for(std::chrono::milliseconds(step.sleep_ms));
                for (const auto& [k, v] : step.headers) res.set_header(k, v);
                res.status = step.status;
                const bool answer = step.status == 200 && step.body.empty();
                res.set_content(answer ? completion(n) : step.body, "application/json");
                if (answer) ++answered_;
              });
    port_ = svr_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { svr_.listen_after_bind(); });
    while (!svr_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  explicit ScriptedServer(std::vector<Step> steps)
      : ScriptedServer([steps](int n) { return steps[std::min<size_t>(n, steps.size() - 1)]; }) {}
  ~ScriptedServer() {
    svr_.stop();
    thread_.join();
  }

  void set_script(std::function<Step(int)> script) {
    std::lock_guard<std::mutex> lock(mu_);
    script_ = std::move(script);
  }
  std::string base_url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/v1"; }
  int requests() const {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }
  int answered() const { return answered_.load(); }  // chat completions sent
  Json last_body() const {
    std::lock_guard<std::mutex> lock(mu_);
    return last_body_;
  }
  std::string last_auth() const {
    std::lock_guard<std::mutex> lock(mu_);
    return last_auth_;
  }

 private:
  httplib::Server svr_;
  std::thread thread_;
  int port_ = 0;
  mutable std::mutex mu_;
  std::function<Step(int)> script_;
  int requests_ = 0;
  std::atomic<int> answered_{0};
  Json last_body_;
  std::string last_auth_;
};

TierConfig tier_for(const std::string& base_url) {
  TierConfig t;
  t.name = "cloud";
  t.kind = TierConfig::Kind::kRemote;
  t.model = "up-model";
  t.base_url = base_url;
  t.timeout_s = 2;
  t.max_retries = 2;
  t.backoff_ms = 1;
  t.backoff_max_ms = 5;
  t.breaker_failures = 100;
  t.breaker_cooldown_s = 0.2;
  return t;
}

const Json kRequest = {{"messages", {{{"role", "user"}, {"content", "hi"}}}}, {"stream", true}};

// A loopback port nothing listens on.
int closed_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

// --- The client --------------------------------------------------------------------------------

TEST(Upstream, AnswersFirstTimeWithTheTiersModelAndNoStream) {
  ScriptedServer s(std::vector<Step>{ok()});
  Upstream up(tier_for(s.base_url()));
  Kind kind = Kind::kTimeout;
  auto r = up.chat(kRequest, nullptr, &kind);
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(kind, Kind::kNone);
  EXPECT_EQ(r->attempts, 1);
  EXPECT_EQ(r->http_status, 200);
  EXPECT_EQ(r->retries, "");
  EXPECT_GT(r->total_ms, 0);
  EXPECT_EQ(r->body["choices"][0]["message"]["content"], "answer 0");
  const Json sent = s.last_body();
  EXPECT_EQ(sent["model"], "up-model");
  EXPECT_EQ(sent["stream"], false);
  EXPECT_EQ(sent["messages"], kRequest["messages"]);
  EXPECT_EQ(s.last_auth(), "");
  EXPECT_EQ(s.requests(), 1);
  EXPECT_EQ(up.breaker_state(), Upstream::BreakerState::kClosed);
}

TEST(Upstream, SendsTheKeyFromItsVariableAndNamesAMissingOne) {
  ScriptedServer s(std::vector<Step>{ok()});
  TierConfig t = tier_for(s.base_url());
  t.api_key_env = "MINNOW_TEST_UPSTREAM_KEY";
  setenv("MINNOW_TEST_UPSTREAM_KEY", "sk-test-123", 1);
  Upstream up(t);
  EXPECT_TRUE(up.check().ok());
  auto r = up.chat(kRequest);
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(s.last_auth(), "Bearer sk-test-123");

  unsetenv("MINNOW_TEST_UPSTREAM_KEY");
  Kind kind = Kind::kNone;
  auto e = up.chat(kRequest, nullptr, &kind);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(kind, Kind::kConfig);
  EXPECT_NE(e.error().find("MINNOW_TEST_UPSTREAM_KEY"), std::string::npos) << e.error();
  EXPECT_FALSE(up.check().ok());
  EXPECT_EQ(s.requests(), 1);  // no request without the key
}

TEST(Upstream, BadBaseUrlIsAConfigError) {
  Upstream up(tier_for("ftp://example.com/v1"));
  Kind kind = Kind::kNone;
  auto r = up.chat(kRequest, nullptr, &kind);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(kind, Kind::kConfig);
  EXPECT_NE(r.error().find("ftp://example.com/v1"), std::string::npos) << r.error();
  EXPECT_FALSE(up.check().ok());
}

TEST(Upstream, A500ThenAnAnswerIsRetriedOnce) {
  ScriptedServer s(std::vector<Step>{status(500), ok()});
  Upstream up(tier_for(s.base_url()));
  auto r = up.chat(kRequest);
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(r->attempts, 2);
  EXPECT_EQ(r->body["choices"][0]["message"]["content"], "answer 1");
  EXPECT_NE(r->retries.find("HTTP 500"), std::string::npos) << r->retries;
  EXPECT_EQ(s.requests(), 2);
  EXPECT_EQ(s.answered(), 1);
}

TEST(Upstream, Always500FailsAfterEveryAttemptNamingThem) {
  ScriptedServer s(std::vector<Step>{status(503, R"({"error":"overloaded"})")});
  Upstream up(tier_for(s.base_url()));
  Kind kind = Kind::kNone;
  auto r = up.chat(kRequest, nullptr, &kind);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(kind, Kind::kHttp5xx);
  EXPECT_EQ(s.requests(), 3);  // 1 + max_retries
  const std::string& m = r.error();
  for (const char* part : {"upstream 'cloud'", "/v1/chat/completions", "http_5xx", "3 attempts",
                           "#1 HTTP 503: overloaded", "#2 HTTP 503", "#3 HTTP 503"}) {
    EXPECT_NE(m.find(part), std::string::npos) << part << " not in: " << m;
  }
}

TEST(Upstream, A400IsNotRetriedAndCarriesTheUpstreamsMessage) {
  ScriptedServer s(std::vector<Step>{status(400, R"({"error":{"message":"model not found"}})")});
  Upstream up(tier_for(s.base_url()));
  Kind kind = Kind::kNone;
  auto r = up.chat(kRequest, nullptr, &kind);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(kind, Kind::kClientError);
  EXPECT_EQ(s.requests(), 1);
  EXPECT_NE(r.error().find("model not found"), std::string::npos) << r.error();
  EXPECT_NE(r.error().find("not retried"), std::string::npos) << r.error();
}

TEST(Upstream, SlowBeyondTheTimeoutIsATimeoutAndRetried) {
  ScriptedServer s(std::vector<Step>{slow(400), ok()});
  TierConfig t = tier_for(s.base_url());
  t.timeout_s = 0.15;
  Upstream up(t);
  auto r = up.chat(kRequest);
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(r->attempts, 2);
  EXPECT_NE(r->retries.find("timed out"), std::string::npos) << r->retries;

  s.set_script([](int) { return slow(400); });
  t.max_retries = 1;
  Upstream up2(t);
  const int before = s.requests();
  Kind kind = Kind::kNone;
  const auto t0 = Clock::now();
  auto e = up2.chat(kRequest, nullptr, &kind);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(kind, Kind::kTimeout);
  EXPECT_LT(ms_since(t0), 1000);  // two attempts of 0.15 s, not two of the server's 0.4 s
  EXPECT_EQ(s.requests() - before, 2);
  EXPECT_NE(e.error().find("timed out"), std::string::npos) << e.error();
}

TEST(Upstream, ConnectionRefusedIsRetriedThenAConnectError) {
  Upstream up(tier_for("http://127.0.0.1:" + std::to_string(closed_port()) + "/v1"));
  Kind kind = Kind::kNone;
  auto r = up.chat(kRequest, nullptr, &kind);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(kind, Kind::kConnect);
  EXPECT_NE(r.error().find("3 attempts"), std::string::npos) << r.error();
  EXPECT_NE(r.error().find("could not connect"), std::string::npos) << r.error();
}

TEST(Upstream, HttpsGoesThroughTheTlsClient) {
  Upstream up(tier_for("https://127.0.0.1:" + std::to_string(closed_port()) + "/v1"));
  Kind kind = Kind::kNone;
  auto r = up.chat(kRequest, nullptr, &kind);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(kind, Kind::kConnect) << r.error();
}

TEST(Upstream, A2xxThatIsNotAChatCompletionIsRetried) {
  ScriptedServer s(std::vector<Step>{status(200, "<html>oops"), ok()});
  Upstream up(tier_for(s.base_url()));
  auto r = up.chat(kRequest);
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(r->attempts, 2);
  EXPECT_NE(r->retries.find("not JSON"), std::string::npos) << r->retries;

  s.set_script([](int) { return status(200, R"({"object":"chat.completion"})"); });
  Kind kind = Kind::kNone;
  auto e = up.chat(kRequest, nullptr, &kind);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(kind, Kind::kBadResponse);
  EXPECT_NE(e.error().find("no choices"), std::string::npos) << e.error();
  EXPECT_EQ(s.requests(), 2 + 3);
}

TEST(Upstream, RateLimitedHonoursRetryAfterUpToTheCap) {
  Step limited = status(429, R"({"error":{"message":"slow down"}})");
  limited.headers["Retry-After"] = "1";
  ScriptedServer s(std::vector<Step>{limited, ok()});
  TierConfig t = tier_for(s.base_url());
  t.backoff_max_ms = 1500;
  {
    Upstream up(t);
    const auto t0 = Clock::now();
    auto r = up.chat(kRequest);
    ASSERT_TRUE(r.ok()) << r.error();
    EXPECT_EQ(r->attempts, 2);
    EXPECT_GE(ms_since(t0), 950);  // waited the second it was told to
  }
  s.set_script([limited](int n) { return n % 2 == 0 ? limited : ok(); });
  t.backoff_max_ms = 50;
  {
    Upstream up(t);
    const auto t0 = Clock::now();
    auto r = up.chat(kRequest);
    ASSERT_TRUE(r.ok()) << r.error();
    EXPECT_EQ(r->attempts, 2);
    EXPECT_LT(ms_since(t0), 500);  // capped at backoff_max_ms
  }
  s.set_script([limited](int) { return limited; });
  Upstream up(t);
  Kind kind = Kind::kNone;
  auto e = up.chat(kRequest, nullptr, &kind);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(kind, Kind::kRateLimited);
  EXPECT_NE(e.error().find("slow down"), std::string::npos) << e.error();
}

TEST(Upstream, BreakerOpensAfterConsecutiveFailuresAndFailsFastWithoutTheNetwork) {
  ScriptedServer s(std::vector<Step>{status(500)});
  TierConfig t = tier_for(s.base_url());
  t.max_retries = 0;
  t.breaker_failures = 2;
  t.breaker_cooldown_s = 0.2;
  Upstream up(t);
  Kind kind = Kind::kNone;
  EXPECT_FALSE(up.chat(kRequest, nullptr, &kind).ok());
  EXPECT_EQ(kind, Kind::kHttp5xx);
  EXPECT_EQ(up.breaker_state(), Upstream::BreakerState::kClosed);
  EXPECT_FALSE(up.chat(kRequest, nullptr, &kind).ok());
  EXPECT_EQ(up.breaker_state(), Upstream::BreakerState::kOpen);
  EXPECT_EQ(s.requests(), 2);

  const auto t0 = Clock::now();
  auto r = up.chat(kRequest, nullptr, &kind);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(kind, Kind::kCircuitOpen);
  EXPECT_LT(ms_since(t0), 50);
  EXPECT_NE(r.error().find("circuit open"), std::string::npos) << r.error();
  EXPECT_EQ(s.requests(), 2);  // nothing reached the server

  // After the cooldown, one trial: it fails, the circuit opens again at once.
  std::this_thread::sleep_for(std::chrono::milliseconds(250));
  EXPECT_EQ(up.breaker_state(), Upstream::BreakerState::kHalfOpen);
  EXPECT_FALSE(up.chat(kRequest, nullptr, &kind).ok());
  EXPECT_EQ(kind, Kind::kHttp5xx);
  EXPECT_EQ(s.requests(), 3);
  EXPECT_EQ(up.breaker_state(), Upstream::BreakerState::kOpen);
  EXPECT_FALSE(up.chat(kRequest, nullptr, &kind).ok());
  EXPECT_EQ(kind, Kind::kCircuitOpen);
  EXPECT_EQ(s.requests(), 3);

  // The upstream recovers: the next trial closes the circuit.
  s.set_script([](int) { return ok(); });
  std::this_thread::sleep_for(std::chrono::milliseconds(250));
  auto good = up.chat(kRequest, nullptr, &kind);
  ASSERT_TRUE(good.ok()) << good.error();
  EXPECT_EQ(up.breaker_state(), Upstream::BreakerState::kClosed);
  EXPECT_EQ(s.requests(), 4);
  // Closed again: it takes breaker_failures fresh failures to open it.
  s.set_script([](int) { return status(500); });
  EXPECT_FALSE(up.chat(kRequest).ok());
  EXPECT_EQ(up.breaker_state(), Upstream::BreakerState::kClosed);
}

TEST(Upstream, HalfOpenLetsOneTrialThrough) {
  ScriptedServer s(std::vector<Step>{status(500)});
  TierConfig t = tier_for(s.base_url());
  t.max_retries = 0;
  t.breaker_failures = 1;
  t.breaker_cooldown_s = 0.1;
  Upstream up(t);
  EXPECT_FALSE(up.chat(kRequest).ok());
  EXPECT_EQ(up.breaker_state(), Upstream::BreakerState::kOpen);
  s.set_script([](int) { return slow(300); });
  std::this_thread::sleep_for(std::chrono::milliseconds(150));

  Result<UpstreamReply> trial = Status::error("not run");
  std::thread a([&] { trial = up.chat(kRequest); });
  while (s.requests() < 2) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  Kind kind = Kind::kNone;
  auto other = up.chat(kRequest, nullptr, &kind);
  EXPECT_FALSE(other.ok());
  EXPECT_EQ(kind, Kind::kCircuitOpen);
  EXPECT_NE(other.error().find("trial"), std::string::npos) << other.error();
  a.join();
  ASSERT_TRUE(trial.ok()) << trial.error();
  EXPECT_EQ(s.requests(), 2);
  EXPECT_EQ(up.breaker_state(), Upstream::BreakerState::kClosed);
}

TEST(Upstream, ClientErrorsAndCancelsDoNotOpenTheBreaker) {
  ScriptedServer s(std::vector<Step>{status(400)});
  TierConfig t = tier_for(s.base_url());
  t.breaker_failures = 1;
  Upstream up(t);
  EXPECT_FALSE(up.chat(kRequest).ok());
  EXPECT_EQ(up.breaker_state(), Upstream::BreakerState::kClosed);
  std::atomic<bool> cancel{true};
  Kind kind = Kind::kNone;
  EXPECT_FALSE(up.chat(kRequest, &cancel, &kind).ok());
  EXPECT_EQ(kind, Kind::kCancelled);
  EXPECT_EQ(up.breaker_state(), Upstream::BreakerState::kClosed);
  EXPECT_EQ(s.requests(), 1);
}

TEST(Upstream, FlappingIsAnsweredOnceEachCall) {
  // Odd requests fail, even ones answer: every call needs at most two attempts.
  ScriptedServer s([](int n) { return n % 2 == 0 ? status(500) : ok(); });
  TierConfig t = tier_for(s.base_url());
  t.breaker_failures = 3;
  Upstream up(t);
  int attempts = 0;
  for (int i = 0; i < 10; ++i) {
    auto r = up.chat(kRequest);
    ASSERT_TRUE(r.ok()) << r.error();
    EXPECT_EQ(r->attempts, 2);
    attempts += r->attempts;
  }
  EXPECT_EQ(s.requests(), attempts);
  EXPECT_EQ(s.answered(), 10);  // one answer per call, none after it
  EXPECT_EQ(up.breaker_state(), Upstream::BreakerState::kClosed);
}

TEST(Upstream, ConcurrentCallsOnAFlappingUpstreamNeverGetTwoAnswers) {
  ScriptedServer s([](int n) { return n % 2 == 0 ? status(502) : ok(); });
  TierConfig t = tier_for(s.base_url());
  t.max_retries = 4;
  Upstream up(t);
  std::atomic<int> successes{0}, attempts{0};
  std::vector<std::thread> threads;
  for (int k = 0; k < 4; ++k) {
    threads.emplace_back([&] {
      for (int i = 0; i < 5; ++i) {
        auto r = up.chat(kRequest);
        if (r.ok()) {
          ++successes;
          attempts += r->attempts;
        } else {
          // Each failed call made 1 + max_retries requests (the message says so).
          EXPECT_NE(r.error().find("5 attempts"), std::string::npos) << r.error();
          attempts += 5;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(s.answered(), successes.load());
  EXPECT_EQ(s.requests(), attempts.load());
  EXPECT_GE(successes.load(), 15);
}

TEST(Upstream, CancelAbortsAnAttemptInFlight) {
  ScriptedServer s(std::vector<Step>{slow(600)});
  TierConfig t = tier_for(s.base_url());
  t.timeout_s = 5;
  Upstream up(t);
  std::atomic<bool> cancel{false};
  std::thread canceller([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    cancel = true;
  });
  Kind kind = Kind::kNone;
  const auto t0 = Clock::now();
  auto r = up.chat(kRequest, &cancel, &kind);
  canceller.join();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(kind, Kind::kCancelled);
  EXPECT_LT(ms_since(t0), 450);
  EXPECT_NE(r.error().find("cancelled"), std::string::npos) << r.error();
  EXPECT_EQ(s.requests(), 1);
}

TEST(Upstream, CancelAbortsTheBackoff) {
  Step busy = status(503);
  busy.headers["Retry-After"] = "5";
  ScriptedServer s(std::vector<Step>{busy});
  TierConfig t = tier_for(s.base_url());
  t.backoff_max_ms = 5000;
  Upstream up(t);
  std::atomic<bool> cancel{false};
  std::thread canceller([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    cancel = true;
  });
  Kind kind = Kind::kNone;
  const auto t0 = Clock::now();
  auto r = up.chat(kRequest, &cancel, &kind);
  canceller.join();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(kind, Kind::kCancelled);
  EXPECT_LT(ms_since(t0), 1000);
  EXPECT_EQ(s.requests(), 1);
}

// --- Translations --------------------------------------------------------------------------------

TEST(Translate, OllamaChatBecomesAnOpenAIChatBody) {
  const Json body = Json::parse(R"({
    "model": "auto", "stream": true, "keep_alive": "5m",
    "messages": [
      {"role": "system", "content": "be brief"},
      {"role": "user", "content": "weather in Paris and Rome?"},
      {"role": "assistant", "content": "", "tool_calls": [
        {"function": {"name": "get_weather", "arguments": {"city": "Paris"}}},
        {"function": {"name": "get_time", "arguments": {"city": "Rome"}}}]},
      {"role": "tool", "tool_name": "get_time", "content": "12:00"},
      {"role": "tool", "content": "sunny"}],
    "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}],
    "options": {"temperature": 0.2, "top_p": 0.9, "seed": 42, "num_predict": 64, "stop": "\n\n",
                "presence_penalty": 0.5, "frequency_penalty": 0.25, "top_k": 40},
    "format": "json"
  })");
  const Json out = openai_chat_from_ollama(body, true);
  ASSERT_EQ(out["messages"].size(), 5u);
  EXPECT_EQ(out["messages"][0], Json({{"role", "system"}, {"content", "be brief"}}));
  const Json& calls = out["messages"][2]["tool_calls"];
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[0]["type"], "function");
  EXPECT_EQ(calls[0]["function"]["name"], "get_weather");
  EXPECT_EQ(Json::parse(calls[0]["function"]["arguments"].get<std::string>()),
            Json({{"city", "Paris"}}));
  // Results tied to their calls: by tool name, else in order.
  EXPECT_EQ(out["messages"][3]["tool_call_id"], calls[1]["id"]);
  EXPECT_EQ(out["messages"][4]["tool_call_id"], calls[0]["id"]);
  EXPECT_NE(calls[0]["id"], calls[1]["id"]);
  EXPECT_EQ(out["tools"], body["tools"]);
  EXPECT_EQ(out["temperature"], 0.2);
  EXPECT_EQ(out["top_p"], 0.9);
  EXPECT_EQ(out["seed"], 42);
  EXPECT_EQ(out["max_tokens"], 64);
  EXPECT_EQ(out["stop"], Json::array({"\n\n"}));
  EXPECT_EQ(out["presence_penalty"], 0.5);
  EXPECT_EQ(out["frequency_penalty"], 0.25);
  EXPECT_EQ(out["response_format"], Json({{"type", "json_object"}}));
  for (const char* k : {"top_k", "options", "keep_alive", "model", "format"})
    EXPECT_FALSE(out.contains(k)) << k;
}

TEST(Translate, OllamaGenerateSchemaAndExtensions) {
  const Json schema = {{"type", "object"}, {"properties", {{"name", {{"type", "string"}}}}}};
  const Json body = {{"prompt", "Who wrote Hamlet?"},
                     {"system", "answer in JSON"},
                     {"format", schema},
                     {"options", {{"num_predict", -1}}},
                     {"choice", {"a", "b"}},
                     {"grammar", "root ::= \"x\""}};
  const Json out = openai_chat_from_ollama(body, false);
  EXPECT_EQ(out["messages"], Json::parse(R"([{"role":"system","content":"answer in JSON"},
                                             {"role":"user","content":"Who wrote Hamlet?"}])"));
  EXPECT_FALSE(out.contains("max_tokens"));  // -1: no limit
  EXPECT_EQ(out["response_format"]["type"], "json_schema");
  EXPECT_EQ(out["response_format"]["json_schema"]["schema"], schema);
  EXPECT_EQ(out["response_format"]["json_schema"]["strict"], true);
  EXPECT_EQ(out["choice"], body["choice"]);
  EXPECT_EQ(out["grammar"], body["grammar"]);

  const Json plain = openai_chat_from_ollama({{"prompt", "hi"}}, false);
  EXPECT_EQ(plain["messages"], Json::parse(R"([{"role":"user","content":"hi"}])"));
}

TEST(Translate, CompletionBecomesOneUserMessage) {
  const Json out = openai_chat_from_completion({{"model", "auto"},
                                                {"prompt", "Once upon"},
                                                {"temperature", 0.7},
                                                {"stop", {"."}},
                                                {"logprobs", 2},
                                                {"echo", false},
                                                {"regex", "[a-z]+"}});
  EXPECT_EQ(out["messages"], Json::parse(R"([{"role":"user","content":"Once upon"}])"));
  EXPECT_EQ(out["max_tokens"], 16);  // /v1/completions' default
  EXPECT_EQ(out["temperature"], 0.7);
  EXPECT_EQ(out["stop"], Json::array({"."}));
  EXPECT_EQ(out["logprobs"], true);
  EXPECT_EQ(out["top_logprobs"], 2);
  EXPECT_EQ(out["regex"], "[a-z]+");
  EXPECT_FALSE(out.contains("echo"));
  const Json listed = openai_chat_from_completion({{"prompt", {"one"}}, {"max_tokens", 5}});
  EXPECT_EQ(listed["messages"][0]["content"], "one");
  EXPECT_EQ(listed["max_tokens"], 5);
}

TEST(Translate, PrepareForAForeignUpstreamWrapsChoiceAndDropsMinnowFields) {
  TierConfig t = tier_for("http://x/v1");
  Json body = {{"model", "auto"},
               {"stream", true},
               {"stream_options", {{"include_usage", true}}},
               {"messages", kRequest["messages"]},
               {"choice", {"billing", "bug", "other"}},
               {"tag", "support"},
               {"keep_alive", "5m"},
               {"options", Json::object()},
               {"minnow", true},
               {"temperature", 0}};
  auto p = prepare_upstream_request(body, t, true);
  ASSERT_TRUE(p.ok()) << p.error();
  EXPECT_EQ(p->body["model"], "up-model");
  EXPECT_EQ(p->body["stream"], false);
  EXPECT_EQ(p->body["logprobs"], true);
  EXPECT_EQ(p->body["temperature"], 0);
  for (const char* k : {"stream_options", "choice", "tag", "keep_alive", "options", "minnow"})
    EXPECT_FALSE(p->body.contains(k)) << k;
  EXPECT_EQ(p->choices, (std::vector<std::string>{"billing", "bug", "other"}));
  const Json& rf = p->body["response_format"];
  EXPECT_EQ(rf["type"], "json_schema");
  EXPECT_EQ(rf["json_schema"]["strict"], true);
  const Json& schema = rf["json_schema"]["schema"];
  EXPECT_EQ(schema["properties"]["answer"]["enum"], Json({"billing", "bug", "other"}));
  EXPECT_EQ(schema["required"], Json::array({"answer"}));
  EXPECT_EQ(schema["additionalProperties"], false);

  auto no_lp = prepare_upstream_request({{"messages", kRequest["messages"]}}, t, false);
  ASSERT_TRUE(no_lp.ok());
  EXPECT_FALSE(no_lp->body.contains("logprobs"));
  EXPECT_TRUE(no_lp->choices.empty());
}

TEST(Translate, PrepareRefusesWhatAForeignUpstreamCannotHonour) {
  TierConfig t = tier_for("http://x/v1");
  auto g =
      prepare_upstream_request({{"messages", Json::array()}, {"grammar", "root ::= \"a\""}}, t);
  ASSERT_FALSE(g.ok());
  EXPECT_NE(g.error().find("'grammar'"), std::string::npos) << g.error();
  EXPECT_NE(g.error().find("tier 'cloud'"), std::string::npos) << g.error();
  auto r = prepare_upstream_request({{"messages", Json::array()}, {"regex", "[0-9]+"}}, t);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("'regex'"), std::string::npos) << r.error();
  auto both = prepare_upstream_request(
      {{"choice", {"a"}}, {"response_format", {{"type", "json_object"}}}}, t);
  EXPECT_FALSE(both.ok());
  EXPECT_FALSE(prepare_upstream_request({{"choice", {"a", ""}}}, t).ok());
  EXPECT_FALSE(prepare_upstream_request({{"choice", Json::array()}}, t).ok());
  EXPECT_FALSE(prepare_upstream_request(Json::array(), t).ok());
  TierConfig no_model = t;
  no_model.model.clear();
  EXPECT_FALSE(prepare_upstream_request(Json::object(), no_model).ok());
}

TEST(Translate, PrepareForAMinnowUpstreamPassesTheExtensions) {
  TierConfig t = tier_for("http://x/v1");
  t.minnow_extensions = true;
  const Json body = {{"choice", {"a", "b"}}, {"grammar", "root ::= \"a\""}, {"regex", "a|b"}};
  auto p = prepare_upstream_request(body, t);
  ASSERT_TRUE(p.ok()) << p.error();
  EXPECT_EQ(p->body["choice"], body["choice"]);
  EXPECT_EQ(p->body["grammar"], body["grammar"]);
  EXPECT_EQ(p->body["regex"], body["regex"]);
  EXPECT_FALSE(p->body.contains("response_format"));
  EXPECT_TRUE(p->choices.empty());  // the label comes back as it is
}

Json reply_with(const Json& message, const Json& extra = Json::object()) {
  Json c0 = {{"index", 0}, {"message", message}, {"finish_reason", "stop"}};
  c0.update(extra);
  return {{"choices", Json::array({c0})},
          {"usage", {{"prompt_tokens", 11}, {"completion_tokens", 4}}}};
}

TEST(Translate, ReadsTextToolCallsUsageAndLogprobs) {
  Prepared plain;
  const Json lps = {{"content",
                     {{{"token", "Hel"}, {"logprob", -0.5}},
                      {{"token", "lo"}, {"logprob", -1.5}},
                      {{"token", "!"}, {"logprob", -0.1}}}}};
  auto a = read_upstream_answer(
      reply_with({{"role", "assistant"}, {"content", "Hello!"}}, {{"logprobs", lps}}), plain);
  ASSERT_TRUE(a.ok()) << a.error();
  EXPECT_EQ(a->text, "Hello!");
  EXPECT_EQ(a->finish_reason, "stop");
  EXPECT_EQ(a->prompt_tokens, 11);
  EXPECT_EQ(a->completion_tokens, 4);
  EXPECT_TRUE(a->tool_calls.is_null());
  EXPECT_EQ(a->n_logprobs, 3);
  EXPECT_NEAR(a->mean_logprob, -0.7, 1e-9);
  EXPECT_DOUBLE_EQ(a->min_logprob, -1.5);

  const Json calls = Json::parse(
      R"([{"id":"call_1","type":"function","function":{"name":"f","arguments":"{\"x\":1}"}}])");
  Json bare = {
      {"choices",
       {{{"message", {{"role", "assistant"}, {"content", nullptr}, {"tool_calls", calls}}}}}}};
  auto t = read_upstream_answer(bare, plain);
  ASSERT_TRUE(t.ok()) << t.error();
  EXPECT_EQ(t->text, "");
  EXPECT_EQ(t->tool_calls, calls);
  EXPECT_EQ(t->prompt_tokens, 0);
  EXPECT_EQ(t->finish_reason, "");
  EXPECT_EQ(t->n_logprobs, 0);

  EXPECT_FALSE(read_upstream_answer({{"choices", Json::array()}}, plain).ok());
  EXPECT_FALSE(read_upstream_answer(Json(), plain).ok());
}

TEST(Translate, ChoiceAnswersAreUnwrapped) {
  Prepared p;
  p.choices = {"billing", "bug"};
  // Logprobs over the label's tokens only: the wrapper is forced by the schema.
  const Json lps = {{"content",
                     {{{"token", "{\"answer\":\""}, {"logprob", -0.01}},
                      {{"token", "bill"}, {"logprob", -0.8}},
                      {{"token", "ing"}, {"logprob", -0.2}},
                      {{"token", "\"}"}, {"logprob", -0.02}}}}};
  auto a = read_upstream_answer(
      reply_with({{"content", R"({"answer":"billing"})"}}, {{"logprobs", lps}}), p);
  ASSERT_TRUE(a.ok()) << a.error();
  EXPECT_EQ(a->text, "billing");
  EXPECT_EQ(a->n_logprobs, 2);
  EXPECT_NEAR(a->mean_logprob, -0.5, 1e-9);
  EXPECT_DOUBLE_EQ(a->min_logprob, -0.8);

  auto bare = read_upstream_answer(reply_with({{"content", " bug\n"}}), p);
  ASSERT_TRUE(bare.ok()) << bare.error();
  EXPECT_EQ(bare->text, "bug");

  auto wrong = read_upstream_answer(reply_with({{"content", R"({"answer":"refund"})"}}), p);
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.error().find("refund"), std::string::npos) << wrong.error();
  auto cut = read_upstream_answer(
      reply_with({{"content", R"({"answer":"bil)"}}, {{"finish_reason", "length"}}), p);
  ASSERT_FALSE(cut.ok());
  EXPECT_NE(cut.error().find("token limit"), std::string::npos) << cut.error();
}

TEST(Translate, EndToEndChoiceThroughTheClient) {
  ScriptedServer s(std::vector<Step>{
      status(200, reply_with({{"role", "assistant"}, {"content", R"({"answer":"b"})"}}).dump())});
  TierConfig t = tier_for(s.base_url());
  auto p = prepare_upstream_request(
      openai_chat_from_ollama({{"messages", kRequest["messages"]}, {"choice", {"a", "b"}}}, true),
      t, false);
  ASSERT_TRUE(p.ok()) << p.error();
  Upstream up(t);
  auto r = up.chat(p->body);
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(s.last_body()["response_format"]["type"], "json_schema");
  EXPECT_FALSE(s.last_body().contains("choice"));
  auto a = read_upstream_answer(r->body, *p);
  ASSERT_TRUE(a.ok()) << a.error();
  EXPECT_EQ(a->text, "b");
}

}  // namespace
}  // namespace minnow::router
