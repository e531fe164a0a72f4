// Ollama-style prompt templates: the subset of Go's text/template that Ollama's TEMPLATE
// (Modelfile directive, `template` field of /api/generate and /api/chat) uses, interpreted by
// our own code (no Go runtime). Supported:
//   text, {{ pipeline }}, {{- / -}} whitespace trimming, {{/* comments */}},
//   if / else if / else / end, range (lists, maps in key order, integers; $i, $e := ...,
//   else, break, continue), with / else with / else, variables ($x := ..., $x = ..., $, $.F),
//   fields (.A.B, $x.A, (pipeline).A), literals (strings, raw strings, chars, numbers, true,
//   false, nil), pipelines with |, parenthesised pipelines, and the functions
//   and or not len index slice printf print println eq ne lt le gt ge json.
// Not supported (a parse error says so): define, template, block, call, html, js, urlquery.
//
// Templates come from requests, so everything is bounded (Limits): the output and any string a
// template builds, the work a render may do (steps, which bound loops, and bytes of strings
// built or compared, which bound loops over large strings), and parse-time nesting
// (which bounds recursion). A bad template is an error naming line:col, never a hang or crash.
//
//   auto t = GoTemplate::parse(source);            // "go template 3:12: unexpected \")\""
//   auto prompt = t->render_ollama(messages, tools_json);  // as Ollama's template.Execute
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "util/status.h"

namespace minnow::text {

namespace gotmpl {
struct Tree;  // the parsed template (go_template.cpp)
}

class GoTemplate {
 public:
  struct Limits {
    size_t max_source_bytes = 1u << 20;
    size_t max_output_bytes = 1u << 20;   // the output, and any one string a template builds
    int64_t max_steps = 2000000;          // nodes executed + loop iterations (a time bound)
    uint64_t max_work_bytes = 64u << 20;  // bytes of strings built or compared (a time bound)
    int max_nesting = 100;                // parse-time nesting of blocks and parentheses
    int max_json_depth = 64;              // nesting of tools / tool_calls JSON
  };

  // One message as Ollama's api.Message exposes it to templates.
  struct Message {
    Message() = default;
    Message(std::string r, std::string c) : role(std::move(r)), content(std::move(c)) {}
    std::string role, content;    // .Role, .Content
    std::string thinking;         // .Thinking
    std::string tool_calls_json;  // .ToolCalls: JSON array of {"function":{"name","arguments"}}
    std::string tool_name;        // .ToolName (role "tool" results)
  };

  // Ollama's template variables. .Tools renders as tools_json when printed, is truthy when
  // non-empty and ranges over the parsed array (each tool's JSON keys are reached by field,
  // case-insensitively: .Function.Name finds "function" / "name").
  struct Data {
    std::string system, prompt, response, suffix;
    std::vector<Message> messages;
    std::string tools_json;    // "" when none
    bool has_messages = true;  // false: .Messages is absent (nil), as in Ollama's legacy mode
  };

  static Result<GoTemplate> parse(std::string_view source);  // default Limits
  static Result<GoTemplate> parse(std::string_view source, const Limits& limits);

  // Plain text/template semantics on `data` (missing fields of the root are nil, printed as
  // "<no value>", as with Ollama's missingkey=zero on a map).
  Result<std::string> render(const Data& data) const;

  // What Ollama's template.Execute does with a chat: consecutive messages of one role are
  // merged ("\n\n"), system messages are also joined into .System; a template that mentions
  // .Messages gets {System, Messages, Tools, Response: ""}. Otherwise (legacy templates) it is
  // rendered once per system/user/assistant turn with {System, Prompt, Response}, the last
  // turn cut after its {{ .Response }}; a template naming neither Messages nor Response gets
  // {{ .Response }} appended. With prompt and suffix both set (fill-in-the-middle) it gets
  // {Prompt, Suffix, Response: ""} only.
  Result<std::string> render_ollama(const std::vector<Message>& messages,
                                    std::string_view tools_json, std::string_view prompt = {},
                                    std::string_view suffix = {}) const;

  // Field and variable names the template mentions, lower-cased (Ollama's Template.Vars).
  bool mentions(std::string_view lower_name) const;
  const std::string& source() const;

 private:
  std::shared_ptr<const gotmpl::Tree> tree_;
};

}  // namespace minnow::text
