// Chat templates as models ship them: render a conversation (messages, tools, documents,
// add_generation_prompt, bos/eos tokens) into the prompt text the model was trained on, with
// the template in a GGUF's `tokenizer.chat_template`, exactly as Hugging Face transformers'
// apply_chat_template renders it (see jinja/template.h for the interpreter and its sandbox).
//
// When a GGUF carries no template, kDefaultChatTemplate (ChatML) is used and warning() says so:
//   <|im_start|>{role}\n{content}<|im_end|>\n ... [<|im_start|>assistant\n]
//
// JSON stays outside the engine: value_from_json() below converts any nlohmann-style JSON value
// (use nlohmann::ordered_json, which keeps key order as Python's json does) into template
// values; the conversion is a template so this library does not depend on a JSON library.
#pragma once

#include <cstdint>
#include <ctime>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "gguf/gguf.h"
#include "text/jinja/template.h"
#include "text/jinja/value.h"
#include "util/status.h"

namespace minnow::text {

// ChatML, minnow's documented fallback (the same text is
// tests/golden/templates/chatml-default.jinja).
extern const std::string_view kDefaultChatTemplate;

struct ChatRequest {
  jinja::Value messages = jinja::Value::list({});  // list of {role, content, tool_calls, ...}
  jinja::Value tools = jinja::Value::none();       // list of tool schemas, or none
  jinja::Value documents = jinja::Value::none();   // list of documents, or none
  bool add_generation_prompt = false;
  jinja::Variables extra;  // further template variables (enable_thinking, date_string...)
};

struct ChatTemplateOptions {
  jinja::Limits limits;
  // The instant strftime_now() formats (local time); unset means the current time.
  std::optional<std::time_t> fixed_now;
};

class ChatTemplate {
 public:
  // A template from source text and the model's special tokens (an absent token stays
  // undefined in the template, as transformers leaves out tokens a tokenizer lacks).
  static Result<ChatTemplate> from_source(std::string_view source, std::optional<std::string> bos,
                                          std::optional<std::string> eos,
                                          const ChatTemplateOptions& options = {});
  // The GGUF's `tokenizer.chat_template` (and `tokenizer.chat_template.tool_use`, chosen when a
  // request has tools, as transformers does), with bos/eos from the token ids. Without one,
  // kDefaultChatTemplate and a warning.
  static Result<ChatTemplate> from_gguf(const gguf::File& file,
                                        const ChatTemplateOptions& options = {});

  Result<std::string> render(const ChatRequest& request) const;

  bool is_default() const { return is_default_; }
  const std::string& warning() const { return warning_; }  // empty unless something is off
  const std::string& source() const { return main_->source(); }
  const std::optional<std::string>& bos_token() const { return bos_; }
  const std::optional<std::string>& eos_token() const { return eos_; }

 private:
  ChatTemplate() = default;  // only the factories make one
  std::optional<jinja::Template> main_;
  std::optional<jinja::Template> tool_use_;
  std::optional<std::string> bos_;
  std::optional<std::string> eos_;
  std::optional<std::time_t> fixed_now_;
  bool is_default_ = false;
  std::string warning_;
};

// ---- JSON adapter (header-only, any nlohmann::basic_json) ----

constexpr int kMaxJsonNesting = 128;

template <class Json>
Result<jinja::Value> value_from_json(const Json& j, int depth = 0) {
  if (depth > kMaxJsonNesting) {
    return Status::error("JSON nested deeper than " + std::to_string(kMaxJsonNesting) + " levels");
  }
  if (j.is_null()) return jinja::Value::none();
  if (j.is_boolean()) return jinja::Value(j.template get<bool>());
  if (j.is_number_unsigned()) {
    const auto u = j.template get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return jinja::Value(static_cast<double>(u));
    }
    return jinja::Value(static_cast<int64_t>(u));
  }
  if (j.is_number_integer()) return jinja::Value(j.template get<int64_t>());
  if (j.is_number_float()) return jinja::Value(j.template get<double>());
  if (j.is_string()) return jinja::Value(j.template get<std::string>());
  if (j.is_array()) {
    std::vector<jinja::Value> items;
    items.reserve(j.size());
    for (const auto& e : j) {
      auto v = value_from_json(e, depth + 1);
      if (!v.ok()) return v;
      items.push_back(std::move(*v));
    }
    return jinja::Value::list(std::move(items));
  }
  if (j.is_object()) {
    std::vector<std::pair<std::string, jinja::Value>> entries;
    for (auto it = j.begin(); it != j.end(); ++it) {
      auto v = value_from_json(it.value(), depth + 1);
      if (!v.ok()) return v;
      entries.emplace_back(it.key(), std::move(*v));
    }
    return jinja::make_dict(std::move(entries));
  }
  return Status::error("unsupported JSON value");
}

}  // namespace minnow::text
