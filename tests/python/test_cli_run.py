"""`minnow run` and `minnow bench` on the real models: stdout carries only the generated text,
diagnostics go to stderr, sampling options and stop strings act, bad input fails clearly.
(Token-exact agreement with llama.cpp is tested in test_engine_fidelity.py.)"""
from __future__ import annotations

import json
import subprocess

import pytest

from conftest import MODELS, model_path

SMOL = MODELS[0]
GEMMA = next(m for m in MODELS if m.arch == "gemma3")


def run_ok(run_minnow, *args, **kw):
    p = run_minnow(*args, **kw)
    assert p.returncode == 0, f"minnow {' '.join(args)} failed ({p.returncode}):\n{p.stderr}"
    return p


def test_greedy_answer_is_text_only_and_repeatable(run_minnow):
    model_path(SMOL)
    args = ("run", SMOL.name, "What is the capital of France?", "--temperature", "0", "-n", "24")
    a = run_ok(run_minnow, *args)
    b = run_ok(run_minnow, *args)
    assert a.stdout == b.stdout
    assert "Paris" in a.stdout
    assert a.stderr == ""  # nothing but text on stdout, and no noise at all without --verbose


def test_verbose_timings_go_to_stderr(run_minnow):
    model_path(SMOL)
    p = run_ok(run_minnow, "run", SMOL.name, "Hi", "--temperature", "0", "-n", "8", "--verbose")
    assert "tokens/s" not in p.stdout
    for word in ("load:", "prompt:", "generated:", "tokens/s"):
        assert word in p.stderr


def test_prompt_from_stdin_and_raw(minnow_bin):
    model_path(SMOL)
    p = subprocess.run([str(minnow_bin), "run", SMOL.name, "--raw", "--temperature", "0", "-n", "6"],
                       input="The capital of France is", capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip().startswith("Paris")


def test_seed_makes_sampling_repeatable(run_minnow):
    model_path(SMOL)
    base = ("run", SMOL.name, "Write a short poem about rivers.", "--temperature", "1.0", "-n", "24")
    a = run_ok(run_minnow, *base, "--seed", "7").stdout
    b = run_ok(run_minnow, *base, "--seed", "7").stdout
    c = run_ok(run_minnow, *base, "--seed", "8").stdout
    assert a == b
    assert a != c


def test_num_predict_and_stop(run_minnow):
    model_path(SMOL)
    p = run_ok(run_minnow, "run", SMOL.name, "--raw", "List the numbers one to ten: 1, 2, 3,",
               "--temperature", "0", "-n", "40", "--stop", " 7")
    assert p.stdout.strip() == "4, 5, 6,"
    long = run_ok(run_minnow, "run", SMOL.name, "--raw", "Once upon a time", "--temperature", "0",
                  "-n", "3", "--verbose")
    assert "generated:  3 tokens" in long.stderr


def test_gemma_uses_its_turn_format_and_answers(run_minnow):
    model_path(GEMMA)
    p = run_ok(run_minnow, "run", GEMMA.name, "--raw", "Q: What is the capital of Japan?\nA:",
               "--temperature", "0", "-n", "8")
    assert "Tokyo" in p.stdout
    # The GGUF has no template: minnow's built-in Gemma turn format is used, with no warning.
    chat = run_ok(run_minnow, "run", GEMMA.name, "Hello", "--temperature", "0", "-n", "4")
    assert "warning" not in chat.stderr


@pytest.mark.parametrize("args,message", [
    (("run", "nosuch:1b", "hi"), "nosuch:1b"),
    (("run", SMOL.name, "hi", "--top-p", "0"), "top_p"),
    (("run", SMOL.name, "hi", "--ctx", "4"), "context of 4"),
    (("logits", SMOL.name, "--tokens", "1,999999"), "outside the vocabulary"),
])
def test_bad_input_is_a_clear_error(run_minnow, args, message):
    model_path(SMOL)
    p = run_minnow(*args)
    assert p.returncode != 0
    assert p.stdout == ""
    assert message in p.stderr, p.stderr


def test_bench_json(run_minnow):
    model_path(SMOL)
    p = run_ok(run_minnow, "bench", SMOL.name, "-p", "32", "-n", "8", "-r", "2", "--json")
    out = json.loads(p.stdout)
    tests = {r["test"]: r for r in out["results"]}
    assert set(tests) == {"pp32", "tg8"}
    for r in tests.values():
        assert r["avg_ts"] > 0 and len(r["samples_ts"]) == 2
    assert out["peak_rss_bytes"] > 50 * 2**20
    assert out["ttft_ms"] > 0 and out["n_params"] == 134515008
