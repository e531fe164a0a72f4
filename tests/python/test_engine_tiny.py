"""`minnow logits` on tiny random-weight models against the float64 reference forward pass.

Each test writes a tiny GGUF model with minnow_make_tiny_model (tests/tools/make_tiny_model.cpp):
llama, qwen2, gemma3 and phi3 with their variants, 4 query heads over 2 kv heads (GQA), over 4
(llama "mha") or over 1 (gemma3 "mqa", as gemma-3-270m). It runs `minnow logits FILE --tokens
... --generate N --dump-logits F` and compares the logits of every step with
tests/python/reference_model.py, which computes the same model in float64 from gguf-py's
dequantized weights and shares no code with minnow.

Step i's logits belong to the sequence prompt + the tokens of steps 0..i-1, so the reference
runs on minnow's own greedy choices: a near-tie that rounding flips changes which sequence is
checked, never whether it is checked. Each step's token must be the argmax of its own dumped
logits (lowest id on ties), and the reference's argmax unless the reference's top two are
closer than the tolerance.

Tolerances, as max |minnow - reference| over all steps divided by the reference's logit range
(max - min over all steps, about 8 for these models), against whichever of the exact and the
f16-KV-cache reference is nearer (minnow's cache holds K and V as halves, which alone moves
logits by up to 2.6e-4 of the range on gemma3):
  f32 weights       1e-4; measured at most 2.5e-5 (gemma3), 1e-7 to 2e-5 elsewhere
  f16 weights       1e-3 (llama.cpp rounds activations to f16 against f16 weights; minnow
                    measures 1.4e-7)
  quantized weights 4e-2, and the RMS difference 1e-2. minnow, like llama.cpp, quantizes the
                    activations to 8 bits for quantized matrices: minnow measures 4.4e-3 (phi3
                    q4_0) to 1.8e-2 (gemma3 q4_k), RMS at most 3.9e-3; llama.cpp 0.6% to 1.6%
                    (max) on the same files.
The reference runs on the dequantized weights, so weight quantization itself costs nothing.

Also: --batch 1 (the decode path) and --batch 3 against one batch; a 1-token prompt; phi3's
short and long RoPE factors chosen by --ctx; --prompt through the tiny tokenizer; a missing
tensor or an unknown architecture refused with its name; `minnow run` on every arch.

Environment: MINNOW_BIN (the minnow binary, see conftest.py) and MINNOW_TINY_BIN (default
build/minnow_make_tiny_model; `cmake --build build --target minnow_make_tiny_model`).
"""
from __future__ import annotations

import copy
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from conftest import MODELS, model_path
from reference_model import ReferenceModel

ROOT = Path(__file__).resolve().parents[2]

TOLERANCE = {"f32": 1e-4, "f16": 1e-3}
QUANT_TOLERANCE = 4e-2
QUANT_RMS_TOLERANCE = 1e-2

# A fixed prompt of 20 ids spread over the vocabulary: longer than gemma3's sliding window (4),
# so its sliding layers must drop keys while its global layer keeps them.
PROMPT = [(i * 37 + 5) % 300 for i in range(20)]
N_GENERATE = 8

# (arch, variant, weight type): every variant in f32, each arch in a few quantized types.
CASES = [
    ("llama", "default", "f32"),
    ("llama", "tied", "f32"),
    ("llama", "rope_freqs", "f32"),
    ("llama", "mha", "f32"),
    ("llama", "default", "f16"),
    ("llama", "default", "q8_0"),
    ("llama", "tied", "q4_0"),
    ("llama", "rope_freqs", "q4_k"),
    ("qwen2", "default", "f32"),
    ("qwen2", "tied", "f32"),
    ("qwen2", "default", "q4_1"),
    ("qwen2", "default", "q6_k"),
    ("gemma3", "default", "f32"),
    ("gemma3", "rope_scaling", "f32"),
    ("gemma3", "mqa", "f32"),
    ("gemma3", "mqa", "q4_0"),
    ("gemma3", "default", "q8_0"),
    ("gemma3", "default", "q4_k"),
    ("phi3", "default", "f32"),
    ("phi3", "longrope", "f32"),
    ("phi3", "default", "q4_0"),
    ("phi3", "longrope", "q6_k"),
]
ARCHS = ["llama", "qwen2", "gemma3", "phi3"]


@pytest.fixture(scope="session")
def tiny_bin() -> Path:
    path = Path(os.environ.get("MINNOW_TINY_BIN") or ROOT / "build" / "minnow_make_tiny_model")
    if not os.access(path, os.X_OK):
        pytest.skip(f"{path} is not built; run `cmake --build build --target "
                    "minnow_make_tiny_model` or set MINNOW_TINY_BIN")
    return path


@pytest.fixture(scope="session")
def make_tiny(tiny_bin, tmp_path_factory):
    """make_tiny(arch, variant="default", type="f32", *extra_args) -> path (made once)."""
    made: dict[tuple, Path] = {}
    folder = tmp_path_factory.mktemp("tiny")

    def make(arch: str, variant: str = "default", wtype: str = "f32", *extra: str) -> Path:
        key = (arch, variant, wtype, *extra)
        if key not in made:
            path = folder / f"{'-'.join(key).replace('.', '_').replace('/', '_')}.gguf"
            p = subprocess.run([str(tiny_bin), "--arch", arch, "--variant", variant, "--type",
                                wtype, "--out", str(path), *extra],
                               capture_output=True, text=True, timeout=60)
            assert p.returncode == 0, f"minnow_make_tiny_model {key}: {p.stderr}"
            made[key] = path
        return made[key]
    return make


class References:
    """The reference of one file twice: exact, and with K and V rounded to float16 as an f16
    KV cache stores them. minnow must match one of the two (its cache is f16 today; an f32
    cache would match the exact one)."""

    def __init__(self, path: Path):
        self.exact = ReferenceModel(path)
        self.kv_f16 = copy.copy(self.exact)  # shares the dequantized weights
        self.kv_f16.kv_f16 = True
        self.n_vocab = self.exact.n_vocab

    def logits(self, tokens, n_ctx=None):
        return self.exact.logits(tokens, n_ctx=n_ctx), self.kv_f16.logits(tokens, n_ctx=n_ctx)


@pytest.fixture(scope="session")
def reference():
    """reference(path) -> References, loaded once per file."""
    models: dict[Path, References] = {}

    def get(path: Path) -> References:
        if path not in models:
            models[path] = References(path)
        return models[path]
    return get


def minnow_logits(run_minnow, tmp_path, model: Path, tokens: list[int], *args: str,
                  generate: int = N_GENERATE):
    """Runs `minnow logits`; returns (parsed stdout, logits (generate, n_vocab) float64)."""
    dump = tmp_path / f"logits-{len(list(tmp_path.iterdir()))}.f32"
    cmd = ["logits", str(model), "--tokens", ",".join(map(str, tokens)), "--generate",
           str(generate), "--dump-logits", str(dump), *args]
    p = run_minnow(*cmd)
    assert p.returncode == 0, f"minnow {' '.join(cmd)} failed ({p.returncode}):\n{p.stderr}"
    out = json.loads(p.stdout)
    raw = np.fromfile(dump, dtype="<f4")
    n_vocab = out["n_vocab"]
    assert raw.size == generate * n_vocab, f"dump holds {raw.size} floats, expected " \
                                           f"{generate} x {n_vocab}"
    return out, raw.reshape(generate, n_vocab).astype(np.float64)


def check_output_shape(out: dict, logits: np.ndarray, arch: str, tokens: list[int], top: int):
    """The JSON agrees with the dump: prompt, step count, argmax tokens, the top-K lists."""
    assert out["arch"] == arch
    assert out["prompt_tokens"] == tokens
    assert len(out["steps"]) == logits.shape[0]
    for i, step in enumerate(out["steps"]):
        row = logits[i]
        assert step["token"] == int(np.argmax(row)), f"step {i}: token is not the argmax"
        ids = [t[0] for t in step["top"]]
        vals = np.array([t[1] for t in step["top"]])
        assert len(ids) == min(top, row.size)
        assert np.all(np.diff(vals) <= 0), f"step {i}: top list not sorted"
        np.testing.assert_allclose(vals, row[ids], rtol=1e-6, atol=1e-6,
                                   err_msg=f"step {i}: top logits differ from the dump")
        assert vals[-1] >= np.sort(row)[-len(ids)] - 1e-6, f"step {i}: top misses a larger logit"


def reference_steps(ref: References, tokens: list[int], out: dict, n_ctx: int | None = None):
    """The reference logits of each step along minnow's greedy path, exact and with an f16 KV
    cache: two (steps, n_vocab) arrays."""
    chosen = [s["token"] for s in out["steps"]]
    seq = tokens + chosen[:-1]
    return tuple(x[len(tokens) - 1:] for x in ref.logits(seq, n_ctx=n_ctx))


def compare(got: np.ndarray, wants: tuple[np.ndarray, ...], wtype: str, what: str) -> float:
    """Asserts got ~ the nearer of `wants` (exact, f16 KV) within the tolerance of `wtype`;
    returns max |diff| / range."""
    rels = [float(np.abs(got - w).max() / (w.max() - w.min())) for w in wants]
    want = wants[int(np.argmin(rels))]
    rng = float(want.max() - want.min())
    diff = np.abs(got - want)
    rel = min(rels)
    rms = float(np.sqrt(np.mean(diff ** 2))) / rng
    print(f"{what}: max |diff| / range {rel:.2e}, RMS {rms:.2e} (exact KV {rels[0]:.2e}, "
          f"f16 KV {rels[-1]:.2e})")
    tol = TOLERANCE.get(wtype, QUANT_TOLERANCE)
    worst = np.unravel_index(np.argmax(diff), diff.shape)
    assert rel <= tol, (f"{what}: max |minnow - reference| = {diff.max():.4g} at step "
                        f"{worst[0]}, token {worst[1]} ({rel:.2e} of the logit range {rng:.3g})"
                        f" > {tol:g} (exact KV {rels[0]:.2e}, f16 KV {rels[-1]:.2e})")
    if wtype not in TOLERANCE:
        assert rms <= QUANT_RMS_TOLERANCE, f"{what}: RMS diff {rms:.2e} of the range > " \
                                           f"{QUANT_RMS_TOLERANCE:g}"
    # Greedy choices agree with the reference except where its top two are a near tie.
    for i in range(want.shape[0]):
        top2 = np.sort(want[i])[-2:]
        if top2[1] - top2[0] > 2 * tol * rng:
            assert np.argmax(got[i]) == np.argmax(want[i]), \
                f"{what}: step {i} picks {np.argmax(got[i])}, the reference {np.argmax(want[i])}"
    return rel


@pytest.mark.parametrize("arch,variant,wtype", CASES, ids=["-".join(c) for c in CASES])
def test_logits_match_reference(arch, variant, wtype, make_tiny, reference, run_minnow,
                                tmp_path):
    model = make_tiny(arch, variant, wtype)
    ref = reference(model)
    n_ctx = 256 if variant == "longrope" else 128  # longrope: short factors (fits in 256)
    out, got = minnow_logits(run_minnow, tmp_path, model, PROMPT, "--ctx", str(n_ctx),
                             "--top", "5")
    assert out["n_vocab"] == ref.n_vocab
    check_output_shape(out, got, arch, PROMPT, top=5)
    compare(got, reference_steps(ref, PROMPT, out, n_ctx), wtype, f"{arch}/{variant}/{wtype}")


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("batch", ["1", "3"])
def test_batch_sizes_agree(arch, batch, make_tiny, reference, run_minnow, tmp_path):
    """The prompt one token at a time (the decode path) or in batches of 3 (which straddle
    gemma3's window of 4) gives the logits of the whole prompt in one batch."""
    model = make_tiny(arch)
    full, full_logits = minnow_logits(run_minnow, tmp_path, model, PROMPT)
    part, part_logits = minnow_logits(run_minnow, tmp_path, model, PROMPT, "--batch", batch)
    assert [s["token"] for s in part["steps"]] == [s["token"] for s in full["steps"]]
    rng = float(full_logits.max() - full_logits.min())
    # Not bit-identical: the batched and single-row matmuls sum in other orders, and a last-bit
    # difference can round a cached K or V value to the neighbouring half.
    assert np.abs(part_logits - full_logits).max() <= TOLERANCE["f32"] * rng
    compare(part_logits, reference_steps(reference(model), PROMPT, part), "f32",
            f"{arch} --batch {batch}")


@pytest.mark.parametrize("arch", ["llama", "gemma3"])
def test_long_prompt_in_chunks(arch, make_tiny, reference, run_minnow, tmp_path):
    """100 prompt tokens in batches of 32 (the last one partial), then 20 steps: 120 of the 128
    positions of the context, with the windowed layers far past their window."""
    model = make_tiny(arch)
    tokens = [(i * 101 + 17) % 300 for i in range(100)]
    out, got = minnow_logits(run_minnow, tmp_path, model, tokens, "--batch", "32", "--ctx",
                             "128", generate=20)
    check_output_shape(out, got, arch, tokens, top=10)
    compare(got, reference_steps(reference(model), tokens, out), "f32", f"{arch}, 100 tokens")


@pytest.mark.parametrize("arch", ["qwen2", "gemma3"])
def test_thread_counts_agree(arch, make_tiny, run_minnow, tmp_path):
    model = make_tiny(arch, "default", "q8_0")
    one = minnow_logits(run_minnow, tmp_path, model, PROMPT, "--threads", "1")
    two = minnow_logits(run_minnow, tmp_path, model, PROMPT, "--threads", "2")
    assert [s["token"] for s in one[0]["steps"]] == [s["token"] for s in two[0]["steps"]]
    rng = float(one[1].max() - one[1].min())
    assert np.abs(one[1] - two[1]).max() <= TOLERANCE["f32"] * rng


@pytest.mark.parametrize("arch", ARCHS)
def test_one_token_prompt(arch, make_tiny, reference, run_minnow, tmp_path):
    model = make_tiny(arch)
    tokens = [7]
    out, got = minnow_logits(run_minnow, tmp_path, model, tokens, generate=12)
    check_output_shape(out, got, arch, tokens, top=10)
    compare(got, reference_steps(reference(model), tokens, out), "f32", f"{arch}, 1 token")


def test_gemma3_sliding_window_matters(make_tiny, reference):
    """Guards the test itself: the gemma3 model's logits depend on the window (so a minnow
    that ignored it would fail test_logits_match_reference), and on layer 6 sliding again."""
    ref = reference(make_tiny("gemma3")).exact
    base = ref.logits(PROMPT)
    ref.window = 1 << 20
    try:
        unwindowed = ref.logits(PROMPT)
    finally:
        ref.window = 4
    rng = base.max() - base.min()
    assert np.abs(base[:4] - unwindowed[:4]).max() < 1e-9 * rng  # window not reached yet
    assert np.abs(base[4:] - unwindowed[4:]).max() > 100 * TOLERANCE["f32"] * rng


@pytest.mark.parametrize("n_ctx", [256, 512], ids=["short-factors", "long-factors"])
def test_phi3_longrope_factors_follow_context(n_ctx, make_tiny, reference, run_minnow,
                                              tmp_path):
    """phi3 uses rope_factors_short while the context fits in original_context_length (256)
    and rope_factors_long beyond; the two give different logits."""
    model = make_tiny("phi3", "longrope")
    ref = reference(model)
    other = 512 if n_ctx == 256 else 256
    want_here = ref.exact.logits(PROMPT, n_ctx=n_ctx)
    want_other = ref.exact.logits(PROMPT, n_ctx=other)
    rng = want_here.max() - want_here.min()
    assert np.abs(want_here - want_other).max() > 100 * TOLERANCE["f32"] * rng
    out, got = minnow_logits(run_minnow, tmp_path, model, PROMPT, "--ctx", str(n_ctx))
    compare(got, reference_steps(ref, PROMPT, out, n_ctx), "f32", f"phi3 longrope ctx {n_ctx}")


def test_prompt_text_uses_tiny_tokenizer(make_tiny, reference, run_minnow, tmp_path):
    """--prompt goes through the GGUF's own tokenizer: BOS, then byte-level BPE with the tiny
    vocabulary's merges ("hello" is one token, " w" another)."""
    model = make_tiny("llama")
    dump = tmp_path / "prompt.f32"
    p = run_minnow("logits", str(model), "--prompt", "hello world", "--generate", "2",
                   "--dump-logits", str(dump))
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    # <|endoftext|> (BOS), "hello", "Ġw", "or", "l", "d"
    assert out["prompt_tokens"] == [262, 259, 260, 261, ord("l"), ord("d")]
    got = np.fromfile(dump, dtype="<f4").reshape(2, -1).astype(np.float64)
    compare(got, reference_steps(reference(model), out["prompt_tokens"], out), "f32",
            "llama --prompt")


# ------------------------------------------------------------------------------------------
# Broken models: minnow must refuse them and say why.

@pytest.mark.parametrize("arch,tensor", [
    ("llama", "blk.0.attn_k.weight"),
    ("qwen2", "output_norm.weight"),
    ("gemma3", "blk.5.attn_k_norm.weight"),
    ("phi3", "blk.1.ffn_down.weight"),
])
def test_missing_tensor_is_named(arch, tensor, make_tiny, run_minnow):
    model = make_tiny(arch, "default", "f32", "--drop-tensor", tensor)
    p = run_minnow("logits", str(model), "--tokens", "1,2,3")
    assert p.returncode != 0, f"minnow accepted {arch} without {tensor}:\n{p.stdout}"
    assert tensor in p.stderr, f"the error does not name {tensor}:\n{p.stderr}"


def test_unknown_architecture_is_named(make_tiny, run_minnow):
    model = make_tiny("llama", "default", "f32", "--arch-name", "mamba9")
    p = run_minnow("logits", str(model), "--tokens", "1,2,3")
    assert p.returncode != 0, f"minnow accepted architecture mamba9:\n{p.stdout}"
    assert "mamba9" in p.stderr, f"the error does not name the architecture:\n{p.stderr}"


def test_token_out_of_vocabulary_is_refused(make_tiny, run_minnow):
    p = run_minnow("logits", str(make_tiny("llama")), "--tokens", "1,300")
    assert p.returncode != 0, f"minnow accepted token 300 of a 300-token vocabulary:\n{p.stdout}"
    assert "300" in p.stderr, p.stderr


# ------------------------------------------------------------------------------------------
# `minnow run` works on the tiny models too (their GGUF carries a byte-level BPE tokenizer and a
# ChatML template).

@pytest.mark.parametrize("arch", ARCHS)
def test_run_greedy_is_deterministic(arch, make_tiny, run_minnow):
    subcommands = run_minnow("--help").stdout.split("Subcommands:")[-1]
    if not any(line.split()[:1] == ["run"] for line in subcommands.splitlines()):
        pytest.skip("this minnow has no `run` command yet")
    model = str(make_tiny(arch))
    outs = []
    for seed in ("1", "2"):  # greedy: the seed must not matter
        p = run_minnow("run", model, "hello world", "--raw", "--temperature", "0", "-n", "6",
                       "--seed", seed)
        assert p.returncode == 0, f"minnow run {arch}: {p.stderr}"
        outs.append(p.stdout)
    assert outs[0] == outs[1]
    chat = run_minnow("run", model, "hello", "-n", "4", "--temperature", "0")
    assert chat.returncode == 0, f"minnow run {arch} (chat template): {chat.stderr}"


# ------------------------------------------------------------------------------------------
# The same comparison on the real SmolLM2 (Q4_1, 30 layers, 49152 tokens): the reference loads
# in ~10 s. Quantized tolerance; measured max 1.7e-2 of the range, RMS 4.2e-3 (llama.cpp
# against the same reference: max 1.36, range 44.6).

def test_real_smollm2_matches_reference(run_minnow, tmp_path):
    entry = next(m for m in MODELS if m.arch == "llama")
    path = model_path(entry)
    # <|im_start|>system<|im_end|>\nhello world. They
    tokens = [1, 9690, 2, 198, 28120, 905, 30, 1069]
    out, got = minnow_logits(run_minnow, tmp_path, path, tokens, generate=4)
    check_output_shape(out, got, "llama", tokens, top=10)
    compare(got, reference_steps(References(path), tokens, out, 8192), "q4_1",
            f"{entry.name}, 8 tokens")
