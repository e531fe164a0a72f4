#include "engine/chat.h"

namespace minnow::engine {

namespace {

// Gemma's turn format (Gemma 2/3 model cards): a system message is prepended to the first user
// turn; the assistant's role is called "model".
constexpr std::string_view kGemmaTemplate =
    "{{- bos_token -}}"
    "{%- if messages[0]['role'] == 'system' -%}"
    "{%- set first_user_prefix = messages[0]['content'] + '\\n\\n' -%}"
    "{%- set loop_messages = messages[1:] -%}"
    "{%- else -%}"
    "{%- set first_user_prefix = '' -%}"
    "{%- set loop_messages = messages -%}"
    "{%- endif -%}"
    "{%- for message in loop_messages -%}"
    "{%- set role = 'model' if message['role'] == 'assistant' else message['role'] -%}"
    "{{- '<start_of_turn>' + role + '\\n' -}}"
    "{{- (first_user_prefix if loop.first else '') + (message['content'] | trim) -}}"
    "{{- '<end_of_turn>\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<start_of_turn>model\\n' -}}{%- endif -%}";

struct BuiltinTemplate {
  std::string_view arch;
  std::string_view source;
};
constexpr BuiltinTemplate kBuiltins[] = {
    {"gemma3", kGemmaTemplate},
};

}  // namespace

Result<text::ChatTemplate> chat_template_for(const model::Model& model) {
  const gguf::File& file = model.file();
  if (!file.has("tokenizer.chat_template")) {
    for (const BuiltinTemplate& b : kBuiltins) {
      if (b.arch != model.config().arch) continue;
      const text::Tokenizer* tok = model.tokenizer();
      std::optional<std::string> bos, eos;
      if (tok && tok->special().bos != text::kNoToken) {
        bos = std::string(tok->token_text(tok->special().bos));
      }
      if (tok && tok->special().eos != text::kNoToken) {
        eos = std::string(tok->token_text(tok->special().eos));
      }
      return text::ChatTemplate::from_source(b.source, bos, eos);
    }
  }
  return text::ChatTemplate::from_gguf(file);
}

Result<std::string> render_chat(const text::ChatTemplate& tmpl,
                                const std::vector<ChatMessage>& messages,
                                bool add_generation_prompt) {
  std::vector<text::jinja::Value> items;
  items.reserve(messages.size());
  for (const ChatMessage& m : messages) {
    auto dict = std::make_shared<text::jinja::Dict>();
    dict->set(std::string("role"), text::jinja::Value(m.role));
    dict->set(std::string("content"), text::jinja::Value(m.content));
    items.emplace_back(std::shared_ptr<const text::jinja::Dict>(std::move(dict)));
  }
  text::ChatRequest req;
  req.messages = text::jinja::Value::list(std::move(items));
  req.add_generation_prompt = add_generation_prompt;
  return tmpl.render(req);
}

Result<std::vector<int32_t>> tokenize_prompt(const model::Model& model, std::string_view text) {
  const text::Tokenizer* tok = model.tokenizer();
  if (!tok) return Status::error(model.path() + ": the file has no tokenizer");
  bool add_special = true;
  const text::TokenId bos = tok->special().bos;
  if (bos != text::kNoToken && tok->add_bos() && text.starts_with(tok->token_text(bos))) {
    add_special = false;  // the template wrote it
  }
  return tok->tokenize(text, add_special, /*parse_special=*/true);
}

}  // namespace minnow::engine
