"""minnow's forward pass against llama.cpp on the real models (tests/golden/engine/*.json).

Each golden prompt (made by tests/golden/engine/make_goldens.py from llama-cpp-python) is fed
to `minnow logits` as llama.cpp's own token ids, with 64 greedy steps, and checked:

  - first position: the same argmax, and every recorded logit (llama.cpp's top-40 and 256 fixed
    probe ids) within LOGIT_TOL_FRAC of that position's logit range (max - min);
  - greedy: the same 64 tokens. Two quantized implementations round activations differently,
    so a step where llama.cpp's top-1/top-2 gap is below NEAR_TIE may flip; after such a step
    the continuations are no longer comparable and the check stops there. A divergence at a
    step with a clear gap fails, printing the step, both tokens and both gaps;
  - tokenization: `minnow tokenize --parse-special` of the prompt text gives llama.cpp's ids.

test_fidelity_summary prints, per model, the max and mean |Δlogit| reached (absolute and as a
fraction of the range) and where greedy generation diverged at all (pytest -s shows it).
"""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from conftest import MODELS, ROOT, model_cache

GOLDEN_DIR = ROOT / "tests" / "golden" / "engine"
LOGIT_TOL_FRAC = 0.02  # of the first position's logit range
NEAR_TIE = 1e-3        # a llama.cpp top-2 gap below this may flip between implementations

# golden file -> registry name (scripts/models.tsv), matched by file name.
_GOLDENS = sorted(GOLDEN_DIR.glob("*.json"))


def _load(path: Path) -> dict:
    return json.loads(path.read_text())


_CASES = [(g, p["name"]) for g in _GOLDENS for p in _load(g)["prompts"]]


def _model_file(golden: dict) -> Path:
    path = model_cache() / golden["model_file"]
    if not path.is_file():
        pytest.skip(f"{path} absent; run scripts/quickstart.sh to fetch it")
    return path


_results: dict[str, dict] = {}  # "<model>/<prompt>" -> what minnow produced, for the summary


def _run_logits(minnow_bin: Path, golden_path: Path, name: str, tmp_path: Path) -> dict:
    """Runs `minnow logits` once per (model, prompt) and keeps the result for later tests."""
    key = f"{golden_path.stem}/{name}"
    if key in _results:
        return _results[key]
    golden = _load(golden_path)
    prompt = next(p for p in golden["prompts"] if p["name"] == name)
    model = _model_file(golden)
    n_gen = golden["n_generate"]
    dump = tmp_path / "logits.f32"
    args = [str(minnow_bin), "logits", str(model),
            "--tokens", ",".join(map(str, prompt["tokens"])),
            "--generate", str(n_gen), "--top", str(golden["n_top"]),
            "--dump-logits", str(dump), "--threads", "2"]
    p = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, f"minnow logits failed ({p.returncode}):\n{p.stderr}"
    out = json.loads(p.stdout)
    n_vocab = golden["n_vocab"]
    assert out["n_vocab"] == n_vocab
    assert out["prompt_tokens"] == prompt["tokens"]
    assert len(out["steps"]) == n_gen
    logits = np.fromfile(dump, dtype="<f4")
    assert logits.size == n_gen * n_vocab, f"dump holds {logits.size} floats"
    logits = logits.reshape(n_gen, n_vocab)
    # The dump and the JSON must tell the same story.
    assert [s["token"] for s in out["steps"]] == [int(np.argmax(r)) for r in logits]
    _results[key] = {"golden": golden, "prompt": prompt, "out": out, "logits": logits}
    return _results[key]


def _first_position_errors(r: dict) -> tuple[np.ndarray, float]:
    """|Δlogit| at every recorded id of the first position, and that position's range."""
    golden, first = r["golden"], r["prompt"]["first"]
    row = r["logits"][0]
    ids = [i for i, _ in first["top"]] + golden["probe_ids"]
    ref = [v for _, v in first["top"]] + first["probe_logits"]
    return np.abs(row[ids] - np.array(ref)), first["max"] - first["min"]


def _divergence(r: dict) -> tuple[int, int, int, float, float] | None:
    """The first step where minnow's greedy token differs: (step, llama.cpp token, minnow token,
    llama.cpp gap, minnow gap), or None."""
    greedy = r["prompt"]["greedy"]
    for step, (g, s) in enumerate(zip(greedy, r["out"]["steps"])):
        if g["token"] != s["token"]:
            two = np.partition(r["logits"][step], -2)[-2:]
            return step, g["token"], s["token"], g["gap"], float(two[1] - two[0])
    return None


@pytest.mark.parametrize("golden_path,name", _CASES,
                         ids=[f"{g.stem}/{n}" for g, n in _CASES])
def test_first_position(minnow_bin, golden_path, name, tmp_path):
    r = _run_logits(minnow_bin, golden_path, name, tmp_path)
    first = r["prompt"]["first"]
    assert r["out"]["steps"][0]["token"] == first["argmax"], (
        f"argmax {r['out']['steps'][0]['token']} != llama.cpp's {first['argmax']}")
    err, span = _first_position_errors(r)
    assert err.max() <= LOGIT_TOL_FRAC * span, (
        f"max |Δlogit| {err.max():.4f} > {LOGIT_TOL_FRAC:.0%} of the range {span:.2f}")
    # minnow's own top-40 agrees with its dump (the JSON is what callers read).
    top = r["out"]["steps"][0]["top"]
    assert len(top) == len(first["top"])
    for tid, val in top:
        assert abs(r["logits"][0][tid] - val) <= 1e-4 * max(1.0, abs(val))


@pytest.mark.parametrize("golden_path,name", _CASES,
                         ids=[f"{g.stem}/{n}" for g, n in _CASES])
def test_greedy(minnow_bin, golden_path, name, tmp_path):
    r = _run_logits(minnow_bin, golden_path, name, tmp_path)
    greedy = r["prompt"]["greedy"]
    d = _divergence(r)
    if d is None:
        return
    step, want, got, gap_ref, gap_minnow = d
    # Allowed only when llama.cpp itself had a near-tie at or before the divergence.
    near_tie = [i for i in range(step + 1) if greedy[i]["gap"] < NEAR_TIE]
    assert near_tie, (
        f"greedy diverges at step {step}: llama.cpp {want} (top-2 gap {gap_ref:.6f}), "
        f"minnow {got} (top-2 gap {gap_minnow:.6f}); no llama.cpp near-tie (< {NEAR_TIE}) before")


@pytest.mark.parametrize("golden_path,name", _CASES,
                         ids=[f"{g.stem}/{n}" for g, n in _CASES])
def test_tokenization(run_minnow, golden_path, name):
    golden = _load(golden_path)
    prompt = next(p for p in golden["prompts"] if p["name"] == name)
    model = _model_file(golden)
    p = run_minnow("tokenize", str(model), prompt["rendered"], "--json", "--parse-special")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["ids"] == prompt["tokens"]


def test_goldens_cover_the_models():
    """Every model of scripts/models.tsv has its golden, with enough varied prompts."""
    files = {_load(g)["model_file"]: _load(g) for g in _GOLDENS}
    for entry in MODELS:
        assert entry.file in files, f"no engine golden for {entry.name}"
        prompts = files[entry.file]["prompts"]
        assert len(prompts) >= 20
        assert {p["kind"] for p in prompts} == {"raw", "chat"}


def test_fidelity_summary(minnow_bin, tmp_path, capsys):
    """Prints what was reached per model (runs last in file order: reuses earlier results)."""
    lines = []
    for golden_path in _GOLDENS:
        golden = _load(golden_path)
        _model_file(golden)
        abs_err, rel_err, diverged = [], [], []
        for prompt in golden["prompts"]:
            r = _run_logits(minnow_bin, golden_path, prompt["name"], tmp_path)
            err, span = _first_position_errors(r)
            abs_err.append(err)
            rel_err.append(err / span)
            d = _divergence(r)
            if d is not None:
                diverged.append(f"{prompt['name']}@{d[0]} (llama.cpp gap {d[3]:.4f}, "
                                f"minnow gap {d[4]:.4f})")
        a, rel = np.concatenate(abs_err), np.concatenate(rel_err)
        lines.append(f"{golden_path.stem}: |Δlogit| max {a.max():.4f} mean {a.mean():.4f}; "
                     f"of range max {rel.max():.3%} mean {rel.mean():.3%}; greedy diverged in "
                     f"{len(diverged)}/{len(golden['prompts'])}"
                     + (": " + ", ".join(diverged) if diverged else ""))
    with capsys.disabled():
        print("\nengine fidelity vs llama.cpp:\n  " + "\n  ".join(lines))
