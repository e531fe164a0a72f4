#!/usr/bin/env python3
"""Regenerates the engine fidelity goldens (tests/golden/engine/*.json) from llama.cpp.

llama.cpp, through llama-cpp-python, is the oracle: for each real model and each prompt below
it records what tests/python/test_engine_fidelity.py then asks `minnow logits` to reproduce:

  - the prompt text (and, for chat prompts, the rendered text) and llama.cpp's token ids for it
    (tokenized with add_special=True and parse_special=True, so BOS only where the model asks);
  - at the first generated position (the logits after the prompt): the argmax, the top-40
    (id, logit), the logits at 256 fixed pseudo-random "probe" ids (the same ids for every
    prompt of a model, drawn from a seeded generator), and the min and max logit;
  - 64 greedy steps (argmax, lowest id on ties, never stopping at end-of-generation tokens):
    per step the chosen id and the gap between the top-1 and top-2 logits, so the test can
    tell a real divergence from a near-tie that rounding may flip.

Rerun (system python3 with llama-cpp-python installed; takes a minute or two on 2 cores):

    python3 tests/golden/engine/make_goldens.py            # both models, from $MINNOW_CACHE
    python3 tests/golden/engine/make_goldens.py --check    # recompute, compare, write nothing

The llama.cpp settings are the library defaults except those pinned below (threads, context,
batch); they are written into each file under "generator".
"""
from __future__ import annotations

import argparse
import ctypes
import datetime
import hashlib
import json
import os
import platform
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent

N_THREADS = 2
N_CTX = 1024
N_BATCH = 512  # >= every prompt, so the prompt is one batch (as minnow's default --batch 512)
N_TOP = 40
N_PROBE = 256
N_GENERATE = 64
PROBE_SEED = 20261121

SMOLLM2_SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"

LONG_TEXT = (
    "The lighthouse keeper's log for the winter of that year survives in three water-stained "
    "volumes. Most entries are short: the wind's direction, the state of the sea, how much oil "
    "was burned, which ships passed and at what hour. But from the middle of January the "
    "entries grow longer. The keeper begins to describe the birds that shelter on the gallery "
    "during storms, the way the fog arrives first as a smell and only later as a wall, and the "
    "small repairs he makes to the clockwork that turns the lens. On the twenty-third he notes "
    "that the supply boat is nine days late and that he has started to ration the coffee. On "
    "the twenty-ninth he writes that he has seen a light to the north-east where no light "
    "should be, and that he watched it for two hours before it went out. The next morning he "
    "rows out to the reef, finds nothing, and records the fact in a single line. In February "
    "the boat finally comes, bringing letters, flour, lamp oil and a new assistant, a young "
    "man from the mainland who has never seen the open sea in winter. The keeper's entries "
    "become shorter again, as if having someone to talk to had taken the place of the book. "
    "Historians who have read the log disagree about the light in the north-east. Some think "
    "it was a fishing boat sheltering behind the reef; others point out that no boat could "
    "have survived the sea that night. The keeper himself never mentions it again. Summarise "
    "the passage above in three sentences, then say which explanation of the light you find "
    "more convincing and why."
)

# (name, kind, text): kind "raw" feeds the text as it is; "chat" renders it as one user
# message with the model's chat format and the generation prompt. Varied on purpose: short and
# long, code, several scripts and languages, numbers, whitespace, special-looking text.
PROMPTS: list[tuple[str, str, str]] = [
    ("raw_one_word", "raw", "Hello"),
    ("raw_sentence", "raw", "The capital of France is"),
    ("raw_story", "raw", "Once upon a time, in a small village by the sea, there lived"),
    ("raw_numbers", "raw", "1, 2, 3, 5, 8, 13, 21,"),
    ("raw_arith", "raw", "Question: What is 17 * 23?\nAnswer:"),
    ("raw_python", "raw", "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n"),
    ("raw_c", "raw", "#include <stdio.h>\n\nint main(void) {\n\tfor (int i = 0; i < 10; ++i) {\n"),
    ("raw_json", "raw", "{\"name\": \"minnow\", \"version\": \"0.1.0\", \"dependencies\": ["),
    ("raw_french", "raw", "La Révolution française a commencé en 1789, lorsque"),
    ("raw_german", "raw", "Die Straßenbahn fährt über die Brücke, und die Fahrgäste"),
    ("raw_chinese", "raw", "北京是中国的首都，也是"),
    ("raw_japanese", "raw", "東京の天気は今日、"),
    ("raw_russian", "raw", "Москва — столица России, и"),
    ("raw_emoji", "raw", "Weather today: ☀️🌧️ and tomorrow 🌈 — what a mix! Next"),
    ("raw_whitespace", "raw", "List:\n\n  - apples\n  - pears\n\n\n  -"),
    ("raw_long", "raw", LONG_TEXT),
    ("chat_greeting", "chat", "Hi! Who are you?"),
    ("chat_math", "chat", "What is the square root of 144? Explain briefly."),
    ("chat_code", "chat", "Write a Python function that reverses a string."),
    ("chat_spanish", "chat", "¿Cuál es la montaña más alta de España?"),
    ("chat_list", "chat", "Give me three tips for sleeping better."),
    ("chat_long", "chat", LONG_TEXT),
]


def render_chatml(user_text: str) -> str:
    """SmolLM2's embedded template (ChatML with a default system message), one user message,
    add_generation_prompt=True; written out so the golden does not depend on a jinja engine."""
    return (f"<|im_start|>system\n{SMOLLM2_SYSTEM}<|im_end|>\n"
            f"<|im_start|>user\n{user_text}<|im_end|>\n"
            "<|im_start|>assistant\n")


def render_gemma_turns(user_text: str) -> str:
    """Gemma's turn format written out literally: this GGUF embeds no chat template. BOS is not
    written here; the tokenizer adds it (tokenizer.ggml.add_bos_token)."""
    return f"<start_of_turn>user\n{user_text}<end_of_turn>\n<start_of_turn>model\n"


MODELS = {
    "smollm2-135m": {"file": "SmolLM2-135M-Instruct.Q4_1.gguf", "render_chat": render_chatml},
    "gemma3-270m": {"file": "gemma-3-270m-q4_k_m.gguf", "render_chat": render_gemma_turns},
}


def model_cache() -> Path:
    return Path(os.environ.get("MINNOW_CACHE") or Path.home() / ".cache" / "minnow" / "models")


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def check_template(model_path: Path, render) -> None:
    """When jinja2 is at hand, checks the literal ChatML rendering against the template the GGUF
    embeds, so the chat goldens hold the text minnow's own template engine will produce."""
    try:
        import gguf
        import jinja2
    except ImportError:
        return
    reader = gguf.GGUFReader(str(model_path))
    field = reader.fields.get("tokenizer.chat_template")
    if field is None:
        return
    source = bytes(field.parts[field.data[0]]).decode("utf-8")
    env = jinja2.Environment()
    messages = [{"role": "user", "content": "probe text"}]
    rendered = env.from_string(source).render(messages=messages, add_generation_prompt=True)
    if rendered != render("probe text"):
        sys.exit(f"{model_path.name}: literal chat rendering differs from the embedded template:"
                 f"\n{rendered!r}\n{render('probe text')!r}")


def logits_row(llm, n_vocab: int) -> np.ndarray:
    """The logits of the last evaluated position (llama.cpp keeps only that row here)."""
    import llama_cpp
    ptr = llama_cpp.llama_get_logits_ith(llm._ctx.ctx, -1)
    return np.ctypeslib.as_array(ctypes.cast(ptr, ctypes.POINTER(ctypes.c_float)),
                                 shape=(n_vocab,)).copy()


def top2_gap(row: np.ndarray) -> float:
    two = np.partition(row, -2)[-2:]
    return float(two[1] - two[0])


def run_model(key: str, spec: dict) -> dict:
    import llama_cpp

    path = model_cache() / spec["file"]
    if not path.is_file():
        sys.exit(f"{path} absent; run scripts/quickstart.sh first")
    check_template(path, spec["render_chat"])

    llm = llama_cpp.Llama(model_path=str(path), n_ctx=N_CTX, n_batch=N_BATCH, n_ubatch=N_BATCH,
                          n_threads=N_THREADS, n_threads_batch=N_THREADS, logits_all=False,
                          verbose=False)
    n_vocab = llm.n_vocab()
    probe_ids = sorted(np.random.default_rng(PROBE_SEED).choice(n_vocab, N_PROBE, replace=False)
                       .tolist())

    records = []
    for name, kind, text in PROMPTS:
        rendered = spec["render_chat"](text) if kind == "chat" else text
        tokens = llm.tokenize(rendered.encode("utf-8"), add_bos=True, special=True)
        if not 0 < len(tokens) <= N_BATCH or len(tokens) + N_GENERATE > N_CTX:
            sys.exit(f"{key}/{name}: {len(tokens)} prompt tokens do not fit the settings")

        llm.reset()
        llm.eval(tokens)
        row = logits_row(llm, n_vocab)
        order = np.argsort(-row, kind="stable")  # ties: lowest id first, as np.argmax
        first = {
            "argmax": int(np.argmax(row)),
            "top": [[int(i), round(float(row[i]), 5)] for i in order[:N_TOP]],
            "probe_logits": [round(float(row[i]), 5) for i in probe_ids],
            "min": round(float(row.min()), 5),
            "max": round(float(row.max()), 5),
        }
        greedy = []
        for step in range(N_GENERATE):
            if step > 0:
                llm.eval([greedy[-1]["token"]])
                row = logits_row(llm, n_vocab)
            greedy.append({"token": int(np.argmax(row)), "gap": round(top2_gap(row), 6)})
        text_out = llm.detokenize([g["token"] for g in greedy], special=True)
        records.append({
            "name": name,
            "kind": kind,
            "text": text,
            "rendered": rendered,
            "tokens": tokens,
            "first": first,
            "greedy": greedy,
            "greedy_text": text_out.decode("utf-8", errors="replace"),
        })
        print(f"{key}/{name}: {len(tokens)} tokens -> {text_out[:60]!r}", file=sys.stderr)
    del llm

    return {
        "model_file": spec["file"],
        "model_sha256": sha256_of(path),
        "n_vocab": n_vocab,
        "generator": {
            "tool": "llama-cpp-python",
            "version": llama_cpp.__version__,
            "system_info": llama_cpp.llama_print_system_info().decode().strip(),
            "machine": platform.machine(),
            "n_threads": N_THREADS,
            "n_ctx": N_CTX,
            "n_batch": N_BATCH,
            "n_ubatch": N_BATCH,
            "probe_seed": PROBE_SEED,
            "date": datetime.date.today().isoformat(),
        },
        "n_top": N_TOP,
        "n_generate": N_GENERATE,
        "probe_ids": probe_ids,
        "prompts": records,
    }


def compare(old: dict, new: dict) -> list[str]:
    """Differences that matter between two goldens of the same model (ids and tokens exactly,
    logits to 1e-3)."""
    issues = []
    for a, b in zip(old["prompts"], new["prompts"]):
        if a["tokens"] != b["tokens"]:
            issues.append(f"{a['name']}: prompt tokens differ")
        if [g["token"] for g in a["greedy"]] != [g["token"] for g in b["greedy"]]:
            issues.append(f"{a['name']}: greedy tokens differ")
        d = np.max(np.abs(np.array(a["first"]["probe_logits"]) -
                          np.array(b["first"]["probe_logits"])))
        if d > 1e-3:
            issues.append(f"{a['name']}: probe logits differ by {d:.4g}")
    if len(old["prompts"]) != len(new["prompts"]):
        issues.append("prompt count differs")
    return issues


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="recompute and compare with the committed files; write nothing")
    parser.add_argument("models", nargs="*", help=f"model keys (default: all): {', '.join(MODELS)}")
    args = parser.parse_args()
    for key in args.models:
        if key not in MODELS:
            parser.error(f"unknown model key {key!r}; known: {', '.join(MODELS)}")
    status = 0
    for key in args.models or list(MODELS):
        golden = run_model(key, MODELS[key])
        out = HERE / f"{key}.json"
        if args.check:
            issues = compare(json.loads(out.read_text()), golden)
            print(f"{out.name}: " + ("same" if not issues else "; ".join(issues)))
            status |= bool(issues)
        else:
            out.write_text(json.dumps(golden, ensure_ascii=False, separators=(",", ":")) + "\n")
            print(f"wrote {out} ({out.stat().st_size} bytes)")
    return status


if __name__ == "__main__":
    sys.exit(main())
