// The model store over Ollama's API (github.com/ollama/ollama docs/api.md):
//   POST /api/create  {model, from | files, template, system, parameters, messages, license,
//                      stream} (or the older {model, modelfile}); progress as NDJSON
//   HEAD/POST /api/blobs/sha256:<hex>  the blobs `files` refers to (the ollama client's
//                      create_blob), checked against their digest
//   POST /api/copy    {source, destination}
//   DELETE /api/delete {model}
//   POST /api/pull    {model, insecure, stream}: hf.co/USER/REPO[:QUANT] or a .gguf URL, with
//                      {"status", "digest", "total", "completed"} progress lines
// Errors: {"error": "..."}, 400 for a bad request, 404 for a model that is not there.
#include <httplib.h>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "server/api_common.h"
#include "server/http.h"
#include "store/pull.h"
#include "store/registry.h"
#include "store/sha256.h"
#include "store/store.h"

namespace minnow::server {
namespace {

std::string dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

void send_error(httplib::Response& res, int status, const std::string& message) {
  res.status = status;
  res.set_content(dump(Json{{"error", message}}), "application/json");
}

template <class Fn>
void guarded(httplib::Response& res, Fn&& fn) {
  try {
    fn();
  } catch (const ApiError& e) {
    send_error(res, e.status, e.what());
  }
}

store::Store open_store() {
  auto s = store::Store::open_default();
  if (!s.ok()) throw ApiError(500, s.error());
  return std::move(*s);
}

store::ModelName name_field(const Json& body, const char* field, const char* fallback = nullptr) {
  auto v = get_string(body, field);
  if (!v && fallback) v = get_string(body, fallback);
  if (!v || v->empty()) throw ApiError(400, std::string("'") + field + "' is required");
  auto n = store::parse_model_name(*v);
  if (!n.ok()) throw ApiError(400, n.error());
  return *n;
}

// A JSON parameter value as the Modelfile's text ("0.7", "40", "<stop>").
std::string param_text(const Json& v, const std::string& name) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number() || v.is_boolean()) return v.dump();
  throw ApiError(400, "parameter '" + name + "' must be a number or a string");
}

// The request as a Modelfile: the older "modelfile" text first, then the JSON fields on top.
store::Modelfile modelfile_of(const Json& body, store::Store& s) {
  store::Modelfile mf;
  if (auto text = get_string(body, "modelfile"); text && !text->empty()) {
    auto parsed = store::parse_modelfile(*text);
    if (!parsed.ok()) throw ApiError(400, parsed.error());
    mf = std::move(*parsed);
  }
  if (auto from = get_string(body, "from"); from && !from->empty()) mf.from = *from;
  if (auto it = body.find("files"); it != body.end() && !it->is_null()) {
    if (!it->is_object()) throw ApiError(400, "'files' must be an object {file name: digest}");
    std::vector<std::string> ggufs;
    for (const auto& [file, digest] : it->items()) {
      if (!digest.is_string()) throw ApiError(400, "'files': the digest of '" + file + "'");
      auto hex = store::parse_digest(digest.get<std::string>());
      if (!hex.ok()) throw ApiError(400, "'files' / '" + file + "': " + hex.error());
      if (!s.has_blob(*hex))
        throw ApiError(400, "'files' / '" + file + "': blob " + digest.get<std::string>() +
                                " is not on the server (upload it with POST /api/blobs/<digest>)");
      if (file.ends_with(".gguf")) ggufs.push_back(s.blob_path(*hex));
    }
    if (ggufs.size() != 1)
      throw ApiError(400,
                     "'files' must name exactly one .gguf file (safetensors are not supported)");
    mf.from = ggufs[0];
  }
  if (auto it = body.find("adapters"); it != body.end() && !it->is_null() && !it->empty())
    throw ApiError(400, "'adapters' is reserved for LoRA adapters, not supported yet");
  if (auto q = get_string(body, "quantize"); q && !q->empty())
    throw ApiError(400, "'quantize' is not supported: create from a GGUF file already quantized");
  if (auto t = get_string(body, "template")) mf.template_text = *t;
  if (auto t = get_string(body, "system")) mf.system = *t;
  if (auto it = body.find("license"); it != body.end() && !it->is_null()) {
    mf.licenses.clear();
    if (it->is_string()) {
      mf.licenses.push_back(it->get<std::string>());
    } else if (it->is_array()) {
      for (const auto& l : *it) {
        if (!l.is_string()) throw ApiError(400, "'license' must be a string or a list of strings");
        mf.licenses.push_back(l.get<std::string>());
      }
    } else {
      throw ApiError(400, "'license' must be a string or a list of strings");
    }
  }
  if (auto it = body.find("parameters"); it != body.end() && !it->is_null()) {
    if (!it->is_object()) throw ApiError(400, "'parameters' must be an object");
    for (const auto& [name, value] : it->items()) {
      std::vector<std::string> values;
      if (value.is_array()) {
        for (const auto& v : value) values.push_back(param_text(v, name));
      } else {
        values.push_back(param_text(value, name));
      }
      if (name != "stop") mf.parameters.erase(name);
      for (const auto& v : values) {
        Status st = store::add_parameter(mf.parameters, name, v);
        if (!st.ok()) throw ApiError(400, st.message(), "parameters");
      }
    }
  }
  if (auto it = body.find("messages"); it != body.end() && !it->is_null()) {
    if (!it->is_array()) throw ApiError(400, "'messages' must be a list");
    mf.messages.clear();
    for (const auto& m : *it) {
      if (!m.is_object()) throw ApiError(400, "each message must be an object");
      auto role = get_string(m, "role");
      if (!role || (*role != "system" && *role != "user" && *role != "assistant"))
        throw ApiError(400, "each message needs a role: system, user or assistant");
      mf.messages.push_back({*role, get_string(m, "content").value_or("")});
    }
  }
  if (mf.from.empty())
    throw ApiError(400, "'from' (a model or a GGUF path) or 'files' is required");
  return mf;
}

void send_ndjson(httplib::Response& res, const std::vector<Json>& lines) {
  std::string body;
  for (const auto& l : lines) body += dump(l) + "\n";
  res.set_content(body, "application/x-ndjson");
}

Json progress_json(const store::PullProgress& p) {
  Json o{{"status", p.status}};
  if (!p.digest.empty()) o["digest"] = p.digest;
  if (p.total) {
    o["total"] = p.total;
    o["completed"] = p.completed;
  }
  return o;
}

int pull_error_status(const std::string& message) {
  if (message.find("no such repository") != std::string::npos ||
      message.find("has no .gguf file") != std::string::npos ||
      message.find("HTTP 404") != std::string::npos)
    return 404;
  return 500;
}

}  // namespace

void register_store_routes(httplib::Server& http, ModelManager& models) {
  http.Post("/api/create", [](const httplib::Request& req, httplib::Response& res) {
    guarded(res, [&] {
      const Json body = parse_body(req);
      const store::ModelName name = name_field(body, "model", "name");
      store::Store s = open_store();
      (void)store::import_known_models(s);  // FROM smollm2:135m before anything listed it
      const store::Modelfile mf = modelfile_of(body, s);
      std::vector<Json> lines;
      auto m = s.create(name, mf, "", [&](const std::string& st) {
        lines.push_back(Json{{"status", st}});
      });
      if (!m.ok()) {
        const bool missing = m.error().find("no model of that name") != std::string::npos;
        throw ApiError(missing ? 404 : 400, m.error());
      }
      if (get_bool(body, "stream").value_or(true))
        send_ndjson(res, lines);
      else
        res.set_content(dump(Json{{"status", "success"}}), "application/json");
    });
  });

  // The blobs a create request's "files" names, uploaded first by the client.
  // cpp-httplib answers HEAD with the GET handler, without the body.
  http.Get(R"(/api/blobs/(.+))", [](const httplib::Request& req, httplib::Response& res) {
    auto hex = store::parse_digest(req.matches[1].str());
    if (!hex.ok()) return send_error(res, 400, hex.error());
    res.status = open_store().has_blob(*hex) ? 200 : 404;
  });
  http.Post(R"(/api/blobs/(.+))", [](const httplib::Request& req, httplib::Response& res) {
    guarded(res, [&] {
      auto hex = store::parse_digest(req.matches[1].str());
      if (!hex.ok()) throw ApiError(400, hex.error());
      if (store::sha256_hex(req.body) != *hex)
        throw ApiError(400, "the body's sha256 is not " + req.matches[1].str());
      store::Store s = open_store();
      auto l = s.put_blob(req.body, store::kMediaModel);
      if (!l.ok()) throw ApiError(500, l.error());
      res.status = 201;
    });
  });

  http.Post("/api/copy", [](const httplib::Request& req, httplib::Response& res) {
    guarded(res, [&] {
      const Json body = parse_body(req);
      const store::ModelName src = name_field(body, "source");
      const store::ModelName dst = name_field(body, "destination");
      store::Store s = open_store();
      (void)store::import_known_models(s);
      if (!s.exists(src)) throw ApiError(404, "model '" + src.display() + "' not found");
      Status st = s.copy(src, dst);
      if (!st.ok()) throw ApiError(500, st.message());
    });
  });

  http.Delete("/api/delete", [&models](const httplib::Request& req, httplib::Response& res) {
    guarded(res, [&] {
      const Json body = parse_body(req);
      const store::ModelName name = name_field(body, "model", "name");
      store::Store s = open_store();
      (void)store::import_known_models(s);
      if (!s.exists(name)) throw ApiError(404, "model '" + name.display() + "' not found");
      // A loaded copy would keep serving a model that is gone.
      auto given = get_string(body, "model");
      if (!given) given = get_string(body, "name");
      models.unload(*given);
      models.unload(name.display());
      Status st = s.remove(name);
      if (!st.ok()) throw ApiError(500, st.message());
    });
  });

  http.Post("/api/pull", [](const httplib::Request& req, httplib::Response& res) {
    guarded(res, [&] {
      const Json body = parse_body(req);
      auto spec = get_string(body, "model");
      if (!spec) spec = get_string(body, "name");
      if (!spec || spec->empty()) throw ApiError(400, "'model' is required");
      if (auto src = store::parse_pull_spec(*spec); !src.ok() && !store::find_model(*spec))
        throw ApiError(400, src.error());
      (void)get_bool(body, "insecure");  // TLS is always verified
      if (!get_bool(body, "stream").value_or(true)) {
        store::Store s = open_store();
        auto m = store::pull(s, *spec);
        if (!m.ok()) throw ApiError(pull_error_status(m.error()), m.error());
        res.set_content(dump(Json{{"status", "success"}}), "application/json");
        return;
      }
      const std::string what = *spec;
      res.set_chunked_content_provider(
          "application/x-ndjson", [what](size_t, httplib::DataSink& sink) {
            auto write = [&](const Json& o) {
              const std::string line = dump(o) + "\n";
              return sink.is_writable() && sink.write(line.data(), line.size());
            };
            store::Store s = open_store();
            store::PullOptions opts;
            // A client that goes away cancels the download (the partial file stays).
            opts.progress = [&](const store::PullProgress& p) { return write(progress_json(p)); };
            auto m = store::pull(s, what, opts);
            if (!m.ok()) write(Json{{"error", m.error()}});
            sink.done();
            return true;
          });
    });
  });
}

}  // namespace minnow::server
