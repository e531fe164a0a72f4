#include "text/chat_template.h"

#include <cstdio>
#include <ctime>

namespace minnow::text {

const std::string_view kDefaultChatTemplate =
    "{#- minnow's default chat template (ChatML), used when a GGUF has no "
    "tokenizer.chat_template. -#}\n"
    "{%- for message in messages -%}\n"
    "    {{- '<|im_start|>' + message['role'] + '\\n' -}}\n"
    "    {%- if message['content'] is string -%}\n"
    "        {{- message['content'] -}}\n"
    "    {%- elif message['content'] is iterable -%}\n"
    "        {%- for part in message['content'] if part['type'] == 'text' -%}\n"
    "            {{- part['text'] -}}\n"
    "        {%- endfor -%}\n"
    "    {%- endif -%}\n"
    "    {{- '<|im_end|>\\n' -}}\n"
    "{%- endfor -%}\n"
    "{%- if add_generation_prompt -%}\n"
    "    {{- '<|im_start|>assistant\\n' -}}\n"
    "{%- endif -%}\n";

namespace {

// jinja2.exceptions.TemplateError(message), as transformers' raise_exception raises it.
jinja::Value raise_exception_fn() {
  return jinja::make_function("raise_exception", [](jinja::Args& args) -> Result<jinja::Value> {
    std::string msg = args.pos.empty() ? std::string() : jinja::to_str(args.pos[0]);
    return Status::error("raise_exception: " + msg);
  });
}

// datetime.now().strftime(format), or a pinned instant.
jinja::Value strftime_now_fn(std::optional<std::time_t> fixed) {
  return jinja::make_function("strftime_now", [fixed](jinja::Args& args) -> Result<jinja::Value> {
    if (args.pos.size() != 1 || !args.pos[0].is_string()) {
      return Status::error("strftime_now() takes one format string");
    }
    const std::string& fmt = args.pos[0].as_string();
    if (fmt.empty()) return jinja::Value("");
    const std::time_t t = fixed ? *fixed : std::time(nullptr);
    std::tm tm{};
    localtime_r(&t, &tm);
    for (size_t cap = 64; cap <= (1u << 16); cap *= 2) {
      std::string buf(cap, '\0');
      const size_t n = std::strftime(buf.data(), buf.size(), fmt.c_str(), &tm);
      if (n > 0) {
        buf.resize(n);
        return jinja::Value(std::move(buf));
      }
    }
    return jinja::Value("");  // strftime produced nothing (or would be absurdly long)
  });
}

std::optional<std::string> token_text(const gguf::File& file, std::string_view id_key) {
  const gguf::Value* id = file.find(id_key);
  if (!id) return std::nullopt;
  auto tokens = file.get_array("tokenizer.ggml.tokens", gguf::ValueType::STRING);
  if (!tokens.ok()) return std::nullopt;
  const uint64_t i = id->type == gguf::ValueType::I32 || id->type == gguf::ValueType::I64 ||
                             id->type == gguf::ValueType::I16 || id->type == gguf::ValueType::I8
                         ? static_cast<uint64_t>(id->i64)
                         : id->u64;
  if (i >= (*tokens)->strings.size()) return std::nullopt;
  return std::string((*tokens)->strings[i]);
}

}  // namespace

Result<ChatTemplate> ChatTemplate::from_source(std::string_view source,
                                               std::optional<std::string> bos,
                                               std::optional<std::string> eos,
                                               const ChatTemplateOptions& options) {
  auto t = jinja::Template::parse(source, options.limits);
  if (!t.ok()) return Status::error("chat template does not parse: " + t.error());
  ChatTemplate ct;
  ct.main_ = std::move(*t);
  ct.bos_ = std::move(bos);
  ct.eos_ = std::move(eos);
  ct.fixed_now_ = options.fixed_now;
  return ct;
}

Result<ChatTemplate> ChatTemplate::from_gguf(const gguf::File& file,
                                             const ChatTemplateOptions& options) {
  auto bos = token_text(file, "tokenizer.ggml.bos_token_id");
  auto eos = token_text(file, "tokenizer.ggml.eos_token_id");
  std::string where = file.path() + ": ";
  const gguf::Value* src = file.find("tokenizer.chat_template");
  if (src && src->type != gguf::ValueType::STRING) {
    return Status::error(where + "tokenizer.chat_template is not a string");
  }
  if (!src) {
    auto ct = from_source(kDefaultChatTemplate, bos, eos, options);
    if (!ct.ok()) return ct;
    ct->is_default_ = true;
    ct->warning_ = where + "no tokenizer.chat_template; using the default ChatML template";
    return ct;
  }
  auto ct = from_source(src->str, bos, eos, options);
  if (!ct.ok()) return Status::error(where + ct.error());
  if (const gguf::Value* tool = file.find("tokenizer.chat_template.tool_use");
      tool && tool->type == gguf::ValueType::STRING) {
    auto t = jinja::Template::parse(tool->str, options.limits);
    if (!t.ok()) {
      return Status::error(where + "tokenizer.chat_template.tool_use does not parse: " + t.error());
    }
    ct->tool_use_ = std::move(*t);
  }
  return ct;
}

Result<std::string> ChatTemplate::render(const ChatRequest& request) const {
  jinja::Variables vars;
  vars.reserve(8 + request.extra.size());
  // transformers: render(messages=..., tools=..., documents=..., add_generation_prompt=...,
  // **special_tokens_map, **kwargs) in an environment with raise_exception and strftime_now.
  // (an Undefined field is not passed at all, leaving the name to `extra`)
  if (!request.messages.is_undefined()) vars.emplace_back("messages", request.messages);
  if (!request.tools.is_undefined()) vars.emplace_back("tools", request.tools);
  if (!request.documents.is_undefined()) vars.emplace_back("documents", request.documents);
  vars.emplace_back("add_generation_prompt", jinja::Value(request.add_generation_prompt));
  if (bos_) vars.emplace_back("bos_token", jinja::Value(*bos_));
  if (eos_) vars.emplace_back("eos_token", jinja::Value(*eos_));
  for (const auto& kv : request.extra) vars.push_back(kv);
  vars.emplace_back("raise_exception", raise_exception_fn());
  vars.emplace_back("strftime_now", strftime_now_fn(fixed_now_));
  const bool has_tools = request.tools.is_list() && !request.tools.items().empty();
  const jinja::Template& t = (has_tools && tool_use_) ? *tool_use_ : *main_;
  auto out = t.render(vars);
  if (!out.ok()) return Status::error("chat template: " + out.error());
  return out;
}

}  // namespace minnow::text
