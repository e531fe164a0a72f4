// The Ollama API (github.com/ollama/ollama docs/api.md), field for field, over GenerationJob:
//   GET / , HEAD /, GET /api/version, GET /api/tags, POST /api/show, GET /api/ps,
//   POST /api/generate, POST /api/chat (NDJSON streaming by default, "stream": false for one
//   object). Durations are in nanoseconds. Errors: {"error": "..."} with 400 / 404 / 500.
// /api/embed and /api/embeddings: mean-pooled, L2-normalized final hidden states.
// format, tools (chat), template (a Go template, as Ollama's) are honoured; images are a
// clear 400 (text models only). The store endpoints are in api_store.cpp.
#include <sys/stat.h>

#include <cmath>
#include <filesystem>
#include <memory>
#include <set>

#include "gguf/gguf.h"
#include "model/model_info.h"
#include "server/api_common.h"
#include "server/tools.h"
#include "server/http.h"
#include "store/registry.h"
#include "store/store.h"

namespace minnow::server {

namespace {

constexpr const char* kVersion = "0.1.0";

int64_t ns(double ms) { return static_cast<int64_t>(std::llround(ms * 1e6)); }

void send_error(httplib::Response& res, int status, const std::string& message) {
  if (status == 503) res.set_header("Retry-After", "1");  // busy: the client may retry
  res.status = status;
  res.set_content(Json({{"error", message}}).dump(-1, ' ', false, Json::error_handler_t::replace),
                  "application/json");
}

// Ollama's "options" onto our sampling and generation settings.
void apply_options(const Json& body, GenerationJob& job) {
  auto it = body.find("options");
  if (it == body.end() || it->is_null()) return;
  if (!it->is_object()) throw ApiError(400, "'options' must be an object");
  const Json& o = *it;
  auto& s = job.gen.sampling;
  if (auto v = get_number(o, "temperature")) s.temperature = float(*v);
  if (auto v = get_int(o, "top_k")) s.top_k = int32_t(*v);
  if (auto v = get_number(o, "top_p")) s.top_p = float(*v);
  if (auto v = get_number(o, "min_p")) s.min_p = float(*v);
  if (auto v = get_number(o, "typical_p")) s.typical_p = float(*v);
  if (auto v = get_number(o, "repeat_penalty")) s.repeat_penalty = float(*v);
  if (auto v = get_int(o, "repeat_last_n")) s.repeat_last_n = int32_t(*v);
  if (auto v = get_number(o, "presence_penalty")) s.presence_penalty = float(*v);
  if (auto v = get_number(o, "frequency_penalty")) s.frequency_penalty = float(*v);
  if (auto v = get_int(o, "seed")) s.seed = uint64_t(*v);
  if (auto v = get_int(o, "num_predict")) job.gen.num_predict = int(*v);
  if (auto v = get_int(o, "num_ctx")) {
    if (*v < 1) throw ApiError(400, "'num_ctx' must be positive");
    job.num_ctx = int(*v);
  }
  if (auto v = get_int(o, "num_keep")) job.gen.n_keep = int(*v);
  auto stop = get_stop(o, "stop");
  if (!stop.empty()) job.gen.stop = stop;
  // As in Ollama, num_thread applies to the model: another count than the loaded one sets
  // it up again once its requests are done.
  if (auto v = get_int(o, "num_thread")) {
    if (*v < 0 || *v > 256) throw ApiError(400, "'num_thread' must be between 0 and 256");
    job.num_thread = int(*v);
  }
}

void refuse_unsupported(const Json& body) {
  // Clients send empty lists for what they do not use (the ollama package sends "tools": []).
  auto given = [&](const char* field) {
    auto it = body.find(field);
    return it != body.end() && !it->is_null() && !(it->is_array() && it->empty()) &&
           !(it->is_string() && it->get<std::string>().empty());
  };
  if (given("images")) throw ApiError(400, "'images': this model takes text only");
}

std::string parameter_size(uint64_t n) {
  char buf[32];
  if (n >= 1000000000)
    std::snprintf(buf, sizeof(buf), "%.1fB", n / 1e9);
  else
    std::snprintf(buf, sizeof(buf), "%.1fM", n / 1e6);
  return buf;
}

std::string rfc3339_of(std::time_t t) {
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// {"format", "family", "families", "parameter_size", "quantization_level"} from the file.
Json details_of(const std::string& path) {
  auto f = gguf::File::open(path);
  if (!f.ok()) return Json::object();
  auto info = model::describe(**f);
  if (!info.ok()) return Json::object();
  std::string quant;
  if (info->file_type) {
    quant = std::string(model::file_type_name(*info->file_type));
    if (quant.rfind("MOSTLY_", 0) == 0) quant = quant.substr(7);
  }
  return Json{{"parent_model", ""},
              {"format", "gguf"},
              {"family", info->architecture},
              {"families", Json::array({info->architecture})},
              {"parameter_size", parameter_size(info->parameter_count)},
              {"quantization_level", quant}};
}

Json tag_entry(const store::KnownModel& k, const std::string& path) {
  struct stat st {};
  stat(path.c_str(), &st);
  return Json{{"name", k.name},
              {"model", k.name},
              {"modified_at", rfc3339_of(st.st_mtime)},
              {"size", uint64_t(st.st_size)},
              {"digest", k.sha256},
              {"details", details_of(path)}};
}

// A model of the store: its digest is the manifest's, as Ollama's /api/tags gives it.
Json tag_entry(const store::StoredModel& m) {
  return Json{{"name", m.name.display()},
              {"model", m.name.display()},
              {"modified_at", rfc3339_of(m.modified)},
              {"size", m.total_bytes},
              {"digest", m.id},
              {"details", details_of(m.model_path)}};
}

// Runs a job and answers in Ollama's shape, streamed as NDJSON or as one object.
// A generated call in Ollama's shape (arguments as an object).
Json ollama_message_with_call(const ToolCall& call) {
  return Json{{"role", "assistant"},
              {"content", ""},
              {"tool_calls", Json::array({Json{{"function", {{"name", call.name},
                                                             {"arguments", call.arguments}}}}})}};
}

void answer(const httplib::Request& req, httplib::Response& res, ModelManager& models,
            std::shared_ptr<GenerationJob> job, bool stream, bool chat, bool tools = false) {
  const std::string model = job->model;
  job->alive = connection_probe(req);
  auto final_object = [model, chat, tools](const JobResult& r, const std::string& text) {
    Json o{{"model", model}, {"created_at", rfc3339_now()}};
    if (chat) {
      o["message"] = Json{{"role", "assistant"}, {"content", text}};
      if (tools) {
        if (auto call = parse_tool_call(text)) o["message"] = ollama_message_with_call(*call);
      }
    } else {
      o["response"] = text;
    }
    o["done"] = true;
    o["done_reason"] = r.gen.done_reason == "cancel" ? "stop" : r.gen.done_reason;
    if (!chat) {
      std::vector<int32_t> ctx = r.prompt_tokens;
      ctx.insert(ctx.end(), r.gen.tokens.begin(), r.gen.tokens.end());
      o["context"] = ctx;
    }
    const double eval_ms = r.gen.generate_ms;
    o["total_duration"] = ns(r.total_ms);
    o["load_duration"] = ns(r.load_ms);
    // The whole prompt, cached or not: Ollama treats its cache as a detail (ollama#5371).
    o["prompt_eval_count"] = r.gen.prompt_tokens;
    o["prompt_eval_duration"] = ns(r.gen.prompt_ms);
    o["eval_count"] = r.gen.generated_tokens;
    o["eval_duration"] = ns(eval_ms);
    return o;
  };
  if (!stream) {
    std::string text;
    auto r = run_job(
        models, *job,
        [&](std::string_view p) {
          text += p;
          return true;
        },
        {}, nullptr);
    if (!r.ok()) {
      const ApiError e = job_error(r.error(), model);
      return send_error(res, e.status, e.what());
    }
    Json o = final_object(*r, text);
    if (r->route) add_route(res, o, *r->route);
    res.set_content(o.dump(-1, ' ', false, Json::error_handler_t::replace), "application/json");
    return;
  }
  // Streaming: the model is acquired inside the provider, after the headers; so check for an
  // unknown model first to answer it with a proper 404.
  if (!model_known(model)) return send_error(res, 404, "model '" + model + "' not found");
  auto admitted = admit_request();
  if (!admitted.ok()) return send_error(res, 503, admitted.error());
  job->admission = std::move(*admitted);
  res.set_chunked_content_provider(
      "application/x-ndjson",
      [&models, job, model, chat, final_object, tools](size_t, httplib::DataSink& sink) {
        std::atomic<bool> cancel{false};
        auto write = [&](const Json& o) {
          const std::string line = o.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
          if (!sink.is_writable() || !sink.write(line.data(), line.size())) cancel = true;
          return !cancel.load();
        };
        ToolStream filter(tools);  // a call is held back and sent as one message at the end
        auto r = run_job(
            models, *job,
            [&](std::string_view piece) {
              const std::string_view p = filter.feed(piece);
              if (p.empty()) return true;
              Json o{{"model", model}, {"created_at", rfc3339_now()}};
              if (chat)
                o["message"] = Json{{"role", "assistant"}, {"content", std::string(p)}};
              else
                o["response"] = std::string(p);
              o["done"] = false;
              return write(o);
            },
            {}, &cancel);
        if (const std::string& held = filter.held_call(); r.ok() && !cancel && !held.empty()) {
          Json o{{"model", model}, {"created_at", rfc3339_now()}, {"done", false}};
          if (auto call = parse_tool_call(held))
            o["message"] = ollama_message_with_call(*call);
          else
            o["message"] = Json{{"role", "assistant"}, {"content", held}};
          write(o);
        }
        if (!r.ok())
          write(Json{{"error", r.error()}});
        else if (!cancel) {
          Json o = final_object(*r, "");
          if (r->route) o["minnow"] = route_json(*r->route);
          write(o);
        }
        sink.done();
        return true;
      });
}

std::shared_ptr<GenerationJob> common_job(const Json& body) {
  refuse_unsupported(body);
  auto job = std::make_shared<GenerationJob>();
  auto model = get_string(body, "model");
  if (!model || model->empty()) throw ApiError(400, "'model' is required");
  job->model = *model;
  job->keep_alive = parse_keep_alive(body);
  apply_model_defaults(*job);
  apply_options(body, *job);
  if (auto t = get_string(body, "template"); t && !t->empty()) {
    auto g = text::GoTemplate::parse(*t);
    if (!g.ok()) throw ApiError(400, "'template': " + g.error());
    job->go_template = std::make_shared<const text::GoTemplate>(std::move(*g));
  }
  job->grammar = constraint_from(body);
  return job;
}

// Empty prompt / no messages: load (or, with keep_alive 0, unload) and say so.
bool load_only(httplib::Response& res, ModelManager& models, const GenerationJob& job, bool chat) {
  Json o{{"model", job.model}, {"created_at", rfc3339_now()}};
  if (chat)
    o["message"] = Json{{"role", "assistant"}, {"content", ""}};
  else
    o["response"] = "";
  o["done"] = true;
  router::Router* router = active_router();
  if (router && job.model == router->name()) {
    // The router: its local tiers load (or unload) as one.
    for (const auto& t : router->config().tiers) {
      if (t.kind != router::TierConfig::Kind::kLocal) continue;
      if (job.keep_alive && job.keep_alive->count() == 0) {
        models.unload(t.model);
        continue;
      }
      auto lease = models.acquire(t.model, job.num_ctx, job.num_thread);
      if (!lease.ok()) {
        const ApiError e = job_error(lease.error(), t.model);
        send_error(res, e.status, router->name() + ": tier '" + t.name + "': " + e.what());
        return true;
      }
      models.release(std::move(*lease), job.keep_alive);
    }
    o["done_reason"] = job.keep_alive && job.keep_alive->count() == 0 ? "unload" : "load";
  } else if (job.keep_alive && job.keep_alive->count() == 0) {
    models.unload(job.model);
    o["done_reason"] = "unload";
  } else {
    auto lease = models.acquire(job.model, job.num_ctx, job.num_thread);
    if (!lease.ok()) {
      const ApiError e = job_error(lease.error(), job.model);
      send_error(res, e.status, e.what());
      return true;
    }
    models.release(std::move(*lease), job.keep_alive);
    o["done_reason"] = "load";
  }
  res.set_content(o.dump(-1, ' ', false, Json::error_handler_t::replace), "application/json");
  return true;
}

template <class Fn>
void guarded(httplib::Response& res, Fn&& fn) {
  try {
    fn();
  } catch (const ApiError& e) {
    send_error(res, e.status, e.what());
  }
}

}  // namespace

void register_ollama_routes(httplib::Server& http, ModelManager& models) {
  http.Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("Ollama is running", "text/plain; charset=utf-8");
  });
  http.Get("/api/version", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(
        Json({{"version", kVersion}}).dump(-1, ' ', false, Json::error_handler_t::replace),
        "application/json");
  });
  http.Get("/api/tags", [](const httplib::Request&, httplib::Response& res) {
    Json list = Json::array();
    // The store's models (the cache's known ones join it on first use, and a removed one stays
    // removed); when the store cannot take them (not writable), the cache's known models.
    std::set<std::string> listed;
    bool imported = false;
    if (auto s = store::Store::open_default(); s.ok()) {
      imported = store::import_known_models(*s).ok();
      if (auto models = s->list(); models.ok()) {
        for (const auto& m : *models) {
          listed.insert(m.name.display());
          list.push_back(tag_entry(m));
        }
      }
    }
    for (const auto& k : store::known_models()) {
      if (imported || listed.contains(std::string(k.name))) continue;
      auto r = store::resolve_model(k.name);
      if (r.ok()) list.push_back(tag_entry(k, r->path));
    }
    if (router::Router* r = active_router()) {  // the router's virtual model
      list.push_back(Json{{"name", r->name()},
                          {"model", r->name()},
                          {"modified_at", rfc3339_now()},
                          {"size", 0},
                          {"digest", ""},
                          {"details", Json{{"format", "router"}, {"family", "router"}}}});
    }
    res.set_content(Json({{"models", list}}).dump(-1, ' ', false, Json::error_handler_t::replace),
                    "application/json");
  });
  http.Get("/api/ps", [&models](const httplib::Request&, httplib::Response& res) {
    Json list = Json::array();
    for (const auto& m : models.loaded()) {
      const store::KnownModel* k = store::find_model(m.name);
      list.push_back(
          Json{{"name", m.name},
               {"model", m.name},
               {"size", m.size_bytes},
               {"digest", k ? std::string(k->sha256) : std::string()},
               {"details", details_of(m.path)},
               {"expires_at", m.forever
                                  ? std::string("0001-01-01T00:00:00Z")
                                  : rfc3339_of(std::chrono::system_clock::to_time_t(m.expires_at))},
               {"size_vram", 0},
               {"context_length", m.num_ctx}});
    }
    res.set_content(Json({{"models", list}}).dump(-1, ' ', false, Json::error_handler_t::replace),
                    "application/json");
  });
  http.Post("/api/show", [](const httplib::Request& req, httplib::Response& res) {
    guarded(res, [&] {
      const Json body = parse_body(req);
      auto name = get_string(body, "model");
      if (!name) name = get_string(body, "name");  // the older field
      if (!name) throw ApiError(400, "'model' is required");
      auto r = store::resolve_model(*name);
      if (!r.ok()) throw ApiError(404, "model '" + *name + "' not found");
      auto f = gguf::File::open(r->path);
      if (!f.ok()) throw ApiError(500, f.error());
      auto info = model::describe(**f);
      if (!info.ok()) throw ApiError(500, info.error());
      Json mi{{"general.architecture", info->architecture},
              {"general.parameter_count", info->parameter_count}};
      const std::string& a = info->architecture;
      if (info->context_length) mi[a + ".context_length"] = *info->context_length;
      if (info->embedding_length) mi[a + ".embedding_length"] = *info->embedding_length;
      if (info->block_count) mi[a + ".block_count"] = *info->block_count;
      if (!info->head_count.empty()) mi[a + ".attention.head_count"] = info->head_count[0];
      if (!info->head_count_kv.empty()) mi[a + ".attention.head_count_kv"] = info->head_count_kv[0];
      if (info->vocab_size) mi["tokenizer.ggml.vocab_size"] = *info->vocab_size;
      std::string tmpl;
      if (auto t = (*f)->get_string("tokenizer.chat_template"); t.ok()) tmpl = std::string(*t);
      // What the model's Modelfile set (store models), over what the GGUF carries.
      if (!r->template_text.empty()) tmpl = r->template_text;
      std::string license;
      for (const auto& l : r->licenses) license += (license.empty() ? "" : "\n") + l;
      Json out{{"license", license},
               {"modelfile", "# Modelfile generated by minnow\n# FROM " +
                                 (r->name.empty() ? r->path : r->name) + "\n" +
                                 store::render_modelfile(r->path, r->parameters, r->template_text,
                                                         r->system, r->messages, r->licenses)},
               {"parameters", store::render_parameters(r->parameters)},
               {"template", tmpl},
               {"system", r->system},
               {"details", details_of(r->path)},
               {"model_info", mi},
               {"capabilities", Json::array({"completion"})},
               {"modified_at", rfc3339_now()}};
      if (!r->messages.empty()) {
        out["messages"] = Json::array();
        for (const auto& m : r->messages)
          out["messages"].push_back(Json{{"role", m.role}, {"content", m.content}});
      }
      res.set_content(out.dump(-1, ' ', false, Json::error_handler_t::replace), "application/json");
    });
  });
  http.Post("/api/generate", [&models](const httplib::Request& req, httplib::Response& res) {
    guarded(res, [&] {
      const Json body = parse_body(req);
      auto job = common_job(body);
      job->chat = false;
      job->prompt = get_string(body, "prompt").value_or("");
      job->system = get_string(body, "system").value_or("");
      job->raw = get_bool(body, "raw").value_or(false);
      if (body.contains("context") && !body["context"].is_null()) {
        if (!body["context"].is_array())
          throw ApiError(400, "'context' must be a list of token ids");
        for (const auto& t : body["context"]) {
          if (!t.is_number_integer()) throw ApiError(400, "'context' must be a list of token ids");
          job->context.push_back(t.get<int32_t>());
        }
      }
      if (job->prompt.empty()) {
        load_only(res, models, *job, false);
        return;
      }
      apply_model_messages(*job);
      const bool stream = get_bool(body, "stream").value_or(true);
      tag_for_router(req, body, *job, "ollama", stream);
      answer(req, res, models, job, stream, false);
    });
  });
  http.Post("/api/chat", [&models](const httplib::Request& req, httplib::Response& res) {
    guarded(res, [&] {
      const Json body = parse_body(req);
      auto job = common_job(body);
      job->chat = true;
      auto it = body.find("messages");
      if (it != body.end() && !it->is_null()) {
        if (!it->is_array()) throw ApiError(400, "'messages' must be a list");
        for (const auto& m : *it) {
          if (!m.is_object()) throw ApiError(400, "each message must be an object");
          auto role = get_string(m, "role");
          if (!role) throw ApiError(400, "each message needs a 'role'");
          if (m.contains("images") && !m["images"].is_null() &&
              !(m["images"].is_array() && m["images"].empty())) {
            throw ApiError(400, "'images': this model takes text only");
          }
          std::string content = get_string(m, "content").value_or("");
          // An earlier tool call goes back to the model as the text it wrote for it.
          if (*role == "assistant" && content.empty() && m.contains("tool_calls"))
            content = tool_calls_as_text(m["tool_calls"]);
          job->messages.push_back({*role, content});
        }
      }
      if (job->messages.empty()) {
        load_only(res, models, *job, true);
        return;
      }
      apply_model_messages(*job);
      const ToolPlan tools = plan_tools(body);
      if (tools.active) {
        if (job->grammar) {
          throw ApiError(400, "'tools' and 'format' both constrain the answer: give one");
        }
        job->grammar = tools.grammar;
        if (job->messages.front().role == "system")
          job->messages.front().content = tools.system_prompt + "\n\n" + job->messages.front().content;
        else
          job->messages.insert(job->messages.begin(), {"system", tools.system_prompt});
      }
      const bool stream = get_bool(body, "stream").value_or(true);
      tag_for_router(req, body, *job, "ollama", stream);
      job->tools = tools.active;
      answer(req, res, models, job, stream, true, tools.active);
    });
  });
  // POST /api/embed {model, input: string | [string], truncate?, options?, keep_alive?}
  http.Post("/api/embed", [&models](const httplib::Request& req, httplib::Response& res) {
    guarded(res, [&] {
      const Json body = parse_body(req);
      auto job = common_job(body);
      std::vector<std::string> inputs;
      auto it = body.find("input");
      if (it != body.end() && it->is_string()) {
        inputs.push_back(it->get<std::string>());
      } else if (it != body.end() && it->is_array()) {
        for (const auto& x : *it) {
          if (!x.is_string()) throw ApiError(400, "'input' must be a string or a list of strings");
          inputs.push_back(x.get<std::string>());
        }
      } else if (it != body.end() && !it->is_null()) {
        throw ApiError(400, "'input' must be a string or a list of strings");
      }
      auto r = run_embed(models, job->model, inputs, get_bool(body, "truncate").value_or(true),
                         job->num_ctx, job->keep_alive);
      if (!r.ok()) {
        const ApiError e = job_error(r.error(), job->model);
        return send_error(res, e.status, e.what());
      }
      Json out{{"model", job->model},
               {"embeddings", r->embeddings},
               {"total_duration", ns(r->total_ms)},
               {"load_duration", ns(r->load_ms)},
               {"prompt_eval_count", r->prompt_tokens}};
      res.set_content(out.dump(-1, ' ', false, Json::error_handler_t::replace), "application/json");
    });
  });
  // The legacy POST /api/embeddings {model, prompt} -> {embedding}.
  http.Post("/api/embeddings", [&models](const httplib::Request& req, httplib::Response& res) {
    guarded(res, [&] {
      const Json body = parse_body(req);
      auto job = common_job(body);
      auto r = run_embed(models, job->model, {get_string(body, "prompt").value_or("")}, true,
                         job->num_ctx, job->keep_alive);
      if (!r.ok()) {
        const ApiError e = job_error(r.error(), job->model);
        return send_error(res, e.status, e.what());
      }
      res.set_content(Json({{"embedding", r->embeddings[0]}})
                          .dump(-1, ' ', false, Json::error_handler_t::replace),
                      "application/json");
    });
  });
  // /api/create, /api/copy, /api/delete, /api/pull: api_store.cpp. Pushing to a registry is
  // not something a local runtime does.
  http.Post("/api/push", [](const httplib::Request&, httplib::Response& res) {
    send_error(res, 501, "/api/push is not supported by minnow (there is no registry to push to)");
  });
}

}  // namespace minnow::server
