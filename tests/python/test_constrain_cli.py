"""`minnow run` with --grammar, --regex, --choice and --format json on the real models: every
output must be a sentence of its grammar, a full match of its regex, one of the choices, or
JSON that parses. Checked independently of minnow's C++ matcher: Python's `re`, `json`, and
the small GBNF recognizer below (a parser of the format plus a memoised matcher over code
points, written from the format's description).

Each case runs on both models greedily here (the sampled temperatures, 0.7 and 1.2 with two
seeds each, run through the server in test_structured_schema.py's matrix, which reuses this
file's grammars, regexes and recognizer); with MINNOW_CONSTRAIN_FULL=1, also at 0.7 and 1.2
with both seeds through the CLI (5 runs a case). The constraint's budget closes every output
before the token limit, so every run must end by itself.
"""
from __future__ import annotations

import json
import os
import re
import sys
from functools import lru_cache
from pathlib import Path

import pytest

from conftest import MODELS, ROOT, model_path

GRAMMARS = sorted((ROOT / "tests" / "golden" / "grammars").glob("*.gbnf"))
SMOL = MODELS[0]
GEMMA = next(m for m in MODELS if m.arch == "gemma3")
# (temperature, seed): greedy once, then the sampling temperatures.
SETTINGS = ([(0.0, 1), (0.7, 1), (0.7, 2), (1.2, 1), (1.2, 2)]
            if os.environ.get("MINNOW_CONSTRAIN_FULL") == "1" else [(0.0, 1)])
N_PREDICT = 128

# --- a GBNF recognizer -----------------------------------------------------------------------


class GbnfError(Exception):
    pass


class Gbnf:
    """Parses GBNF text into rules of nodes:
    ("lit", str) | ("cls", [(lo, hi)], negated) | ("ref", name) | ("seq", [nodes])
    | ("alt", [nodes]) | ("rep", node, min, max_or_None)."""

    ESC = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\", '"': '"', "[": "[", "]": "]", "-": "-",
           "^": "^", "/": "/", "'": "'"}

    def __init__(self, text: str):
        self.s = text
        self.i = 0
        self.rules: dict[str, tuple] = {}
        self.space(True)
        while self.i < len(self.s):
            m = re.compile(r"[A-Za-z0-9_-]+").match(self.s, self.i)
            if not m:
                raise GbnfError(f"rule name expected at {self.i}")
            name = m.group()
            self.i = m.end()
            self.space(False)
            if not self.s.startswith("::=", self.i):
                raise GbnfError(f"::= expected at {self.i}")
            self.i += 3
            self.rules[name] = self.alternatives(False)
            self.space(True)

    def space(self, newlines: bool):
        while self.i < len(self.s):
            c = self.s[self.i]
            if c in " \t\r" or (newlines and c == "\n"):
                self.i += 1
            elif c == "#":
                while self.i < len(self.s) and self.s[self.i] != "\n":
                    self.i += 1
            else:
                break

    def alternatives(self, nested: bool):
        alts = [self.sequence(nested)]
        while True:
            save = self.i
            self.space(True)
            if self.i < len(self.s) and self.s[self.i] == "|":
                self.i += 1
                self.space(True)
                alts.append(self.sequence(nested))
            else:
                self.i = save
                return ("alt", alts)

    def char(self) -> str:
        c = self.s[self.i]
        if c != "\\":
            self.i += 1
            return c
        e = self.s[self.i + 1]
        self.i += 2
        if e in "xuU":
            n = {"x": 2, "u": 4, "U": 8}[e]
            v = int(self.s[self.i:self.i + n], 16)
            self.i += n
            return chr(v)
        return self.ESC[e]

    def sequence(self, nested: bool):
        items: list = []
        self.space(nested)
        while self.i < len(self.s):
            c = self.s[self.i]
            if c == '"':
                self.i += 1
                lit = ""
                while self.s[self.i] != '"':
                    lit += self.char()
                self.i += 1
                items.append(("lit", lit))
            elif c == "[":
                self.i += 1
                neg = self.s[self.i] == "^"
                if neg:
                    self.i += 1
                ranges = []
                while self.s[self.i] != "]":
                    lo = self.char()
                    hi = lo
                    if self.s[self.i] == "-" and self.s[self.i + 1] != "]":
                        self.i += 1
                        hi = self.char()
                    ranges.append((ord(lo), ord(hi)))
                self.i += 1
                items.append(("cls", ranges, neg))
            elif c == ".":
                self.i += 1
                items.append(("cls", [], True))
            elif c == "(":
                self.i += 1
                self.space(True)
                items.append(self.alternatives(True))
                self.space(True)
                assert self.s[self.i] == ")"
                self.i += 1
            elif re.match(r"[A-Za-z0-9_-]", c):
                m = re.compile(r"[A-Za-z0-9_-]+").match(self.s, self.i)
                self.i = m.end()
                items.append(("ref", m.group()))
            elif c in "*+?{":
                last = items.pop()
                self.i += 1
                if c == "*":
                    items.append(("rep", last, 0, None))
                elif c == "+":
                    items.append(("rep", last, 1, None))
                elif c == "?":
                    items.append(("rep", last, 0, 1))
                else:
                    m = re.compile(r"\s*(\d+)\s*(,\s*(\d*))?\s*\}").match(self.s, self.i)
                    self.i = m.end()
                    lo = int(m.group(1))
                    hi = lo if m.group(2) is None else (int(m.group(3)) if m.group(3) else None)
                    items.append(("rep", last, lo, hi))
            else:
                break
            self.space(nested)
        return ("seq", items)

    def accepts(self, text: str, root: str = "root", prefix: bool = False) -> bool:
        """Whether `text` is a sentence of the grammar (prefix: the beginning of one)."""
        rules = self.rules
        cut = len(text) + 1  # "the text ran out inside a match" (prefix mode only)
        sys.setrecursionlimit(max(sys.getrecursionlimit(), 20000))

        @lru_cache(maxsize=None)
        def ends(node_id: int, i: int) -> frozenset:
            node = nodes[node_id]
            kind = node[0]
            if i == cut:
                return frozenset([cut])
            if kind == "lit":
                if text.startswith(node[1], i):
                    return frozenset([i + len(node[1])])
                if prefix and node[1].startswith(text[i:]) and i + len(node[1]) > len(text):
                    return frozenset([cut])
                return frozenset()
            if kind == "cls":
                if i >= len(text):
                    return frozenset([cut]) if prefix else frozenset()
                cp = ord(text[i])
                inside = any(lo <= cp <= hi for lo, hi in node[1])
                return frozenset([i + 1]) if inside != node[2] else frozenset()
            if kind == "ref":
                return ends(ids[id(rules[node[1]])], i)
            if kind == "alt":
                out: set = set()
                for sub in node[1]:
                    out |= ends(ids[id(sub)], i)
                return frozenset(out)
            if kind == "seq":
                here = {i}
                for sub in node[1]:
                    here = {e for p in here for e in ends(ids[id(sub)], p)}
                    if not here:
                        break
                return frozenset(here)
            # rep: positions after k repetitions, k = 0..max
            _, sub, lo, hi = node
            out = {i} if lo == 0 else set()
            frontier, seen, k = {i}, {i}, 0
            while frontier and (hi is None or k < hi):
                k += 1
                frontier = {e for p in frontier for e in ends(ids[id(sub)], p)}
                if hi is None:
                    frontier -= seen  # an unbounded repetition: each position once
                    seen |= frontier
                if k >= lo:
                    out |= frontier
            return frozenset(out)

        # Number the nodes so that the memo keys are small.
        nodes: list = []
        ids: dict = {}

        def number(node):
            if id(node) in ids:
                return
            ids[id(node)] = len(nodes)
            nodes.append(node)
            if node[0] in ("alt", "seq"):
                for sub in node[1]:
                    number(sub)
            elif node[0] == "rep":
                number(node[1])

        for r in rules.values():
            number(r)
        found = ends(ids[id(rules[root])], 0)
        return len(text) in found or (prefix and cut in found)


def examples(path: Path) -> tuple[str, list[str], list[str]]:
    prompt, ok, bad = "", [], []
    for line in path.read_text().splitlines():
        if line.startswith("# prompt: "):
            prompt = line[len("# prompt: "):]
        elif line.startswith("# accept: "):
            ok.append(json.loads(line[len("# accept: "):]))
        elif line.startswith("# reject: "):
            bad.append(json.loads(line[len("# reject: "):]))
    return prompt, ok, bad


@pytest.mark.parametrize("path", GRAMMARS, ids=lambda p: p.stem)
def test_recognizer_agrees_with_the_examples(path):
    """The Python recognizer itself, on each grammar's own examples."""
    g = Gbnf(path.read_text())
    prompt, ok, bad = examples(path)
    assert prompt and ok and bad
    for s in ok:
        assert g.accepts(s), s
    for s in bad:
        assert not g.accepts(s), s


# --- the CLI ---------------------------------------------------------------------------------


def generate(run_minnow, model, prompt, *flags, temperature, seed):
    model_path(model)
    p = run_minnow("run", model.name, prompt, *flags, "--temperature", str(temperature),
                   "--seed", str(seed), "-n", str(N_PREDICT), "--verbose")
    assert p.returncode == 0, f"minnow run {' '.join(flags)} failed:\n{p.stderr}"
    assert p.stdout.endswith("\n")
    assert "stop: stop" in p.stderr, f"generation did not end by itself:\n{p.stdout}\n{p.stderr}"
    return p.stdout[:-1]  # run adds one newline after the answer


MODEL_IDS = {SMOL.name: "smollm2", GEMMA.name: "gemma3"}


@pytest.mark.parametrize("model", [SMOL, GEMMA], ids=lambda m: MODEL_IDS[m.name])
@pytest.mark.parametrize("path", GRAMMARS, ids=lambda p: p.stem)
def test_grammar_outputs_are_sentences(run_minnow, model, path):
    g = Gbnf(path.read_text())
    prompt, _, _ = examples(path)
    for temperature, seed in SETTINGS:
        out = generate(run_minnow, model, prompt, "--grammar", str(path),
                       temperature=temperature, seed=seed)
        assert g.accepts(out), f"{path.name} at T={temperature} seed={seed}: {out!r}"


REGEXES = [
    (r"\d{3}-\d{3}-\d{4}", "Give a US phone number."),
    (r"\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])", "When did World War II end? Give the date."),
    (r"(yes|no)", "Is the sky blue? Answer yes or no."),
    (r"[A-Z][a-z]{1,15}", "Name a country in Europe."),
    (r"[a-z]{1,12}(\.[a-z]{1,12})?@[a-z]{2,12}\.(com|org|net)", "Invent an email address."),
    (r"-?(0|[1-9]\d{0,5})(\.\d{1,3})?", "How many legs does a spider have?"),
    (r"#[0-9a-fA-F]{6}", "Give the hex color code of red."),
    (r"([01]\d|2[0-3]):[0-5]\d", "What time is it at noon?"),
    (r"\w{1,10}(, \w{1,10}){2}", "Name three colors."),
    (r"[A-Z][a-z ,']{5,60}\.", "Describe the sea in one sentence."),
    (r"((25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(25[0-5]|2[0-4]\d|1?\d?\d)", "Give an IP address."),
    (r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "Generate a UUID."),
    (r"[α-ω]{3,8}", "Write a Greek word."),
]


@pytest.mark.parametrize("model", [SMOL, GEMMA], ids=lambda m: MODEL_IDS[m.name])
@pytest.mark.parametrize("regex,prompt", REGEXES, ids=[f"re{i}" for i in range(len(REGEXES))])
def test_regex_outputs_match(run_minnow, model, regex, prompt):
    for temperature, seed in SETTINGS:
        out = generate(run_minnow, model, prompt, "--regex", regex, temperature=temperature,
                       seed=seed)
        assert re.fullmatch(regex, out), f"{regex} at T={temperature} seed={seed}: {out!r}"


CATEGORIES = ["billing", "technical", "feature_request", "complaint", "other"]
CLASSIFY = ("Classify: I was charged twice for my subscription this month. Categories: "
            "billing, technical, feature_request, complaint, other")


@pytest.mark.parametrize("model", [SMOL, GEMMA], ids=lambda m: MODEL_IDS[m.name])
def test_choice_outputs_one_category(run_minnow, model):
    for temperature, seed in SETTINGS:
        out = generate(run_minnow, model, CLASSIFY, "--choice", ",".join(CATEGORIES),
                       temperature=temperature, seed=seed)
        assert out in CATEGORIES, f"T={temperature} seed={seed}: {out!r}"


def test_choice_classifies_the_billing_example(run_minnow):
    """The issue's example, greedy on SmolLM2: exactly one category, the right one."""
    out = generate(run_minnow, SMOL, CLASSIFY, "--choice", ",".join(CATEGORIES),
                   temperature=0, seed=1)
    assert out == "billing"


# Any JSON object, written here for the test (RFC 8259), to check answers cut by the limit.
JSON_OBJECT = Gbnf(r"""
root ::= object
value ::= object | array | string | number | "true" | "false" | "null"
object ::= "{" ws ( member ( "," ws member )* )? "}"
member ::= string ws ":" ws value ws
array ::= "[" ws ( value ws ( "," ws value ws )* )? "]"
string ::= "\"" ( [^"\\\x00-\x1F] | "\\" ( ["\\/bfnrt] | "u" [0-9a-fA-F]{4} ) )* "\""
number ::= "-"? ( "0" | [1-9] [0-9]* ) ( "." [0-9]+ )? ( [eE] [-+]? [0-9]+ )?
ws ::= [ \t\n\r]*
""")

EXTRACT = ("Extract the name, email and company as a JSON object: Hi, I'm Sarah Chen from Acme "
           "Corp. Reach me at sarah@acme.com")


@pytest.mark.parametrize("model", [SMOL, GEMMA], ids=lambda m: MODEL_IDS[m.name])
def test_format_json_outputs_parse(run_minnow, model):
    """Any JSON object is unbounded; under a small token limit the constraint's budget still
    closes every answer in time, greedy or sampled: each ends by itself and parses."""
    for temperature, seed in [(0.0, 1), (0.7, 1), (1.2, 2)]:
        model_path(model)
        p = run_minnow("run", model.name, EXTRACT, "--format", "json", "--temperature",
                       str(temperature), "--seed", str(seed), "-n", "48", "--verbose")
        assert p.returncode == 0, p.stderr
        out = p.stdout[:-1]
        assert "stop: stop" in p.stderr, f"T={temperature} seed={seed} cut off: {out!r}"
        assert JSON_OBJECT.accepts(out), f"T={temperature} seed={seed}: {out!r}"
        assert isinstance(json.loads(out), dict), f"T={temperature} seed={seed}: {out!r}"


def test_bad_constraints_fail_clearly(run_minnow, tmp_path):
    model_path(SMOL)
    p = run_minnow("run", SMOL.name, "x", "--regex", "(a)\\1")
    assert p.returncode != 0 and "backreference" in p.stderr
    p = run_minnow("run", SMOL.name, "x", "--regex", "a", "--choice", "a,b")
    assert p.returncode != 0 and "exclusive" in p.stderr
    p = run_minnow("run", SMOL.name, "x", "--format", "yaml")
    assert p.returncode != 0 and "--format" in p.stderr
    p = run_minnow("run", SMOL.name, "x", "--grammar", "/nonexistent.gbnf")
    assert p.returncode != 0 and "cannot open" in p.stderr
    bad = tmp_path / "left.gbnf"
    bad.write_text("root ::= expr\nexpr ::= expr \"+\" \"1\" | \"1\"\n")
    p = run_minnow("run", SMOL.name, "x", "--grammar", str(bad))
    assert p.returncode != 0 and "left recursion" in p.stderr
