// Ollama's Modelfile: FROM, PARAMETER, TEMPLATE, SYSTEM, MESSAGE, LICENSE (ADAPTER is reserved
// for LoRA adapters and refused). Instructions are case-insensitive, `#` starts a comment line,
// values may be "quoted" (\" and \\ escapes) or """triple-quoted""" across lines. Parameters
// are checked by name and type as Ollama does: an unknown name or a value of the wrong type is
// an error naming the line.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "util/status.h"

namespace minnow::store {

struct Message {
  std::string role;  // system, user, assistant
  std::string content;
  bool operator==(const Message&) const = default;
};

// name -> values, as text. Every parameter has one value except `stop`, which may repeat.
using Parameters = std::map<std::string, std::vector<std::string>>;

struct Modelfile {
  std::string from;  // a model name or a GGUF path (relative paths: to the Modelfile's folder)
  Parameters parameters;
  std::optional<std::string> template_text;
  std::optional<std::string> system;
  std::vector<Message> messages;
  std::vector<std::string> licenses;
};

Result<Modelfile> parse_modelfile(std::string_view text);

enum class ParamType { kFloat, kInt, kStringList };
// The type of a parameter Ollama knows, or an error listing the known ones.
Result<ParamType> parameter_type(std::string_view name);
// Checks `value` as the parameter `name` takes it (a number, an integer, in range) and returns
// it normalised (trimmed).
Result<std::string> check_parameter(std::string_view name, std::string_view value);
// Adds one value: `stop` accumulates, others replace.
Status add_parameter(Parameters& params, std::string_view name, std::string_view value);

// A Modelfile that parses back to the same model (FROM as given).
std::string render_modelfile(const std::string& from, const Parameters& params,
                             const std::string& template_text, const std::string& system,
                             const std::vector<Message>& messages,
                             const std::vector<std::string>& licenses);
// `minnow show --parameters` / /api/show "parameters": "name   value" lines.
std::string render_parameters(const Parameters& params);

}  // namespace minnow::store
