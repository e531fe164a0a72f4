// `minnow template MODEL --messages FILE.json [--add-generation-prompt] [--tools FILE.json]`:
// prints the prompt the model's chat template renders for a conversation, exactly as Hugging
// Face's apply_chat_template would (no trailing newline is added).
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "gguf/gguf.h"
#include "store/registry.h"
#include "text/chat_template.h"

namespace minnow::cli {
namespace {

using Json = nlohmann::ordered_json;  // keeps key order, as Python's json does

std::string read_all(const std::string& path) {
  if (path == "-") {
    return std::string(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  }
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot read " + path);
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

Json read_json(const std::string& path) {
  try {
    return Json::parse(read_all(path));
  } catch (const Json::parse_error& e) {
    throw std::runtime_error(path + ": invalid JSON: " + e.what());
  }
}

text::jinja::Value to_value(const Json& j, const std::string& what) {
  auto v = text::value_from_json(j);
  if (!v) throw std::runtime_error(what + ": " + v.error());
  return std::move(*v);
}

}  // namespace

void register_template(CLI::App& app) {
  struct Args {
    std::string model;
    std::string messages;
    std::string tools;
    std::string documents;
    std::string template_file;
    std::vector<std::string> vars;
    bool add_generation_prompt = false;
  };
  auto args = std::make_shared<Args>();
  auto* cmd =
      app.add_subcommand("template", "Render a conversation with the model's chat template");
  cmd->add_option("model", args->model,
                  "model name (" + store::known_model_names() + ") or path to a .gguf file")
      ->required();
  cmd->add_option("--messages", args->messages,
                  "JSON file ('-' for stdin): a list of messages, or an object with \"messages\" "
                  "(and optionally \"tools\", \"documents\")")
      ->required();
  cmd->add_flag("--add-generation-prompt", args->add_generation_prompt,
                "end with the header of the assistant's next turn");
  cmd->add_option("--tools", args->tools, "JSON file with a list of tool definitions");
  cmd->add_option("--documents", args->documents, "JSON file with a list of documents");
  cmd->add_option("--template", args->template_file,
                  "render with this template file instead of the model's");
  cmd->add_option("--var", args->vars,
                  "extra template variable NAME=JSON (e.g. enable_thinking=false); repeatable");
  cmd->callback([args] {
    auto resolved = store::resolve_model(args->model);
    if (!resolved) throw std::runtime_error(resolved.error());
    auto file = gguf::File::open(resolved->path);
    if (!file) throw std::runtime_error(file.error());
    auto tmpl = text::ChatTemplate::from_gguf(**file);
    if (!tmpl) throw std::runtime_error(tmpl.error());
    if (!args->template_file.empty()) {
      tmpl = text::ChatTemplate::from_source(read_all(args->template_file), tmpl->bos_token(),
                                             tmpl->eos_token());
      if (!tmpl) throw std::runtime_error(args->template_file + ": " + tmpl.error());
    } else if (!tmpl->warning().empty()) {
      std::fprintf(stderr, "minnow: warning: %s\n", tmpl->warning().c_str());
    }

    text::ChatRequest req;
    req.add_generation_prompt = args->add_generation_prompt;
    const Json messages = read_json(args->messages);
    if (messages.is_object()) {  // an OpenAI-style request body
      if (!messages.contains("messages")) {
        throw std::runtime_error(args->messages + ": no \"messages\" list");
      }
      req.messages = to_value(messages["messages"], args->messages);
      if (messages.contains("tools")) req.tools = to_value(messages["tools"], args->messages);
      if (messages.contains("documents")) {
        req.documents = to_value(messages["documents"], args->messages);
      }
    } else {
      req.messages = to_value(messages, args->messages);
    }
    if (!req.messages.is_list())
      throw std::runtime_error(args->messages + ": messages must be a list");
    if (!args->tools.empty()) req.tools = to_value(read_json(args->tools), args->tools);
    if (!args->documents.empty()) {
      req.documents = to_value(read_json(args->documents), args->documents);
    }
    for (const std::string& kv : args->vars) {
      const size_t eq = kv.find('=');
      if (eq == std::string::npos || eq == 0) {
        throw std::runtime_error("--var expects NAME=JSON, got '" + kv + "'");
      }
      Json value;
      try {
        value = Json::parse(kv.substr(eq + 1));
      } catch (const Json::parse_error&) {
        value = kv.substr(eq + 1);  // a bare word is a string
      }
      req.extra.emplace_back(kv.substr(0, eq), to_value(value, "--var " + kv.substr(0, eq)));
    }

    auto out = tmpl->render(req);
    if (!out) throw std::runtime_error(out.error());
    std::fwrite(out->data(), 1, out->size(), stdout);
  });
}

}  // namespace minnow::cli
