"""The model store over Ollama's API, through the official `ollama` client: create (from a
model, a GGUF path, uploaded blobs, a Modelfile text), copy, delete, pull (streamed and not,
from a Hugging Face stand-in on loopback), list and show; errors in Ollama's shape."""
from __future__ import annotations

import hashlib

import httpx
import ollama
import pytest

from conftest import MODELS, model_cache
from server_fixture import start_server
from store_hub import FakeHub, HubFile, tiny_gguf

SMOL = MODELS[0]


@pytest.fixture(scope="module")
def hub():
    h = FakeHub()
    yield h
    h.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory, hub):
    """A `minnow serve` over a fresh store, with the real model cache and the fake hub."""
    root = tmp_path_factory.mktemp("store") / "models"
    server = start_server(env={"MINNOW_MODELS": str(root), "MINNOW_HF_ENDPOINT": hub.url})
    server.root = root
    yield server
    assert server.stop() == 0, server.log()


@pytest.fixture
def client(served):
    c = ollama.Client(host=served.url)
    yield c
    c._client.close()  # an idle keep-alive connection would hold up the server's drain


@pytest.fixture
def gguf_file(tmp_path):
    path = tmp_path / "tiny.gguf"
    path.write_bytes(tiny_gguf(9.0))
    return path


def listed(client) -> set[str]:
    return {m.model for m in client.list().models}


def show_raw(served, name: str) -> dict:
    """/api/show as JSON: the client's ShowResponse drops "system" and "messages"."""
    r = httpx.post(served.url + "/api/show", json={"model": name})
    assert r.status_code == 200, r.text
    return r.json()


def error_of(excinfo) -> tuple[int, str]:
    return excinfo.value.status_code, str(excinfo.value.error)


def test_create_from_a_gguf_path_then_show_copy_delete(served, client, gguf_file):
    r = client.create(model="tiny-api", from_=str(gguf_file), system="Be brief.",
                      template="{{ .Prompt }}", license="MIT",
                      parameters={"temperature": 0.4, "stop": ["<end>", "###"], "num_ctx": 256},
                      messages=[{"role": "user", "content": "hi"},
                                {"role": "assistant", "content": "hello"}])
    assert r.status == "success"
    assert "tiny-api:latest" in listed(client)
    entry = next(m for m in client.list().models if m.model == "tiny-api:latest")
    assert entry.size > gguf_file.stat().st_size  # the GGUF plus the text layers
    assert entry.details.family == "llama" and entry.details.format == "gguf"

    show = client.show("tiny-api")
    assert show.template == "{{ .Prompt }}"
    assert show.license == "MIT"
    raw = show_raw(served, "tiny-api")
    assert raw["system"] == "Be brief."
    assert raw["messages"] == [{"role": "user", "content": "hi"},
                                {"role": "assistant", "content": "hello"}]
    params = [line.split(None, 1) for line in show.parameters.splitlines()]
    assert params == [["num_ctx", "256"], ["stop", '"<end>"'], ["stop", '"###"'],
                      ["temperature", "0.4"]]
    sha = hashlib.sha256(gguf_file.read_bytes()).hexdigest()
    assert f"sha256-{sha}" in show.modelfile and "SYSTEM Be brief." in show.modelfile

    assert client.copy("tiny-api", "team/tiny-api:v2").status == "success"
    assert {"tiny-api:latest", "team/tiny-api:v2"} <= listed(client)
    assert client.delete("tiny-api").status == "success"
    assert client.delete("team/tiny-api:v2").status == "success"
    assert not {"tiny-api:latest", "team/tiny-api:v2"} & listed(client)
    with pytest.raises(ollama.ResponseError) as e:
        client.delete("tiny-api")
    assert error_of(e) == (404, "model 'tiny-api:latest' not found")


def test_create_streams_progress(client, gguf_file):
    parts = list(client.create(model="streamed", from_=str(gguf_file), stream=True))
    assert parts[-1].status == "success"
    assert any("writing manifest" == p.status for p in parts)
    client.delete("streamed")


def test_create_from_uploaded_blobs(served, client, gguf_file):
    digest = client.create_blob(gguf_file)
    assert digest == "sha256:" + hashlib.sha256(gguf_file.read_bytes()).hexdigest()
    r = client.create(model="from-blob", files={"tiny.gguf": digest}, system="blob")
    assert r.status == "success"
    assert show_raw(served, "from-blob")["system"] == "blob"
    client.delete("from-blob")


def test_create_with_a_modelfile_text(served, client, gguf_file):
    r = httpx.post(served.url + "/api/create", json={
        "model": "legacy", "stream": False,
        "modelfile": f"FROM {gguf_file}\nPARAMETER top_k 5\nSYSTEM from text\n"})
    assert r.status_code == 200, r.text
    assert r.json() == {"status": "success"}
    show = show_raw(served, "legacy")
    assert show["system"] == "from text" and show["parameters"].split() == ["top_k", "5"]
    client.delete("legacy")


def test_create_errors(served, client, gguf_file):
    cases = [
        (dict(from_=str(gguf_file), parameters={"mirostat": 1}), 400, "unknown parameter 'mirostat'"),
        (dict(from_=str(gguf_file), parameters={"top_k": "lots"}), 400, "not an integer"),
        (dict(from_=str(gguf_file), adapters={"a.gguf": "sha256:" + "0" * 64}), 400,
         "reserved for LoRA adapters"),
        (dict(from_="no-such-model"), 404, "no model of that name"),
        (dict(files={"x.gguf": "sha256:" + "0" * 64}), 400, "is not on the server"),
        (dict(files={"x.gguf": "md5:abc"}), 400, "invalid digest"),
        (dict(), 400, "'from'"),
    ]
    for kwargs, status, needle in cases:
        with pytest.raises(ollama.ResponseError) as e:
            client.create(model="bad", **kwargs)
        code, message = error_of(e)
        assert code == status and needle in message, (kwargs, code, message)
    with pytest.raises(ollama.ResponseError) as e:
        client.create(model="../up", from_=str(gguf_file))
    assert error_of(e)[0] == 400 and "invalid model name" in error_of(e)[1]
    r = httpx.post(served.url + "/api/blobs/sha256:" + "0" * 64, content=b"not that")
    assert r.status_code == 400 and "sha256" in r.json()["error"]
    assert httpx.head(served.url + "/api/blobs/sha256:" + "1" * 64).status_code == 404
    assert httpx.head(served.url + "/api/blobs/sha256:XYZ").status_code == 400
    assert "bad:latest" not in listed(client)


def test_copy_errors(client):
    with pytest.raises(ollama.ResponseError) as e:
        client.copy("absent-model", "x")
    assert error_of(e)[0] == 404
    with pytest.raises(ollama.ResponseError) as e:
        client.copy("absent-model", "/etc/passwd")
    assert error_of(e)[0] == 400


def test_pull_streamed_and_not(client, hub, served):
    f = hub.add("api", "Tiny-GGUF", "tiny-Q4_K_M.gguf",
                HubFile(tiny_gguf(10.0, n=600_000), drop_first=1))
    parts = list(client.pull("hf.co/api/Tiny-GGUF", stream=True))
    statuses = [p.status for p in parts]
    assert statuses[0] == "pulling manifest" and statuses[-1] == "success"
    downloading = [p for p in parts if p.total]
    assert downloading and all(p.digest == f"sha256:{f.sha}" for p in downloading)
    assert all(p.total == len(f.data) for p in downloading)
    assert downloading[-1].completed == len(f.data)
    assert [p.completed for p in downloading] == sorted(p.completed for p in downloading)
    assert "verifying sha256 digest" in statuses and "writing manifest" in statuses
    assert "hf.co/api/Tiny-GGUF:latest" in listed(client)
    assert (served.root / "blobs" / f"sha256-{f.sha}").read_bytes() == f.data

    g = hub.add("api", "Other-GGUF", "o-Q8_0.gguf", HubFile(tiny_gguf(11.0)))
    assert client.pull("hf.co/api/Other-GGUF:Q8_0").status == "success"
    assert client.show("hf.co/api/Other-GGUF:Q8_0").details.family == "llama"
    del g


def test_pull_errors(client, hub):
    data = tiny_gguf(12.0)
    hub.add("api", "Bad", "bad-Q4_K_M.gguf", HubFile(data, published_sha="b" * 64))
    with pytest.raises(ollama.ResponseError) as e:
        client.pull("hf.co/api/Bad")
    assert "sha256 mismatch" in error_of(e)[1]
    with pytest.raises(ollama.ResponseError) as e:  # streamed: the error arrives as a line
        list(client.pull("hf.co/api/Bad", stream=True))
    assert "sha256 mismatch" in str(e.value.error)
    with pytest.raises(ollama.ResponseError) as e:
        client.pull("hf.co/api/Absent")
    assert error_of(e)[0] == 404
    with pytest.raises(ollama.ResponseError) as e:
        client.pull("llama3.2")
    assert error_of(e)[0] == 400 and "hf.co/USER/REPO" in error_of(e)[1]
    assert "hf.co/api/Bad:latest" not in listed(client)


def test_store_names_serve_requests(client, tmp_path):
    """A model created from smollm2:135m answers under its new name, and `minnow ps` shows it."""
    if not (model_cache() / SMOL.file).is_file():
        pytest.skip(f"{SMOL.file} is not in the model cache; run scripts/quickstart.sh")
    assert SMOL.name in listed(client)  # the known model joined the store
    client.create(model="smol-copy", from_=SMOL.name, parameters={"temperature": 0})
    r = client.generate(model="smol-copy", prompt="What is the capital of France?",
                        options={"num_predict": 8, "temperature": 0})
    assert r.response.strip()
    assert "smol-copy" in {m.model for m in client.ps().models}
    client.delete("smol-copy")
    assert SMOL.name in listed(client)  # its blob is still used by smollm2:135m


def test_minnow_ps_asks_the_server(served, run_minnow, client):
    p = run_minnow("ps", env={"MINNOW_HOST": f"{served.host}:{served.port}"})
    assert p.returncode == 0, p.stderr
    assert p.stdout.split()[:5] == ["NAME", "ID", "SIZE", "CONTEXT", "UNTIL"]
    loaded = {m.model for m in client.ps().models}
    for name in loaded:
        assert name in p.stdout


def test_pull_a_known_model_registers_it_again(client):
    """Clients pull before they chat: a known model comes from the cache, no download."""
    if not (model_cache() / SMOL.file).is_file():
        pytest.skip(f"{SMOL.file} is not in the model cache; run scripts/quickstart.sh")
    assert client.delete(SMOL.name).status == "success"
    assert SMOL.name not in listed(client)  # removed stays removed
    parts = list(client.pull(SMOL.name, stream=True))
    assert [p.status for p in parts] == ["pulling manifest", "success"]
    assert SMOL.name in listed(client)
