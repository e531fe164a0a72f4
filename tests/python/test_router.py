"""The hybrid router end to end (issue 7): three tiers — smollm2:135m -> gemma3:270m -> an
upstream that is a second `minnow serve` on another loopback port, standing in for a cloud API,
behind a fault-injecting proxy (fault_proxy.py) — driven through the official `openai` and
`ollama` clients and plain HTTP.

Covered: rules (tag pin, keyword start), escalation on low confidence (choice mass, mean
logprob), on invalid structured output and on a refusal pattern, streaming with the hold-back
window, accounting (x-minnow-route, the "minnow" field, /metrics, `minnow router report`),
calibration (`minnow eval --calibrate`), and the upstream faults — down, slow, 500, flapping,
circuit breaker — each with exactly one answer per request (the proxy counts what reached the
upstream)."""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests

from conftest import model_cache, model_path
from server_fixture import GEMMA, SMOL, binary, start_server

import fault_proxy

CLOUD_PRICE_IN, CLOUD_PRICE_OUT = 0.15, 0.60
TICKET = ("Classify this support ticket into one of: billing, technical, feature_request, "
          "complaint, other. Ticket: I was charged twice for my subscription this month.")
LABELS = ["billing", "technical", "feature_request", "complaint", "other"]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def router_toml(tmp: Path, name: str, cloud_url: str, *, small: str = "", medium: str = "",
                extra: str = "", cloud: str = "") -> Path:
    """A router file: small (smollm2) -> medium (gemma3) -> cloud (remote)."""
    text = f'''
name = "auto"
hold_tokens = 8
log = "{tmp / (name + '.jsonl')}"
refusal_patterns = ["(?i)i don'?t know", "(?i)\\\\bparis\\\\b"]

[[tier]]
name = "small"
model = "{SMOL.name}"
{small}

[[tier]]
name = "medium"
model = "{GEMMA.name}"
{medium}

[[tier]]
name = "cloud"
base_url = "{cloud_url}"
model = "{GEMMA.name}"
minnow_extensions = true
price_in_per_m = {CLOUD_PRICE_IN}
price_out_per_m = {CLOUD_PRICE_OUT}
timeout_s = 3
max_retries = 2
backoff_ms = 20
backoff_max_ms = 100
breaker_failures = 3
breaker_cooldown_s = 1.5
{cloud}

[[rule]]
name = "to-cloud"
tag = "cloud"
tier = "cloud"
pin = true

[[rule]]
name = "legal-starts-medium"
keywords = ["contract", "lawsuit"]
tier = "medium"
{extra}
'''
    path = tmp / f"{name}.toml"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def upstream():
    model_path(SMOL)
    model_path(GEMMA)
    server = start_server(env={"MINNOW_NUM_PARALLEL": "4"})
    yield server
    assert server.stop() == 0, server.log()


@pytest.fixture(scope="module")
def proxy(upstream):
    port = closed_port()
    srv, thread = fault_proxy.start(port, upstream.url)
    url = f"http://127.0.0.1:{port}"
    yield url
    srv.shutdown()


def set_fault(proxy_url: str, mode: str, **kw) -> None:
    r = requests.post(f"{proxy_url}/_fault", json={"mode": mode, **kw}, timeout=10)
    assert r.status_code == 200, r.text


def proxy_counts(proxy_url: str) -> dict:
    return requests.get(f"{proxy_url}/_fault", timeout=10).json()


@pytest.fixture(scope="module")
def tmp_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("router")


@pytest.fixture(scope="module")
def lenient(tmp_dir, proxy):
    """No confidence thresholds: everything stays on the first tier it starts at."""
    cfg = router_toml(tmp_dir, "lenient", proxy + "/v1")
    server = start_server(extra_args=("--router", str(cfg)), env={"MINNOW_NUM_PARALLEL": "4"})
    server.cfg = cfg
    yield server
    assert server.stop() == 0, server.log()


@pytest.fixture(scope="module")
def strict(tmp_dir, proxy):
    """The small tier trusts nothing (its thresholds cannot be met): every answer of it is
    escalated; the medium tier keeps what is valid and not a refusal."""
    cfg = router_toml(tmp_dir, "strict", proxy + "/v1",
                      small="min_choice_mass = 0.99999\nmin_mean_logprob = -0.00001")
    server = start_server(extra_args=("--router", str(cfg)), env={"MINNOW_NUM_PARALLEL": "4"})
    server.cfg = cfg
    yield server
    assert server.stop() == 0, server.log()


def chat(url: str, content: str, *, model: str = "auto", headers: dict | None = None,
         **extra) -> requests.Response:
    body = {"model": model, "messages": [{"role": "user", "content": content}],
            "temperature": 0, "max_tokens": 24}
    body.update(extra)
    return requests.post(f"{url}/v1/chat/completions", json=body, headers=headers or {},
                         timeout=120)


def route_of(r: requests.Response) -> dict:
    assert r.status_code == 200, r.text
    j = r.json()
    assert "minnow" in j, j
    header = r.headers.get("x-minnow-route", "")
    assert header.startswith(f"tier={j['minnow']['tier']};"), header
    return j["minnow"]


# --- models list, rules -------------------------------------------------------------------

def test_auto_is_listed_and_answers_through_both_clients(lenient):
    import ollama
    import openai

    oa = openai.OpenAI(base_url=lenient.url + "/v1", api_key="x")
    assert "auto" in [m.id for m in oa.models.list().data]
    r = oa.chat.completions.create(model="auto", temperature=0, max_tokens=16,
                                   messages=[{"role": "user", "content": "Name a fruit."}])
    assert r.choices[0].message.content
    extra = r.model_extra or {}
    assert extra["minnow"]["tier"] == "small" and extra["minnow"]["escalated"] is False

    ol = ollama.Client(host=lenient.url)
    assert "auto" in [m.model for m in ol.list().models]
    g = ol.chat(model="auto", messages=[{"role": "user", "content": "Name a colour."}],
                options={"temperature": 0, "num_predict": 12})
    assert g.message.content


def test_a_kept_answer_is_the_tier_model_answer(lenient):
    """Greedy: what auto answers from the small tier is what smollm2 answers directly."""
    direct = chat(lenient.url, "What is the capital of Italy?", model=SMOL.name)
    routed = chat(lenient.url, "What is the capital of Italy?")
    assert route_of(routed)["tier"] == "small"
    assert (routed.json()["choices"][0]["message"]["content"] ==
            direct.json()["choices"][0]["message"]["content"])


def test_rules_pin_by_tag_and_start_by_keyword(lenient):
    r = chat(lenient.url, "Say hello.", headers={"x-minnow-tag": "cloud"})
    route = route_of(r)
    assert route["tier"] == "cloud" and route["rule"] == "to-cloud" and route["local"] is False
    assert route["cost_usd"] > 0
    r = chat(lenient.url, "Summarise this contract clause: the tenant pays rent monthly.")
    route = route_of(r)
    assert route["rule"] == "legal-starts-medium" and route["tier"] == "medium"
    # The tag as a body field (the Ollama API), same rule.
    r = requests.post(f"{lenient.url}/api/chat", timeout=120, json={
        "model": "auto", "stream": False, "tag": "cloud",
        "messages": [{"role": "user", "content": "Say hi."}], "options": {"num_predict": 8}})
    assert r.status_code == 200, r.text
    assert r.json()["minnow"]["tier"] == "cloud"


# --- escalation ---------------------------------------------------------------------------

def test_escalation_on_low_choice_mass(strict):
    r = chat(strict.url, TICKET, choice=LABELS)
    route = route_of(r)
    assert r.json()["choices"][0]["message"]["content"] in LABELS
    first = route["attempts"][0]
    assert first["tier"] == "small" and first["outcome"] == "escalated"
    assert "choice mass" in first["reason"], first
    assert 0 < first["signals"]["choice_mass"] <= 1
    assert route["tier"] == "medium" and route["escalated"] is True


def test_choice_mass_is_a_probability_over_the_labels(lenient):
    """The small tier's label probability is reported, in (0, 1], and agrees with the label
    the model picks greedily (the most likely label has mass > 1/len(labels)) ."""
    route = route_of(chat(lenient.url, TICKET, choice=LABELS))
    mass = route["attempts"][0]["signals"]["choice_mass"]
    assert 1 / len(LABELS) < mass <= 1.0


def test_escalation_on_low_mean_logprob_free_text(strict):
    route = route_of(chat(strict.url, "Write one sentence about the sea."))
    assert route["attempts"][0]["outcome"] == "escalated"
    assert "logprob" in route["attempts"][0]["reason"]
    assert route["tier"] == "medium"


def test_escalation_on_invalid_structure(lenient):
    """A schema answer cut off by the token limit is invalid: escalated tier after tier; the
    last tier's answer is returned (it is the last word), marked invalid in its signals."""
    schema = {"type": "object", "properties": {"name": {"type": "string"},
                                               "email": {"type": "string"}},
              "required": ["name", "email"], "additionalProperties": False}
    r = chat(lenient.url, "Sarah Chen, sarah@acme.com. As JSON.", max_tokens=3,
             response_format={"type": "json_schema",
                              "json_schema": {"name": "c", "schema": schema, "strict": True}})
    route = route_of(r)
    outcomes = [(a["tier"], a["outcome"]) for a in route["attempts"]]
    assert outcomes[:2] == [("small", "escalated"), ("medium", "escalated")], route
    assert all("invalid" in a["reason"] for a in route["attempts"][:2])
    assert route["tier"] == "cloud"


def test_escalation_on_a_refusal_pattern(lenient):
    """The file's refusal patterns include the word Paris (a stand-in for "I don't know" that
    smollm2 says greedily): the small tier's answer escalates, the medium tier's is kept unless
    it says it too."""
    direct = chat(lenient.url, "Which city is the capital of France? Answer in one sentence.", model=SMOL.name)
    assert "paris" in direct.json()["choices"][0]["message"]["content"].lower()
    route = route_of(chat(lenient.url, "Which city is the capital of France? Answer in one sentence."))
    first = route["attempts"][0]
    assert first["tier"] == "small" and first["outcome"] == "escalated", route
    assert first["reason"] == "refusal" and first["signals"]["refusal"] is True
    assert route["tier"] != "small"


# --- streaming ----------------------------------------------------------------------------

def stream_chat(url: str, content: str, **extra) -> tuple[str, dict]:
    body = {"model": "auto", "messages": [{"role": "user", "content": content}],
            "temperature": 0, "max_tokens": 24, "stream": True}
    body.update(extra)
    text, route = "", None
    with requests.post(f"{url}/v1/chat/completions", json=body, stream=True, timeout=120) as r:
        assert r.status_code == 200, r.text
        for line in r.iter_lines():
            if not line.startswith(b"data: ") or line == b"data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            for c in chunk.get("choices", []):
                text += c.get("delta", {}).get("content") or ""
            if "minnow" in chunk:
                route = chunk["minnow"]
    assert route is not None, "the last chunk carries the route"
    return text, route


def test_streaming_sends_only_the_kept_answer(strict, lenient):
    # Escalated: the client sees the medium tier's answer only, equal to that model's own.
    text, route = stream_chat(strict.url, "Write one sentence about the sea.")
    assert route["tier"] == "medium" and route["attempts"][0]["outcome"] == "escalated"
    assert route["streamed"] is True
    direct = chat(strict.url, "Write one sentence about the sea.", model=GEMMA.name)
    assert text == direct.json()["choices"][0]["message"]["content"]
    # Kept after the hold-back window: the whole small answer, streamed.
    text, route = stream_chat(lenient.url, "Write one sentence about the sea.")
    assert route["tier"] == "small"
    direct = chat(lenient.url, "Write one sentence about the sea.", model=SMOL.name)
    assert text == direct.json()["choices"][0]["message"]["content"]


def test_ollama_stream_carries_the_route_in_the_last_object(strict):
    lines = []
    with requests.post(f"{strict.url}/api/generate", stream=True, timeout=120, json={
            "model": "auto", "prompt": TICKET, "choice": LABELS,
            "options": {"temperature": 0}}) as r:
        assert r.status_code == 200
        lines = [json.loads(x) for x in r.iter_lines() if x]
    assert lines[-1]["done"] is True and lines[-1]["minnow"]["tier"] == "medium"
    assert "".join(x.get("response", "") for x in lines) in LABELS


# --- faults -------------------------------------------------------------------------------

def pinned(url: str, content: str = "Say hi.") -> requests.Response:
    return chat(url, content, headers={"x-minnow-tag": "cloud"}, max_tokens=8)


def test_upstream_500_is_retried_then_falls_back(lenient, proxy):
    set_fault(proxy, "ok")
    before = proxy_counts(proxy)
    set_fault(proxy, "500")
    try:
        r = pinned(lenient.url)
        route = route_of(r)
    finally:
        set_fault(proxy, "ok")
    after = proxy_counts(proxy)
    assert after["requests"] - before["requests"] == 3  # 1 + max_retries
    assert after["forwarded"] == before["forwarded"]
    cloud = route["attempts"][0]
    assert cloud["tier"] == "cloud" and cloud["outcome"] == "failed"
    # Pinned to the top: the fallback is a tier below it, which answers once.
    assert route["tier"] in ("medium", "small") and r.json()["choices"][0]["message"]["content"]


def test_flapping_upstream_answers_once(lenient, proxy):
    set_fault(proxy, "flap")
    before = proxy_counts(proxy)
    try:
        route = route_of(pinned(lenient.url))
    finally:
        set_fault(proxy, "ok")
    after = proxy_counts(proxy)
    assert route["tier"] == "cloud"
    # One failed try and one forwarded at most: never a second answer after a good one.
    assert after["forwarded"] - before["forwarded"] == 1
    assert after["requests"] - before["requests"] in (1, 2)


def test_slow_upstream_times_out_and_falls_back(lenient, proxy):
    set_fault(proxy, "slow", delay_s=5)  # > timeout_s = 3
    t0 = time.monotonic()
    try:
        route = route_of(pinned(lenient.url))
    finally:
        set_fault(proxy, "ok")
    assert route["attempts"][0]["outcome"] == "failed"
    assert "tim" in route["attempts"][0]["reason"].lower()
    assert route["tier"] in ("medium", "small")
    assert time.monotonic() - t0 < 3 * 3 + 5 + 30


def test_upstream_down_circuit_opens_then_recovers(tmp_dir, upstream):
    """Nothing listens on the cloud tier's port: connection refused, retried, fallback; after
    breaker_failures calls the breaker opens (calls fail at once); a proxy that comes up on
    that port is tried again after the cooldown."""
    port = closed_port()
    cfg = router_toml(tmp_dir, "down", f"http://127.0.0.1:{port}/v1")
    server = start_server(extra_args=("--router", str(cfg)))
    try:
        for _ in range(3):
            route = route_of(pinned(server.url))
            assert route["attempts"][0]["outcome"] == "failed"
            assert route["tier"] in ("medium", "small")
        metrics = requests.get(f"{server.url}/metrics", timeout=10).text
        assert re.search(r'minnow_router_circuit_open\{router="auto",tier="cloud"\} 1', metrics)
        t0 = time.monotonic()
        route = route_of(pinned(server.url))
        assert "circuit" in route["attempts"][0]["reason"].lower()
        # Bring the upstream up on that port; after the cooldown the trial call closes it.
        srv, _ = fault_proxy.start(port, upstream.url)
        try:
            time.sleep(max(0.0, 1.6 - (time.monotonic() - t0)))
            route = route_of(pinned(server.url))
            assert route["tier"] == "cloud", route
            metrics = requests.get(f"{server.url}/metrics", timeout=10).text
            assert re.search(r'minnow_router_circuit_open\{router="auto",tier="cloud"\} 0',
                             metrics)
        finally:
            srv.shutdown()
    finally:
        assert server.stop() == 0, server.log()


def test_concurrent_requests_each_answered_once(lenient, proxy):
    set_fault(proxy, "flap")
    results = []

    def one(i):
        r = chat(lenient.url, f"Say the number {i}.", headers={"x-minnow-tag": "cloud"},
                 max_tokens=6)
        results.append(r)

    try:
        ts = [threading.Thread(target=one, args=(i,)) for i in range(6)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
    finally:
        set_fault(proxy, "ok")
    assert len(results) == 6
    for r in results:
        route_of(r)


# --- accounting ---------------------------------------------------------------------------

def test_metrics_and_router_report(lenient):
    route_of(chat(lenient.url, "Name a bird."))
    metrics = requests.get(f"{lenient.url}/metrics", timeout=10).text
    m = re.search(r'minnow_router_answered_total\{router="auto",tier="small",local="true"\} (\d+)',
                  metrics)
    assert m and int(m.group(1)) >= 1, metrics
    assert "minnow_router_top_tier_cost_usd_total" in metrics
    log = Path(str(lenient.cfg).replace(".toml", ".jsonl"))
    lines = [json.loads(x) for x in log.read_text().splitlines() if x.strip()]
    assert lines and all("tier" in x and "attempts" in x for x in lines)
    p = subprocess.run([str(binary()), "router", "report", "--log", str(log), "--json"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    rep = json.loads(p.stdout)
    text = json.dumps(rep)
    assert str(len(lines)) in text and "small" in text
    p = subprocess.run([str(binary()), "router", "report", "--log", str(log)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and "escalat" in p.stdout.lower(), p.stdout + p.stderr


# --- calibration --------------------------------------------------------------------------

def test_calibrate_writes_thresholds_and_prints_the_curve(tmp_dir, lenient, proxy):
    set_fault(proxy, "ok")
    cfg = router_toml(tmp_dir, "calib", proxy + "/v1")
    before = cfg.read_text()
    p = subprocess.run([str(binary()), "eval", "--calibrate", str(cfg), "--limit", "15",
                        "--target-accuracy", "0.3", "--max-tokens", "16", "--out", "-"],
                       capture_output=True, text=True, timeout=900,
                       env={**os.environ, "MINNOW_CACHE": str(model_cache())})
    assert p.returncode == 0, p.stdout + p.stderr
    assert "small" in p.stdout and "thresholds written" in p.stdout, p.stdout
    after = cfg.read_text()
    assert after != before
    assert re.search(r"min_(choice_mass|mean_logprob)", after), after
    # The rewritten file loads again and serves.
    check = subprocess.run([str(binary()), "router", "check", str(cfg)], capture_output=True,
                           text=True, timeout=60)
    assert check.returncode == 0, check.stderr


# --- tools through a remote tier ----------------------------------------------------------

def test_tool_calls_answered_by_the_remote_tier(lenient):
    """A tools request pinned to the cloud tier: the upstream's tool_calls come back to the
    client as tool_calls (both APIs), as a local model's would."""
    import openai

    tools = [{"type": "function", "function": {
        "name": "get_weather", "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                       "required": ["city"]}}}]
    oa = openai.OpenAI(base_url=lenient.url + "/v1", api_key="x")
    r = oa.chat.completions.create(
        model="auto", temperature=0, max_tokens=40, tools=tools, tool_choice="required",
        messages=[{"role": "user", "content": "What is the weather in Paris?"}],
        extra_headers={"x-minnow-tag": "cloud"})
    assert r.choices[0].finish_reason == "tool_calls", r
    call = r.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert "city" in json.loads(call.function.arguments)
    assert (r.model_extra or {})["minnow"]["tier"] == "cloud"
    # Locally answered (no tag): the same shape.
    r = oa.chat.completions.create(
        model="auto", temperature=0, max_tokens=40, tools=tools, tool_choice="required",
        messages=[{"role": "user", "content": "What is the weather in Paris?"}])
    assert r.choices[0].finish_reason == "tool_calls"
    assert (r.model_extra or {})["minnow"]["tier"] == "small"
