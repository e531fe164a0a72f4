// A sandboxed interpreter for the Jinja subset that chat templates use, rendering as jinja2
// does in Hugging Face transformers' apply_chat_template (ImmutableSandboxedEnvironment with
// trim_blocks, lstrip_blocks and the loopcontrols extension).
//
// Sandboxed: templates cannot reach files, the OS or interpreter internals (attributes starting
// with "__" and mutating list/dict methods are refused, as jinja2's sandbox refuses them), and
// every resource a template can consume is bounded by Limits, so a hostile template ends in an
// error naming the limit instead of hanging, exhausting memory or overflowing the stack.
//
//   auto t = jinja::Template::parse(source);
//   if (!t) ...;                       // "3:17: unexpected '}'"
//   auto out = t->render({{"messages", msgs}, {"add_generation_prompt", true}});
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "text/jinja/ast.h"
#include "text/jinja/value.h"
#include "util/status.h"

namespace minnow::text::jinja {

#if defined(__SANITIZE_ADDRESS__)
inline constexpr size_t kStackScale = 4;  // sanitizer frames are several times larger
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
inline constexpr size_t kStackScale = 4;
#else
inline constexpr size_t kStackScale = 1;
#endif
#else
inline constexpr size_t kStackScale = 1;
#endif

struct Limits {
  size_t max_output_bytes = 32u << 20;    // any one rendered string (output, macro result...)
  size_t max_items = 1u << 20;            // elements one operation may build (list * n, ...)
  int64_t max_range = 100000;             // range() length, as jinja2's sandbox MAX_RANGE
  int64_t max_loop_iterations = 1000000;  // for-loop iterations over the whole render
  int64_t max_steps = 20000000;           // evaluated nodes over the whole render (a time bound)
  int max_depth = 400;                    // evaluation recursion (expressions, blocks, calls)
  int max_call_depth = 100;               // nested macro calls
  int max_nesting = 100;                  // parse-time nesting of blocks and expressions
  uint32_t max_value_depth = 128;         // list/dict nesting a namespace may store
  // Stack the evaluator may use below render()'s frame: a backstop under the depth limits, so
  // render() is safe on any thread with 1 MiB of stack (4 MiB in sanitizer builds). The other
  // limits alone stay within about 500 KiB in a release build.
  size_t max_stack_bytes = (512u << 10) * kStackScale;
};

// A host function callable from templates (raise_exception, strftime_now...).
using NativeFn = std::function<Result<Value>(Args& args)>;
Value make_function(std::string name, NativeFn fn);

using Variables = std::vector<std::pair<std::string, Value>>;

class Template {
 public:
  // Parses `source` (newlines normalized; one trailing newline dropped, as jinja2 does).
  // Errors read "LINE:COLUMN: message".
  static Result<Template> parse(std::string_view source, const Limits& limits = Limits());

  // Renders with `vars` as the template's globals. Errors read "LINE:COLUMN: message" with the
  // position of the innermost expression or tag that failed.
  Result<std::string> render(const Variables& vars) const;

  const std::string& source() const { return impl_->source; }
  const Limits& limits() const { return impl_->limits; }

 private:
  Template() = default;  // only parse() makes one

  struct Impl {
    std::string source;  // normalized
    Body body;
    Limits limits;
  };
  std::shared_ptr<const Impl> impl_;
};

}  // namespace minnow::text::jinja
