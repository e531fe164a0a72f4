"""`minnow serve` under load and at its edges: continuous batching, the prefix cache, the
bounded queue, the memory budget, the request timeout, the API key, CORS and the Host check,
structured output and tool calls through the official clients.

Each group starts its own server with the environment it needs (server_fixture.start_server)."""
from __future__ import annotations

import concurrent.futures as cf
import json
import re
import threading
import time

import ollama
import openai
import pytest
import requests

from conftest import model_path
from server_fixture import SMOL, start_server


@pytest.fixture(scope="module")
def batching_server():
    model_path(SMOL)
    server = start_server(env={"MINNOW_NUM_PARALLEL": "4", "MINNOW_MAX_QUEUE": "32"})
    yield server
    assert server.stop() == 0, server.log()


def generate(url: str, prompt: str, n: int = 24, **extra) -> dict:
    body = {"model": SMOL.name, "prompt": prompt, "stream": False,
            "options": {"temperature": 0, "num_predict": n}}
    body.update(extra)
    r = requests.post(f"{url}/api/generate", json=body, timeout=300)
    assert r.status_code == 200, r.text
    return r.json()


def metric(url: str, name: str) -> float:
    text = requests.get(f"{url}/metrics", timeout=30).text
    m = re.search(rf"^{name} (\S+)$", text, re.M)
    assert m, f"{name} missing from /metrics:\n{text}"
    return float(m.group(1))


PROMPTS = ["Name a fruit.", "What colour is the sky?", "Count from one to five.",
           "Say hello in French.", "What is the capital of Italy?", "Name a large animal.",
           "What do bees make?", "What is ice made of?"]


def test_concurrent_requests_answer_as_they_do_one_at_a_time(batching_server):
    url = batching_server.url
    alone = {p: generate(url, p)["response"] for p in PROMPTS}
    steps_before = metric(url, "minnow_generated_tokens_total")
    with cf.ThreadPoolExecutor(len(PROMPTS)) as pool:
        together = dict(zip(PROMPTS, pool.map(lambda p: generate(url, p)["response"], PROMPTS)))
    # Greedy answers in a batch are those of the same prompts alone (batch-invariant kernels;
    # a prefix from the cache can only change the last bits of attention sums).
    same = sum(together[p] == alone[p] for p in PROMPTS)
    assert same >= len(PROMPTS) - 1, {p: (alone[p], together[p]) for p in PROMPTS}
    assert metric(url, "minnow_generated_tokens_total") > steps_before


def test_streams_of_concurrent_clients_interleave(batching_server):
    """Four streaming clients at once: each sees its first token before the others finish."""
    url = batching_server.url
    first, done = {}, {}

    def stream(i: int) -> None:
        t0 = time.monotonic()
        with requests.post(f"{url}/api/generate", stream=True, timeout=300, json={
                "model": SMOL.name, "prompt": PROMPTS[i], "stream": True,
                "options": {"temperature": 0, "num_predict": 48}}) as r:
            assert r.status_code == 200
            for line in r.iter_lines():
                obj = json.loads(line)
                if obj.get("response") and i not in first:
                    first[i] = time.monotonic() - t0
                if obj.get("done"):
                    done[i] = time.monotonic() - t0

    threads = [threading.Thread(target=stream, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(done) == 4
    # Batched, not one after another: every client had a token before the first one finished.
    assert max(first.values()) < min(done.values()), (first, done)
    assert metric(url, "minnow_running_sequences") == 0


def test_a_shared_prefix_is_served_from_the_block_cache(batching_server):
    url = batching_server.url
    system = " ".join(f"Rule {i}: answer briefly and politely about topic {i}." for i in range(40))
    reused_before = metric(url, "minnow_prefix_blocks_reused_total")
    a = generate(url, "What is rule 3 about?", 4, system=system)
    b = generate(url, "What is rule 7 about?", 4, system=system)
    assert a["prompt_eval_count"] > 300
    reused = metric(url, "minnow_prefix_blocks_reused_total") - reused_before
    assert reused >= (a["prompt_eval_count"] - 40) // 64, reused
    # The second prompt's evaluation is much shorter: only its own tail was evaluated.
    assert b["prompt_eval_duration"] < a["prompt_eval_duration"], (a, b)


def test_a_disconnected_stream_frees_its_blocks(batching_server):
    url = batching_server.url
    with requests.post(f"{url}/api/generate", stream=True, timeout=300, json={
            "model": SMOL.name, "prompt": "Write a very long story about the sea.",
            "options": {"num_predict": 2000}}) as r:
        for i, _ in enumerate(r.iter_lines()):
            if i == 3:
                break  # closes the connection mid-stream
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and metric(url, "minnow_running_sequences") > 0:
        time.sleep(0.1)
    assert metric(url, "minnow_running_sequences") == 0
    assert metric(url, "minnow_kv_cache_used_bytes") == 0


def test_the_bounded_queue_answers_503_with_retry_after():
    model_path(SMOL)
    server = start_server(env={"MINNOW_NUM_PARALLEL": "1", "MINNOW_MAX_QUEUE": "1"})
    try:
        url = server.url
        generate(url, "Hi", 2)  # loaded
        statuses, retry = [], []

        def one(i: int) -> None:
            r = requests.post(f"{url}/api/generate", timeout=300, json={
                "model": SMOL.name, "prompt": f"Tell a long story number {i}.", "stream": False,
                "options": {"num_predict": 60}})
            statuses.append(r.status_code)
            if r.status_code == 503:
                retry.append(r.headers.get("Retry-After"))
                assert "server busy" in r.json()["error"]

        with cf.ThreadPoolExecutor(6) as pool:
            list(pool.map(one, range(6)))
        assert statuses.count(503) >= 1, statuses
        assert statuses.count(200) >= 2, statuses
        assert set(statuses) <= {200, 503}
        assert all(r == "1" for r in retry)
        # OpenAI's error shape for the same condition, through its client.
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0)
        errors = []

        def chat(i: int) -> None:
            try:
                client.chat.completions.create(model=SMOL.name, max_tokens=60,
                                               messages=[{"role": "user", "content": f"Story {i}"}])
            except openai.APIStatusError as e:
                errors.append(e.status_code)

        with cf.ThreadPoolExecutor(6) as pool:
            list(pool.map(chat, range(6)))
        assert errors and set(errors) == {503}, errors
    finally:
        assert server.stop() == 0, server.log()


def test_memory_budget_refuses_a_model_that_cannot_fit():
    model_path(SMOL)
    server = start_server(env={"MINNOW_MAX_MEMORY": "20MiB"})
    try:
        r = requests.post(f"{server.url}/api/generate", timeout=60,
                          json={"model": SMOL.name, "prompt": "Hi", "stream": False})
        assert r.status_code == 507, r.text
        msg = r.json()["error"]
        assert "MINNOW_MAX_MEMORY (20 MiB)" in msg and "needs" in msg, msg
        ps = requests.get(f"{server.url}/api/ps", timeout=30).json()
        assert ps["models"] == []  # nothing was loaded
    finally:
        assert server.stop() == 0, server.log()


def test_request_timeout_stops_a_long_generation():
    model_path(SMOL)
    server = start_server(env={"MINNOW_REQUEST_TIMEOUT": "1"})
    try:
        generate(server.url, "Hi", 2)  # loading is not part of the measure
        t0 = time.monotonic()
        r = requests.post(f"{server.url}/api/generate", timeout=120, json={
            "model": SMOL.name, "prompt": "Write a long essay about rivers.", "stream": False,
            "options": {"num_predict": 100000, "num_ctx": 8192}})
        assert r.status_code == 504, r.text
        assert "request timeout" in r.json()["error"]
        assert time.monotonic() - t0 < 10
    finally:
        assert server.stop() == 0, server.log()


def test_api_key_cors_and_host_check():
    model_path(SMOL)
    server = start_server(env={"MINNOW_API_KEY": "sekret",
                               "MINNOW_ORIGINS": "http://app.example, https://ok.example"})
    try:
        url = server.url
        assert requests.get(f"{url}/health", timeout=30).status_code == 200  # always open
        r = requests.get(f"{url}/api/tags", timeout=30)
        assert r.status_code == 401 and "API key" in r.json()["error"]
        r = requests.get(f"{url}/v1/models", headers={"Authorization": "Bearer wrong"}, timeout=30)
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
        good = openai.OpenAI(base_url=f"{url}/v1", api_key="sekret")
        out = good.chat.completions.create(model=SMOL.name, max_tokens=4,
                                           messages=[{"role": "user", "content": "Hi"}])
        assert out.choices[0].message.content is not None
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=f"{url}/v1", api_key="bad").models.list()
        oc = ollama.Client(host=url, headers={"Authorization": "Bearer sekret"})
        assert any(m.model == SMOL.name for m in oc.list().models)
        auth = {"Authorization": "Bearer sekret"}
        # CORS: an allowed origin gets the headers and its preflight; another is refused.
        r = requests.options(f"{url}/api/chat", timeout=30, headers={
            "Origin": "http://app.example", "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,authorization"})
        assert r.status_code == 204
        assert r.headers["Access-Control-Allow-Origin"] == "http://app.example"
        assert "POST" in r.headers["Access-Control-Allow-Methods"]
        r = requests.get(f"{url}/api/version", headers={**auth, "Origin": "https://ok.example"},
                         timeout=30)
        assert r.status_code == 200
        assert r.headers["Access-Control-Allow-Origin"] == "https://ok.example"
        r = requests.get(f"{url}/api/version", headers={**auth, "Origin": "http://evil.example"},
                         timeout=30)
        assert r.status_code == 403 and "not allowed" in r.json()["error"]
        assert "Access-Control-Allow-Origin" not in r.headers
        # DNS rebinding: a page whose name resolves to 127.0.0.1 sends its own Host.
        r = requests.get(f"{url}/api/version", headers={**auth, "Host": "evil.example:11434"},
                         timeout=30)
        assert r.status_code == 403 and "Host" in r.json()["error"]
        for host in ("localhost:11434", "127.0.0.1", f"127.0.0.1:{server.port}"):
            r = requests.get(f"{url}/api/version", headers={**auth, "Host": host}, timeout=30)
            assert r.status_code == 200, host
    finally:
        assert server.stop() == 0, server.log()


# --- structured output and tools through the official clients -------------------------------

TICKET = "I was charged twice for my subscription this month"
CATEGORIES = ["billing", "technical", "feature_request", "complaint", "other"]
CONTACT = "Hi, I'm Sarah Chen from Acme Corp. Reach me at sarah@acme.com"
CONTACT_SCHEMA = {"type": "object",
                  "properties": {"name": {"type": "string", "maxLength": 40},
                                 "email": {"type": "string", "format": "email"},
                                 "company": {"type": "string", "maxLength": 40}},
                  "required": ["name", "email", "company"], "additionalProperties": False}
WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Get the current weather in a city",
    "parameters": {"type": "object",
                   "properties": {"city": {"type": "string", "maxLength": 40},
                                  "unit": {"enum": ["celsius", "fahrenheit"]}},
                   "required": ["city"]}}}


def test_classification_with_choice_and_enum(batching_server):
    url = batching_server.url
    prompt = f"Classify this support ticket into one category ({', '.join(CATEGORIES)}): {TICKET}"
    for temperature in (0, 0.7, 1.2):
        # "choice" is minnow's extension (the ollama client has no field for it).
        r = requests.post(
            f"{url}/api/generate", timeout=120,
            json={"model": SMOL.name, "prompt": prompt, "stream": False, "choice": CATEGORIES,
                  "options": {"temperature": temperature, "seed": 3}}).json()
        assert r["response"] in CATEGORIES, r
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="x")
    schema = {"type": "object", "properties": {"category": {"enum": CATEGORIES}},
              "required": ["category"], "additionalProperties": False}
    for temperature in (0, 0.7, 1.2):
        out = client.chat.completions.create(
            model=SMOL.name, temperature=temperature, seed=5,
            messages=[{"role": "user", "content": prompt}],
            response_format={"type": "json_schema",
                             "json_schema": {"name": "ticket", "strict": True, "schema": schema}})
        assert json.loads(out.choices[0].message.content)["category"] in CATEGORIES


def test_extraction_with_a_schema_through_both_clients(batching_server):
    url = batching_server.url
    prompt = f"Extract the person's name, email and company as JSON. Text: {CONTACT}"
    r = ollama.Client(host=url).chat(model=SMOL.name, format=CONTACT_SCHEMA,
                                     messages=[{"role": "user", "content": prompt}],
                                     options={"temperature": 0})
    got = json.loads(r.message.content)
    assert set(got) == {"name", "email", "company"} and "@" in got["email"]
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="x")
    for temperature in (0.7, 1.2):
        out = client.chat.completions.create(
            model=SMOL.name, temperature=temperature, seed=11,
            messages=[{"role": "user", "content": prompt}],
            response_format={"type": "json_schema",
                             "json_schema": {"name": "contact", "schema": CONTACT_SCHEMA}})
        got = json.loads(out.choices[0].message.content)
        assert set(got) == {"name", "email", "company"}
        assert re.fullmatch(r"[^@\s]+@[^@\s]+", got["email"]), got


def test_structured_output_errors_are_400_naming_the_feature(batching_server):
    url = batching_server.url
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="x")
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(
            model=SMOL.name, messages=[{"role": "user", "content": "x"}],
            response_format={"type": "json_schema", "json_schema": {
                "name": "x", "schema": {"type": "array", "uniqueItems": True}}})
    assert "uniqueItems" in str(e.value)
    r = requests.post(f"{url}/api/generate", timeout=30, json={
        "model": SMOL.name, "prompt": "x", "stream": False, "regex": "(a)\\1"})
    assert r.status_code == 400 and "regex" in r.json()["error"]
    r = requests.post(f"{url}/api/generate", timeout=30, json={
        "model": SMOL.name, "prompt": "x", "stream": False, "grammar": "root ::= undefined-rule"})
    assert r.status_code == 400 and "undefined-rule" in r.json()["error"]
    r = requests.post(f"{url}/api/generate", timeout=30, json={
        "model": SMOL.name, "prompt": "x", "stream": False, "format": "json",
        "choice": ["a", "b"]})
    assert r.status_code == 400 and "give one" in r.json()["error"]


def test_regex_and_grammar_extensions(batching_server):
    url = batching_server.url
    for temperature in (0, 1.2):
        r = requests.post(f"{url}/api/generate", timeout=120, json={
            "model": SMOL.name, "prompt": "Give a phone number.", "stream": False,
            "regex": r"\+1-[0-9]{3}-[0-9]{3}-[0-9]{4}",
            "options": {"temperature": temperature, "seed": 1}}).json()
        assert re.fullmatch(r"\+1-[0-9]{3}-[0-9]{3}-[0-9]{4}", r["response"]), r
    grammar = 'root ::= "yes" | "no" | "maybe"'
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="x")
    out = client.chat.completions.create(model=SMOL.name, temperature=1.0, seed=2,
                                         messages=[{"role": "user", "content": "Is water wet?"}],
                                         extra_body={"grammar": grammar})
    assert out.choices[0].message.content in ("yes", "no", "maybe")


def test_tool_calls_openai_named_required_and_streamed(batching_server):
    url = batching_server.url
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="x")
    messages = [{"role": "user", "content": "What is the weather in Paris?"}]
    for choice in ("required", {"type": "function", "function": {"name": "get_weather"}}):
        out = client.chat.completions.create(model=SMOL.name, messages=messages,
                                             tools=[WEATHER_TOOL], tool_choice=choice,
                                             temperature=0.8, seed=4)
        c = out.choices[0]
        assert c.finish_reason == "tool_calls"
        call = c.message.tool_calls[0]
        assert call.type == "function" and call.function.name == "get_weather"
        args = json.loads(call.function.arguments)
        assert isinstance(args["city"], str)
        assert set(args) <= {"city", "unit"}
    calls, finish = [], None
    for chunk in client.chat.completions.create(model=SMOL.name, messages=messages,
                                                tools=[WEATHER_TOOL], tool_choice="required",
                                                temperature=0, stream=True):
        if chunk.choices and chunk.choices[0].delta.tool_calls:
            calls += chunk.choices[0].delta.tool_calls
        if chunk.choices and chunk.choices[0].finish_reason:
            finish = chunk.choices[0].finish_reason
    assert finish == "tool_calls" and calls[0].function.name == "get_weather"
    json.loads(calls[0].function.arguments)
    # The result goes back as a tool message; the model answers in text.
    call = out.choices[0].message.tool_calls[0]
    follow = client.chat.completions.create(
        model=SMOL.name, temperature=0, max_tokens=30, tools=[WEATHER_TOOL], tool_choice="none",
        messages=messages + [
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": call.id, "type": "function",
                 "function": {"name": call.function.name, "arguments": call.function.arguments}}]},
            {"role": "tool", "tool_call_id": call.id, "content": "18 degrees and sunny"}])
    assert follow.choices[0].finish_reason in ("stop", "length")
    assert follow.choices[0].message.content
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model=SMOL.name, messages=messages, tools=[WEATHER_TOOL],
                                       tool_choice={"type": "function",
                                                    "function": {"name": "nope"}})


def test_tool_calls_ollama(batching_server):
    client = ollama.Client(host=batching_server.url)
    # The ollama client has no tool_choice; a system prompt asking for the call and the
    # grammar's "{" branch make it, and the answer must parse either way.
    r = client.chat(model=SMOL.name, tools=[WEATHER_TOOL], options={"temperature": 0},
                    messages=[{"role": "user", "content": "What is the weather in Paris?"}])
    if r.message.tool_calls:
        call = r.message.tool_calls[0]
        assert call.function.name == "get_weather"
        assert isinstance(call.function.arguments["city"], str)
    else:
        assert r.message.content and not r.message.content.lstrip().startswith("{")
    r = requests.post(f"{batching_server.url}/api/chat", timeout=120, json={
        "model": SMOL.name, "stream": True, "tools": [WEATHER_TOOL], "tool_choice": "required",
        "messages": [{"role": "user", "content": "Weather in Oslo?"}],
        "options": {"temperature": 0}})
    lines = [json.loads(x) for x in r.iter_lines() if x]
    calls = [c for x in lines for c in x.get("message", {}).get("tool_calls", []) or []]
    assert calls and calls[0]["function"]["name"] == "get_weather"
    assert isinstance(calls[0]["function"]["arguments"], dict)
    assert lines[-1]["done"] is True


def raw_post(url: str, path: str, body: dict):
    """Sends a request on a raw socket and returns the socket (nothing read)."""
    import socket
    from urllib.parse import urlparse
    u = urlparse(url)
    s = socket.create_connection((u.hostname, u.port))
    data = json.dumps(body).encode()
    s.sendall(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
              f"Content-Length: {len(data)}\r\n\r\n".encode() + data)
    return s


def wait_metric(url: str, name: str, pred, seconds: float = 10) -> float:
    deadline = time.monotonic() + seconds
    v = metric(url, name)
    while not pred(v) and time.monotonic() < deadline:
        time.sleep(0.05)
        v = metric(url, name)
    return v


def test_disconnects_cancel_waiting_and_unstreamed_requests():
    model_path(SMOL)
    server = start_server(env={"MINNOW_NUM_PARALLEL": "1"})
    try:
        url = server.url
        generate(url, "Hi", 2)
        long = {"model": SMOL.name, "prompt": "Write a very long story about ships.",
                "options": {"num_predict": 5000, "num_ctx": 8192}}
        # Not streamed: the client goes away while it generates.
        a = raw_post(url, "/api/generate", {**long, "stream": False})
        assert wait_metric(url, "minnow_running_sequences", lambda v: v == 1) == 1
        a.close()
        assert wait_metric(url, "minnow_running_sequences", lambda v: v == 0, 3) == 0
        assert metric(url, "minnow_kv_cache_used_bytes") == 0
        # Queued behind another: it leaves the queue when its client goes away.
        b = raw_post(url, "/api/generate", {**long, "stream": True})
        assert wait_metric(url, "minnow_running_sequences", lambda v: v == 1) == 1
        c = raw_post(url, "/api/generate", {**long, "stream": True})
        assert wait_metric(url, "minnow_queue_depth", lambda v: v == 1) == 1
        c.close()
        assert wait_metric(url, "minnow_queue_depth", lambda v: v == 0, 3) == 0
        assert metric(url, "minnow_running_sequences") == 1  # the other one goes on
        b.close()
        assert wait_metric(url, "minnow_running_sequences", lambda v: v == 0, 3) == 0
    finally:
        assert server.stop() == 0, server.log()


def test_num_thread_sets_the_model_up_with_that_many_threads(batching_server):
    url = batching_server.url
    a = generate(url, "Name a fruit.", 8, options={"temperature": 0, "num_predict": 8,
                                                    "num_thread": 1})
    b = generate(url, "Name a fruit.", 8, options={"temperature": 0, "num_predict": 8,
                                                    "num_thread": 2})
    assert a["response"] == b["response"]  # results do not depend on the thread count
    r = requests.post(f"{url}/api/generate", timeout=30, json={
        "model": SMOL.name, "prompt": "x", "stream": False, "options": {"num_thread": -3}})
    assert r.status_code == 400 and "num_thread" in r.json()["error"]


def test_go_template_in_a_request_and_a_modelfile(batching_server):
    url = batching_server.url
    chatml = ("{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n"
              "{{ end }}<|im_start|>assistant\n")
    base = {"model": SMOL.name, "stream": False, "options": {"temperature": 0, "num_predict": 12}}
    # SmolLM2's own template is ChatML (with a system message given, it adds no default one):
    # the same text through the Go template gives the same answer.
    msgs = [{"role": "system", "content": "You answer briefly."},
            {"role": "user", "content": "Name a fruit."}]
    own = requests.post(f"{url}/api/chat", timeout=60, json={**base, "messages": msgs}).json()
    via = requests.post(f"{url}/api/chat", timeout=60,
                        json={**base, "template": chatml, "messages": msgs}).json()
    assert via["message"]["content"] == own["message"]["content"]
    # A template that changes the prompt changes the answer's context: /api/generate with one.
    r = requests.post(f"{url}/api/generate", timeout=60, json={
        **base, "prompt": "Paris is the capital of", "template": "{{ .Prompt }}"}).json()
    assert r["response"].strip()
    bad = requests.post(f"{url}/api/generate", timeout=60, json={
        **base, "prompt": "x", "template": "{{ if .Prompt }}unterminated"})
    assert bad.status_code == 400 and "'template'" in bad.json()["error"]
    # A store model whose Modelfile has TEMPLATE uses it.
    client = ollama.Client(host=url)
    client.create(model="smol-gotmpl", from_=SMOL.name, template=chatml,
                  parameters={"temperature": 0, "num_predict": 12})
    r = client.chat(model="smol-gotmpl", messages=msgs)
    assert r.message.content == own["message"]["content"]
    client.delete("smol-gotmpl")


def test_memory_budget_evicts_the_least_recently_used_idle_model():
    from server_fixture import GEMMA
    model_path(SMOL)
    model_path(GEMMA)
    # Each of the two fits 800 MiB with its KV pool (4 × 4096 positions); both do not.
    server = start_server(env={"MINNOW_MAX_MEMORY": "800MiB"})
    try:
        url = server.url

        def loaded():
            return sorted(m["name"] for m in requests.get(f"{url}/api/ps", timeout=30).json()["models"])

        generate(url, "Hi", 2)
        assert loaded() == [SMOL.name]
        r = requests.post(f"{url}/api/generate", timeout=120, json={
            "model": GEMMA.name, "prompt": "The sky is", "raw": True, "stream": False,
            "options": {"num_predict": 2}})
        assert r.status_code == 200, r.text
        assert loaded() == [GEMMA.name]  # SmolLM2 was idle: unloaded to make room
        # While one model is generating it cannot be unloaded: the other is refused as busy.
        with requests.post(f"{url}/api/generate", stream=True, timeout=300, json={
                "model": GEMMA.name, "prompt": "Write a long story.",
                "options": {"num_predict": 3000}}) as long_run:
            next(long_run.iter_lines())  # generating
            busy = requests.post(f"{url}/api/generate", timeout=60, json={
                "model": SMOL.name, "prompt": "Hi", "stream": False})
            assert busy.status_code == 503, busy.text
            assert "MINNOW_MAX_MEMORY" in busy.json()["error"]
            assert busy.headers.get("Retry-After") == "1"
    finally:
        assert server.stop() == 0, server.log()
