// One generation request, whichever API it came through: the Ollama and OpenAI handlers map
// their JSON onto a GenerationJob, run_job() runs it on a leased model, and the handlers map
// the events and the result back into their own shapes.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "constrain/constrain.h"
#include "engine/chat.h"
#include "text/go_template.h"
#include "engine/session.h"
#include "router/router.h"
#include "server/models.h"
#include "util/status.h"

namespace minnow::server {

using Admission = std::shared_ptr<void>;  // see admit_request()

struct GenerationJob {
  std::string model;
  bool chat = false;                          // messages through the chat template
  std::vector<engine::ChatMessage> messages;  // chat
  std::string prompt;                         // completion
  std::string system;                         // completion: a system message for the template
  bool raw = false;                           // completion: no template
  std::vector<int32_t> context;               // Ollama generate: tokens of an earlier exchange
  // From the store model's Modelfile (apply_model_defaults): SYSTEM and MESSAGE lines.
  std::string model_system;
  std::vector<engine::ChatMessage> model_messages;
  engine::GenerateOptions gen;
  // A Go template (Ollama's request field "template", or the store model's TEMPLATE) used
  // instead of the model's own Jinja chat template.
  std::shared_ptr<const text::GoTemplate> go_template;
  // Structured output (format / response_format / grammar / regex / choice / tools).
  std::shared_ptr<const constrain::Grammar> grammar;
  int num_ctx = 0;
  int num_thread = 0;  // 0: the server's threads
  std::optional<std::chrono::seconds> keep_alive;
  std::function<bool()> alive;  // the client is still connected (connection_probe)
  Admission admission;           // taken by the handler (streaming); else run_job takes one
  // For the router (job.model is its virtual model): the body as the client sent it, which
  // API and endpoint, the request's tag (header x-minnow-tag or field "tag"), and whether
  // tools are offered and the answer is streamed.
  std::shared_ptr<const nlohmann::ordered_json> body;
  std::string api;  // "ollama" or "openai"
  std::string tag;
  bool tools = false;
  bool stream = false;
};

struct JobResult {
  engine::GenerateResult gen;
  std::vector<int32_t> prompt_tokens;
  double load_ms = 0;
  double total_ms = 0;
  std::optional<router::RouteRecord> route;  // a routed request: who answered, and why
};

// The router's virtual model, when `minnow serve --router` configured one (null: none).
void set_router(std::shared_ptr<router::Router> router);
router::Router* active_router();
// The name is a model the server can run: a known or stored model, a path, or the router's.
bool model_known(const std::string& name);

// Admission: at most request_limit() generation requests in flight (running + queued; 0: no
// limit); beyond it run_job answers kBusyPrefix at once (the APIs: 503 with Retry-After).
void set_request_limit(int64_t limit);
int64_t request_limit();
std::atomic<int64_t>& in_flight();
// A place among the requests in flight, held until dropped; kBusyPrefix error when none is
// left. Streaming handlers take it before answering 200, so the stream cannot fail on it.
Result<Admission> admit_request();
// A generation that runs longer than this is stopped with an error (0: no limit).
void set_request_timeout_s(int seconds);

// on_token's view of a sampled token: the engine's event and the token's text.
using TokenFn = std::function<bool(const engine::TokenEvent&, std::string_view piece,
                                   const text::Tokenizer& tokenizer)>;

// Runs the job: acquires the model, builds the prompt tokens, generates. A job for the
// router's virtual model is routed: each tier tried is a run of the job on that tier's model
// (or a remote upstream), on_text gets only the kept answer, on_token is not called, and
// JobResult::route says what happened. on_text gets the
// text as it becomes final, on_token (may be empty) each sampled token with its logprobs.
// Returns the stats, or an error whose message starts with "model '...' not found" for
// unknown models.
Result<JobResult> run_job(ModelManager& models, const GenerationJob& job,
                          const std::function<bool(std::string_view)>& on_text,
                          const TokenFn& on_token, const std::atomic<bool>* cancel);

struct EmbedResult {
  std::vector<std::vector<float>> embeddings;
  int prompt_tokens = 0;
  double load_ms = 0;
  double total_ms = 0;
};

// Embeds each input (mean-pooled, L2-normalized final hidden states: Context::embed). An
// input longer than the context is cut to it when `truncate`, else an error.
Result<EmbedResult> run_embed(ModelManager& models, const std::string& model,
                              const std::vector<std::string>& inputs, bool truncate, int num_ctx,
                              std::optional<std::chrono::seconds> keep_alive);

}  // namespace minnow::server
