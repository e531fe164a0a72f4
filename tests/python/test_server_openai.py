"""`minnow serve` through the official `openai` Python SDK: /v1/chat/completions, /v1/completions,
/v1/models, with the OpenAI error shape. Greedy, short generations; content is checked where
SmolLM2 is reliable, token ids for logit_bias come from `minnow tokenize`."""
from __future__ import annotations

import json
import subprocess
import threading

import httpx
import openai
import pytest

from conftest import MODELS, model_cache
from server_fixture import binary, gemma, minnow_server, smol  # noqa: F401

# A question SmolLM2-135M answers with "Paris" under greedy decoding (as llama.cpp does); for
# "What is the capital of France?" its first token is "L" ("L'Étoile..."), in llama.cpp too.
FRANCE = [{"role": "user", "content": "Name the capital city of France."}]
COUNTING = "List the numbers one to ten: 1, 2, 3,"
POEM = [{"role": "user", "content": "Write a short poem about rivers."}]


@pytest.fixture(scope="module")
def client(minnow_server) -> openai.OpenAI:
    with openai.OpenAI(base_url=f"{minnow_server.url}/v1", api_key="x", max_retries=0,
                       timeout=120) as c:
        yield c


@pytest.fixture(scope="module")
def http(minnow_server) -> httpx.Client:
    with httpx.Client(base_url=minnow_server.url, timeout=120) as c:
        yield c


def cold(http, model):
    """Unloads `model` (through the Ollama API: OpenAI's has no such call) so the next request
    evaluates its prompt from scratch; see test_server_ollama.cold for why compared texts are
    generated cold."""
    r = http.post("/api/generate", json={"model": model, "keep_alive": 0})
    assert r.status_code == 200, r.text


def token_id(model: str, text: str) -> int:
    """The single token id of `text`, from `minnow tokenize --ids`."""
    p = subprocess.run([str(binary()), "tokenize", "--no-add-special", "--ids", model, text],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    ids = p.stdout.split()
    assert len(ids) == 1, f"{text!r} is not one token: {ids}"
    return int(ids[0])


def check_usage(usage, *, completion_tokens: int | None = None):
    assert usage is not None
    assert usage.prompt_tokens > 0
    assert usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    if completion_tokens is not None:
        assert usage.completion_tokens == completion_tokens


def check_error(err: openai.APIStatusError, status: int):
    assert err.status_code == status
    body = err.response.json()
    assert set(body) == {"error"}, body
    e = body["error"]
    assert {"message", "type", "param", "code"} <= set(e), e
    assert isinstance(e["message"], str) and e["message"]
    assert isinstance(e["type"], str) and e["type"]


# --- /v1/models -----------------------------------------------------------------------------


def test_models_list_and_retrieve(client):
    present = [m for m in MODELS if (model_cache() / m.file).is_file()]
    listed = list(client.models.list())
    assert {m.id for m in listed} == {m.name for m in present}
    for m in listed:
        assert m.object == "model"
        assert isinstance(m.created, int) and m.created > 0
        assert isinstance(m.owned_by, str) and m.owned_by
    for entry in present:
        m = client.models.retrieve(entry.name)
        assert m.id == entry.name
        assert m.object == "model"


def test_models_list_raw_shape(http):
    body = http.get("/v1/models").json()
    assert body["object"] == "list"
    assert isinstance(body["data"], list)


def test_unknown_model_errors(client):
    with pytest.raises(openai.NotFoundError) as e:
        client.models.retrieve("nosuch:1b")
    check_error(e.value, 404)
    with pytest.raises(openai.NotFoundError) as e:
        client.chat.completions.create(model="nosuch:1b", messages=FRANCE, max_tokens=4)
    check_error(e.value, 404)
    assert "nosuch:1b" in e.value.response.json()["error"]["message"]
    with pytest.raises(openai.NotFoundError) as e:
        client.chat.completions.create(model="nosuch:1b", messages=FRANCE, max_tokens=4,
                                       stream=True)
    check_error(e.value, 404)
    with pytest.raises(openai.NotFoundError) as e:
        client.completions.create(model="nosuch:1b", prompt="hi", max_tokens=4)
    check_error(e.value, 404)


# --- errors ---------------------------------------------------------------------------------


def test_bad_requests_are_400(client, http, smol):
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model=smol, messages=FRANCE, max_tokens=4,
                                       extra_body={"temperature": "hot"})
    check_error(e.value, 400)
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model=smol, messages=[], max_tokens=4)
    check_error(e.value, 400)
    for path in ("/v1/chat/completions", "/v1/completions"):
        r = http.post(path, content=b'{"model": "smollm2:135m", "messages": [',
                      headers={"Content-Type": "application/json"})
        assert r.status_code == 400, path
        err = r.json()["error"]
        assert isinstance(err["message"], str) and err["message"]
        assert err["type"] == "invalid_request_error"


# --- /v1/chat/completions -------------------------------------------------------------------


def test_chat_completion(client, smol):
    r = client.chat.completions.create(model=smol, messages=FRANCE, temperature=0, max_tokens=24)
    assert r.object == "chat.completion"
    assert r.model == smol
    assert isinstance(r.id, str) and r.id
    assert isinstance(r.created, int) and r.created > 1_600_000_000  # seconds since 1970
    assert len(r.choices) == 1
    c = r.choices[0]
    assert c.index == 0
    assert c.message.role == "assistant"
    assert "Paris" in c.message.content
    assert c.finish_reason in ("stop", "length")
    check_usage(r.usage)
    assert r.usage.completion_tokens <= 24


def test_chat_stream_matches_and_usage_chunk(client, http, smol):
    cold(http, smol)
    whole = client.chat.completions.create(model=smol, messages=FRANCE, temperature=0,
                                           max_tokens=24)
    cold(http, smol)
    chunks = list(client.chat.completions.create(model=smol, messages=FRANCE, temperature=0,
                                                 max_tokens=24, stream=True))
    assert chunks
    assert all(ch.object == "chat.completion.chunk" for ch in chunks)
    assert len({ch.id for ch in chunks}) == 1  # one completion, one id
    with_choice = [ch for ch in chunks if ch.choices]
    assert with_choice[0].choices[0].delta.role == "assistant"
    text = "".join(ch.choices[0].delta.content or "" for ch in with_choice)
    assert text == whole.choices[0].message.content
    reasons = [ch.choices[0].finish_reason for ch in with_choice]
    assert reasons[-1] == whole.choices[0].finish_reason
    assert all(r is None for r in reasons[:-1])
    assert all(ch.usage is None for ch in chunks)  # no usage unless asked for

    cold(http, smol)
    chunks = list(client.chat.completions.create(
        model=smol, messages=FRANCE, temperature=0, max_tokens=24, stream=True,
        stream_options={"include_usage": True}))
    last = chunks[-1]
    assert last.choices == []
    check_usage(last.usage)
    assert last.usage == whole.usage
    assert all(ch.usage is None for ch in chunks[:-1])


def test_chat_sse_wire_format(http, smol):
    with http.stream("POST", "/v1/chat/completions", json={
            "model": smol, "messages": FRANCE, "temperature": 0, "max_tokens": 8,
            "stream": True}) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        events = [line for line in r.iter_lines() if line]
    assert all(e.startswith("data: ") for e in events), events[:3]
    assert events[-1] == "data: [DONE]"
    for e in events[:-1]:
        json.loads(e[len("data: "):])


def test_n_choices(client, smol):
    r = client.chat.completions.create(model=smol, messages=POEM, temperature=1.0, seed=5,
                                       max_tokens=12, n=2)
    assert [c.index for c in r.choices] == [0, 1]
    assert all(c.message.content for c in r.choices)
    check_usage(r.usage)


@pytest.mark.parametrize("limit", ["max_tokens", "max_completion_tokens"])
def test_token_limit_gives_length(client, smol, limit):
    r = client.chat.completions.create(model=smol, messages=POEM, temperature=0, **{limit: 3})
    assert r.choices[0].finish_reason == "length"
    check_usage(r.usage, completion_tokens=3)


def test_chat_seed_repeatable(client, http, smol):
    def sample(seed):
        cold(http, smol)
        return client.chat.completions.create(model=smol, messages=POEM, temperature=1.0,
                                              max_tokens=24, seed=seed).choices[0].message.content
    a, b, c = sample(7), sample(7), sample(8)
    assert a == b
    assert a != c


def test_top_p_tiny_is_greedy(client, http, smol):
    cold(http, smol)
    greedy = client.chat.completions.create(model=smol, messages=POEM, temperature=0,
                                            max_tokens=16).choices[0].message.content
    cold(http, smol)
    narrow = client.chat.completions.create(model=smol, messages=POEM, temperature=1.5,
                                            top_p=1e-6, seed=3, max_tokens=16)
    assert narrow.choices[0].message.content == greedy


@pytest.mark.parametrize("penalty", ["presence_penalty", "frequency_penalty"])
def test_penalties_act(client, http, smol, penalty):
    msgs = [{"role": "user", "content": "Repeat the word 'fish' twenty times."}]
    cold(http, smol)
    base = client.chat.completions.create(model=smol, messages=msgs, temperature=0,
                                          max_tokens=20).choices[0].message.content
    cold(http, smol)
    pen = client.chat.completions.create(model=smol, messages=msgs, temperature=0,
                                         max_tokens=20, **{penalty: 2.0})
    assert pen.choices[0].message.content != base


def test_logit_bias(client, http, smol):
    prompt = "The capital of France is"
    cold(http, smol)
    plain = client.completions.create(model=smol, prompt=prompt, temperature=0, max_tokens=4)
    paris = token_id(smol, " Paris")
    # banned: the greedy answer cannot start with it
    cold(http, smol)
    banned = client.completions.create(model=smol, prompt=prompt, temperature=0, max_tokens=4,
                                       logit_bias={str(paris): -100})
    assert banned.choices[0].text != plain.choices[0].text
    assert not banned.choices[0].text.startswith(" Paris")
    # forced: every token is the favoured one
    fish = token_id(smol, " fish")
    forced = client.completions.create(model=smol, prompt=prompt, temperature=0, max_tokens=4,
                                       logit_bias={str(fish): 100})
    assert forced.choices[0].text == " fish" * 4


def test_chat_logprobs(client, smol):
    r = client.chat.completions.create(model=smol, messages=FRANCE, temperature=0, max_tokens=8,
                                       logprobs=True, top_logprobs=3)
    content = r.choices[0].logprobs.content
    assert len(content) == r.usage.completion_tokens
    assert "".join(t.token for t in content) == r.choices[0].message.content
    for t in content:
        assert t.logprob <= 0
        assert len(t.top_logprobs) == 3
        lps = [x.logprob for x in t.top_logprobs]
        assert lps == sorted(lps, reverse=True)
        assert t.logprob <= lps[0] + 1e-6
        for alt in t.top_logprobs:
            if alt.token == t.token:  # the same token has the same logprob in both places
                assert alt.logprob == pytest.approx(t.logprob, abs=1e-4)
    plain = client.chat.completions.create(model=smol, messages=FRANCE, temperature=0,
                                           max_tokens=8)
    assert plain.choices[0].logprobs is None


def test_temperature_zero_picks_the_most_likely_token(client, http, smol):
    """OpenAI's API has no repeat penalty: at temperature 0 each token is the most likely one by
    the logprobs the server reports. (A server that applies Ollama's default repeat_penalty 1.1
    here, as Ollama's own /v1 does, fails this: SmolLM2's system prompt has a ',' and the answer
    then takes ':' instead.)"""
    cold(http, smol)
    r = client.chat.completions.create(model=smol, messages=FRANCE, temperature=0, max_tokens=8,
                                       logprobs=True, top_logprobs=2)
    picked = [(t.token, t.top_logprobs[0].token) for t in r.choices[0].logprobs.content]
    assert all(a == b for a, b in picked), picked


# --- /v1/completions ------------------------------------------------------------------------


def test_completion_and_stream(client, http, smol):
    cold(http, smol)
    r = client.completions.create(model=smol, prompt="The capital of France is", temperature=0,
                                  max_tokens=8)
    assert r.object == "text_completion"
    assert r.model == smol
    c = r.choices[0]
    assert c.index == 0
    assert "Paris" in c.text
    assert c.finish_reason in ("stop", "length")
    check_usage(r.usage)
    cold(http, smol)
    chunks = list(client.completions.create(model=smol, prompt="The capital of France is",
                                            temperature=0, max_tokens=8, stream=True,
                                            stream_options={"include_usage": True}))
    text = "".join(ch.choices[0].text for ch in chunks if ch.choices)
    assert text == c.text
    assert chunks[-1].usage == r.usage


def test_completion_stop_string_and_list(client, http, smol):
    cold(http, smol)
    base = client.completions.create(model=smol, prompt=COUNTING, temperature=0,
                                     max_tokens=30).choices[0].text
    assert " 7" in base and " 5" in base, base
    cold(http, smol)
    one = client.completions.create(model=smol, prompt=COUNTING, temperature=0, max_tokens=30,
                                    stop=" 7").choices[0]
    assert one.text == base[:base.index(" 7")]
    assert one.finish_reason == "stop"
    cold(http, smol)
    many = client.completions.create(model=smol, prompt=COUNTING, temperature=0, max_tokens=30,
                                     stop=[" 7", " 5"]).choices[0]
    assert many.text == base[:base.index(" 5")]
    cold(http, smol)
    chat = client.chat.completions.create(
        model=smol, messages=[{"role": "user", "content": COUNTING}], temperature=0,
        max_tokens=30)
    chat_text = chat.choices[0].message.content
    if " 7" in chat_text:
        cold(http, smol)
        stopped = client.chat.completions.create(
            model=smol, messages=[{"role": "user", "content": COUNTING}], temperature=0,
            max_tokens=30, stop=" 7")
        assert stopped.choices[0].message.content == chat_text[:chat_text.index(" 7")]
        assert stopped.choices[0].finish_reason == "stop"


def test_completion_logprobs(client, smol):
    r = client.completions.create(model=smol, prompt="The capital of France is", temperature=0,
                                  max_tokens=4, logprobs=2)
    lp = r.choices[0].logprobs
    assert len(lp.tokens) == len(lp.token_logprobs) == len(lp.top_logprobs) == 4
    assert "".join(lp.tokens) == r.choices[0].text
    for tok, value, top in zip(lp.tokens, lp.token_logprobs, lp.top_logprobs):
        assert value <= 0
        assert len(top) == 2
        assert max(top.values()) == pytest.approx(value, abs=1e-4)
        assert tok in top


def test_gemma(client, http, gemma):
    r = client.completions.create(model=gemma, prompt="The capital of Japan is",
                                  temperature=0, max_tokens=8)
    assert "Tokyo" in r.choices[0].text
    # its chat answer is not reliable: checked against the Ollama API's for the same request
    # (with repeat_penalty 1: the OpenAI API has none)
    msgs = [{"role": "user", "content": "What is the capital of Japan?"}]
    cold(http, gemma)
    c = client.chat.completions.create(model=gemma, messages=msgs, temperature=0, max_tokens=12)
    cold(http, gemma)
    o = http.post("/api/chat", json={"model": gemma, "messages": msgs, "stream": False,
                                     "options": {"temperature": 0, "num_predict": 12,
                                                 "repeat_penalty": 1}}).json()
    assert c.choices[0].message.content == o["message"]["content"]
    assert c.usage.prompt_tokens == o["prompt_eval_count"]


# --- concurrency, disconnects ---------------------------------------------------------------


def test_concurrent_and_disconnect(client, smol, minnow_server):
    story = [{"role": "user", "content": "Write a long story about a dragon."}]
    # The reference: the question right after a finished request with the abandoned one's
    # prompt, so that both reuse the same cached prefix.
    client.chat.completions.create(model=smol, messages=story, temperature=0, max_tokens=2)
    expected = client.chat.completions.create(model=smol, messages=FRANCE, temperature=0,
                                              max_tokens=24).choices[0].message.content
    # a stream abandoned after its first chunk
    stream = client.chat.completions.create(model=smol, messages=story, temperature=0,
                                            max_tokens=400, stream=True)
    next(iter(stream))
    stream.close()

    out: list[str] = []
    errors: list[BaseException] = []

    def ask():
        try:
            with openai.OpenAI(base_url=f"{minnow_server.url}/v1", api_key="x", max_retries=0,
                               timeout=120) as c:
                r = c.chat.completions.create(model=smol, messages=FRANCE, temperature=0,
                                              max_tokens=24)
                out.append(r.choices[0].message.content)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=ask) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert len(out) == 2
    assert all("Paris" in text for text in out)
    client.chat.completions.create(model=smol, messages=story, temperature=0, max_tokens=2)
    after = client.chat.completions.create(model=smol, messages=FRANCE, temperature=0,
                                           max_tokens=24).choices[0].message.content
    assert after == expected
    assert minnow_server.proc.poll() is None
