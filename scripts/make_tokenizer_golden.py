#!/usr/bin/env python3
"""Regenerates the tokenizer goldens in tests/golden/tokenizer/ from llama.cpp.

The reference is llama.cpp's tokenizer as shipped in llama-cpp-python 0.3.36, built from
PyPI's source distribution:

    CMAKE_ARGS="-DGGML_NATIVE=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF" \
        pip install llama_cpp_python-0.3.36.tar.gz
    scripts/fetch_vocabs.sh                      # vocab-only GGUFs -> ~/.cache/minnow/vocab
    python3 scripts/make_tokenizer_golden.py     # writes tests/golden/tokenizer/*.json

Each model is loaded with vocab_only and every corpus text is tokenized through the C API
(llama_tokenize with add_special / parse_special), then detokenized (llama_detokenize with
remove_special / unparse_special). Per-token pieces and attributes are summarised as FNV-1a
hashes so that the whole vocabulary is checked without storing it. Tests never need
llama-cpp-python: they read only the JSON written here.
"""

import argparse
import ctypes
import json
import os
import random
import sys
import unicodedata

import llama_cpp

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
OUT_DIR = os.path.join(ROOT, "tests", "golden", "tokenizer")
VOCAB_DIR = os.environ.get("MINNOW_VOCAB_DIR", os.path.expanduser("~/.cache/minnow/vocab"))
MODEL_DIR = os.environ.get("MINNOW_CACHE", os.path.expanduser("~/.cache/minnow/models"))
LCP_VERSION = "0.3.36"

# name -> (directory, file name)
MODELS = {
    "smollm2": (MODEL_DIR, "SmolLM2-135M-Instruct.Q4_1.gguf"),
    "gemma3": (MODEL_DIR, "gemma-3-270m-q4_k_m.gguf"),
}
VOCABS = ["gpt-2", "llama-bpe", "qwen2", "qwen35", "deepseek-llm", "deepseek-coder", "falcon",
          "starcoder", "refact", "command-r", "mpt", "gpt-neox", "aquila", "llama-spm", "phi-3",
          "baichuan", "gemma-4"]
for v in VOCABS:
    MODELS[v] = (VOCAB_DIR, f"ggml-vocab-{v}.gguf")

FNV_OFFSET = 0xcbf29ce484222325
FNV_PRIME = 0x100000001b3


def fnv1a(data: bytes, h: int = FNV_OFFSET) -> int:
    for b in data:
        h ^= b
        h = (h * FNV_PRIME) & 0xFFFFFFFFFFFFFFFF
    return h


def fnv_records(records) -> str:
    """FNV-1a over each record prefixed by its 4-byte little-endian length."""
    h = FNV_OFFSET
    for r in records:
        h = fnv1a(len(r).to_bytes(4, "little"), h)
        h = fnv1a(r, h)
    return f"{h:016x}"


# ---------------------------------------------------------------------------------------------
# Corpus

PROSE = [
    "The quick brown fox jumps over the lazy dog.",
    "It was the best of times, it was the worst of times, it was the age of wisdom, it was the "
    "age of foolishness, it was the epoch of belief, it was the epoch of incredulity.",
    "I'm sure you'll agree: we've done what they'd asked, and it's DONE. Isn't it? You're "
    "right, they'RE not; I'M, YOU'LL, WE'VE, HE'D.",
    "Dr. Smith (née Jones) said, \"Don't worry -- it's fine!\" ... and left; 'quoted' text.",
    "Hello world", " Hello world", "Hello World", " Hello World!", "Hello, world!",
    "  leading spaces and trailing spaces   ", "tab\tseparated\tvalues\t", "a", " ", "  ", "\n",
    "This sentence ends with a question?  And this one with an exclamation!  Then a period .",
    "A long paragraph follows.\n\nSecond paragraph, after a blank line.\r\nWindows line end.\r\n",
    "ALL CAPS SHOUTING AND MiXeD CaSe WoRdS, camelCase, snake_case, kebab-case, PascalCase.",
]
CODE = [
    "def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n",
    "#include <stdio.h>\nint main(void) {\n\tprintf(\"%d\\n\", 42);\n\treturn 0;\n}\n",
    "for (let i = 0; i < arr.length; ++i) { sum += arr[i] ** 2; } // comment",
    "SELECT id, name FROM users WHERE age >= 18 AND name LIKE '%son' ORDER BY id DESC;",
    "<html><body><div class=\"x\"><h1>Title</h1><table><tr><td>1</td></tr></table></div>"
    "</body></html>",
    "{\"key\": [1, 2.5, -3e10, true, null], \"nested\": {\"a\": \"b\"}}",
    "x=1;y=2;z=x+y*3-4/5%6^7&8|9~0<<1>>2!=3==4<=5>=6&&7||8",
    "    indented four\n        indented eight\n\t\ttwo tabs\n",
    "https://example.com/path/to/page?query=1&other=two#fragment user@example.org",
    "fn main() -> Result<(), Box<dyn Error>> { let v: Vec<u8> = vec![0xff; 16]; Ok(()) }",
]
NUMBERS = [
    "0 1 12 123 1234 12345 123456 1234567 12345678901234567890",
    "3.14159 2.71828 -0.5 +7 1e-9 6.022e23 0x1F 0b1010 1_000_000",
    "2024-01-15 15/01/2024 Jan 15, 2024 12:34:56.789 UTC+05:30",
    "$1,234.56 €99,99 ¥1000 £5 100% 3/4 ½ ¾ ⅓ 4 ½ months",
    "phone: +1 (555) 123-4567, ISBN 978-3-16-148410-0, v1.2.3-rc.4",
    "٠١٢٣٤٥٦٧٨٩ ०१२३४५६७८९ 一二三 ①②③ Ⅻ ²³",
]
WHITESPACE = [
    "   ", "    ", "\t", "\t\t", "\n\n", "\n\n\n", "\t\n", " \n ", "a  b", "a   b", "a    b",
    "a \n b", "line1\nline2\n\nline4\n\n\n\nline8", "\r\n\r\n", " \r \n \t ",
    "word" + " " * 40 + "word", "x" + "\n" * 35 + "y", "\t" * 33 + "tabs",
    "\u00a0nbsp\u00a0\u2003em\u2003space\u3000ideographic\u2028line\u2029para\u0085nel",
    "zero\u200bwidth\u200cjoiner\u200dx\ufeffbom",
]
EMOJI = [
    "🦙 llama 🐍 python 🚀🚀🚀",
    "👨‍👩‍👧‍👦 family, 👩🏽‍💻 technologist, 🏳️‍🌈 flag, 🇫🇷🇯🇵 flags",
    "❤️ ✔️ ☺ ☹️ 👍🏿 🫠 🥲 🧑‍🦯",
    " this is 🦙.cpp",
    "emoji at end 😀", "😀😃😄😁😆😅😂🤣",
]
SCRIPTS = [
    "你好，世界！这是一个测试。我们今天去北京。",
    "日本語のテキスト、カタカナとひらがな。東京タワー",
    "한국어 텍스트입니다. 안녕하세요!",
    "مرحبا بالعالم! هذا اختبار للنص العربي.",
    "नमस्ते दुनिया! यह हिंदी में एक परीक्षण है।",
    "Привет, мир! Это тест. Ёлка, щука, объём.",
    "Γειά σου Κόσμε! Ελληνικά κείμενα.",
    "שלום עולם! זה מבחן.",
    "สวัสดีชาวโลก ภาษาไทย",
    "Tiếng Việt có dấu: Xin chào thế giới, đường phố.",
    "ქართული ენა Հայերեն ლაშა",
    "нещо на Български ,,,ḁ ḁḁ ḁḁḁ",
]
ACCENTS_NFC = [
    "café naïve résumé façade coöperate Ångström Zürich São Paulo ñandú",
    "Äpfel Öl Übermaß straße ÉCOLE ÀÉÎÕÜ",
    "Ǆemal ǅ ǆ ﬁ ﬂ ﬃ Å K Ω ℌ",
]
ACCENTS_NFD = [unicodedata.normalize("NFD", s) for s in ACCENTS_NFC]
INVALID = [
    b"bad \xff byte",
    b"\xc3\x28 invalid two-byte",
    b"truncated \xe4\xb8",
    b"lone continuation \x80\x81\xbf end",
    b"\xf0\x9f\xa6 partial emoji",
    b"overlong \xc0\xaf slash",
    b"surrogate \xed\xa0\x80 half",
    b"\xfe\xfe\xff\xff",
    b"mixed \xe2\x82\xac ok \xe2\x82 bad \xe2",
    b"\x00\x01\x02 control \x1b[31mred\x1b[0m \x7f",
]
ALL_BASE = PROSE + CODE + NUMBERS + WHITESPACE + EMOJI + SCRIPTS + ACCENTS_NFC + ACCENTS_NFD

SPECIAL_STRINGS = [
    "<s>", "</s>", "<unk>", "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|begin_of_text|>",
    "<|end_of_text|>", "<|eot_id|>", "<|start_header_id|>", "<|end_header_id|>",
    "<start_of_turn>", "<end_of_turn>", "<bos>", "<eos>", "<pad>", "<mask>", "[multimodal]",
    "<table>", "</td>", "<|user|>", "<|assistant|>", "<|system|>", "<|end|>",
    "<｜begin▁of▁sentence｜>", "<|fim_prefix|>", "<repo_name>", "<unused0>", "<unused99>",
    "<start_of_image>", "<0x41>", "<|START_OF_TURN_TOKEN|>", "<|USER_TOKEN|>",
]


def special_texts(special_list):
    texts = []
    for s in special_list:
        texts.append(s)
        texts.append(f"Hello {s} world")
        texts.append(f"{s}text{s}")
        texts.append(f" {s} ")
    texts += [
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi!"
        "<|im_end|>\n<|im_start|>assistant\n",
        "<bos><start_of_turn>user\nWhat is 2+2?<end_of_turn>\n<start_of_turn>model\n4<end_of_turn>",
        "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|>",
        "<s>[INST] Hello [/INST] Hi</s><s>[INST] again [/INST]",
        "<|user|>\nQuestion?<|end|>\n<|assistant|>\nAnswer.<|end|>",
        "<|im_start|><|im_end|><|im_start|>",
        "<<|im_start|>>", "<|im_start|", "|im_start|>", "<s><s></s></s>",
    ]
    return texts


def random_texts(rng, n):
    pools = [
        "abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "0123456789",
        " ", "  ", "\n", "\t", "\r\n", ".,;:!?'\"-()[]{}<>/\\|@#$%^&*_+=~`",
        "éèêëàâäôöûüçñßøåæœ", "αβγδεζηθλμπσφω", "абвгдежзийклмнопрст",
        "你好世界中文字符测试", "日本語ひらがなカタカナ", "한국어텍스트", "مرحبابالعالم", "नमस्तेदुनिया",
        "😀🦙🚀👍🏽❤️", "\u200d", "\u0301\u0308\u0327", "\u00a0\u3000\u2003",
        "'s 're 've 'll 'd 'm 't", "<|im_start|>", "<end_of_turn>", "</s>", "<s>",
    ]
    texts = []
    for _ in range(n):
        parts = []
        for _ in range(rng.randint(1, 24)):
            pool = rng.choice(pools)
            if len(pool) > 3 and pool[0] not in "<'":
                k = rng.randint(1, 8)
                parts.append("".join(rng.choice(pool) for _ in range(k)))
            else:
                parts.append(pool)
        texts.append("".join(parts))
    return texts


def long_text():
    body = " ".join(PROSE + SCRIPTS + EMOJI + CODE)
    return (body + "\n\n") * 8


# ---------------------------------------------------------------------------------------------
# llama.cpp access

@ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)
def _quiet_log(level, text, user_data):
    pass


class Vocab:
    def __init__(self, path):
        params = llama_cpp.llama_model_default_params()
        params.vocab_only = True
        self.model = llama_cpp.llama_model_load_from_file(path.encode(), params)
        if not self.model:
            raise RuntimeError(f"cannot load {path}")
        self.vocab = llama_cpp.llama_model_get_vocab(self.model)
        self.n = llama_cpp.llama_vocab_n_tokens(self.vocab)

    def tokenize(self, data: bytes, add_special: bool, parse_special: bool):
        cap = len(data) + 16
        buf = (llama_cpp.llama_token * cap)()
        n = llama_cpp.llama_tokenize(self.vocab, data, len(data), buf, cap, add_special,
                                     parse_special)
        if n < 0:
            cap = -n
            buf = (llama_cpp.llama_token * cap)()
            n = llama_cpp.llama_tokenize(self.vocab, data, len(data), buf, cap, add_special,
                                         parse_special)
        assert n >= 0
        return list(buf[:n])

    def detokenize(self, ids, remove_special: bool, unparse_special: bool) -> bytes:
        arr = (llama_cpp.llama_token * max(1, len(ids)))(*ids)
        cap = 64 + 16 * len(ids)
        while True:
            out = ctypes.create_string_buffer(cap)
            n = llama_cpp.llama_detokenize(self.vocab, arr, len(ids), out, cap, remove_special,
                                           unparse_special)
            if n >= 0:
                return out.raw[:n]
            cap = -n + 1

    def piece(self, tok, special: bool) -> bytes:
        cap = 256
        while True:
            out = ctypes.create_string_buffer(cap)
            n = llama_cpp.llama_token_to_piece(self.vocab, tok, out, cap, 0, special)
            if n >= 0:
                return out.raw[:n]
            cap = -n + 1

    def text(self, tok) -> bytes:
        return llama_cpp.llama_vocab_get_text(self.vocab, tok)

    def meta(self):
        v = self.vocab
        ids = range(self.n)
        return {
            "n_tokens": self.n,
            "bos": llama_cpp.llama_vocab_bos(v),
            "eos": llama_cpp.llama_vocab_eos(v),
            "eot": llama_cpp.llama_vocab_eot(v),
            "pad": llama_cpp.llama_vocab_pad(v),
            "add_bos": bool(llama_cpp.llama_vocab_get_add_bos(v)),
            "add_eos": bool(llama_cpp.llama_vocab_get_add_eos(v)),
            "eog": [i for i in ids if llama_cpp.llama_vocab_is_eog(v, i)],
            "tokens_hash": fnv_records(self.text(i) for i in ids),
            "attrs_hash": fnv_records(
                int(llama_cpp.llama_vocab_get_attr(v, i)).to_bytes(4, "little") for i in ids),
            "pieces_hash": fnv_records(self.piece(i, False) for i in ids),
            "pieces_special_hash": fnv_records(self.piece(i, True) for i in ids),
        }


def encode_bytes(b: bytes):
    """Text as a JSON string when it is valid UTF-8, else as hex."""
    try:
        return {"text": b.decode("utf-8")}
    except UnicodeDecodeError:
        return {"hex": b.hex()}


def make_results(vocab, corpus):
    """One result per corpus case; detokenized text is stored only where it differs."""
    results = []
    for case in corpus:
        data = case_bytes(case["in"])
        ids = vocab.tokenize(data, case["add_special"], case["parse_special"])
        res = {"ids": ids}
        detok = vocab.detokenize(ids, False, False)
        detok_special = vocab.detokenize(ids, True, True)
        if detok != data:
            res["detok"] = encode_bytes(detok)
        if detok_special != detok:
            res["detok_special"] = encode_bytes(detok_special)
        results.append(res)
    return results


def case_bytes(enc) -> bytes:
    return enc["text"].encode("utf-8") if "text" in enc else bytes.fromhex(enc["hex"])


def read_inp(name):
    """The test strings llama.cpp ships beside its vocab files (data, not code)."""
    root = os.environ.get("LCP_SRC", f"/tmp/lcp/llama_cpp_python-{LCP_VERSION}")
    path = os.path.join(root, "vendor", "llama.cpp", "models", f"ggml-vocab-{name}.gguf.inp")
    if not os.path.exists(path):
        path = os.path.join(root, "vendor", "llama.cpp", "models", "ggml-vocab-llama-bpe.gguf.inp")
    if not os.path.exists(path):
        return []
    with open(path, "r", encoding="utf-8") as f:
        parts = f.read().split("\n__ggml_vocab_test__\n")
    return [p for p in parts if p]


def build_corpus():
    rng = random.Random(20240531)
    randoms = random_texts(rng, 120)
    both = [(True, False), (False, True)]
    all4 = [(True, False), (False, False), (True, True), (False, True)]
    texts = [(s.encode("utf-8"), both) for s in ALL_BASE + read_inp("llama-bpe") + randoms]
    texts += [(b, both) for b in INVALID]
    texts += [(s.encode("utf-8"), all4) for s in special_texts(SPECIAL_STRINGS)]
    texts += [(b"", all4), (long_text().encode("utf-8"), [(True, False)])]
    corpus = []
    for data, modes in texts:
        for add_special, parse_special in modes:
            corpus.append({"in": encode_bytes(data), "add_special": add_special,
                           "parse_special": parse_special})
    return corpus


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("names", nargs="*", help="subset of models to regenerate")
    args = ap.parse_args()
    llama_cpp.llama_log_set(_quiet_log, ctypes.c_void_p())
    llama_cpp.llama_backend_init()
    os.makedirs(OUT_DIR, exist_ok=True)

    corpus = build_corpus()
    with open(os.path.join(OUT_DIR, "corpus.json"), "w", encoding="utf-8") as f:
        json.dump({"producer": "scripts/make_tokenizer_golden.py", "cases": corpus}, f,
                  ensure_ascii=False, indent=0)
        f.write("\n")

    for name in (args.names or MODELS.keys()):
        directory, fname = MODELS[name]
        path = os.path.join(directory, fname)
        if not os.path.exists(path):
            print(f"skip {name}: {path} missing", file=sys.stderr)
            continue
        vocab = Vocab(path)
        results = make_results(vocab, corpus)
        doc = {
            "producer": f"llama-cpp-python {LCP_VERSION} (vendored llama.cpp) via "
                        "scripts/make_tokenizer_golden.py",
            "file": fname,
            "meta": vocab.meta(),
            "results": results,
        }
        out = os.path.join(OUT_DIR, f"{name}.json")
        with open(out, "w", encoding="utf-8") as f:
            json.dump(doc, f, ensure_ascii=False, separators=(",", ":"))
            f.write("\n")
        print(f"{name}: {len(results)} cases -> {os.path.relpath(out, ROOT)}")
        llama_cpp.llama_model_free(vocab.model)


if __name__ == "__main__":
    main()
