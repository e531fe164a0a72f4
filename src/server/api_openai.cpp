// The OpenAI API, as the official SDKs call it with base_url http://host:port/v1:
//   POST /v1/chat/completions, POST /v1/completions (SSE streaming ending with
//   "data: [DONE]", or one JSON object), GET /v1/models, GET /v1/models/{id}.
// Errors are {"error": {"message", "type", "param", "code"}} with 400 / 404 / 500 / 501.
// Not yet: response_format and tools (structured-output issue) — a clear 400, never ignored.
#include <sys/stat.h>

#include <cmath>
#include <memory>
#include <random>

#include "server/api_common.h"
#include "server/tools.h"
#include "server/http.h"
#include "store/registry.h"

namespace minnow::server {

namespace {

void send_error(httplib::Response& res, int status, const std::string& message,
                const std::string& param = {}) {
  if (status == 503) res.set_header("Retry-After", "1");  // busy: the client may retry
  const char* type = status == 404   ? "invalid_request_error"
                     : status >= 500 ? "server_error"
                                     : "invalid_request_error";
  Json err{{"message", message},
           {"type", type},
           {"param", param.empty() ? Json() : Json(param)},
           {"code", status == 404 ? Json("model_not_found") : Json()}};
  res.status = status;
  res.set_content(Json({{"error", err}}).dump(-1, ' ', false, Json::error_handler_t::replace),
                  "application/json");
}

std::string random_id(const char* prefix) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  static const char* kHex = "0123456789abcdef";
  std::string id = prefix;
  for (int i = 0; i < 24; ++i) id += kHex[rng() % 16];
  return id;
}

struct Shape {
  bool chat = true;
  bool want_logprobs = false;
  int top_logprobs = 0;
  bool include_usage = false;
  int n = 1;
  ToolPlan tools;
};

// A generated call in OpenAI's shape (arguments as a JSON string).
Json openai_tool_calls(const ToolCall& call, bool with_index) {
  Json tc{{"id", random_id("call_")},
          {"type", "function"},
          {"function", {{"name", call.name}, {"arguments", call.arguments.dump()}}}};
  if (with_index) tc["index"] = 0;
  return Json::array({tc});
}

// Fields common to both endpoints onto the job.
void apply_common(const Json& body, GenerationJob& job, Shape& shape) {
  auto model = get_string(body, "model");
  if (!model || model->empty()) throw ApiError(400, "'model' is required", "model");
  job.model = *model;
  apply_model_defaults(job);
  auto& s = job.gen.sampling;
  if (auto v = get_number(body, "temperature")) s.temperature = float(*v);
  if (auto v = get_number(body, "top_p")) s.top_p = float(*v);
  if (auto v = get_int(body, "seed")) s.seed = uint64_t(*v);
  if (auto v = get_number(body, "presence_penalty")) s.presence_penalty = float(*v);
  if (auto v = get_number(body, "frequency_penalty")) s.frequency_penalty = float(*v);
  // OpenAI has no repeat penalty (presence/frequency are its knobs): off here, so that
  // temperature 0 picks the most likely token as OpenAI clients expect.
  s.repeat_penalty = 1.0f;
  if (auto it = body.find("logit_bias"); it != body.end() && !it->is_null()) {
    if (!it->is_object())
      throw ApiError(400, "'logit_bias' must map token ids to numbers", "logit_bias");
    for (const auto& [k, v] : it->items()) {
      size_t used = 0;
      long id = -1;
      try {
        id = std::stol(k, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used != k.size() || id < 0 || !v.is_number()) {
        throw ApiError(400, "'logit_bias' key '" + k + "' must be a token id with a number",
                       "logit_bias");
      }
      const double b = v.get<double>();
      // OpenAI: -100 bans, +100 forces; values in between shift the logit.
      s.logit_bias.emplace_back(int32_t(id), b <= -100 ? -INFINITY : float(b));
    }
  }
  job.gen.stop = get_stop(body, "stop");
  job.grammar = constraint_from(body);
  if (auto v = get_int(body, "n")) {
    if (*v < 1 || *v > 8) throw ApiError(400, "'n' must be between 1 and 8", "n");
    shape.n = int(*v);
  }
  if (auto it = body.find("stream_options"); it != body.end() && it->is_object()) {
    shape.include_usage = it->value("include_usage", false);
  }
}

// The legacy completions shape from chat-style entries: tokens, token_logprobs, top_logprobs
// (one {token: logprob} object per position) and text_offset.
Json completion_logprobs(const Json& entries) {
  Json tokens = Json::array(), lps = Json::array(), tops = Json::array(), offsets = Json::array();
  size_t offset = 0;
  for (const Json& e : entries) {
    const std::string t = e["token"].get<std::string>();
    tokens.push_back(t);
    lps.push_back(e["logprob"]);
    Json top = Json::object();
    for (const Json& alt : e["top_logprobs"]) top[alt["token"].get<std::string>()] = alt["logprob"];
    tops.push_back(top);
    offsets.push_back(offset);
    offset += e["bytes"].size();
  }
  return Json{{"tokens", tokens},
              {"token_logprobs", lps},
              {"top_logprobs", tops},
              {"text_offset", offsets}};
}

Json usage_of(int prompt, int completion) {
  return Json{{"prompt_tokens", prompt},
              {"completion_tokens", completion},
              {"total_tokens", prompt + completion}};
}

std::string finish_reason(const JobResult& r) {
  return r.gen.done_reason == "length" ? "length" : "stop";
}

Json logprob_entry(std::string_view piece, const sampling::SampleResult& s, int top,
                   const std::function<std::string(int32_t)>& text_of) {
  Json bytes = Json::array();
  for (unsigned char c : piece) bytes.push_back(int(c));
  Json tops = Json::array();
  for (int i = 0; i < top && i < s.n_top; ++i) {
    const std::string t = text_of(s.top()[i].id);
    Json tb = Json::array();
    for (unsigned char c : t) tb.push_back(int(c));
    tops.push_back(Json{{"token", t}, {"logprob", s.top()[i].logprob}, {"bytes", tb}});
  }
  return Json{{"token", std::string(piece)},
              {"logprob", s.logprob},
              {"bytes", bytes},
              {"top_logprobs", tops}};
}

void handle(const httplib::Request& req, httplib::Response& res, ModelManager& models, bool chat) {
  const Json body = parse_body(req);
  auto job = std::make_shared<GenerationJob>();
  Shape shape;
  shape.chat = chat;
  apply_common(body, *job, shape);
  if (chat) {
    auto it = body.find("messages");
    if (it == body.end() || !it->is_array() || it->empty()) {
      throw ApiError(400, "'messages' must be a non-empty list", "messages");
    }
    for (const auto& m : *it) {
      if (!m.is_object()) throw ApiError(400, "each message must be an object", "messages");
      auto role = get_string(m, "role");
      if (!role) throw ApiError(400, "each message needs a 'role'", "messages");
      std::string content;
      if (m.contains("content") && m["content"].is_array()) {  // content parts: text only
        for (const auto& part : m["content"]) {
          if (part.value("type", "") != "text") {
            throw ApiError(400, "only text content parts are supported", "messages");
          }
          content += part.value("text", "");
        }
      } else if (m.contains("content") && !m["content"].is_null() && !m["content"].is_string()) {
        throw ApiError(400, "a message's 'content' must be a string or a list of parts",
                       "messages");
      } else {
        content = get_string(m, "content").value_or("");
      }
      // An earlier tool call goes back to the model as the text it wrote for it.
      if (*role == "assistant" && content.empty() && m.contains("tool_calls"))
        content = tool_calls_as_text(m["tool_calls"]);
      job->messages.push_back({*role, content});
    }
    job->chat = true;
    apply_model_messages(*job);
    shape.tools = plan_tools(body);
    if (shape.tools.active) {
      if (job->grammar) {
        throw ApiError(400, "'tools' and a response format both constrain the answer: give one",
                       "tools");
      }
      job->grammar = shape.tools.grammar;
      if (job->messages.front().role == "system")
        job->messages.front().content = shape.tools.system_prompt + "\n\n" + job->messages.front().content;
      else
        job->messages.insert(job->messages.begin(), {"system", shape.tools.system_prompt});
    }
    if (auto v = get_int(body, "max_completion_tokens"))
      job->gen.num_predict = int(*v);
    else if (auto w = get_int(body, "max_tokens"))
      job->gen.num_predict = int(*w);
    shape.want_logprobs = get_bool(body, "logprobs").value_or(false);
    if (auto v = get_int(body, "top_logprobs")) {
      if (*v < 0 || *v > sampling::kMaxLogprobs)
        throw ApiError(400, "'top_logprobs' must be 0..20", "top_logprobs");
      shape.top_logprobs = int(*v);
    }
  } else {
    auto it = body.find("prompt");
    if (it == body.end() || it->is_null()) throw ApiError(400, "'prompt' is required", "prompt");
    if (it->is_array()) {
      if (it->size() != 1 || !(*it)[0].is_string()) {
        throw ApiError(400, "'prompt' as a list must hold exactly one string", "prompt");
      }
      job->prompt = (*it)[0].get<std::string>();
    } else if (it->is_string()) {
      job->prompt = it->get<std::string>();
    } else {
      throw ApiError(400, "'prompt' must be a string", "prompt");
    }
    job->raw = true;
    job->gen.num_predict = int(get_int(body, "max_tokens").value_or(16));  // OpenAI's default
    if (auto v = get_int(body, "logprobs")) {
      if (*v < 0 || *v > 5) throw ApiError(400, "'logprobs' must be 0..5", "logprobs");
      shape.want_logprobs = true;
      shape.top_logprobs = int(*v);
    }
  }
  job->gen.sampling.n_logprobs = shape.top_logprobs;
  const bool stream = get_bool(body, "stream").value_or(false);
  tag_for_router(req, body, *job, "openai", stream);
  job->tools = shape.tools.active;
  job->alive = connection_probe(req);
  const std::string id = random_id(chat ? "chatcmpl-" : "cmpl-");
  const int64_t created = unix_now();
  const std::string model = job->model;

  auto chunk_base = [=](Json choices) {
    return Json{{"id", id},
                {"object", chat ? "chat.completion.chunk" : "text_completion"},
                {"created", created},
                {"model", model},
                {"system_fingerprint", "minnow"},
                {"choices", std::move(choices)}};
  };

  if (!stream) {
    Json choices = Json::array();
    int prompt_tokens = 0, completion_tokens = 0;
    std::optional<router::RouteRecord> route;
    for (int i = 0; i < shape.n; ++i) {
      std::string text;
      Json lps = Json::array();
      std::vector<std::string> pieces;
      auto r = run_job(
          models, *job,
          [&](std::string_view p) {
            text += p;
            return true;
          },
          [&](const engine::TokenEvent& e, std::string_view piece, const text::Tokenizer& tok) {
            if (shape.want_logprobs) {
              lps.push_back(logprob_entry(piece, *e.sample, shape.top_logprobs, [&](int32_t t) {
                return std::string(tok.piece(t, false));
              }));
            }
            return true;
          },
          nullptr);
      if (!r.ok()) {
        const ApiError e = job_error(r.error(), model);
        return send_error(res, e.status, e.what(), e.param);
      }
      prompt_tokens = r->gen.prompt_tokens;
      completion_tokens += r->gen.generated_tokens;
      if (r->route) route = r->route;
      Json c{{"index", i}};
      c["finish_reason"] = finish_reason(*r);
      if (chat) {
        c["message"] = Json{{"role", "assistant"}, {"content", text}};
        c["logprobs"] = shape.want_logprobs ? Json{{"content", lps}} : Json();
        if (shape.tools.active) {
          if (auto call = parse_tool_call(text)) {
            c["message"] = Json{{"role", "assistant"},
                                {"content", nullptr},
                                {"tool_calls", openai_tool_calls(*call, false)}};
            c["finish_reason"] = "tool_calls";
          }
        }
      } else {
        c["text"] = text;
        c["logprobs"] = shape.want_logprobs ? completion_logprobs(lps) : Json();
      }
      choices.push_back(c);
    }
    Json out{{"id", id},
             {"object", chat ? "chat.completion" : "text_completion"},
             {"created", created},
             {"model", model},
             {"system_fingerprint", "minnow"},
             {"choices", choices},
             {"usage", usage_of(prompt_tokens, completion_tokens)}};
    if (route) add_route(res, out, *route);
    res.set_content(out.dump(-1, ' ', false, Json::error_handler_t::replace), "application/json");
    return;
  }

  if (!model_known(model)) {
    return send_error(res, 404, "model '" + model + "' not found", "model");
  }
  auto admitted = admit_request();
  if (!admitted.ok()) return send_error(res, 503, admitted.error());
  job->admission = std::move(*admitted);
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider("text/event-stream", [&models, job, shape, chat, chunk_base](
                                                            size_t, httplib::DataSink& sink) {
    std::atomic<bool> cancel{false};
    auto send = [&](const std::string& data) {
      const std::string ev = "data: " + data + "\n\n";
      if (!sink.is_writable() || !sink.write(ev.data(), ev.size())) cancel = true;
      return !cancel.load();
    };
    int prompt_tokens = 0, completion_tokens = 0;
    for (int i = 0; i < shape.n && !cancel; ++i) {
      if (chat) {
        send(chunk_base(Json::array({Json{{"index", i},
                                          {"delta", Json{{"role", "assistant"}, {"content", ""}}},
                                          {"logprobs", Json()},
                                          {"finish_reason", Json()}}}))
                 .dump(-1, ' ', false, Json::error_handler_t::replace));
      }
      Json pending_lps = Json::array();
      ToolStream filter(shape.tools.active);  // a call is sent whole as a tool_calls delta
      auto r = run_job(
          models, *job,
          [&](std::string_view piece) {
            const std::string_view p = filter.feed(piece);
            if (p.empty()) return true;
            Json c{{"index", i}};
            if (chat) {
              c["delta"] = Json{{"content", std::string(p)}};
              c["logprobs"] = shape.want_logprobs ? Json{{"content", pending_lps}} : Json();
            } else {
              c["text"] = std::string(p);
              c["logprobs"] = Json();
            }
            c["finish_reason"] = Json();
            pending_lps = Json::array();
            return send(
                chunk_base(Json::array({c})).dump(-1, ' ', false, Json::error_handler_t::replace));
          },
          [&](const engine::TokenEvent& e, std::string_view piece, const text::Tokenizer& tok) {
            if (shape.want_logprobs) {
              pending_lps.push_back(
                  logprob_entry(piece, *e.sample, shape.top_logprobs,
                                [&](int32_t t) { return std::string(tok.piece(t, false)); }));
            }
            return true;
          },
          &cancel);
      if (!r.ok()) {
        send(Json{{"error", Json{{"message", r.error()}, {"type", "server_error"}}}}.dump(
            -1, ' ', false, Json::error_handler_t::replace));
        break;
      }
      prompt_tokens = r->gen.prompt_tokens;
      completion_tokens += r->gen.generated_tokens;
      Json c{{"index", i}};
      c["finish_reason"] = finish_reason(*r);
      if (chat)
        c["delta"] = Json::object();
      else
        c["text"] = "";
      if (const std::string& held = filter.held_call(); !held.empty()) {
        if (auto call = parse_tool_call(held)) {
          c["delta"] = Json{{"tool_calls", openai_tool_calls(*call, true)}};
          c["finish_reason"] = "tool_calls";
        } else {
          c["delta"] = Json{{"content", held}};
        }
      }
      c["logprobs"] = Json();
      Json last = chunk_base(Json::array({c}));
      if (r->route) last["minnow"] = route_json(*r->route);
      send(last.dump(-1, ' ', false, Json::error_handler_t::replace));
    }
    if (!cancel && shape.include_usage) {
      Json u = chunk_base(Json::array());
      u["usage"] = usage_of(prompt_tokens, completion_tokens);
      send(u.dump(-1, ' ', false, Json::error_handler_t::replace));
    }
    if (!cancel) send("[DONE]");
    sink.done();
    return true;
  });
}

// "created": the model file's modification time.
Json model_object(const store::KnownModel& k) {
  int64_t created = 0;
  if (auto r = store::resolve_model(k.name); r.ok()) {
    struct stat st {};
    if (stat(r->path.c_str(), &st) == 0) created = int64_t(st.st_mtime);
  }
  return Json{{"id", k.name}, {"object", "model"}, {"created", created}, {"owned_by", "minnow"}};
}

}  // namespace

void register_openai_routes(httplib::Server& http, ModelManager& models) {
  auto guarded = [](httplib::Response& res, auto&& fn) {
    try {
      fn();
    } catch (const ApiError& e) {
      send_error(res, e.status, e.what(), e.param);
    }
  };
  http.Post("/v1/chat/completions",
            [&models, guarded](const httplib::Request& req, httplib::Response& res) {
              guarded(res, [&] { handle(req, res, models, true); });
            });
  http.Post("/v1/completions",
            [&models, guarded](const httplib::Request& req, httplib::Response& res) {
              guarded(res, [&] { handle(req, res, models, false); });
            });
  http.Get("/v1/models", [](const httplib::Request&, httplib::Response& res) {
    Json data = Json::array();
    for (const auto& k : store::known_models()) {
      if (store::resolve_model(k.name).ok()) data.push_back(model_object(k));
    }
    if (router::Router* r = active_router()) {
      data.push_back(Json{{"id", r->name()}, {"object", "model"}, {"created", 0},
                          {"owned_by", "minnow-router"}});
    }
    res.set_content(Json({{"object", "list"}, {"data", data}})
                        .dump(-1, ' ', false, Json::error_handler_t::replace),
                    "application/json");
  });
  http.Get(R"(/v1/models/(.+))", [](const httplib::Request& req, httplib::Response& res) {
    const std::string id = req.matches[1];
    const store::KnownModel* k = store::find_model(id);
    if (!k || !store::resolve_model(id).ok()) {
      return send_error(res, 404, "model '" + id + "' not found", "model");
    }
    res.set_content(model_object(*k).dump(-1, ' ', false, Json::error_handler_t::replace),
                    "application/json");
  });
  // POST /v1/embeddings {model, input: string | [string], encoding_format?: "float"}
  http.Post("/v1/embeddings", [&models, guarded](const httplib::Request& req,
                                                 httplib::Response& res) {
    guarded(res, [&] {
      const Json body = parse_body(req);
      auto model = get_string(body, "model");
      if (!model || model->empty()) throw ApiError(400, "'model' is required", "model");
      if (get_string(body, "encoding_format").value_or("float") != "float") {
        throw ApiError(400, "'encoding_format': only \"float\" is supported", "encoding_format");
      }
      if (body.contains("dimensions") && !body["dimensions"].is_null()) {
        throw ApiError(400, "'dimensions' is not supported (the model's size is used)",
                       "dimensions");
      }
      std::vector<std::string> inputs;
      auto it = body.find("input");
      if (it != body.end() && it->is_string()) {
        inputs.push_back(it->get<std::string>());
      } else if (it != body.end() && it->is_array() && !it->empty()) {
        for (const auto& x : *it) {
          if (!x.is_string()) {
            throw ApiError(400, "'input' must be a string or a list of strings", "input");
          }
          inputs.push_back(x.get<std::string>());
        }
      } else {
        throw ApiError(400, "'input' must be a string or a non-empty list of strings", "input");
      }
      auto r = run_embed(models, *model, inputs, true, 0, std::nullopt);
      if (!r.ok()) {
        const ApiError e = job_error(r.error(), *model);
        return send_error(res, e.status, e.what(), e.param);
      }
      Json data = Json::array();
      for (size_t i = 0; i < r->embeddings.size(); ++i) {
        data.push_back(
            Json{{"object", "embedding"}, {"embedding", r->embeddings[i]}, {"index", i}});
      }
      Json out{
          {"object", "list"},
          {"data", data},
          {"model", *model},
          {"usage", Json{{"prompt_tokens", r->prompt_tokens}, {"total_tokens", r->prompt_tokens}}}};
      res.set_content(out.dump(-1, ' ', false, Json::error_handler_t::replace), "application/json");
    });
  });
}

}  // namespace minnow::server
