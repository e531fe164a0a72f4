"""`minnow inspect` against gguf-py's GGUFReader, an independent GGUF reader, on the real models:
tensor count, names, types, shapes, sizes and offsets, the tensor type mix and the key
hyper-parameters must all agree. Also the name registry's behaviour seen from the command line.
"""
from __future__ import annotations

import os
from collections import defaultdict

import pytest
from gguf import GGMLQuantizationType, GGUFReader, LlamaFileType

from conftest import MODELS, model_path


def field(reader: GGUFReader, key: str):
    """A metadata value as a Python scalar, string or list; None when absent."""
    f = reader.fields.get(key)
    if f is None:
        return None
    v = f.contents()
    return v


@pytest.fixture(scope="module")
def readers():
    cache = {}

    def get(path):
        if path not in cache:
            cache[path] = GGUFReader(path)
        return cache[path]
    return get


def test_tensors_agree_with_gguf_py(model, minnow_json, readers):
    entry, path = model
    got = minnow_json("inspect", "--json", "--tensors", entry.name)
    r = readers(path)

    assert got["source"] == {"name": entry.name, "path": str(path), "bytes": entry.size}
    assert got["gguf"]["tensor_count"] == len(r.tensors)
    assert len(got["tensors"]) == len(r.tensors)
    assert got["gguf"]["data_offset"] == r.data_offset
    assert got["gguf"]["alignment"] == r.alignment
    assert got["gguf"]["version"] == field(r, "GGUF.version")
    assert got["gguf"]["metadata_keys"] == field(r, "GGUF.kv_count")

    for mine, theirs in zip(got["tensors"], r.tensors):
        assert mine["name"] == theirs.name
        assert mine["type"] == GGMLQuantizationType(theirs.tensor_type).name, theirs.name
        assert mine["shape"] == [int(d) for d in theirs.shape], theirs.name
        assert mine["elements"] == int(theirs.n_elements), theirs.name
        assert mine["bytes"] == int(theirs.n_bytes), theirs.name
        assert mine["file_offset"] == int(theirs.data_offset), theirs.name
        assert mine["offset"] == int(theirs.data_offset) - r.data_offset, theirs.name

    total = sum(int(t.n_bytes) for t in r.tensors)
    assert got["gguf"]["tensor_bytes"] == total
    assert got["parameters"] == sum(int(t.n_elements) for t in r.tensors)
    # The last tensor ends inside the file: the offsets and sizes describe real bytes.
    last = max(r.tensors, key=lambda t: int(t.data_offset))
    assert int(last.data_offset) + int(last.n_bytes) <= entry.size

    mix = defaultdict(lambda: [0, 0, 0])
    for t in r.tensors:
        m = mix[GGMLQuantizationType(t.tensor_type).name]
        m[0] += 1
        m[1] += int(t.n_elements)
        m[2] += int(t.n_bytes)
    assert {t["type"]: [t["tensors"], t["elements"], t["bytes"]] for t in got["tensor_types"]} \
        == dict(mix)
    assert [t["type_id"] for t in got["tensor_types"]] == sorted(
        GGMLQuantizationType[t["type"]].value for t in got["tensor_types"])


def test_hparams_agree_with_gguf_py(model, minnow_json, readers):
    entry, path = model
    got = minnow_json("inspect", "--json", str(path))
    r = readers(path)
    arch = field(r, "general.architecture")
    assert got["architecture"] == arch == entry.arch
    assert got["source"]["name"] is None  # given as a path
    assert got["name"] == field(r, "general.name")

    ftype = field(r, "general.file_type")
    assert got["file_type"] == {"id": ftype, "name": LlamaFileType(ftype).name}
    assert got["quantization_version"] == field(r, "general.quantization_version")

    hp = got["hparams"]
    for key, gguf_key in [("context_length", "context_length"),
                          ("embedding_length", "embedding_length"),
                          ("block_count", "block_count"),
                          ("feed_forward_length", "feed_forward_length"),
                          ("head_count", "attention.head_count"),
                          ("head_count_kv", "attention.head_count_kv"),
                          ("key_length", "attention.key_length"),
                          ("value_length", "attention.value_length"),
                          ("sliding_window", "attention.sliding_window")]:
        assert hp[key] == field(r, f"{arch}.{gguf_key}"), key
    assert hp["context_length"] > 0 and hp["embedding_length"] > 0 and hp["block_count"] > 0
    assert hp["head_count"] > 0 and hp["head_count_kv"] > 0
    assert hp["rms_norm_epsilon"] == pytest.approx(
        field(r, f"{arch}.attention.layer_norm_rms_epsilon"), rel=1e-12)
    assert hp["rope"]["freq_base"] == pytest.approx(field(r, f"{arch}.rope.freq_base"), rel=1e-12)
    assert hp["rope"]["dimension_count"] == field(r, f"{arch}.rope.dimension_count")
    has_scaling = any(k.startswith(f"{arch}.rope.scaling.") for k in r.fields)
    assert (hp["rope"]["scaling"] is not None) == has_scaling

    tok = got["tokenizer"]
    assert tok["model"] == field(r, "tokenizer.ggml.model")
    assert tok["pre"] == field(r, "tokenizer.ggml.pre")
    assert tok["vocab_size"] == len(r.fields["tokenizer.ggml.tokens"].data)
    assert tok["bos_token_id"] == field(r, "tokenizer.ggml.bos_token_id")
    assert tok["eos_token_id"] == field(r, "tokenizer.ggml.eos_token_id")
    template = field(r, "tokenizer.chat_template")
    assert tok["chat_template"] == (template is not None)
    assert tok["chat_template_bytes"] == (None if template is None else len(template.encode()))


def test_text_output_names_the_essentials(model, run_minnow):
    entry, path = model
    p = run_minnow("inspect", entry.name)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith(f"model          {entry.name}  ({path})")
    assert f"architecture   {entry.arch}\n" in p.stdout
    for label in ("parameters", "context", "embedding", "layers", "heads", "rope", "tokenizer"):
        assert f"\n{label:<15}" in p.stdout, label
    assert "token_embd.weight" not in p.stdout  # no tensor table without --tensors
    with_tensors = run_minnow("inspect", "--tensors", entry.name)
    assert with_tensors.returncode == 0
    assert "token_embd.weight" in with_tensors.stdout


def test_default_model_is_the_first_manifest_row(minnow_json):
    default = MODELS[0]
    model_path(default)
    assert minnow_json("inspect", "--json")["source"]["name"] == default.name == "smollm2:135m"


def test_unknown_name_lists_known_names(run_minnow):
    p = run_minnow("inspect", "mistral:7b")
    assert p.returncode != 0
    assert p.stdout == ""
    assert "unknown model 'mistral:7b'" in p.stderr
    for m in MODELS:
        assert m.name in p.stderr


def test_missing_path_and_empty_cache_are_clear_errors(run_minnow, tmp_path):
    p = run_minnow("inspect", str(tmp_path / "absent.gguf"))
    assert p.returncode != 0 and "no such file" in p.stderr

    # An empty store too: a store that holds gemma3:270m would resolve it without the cache.
    p = run_minnow("inspect", "gemma3:270m",
                   env={"MINNOW_CACHE": str(tmp_path), "MINNOW_MODELS": str(tmp_path / "store")})
    assert p.returncode != 0
    assert "not in the model cache" in p.stderr and "quickstart.sh" in p.stderr


def test_not_a_gguf_file_is_an_error_not_a_crash(run_minnow, tmp_path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF\x03\x00\x00\x00" + os.urandom(64))
    p = run_minnow("inspect", str(bad))
    assert p.returncode == 1
    assert p.stderr.startswith("minnow: error: ") and str(bad) in p.stderr
