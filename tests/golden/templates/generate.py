#!/usr/bin/env python3
"""Regenerates the chat-template goldens that tests/text_tmpl_golden_test.cpp checks.

The reference is Python jinja2 (from PyPI) set up exactly as Hugging Face transformers'
apply_chat_template sets it up: ImmutableSandboxedEnvironment(trim_blocks=True,
lstrip_blocks=True, extensions=[AssistantTracker, loopcontrols]) with its own `tojson` filter
(json.dumps, ensure_ascii=False, indent/separators/sort_keys), `raise_exception` and
`strftime_now` globals. strftime_now is pinned to FIXED_NOW so the goldens are reproducible;
the C++ test pins the same instant.

Outputs (next to this script):
  chat_expected.json      every template x every conversation x add_generation_prompt
  features_expected.json  small templates exercising single interpreter features
  embedded/*.jinja        the templates embedded in the two real GGUF models (when present)

Usage:  pip install jinja2==3.1.6 gguf && python3 tests/golden/templates/generate.py
        (MINNOW_CACHE selects the model folder; default ~/.cache/minnow/models)
"""

import datetime
import json
import os
import sys
from pathlib import Path

import jinja2
from jinja2.ext import Extension, loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

HERE = Path(__file__).resolve().parent
FIXED_NOW = datetime.datetime(2024, 7, 26, 9, 30, 0)


# ---- the Hugging Face environment -------------------------------------------------------------

class AssistantTracker(Extension):
    """transformers' {% generation %} tag: renders its body through a caller block."""

    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        call = self.call_method("_generation_support")
        return jinja2.nodes.CallBlock(call, [], [], body).set_lineno(lineno)

    def _generation_support(self, caller):
        return caller()


def make_env():
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                          sort_keys=sort_keys)

    def strftime_now(format):
        return FIXED_NOW.strftime(format)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[AssistantTracker, loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


ENV = make_env()


def render(source, variables):
    """{"output": text} or {"error": {"type", "message"}} as transformers would see it."""
    try:
        template = ENV.from_string(source)
    except Exception as e:  # noqa: BLE001 - every failure is a golden
        return {"error": {"type": type(e).__name__, "message": str(e), "phase": "parse"}}
    try:
        return {"output": template.render(**variables)}
    except Exception as e:  # noqa: BLE001
        return {"error": {"type": type(e).__name__, "message": str(e), "phase": "render"}}


# ---- conversations ----------------------------------------------------------------------------

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_current_weather",
        "description": "Get the current weather in a given location",
        "parameters": {
            "type": "object",
            "properties": {
                "location": {"type": "string",
                             "description": "The city and country, e.g. Paris, France"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"],
                         "description": "The temperature unit"},
            },
            "required": ["location"],
        },
    },
}
TIME_TOOL = {
    "type": "function",
    "function": {
        "name": "get_time",
        "description": "Current local time for an IANA time zone. Returns “HH:MM”.",
        "parameters": {
            "type": "object",
            "properties": {"tz": {"type": "string", "description": "e.g. Europe/Paris"},
                           "precise": {"type": "boolean", "default": False},
                           "offset": {"type": "number", "minimum": -12.5}},
            "required": ["tz"],
        },
    },
}

SYSTEM = "You are a helpful assistant."

CONVERSATIONS = {
    "single_user": {"messages": [{"role": "user", "content": "Hello!"}]},
    "system_user": {"messages": [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "What is the capital of France?"}]},
    "multi_turn": {"messages": [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "Hi, who are you?"},
        {"role": "assistant", "content": "I am an assistant. How can I help?"},
        {"role": "user", "content": "Give me a number between 1 and 10."},
        {"role": "assistant", "content": "7"},
        {"role": "user", "content": "Another one, please."}]},
    "no_system_multi_turn": {"messages": [
        {"role": "user", "content": "Translate 'cat' to French."},
        {"role": "assistant", "content": "chat"},
        {"role": "user", "content": "And to German?"}]},
    "whitespace_unicode": {"messages": [
        {"role": "system", "content": "  Tu es un assistant 🤖 — réponds brièvement.  \n"},
        {"role": "user", "content": "Ünïcödé: 日本語, emoji 👍🏽 and ZWJ 👩‍👩‍👧, quotes \"double\" "
                                    "'single', a tab\tand\nnew lines\n\n"},
        {"role": "assistant", "content": "   I am an assistant   "},
        {"role": "user", "content": "¿Qué tal? {{ not a template }} {% neither %} <|im_end|>"}]},
    "tool_call_roundtrip": {
        "tools": [WEATHER_TOOL, TIME_TOOL],
        "messages": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": "What's the weather like in Paris?"},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_0001", "type": "function",
                 "function": {"name": "get_current_weather",
                              "arguments": {"location": "Paris, France", "unit": "celsius"}}}]},
            {"role": "tool", "tool_call_id": "call_0001", "name": "get_current_weather",
             "content": "{\"temperature\": 22, \"condition\": \"sunny\"}"},
            {"role": "assistant", "content": "It is 22 °C and sunny in Paris."}]},
    "tool_call_string_args": {
        "tools": [WEATHER_TOOL],
        "messages": [
            {"role": "user", "content": "Weather in Tokyo, in fahrenheit?"},
            {"role": "assistant", "content": "", "tool_calls": [
                {"id": "call_0002", "type": "function",
                 "function": {"name": "get_current_weather",
                              "arguments": "{\"location\": \"Tokyo, Japan\", \"unit\": \"fahrenheit\"}"}}]},
            {"role": "tool", "tool_call_id": "call_0002", "content": "75"}]},
    "parallel_tool_calls": {
        "tools": [WEATHER_TOOL, TIME_TOOL],
        "messages": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": "Weather and time in Berlin?"},
            {"role": "assistant", "content": "Let me check both.", "tool_calls": [
                {"id": "call_a", "type": "function",
                 "function": {"name": "get_current_weather", "arguments": {"location": "Berlin"}}},
                {"id": "call_b", "type": "function",
                 "function": {"name": "get_time", "arguments": {"tz": "Europe/Berlin",
                                                                "precise": True, "offset": 1.5}}}]},
            {"role": "tool", "tool_call_id": "call_a", "name": "get_current_weather",
             "content": "{\"temperature\": 18}"},
            {"role": "tool", "tool_call_id": "call_b", "name": "get_time", "content": "14:05"},
            {"role": "assistant", "content": "18 °C, and it is 14:05."},
            {"role": "user", "content": "Thanks!"}]},
    "tools_available": {
        "tools": [WEATHER_TOOL, TIME_TOOL],
        "messages": [{"role": "system", "content": SYSTEM},
                     {"role": "user", "content": "What time is it in Lima?"}]},
    "tools_no_system": {
        "tools": [TIME_TOOL],
        "messages": [{"role": "user", "content": "Time in Sydney?"}]},
    "content_parts": {"messages": [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": [{"type": "text", "text": "Describe these two things. "},
                                     {"type": "text", "text": "Briefly."}]}]},
    "documents": {
        "documents": [{"title": "Minnows", "text": "Minnows are small freshwater fish."},
                      {"title": "Carp", "text": "Carp are larger."}],
        "messages": [{"role": "system", "content": SYSTEM},
                     {"role": "user", "content": "How big are minnows?"}]},
    "roles_not_alternating": {"messages": [
        {"role": "user", "content": "First."},
        {"role": "user", "content": "Second, without an answer in between."}]},
    "assistant_first": {"messages": [
        {"role": "assistant", "content": "Hello, I start."},
        {"role": "user", "content": "OK."}]},
    "empty": {"messages": []},
}

# ---- templates ----------------------------------------------------------------------------------

# Special tokens as each model's tokenizer_config.json declares them (absent ones are not passed,
# as transformers only passes the special tokens a tokenizer has).
LLAMA3 = {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"}
MISTRAL = {"bos_token": "<s>", "eos_token": "</s>"}
GEMMA = {"bos_token": "<bos>", "eos_token": "<eos>"}
CHATML = {"bos_token": "<|im_start|>", "eos_token": "<|im_end|>"}

# The templates issue 3 names; every conversation is rendered for these.
REQUIRED = {
    "meta-llama-Llama-3.1-8B-Instruct": LLAMA3,
    "meta-llama-Llama-3.2-3B-Instruct": LLAMA3,
    "meta-llama-Llama-3.3-70B-Instruct": LLAMA3,
    "Qwen-Qwen2.5-7B-Instruct": {"eos_token": "<|im_end|>"},
    "microsoft-Phi-3.5-mini-instruct": {"bos_token": "<s>", "eos_token": "<|endoftext|>"},
    "microsoft-phi-4": {"bos_token": "<|endoftext|>", "eos_token": "<|im_end|>"},
    "microsoft-Phi-4-mini-instruct": {"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>"},
    "mistralai-Mistral-Nemo-Instruct-2407": MISTRAL,
    "Mistral-Small-3.2-24B-Instruct-2506": MISTRAL,
    "google-gemma-2-2b-it": GEMMA,
    "google-gemma-3-4b-it": GEMMA,
}
EXTENDED_TOKENS = {
    "deepseek-ai-DeepSeek-R1-Distill-Llama-8B": {"bos_token": "<｜begin▁of▁sentence｜>",
                                                 "eos_token": "<｜end▁of▁sentence｜>"},
    "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B": {"bos_token": "<｜begin▁of▁sentence｜>",
                                                 "eos_token": "<｜end▁of▁sentence｜>"},
    "deepseek-ai-DeepSeek-V3.1": {"bos_token": "<｜begin▁of▁sentence｜>",
                                  "eos_token": "<｜end▁of▁sentence｜>"},
    "fireworks-ai-llama-3-firefunction-v2": LLAMA3,
    "NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use": CHATML,
    "NousResearch-Hermes-3-Llama-3.1-8B-tool_use": CHATML,
    "CohereForAI-c4ai-command-r-plus-tool_use": {"bos_token": "<BOS_TOKEN>",
                                                 "eos_token": "<|END_OF_TURN_TOKEN|>"},
    "CohereForAI-c4ai-command-r7b-12-2024-tool_use": {"bos_token": "<BOS_TOKEN>",
                                                      "eos_token": "<|END_OF_TURN_TOKEN|>"},
    "unsloth-mistral-Devstral-Small-2507": MISTRAL,
    "mistralai-Ministral-3-14B-Reasoning-2512": MISTRAL,
}
DEFAULT_EXTENDED = {"bos_token": "<s>", "eos_token": "</s>"}
# The extended set (every other template shipped with llama.cpp's sources) is rendered over
# these conversations only, to keep the golden file small.
EXTENDED_CONVERSATIONS = ["system_user", "multi_turn", "tool_call_roundtrip", "tools_available",
                          "whitespace_unicode"]


def read_gguf_template(path):
    """(template or None, bos token text, eos token text) from a GGUF file."""
    import gguf  # noqa: PLC0415 - only needed when the models are present
    reader = gguf.GGUFReader(str(path))

    def field_str(f, i=0):
        return bytes(f.parts[f.data[i]]).decode("utf-8")

    fields = reader.fields
    tokens = fields["tokenizer.ggml.tokens"]

    def token(key):
        f = fields.get(key)
        return field_str(tokens, int(f.parts[f.data[0]][0])) if f else None

    tmpl = fields.get("tokenizer.chat_template")
    return (field_str(tmpl) if tmpl else None, token("tokenizer.ggml.bos_token_id"),
            token("tokenizer.ggml.eos_token_id"))


def collect_templates():
    """name -> {"file", "set", special tokens}."""
    templates = {}
    for name, tokens in REQUIRED.items():
        templates[name] = {"file": f"published/{name}.jinja", "set": "required", **tokens}
    for path in sorted((HERE / "published").glob("*.jinja")):
        name = path.stem
        if name in templates:
            continue
        tokens = EXTENDED_TOKENS.get(name, DEFAULT_EXTENDED)
        templates[name] = {"file": f"published/{path.name}", "set": "extended", **tokens}
    templates["chatml-default"] = {"file": "chatml-default.jinja", "set": "required",
                                   "bos_token": "<bos>", "eos_token": "<eos>"}

    cache = Path(os.environ.get("MINNOW_CACHE", Path.home() / ".cache/minnow/models"))
    (HERE / "embedded").mkdir(exist_ok=True)
    for model in ["SmolLM2-135M-Instruct.Q4_1.gguf", "gemma-3-270m-q4_k_m.gguf"]:
        path = cache / model
        stem = model.split(".")[0]
        out = HERE / "embedded" / f"{stem}.jinja"
        if path.exists():
            tmpl, bos, eos = read_gguf_template(path)
            if tmpl is None:
                print(f"{model}: no tokenizer.chat_template (minnow falls back to ChatML)")
                out.unlink(missing_ok=True)
                continue
            out.write_text(tmpl, encoding="utf-8")
            (HERE / "embedded" / f"{stem}.tokens.json").write_text(
                json.dumps({"bos_token": bos, "eos_token": eos}, ensure_ascii=False) + "\n",
                encoding="utf-8")
        elif not out.exists():
            print(f"warning: {path} not found; keeping no embedded template for it", file=sys.stderr)
            continue
        tokens = json.loads((HERE / "embedded" / f"{stem}.tokens.json").read_text(encoding="utf-8"))
        templates[f"{stem} (embedded)"] = {"file": f"embedded/{stem}.jinja", "set": "required",
                                           **{k: v for k, v in tokens.items() if v is not None}}
    return templates


def chat_goldens():
    templates = collect_templates()
    cases = []
    for name, info in templates.items():
        source = (HERE / info["file"]).read_text(encoding="utf-8")
        convs = CONVERSATIONS if info["set"] == "required" else EXTENDED_CONVERSATIONS
        for conv_name in convs:
            conv = CONVERSATIONS[conv_name]
            for agp in (False, True):
                variables = {"messages": conv["messages"], "tools": conv.get("tools"),
                             "documents": conv.get("documents"), "add_generation_prompt": agp}
                variables.update({k: info[k] for k in ("bos_token", "eos_token") if k in info})
                result = render(source, variables)
                cases.append({"template": name, "conversation": conv_name,
                              "add_generation_prompt": agp, **result})
    return {"generator": f"jinja2 {jinja2.__version__}, Python {sys.version.split()[0]}",
            "strftime_now": FIXED_NOW.isoformat(), "templates": templates,
            "conversations": CONVERSATIONS, "cases": cases}


# ---- single features ----------------------------------------------------------------------------

# (name, template, variables). Each is rendered by jinja2 and must render identically in minnow
# (or fail when jinja2 fails).
FEATURES = [
    # whitespace control: trim_blocks, lstrip_blocks, -/+ markers, comments, raw
    ("trim_blocks", "{% if true %}\nA\n{% endif %}\nB", {}),
    ("lstrip_blocks", "x\n    {% if true %}\n    y\n    {% endif %}\nz", {}),
    ("lstrip_not_vars", "a\n    {{ 1 }}\n", {}),
    ("minus_markers", "a   {%- if true -%}   b   {%- endif -%}   c", {}),
    ("plus_markers", "a\n  {%+ if true +%}\nb\n{% endif %}", {}),
    ("var_minus", "a  {{- 'x' -}}  b", {}),
    ("comment_ws", "a\n  {# note #}\nb {#- x -#} c", {}),
    ("raw_block", "{% raw %}{{ not evaluated }}{% endraw %}!", {}),
    ("raw_strip", "a  {%- raw -%}  {{x}}  {%- endraw -%}  b", {}),
    ("trailing_newline", "line\n", {}),
    ("crlf", "a\r\n{% if true %}\r\nb\r\n{% endif %}\r\nc\r\n", {}),
    ("tab_lstrip", "\t\t{% if true %}x{% endif %}", {}),
    ("unicode_ws_lstrip", "a\n\u00a0\u2003{% if true %}b{% endif %}", {}),
    # literals and operators
    ("ints_floats", "{{ 1 }} {{ 1.5 }} {{ 1e3 }} {{ 2.5e-3 }} {{ 1_000 }} {{ 0x1F }} {{ 0b101 }} {{ 0o17 }}", {}),
    ("float_repr", "{{ [0.1 + 0.2, 1e16, 1.5e16, 1e15, 0.0001, 0.00001, -0.0, 1/3, 2/1, 100.0] }}", {}),
    ("arith", "{{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 7 / 2 }} {{ 2 ** 10 }} {{ -2 ** 2 }} {{ 2 ** 3 ** 2 }}", {}),
    ("float_ops", "{{ 7.5 // 2 }} {{ -7.5 % 2 }} {{ 1.5 * 2 }} {{ 3 - 0.5 }} {{ 2 ** -1 }}", {}),
    ("precedence", "{{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ 'a' ~ 1 ~ 2 }} {{ not 1 == 2 }} {{ -1|abs }} {{ 2 * -1 }}", {}),
    ("concat_binds_tighter_error", "{{ 1 + 2 ~ 3 }}", {}),
    ("concat_plus_error", "{{ 'a' ~ 1 + 2 }}", {}),
    ("str_mul", "{{ 'ab' * 3 }} {{ 3 * 'x' }} {{ [1, 2] * 2 }} {{ 'a' * 0 }} {{ 'a' * -1 }}", {}),
    ("list_add", "{{ [1] + [2, 3] }} {{ 'a' + 'b' }}", {}),
    ("str_plus_int", "{{ 'a' + 1 }}", {}),
    ("div_zero", "{{ 1 / 0 }}", {}),
    ("mod_zero", "{{ 1 % 0 }}", {}),
    ("string_escapes", r"""{{ 'a\nb\tc\\d\'e' }} {{ "x\"y" }} {{ '\x41\u00e9\U0001F600' }} {{ 'a' 'b' }} {{ '\q' }}""", {}),
    ("compare_chain", "{{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }} {{ 1 == 1.0 }} {{ true == 1 }} {{ 'a' < 'b' }} {{ [1, 2] < [1, 3] }}", {}),
    ("compare_types_error", "{{ 1 < 'a' }}", {}),
    ("in_ops", "{{ 'ab' in 'xaby' }} {{ 2 in [1, 2] }} {{ 'k' in {'k': 1} }} {{ 3 not in [1] }} {{ not 3 in [1] }}", {}),
    ("in_none_error", "{{ 'a' in none }}", {}),
    ("and_or_values", "{{ 0 or 'x' }} {{ 'a' and 'b' }} {{ none or [] }} {{ '' and 1 }}", {}),
    ("cond_expr", "{{ 'yes' if true else 'no' }} {{ 'yes' if 0 else 'no' }} [{{ 'x' if false }}] {{ 1 if none else 2 if true else 3 }}", {}),
    ("tuples", "{{ (1,) }} {{ () }} {{ (1, 2) }} {{ (1, 2) == [1, 2] }} {{ 1, 2 }}", {}),
    ("dict_literal", "{{ {'a': 1, 'b': [1, 'x'], 1: none} }} {{ {} }} {{ {'a': 1} == {'a': 1.0} }}", {}),
    ("repr_strings", "{{ ['it\\'s', 'say \"hi\"', 'both \\' \"', 'tab\\t', 'é', '\\x7f'] }}", {}),
    ("bool_none_print", "{{ true }} {{ false }} {{ none }} {{ True }} {{ None }}", {}),
    # variables, scoping
    ("set_basic", "{% set x = 1 %}{% set y, z = 2, 3 %}{{ x }}{{ y }}{{ z }}{% set t = 4, 5 %}{{ t }}", {}),
    ("set_block", "{% set x %}  hi {{ 1 }}{% endset %}[{{ x }}]{% set y | trim | upper %}  hi {% endset %}[{{ y }}]", {}),
    ("loop_scope", "{% set x = 'o' %}{% for i in [1, 2] %}[{{ x }}]{% set x = i %}[{{ x }}]{% endfor %}{{ x }}", {}),
    ("loop_scope_if", "{% for i in [1,2,3] %}{% if i == 1 %}{% set x = 'a' %}{% endif %}[{{ x }}]{% endfor %}[{{ x }}]", {}),
    ("if_scope_leaks", "{% if true %}{% set x = 5 %}{% endif %}{{ x }}", {}),
    ("namespace", "{% set ns = namespace(a=1, b='x') %}{% for i in [1, 2] %}{% set ns.a = ns.a + i %}{% endfor %}{{ ns.a }} {{ ns.b }} {{ ns }}", {}),
    ("namespace_dict_arg", "{% set ns = namespace({'k': 2}, j=3) %}{{ ns.k }}{{ ns.j }}{{ ns.missing }}", {}),
    ("set_shadows_context", "{% set messages = messages[1:] %}{{ messages | length }}", {"messages": [1, 2, 3]}),
    ("with_block", "{% with a = 1, b = 2 %}{{ a + b }}{% endwith %}[{{ a }}]", {}),
    # undefined behaviour
    ("undefined_print", "[{{ x }}] [{{ x | length }}] [{{ x | upper }}] [{{ x ~ 'a' }}] [{{ x is defined }}] [{{ not x }}]", {}),
    ("undefined_attr_error", "{{ x.y }}", {}),
    ("undefined_add_error", "{{ x + 1 }}", {}),
    ("undefined_iter", "{% for a in x %}{{ a }}{% else %}empty{% endfor %} {{ x | list }} {{ x | join }} {{ x | default('d') }}", {}),
    ("missing_key", "[{{ d.nope }}] [{{ d['nope'] }}] [{{ l[5] }}] [{{ d.nope is defined }}] [{{ none.attr is defined }}]", {"d": {"a": 1}, "l": [1]}),
    ("missing_key_chain_error", "{{ d.nope.deeper }}", {"d": {}}),
    ("missing_index_chain_error", "{{ l[3].a }}", {"l": []}),
    ("none_attr_chain_error", "{{ x.y.z }}", {"x": None}),
    ("undefined_in_list", "{{ [x, 1] }} {{ {'k': x} }}", {}),
    ("undefined_compare", "{{ x == x }} {{ x == none }} {{ x != 1 }}", {}),
    ("undefined_tests", "{{ x is iterable }} {{ x is sequence }} {{ x is mapping }} {{ x is callable }} {{ x is none }} {{ x is string }}", {}),
    ("undefined_in", "{{ x in [1] }} {{ 1 in x }}", {}),
    ("undefined_lt_error", "{{ x < 1 }}", {}),
    ("undefined_call_error", "{{ x(1) }}", {}),
    ("not_callable_error", "{{ 'a'(1) }}", {}),
    # attribute / item access
    ("attr_and_item", "{{ d.a }} {{ d['a'] }} {{ d.get('a') }} {{ d.get('zz', 5) }} {{ d.get('zz') }} {{ l.0 }} {{ l[-1] }}", {"d": {"a": 1}, "l": [1, 2]}),
    ("dict_method_shadows_key", "{{ d.items is defined }} {{ d['keys'] is defined }} {{ d.values()|list }}", {"d": {"items": 1, "values": 2}}),
    ("string_index", "{{ 'abc'[1] }} {{ 'abc'[-1] }} [{{ 'abc'[10] }}] {{ 'héllo'[1] }}", {}),
    ("slicing", "{{ [1,2,3,4][1:] }} {{ [1,2,3,4][:-1] }} {{ [1,2,3,4][::2] }} {{ [1,2,3,4][::-1] }} {{ 'héllo'[1:3] }} {{ 'abc'[10:] }} {{ (1,2,3)[1:] }} {{ [1,2,3][-10:10] }} {{ 'abcdef'[4:1:-1] }}", {}),
    ("slice_zero_step_error", "{{ [1][::0] }}", {}),
    ("items_keys_values", "{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}{{ d.keys() | list }}{{ d.values() | list }}", {"d": {"b": 1, "a": [2]}}),
    ("dict_iteration_order", "{% for k in d %}{{ k }}{% endfor %}", {"d": {"z": 1, "a": 2, "m": 3}}),
    ("unpack_errors", "{% for a, b in [[1, 2, 3]] %}{% endfor %}", {}),
    ("unpack_string", "{% for a, b in ['xy', [1, 2]] %}{{ a }}{{ b }}{% endfor %}", {}),
    # sandbox
    ("dunder_class", "[{{ ''.__class__ }}] [{{ ''.__class__ is defined }}]", {}),
    ("dunder_mro_error", "{{ ''.__class__.__mro__ }}", {}),
    ("dunder_call_error", "{{ ''.__class__() }}", {}),
    ("list_append_error", "{{ [1].append(2) }}", {}),
    ("dict_update_error", "{{ {}.update({'a': 1}) }}", {}),
    ("dict_pop_error", "{% set d = {'a': 1} %}{{ d.pop('a') }}", {}),
    ("unsafe_method_print", "[{{ [1].append }}]", {}),
    ("range_too_big_error", "{{ range(10 ** 9) | length }}", {}),
    ("range_ok", "{{ range(3) | list }} {{ range(1, 10, 3) | list }} {{ range(5, 0, -2) | list }} {{ range(0) | list }}", {}),
    # loops
    ("loop_vars", "{% for x in ['a', 'b', 'c'] %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}|{{ loop.previtem }}|{{ loop.nextitem }}|{{ loop.cycle('x', 'y') }};{% endfor %}", {}),
    ("loop_filter", "{% for x in range(10) if x % 3 == 0 %}{{ x }}:{{ loop.index }}/{{ loop.length }} {% endfor %}", {}),
    ("loop_else", "{% for x in [] %}a{% else %}empty{% endfor %}{% for x in [1] if x > 5 %}b{% else %}filtered{% endfor %}", {}),
    ("loop_break_continue", "{% for x in range(10) %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 5 %}{% break %}{% endif %}{{ x }}{% endfor %}", {}),
    ("nested_loops", "{% for a in [1, 2] %}{% set outer = loop %}{% for b in 'xy' %}{{ outer.index }}{{ loop.index }}{{ a }}{{ b }} {% endfor %}{% endfor %}", {}),
    ("loop_changed", "{% for x in [1, 1, 2, 2, 3] %}{% if loop.changed(x) %}{{ x }}{% endif %}{% endfor %}", {}),
    ("loop_recursive", "{% for item in tree recursive %}[{{ item.name }}{% if item.children %}{{ loop(item.children) }}{% endif %}]{% endfor %}", {"tree": [{"name": "a", "children": [{"name": "b", "children": []}]}, {"name": "c"}]}),
    ("loop_depth", "{% for item in tree recursive %}{{ loop.depth }}{% if item.children %}{{ loop(item.children) }}{% endif %}{% endfor %}", {"tree": [{"children": [{"children": [{}]}]}]}),
    ("loop_string", "{% for c in 'héllo' %}{{ c }}.{% endfor %}", {}),
    ("loop_none_error", "{% for a in none %}{% endfor %}", {}),
    # macros
    ("macro_basic", "{% macro greet(name, greeting='Hello') %}{{ greeting }}, {{ name }}!{% endmacro %}{{ greet('Ann') }} {{ greet('Bo', greeting='Hi') }} {{ greet(greeting='Yo', name='Cy') }}", {}),
    ("macro_defaults_use_args", "{% macro m(a, b=a+1) %}{{ a }}{{ b }}{% endmacro %}{{ m(1) }}{{ m(1, 5) }}", {}),
    ("macro_varargs_kwargs", "{% macro m(a) %}{{ a }}{{ varargs }}{{ kwargs }}{% endmacro %}{{ m(1, 2, 3, k=4) }}", {}),
    ("macro_missing_arg", "{% macro m(a, b) %}[{{ a }}][{{ b }}]{% endmacro %}{{ m(1) }}", {}),
    ("macro_scope", "{% set y = 5 %}{% macro m() %}{{ y }}{% set y = 3 %}{{ y }}{% endmacro %}{{ m() }}{{ y }}", {}),
    ("macro_late_global", "{% macro m() %}{{ x }}{% endmacro %}{% set x = 1 %}{{ m() }}{% set x = 2 %}{{ m() }}", {}),
    ("macro_recursion", "{% macro fact(n) %}{% if n <= 1 %}1{% else %}{{ n * fact(n - 1) | int }}{% endif %}{% endmacro %}{{ fact(10) }}", {}),
    ("macro_in_loop", "{% for y in [1, 2] %}{% macro m() %}{{ y }}{% endmacro %}{{ m() }}{% endfor %}", {}),
    ("macro_caller", "{% macro box() %}[{{ caller() }}]{% endmacro %}{% call box() %}inside{% endcall %}", {}),
    ("macro_caller_args", "{% macro each(items) %}{% for i in items %}{{ caller(i) }}{% endfor %}{% endmacro %}{% call(x) each([1, 2]) %}<{{ x }}>{% endcall %}", {}),
    ("macro_render_schema", "{% macro render(v) %}{% if v is mapping %}{% for k, x in v.items() %}{{ k }}:({{ render(x) }}){% endfor %}{% elif v is sequence and v is not string %}{% for x in v %}{{ render(x) }},{% endfor %}{% else %}{{ v }}{% endif %}{% endmacro %}{{ render(d) }}", {"d": {"a": [1, {"b": "c"}], "e": None}}),
    # filters
    ("filter_trim", "[{{ '  x \n'|trim }}] [{{ 'xxaxx'|trim('x') }}] [{{ '\u00a0y\u3000'|trim }}]", {}),
    ("filter_case", "{{ 'Hello World'|upper }} {{ 'Hello'|lower }} {{ 'hELLo wOrld-foo (bar)'|title }} {{ 'hELLO'|capitalize }} {{ 'ÉCOLE'|lower }} {{ 'straße'|title }}", {}),
    ("filter_length", "{{ 'abc'|length }} {{ 'héé'|length }} {{ [1, 2]|length }} {{ {'a': 1}|count }} {{ '👍🏽'|length }}", {}),
    ("filter_length_none_error", "{{ none|length }}", {}),
    ("filter_default", "{{ x|default('d') }} {{ ''|default('e') }} {{ ''|default('e', true) }} {{ none|default('n') }} {{ x|d }}.", {}),
    ("filter_join", "{{ [1, 'a', none]|join(', ') }} {{ 'abc'|join('-') }} {{ [{'n': 'x'}, {'n': 'y'}]|join('+', attribute='n') }}", {}),
    ("filter_first_last", "{{ [1, 2]|first }} {{ [1, 2]|last }} {{ 'ab'|first }} {{ 'ab'|last }} [{{ []|first }}]", {}),
    ("filter_map", "{{ [1, 2]|map('string')|join(',') }} {{ [{'a': {'b': 1}}, {'a': {'b': 2}}]|map(attribute='a.b')|list }} {{ [{'a': 1}, {}]|map(attribute='a', default=0)|list }} {{ ['a', 'b']|map('upper')|list }}", {}),
    ("filter_select", "{{ [1, 2, 3, 4]|select('odd')|list }} {{ [1, 0, 2]|select|list }} {{ [1, 2, 3]|reject('equalto', 2)|list }} {{ [1, 5, 10]|select('gt', 4)|list }}", {}),
    ("filter_selectattr", "{{ l|selectattr('a')|list }} {{ l|selectattr('a', 'equalto', 2)|list }} {{ l|selectattr('a', 'defined')|list }} {{ l|rejectattr('a', 'defined')|list }} {{ l|rejectattr('a')|list }}", {"l": [{"a": 1}, {"a": 2}, {"b": 0}, {"a": 0}]}),
    ("filter_items_dictsort", "{{ d|items|list }} {{ d|dictsort }} {{ d|dictsort(by='value') }} {{ d|dictsort(reverse=true) }} {{ {'b': 1, 'A': 2, 'a': 3}|dictsort }} {{ {'b': 1, 'A': 2, 'a': 3}|dictsort(true) }}", {"d": {"b": 2, "a": 1, "c": 0}}),
    ("filter_items_error", "{{ [1]|items|list }}", {}),
    ("filter_sort_unique", "{{ [3, 1, 2]|sort }} {{ ['b', 'A', 'a']|sort }} {{ ['b', 'A', 'a']|sort(case_sensitive=true) }} {{ [3, 1]|sort(reverse=true) }} {{ [{'n': 2}, {'n': 1}]|sort(attribute='n') }} {{ ['b', 'A', 'a', 'B']|unique|list }}", {}),
    ("filter_sort_error", "{{ [1, 'a']|sort }}", {}),
    ("filter_int_float", "{{ '42'|int }} {{ '4.7'|int }} {{ 'x'|int }} {{ 'x'|int(7) }} {{ 3.9|int }} {{ ' 12 '|int }} {{ '0x1A'|int(base=16) }} {{ '3.5'|float }} {{ 'x'|float }} {{ 2|float }} {{ true|int }}", {}),
    ("filter_round", "{{ 3.7|round }} {{ 3.75|round(1) }} {{ 2.5|round }} {{ 3.5|round }} {{ 3|round }} {{ 3.14159|round(2, 'floor') }} {{ 3.11|round(1, 'ceil') }} {{ 2.675|round(2) }}", {}),
    ("filter_string_list", "{{ 5|string }} {{ none|string }} {{ [1]|string }} {{ 'ab'|list }} {{ {'a': 1}|list }}", {}),
    ("filter_replace", "{{ 'aaa'|replace('a', 'b') }} {{ 'aaa'|replace('a', 'b', 2) }} {{ 'abc'|replace('', '-') }} {{ 5|replace('5', 'five') }}", {}),
    ("filter_reverse_abs", "{{ 'héllo'|reverse }} {{ [1, 2]|reverse|list }} {{ -3.5|abs }} {{ -3|abs }}", {}),
    ("filter_indent", "[{{ 'a\nb\n\nc'|indent }}] [{{ 'a\nb'|indent(2, true) }}] [{{ 'a\n\nb'|indent(2, blank=true) }}] [{{ 'a\nb'|indent('> ') }}]", {}),
    ("filter_center_truncate", "[{{ 'x'|center(6) }}] [{{ 'ab'|center(7) }}] {{ 'hello world foo bar'|truncate(12) }} {{ 'hello world'|truncate(5, true) }} {{ 'short'|truncate(20) }}", {}),
    ("filter_sum_min_max", "{{ [1, 2, 3]|sum }} {{ [1.5, 2]|sum }} {{ [{'v': 2}, {'v': 3}]|sum(attribute='v') }} {{ [3, 1, 2]|min }} {{ [3, 1, 2]|max }} {{ ['b', 'A']|min }} {{ [{'a': 2}, {'a': 1}]|max(attribute='a') }}", {}),
    ("filter_batch_slice", "{{ [1, 2, 3, 4, 5]|batch(2)|list }} {{ [1, 2, 3]|batch(2, 'x')|list }} {{ [1, 2, 3, 4, 5]|slice(2)|list }} {{ [1, 2, 3, 4]|slice(3, 0)|list }}", {}),
    ("filter_groupby", "{% for g in l|groupby('a') %}{{ g[0] }}:{{ g[1]|map(attribute='b')|join(',') }};{% endfor %}", {"l": [{"a": 1, "b": 2}, {"a": 2, "b": 3}, {"a": 1, "b": 4}]}),
    ("filter_escape", "{{ '<a href=\"x\">&\\'</a>'|e }} {{ '<p>x</p>  y'|striptags }} {{ 'x'|safe }}", {}),
    ("filter_format", "{{ '%s=%d'|format('a', 3) }} {{ '%.2f|%5s|%-5s|%05d|%x|%r'|format(3.14159, 'ab', 'cd', 42, 255, 'q') }} {{ '%(a)s-%(b)s'|format(a=1, b=2) }} {{ '%s' % 'x' }} {{ '%d%%' % 5 }}", {}),
    ("filter_misc", "{{ 'hello big world'|wordcount }} {{ 'a b'|urlencode }} {{ {'a': 1}|pprint }} {{ 1234567|filesizeformat }} {{ [1, 2]|attr('count') is defined }}", {}),
    ("filter_block", "{% filter upper %}abc {{ 'd' }}{% endfilter %}", {}),
    ("filter_chain_args", "{{ ['b', 'a', 'c']|sort|reverse|join('') ~ '!' }}", {}),
    ("unknown_filter_error", "{{ 1|no_such_filter }}", {}),
    ("unknown_filter_in_if", "{% if false %}{{ 1|from_json }}{% elif 1 is nonsense %}{% endif %}{{ 2 if true else 3|nope }}", {}),
    ("unknown_filter_in_if_runs_error", "{% if true %}{{ 1|from_json }}{% endif %}", {}),
    ("unknown_filter_in_loop_in_if_error", "{% if false %}{% for x in [] %}{{ x|from_json }}{% endfor %}{% endif %}", {}),
    ("unknown_test_error", "{{ 1 is no_such_test }}", {}),
    # tojson (Hugging Face's)
    ("tojson_basic", "{{ d|tojson }}", {"d": {"a": "x\u00e9\"\n\t\u0001\u007f/<>&'", "b": [1, 2.0, None, True, 1e20, -0.5], "c": {}, "e": []}}),
    ("tojson_indent", "{{ d|tojson(indent=2) }}|{{ d|tojson(indent=0) }}|{{ [[]]|tojson(indent=4) }}", {"d": {"a": 1, "b": [1, {"c": None}], "e": {}}}),
    ("tojson_options", "{{ d|tojson(sort_keys=true) }} {{ d|tojson(separators=(',', ':')) }} {{ d|tojson(ensure_ascii=true) }} {{ d|tojson(indent='\t') }}", {"d": {"b": "é😀", "a": [1, 2]}}),
    ("tojson_scalars", "{{ 'str'|tojson }} {{ 1|tojson }} {{ 1.5|tojson }} {{ none|tojson }} {{ true|tojson }} {{ (1, 2)|tojson }} {{ {1: 'a', true: 'b', none: 'c'}|tojson }}", {}),
    ("tojson_undefined_error", "{{ x|tojson }}", {}),
    # tests
    ("tests_types", "{{ 'a' is string }} {{ {} is mapping }} {{ [] is iterable }} {{ 'a' is iterable }} {{ 1 is iterable }} {{ none is none }} {{ 1 is number }} {{ true is number }} {{ [] is sequence }} {{ {} is sequence }} {{ 1 is integer }} {{ true is integer }} {{ 1.0 is float }} {{ true is boolean }} {{ range is callable }} {{ 'x' is callable }}", {}),
    ("tests_values", "{{ 1 is odd }} {{ 2 is even }} {{ 9 is divisibleby 3 }} {{ 'abc' is lower }} {{ 'ABC' is upper }} {{ 1 is eq 1 }} {{ 1 is ne 2 }} {{ 2 is gt 1 }} {{ 2 is lt 1 }} {{ 1 is in [1] }} {{ none is false }} {{ false is false }} {{ 0 is false }} {{ true is true }} {{ none is sameas none }} {{ 'upper' is filter }} {{ 'odd' is test }}", {}),
    ("tests_not", "{{ none is not none }} {{ x is not defined }} {{ 1 is not string }} {{ 'a' is not mapping }}", {}),
    ("test_in_if_filter", "{% for m in msgs if m.role is not none and m.content is string %}{{ m.content }}{% endfor %}", {"msgs": [{"role": "u", "content": "a"}, {"role": None, "content": "b"}, {"role": "x", "content": [1]}]}),
    # string methods
    ("str_strip", "[{{ '  a b  '.strip() }}] [{{ 'xxhixx'.strip('x') }}] [{{ '  a'.lstrip() }}] [{{ 'a  '.rstrip() }}] [{{ '--a--'.lstrip('-') }}] [{{ '\t\n a \u2028'.strip() }}]", {}),
    ("str_split", "{{ 'a,b,,c'.split(',') }} {{ ' a  b '.split() }} {{ 'a b c'.split(' ', 1) }} {{ 'a b c'.rsplit(' ', 1) }} {{ '  a  b  c  '.split(none, 1) }} {{ '  a  b  c  '.rsplit(none, 1) }} {{ 'a\nb\r\nc\n'.splitlines() }} {{ ''.split(',') }} {{ ''.split() }}", {}),
    ("str_split_empty_sep_error", "{{ 'a'.split('') }}", {}),
    ("str_affix", "{{ 'hello'.startswith('he') }} {{ 'hello'.endswith('lo') }} {{ 'hello'.startswith(('x', 'h')) }} {{ 'hello'.startswith('l', 2) }} {{ 'hello'.endswith('ell', 0, 4) }}", {}),
    ("str_replace_find", "{{ 'a-b-c'.replace('-', '+') }} {{ 'a-b-c'.replace('-', '', 1) }} {{ 'héllo'.find('l') }} {{ 'abc'.find('z') }} {{ 'abca'.rfind('a') }} {{ 'aaa'.count('a') }} {{ 'abc'.index('c') }}", {}),
    ("str_case", "{{ 'hello world'.title() }} {{ 'hELLO'.capitalize() }} {{ 'ab'.upper() }} {{ 'AB'.lower() }} {{ 'aB'.swapcase() }} {{ \"they're bill's\".title() }}", {}),
    ("str_predicates", "{{ '123'.isdigit() }} {{ 'abc'.isalpha() }} {{ 'a1'.isalnum() }} {{ '  '.isspace() }} {{ 'ABC'.isupper() }} {{ 'abc'.islower() }} {{ ''.isdigit() }}", {}),
    ("str_join_format", "{{ ', '.join(['a', 'b']) }} {{ '{} and {}'.format(1, 'x') }} {{ '{0}{1}{0}'.format('a', 'b') }} {{ '{name}!'.format(name='Bo') }} {{ '{:>5}|{:<5}|{:^5}'.format('a', 'b', 'c') }} {{ '{:05d}|{:.2f}|{:,}|{!r}'.format(42, 3.14159, 1234567, 'q') }} {{ '{a[b]}{c.d}'.format(a={'b': 1}, c={'d': 2}) }} {{ '{{}}'.format() }}", {}),
    ("str_format_mixed_error", "{{ '{}{0}'.format(1, 2) }}", {}),
    ("str_join_type_error", "{{ ','.join([1, 2]) }}", {}),
    ("str_misc", "{{ 'ab'.center(6, '*') }} {{ 'ab'.ljust(4, '.') }} {{ 'ab'.rjust(4) }} {{ '42'.zfill(5) }} {{ '-4'.zfill(4) }} {{ 'prefix_x'.removeprefix('prefix_') }} {{ 'a=b=c'.partition('=') }} {{ 'a=b=c'.rpartition('=') }}", {}),
    # globals and Hugging Face extras
    ("raise_exception", "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}", {}),
    ("raise_in_branch", "ok{% if false %}{{ raise_exception('never') }}{% endif %}", {}),
    ("strftime_now", "{{ strftime_now('%d %b %Y') }} {{ strftime_now('%Y-%m-%d %H:%M:%S') }} {{ strftime_now('%A %B %-d') }}", {}),
    ("dict_global", "{{ dict(a=1, b=2) }} {{ dict(a=1)|tojson }}", {}),
    ("cycler_joiner", "{% set c = cycler('a', 'b') %}{{ c.next() }}{{ c.next() }}{{ c.next() }}{{ c.current }}{% set j = joiner('|') %}{% for x in [1, 2, 3] %}{{ j() }}{{ x }}{% endfor %}", {}),
    ("generation_block", "{% for m in messages %}{% if m.role == 'assistant' %}{% generation %}{{ m.content }}{% set inner = 1 %}{% endgeneration %}{% else %}{{ m.content }}{% endif %}{% endfor %}[{{ inner }}]", {"messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}]}),
    ("print_tag", "{% print 'x' ~ 1 %}", {}),
    # jinja2's compile-time folding and its generated-code quirks
    ("fold_slice_of_constant", "[{{ 1[::2] }}] [{{ none[1:] }}] [{{ (not 0.5)[1:] }}] [{{ {}[1:] }}]", {}),
    ("runtime_slice_of_int_error", "{{ n[::2] }}", {"n": 3}),
    ("runtime_slice_of_dict_error", "{{ d[1:] }}", {"d": {}}),
    ("fold_inside_runtime_expr", "{{ [n, 1[1:]|capitalize] }}", {"n": 3}),
    ("negative_constant_power", "{{ -2 ** n }} {{ (0 - 2) ** n }} {{ -2.5 ** n }} {{ -n ** 2 }} {{ -2 ** 2 }} {{ 2 ** -n }}", {"n": 2}),
    ("const_dict_unhashable_key_error", "{{ 1 if {[]: 1} else 2 }}", {}),
    ("const_dict_unhashable_key_runtime_error", "{{ {[]: 1} }}", {}),
    ("const_dict_unhashable_key_folded_away", "{{ 'a' if 'a' else (x if {[]: 1} else 1) }}", {}),
    ("unknown_filter_folded_away", "{{ 1 or 2|nope }}", {}),
    ("float_pow_overflow_error", "{{ 3.0 ** n }}", {"n": 1e20}),
    # generators, views and other iterables
    ("generator_lazy_errors", "{% set g = 10|unique %}{% set h = n|map('upper') %}ok {{ [1]|select('odd')|list }}", {"n": 5}),
    ("generator_error_when_iterated", "{{ (n|unique)|list }}", {"n": 10}),
    ("generator_no_len_error", "{{ [1, 2]|map('string')|length }}", {}),
    ("generator_not_json_error", "{{ [1, 2]|select|tojson }}", {}),
    ("generator_truthy_and_first", "{{ ([]|select) is defined }} {{ 'yes' if []|select else 'no' }} {{ [3, 4]|map('string')|first }} {{ 1 in [1, 2]|select }}", {}),
    ("generator_last_error", "{{ [1, 2]|map('string')|last }}", {}),
    ("select_string_odd_error", "{{ [1, 'a']|select('odd')|list }}", {}),
    ("dict_views", "{{ d.keys() }} {{ d.values() }} {{ d.items() }} {{ d.keys()|length }} {{ 'a' in d.keys() }} [{{ d.keys()[0] }}] {{ d.items()|list }}", {"d": {"a": 1, "b": [2]}}),
    ("dict_view_json_error", "{{ d.items()|tojson }}", {"d": {"a": 1}}),
    ("range_object", "{{ range(3) }} {{ range(1, 9, 2) }} {{ range(3)|length }} {{ range(5)[2] }} {{ range(3) is sequence }} {{ range(2)|tojson if false else 'x' }}", {}),
    ("reverse_kinds", "{{ 'abc'|reverse }} {{ (1, 2)|reverse|list }} {{ {'a': 1, 'b': 2}|reverse|list }} {{ u|reverse|list }} {{ 'x' if u|reverse else 'y' }} {{ [1, 2]|select|reverse }}", {}),
    # formatting, markup, truncation
    ("percent_lenient", "{{ '42' % ['x'] }} {{ '42' % {'a': 1} }} {{ 'a%s' % u }} {{ '%s|%s' % (1, 'b') }}", {}),
    ("percent_unconverted_error", "{{ '42' % 'x' }}", {}),
    ("markup_plus_escapes", "{{ 'a'|safe + '<b>' }} {{ '<i>' + 'x'|e }} {{ ('<x>'|e) ~ '<y>' }} {{ ('<x>'|safe)|upper + '&' }}", {}),
    ("pprint_sorts_keys", "{{ {'b': 1, 'a': {'d': 2, 'c': 3}}|pprint }}", {}),
    ("truncate_containers", "{{ [1, 2]|truncate(5) }} {{ u|truncate(3) }}", {}),
    ("truncate_int_error", "{{ 5|truncate(3) }}", {}),
    ("urlencode_kinds", "{{ {'a b': 'c/d', 'e': 1}|urlencode }} {{ [('x', 'y z')]|urlencode }} {{ 'a b/c'|urlencode }} {{ 42|urlencode }}", {}),
    ("int_float_of_undefined_error", "{{ u|int }}", {}),
    ("indent_of_list_error", "{{ [1]|indent }}", {}),
    ("divisibleby_floats_strings", "{{ 0.5 is divisibleby 3 }} {{ 4.0 is even }} {{ 2.5 is odd }} {{ 9 is divisibleby 3 }}", {}),
    # syntax errors
    ("syntax_unclosed_if", "line1\n{% if x %}\nno end", {}),
    ("syntax_bad_token", "{{ 1 + }}", {}),
    ("syntax_unknown_tag", "{% frobnicate %}", {}),
    ("syntax_unclosed_var", "abc {{ x ", {}),
    ("syntax_unclosed_string", "{{ 'abc }}", {}),
    ("syntax_bad_paren", "{{ (1 + 2 }}", {}),
    ("syntax_extra_endif", "{% endif %}", {}),
    ("syntax_chained_is", "{{ 1 is odd is even }}", {}),
    ("syntax_include", "{% include 'other.txt' %}", {}),
    ("syntax_break_outside", "{% break %}", {}),
]


def feature_goldens():
    cases = []
    for name, source, variables in FEATURES:
        cases.append({"name": name, "template": source, "vars": variables,
                      **render(source, variables)})
    return {"generator": f"jinja2 {jinja2.__version__}, Python {sys.version.split()[0]}",
            "strftime_now": FIXED_NOW.isoformat(), "cases": cases}


def write(path, data):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, ensure_ascii=False, indent=1)
        f.write("\n")


def main():
    chat = chat_goldens()
    write(HERE / "chat_expected.json", chat)
    features = feature_goldens()
    write(HERE / "features_expected.json", features)
    n_err = sum("error" in c for c in chat["cases"])
    print(f"chat: {len(chat['cases'])} cases over {len(chat['templates'])} templates "
          f"({n_err} expected errors); features: {len(features['cases'])} cases")


if __name__ == "__main__":
    main()
