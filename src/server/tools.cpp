#include "server/tools.h"

namespace minnow::server {

namespace {

const Json* function_of(const Json& tool, size_t i) {
  if (!tool.is_object()) throw ApiError(400, "tools[" + std::to_string(i) + "] must be an object", "tools");
  const std::string type = tool.value("type", "function");
  if (type != "function")
    throw ApiError(400, "tools[" + std::to_string(i) + "].type must be \"function\"", "tools");
  auto f = tool.find("function");
  if (f == tool.end() || !f->is_object() || !f->contains("name") || !(*f)["name"].is_string() ||
      (*f)["name"].get<std::string>().empty()) {
    throw ApiError(400, "tools[" + std::to_string(i) + "].function.name is required", "tools");
  }
  return &*f;
}

}  // namespace

ToolPlan plan_tools(const Json& body) {
  ToolPlan plan;
  auto it = body.find("tools");
  if (it == body.end() || it->is_null() || (it->is_array() && it->empty())) return plan;
  if (!it->is_array()) throw ApiError(400, "'tools' must be a list", "tools");
  // tool_choice: "auto" (default), "none", "required", or a named function.
  std::string choice = "auto", forced;
  if (auto tc = body.find("tool_choice"); tc != body.end() && !tc->is_null()) {
    if (tc->is_string()) {
      choice = tc->get<std::string>();
      if (choice != "auto" && choice != "none" && choice != "required")
        throw ApiError(400, "'tool_choice' must be auto, none, required or a function",
                       "tool_choice");
    } else if (tc->is_object() && tc->contains("function") && (*tc)["function"].is_object() &&
               (*tc)["function"].contains("name")) {
      choice = "function";
      forced = (*tc)["function"]["name"].get<std::string>();
    } else {
      throw ApiError(400, "'tool_choice' must be auto, none, required or a function",
                     "tool_choice");
    }
  }
  if (choice == "none") return plan;

  Json variants = Json::array();
  std::string listing;
  bool found_forced = forced.empty();
  for (size_t i = 0; i < it->size(); ++i) {
    const Json& f = *function_of((*it)[i], i);
    const std::string name = f["name"].get<std::string>();
    Json params = f.value("parameters", Json::object());
    if (params.is_null() || (params.is_object() && params.empty()))
      params = Json{{"type", "object"}, {"properties", Json::object()}};
    listing += "- " + name;
    if (f.contains("description") && f["description"].is_string())
      listing += ": " + f["description"].get<std::string>();
    listing += "\n  parameters (JSON schema): " + params.dump() + "\n";
    if (!forced.empty() && name != forced) continue;
    found_forced = found_forced || name == forced;
    variants.push_back(Json{{"type", "object"},
                            {"properties", {{"name", {{"const", name}}}, {"arguments", params}}},
                            {"required", {"name", "arguments"}},
                            {"additionalProperties", false}});
  }
  if (!found_forced)
    throw ApiError(400, "'tool_choice' names '" + forced + "', which is not in 'tools'", "tool_choice");
  plan.active = true;
  plan.required = choice != "auto";
  plan.system_prompt =
      "You can call these functions:\n" + listing +
      "To call one, answer with only a JSON object: {\"name\": <function name>, \"arguments\": "
      "<the arguments as a JSON object>}." +
      (plan.required ? std::string(" You must call a function now.")
                     : std::string(" If no function is needed, answer in plain text."));
  const Json schema = variants.size() == 1 ? variants[0] : Json{{"anyOf", variants}};
  std::string gbnf = schema_gbnf(schema, "tools");
  std::string root = "root";
  if (!plan.required) {
    // A text answer, or a call: text never starts with "{" (nor with blanks, so the choice is
    // made at the first character).
    gbnf += "\ntool-or-text ::= root | tool-text\ntool-text ::= [^{ \\t\\n\\r] [^\\x00]*\n";
    root = "tool-or-text";
  }
  auto g = constrain::Grammar::parse(gbnf, root);
  if (!g.ok()) throw ApiError(400, "'tools': " + g.error(), "tools");
  plan.grammar = *g;
  return plan;
}

std::string_view ToolStream::feed(std::string_view piece) {
  if (kind_ == Kind::kText) return piece;
  held_ += piece;
  if (kind_ == Kind::kUndecided) {
    const size_t first = held_.find_first_not_of(" \t\r\n");
    if (first == std::string::npos) return {};
    kind_ = held_[first] == '{' ? Kind::kCall : Kind::kText;
    if (kind_ == Kind::kText) return held_;  // the start held so far, then pieces as they come
  }
  return {};
}

std::optional<ToolCall> parse_tool_call(const std::string& text) {
  const size_t start = text.find_first_not_of(" \t\r\n");
  if (start == std::string::npos || text[start] != '{') return std::nullopt;
  const Json j = Json::parse(text.substr(start), nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("name") || !j["name"].is_string()) return std::nullopt;
  ToolCall call;
  call.name = j["name"].get<std::string>();
  call.arguments = j.value("arguments", Json::object());
  if (!call.arguments.is_object()) return std::nullopt;
  return call;
}

std::string tool_calls_as_text(const Json& tool_calls) {
  std::string out;
  if (!tool_calls.is_array()) return out;
  for (const Json& tc : tool_calls) {
    const Json& f = tc.contains("function") ? tc["function"] : tc;
    Json args = f.value("arguments", Json::object());
    if (args.is_string()) {  // OpenAI sends arguments as a JSON string
      Json parsed = Json::parse(args.get<std::string>(), nullptr, false);
      if (!parsed.is_discarded()) args = parsed;
    }
    if (!out.empty()) out += "\n";
    out += Json{{"name", f.value("name", "")}, {"arguments", args}}.dump();
  }
  return out;
}

}  // namespace minnow::server
