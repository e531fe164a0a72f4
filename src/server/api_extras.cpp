// llama.cpp server's utility endpoints, in its shapes, with an optional "model" (default: the
// registry's default model):
//   POST /tokenize       {"content", "add_special"?, "with_pieces"?} -> {"tokens": [...]}
//                        (with_pieces: [{"id", "piece"}])
//   POST /detokenize     {"tokens": [...]} -> {"content"}
//   POST /apply-template {"messages": [...]} -> {"prompt"}
#include "engine/chat.h"
#include "server/api_common.h"
#include "server/http.h"
#include "store/registry.h"

namespace minnow::server {

namespace {

void send_error(httplib::Response& res, int status, const std::string& message) {
  if (status == 503) res.set_header("Retry-After", "1");  // busy: the client may retry
  res.status = status;
  res.set_content(Json({{"error", message}}).dump(-1, ' ', false, Json::error_handler_t::replace),
                  "application/json");
}

template <class Fn>
void with_model(const httplib::Request& req, httplib::Response& res, ModelManager& models,
                Fn&& fn) {
  try {
    const Json body = parse_body(req);
    const std::string name =
        get_string(body, "model").value_or(std::string(store::default_model().name));
    auto lease = models.acquire(name, 0);
    if (!lease.ok()) {
      const ApiError e = job_error(lease.error(), name);
      return send_error(res, e.status, e.what());
    }
    Json out;
    try {
      out = fn(body, **lease);
    } catch (...) {
      models.release(std::move(*lease), std::nullopt);
      throw;
    }
    models.release(std::move(*lease), std::nullopt);
    res.set_content(out.dump(-1, ' ', false, Json::error_handler_t::replace), "application/json");
  } catch (const ApiError& e) {
    send_error(res, e.status, e.what());
  }
}

}  // namespace

void register_extra_routes(httplib::Server& http, ModelManager& models) {
  http.Post("/tokenize", [&models](const httplib::Request& req, httplib::Response& res) {
    with_model(req, res, models, [](const Json& body, LoadedModel& m) {
      const std::string content = get_string(body, "content").value_or("");
      const bool add_special = get_bool(body, "add_special").value_or(false);
      const bool with_pieces = get_bool(body, "with_pieces").value_or(false);
      const text::Tokenizer& tok = *m.model->tokenizer();
      auto ids = tok.tokenize(content, add_special, /*parse_special=*/true);
      if (!ids.ok()) throw ApiError(400, ids.error());
      Json tokens = Json::array();
      for (int32_t id : *ids) {
        if (with_pieces)
          tokens.push_back(Json{{"id", id}, {"piece", std::string(tok.piece(id, true))}});
        else
          tokens.push_back(id);
      }
      return Json{{"tokens", tokens}};
    });
  });
  http.Post("/detokenize", [&models](const httplib::Request& req, httplib::Response& res) {
    with_model(req, res, models, [](const Json& body, LoadedModel& m) {
      std::vector<int32_t> ids;
      auto it = body.find("tokens");
      if (it != body.end() && !it->is_null()) {
        if (!it->is_array()) throw ApiError(400, "'tokens' must be a list of token ids");
        for (const auto& t : *it) {
          if (!t.is_number_integer()) throw ApiError(400, "'tokens' must be a list of token ids");
          ids.push_back(t.get<int32_t>());
        }
      }
      auto text = m.model->tokenizer()->detokenize(ids, false, true);
      if (!text.ok()) throw ApiError(400, text.error());
      return Json{{"content", *text}};
    });
  });
  http.Post("/apply-template", [&models](const httplib::Request& req, httplib::Response& res) {
    with_model(req, res, models, [](const Json& body, LoadedModel& m) {
      auto it = body.find("messages");
      if (it == body.end() || !it->is_array()) throw ApiError(400, "'messages' must be a list");
      std::vector<engine::ChatMessage> msgs;
      for (const auto& msg : *it) {
        if (!msg.is_object()) throw ApiError(400, "each message must be an object");
        msgs.push_back(
            {get_string(msg, "role").value_or("user"), get_string(msg, "content").value_or("")});
      }
      if (!m.chat_template) throw ApiError(400, m.path + ": no chat template");
      auto prompt = engine::render_chat(*m.chat_template, msgs, true);
      if (!prompt.ok()) throw ApiError(400, prompt.error());
      return Json{{"prompt", *prompt}};
    });
  });
}

}  // namespace minnow::server
