// Helpers shared by the API mappers: JSON bodies, option parsing, timestamps.
#pragma once

#include <httplib.h>

#include <chrono>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>

#include "constrain/constrain.h"
#include "sampling/sampler.h"
#include "server/job.h"

namespace minnow::server {

using Json = nlohmann::ordered_json;

// A request error that the API maps to its own error shape: 400 unless said otherwise.
struct ApiError : std::runtime_error {
  ApiError(int status, const std::string& message, std::string param = {})
      : std::runtime_error(message), status(status), param(std::move(param)) {}
  int status;
  std::string param;
};

// The request body as a JSON object, or ApiError 400 naming what is wrong.
Json parse_body(const httplib::Request& req);

// Typed field access: absent (or null) -> nullopt; wrong type -> ApiError naming the field.
std::optional<double> get_number(const Json& j, const char* field);
std::optional<int64_t> get_int(const Json& j, const char* field);
std::optional<bool> get_bool(const Json& j, const char* field);
std::optional<std::string> get_string(const Json& j, const char* field);

// "stop": a string or a list of strings.
std::vector<std::string> get_stop(const Json& j, const char* field);

// Ollama's keep_alive: seconds as a number, or a Go duration string ("5m", "30s", "1h", "-1").
std::optional<std::chrono::seconds> parse_keep_alive(const Json& j);

// "2026-11-21T12:00:00.123456789Z"
std::string rfc3339_now();
int64_t unix_now();

// Structured output from a request body: Ollama's "format" ("json" or a JSON schema) or
// OpenAI's "response_format" (json_object, json_schema), or minnow's extensions on both APIs:
// "grammar" (GBNF text), "regex" (the whole output matches it), "choice" (one of a list of
// strings). Returns nullptr when the request has none; a schema feature or grammar error that
// cannot be honoured is an ApiError 400 naming it (never silently ignored).
std::shared_ptr<const constrain::Grammar> constraint_from(const Json& body);
// The GBNF of a JSON schema, with the ApiError 400 of constraint_from.
std::string schema_gbnf(const Json& schema, const std::string& param);

// A store model's Modelfile settings as the job's defaults, before the request's own options:
// PARAMETER values (sampling, num_predict, num_ctx, stop), SYSTEM (used when the request gives
// no system prompt) and MESSAGE lines (put before a chat's messages). Nothing for plain paths
// and unknown names (the request then fails on the model as usual).
void apply_model_defaults(GenerationJob& job);
// After the request's messages are known: SYSTEM and MESSAGE lines of the model.
void apply_model_messages(GenerationJob& job);

// Whether the client of `req` is still connected, for requests that wait or generate without
// writing anything (queued, or not streamed): httplib gives handlers no socket, so the socket
// is found once by its two addresses, then probed with a non-blocking peek (0 bytes = closed).
// Returns an empty function when the socket cannot be found.
std::function<bool()> connection_probe(const httplib::Request& req);

// For the router: the job's body, API, tag (header x-minnow-tag, else the body's "tag") and
// streaming flag.
void tag_for_router(const httplib::Request& req, const Json& body, GenerationJob& job,
                    const char* api, bool stream);
// A routed answer's accounting: the "minnow" field of the JSON, and (non-streamed answers)
// the x-minnow-route header with it.
Json route_json(const router::RouteRecord& r);
void add_route(httplib::Response& res, Json& out, const router::RouteRecord& r);

// Maps run_job's error: unknown model -> 404, anything else -> 400.
ApiError job_error(const std::string& message, const std::string& model);

}  // namespace minnow::server
