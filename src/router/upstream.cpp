#include "router/upstream.h"

#include <httplib.h>

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <cstdlib>
#include <ctime>
#include <optional>
#include <random>
#include <thread>

namespace minnow::router {

using Json = nlohmann::json;

const char* upstream_error_kind_name(UpstreamErrorKind kind) {
  switch (kind) {
    case UpstreamErrorKind::kNone:
      return "none";
    case UpstreamErrorKind::kConfig:
      return "config";
    case UpstreamErrorKind::kConnect:
      return "connect";
    case UpstreamErrorKind::kTimeout:
      return "timeout";
    case UpstreamErrorKind::kHttp5xx:
      return "http_5xx";
    case UpstreamErrorKind::kRateLimited:
      return "rate_limited";
    case UpstreamErrorKind::kClientError:
      return "client_error";
    case UpstreamErrorKind::kBadResponse:
      return "bad_response";
    case UpstreamErrorKind::kCircuitOpen:
      return "circuit_open";
    case UpstreamErrorKind::kCancelled:
      return "cancelled";
  }
  return "?";
}

namespace {

using Clock = std::chrono::steady_clock;

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

std::string fmt_s(double seconds) {
  char b[32];
  std::snprintf(b, sizeof b, "%.1f s", seconds);
  return b;
}

// "http(s)://host[:port]" for httplib, and the path prefix ("/v1").
struct Endpoint {
  std::string origin, path;
};

Result<Endpoint> parse_base_url(const std::string& base_url) {
  const size_t colon = base_url.find("://");
  if (colon == std::string::npos) {
    return Status::error("base_url '" + base_url + "' is not an http:// or https:// URL");
  }
  const std::string scheme = base_url.substr(0, colon);
  if (scheme != "http" && scheme != "https") {
    return Status::error("base_url '" + base_url + "': scheme must be http or https");
  }
  const size_t host_at = colon + 3;
  const size_t slash = base_url.find('/', host_at);
  Endpoint e;
  e.origin = base_url.substr(0, slash);
  if (e.origin.size() == host_at) return Status::error("base_url '" + base_url + "' has no host");
  if (slash != std::string::npos) e.path = base_url.substr(slash);
  while (!e.path.empty() && e.path.back() == '/') e.path.pop_back();
  e.path += "/chat/completions";
  return e;
}

// The upstream's own words about an error: OpenAI's {"error": {"message"}}, Ollama's / minnow's
// {"error": "..."}, else the start of the body.
std::string upstream_message(const std::string& body) {
  std::string msg;
  Json j = Json::parse(body, nullptr, false);
  if (j.is_object()) {
    auto e = j.find("error");
    if (e != j.end() && e->is_string()) {
      msg = e->get<std::string>();
    } else if (e != j.end() && e->is_object() && e->contains("message") &&
               (*e)["message"].is_string()) {
      msg = (*e)["message"].get<std::string>();
    } else if (j.contains("message") && j["message"].is_string()) {
      msg = j["message"].get<std::string>();
    }
  }
  if (msg.empty()) msg = body;
  constexpr size_t kMaxChars = 200;
  if (msg.size() > kMaxChars) msg = msg.substr(0, kMaxChars) + "...";
  for (char& c : msg) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return msg;
}

// Retry-After: delta-seconds or an HTTP-date; nullopt when absent or unreadable.
std::optional<double> retry_after_ms(const std::string& value) {
  if (value.empty()) return std::nullopt;
  char* end = nullptr;
  const double s = std::strtod(value.c_str(), &end);
  if (end != value.c_str() && *end == '\0') return s < 0 ? 0.0 : s * 1000;
  std::tm tm{};
  if (!strptime(value.c_str(), "%a, %d %b %Y %H:%M:%S", &tm)) return std::nullopt;
  const std::time_t at = timegm(&tm);
  const std::time_t now = std::time(nullptr);
  return at > now ? double(at - now) * 1000 : 0.0;
}

// Why a 2xx body is not a chat completion ("" when it is one).
std::string not_a_completion(const Json& j) {
  if (j.is_discarded()) return "body is not JSON";
  if (!j.is_object()) return "body is not a JSON object";
  auto c = j.find("choices");
  if (c == j.end() || !c->is_array() || c->empty()) return "no choices";
  const Json& c0 = (*c)[0];
  if (!c0.is_object() || !c0.contains("message") || !c0["message"].is_object())
    return "no choices[0].message";
  return "";
}

bool retryable(UpstreamErrorKind k) {
  return k == UpstreamErrorKind::kConnect || k == UpstreamErrorKind::kTimeout ||
         k == UpstreamErrorKind::kHttp5xx || k == UpstreamErrorKind::kRateLimited ||
         k == UpstreamErrorKind::kBadResponse;
}

struct AttemptResult {
  UpstreamErrorKind kind = UpstreamErrorKind::kNone;
  bool retry = false;  // worth another attempt
  int http_status = 0;
  Json body;
  std::string note;  // what happened, short
  std::optional<double> retry_after_ms;
};

// One POST. A watcher thread closes the socket when the attempt's deadline passes (httplib's
// timeouts are per connect / per read, not for the whole exchange) or the caller cancels.
AttemptResult attempt(const Endpoint& ep, const httplib::Headers& headers,
                      const std::string& payload, double timeout_s,
                      const std::atomic<bool>* cancel) {
  AttemptResult r;
  httplib::Client cli(ep.origin);
  if (!cli.is_valid()) {
    r.kind = UpstreamErrorKind::kConfig;
    r.note = "cannot make a client for " + ep.origin;
    return r;
  }
  const auto timeout_us = std::chrono::microseconds(int64_t(std::max(timeout_s, 0.001) * 1e6));
  const time_t sec = time_t(timeout_us.count() / 1000000);
  const time_t usec = time_t(timeout_us.count() % 1000000);
  cli.set_connection_timeout(sec, usec);
  cli.set_read_timeout(sec, usec);
  cli.set_write_timeout(sec, usec);

  const auto t0 = Clock::now();
  const auto deadline = t0 + timeout_us;
  std::mutex m;
  std::condition_variable cv;
  bool done = false;
  enum { kRunning, kPastDeadline, kCancelled } stopped = kRunning;
  std::thread watcher([&] {
    std::unique_lock<std::mutex> lock(m);
    while (!done) {
      if (cancel && cancel->load())
        stopped = kCancelled;
      else if (stopped == kRunning && Clock::now() >= deadline)
        stopped = kPastDeadline;
      // Again on each wake: a stop() that lands while the socket is not yet open does nothing.
      if (stopped != kRunning) cli.stop();
      const auto poll = std::chrono::milliseconds(10);
      if (cancel || stopped != kRunning)
        cv.wait_for(lock, poll);
      else
        cv.wait_until(lock, deadline);
    }
  });
  httplib::Result res = cli.Post(ep.path, headers, payload, "application/json");
  {
    std::lock_guard<std::mutex> lock(m);
    done = true;
  }
  cv.notify_one();
  watcher.join();
  const double elapsed_s = ms_between(t0, Clock::now()) / 1000;

  if (!res) {
    const httplib::Error err = res.error();
    r.retry = true;
    if (stopped == kCancelled) {
      r.kind = UpstreamErrorKind::kCancelled;
      r.note = "cancelled";
      r.retry = false;
    } else if (stopped == kPastDeadline || err == httplib::Error::ConnectionTimeout ||
               (err == httplib::Error::Read && elapsed_s >= timeout_s * 0.95)) {
      r.kind = UpstreamErrorKind::kTimeout;
      r.note = std::string(err == httplib::Error::ConnectionTimeout ? "connect" : "answer") +
               " timed out after " + fmt_s(elapsed_s);
    } else if (err == httplib::Error::Connection) {
      r.kind = UpstreamErrorKind::kConnect;
      r.note = "could not connect (refused or unreachable)";
    } else if (err == httplib::Error::Read || err == httplib::Error::Write) {
      r.kind = UpstreamErrorKind::kConnect;
      r.note = "connection closed or reset before the answer";
    } else if (err == httplib::Error::SSLServerVerification ||
               err == httplib::Error::SSLLoadingCerts) {
      r.kind = UpstreamErrorKind::kConnect;
      r.note = "TLS: " + httplib::to_string(err);
      r.retry = false;  // the same certificate will not be trusted on the next try
    } else {
      r.kind = UpstreamErrorKind::kConnect;
      r.note = httplib::to_string(err);
    }
    return r;
  }

  r.http_status = res->status;
  const int st = res->status;
  if (st >= 200 && st < 300) {
    r.body = Json::parse(res->body, nullptr, false);
    if (std::string why = not_a_completion(r.body); !why.empty()) {
      r.kind = UpstreamErrorKind::kBadResponse;
      r.retry = true;
      r.note = "HTTP " + std::to_string(st) + " but not a chat completion (" + why + ")";
      r.body = Json();
    }
    return r;
  }
  r.note = "HTTP " + std::to_string(st) + ": " + upstream_message(res->body);
  if (st == 408) {
    r.kind = UpstreamErrorKind::kTimeout;
  } else if (st == 429) {
    r.kind = UpstreamErrorKind::kRateLimited;
  } else if (st >= 500) {
    r.kind = UpstreamErrorKind::kHttp5xx;
  } else {
    r.kind = UpstreamErrorKind::kClientError;
  }
  r.retry = retryable(r.kind);
  if (r.retry && res->has_header("Retry-After"))
    r.retry_after_ms = retry_after_ms(res->get_header_value("Retry-After"));
  return r;
}

// Sleeps `ms`, waking early when *cancel is set. False: cancelled.
bool sleep_unless_cancelled(double ms, const std::atomic<bool>* cancel) {
  const auto until = Clock::now() + std::chrono::microseconds(int64_t(ms * 1000));
  while (Clock::now() < until) {
    if (cancel && cancel->load()) return false;
    const auto slice =
        std::min<Clock::duration>(until - Clock::now(), std::chrono::milliseconds(10));
    std::this_thread::sleep_for(slice);
  }
  return !(cancel && cancel->load());
}

// Full jitter: uniform in [0, min(cap, base * 2^retry)] (AWS's "exponential backoff and
// jitter"), so that clients failing together do not come back together.
double backoff_ms(const TierConfig& t, int retry) {
  const double ceiling =
      std::min(t.backoff_max_ms, t.backoff_ms * std::ldexp(1.0, std::min(retry, 30)));
  if (ceiling <= 0) return 0;
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return std::uniform_real_distribution<double>(0, ceiling)(rng);
}

}  // namespace

Upstream::Upstream(TierConfig tier) : tier_(std::move(tier)) {}

Status Upstream::check() const {
  auto ep = parse_base_url(tier_.base_url);
  if (!ep.ok()) return Status::error("upstream '" + tier_.name + "': " + ep.error());
  if (!tier_.api_key_env.empty()) {
    const char* key = std::getenv(tier_.api_key_env.c_str());
    if (!key || !*key) {
      return Status::error("upstream '" + tier_.name + "': environment variable " +
                           tier_.api_key_env + " (api_key_env) is not set");
    }
  }
  return Status();
}

bool Upstream::admit(bool* trial, double* wait_s) {
  std::lock_guard<std::mutex> lock(mu_);
  *trial = false;
  *wait_s = 0;
  if (!open_) return true;
  if (trial_in_flight_) return false;
  const auto now = Clock::now();
  if (now < open_until_) {
    *wait_s = ms_between(now, open_until_) / 1000;
    return false;
  }
  trial_in_flight_ = true;
  *trial = true;
  return true;
}

void Upstream::record(bool trial, bool healthy, bool counts) {
  std::lock_guard<std::mutex> lock(mu_);
  if (trial) trial_in_flight_ = false;
  // A cancelled trial leaves the circuit open with its cooldown over: the next call is the trial.
  if (!counts) return;
  if (healthy) {
    consecutive_failures_ = 0;
    open_ = false;
    return;
  }
  ++consecutive_failures_;
  if (trial || consecutive_failures_ >= tier_.breaker_failures) {
    open_ = true;
    open_until_ = Clock::now() + std::chrono::microseconds(int64_t(tier_.breaker_cooldown_s * 1e6));
  }
}

Upstream::BreakerState Upstream::breaker_state() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (!open_) return BreakerState::kClosed;
  if (trial_in_flight_ || Clock::now() >= open_until_) return BreakerState::kHalfOpen;
  return BreakerState::kOpen;
}

Result<UpstreamReply> Upstream::chat(const Json& request, const std::atomic<bool>* cancel,
                                     UpstreamErrorKind* error_kind) {
  const auto t0 = Clock::now();
  UpstreamErrorKind kind_sink;
  UpstreamErrorKind& kind = error_kind ? *error_kind : kind_sink;
  kind = UpstreamErrorKind::kNone;
  auto ep = parse_base_url(tier_.base_url);
  const std::string who = "upstream '" + tier_.name + "'";
  if (!ep.ok()) {
    kind = UpstreamErrorKind::kConfig;
    return Status::error(who + ": " + ep.error());
  }
  const std::string where = who + " (POST " + tier_.base_url + "/chat/completions)";
  httplib::Headers headers = {{"Accept", "application/json"}, {"User-Agent", "minnow-router"}};
  if (!tier_.api_key_env.empty()) {
    const char* key = std::getenv(tier_.api_key_env.c_str());
    if (!key || !*key) {
      kind = UpstreamErrorKind::kConfig;
      return Status::error(where + ": environment variable " + tier_.api_key_env +
                           " (api_key_env) is not set");
    }
    headers.emplace("Authorization", std::string("Bearer ") + key);
  }
  if (cancel && cancel->load()) {
    kind = UpstreamErrorKind::kCancelled;
    return Status::error(where + ": cancelled before the first attempt");
  }

  const bool breaker = tier_.breaker_failures > 0;
  bool trial = false;
  if (breaker) {
    double wait_s = 0;
    if (!admit(&trial, &wait_s)) {
      kind = UpstreamErrorKind::kCircuitOpen;
      return Status::error(where + ": circuit open after " +
                           std::to_string(tier_.breaker_failures) + " consecutive failed calls; " +
                           (wait_s > 0 ? "next trial in " + fmt_s(wait_s)
                                       : std::string("a trial call is in flight")));
    }
  }

  Json body = request.is_object() ? request : Json::object();
  body["model"] = tier_.model;
  body["stream"] = false;
  const std::string payload = body.dump(-1, ' ', false, Json::error_handler_t::replace);

  std::string history;
  const int max_attempts = 1 + std::max(tier_.max_retries, 0);
  int n = 0;
  AttemptResult last;
  bool cancelled = false;
  while (n < max_attempts) {
    last = attempt(*ep, headers, payload, tier_.timeout_s, cancel);
    ++n;
    if (last.kind == UpstreamErrorKind::kNone) break;
    if (!history.empty()) history += "; ";
    history += "#" + std::to_string(n) + " " + last.note;
    if (last.kind == UpstreamErrorKind::kCancelled) {
      cancelled = true;
      break;
    }
    if (!last.retry || n == max_attempts) break;
    double delay = backoff_ms(tier_, n - 1);
    if (last.retry_after_ms) delay = std::min(*last.retry_after_ms, tier_.backoff_max_ms);
    if (!sleep_unless_cancelled(delay, cancel)) {
      cancelled = true;
      break;
    }
  }
  const double total_ms = ms_between(t0, Clock::now());

  if (last.kind == UpstreamErrorKind::kNone) {
    if (breaker) record(trial, true, true);
    UpstreamReply reply;
    reply.body = std::move(last.body);
    reply.attempts = n;
    reply.total_ms = total_ms;
    reply.http_status = last.http_status;
    reply.retries = std::move(history);
    return reply;
  }
  // The upstream answered coherently (a 4xx says the request is at fault, not its health).
  const bool healthy = last.kind == UpstreamErrorKind::kClientError;
  kind = cancelled ? UpstreamErrorKind::kCancelled : last.kind;
  if (breaker) record(trial, healthy, !cancelled && kind != UpstreamErrorKind::kConfig);
  const std::string attempts = std::to_string(n) + (n == 1 ? " attempt" : " attempts");
  if (cancelled) return Status::error(where + ": cancelled after " + attempts + ": " + history);
  return Status::error(where + ": failed [" + upstream_error_kind_name(kind) + "] after " +
                       attempts + (last.retry ? "" : " (not retried)") + ": " + history);
}

// --- Request translation -------------------------------------------------------------------------

namespace {

bool given(const Json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && !it->is_null();
}

void copy_if_given(const Json& from, Json& to, const char* key, const char* as = nullptr) {
  if (given(from, key)) to[as ? as : key] = from[key];
}

// Minnow's own constraints, carried over as they are.
void copy_extensions(const Json& from, Json& to) {
  for (const char* k : {"choice", "grammar", "regex"}) copy_if_given(from, to, k);
}

Json content_text(const Json& c) { return c.is_string() ? c : Json(c.is_null() ? "" : c.dump()); }

}  // namespace

Json openai_chat_from_ollama(const Json& body, bool chat) {
  Json out = Json::object();
  Json messages = Json::array();
  if (chat) {
    // Ollama's tool calls have no ids and take arguments as an object; OpenAI's have ids,
    // "type": "function" and arguments as JSON text, and each tool result names its call id.
    struct Pending {
      std::string id, name;
    };
    std::vector<Pending> pending;
    const Json& in = body.contains("messages") ? body["messages"] : Json();
    size_t index = 0;
    for (const Json& m : in.is_array() ? in : Json::array()) {
      ++index;
      if (!m.is_object()) continue;
      Json o = Json::object();
      const std::string role = m.value("role", "user");
      o["role"] = role;
      o["content"] = given(m, "content") ? content_text(m["content"]) : Json("");
      if (role == "assistant" && m.contains("tool_calls") && m["tool_calls"].is_array() &&
          !m["tool_calls"].empty()) {
        pending.clear();
        Json calls = Json::array();
        size_t k = 0;
        for (const Json& tc : m["tool_calls"]) {
          ++k;
          if (!tc.is_object()) continue;
          const Json fn = tc.value("function", Json::object());
          Json c;
          c["id"] = tc.contains("id") && tc["id"].is_string()
                        ? tc["id"].get<std::string>()
                        : "call_" + std::to_string(index) + "_" + std::to_string(k);
          c["type"] = "function";
          c["function"]["name"] = fn.value("name", "");
          const Json args = fn.value("arguments", Json::object());
          c["function"]["arguments"] = args.is_string() ? args.get<std::string>() : args.dump();
          pending.push_back({c["id"].get<std::string>(), c["function"]["name"].get<std::string>()});
          calls.push_back(std::move(c));
        }
        o["tool_calls"] = std::move(calls);
      }
      if (role == "tool") {
        if (m.contains("tool_call_id") && m["tool_call_id"].is_string()) {
          o["tool_call_id"] = m["tool_call_id"];
        } else if (!pending.empty()) {
          // Ollama names the tool ("tool_name"); else results come in the calls' order.
          std::string name = m.value("tool_name", m.value("name", ""));
          auto it = std::find_if(pending.begin(), pending.end(),
                                 [&](const Pending& p) { return p.name == name; });
          if (it == pending.end()) it = pending.begin();
          o["tool_call_id"] = it->id;
          pending.erase(it);
        }
      }
      messages.push_back(std::move(o));
    }
  } else {
    if (given(body, "system") && body["system"].is_string() &&
        !body["system"].get<std::string>().empty()) {
      messages.push_back({{"role", "system"}, {"content", body["system"]}});
    }
    messages.push_back(
        {{"role", "user"},
         {"content", given(body, "prompt") ? content_text(body["prompt"]) : Json("")}});
  }
  out["messages"] = std::move(messages);

  if (body.contains("options") && body["options"].is_object()) {
    const Json& o = body["options"];
    for (const char* k : {"temperature", "top_p", "seed", "presence_penalty", "frequency_penalty"})
      copy_if_given(o, out, k);
    // -1 (no limit) and -2 (fill the context) have no OpenAI equivalent: left to the upstream.
    if (given(o, "num_predict") && o["num_predict"].is_number_integer() &&
        o["num_predict"].get<int64_t>() > 0) {
      out["max_tokens"] = o["num_predict"];
    }
    if (given(o, "stop")) {
      const Json& s = o["stop"];
      if (s.is_string())
        out["stop"] = Json::array({s});
      else if (s.is_array() && !s.empty())
        out["stop"] = s;
    }
  }
  if (given(body, "format")) {
    const Json& f = body["format"];
    if (f.is_string() && f.get<std::string>() == "json") {
      out["response_format"] = {{"type", "json_object"}};
    } else if (f.is_object()) {
      out["response_format"] = {
          {"type", "json_schema"},
          {"json_schema", {{"name", "response"}, {"schema", f}, {"strict", true}}}};
    }
  }
  if (body.contains("tools") && body["tools"].is_array() && !body["tools"].empty())
    out["tools"] = body["tools"];
  copy_if_given(body, out, "logprobs");
  copy_if_given(body, out, "top_logprobs");
  copy_extensions(body, out);
  return out;
}

Json openai_chat_from_completion(const Json& body) {
  Json out = Json::object();
  std::string prompt;
  if (given(body, "prompt")) {
    const Json& p = body["prompt"];
    if (p.is_string()) {
      prompt = p.get<std::string>();
    } else if (p.is_array()) {
      // The server takes exactly one; several are joined rather than dropped.
      for (const Json& x : p) {
        if (!prompt.empty()) prompt += "\n";
        prompt += x.is_string() ? x.get<std::string>() : x.dump();
      }
    } else {
      prompt = p.dump();
    }
  }
  out["messages"] = Json::array({{{"role", "user"}, {"content", prompt}}});
  out["max_tokens"] = given(body, "max_tokens") ? body["max_tokens"] : Json(16);  // its default
  for (const char* k : {"temperature", "top_p", "seed", "stop", "presence_penalty",
                        "frequency_penalty", "logit_bias", "user", "response_format"})
    copy_if_given(body, out, k);
  // Completions' logprobs is a count of alternatives; chat's is a flag plus top_logprobs.
  if (given(body, "logprobs") && body["logprobs"].is_number_integer()) {
    out["logprobs"] = true;
    if (body["logprobs"].get<int64_t>() > 0) out["top_logprobs"] = body["logprobs"];
  }
  copy_extensions(body, out);
  return out;
}

Result<Prepared> prepare_upstream_request(Json body, const TierConfig& tier, bool want_logprobs) {
  const std::string who = "tier '" + tier.name + "'";
  if (!body.is_object()) return Status::error(who + ": the request is not a JSON object");
  if (tier.model.empty()) return Status::error(who + ": no upstream model configured");
  Prepared p;
  body["model"] = tier.model;
  body["stream"] = false;
  body.erase("stream_options");  // OpenAI refuses it on a request that does not stream
  if (want_logprobs) body["logprobs"] = true;
  if (!tier.minnow_extensions) {
    for (const char* k : {"grammar", "regex"}) {
      if (given(body, k)) {
        return Status::error(who + " cannot honour '" + k +
                             "': its upstream is not a minnow server (minnow_extensions = false)");
      }
    }
    if (given(body, "choice")) {
      const Json& c = body["choice"];
      bool labels_ok = c.is_array() && !c.empty();
      for (const Json& x : c.is_array() ? c : Json::array()) {
        labels_ok = labels_ok && x.is_string() && !x.get<std::string>().empty();
        if (labels_ok) p.choices.push_back(x.get<std::string>());
      }
      if (!labels_ok) return Status::error(who + ": 'choice' must be a list of non-empty strings");
      if (given(body, "response_format") &&
          !(body["response_format"].is_object() &&
            body["response_format"].value("type", "") == "text")) {
        return Status::error(who + ": 'choice' and 'response_format' both constrain the answer");
      }
      // A strict schema is the nearest thing a foreign API has to a choice: the label comes
      // back wrapped as {"answer": label} and is unwrapped by read_upstream_answer.
      Json schema = {{"type", "object"},
                     {"properties", {{"answer", {{"type", "string"}, {"enum", p.choices}}}}},
                     {"required", Json::array({"answer"})},
                     {"additionalProperties", false}};
      body["response_format"] = {
          {"type", "json_schema"},
          {"json_schema", {{"name", "response"}, {"schema", std::move(schema)}, {"strict", true}}}};
    }
    // minnow's and Ollama's own fields, which an OpenAI API refuses as unknown.
    for (const char* k : {"choice", "tag", "keep_alive", "options", "minnow", "format", "raw",
                          "template", "context", "images", "think", "suffix", "top_k", "min_p",
                          "typical_p", "repeat_penalty", "repeat_last_n"})
      body.erase(k);
  }
  p.body = std::move(body);
  return p;
}

Result<UpstreamAnswer> read_upstream_answer(const Json& reply, const Prepared& p) {
  if (std::string why = not_a_completion(reply); !why.empty())
    return Status::error("upstream reply: " + why);
  const Json& c0 = reply["choices"][0];
  const Json& msg = c0["message"];
  UpstreamAnswer a;
  if (msg.contains("content")) {
    const Json& c = msg["content"];
    if (c.is_string()) {
      a.text = c.get<std::string>();
    } else if (c.is_array()) {  // content parts
      for (const Json& part : c) {
        if (part.is_object() && part.value("type", "") == "text" && part.contains("text") &&
            part["text"].is_string())
          a.text += part["text"].get<std::string>();
      }
    }
  }
  if (msg.contains("tool_calls") && msg["tool_calls"].is_array() && !msg["tool_calls"].empty())
    a.tool_calls = msg["tool_calls"];
  if (c0.contains("finish_reason") && c0["finish_reason"].is_string())
    a.finish_reason = c0["finish_reason"].get<std::string>();
  if (reply.contains("usage") && reply["usage"].is_object()) {
    const Json& u = reply["usage"];
    if (u.contains("prompt_tokens") && u["prompt_tokens"].is_number_integer())
      a.prompt_tokens = u["prompt_tokens"].get<int>();
    if (u.contains("completion_tokens") && u["completion_tokens"].is_number_integer())
      a.completion_tokens = u["completion_tokens"].get<int>();
  }

  // The label's span in the content, for the logprobs (choice answers only).
  size_t span_begin = 0, span_end = std::string::npos;
  if (!p.choices.empty()) {
    const std::string content = a.text;
    std::optional<std::string> label;
    Json j = Json::parse(content, nullptr, false);
    if (j.is_object() && j.contains("answer") && j["answer"].is_string()) {
      const std::string s = j["answer"].get<std::string>();
      if (std::find(p.choices.begin(), p.choices.end(), s) != p.choices.end()) {
        label = s;
        const std::string quoted = Json(s).dump();
        const size_t at = content.find(quoted);
        if (at != std::string::npos) {
          span_begin = at + 1;
          span_end = at + quoted.size() - 1;
        }
      }
    } else {
      // An upstream that ignored the schema but answered with a bare label.
      const size_t b = content.find_first_not_of(" \t\r\n");
      const size_t e = content.find_last_not_of(" \t\r\n");
      const std::string s = b == std::string::npos ? "" : content.substr(b, e - b + 1);
      if (std::find(p.choices.begin(), p.choices.end(), s) != p.choices.end()) {
        label = s;
        span_begin = b;
        span_end = e + 1;
      }
    }
    if (!label) {
      std::string shown = content.size() > 120 ? content.substr(0, 120) + "..." : content;
      return Status::error("upstream reply: choice answer '" + shown +
                           "' is not {\"answer\": one of the labels}" +
                           (a.finish_reason == "length" ? " (cut off by the token limit)" : ""));
    }
    a.text = *label;
  }

  if (c0.contains("logprobs") && c0["logprobs"].is_object() && c0["logprobs"].contains("content") &&
      c0["logprobs"]["content"].is_array()) {
    const Json& lps = c0["logprobs"]["content"];
    struct Tok {
      double lp;
      size_t begin, end;
    };
    std::vector<Tok> toks;
    size_t offset = 0;
    bool offsets_ok = true;
    for (const Json& t : lps) {
      if (!t.is_object() || !t.contains("logprob") || !t["logprob"].is_number()) continue;
      const size_t len = t.contains("token") && t["token"].is_string()
                             ? t["token"].get<std::string>().size()
                             : (offsets_ok = false, 0);
      toks.push_back({t["logprob"].get<double>(), offset, offset + len});
      offset += len;
    }
    // Only the label's tokens when the token texts line up with the content; else all.
    const bool by_span = !p.choices.empty() && span_end != std::string::npos && offsets_ok &&
                         msg.contains("content") && msg["content"].is_string() &&
                         offset == msg["content"].get<std::string>().size();
    double sum = 0;
    for (const Tok& t : toks) {
      if (by_span && (t.end <= span_begin || t.begin >= span_end)) continue;
      a.min_logprob = a.n_logprobs == 0 ? t.lp : std::min(a.min_logprob, t.lp);
      sum += t.lp;
      ++a.n_logprobs;
    }
    a.mean_logprob = a.n_logprobs ? sum / a.n_logprobs : 0;
  }
  return a;
}

}  // namespace minnow::router
