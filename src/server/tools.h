// Tool calling for both APIs. A request's tools (OpenAI and Ollama share the shape
// [{"type": "function", "function": {"name", "description", "parameters"}}]) become:
//   - a system message that lists them and the call format, added to the conversation the
//     model's own chat template renders (ChatML-style templates of small models carry no tool
//     syntax of their own; one convention for every model keeps the parser simple);
//   - a constraint: the call is generated under a grammar compiled from the tools' JSON
//     schemas, {"name": <one of the names>, "arguments": <that tool's parameters>}, so it always
//     parses with valid arguments. tool_choice "auto" lets the model answer in text instead (a
//     text answer cannot start with "{"), "required" forces a call, {"type": "function",
//     "function": {"name": N}} forces that tool, "none" leaves the tools out;
//   - a parser of the output into the call (name, arguments) for tool_calls.
// Earlier calls and their results come back as assistant messages with tool_calls (rendered
// as the call's JSON) and role "tool" messages.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "server/api_common.h"

namespace minnow::server {

struct ToolPlan {
  bool active = false;          // tools given and tool_choice is not "none"
  bool required = false;        // the answer must be a call
  std::string system_prompt;    // describes the tools; prepended as a system message
  std::shared_ptr<const constrain::Grammar> grammar;
};

// ApiError 400 naming the field when the tools or tool_choice are malformed or a tool's
// parameters use a schema feature the constraint cannot honour.
ToolPlan plan_tools(const Json& body);

struct ToolCall {
  std::string name;
  Json arguments;  // an object
};

// The call in a generated answer, or nullopt when the answer is text.
std::optional<ToolCall> parse_tool_call(const std::string& text);

// Streaming with tools: the first characters decide what the answer is. "{" starts a call,
// held back whole (it is sent as one tool_calls message at the end); anything else is text,
// passed on as it comes.
class ToolStream {
 public:
  explicit ToolStream(bool tools) : kind_(tools ? Kind::kUndecided : Kind::kText) {}
  // The text to send now for this piece (possibly empty, possibly the held start).
  std::string_view feed(std::string_view piece);
  // After the answer: the held call text, if the answer was one (else empty).
  const std::string& held_call() const { return kind_ == Kind::kText ? empty_ : held_; }

 private:
  enum class Kind { kUndecided, kText, kCall } kind_;
  std::string held_;
  std::string empty_;
};

// An assistant message's tool_calls (either API's shape) as the text the model would have
// written for them, so a conversation can carry earlier calls back to the model.
std::string tool_calls_as_text(const Json& tool_calls);

}  // namespace minnow::server
