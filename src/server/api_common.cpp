#include "server/api_common.h"

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

ApiError job_error(const std::string& message, const std::string& model) {
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
