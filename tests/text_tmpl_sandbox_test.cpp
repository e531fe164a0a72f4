// The sandbox: hostile templates end in a clear error -- never a hang, a stack overflow, runaway
// memory or access to anything outside the values passed in -- and syntax errors name a line
// and column.
#include <gtest/gtest.h>
#include <pthread.h>

#include <chrono>
#include <functional>
#include <string>

#include "text/jinja/template.h"

namespace minnow::text::jinja {
namespace {

Result<std::string> render(const std::string& src, const Limits& limits = Limits(),
                           const Variables& vars = {}) {
  auto t = Template::parse(src, limits);
  if (!t.ok()) return t.status();
  return t->render(vars);
}

void expect_error(const Result<std::string>& r, const std::string& needle) {
  ASSERT_FALSE(r.ok()) << "rendered: " << r.value().substr(0, 200);
  EXPECT_NE(r.error().find(needle), std::string::npos) << r.error();
}

// Runs fn on a thread with a small stack, so that a recursion limit that is too generous shows
// up as a crash here (and under ASan) instead of in a server worker.
void on_small_stack(size_t stack_bytes, const std::function<void()>& fn) {
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, stack_bytes);
  pthread_t th;
  auto* heap_fn = new std::function<void()>(fn);
  ASSERT_EQ(pthread_create(
                &th, &attr,
                [](void* p) -> void* {
                  auto* f = static_cast<std::function<void()>*>(p);
                  (*f)();
                  delete f;
                  return nullptr;
                },
                heap_fn),
            0);
  pthread_join(th, nullptr);
  pthread_attr_destroy(&attr);
}

// With the default limits, render() must be safe on a 1 MiB stack (Limits::max_stack_bytes).
#if defined(__SANITIZE_ADDRESS__)
constexpr size_t kSmallStack = 4u << 20;  // ASan frames are several times larger
#else
constexpr size_t kSmallStack = 1u << 20;
#endif

TEST(TemplateSandbox, InfiniteMacroRecursionIsAnError) {
  on_small_stack(kSmallStack, [] {
    auto r = render("{% macro x() %}{{ x() }}{% endmacro %}{{ x() }}");
    expect_error(r, "macro 'x' nested deeper than the sandbox limit");
    EXPECT_EQ(r.error().rfind("1:", 0), 0u) << r.error();  // located
  });
}

TEST(TemplateSandbox, MutualRecursionThroughCallerIsAnError) {
  on_small_stack(kSmallStack, [] {
    auto r = render(
        "{% macro a(n) %}{{ b(n + 1) }}{% endmacro %}{% macro b(n) %}{{ a(n) ~ n }}{% endmacro %}"
        "{{ a(0) }}");
    expect_error(r, "nested deeper than the sandbox limit");
  });
}

TEST(TemplateSandbox, TwoHundredNestedParenthesesIsAParseError) {
  on_small_stack(kSmallStack, [] {
    const std::string src = "{{ " + std::string(200, '(') + "1" + std::string(200, ')') + " }}";
    auto r = render(src);
    expect_error(r, "nested too deeply");
    EXPECT_EQ(r.error().rfind("1:", 0), 0u) << r.error();
  });
}

TEST(TemplateSandbox, DeepBlockNestingIsAParseError) {
  on_small_stack(kSmallStack, [] {
    std::string src;
    for (int i = 0; i < 300; ++i) src += "{% if true %}";
    for (int i = 0; i < 300; ++i) src += "{% endif %}";
    expect_error(render(src), "nested too deeply");
  });
}

TEST(TemplateSandbox, LongOperatorAndFilterChainsAreBounded) {
  on_small_stack(kSmallStack, [] {
    std::string sum = "{{ 1";
    for (int i = 0; i < 20000; ++i) sum += " + 1";
    expect_error(render(sum + " }}"), "nested too deeply");
    std::string chain = "{{ 'x'";
    for (int i = 0; i < 20000; ++i) chain += "|trim";
    expect_error(render(chain + " }}"), "nested too deeply");
    std::string nots = "{{ ";
    for (int i = 0; i < 20000; ++i) nots += "not ";
    expect_error(render(nots + "1 }}"), "nested too deeply");
    std::string lists = "{{ ";
    for (int i = 0; i < 20000; ++i) lists += "[";
    expect_error(render(lists + "1" + std::string(20000, ']') + " }}"), "nested too deeply");
  });
}

TEST(TemplateSandbox, StackGuardBacksUpTheDepthLimits) {
  // A thread with a small stack lowers max_stack_bytes to match: deep recursion then stops on
  // the stack budget, whatever the frame sizes of this build.
  Limits limits;
  limits.max_stack_bytes = kSmallStack / 8;
  on_small_stack(kSmallStack / 4, [&] {
    auto r = render(
        "{% macro x(n) %}{% for i in [1] %}{% if true %}{{ x(((n + 1))) }}{% endif %}"
        "{% endfor %}{% endmacro %}{{ x(0) }}",
        limits);
    expect_error(r, "bytes of stack");
  });
}

TEST(TemplateSandbox, HugeRangeIsRefused) {
  expect_error(render("{{ range(10**9) | length }}"), "Range too big");
  expect_error(render("{% for i in range(10**9) %}{% endfor %}"), "Range too big");
}

TEST(TemplateSandbox, LoopIterationsAreBounded) {
  Limits limits;  // the default (1M iterations) works the same, only slower under sanitizers
  limits.max_loop_iterations = 50000;
  const auto start = std::chrono::steady_clock::now();
  expect_error(render("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}"
                      "{% endfor %}",
                      limits),
               "loop iterations");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(20));
}

TEST(TemplateSandbox, OutputSizeIsBounded) {
  Limits small;
  small.max_output_bytes = 1 << 20;
  expect_error(render("{% for i in range(100000) %}{{ 'x' * 100 }}{% endfor %}", small),
               "output exceeds the sandbox limit");
  expect_error(render("{{ 'x' * 10**12 }}", small), "exceeds the sandbox limit");
  expect_error(render("{{ [1] * 10**12 }}", small), "exceeds the sandbox limit");
  expect_error(render("{{ 'ab'|center(10**9) }}", small), "exceeds the sandbox limit");
  expect_error(render("{{ '{:>999999999}'.format('x') }}", small), "too large");
}

TEST(TemplateSandbox, RepeatedCopyingIsBoundedByTheStepBudget) {
  // Quadratic growth through a namespace: each step copies the whole string.
  Limits limits;
  limits.max_steps = 2000000;
  const auto start = std::chrono::steady_clock::now();
  expect_error(render("{% set ns = namespace(s='') %}{% for i in range(100000) %}"
                      "{% set ns.s = ns.s ~ 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx' %}{% endfor %}",
                      limits),
               "evaluation steps");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(20));
}

TEST(TemplateSandbox, ValueNestingThroughNamespaceIsBounded) {
  on_small_stack(kSmallStack, [] {
    expect_error(render("{% set ns = namespace(x=[]) %}{% for i in range(100000) %}"
                        "{% set ns.x = [ns.x] %}{% endfor %}{{ ns.x }}"),
                 "nested deeper than the sandbox limit");
  });
}

TEST(TemplateSandbox, NamespaceCyclesDoNotLeak) {
  // LeakSanitizer checks this one: a namespace holding itself and a macro holding its scope.
  auto r = render(
      "{% set ns = namespace() %}{% set ns.self = ns %}{% set ns.l = [ns] %}"
      "{% macro m() %}{{ ns }}{% endmacro %}{% set ns.m = m %}ok");
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(*r, "ok");
}

TEST(TemplateSandbox, AttributeEscapesAreRefused) {
  // jinja2 prints an unsafe attribute as empty and fails as soon as it is used; so do we.
  auto r = render("[{{ ''.__class__ }}][{{ ''.__class__ is defined }}]");
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(*r, "[][False]");
  expect_error(render("{{ ''.__class__.__mro__ }}"), "unsafe");
  expect_error(render("{{ ''.__class__.__mro__[1].__subclasses__() }}"), "unsafe");
  expect_error(render("{{ range.__self__.__dict__ }}"), "unsafe");
  expect_error(render("{{ cycler.__init__.__globals__.os }}"), "unsafe");
  expect_error(render("{{ namespace.__call__() }}"), "unsafe");
  expect_error(render("{{ x.__class__.__name__ }}", Limits(), {{"x", Value::list({})}}), "unsafe");
  expect_error(render("{{ [].append(1) }}"), "unsafe");
  expect_error(render("{{ {}.update({}) }}"), "unsafe");
  expect_error(render("{{ ''|attr('__class__')|attr('__mro__') }}"), "unsafe");
  expect_error(render("{{ lipsum() }}"), "is undefined");
  expect_error(render("{% include '/etc/passwd' %}"), "not supported");
  expect_error(render("{% import 'os' as os %}"), "not supported");
  expect_error(render("{% extends 'base' %}"), "not supported");
}

TEST(TemplateSandbox, ParseErrorsNameLineAndColumn) {
  auto r = render("line1\n{% if x %}\nno end");
  expect_error(r, "never closed");
  EXPECT_EQ(r.error().rfind("2:4:", 0), 0u) << r.error();

  r = render("ok\n  {{ 1 + }}");
  expect_error(r, "unexpected end of print statement");
  EXPECT_EQ(r.error().rfind("2:10:", 0), 0u) << r.error();

  r = render("a\nb\n{% frobnicate %}");
  expect_error(r, "unknown tag 'frobnicate'");
  EXPECT_EQ(r.error().rfind("3:4:", 0), 0u) << r.error();

  r = render("{{ 'abc }}");
  expect_error(r, "unterminated string");
  EXPECT_EQ(r.error().rfind("1:4:", 0), 0u) << r.error();

  r = render("héé {{ (1 + 2 }}");  // columns count code points
  expect_error(r, "unexpected '}'");
  EXPECT_EQ(r.error().rfind("1:15:", 0), 0u) << r.error();

  r = render("x {{ 1|nope }}");
  expect_error(r, "no filter named 'nope'");
  EXPECT_EQ(r.error().rfind("1:8:", 0), 0u) << r.error();
}

TEST(TemplateSandbox, RuntimeErrorsNameLineAndColumn) {
  auto r = render("a\n{% for m in messages %}\n  {{ m.content + 1 }}\n{% endfor %}", Limits(),
                  {{"messages", Value::list({make_dict({{"content", Value("x")}})})}});
  expect_error(r, "can only concatenate str");
  EXPECT_EQ(r.error().rfind("3:16:", 0), 0u) << r.error();
}

TEST(TemplateSandbox, StepBudgetStopsLongRenders) {
  Limits tight;
  tight.max_steps = 10000;
  expect_error(render("{% for i in range(100000) %}{{ i }}{% endfor %}", tight),
               "evaluation steps");
}

}  // namespace
}  // namespace minnow::text::jinja
