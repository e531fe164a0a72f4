#include "server/api_common.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstdlib>

#include "constrain/json_schema.h"
#include "store/registry.h"

#include <ctime>

namespace minnow::server {

Json parse_body(const httplib::Request& req) {
  Json j = Json::parse(req.body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) throw ApiError(400, "invalid JSON in the request body");
  if (!j.is_object()) throw ApiError(400, "the request body must be a JSON object");
  return j;
}

std::optional<double> get_number(const Json& j, const char* field) {
  auto it = j.find(field);
  if (it == j.end() || it->is_null()) return std::nullopt;
  if (!it->is_number()) throw ApiError(400, std::string("'") + field + "' must be a number", field);
  return it->get<double>();
}

std::optional<int64_t> get_int(const Json& j, const char* field) {
  auto it = j.find(field);
  if (it == j.end() || it->is_null()) return std::nullopt;
  if (it->is_number_integer()) return it->get<int64_t>();
  if (it->is_number_float() && it->get<double>() == double(int64_t(it->get<double>()))) {
    return int64_t(it->get<double>());
  }
  throw ApiError(400, std::string("'") + field + "' must be an integer", field);
}

std::optional<bool> get_bool(const Json& j, const char* field) {
  auto it = j.find(field);
  if (it == j.end() || it->is_null()) return std::nullopt;
  if (!it->is_boolean())
    throw ApiError(400, std::string("'") + field + "' must be true or false", field);
  return it->get<bool>();
}

std::optional<std::string> get_string(const Json& j, const char* field) {
  auto it = j.find(field);
  if (it == j.end() || it->is_null()) return std::nullopt;
  if (!it->is_string()) throw ApiError(400, std::string("'") + field + "' must be a string", field);
  return it->get<std::string>();
}

std::vector<std::string> get_stop(const Json& j, const char* field) {
  auto it = j.find(field);
  std::vector<std::string> out;
  if (it == j.end() || it->is_null()) return out;
  if (it->is_string()) {
    out.push_back(it->get<std::string>());
  } else if (it->is_array()) {
    for (const auto& s : *it) {
      if (!s.is_string())
        throw ApiError(400, std::string("'") + field + "' must hold strings", field);
      out.push_back(s.get<std::string>());
    }
  } else {
    throw ApiError(400, std::string("'") + field + "' must be a string or a list of strings",
                   field);
  }
  return out;
}

std::optional<std::chrono::seconds> parse_keep_alive(const Json& j) {
  auto it = j.find("keep_alive");
  if (it == j.end() || it->is_null()) return std::nullopt;
  if (it->is_number()) return std::chrono::seconds(int64_t(it->get<double>()));
  if (!it->is_string())
    throw ApiError(400, "'keep_alive' must be a number or a duration", "keep_alive");
  const std::string s = it->get<std::string>();
  // Go durations: a sequence of <number><unit>, units h, m, s, ms; a bare number is seconds.
  double total = 0;
  size_t i = 0;
  bool neg = false;
  if (i < s.size() && s[i] == '-') {
    neg = true;
    ++i;
  }
  if (i == s.size())
    throw ApiError(400, "'keep_alive' '" + s + "' is not a duration", "keep_alive");
  while (i < s.size()) {
    size_t used = 0;
    double v = 0;
    try {
      v = std::stod(s.substr(i), &used);
    } catch (const std::exception&) {
      throw ApiError(400, "'keep_alive' '" + s + "' is not a duration", "keep_alive");
    }
    i += used;
    std::string unit;
    while (i < s.size() && std::isalpha(static_cast<unsigned char>(s[i]))) unit += s[i++];
    if (unit.empty() || unit == "s")
      total += v;
    else if (unit == "m")
      total += 60 * v;
    else if (unit == "h")
      total += 3600 * v;
    else if (unit == "ms")
      total += v / 1000;
    else
      throw ApiError(400, "'keep_alive' '" + s + "' has an unknown unit '" + unit + "'",
                     "keep_alive");
  }
  return std::chrono::seconds(int64_t(neg ? -total : total));
}

std::string rfc3339_now() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  const auto ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count() %
      1000000000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  char out[96];
  std::snprintf(out, sizeof(out), "%s.%09lldZ", buf, static_cast<long long>(ns));
  return out;
}

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

namespace {
// Parses a Modelfile PARAMETER value (validated when the model was created).
template <class T>
bool param_as(const store::Parameters& p, const char* name, T& out) {
  auto it = p.find(name);
  if (it == p.end() || it->second.empty()) return false;
  try {
    if constexpr (std::is_integral_v<T>)
      out = T(std::stoll(it->second.back()));
    else
      out = T(std::stod(it->second.back()));
  } catch (const std::exception&) {
    return false;
  }
  return true;
}
}  // namespace

void apply_model_defaults(GenerationJob& job) {
  auto r = store::resolve_model(job.model);
  if (!r.ok() || !r->from_store) return;
  const store::Parameters& p = r->parameters;
  auto& s = job.gen.sampling;
  param_as(p, "temperature", s.temperature);
  param_as(p, "top_k", s.top_k);
  param_as(p, "top_p", s.top_p);
  param_as(p, "min_p", s.min_p);
  param_as(p, "typical_p", s.typical_p);
  param_as(p, "repeat_penalty", s.repeat_penalty);
  param_as(p, "repeat_last_n", s.repeat_last_n);
  param_as(p, "presence_penalty", s.presence_penalty);
  param_as(p, "frequency_penalty", s.frequency_penalty);
  param_as(p, "seed", s.seed);
  param_as(p, "num_predict", job.gen.num_predict);
  param_as(p, "num_ctx", job.num_ctx);
  if (auto it = p.find("stop"); it != p.end()) job.gen.stop = it->second;
  job.model_system = r->system;
  if (!r->template_text.empty()) {
    // Checked at create; a template that no longer parses is reported with the request.
    auto g = text::GoTemplate::parse(r->template_text);
    if (!g.ok()) throw ApiError(400, "the model's TEMPLATE: " + g.error());
    job.go_template = std::make_shared<const text::GoTemplate>(std::move(*g));
  }
  for (const auto& m : r->messages) job.model_messages.push_back({m.role, m.content});
}

void apply_model_messages(GenerationJob& job) {
  if (job.chat) {
    std::vector<engine::ChatMessage> msgs = job.model_messages;
    msgs.insert(msgs.end(), job.messages.begin(), job.messages.end());
    const bool has_system = !msgs.empty() && msgs.front().role == "system";
    if (!has_system && !job.model_system.empty())
      msgs.insert(msgs.begin(), {"system", job.model_system});
    job.messages = std::move(msgs);
  } else if (job.system.empty()) {
    job.system = job.model_system;
  }
}

std::function<bool()> connection_probe(const httplib::Request& req) {
  if (req.remote_port <= 0 || req.local_port <= 0) return {};
  auto port_of = [](const sockaddr_storage& a) {
    if (a.ss_family == AF_INET) return int(ntohs(reinterpret_cast<const sockaddr_in&>(a).sin_port));
    if (a.ss_family == AF_INET6)
      return int(ntohs(reinterpret_cast<const sockaddr_in6&>(a).sin6_port));
    return -1;
  };
  // The connection's socket: the one whose local and peer ports are the request's.
  DIR* dir = opendir("/proc/self/fd");
  if (!dir) return {};
  int found = -1;
  while (dirent* e = readdir(dir)) {
    char* end = nullptr;
    const long fd = std::strtol(e->d_name, &end, 10);
    if (end == e->d_name || *end != '\0') continue;
    sockaddr_storage local{}, peer{};
    socklen_t ll = sizeof(local), pl = sizeof(peer);
    if (getsockname(int(fd), reinterpret_cast<sockaddr*>(&local), &ll) != 0) continue;
    if (getpeername(int(fd), reinterpret_cast<sockaddr*>(&peer), &pl) != 0) continue;
    if (port_of(local) == req.local_port && port_of(peer) == req.remote_port) {
      found = int(fd);
      break;
    }
  }
  closedir(dir);
  if (found < 0) return {};
  return [found] {
    char c;
    const ssize_t n = recv(found, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return !(n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR));
  };
}

std::string schema_gbnf(const Json& schema, const std::string& param) {
  if (!schema.is_object() && !schema.is_boolean())
    throw ApiError(400, "'" + param + "' must be a JSON schema object", param);
  auto g = constrain::json_schema_to_gbnf(schema.dump());
  if (!g.ok()) throw ApiError(400, "'" + param + "': " + g.error(), param);
  return *g;
}

std::shared_ptr<const constrain::Grammar> constraint_from(const Json& body) {
  std::string gbnf, from;
  auto set = [&](std::string g, const char* field) {
    if (!from.empty()) {
      throw ApiError(400, std::string("'") + field + "' and '" + from +
                              "' both constrain the output: give one", field);
    }
    gbnf = std::move(g);
    from = field;
  };
  auto present = [&](const char* field) {
    auto it = body.find(field);
    return it != body.end() && !it->is_null() && !(it->is_string() && it->get<std::string>().empty());
  };
  if (present("format")) {  // Ollama
    const Json& f = body["format"];
    if (f.is_string()) {
      if (f.get<std::string>() != "json")
        throw ApiError(400, "'format' must be \"json\" or a JSON schema", "format");
      set(constrain::json_gbnf(/*object_only=*/true), "format");
    } else {
      set(schema_gbnf(f, "format"), "format");
    }
  }
  if (present("response_format")) {  // OpenAI
    const Json& rf = body["response_format"];
    const std::string type = rf.is_object() ? rf.value("type", "") : "";
    if (type == "json_object") {
      set(constrain::json_gbnf(true), "response_format");
    } else if (type == "json_schema") {
      auto js = rf.find("json_schema");
      if (js == rf.end() || !js->is_object() || !js->contains("schema"))
        throw ApiError(400, "'response_format.json_schema.schema' is required", "response_format");
      set(schema_gbnf((*js)["schema"], "response_format.json_schema.schema"), "response_format");
    } else if (type != "text") {
      throw ApiError(400, "'response_format.type' must be text, json_object or json_schema",
                     "response_format");
    }
  }
  if (present("grammar")) {
    auto g = get_string(body, "grammar");
    set(*g, "grammar");
  }
  if (present("regex")) {
    auto r = constrain::regex_to_gbnf(*get_string(body, "regex"));
    if (!r.ok()) throw ApiError(400, "'regex': " + r.error(), "regex");
    set(*r, "regex");
  }
  if (present("choice")) {
    const Json& c = body["choice"];
    std::vector<std::string> choices;
    if (c.is_array()) {
      for (const Json& x : c) {
        if (!x.is_string() || x.get<std::string>().empty())
          throw ApiError(400, "'choice' must be a list of non-empty strings", "choice");
        choices.push_back(x.get<std::string>());
      }
    }
    if (choices.empty()) throw ApiError(400, "'choice' must be a list of non-empty strings", "choice");
    set(constrain::choice_to_gbnf(choices), "choice");
  }
  if (from.empty()) return nullptr;
  auto grammar = constrain::Grammar::parse(gbnf);
  if (!grammar.ok()) throw ApiError(400, "'" + from + "': " + grammar.error(), from);
  return *grammar;
}

void tag_for_router(const httplib::Request& req, const Json& body, GenerationJob& job,
                    const char* api, bool stream) {
  job.api = api;
  job.stream = stream;
  if (req.has_header("x-minnow-tag")) {
    job.tag = req.get_header_value("x-minnow-tag");
  } else if (auto t = get_string(body, "tag")) {
    job.tag = *t;
  }
  // Only routed requests need the body kept (it is copied once).
  if (router::Router* r = active_router(); r && job.model == r->name())
    job.body = std::make_shared<const Json>(body);
}

Json route_json(const router::RouteRecord& r) {
  return Json::parse(router::route_record_json(r).dump());
}

void add_route(httplib::Response& res, Json& out, const router::RouteRecord& r) {
  res.set_header("x-minnow-route", router::route_header(r));
  out["minnow"] = route_json(r);
}

ApiError job_error(const std::string& message, const std::string& model) {
  if (message.rfind("router '", 0) == 0) return ApiError(502, message);
  if (message.rfind("model '" + model + "' not found", 0) == 0) {
    return ApiError(404, "model '" + model + "' not found", "model");
  }
  if (message.rfind(kBusyPrefix, 0) == 0) return ApiError(503, message);
  if (message.rfind(kTooLargePrefix, 0) == 0) return ApiError(507, message);
  if (message.find("(the server's request timeout)") != std::string::npos)
    return ApiError(504, message);
  return ApiError(400, message);
}

}  // namespace minnow::server
