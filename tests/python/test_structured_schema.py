"""Structured output under JSON Schemas, checked by an independent validator (`jsonschema`).

1. The golden schemas (tests/golden/schemas/*.json) are checked against `jsonschema` itself:
   their `valid` documents validate, their `invalid` ones do not, and the `outside_grammar` ones
   (valid documents minnow's grammar leaves out on purpose, see src/constrain/json_schema.h)
   validate. constrain_schema_test (C++) checks the same documents against minnow's grammar.
2. The real thing, issue 6's "done when": every golden schema, every golden GBNF grammar
   (tests/golden/grammars) and every regex of test_constrain_cli.py, on both real models, at
   temperature 0 and at 0.7 and 1.2 with two seeds each, through one `minnow serve` that batches
   the requests (MINNOW_NUM_PARALLEL=8, many client threads): every output must end by itself
   (done_reason "stop") and validate (`jsonschema` with formats, `re.fullmatch`, or the
   independent GBNF recognizer of test_constrain_cli.py). A subset also runs through
   `minnow run --format @schema.json`.
3. Unbounded schemas (any value, free objects, additionalProperties, recursion) under small
   token limits: the constraint's budget closes the output in time, so it still validates.
4. The two examples of issue 6: classifying a support ticket into five categories, and
   extracting {name, email, company} from a message, checked for the right answer on SmolLM2.
5. Ollama `format` / OpenAI `response_format` through the real server with the `ollama` and
   `openai` clients.

Without a build that has `minnow run --format`, parts 2-5 skip with the reason.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jsonschema
import pytest

from conftest import MODELS, ROOT, model_path

SMOL = MODELS[0]
GEMMA = next(m for m in MODELS if m.arch == "gemma3")
GOLDEN = ROOT / "tests" / "golden" / "schemas"
CASES = {p.stem: json.loads(p.read_text()) for p in sorted(GOLDEN.glob("*.json"))}

# The token limit of the CLI runs. The constraint's budget closes every output before the limit
# (a model that would go on is steered to close its structure), so the limit only bounds time.
NUM_PREDICT = 192
# A golden file may say "generate": false (never generated).
TEMPERATURES = [0, 0.7, 1.2]


def to_jsonschema(schema):
    """OpenAPI's `nullable: true` is no JSON Schema keyword: `jsonschema` would ignore it, so it
    becomes a type union (what minnow's grammar allows) before validation."""
    if isinstance(schema, list):
        return [to_jsonschema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {}
    for k, v in schema.items():
        if k in ("properties", "$defs", "definitions"):
            out[k] = {name: to_jsonschema(sub) for name, sub in v.items()}
        elif k == "nullable":
            continue
        else:
            out[k] = to_jsonschema(v)
    if schema.get("nullable") is True:
        t = out.get("type")
        if isinstance(t, str):
            out["type"] = [t, "null"]
        elif isinstance(t, list) and "null" not in t:
            out["type"] = t + ["null"]
    return out


def validator(schema):
    """A validator for the schema's draft (2020-12 unless $schema says otherwise), with format
    checking on (date-time and time need the rfc3339-validator package)."""
    schema = to_jsonschema(schema)
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def test_format_checkers_are_active():
    # Without rfc3339-validator, date-time is not checked at all and the suite would prove less.
    v = validator({"type": "string", "format": "date-time"})
    assert not v.is_valid("yesterday")
    assert not validator({"format": "time"}).is_valid("25:00:00Z")
    assert not validator({"format": "date"}).is_valid("2023-02-30")
    assert not validator({"format": "uuid"}).is_valid("xyz")


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden_examples_agree_with_jsonschema(name):
    case = CASES[name]
    v = validator(case["schema"])
    for doc in case["valid"]:
        errors = [e.message for e in v.iter_errors(doc)]
        assert not errors, f"{name}: valid example {doc!r} fails: {errors}"
    for doc in case["invalid"]:
        assert not v.is_valid(doc), f"{name}: invalid example {doc!r} validates"
    for doc in case.get("outside_grammar", []):
        assert v.is_valid(doc), f"{name}: {doc!r} (left out by the grammar) should validate"


def test_suite_size():
    assert len(CASES) >= 40
    assert sum(1 for c in CASES.values() if c.get("generate", True) is not False) >= 40


# --- generation through the CLI ---------------------------------------------------------------

_FORMAT_REASON: list[str | None] = []


def format_missing_reason(minnow_bin: Path) -> str | None:
    if not _FORMAT_REASON:
        p = subprocess.run([str(minnow_bin), "run", "--help"], capture_output=True, text=True,
                           timeout=30)
        text = p.stdout + p.stderr
        _FORMAT_REASON.append(None if "--format" in text else
                              f"`{minnow_bin.name} run` has no --format option in this build")
    return _FORMAT_REASON[0]


@pytest.fixture
def generate(minnow_bin, tmp_path):
    """generate(model, schema, prompt, temperature, seed) -> stdout of `minnow run --format`."""
    reason = format_missing_reason(minnow_bin)
    if reason:
        pytest.skip(reason)

    def run(entry, schema, prompt, temperature, seed, num_predict=NUM_PREDICT, extra=(),
            with_stderr=False):
        model_path(entry)
        path = tmp_path / "schema.json"
        path.write_text(json.dumps(schema))
        args = [str(minnow_bin), "run", entry.name, prompt, "--format", f"@{path}",
                "--temperature", str(temperature), "--seed", str(seed), "-n", str(num_predict),
                *extra]
        p = subprocess.run(args, capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, f"{' '.join(args)} failed ({p.returncode}):\n{p.stderr}"
        return (p.stdout, p.stderr) if with_stderr else p.stdout
    return run


def check_output(name, schema, text, where):
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise AssertionError(f"{where}: output of {name} does not parse ({e}):\n{text!r}")
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
              for e in validator(schema).iter_errors(doc)]
    assert not errors, f"{where}: output of {name} does not validate: {errors}\n{text!r}"
    return doc


GENERATED = [n for n, c in CASES.items() if c.get("generate", True) is not False]
MODEL_IDS = {SMOL.name: "smollm2", GEMMA.name: "gemma3"}

# --- the whole matrix through one batching server ---------------------------------------------

# (temperature, seed) of every case on every model: greedy once, two seeds at each sampled one.
SETTINGS = [(0, 0), (0.7, 1), (0.7, 2), (1.2, 1), (1.2, 2)]
MATRIX_NUM_PREDICT = 128


def matrix_cases():
    """(kind, name) -> (request fields, prompt, check(text) -> None or the reason it fails)."""
    from test_constrain_cli import GRAMMARS, REGEXES, Gbnf, examples
    cases = {}
    for name in GENERATED:
        case = CASES[name]
        v = validator(case["schema"])

        def check(text, v=v):
            try:
                doc = json.loads(text)
            except json.JSONDecodeError as e:
                return f"does not parse ({e})"
            errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
                      for e in v.iter_errors(doc)]
            return f"does not validate: {errors}" if errors else None
        cases[("schema", name)] = ({"format": case["schema"]}, case["prompt"], check)
    for path in GRAMMARS:
        g = Gbnf(path.read_text())
        prompt, _, _ = examples(path)
        cases[("grammar", path.stem)] = (
            {"grammar": path.read_text()}, prompt,
            lambda text, g=g: None if g.accepts(text) else "is not a sentence of the grammar")
    for i, (regex, prompt) in enumerate(REGEXES):
        cases[("regex", f"re{i}")] = (
            {"regex": regex}, prompt,
            lambda text, r=regex: None if re.fullmatch(r, text) else f"does not match {r}")
    return cases


MATRIX = matrix_cases()


def post_json(url: str, body: dict, timeout: float = 600) -> dict:
    req = urllib.request.Request(url, data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())


@pytest.fixture(scope="module")
def matrix_results(minnow_bin):
    """Every case x model x setting, sent at once through one server: {(kind, name, model):
    [(temperature, seed, done_reason, text) or (temperature, seed, "error", message)]}."""
    reason = server_takes_format() or format_missing_reason(minnow_bin)
    if reason:
        pytest.skip(reason)
    for entry in (SMOL, GEMMA):
        model_path(entry)
    from server_fixture import start_server
    server = start_server(env={"MINNOW_NUM_PARALLEL": "8", "MINNOW_MAX_QUEUE": "256"})

    def one(job):
        (kind, name), entry, (temperature, seed) = job
        fields, prompt, _ = MATRIX[(kind, name)]
        body = {"model": entry.name, "messages": [{"role": "user", "content": prompt}],
                "stream": False, **fields,
                "options": {"temperature": temperature, "seed": seed,
                            "num_predict": MATRIX_NUM_PREDICT}}
        try:
            r = post_json(server.url + "/api/chat", body)
            return job, (temperature, seed, r.get("done_reason"), r["message"]["content"])
        except Exception as e:  # the test of this case reports it
            return job, (temperature, seed, "error", repr(e))

    jobs = [(key, entry, setting) for key in MATRIX for entry in (SMOL, GEMMA)
            for setting in SETTINGS]
    results: dict = {}
    try:
        with ThreadPoolExecutor(max_workers=16) as pool:
            for ((kind, name), entry, _), out in pool.map(one, jobs):
                results.setdefault((kind, name, entry.name), []).append(out)
    finally:
        rc = server.stop()
    assert rc == 0, f"minnow serve exited {rc} on SIGTERM; stderr:\n{server.log()}"
    return results


def test_matrix_size():
    kinds = [k for k, _ in MATRIX]
    assert kinds.count("schema") >= 40 and kinds.count("grammar") >= 10
    assert kinds.count("regex") >= 10
    assert {t for t, _ in SETTINGS} == {0, 0.7, 1.2}
    assert all(sum(1 for t, _ in SETTINGS if t == temp) >= 2 for temp in (0.7, 1.2))


@pytest.mark.parametrize("entry", [SMOL, GEMMA], ids=lambda m: MODEL_IDS[m.name])
@pytest.mark.parametrize("kind,name", sorted(MATRIX), ids=lambda x: x)
def test_matrix_outputs_validate(matrix_results, kind, name, entry):
    _, _, check = MATRIX[(kind, name)]
    runs = matrix_results[(kind, name, entry.name)]
    assert len(runs) == len(SETTINGS)
    failures = []
    for temperature, seed, done_reason, text in runs:
        why = text if done_reason == "error" else (
            f"ended by {done_reason!r}, not by itself" if done_reason != "stop" else check(text))
        if why:
            failures.append(f"T={temperature} seed={seed}: {why}: {text!r}")
    assert not failures, f"{kind} {name} on {entry.name}:\n" + "\n".join(failures)


# --- through the CLI: a subset ---------------------------------------------------------------

CLI_SUBSET = ["flat_person", "nested_address", "array_of_objects", "ref_recursive_tree",
              "string_escapes_unicode", "free_object"]


@pytest.mark.parametrize("entry", [SMOL, GEMMA], ids=lambda m: MODEL_IDS[m.name])
@pytest.mark.parametrize("name", CLI_SUBSET)
def test_generation_validates(generate, entry, name):
    case = CASES[name]
    for temperature, seed in [(0, 0), (1.2, CLI_SUBSET.index(name))]:
        text = generate(entry, case["schema"], case["prompt"], temperature, seed)
        check_output(name, case["schema"], text, f"{entry.name} T={temperature} seed={seed}")


# Schemas that bound neither the number of members nor nesting: gemma3:270m would repeat
# members until the limit. Under small limits the budget must close them in time, every time.
UNBOUNDED = ["any_value", "free_object", "additional_true", "additional_schema_map",
             "additional_schema_with_props", "ref_root_recursion"]


@pytest.mark.parametrize("entry", [SMOL, GEMMA], ids=lambda m: MODEL_IDS[m.name])
@pytest.mark.parametrize("name", UNBOUNDED)
def test_unbounded_schemas_close_within_small_limits(generate, entry, name):
    case = CASES[name]
    for n, temperature in [(12, 0), (24, 1.2), (40, 0.7)]:
        text, log = generate(entry, case["schema"], case["prompt"], temperature, n,
                             num_predict=n, extra=["--verbose"], with_stderr=True)
        where = f"{entry.name} -n {n} T={temperature}"
        check_output(name, case["schema"], text, where)
        assert "stop: stop" in log, f"{where}: did not end by itself:\n{text!r}\n{log}"


# Several seeds at the sampled temperatures on two schemas of different shapes.
SEEDED = ["tool_call_args", "string_escapes_unicode"]


@pytest.mark.parametrize("entry", [SMOL, GEMMA], ids=lambda m: MODEL_IDS[m.name])
@pytest.mark.parametrize("name", SEEDED)
def test_generation_validates_across_seeds(matrix_results, entry, name):
    runs = matrix_results[("schema", name, entry.name)]
    sampled = {text for temperature, _, _, text in runs if temperature > 0}
    assert len(sampled) > 1, "sampling with different seeds gave one output every time"


# --- issue 6, item 4: the two examples users bring first --------------------------------------

TICKET = "I was charged twice for my subscription this month"
CATEGORIES = ["billing", "technical", "feature_request", "complaint", "other"]
MESSAGE = "Hi, I'm Sarah Chen from Acme Corp. Reach me at sarah@acme.com"


def classify_prompt():
    return (f"Classify the customer support ticket into one category: {', '.join(CATEGORIES)}. "
            f"Charges, payments, refunds and invoices are billing.\nTicket: \"{TICKET}\"")


def extract_prompt():
    """One worked example, as a plain completion (--raw): with the chat template and no example,
    SmolLM2-135M writes "Sarah Chen" but invents the email or copies the name as the company."""
    return ("Extract the name, email and company from each message as JSON.\n"
            "Message: Hello, this is John Smith of Globex Inc. My email is john@globex.com\n"
            'JSON: {"name": "John Smith", "email": "john@globex.com", "company": "Globex Inc"}\n'
            f"Message: {MESSAGE}\nJSON: ")


@pytest.mark.parametrize("entry", [SMOL, GEMMA], ids=[SMOL.name, GEMMA.name])
def test_classify_ticket(generate, entry):
    schema = CASES["enum_classification"]["schema"]
    text = generate(entry, schema, classify_prompt(), 0, 0, num_predict=16)
    label = check_output("enum_classification", schema, text, f"{entry.name} T=0")
    print(f"{entry.name} classifies the ticket as {label!r}")
    if entry is SMOL:
        assert label == "billing"


@pytest.mark.parametrize("entry", [SMOL, GEMMA], ids=[SMOL.name, GEMMA.name])
def test_classify_ticket_with_choice(run_minnow, entry):
    # The same task through --choice: the bare category, no JSON quotes.
    model_path(entry)
    p = run_minnow("run", entry.name, classify_prompt(), "--choice", ",".join(CATEGORIES),
                   "--temperature", "0", "-n", "16")
    assert p.returncode == 0, p.stderr
    label = p.stdout.removesuffix("\n")  # the CLI ends its output with a newline
    print(f"{entry.name} chooses {label!r}")
    assert label in CATEGORIES
    if entry is SMOL:
        assert label == "billing"


@pytest.mark.parametrize("entry", [SMOL, GEMMA], ids=[SMOL.name, GEMMA.name])
def test_extract_contact(generate, entry):
    schema = CASES["extract_contact"]["schema"]
    text = generate(entry, schema, extract_prompt(), 0, 0, num_predict=200, extra=["--raw"])
    doc = check_output("extract_contact", schema, text, f"{entry.name} T=0")
    print(f"{entry.name} extracts {doc}")
    if entry is SMOL:
        assert doc == {"name": "Sarah Chen", "email": "sarah@acme.com", "company": "Acme Corp"}


# --- through the server (when it takes a schema) ----------------------------------------------

def server_takes_format() -> str | None:
    src = (ROOT / "src" / "server" / "api_ollama.cpp").read_text()
    if "'format' (structured output) is not supported" in src:
        return "minnow serve does not take Ollama `format` / OpenAI `response_format` yet"
    return None


SERVED = ["extract_contact", "enum_classification", "tool_call_args", "nested_address",
          "ref_root_recursion", "number_probability"]


@pytest.fixture(scope="module")
def served(minnow_bin):
    reason = server_takes_format() or format_missing_reason(minnow_bin)
    if reason:
        pytest.skip(reason)
    from server_fixture import start_server
    server = start_server()
    yield server
    rc = server.stop()
    assert rc == 0, f"minnow serve exited {rc} on SIGTERM; stderr:\n{server.log()}"


@pytest.mark.parametrize("name", SERVED)
def test_ollama_format_schema(served, name):
    import ollama
    model_path(SMOL)
    case = CASES[name]
    with ollama.Client(host=served.url, timeout=120) as client:
        for temperature, seed in [(0, 0), (0.7, 3), (1.2, 4)]:
            r = client.chat(model=SMOL.name,
                            messages=[{"role": "user", "content": case["prompt"]}],
                            format=case["schema"],
                            options={"temperature": temperature, "seed": seed,
                                     "num_predict": NUM_PREDICT})
            check_output(name, case["schema"], r.message.content, f"ollama T={temperature}")


@pytest.mark.parametrize("name", SERVED)
def test_openai_response_format_schema(served, name):
    import openai
    model_path(SMOL)
    case = CASES[name]
    with openai.OpenAI(base_url=served.url + "/v1", api_key="none", timeout=120) as client:
        for temperature, seed in [(0, 0), (1.2, 5)]:
            r = client.chat.completions.create(
                model=SMOL.name, messages=[{"role": "user", "content": case["prompt"]}],
                response_format={"type": "json_schema",
                                 "json_schema": {"name": name, "schema": case["schema"],
                                                 "strict": True}},
                temperature=temperature, seed=seed, max_tokens=NUM_PREDICT)
            check_output(name, case["schema"], r.choices[0].message.content,
                         f"openai T={temperature}")


def test_unsupported_schema_is_a_clear_error(minnow_bin, tmp_path):
    reason = format_missing_reason(minnow_bin)
    if reason:
        pytest.skip(reason)
    model_path(SMOL)
    path = tmp_path / "schema.json"
    path.write_text(json.dumps({"type": "object",
                                "properties": {"tags": {"type": "array", "uniqueItems": True}}}))
    p = subprocess.run([str(minnow_bin), "run", SMOL.name, "hi", "--format", f"@{path}"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode != 0
    assert "schema at /properties/tags: 'uniqueItems' is not supported" in p.stderr
