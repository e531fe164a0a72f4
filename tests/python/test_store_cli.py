"""`minnow create / list / show / cp / rm / pull / ps` against a model store in a temporary
folder (MINNOW_MODELS), pulls from a Hugging Face stand-in on loopback (store_hub.py)."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from conftest import MODELS, model_cache
from store_hub import FakeHub, HubFile, tiny_gguf


@pytest.fixture
def hub():
    h = FakeHub()
    yield h
    h.close()


@pytest.fixture
def store(tmp_path, hub, run_minnow):
    """run(*args) -> CompletedProcess, with a fresh store, no known models, and the fake hub."""
    env = {"MINNOW_MODELS": str(tmp_path / "models"), "MINNOW_CACHE": str(tmp_path / "no-cache"),
           "MINNOW_HF_ENDPOINT": hub.url}

    def run(*args, extra_env=None, **kw):
        return run_minnow(*args, env={**env, **(extra_env or {})}, **kw)
    run.root = tmp_path / "models"
    run.dir = tmp_path
    return run


def ok(p):
    assert p.returncode == 0, f"exit {p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}"
    return p


def fails(p, *needles):
    assert p.returncode != 0, f"unexpected success:\n{p.stdout}\n{p.stderr}"
    for n in needles:
        assert n in p.stderr, f"{n!r} not in:\n{p.stderr}"
    return p


def names(run) -> list[str]:
    lines = ok(run("list")).stdout.splitlines()
    assert lines[0].split() == ["NAME", "ID", "SIZE", "MODIFIED"]
    return [l.split()[0] for l in lines[1:]]


def blobs(run) -> set[str]:
    d = run.root / "blobs"
    return {p.name for p in d.iterdir()} if d.exists() else set()


def test_create_show_cp_rm(store):
    gguf = store.dir / "tiny.gguf"
    gguf.write_bytes(tiny_gguf())
    (store.dir / "Modelfile").write_text('''# a helper
FROM ./tiny.gguf
PARAMETER temperature 0.2
PARAMETER stop "<|im_end|>"
PARAMETER stop User:
PARAMETER num_ctx 512
TEMPLATE """{{ .System }}
{{ .Prompt }}"""
SYSTEM """You are terse.
Very terse."""
MESSAGE user hello
MESSAGE assistant hi
LICENSE MIT
''')
    ok(store("create", "helper", "-f", str(store.dir / "Modelfile")))
    assert names(store) == ["helper:latest"]
    sha = hashlib.sha256(gguf.read_bytes()).hexdigest()
    assert (store.root / "blobs" / f"sha256-{sha}").read_bytes() == gguf.read_bytes()
    manifest = json.loads((store.root / "manifests/registry.ollama.ai/library/helper/latest")
                          .read_text())
    types = [l["mediaType"].rsplit(".", 1)[1] for l in manifest["layers"]]
    assert types == ["model", "params", "template", "system", "messages", "license"]
    assert manifest["layers"][0]["digest"] == f"sha256:{sha}"

    assert ok(store("show", "helper", "--system")).stdout == "You are terse.\nVery terse.\n"
    assert ok(store("show", "helper", "--template")).stdout == "{{ .System }}\n{{ .Prompt }}\n"
    params = ok(store("show", "helper", "--parameters")).stdout.splitlines()
    assert [p.split(None, 1) for p in params] == [
        ["num_ctx", "512"], ["stop", '"<|im_end|>"'], ["stop", '"User:"'],
        ["temperature", "0.2"]]
    summary = ok(store("show", "helper")).stdout
    assert "architecture" in summary and "llama" in summary and "MIT" in summary

    # The Modelfile `show` prints builds the same model again.
    mf = ok(store("show", "helper", "--modelfile")).stdout
    (store.dir / "Modelfile2").write_text(mf)
    ok(store("create", "again", "-f", str(store.dir / "Modelfile2")))
    for part in ("--system", "--template", "--parameters"):
        assert ok(store("show", "again", part)).stdout == ok(store("show", "helper", part)).stdout

    ok(store("cp", "helper", "team/helper:v2"))
    assert names(store) == ["again:latest", "helper:latest", "team/helper:v2"]
    before = blobs(store)
    ok(store("rm", "helper"))
    ok(store("rm", "again"))
    assert blobs(store) == before  # team/helper:v2 still uses them all
    ok(store("rm", "team/helper:v2"))
    assert names(store) == []
    assert blobs(store) == set()


def test_create_errors(store):
    mf = store.dir / "Modelfile"
    cases = {
        "FROM ./absent.gguf\n": "no such GGUF file",
        "FROM x\nADAPTER ./lora.gguf\n": "ADAPTER is reserved for LoRA adapters, not supported yet",
        "FROM x\nPARAMETER mirostat 2\n": "unknown parameter 'mirostat'",
        "FROM x\nPARAMETER top_k many\n": "'many' is not an integer",
        "SYSTEM no from\n": "no FROM line",
        'FROM x\nSYSTEM """never closed\n': "unterminated",
    }
    for text, needle in cases.items():
        mf.write_text(text)
        fails(store("create", "m", "-f", str(mf)), needle)
    (store.dir / "junk.gguf").write_bytes(b"GGUF but not really")
    mf.write_text("FROM junk.gguf\n")
    fails(store("create", "m", "-f", str(mf)), "not a valid GGUF file")
    mf.write_text(f"FROM {store.dir / 'junk.gguf'}\n")
    fails(store("create", "../escape", "-f", str(mf)), "invalid model name")
    fails(store("create", "m", "-f", str(store.dir / "absent")), "cannot read the Modelfile")
    assert names(store) == []


def test_bad_names_and_missing_models(store):
    fails(store("rm", "nothing"), "model 'nothing:latest' not found")
    fails(store("cp", "nothing", "x"), "not found")
    fails(store("cp", "a", "/abs/path"), "invalid model name")
    fails(store("rm", "a/b/c/d"), "at most host/namespace/model")
    fails(store("show", "nothing"), "unknown model 'nothing'")
    fails(store("pull", "llama3"), "hf.co/USER/REPO")
    fails(store("pull", MODELS[0].name), "is not in the model cache")  # MINNOW_CACHE is empty


def test_pull_picks_the_quant_and_verifies(store, hub):
    q4 = hub.add("me", "Tiny-GGUF", "tiny-Q4_K_M.gguf", HubFile(tiny_gguf(1.0)))
    q8 = hub.add("me", "Tiny-GGUF", "tiny-Q8_0.gguf", HubFile(tiny_gguf(2.0)))
    p = ok(store("pull", "hf.co/me/Tiny-GGUF:q8_0"))  # QUANT is case-insensitive
    assert f"sha256:{q8.sha}" in p.stdout
    assert "pulling manifest" in p.stderr and "success" in p.stderr
    ok(store("pull", "hf.co/me/Tiny-GGUF"))  # default Q4_K_M
    assert names(store) == ["hf.co/me/Tiny-GGUF:latest", "hf.co/me/Tiny-GGUF:q8_0"]
    for f in (q4, q8):
        assert (store.root / "blobs" / f"sha256-{f.sha}").read_bytes() == f.data
    assert not [b for b in blobs(store) if "partial" in b]
    # Pulled again: nothing downloaded.
    n = len(hub.ranges("tiny-Q8_0.gguf"))
    ok(store("pull", "hf.co/me/Tiny-GGUF:Q8_0"))
    assert len(hub.ranges("tiny-Q8_0.gguf")) == n

    fails(store("pull", "hf.co/me/Tiny-GGUF:Q2_K"), "no .gguf file matching 'Q2_K'",
          "tiny-Q4_K_M.gguf")
    fails(store("pull", "hf.co/me/Absent"), "no such repository")


def test_pull_resumes_a_dropped_connection(store, hub):
    f = hub.add("me", "Drop", "drop-Q4_K_M.gguf", HubFile(tiny_gguf(3.0, n=200_000), drop_first=2))
    ok(store("pull", "hf.co/me/Drop"))
    got = hub.ranges("drop-Q4_K_M.gguf")
    # Three downloads: the whole file, then two resumes from where each one stopped.
    assert got[0] is None and len(got) == 3, got
    first_cut = len(f.data) // 2
    assert got[1] == f"bytes={first_cut}-"
    assert got[2] == f"bytes={first_cut + (len(f.data) - first_cut) // 2}-"
    assert (store.root / "blobs" / f"sha256-{f.sha}").read_bytes() == f.data


def test_pull_resumes_across_runs(store, hub):
    f = hub.add("me", "Flaky", "flaky-Q4_K_M.gguf", HubFile(tiny_gguf(4.0, n=100_000), drop_first=5))
    fails(store("pull", "hf.co/me/Flaky"), "run pull again to resume")
    partial = store.root / "blobs" / f"sha256-{f.sha}-partial"
    assert partial.exists() and 0 < partial.stat().st_size < len(f.data)
    kept = partial.stat().st_size
    assert names(store) == []
    ok(store("pull", "hf.co/me/Flaky"))
    assert hub.ranges("flaky-Q4_K_M.gguf")[-1] == f"bytes={kept}-"
    assert not partial.exists()
    assert names(store) == ["hf.co/me/Flaky:latest"]


def test_pull_refuses_wrong_size_and_wrong_hash(store, hub):
    data = tiny_gguf(5.0)
    hub.add("me", "Big", "big-Q4_K_M.gguf", HubFile(data, published_size=len(data) + 100))
    fails(store("pull", "hf.co/me/Big"), "published size")
    bad = hub.add("me", "Bad", "bad-Q4_K_M.gguf",
                  HubFile(data, published_sha=hashlib.sha256(b"other").hexdigest()))
    fails(store("pull", "hf.co/me/Bad"), "sha256 mismatch", "the download was deleted")
    junk = b"not a gguf file " * 100
    hub.add("me", "Junk", "junk-Q4_K_M.gguf", HubFile(junk))
    fails(store("pull", "hf.co/me/Junk"), "not a valid GGUF file")
    assert names(store) == []
    # Nothing registered, nothing left: no blob, no partial, no temporary file.
    assert blobs(store) == set(), blobs(store)
    del bad


def test_pull_a_url(store, hub):
    f = hub.files["Some.Model-Q4.gguf"] = HubFile(tiny_gguf(6.0))
    p = ok(store("pull", f"{hub.url}/files/Some.Model-Q4.gguf"))
    assert f"sha256:{f.sha}" in p.stdout
    assert names(store) == ["some.model-q4:latest"]
    ok(store("pull", f"{hub.url}/files/Some.Model-Q4.gguf", "--name", "mine:v1"))
    assert "mine:v1" in names(store)
    hub.files["lie.gguf"] = HubFile(tiny_gguf(7.0), published_sha="a" * 64)
    fails(store("pull", f"{hub.url}/files/lie.gguf"), "sha256 mismatch")
    # A server without X-Linked-* headers: the size comes from Content-Length, no hash to check.
    hub.files["plain.gguf"] = HubFile(tiny_gguf(8.0), linked_headers=False)
    ok(store("pull", f"{hub.url}/files/plain.gguf"))
    fails(store("pull", f"{hub.url}/files/absent.gguf"), "HTTP 404")
    fails(store("pull", f"{hub.url}/files/readme.txt"), "must name a .gguf file")


def test_known_models_are_registered_by_hard_link(tmp_path, run_minnow):
    cached = [m for m in MODELS if (model_cache() / m.file).is_file()]
    if not cached:
        pytest.skip("no model in the cache; run scripts/quickstart.sh")
    env = {"MINNOW_MODELS": str(tmp_path / "models")}
    lines = run_minnow("list", env=env).stdout.splitlines()
    listed = [l.split()[0] for l in lines[1:]]
    for m in cached:
        assert m.name in listed
        blob = tmp_path / "models" / "blobs" / f"sha256-{m.sha256}"
        assert blob.stat().st_size == m.size
        assert os.path.samestat(blob.stat(), (model_cache() / m.file).stat()), "not a hard link"
    # `run NAME` and `show NAME` take the store's names.
    m = cached[0]
    p = run_minnow("show", m.name, env=env)
    assert p.returncode == 0 and f"sha256:{m.sha256}" in p.stdout, p.stderr


def test_ps_without_a_server(store):
    p = store("ps", extra_env={"MINNOW_HOST": "127.0.0.1:9"})  # discard port: nobody listens
    fails(p, "could not reach minnow serve at http://127.0.0.1:9", "MINNOW_HOST")


def test_run_applies_the_modelfile_defaults(tmp_path, run_minnow):
    """PARAMETER and SYSTEM of a store model are `minnow run`'s defaults; flags override them."""
    smol = MODELS[0]
    if not (model_cache() / smol.file).is_file():
        pytest.skip(f"{smol.file} is not in the model cache; run scripts/quickstart.sh")
    env = {"MINNOW_MODELS": str(tmp_path / "models")}
    (tmp_path / "Modelfile").write_text(
        f"FROM {smol.name}\nPARAMETER num_predict 6\nPARAMETER temperature 0\n"
        "SYSTEM Always answer in French.\n")
    assert run_minnow("create", "french", "-f", str(tmp_path / "Modelfile"), env=env).returncode == 0

    def answer(*args):
        p = run_minnow("run", *args, env=env)
        assert p.returncode == 0, p.stderr
        return p.stdout
    by_name = answer("french", "Say hello.")
    by_flags = answer(smol.name, "Say hello.", "-n", "6", "--temperature", "0",
                      "--system", "Always answer in French.")
    assert by_name == by_flags and by_name.strip()
    longer = answer("french", "Say hello.", "-n", "12")
    assert longer != by_name and longer.startswith(by_name.rstrip())
    english = answer("french", "Say hello.", "--system", "Answer in English.")
    assert english == answer(smol.name, "Say hello.", "-n", "6", "--temperature", "0",
                             "--system", "Answer in English.")
