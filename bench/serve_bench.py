#!/usr/bin/env python3
"""Serving benchmark: concurrent streaming clients against a real `minnow serve`.

    bench/serve_bench.py [--bin build/minnow] [--model smollm2:135m] [--clients 1,4,8,16]
                         [--requests 3] [--tokens 64] [--json out.json]
    bench/serve_bench.py --url http://127.0.0.1:11434 ...   # a server already running

For each number of clients C, C threads each send `--requests` streaming /api/generate requests
one after another (different prompts, temperature 0, num_predict = --tokens, so every request
generates the same number of tokens unless the model ends earlier). Reported per C: aggregate
generated tokens/s (all tokens / wall time of the round), p50/p95 time to first token (request
sent -> first NDJSON piece) and p50/p95 inter-token latency (gaps between pieces). Then the
prefix cache: a ~500-token system prompt, a first request (cold) and a second one with the same
system prompt and another question: time to first token of each and their ratio.

The server is started with MINNOW_NUM_PARALLEL = the largest C (so every client is batched) unless
--url is given. Standard library only.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent

QUESTIONS = [
    "Explain why the sky is blue.", "Write a short poem about rivers.",
    "List three uses of copper.", "Describe how a bicycle works.",
    "What is photosynthesis?", "Give advice for learning to cook.",
    "Why do cats purr?", "Summarise the water cycle.",
    "How do airplanes stay in the air?", "What makes bread rise?",
    "Describe a busy market in the morning.", "Explain what a computer program is.",
    "Why do leaves change colour in autumn?", "How does a refrigerator keep food cold?",
    "What is the purpose of a museum?", "Describe the life of a honeybee.",
]


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    k = (len(s) - 1) * p
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(binary: str, parallel: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = dict(os.environ, MINNOW_NUM_PARALLEL=str(parallel), MINNOW_MAX_QUEUE="256")
    p = subprocess.Popen([binary, "serve", "--port", str(port)], env=env,
                         stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    for line in p.stderr:
        if re.search(r"listening on http://", line):
            break
        if time.time() > deadline:
            raise SystemExit("server did not start")
    threading.Thread(target=lambda: [None for _ in p.stderr], daemon=True).start()
    return p, f"http://127.0.0.1:{port}"


def generate(url: str, body: dict) -> dict:
    """One streaming /api/generate; returns ttft, gaps between pieces, tokens, total time."""
    u = urlparse(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=600)
    t0 = time.perf_counter()
    conn.request("POST", "/api/generate", json.dumps(body), {"Content-Type": "application/json"})
    resp = conn.getresponse()
    if resp.status != 200:
        raise RuntimeError(f"HTTP {resp.status}: {resp.read()[:200]!r}")
    ttft, last, gaps, final = None, None, [], {}
    while True:
        line = resp.readline()
        if not line:
            break
        now = time.perf_counter()
        obj = json.loads(line)
        if "error" in obj:
            raise RuntimeError(obj["error"])
        if obj.get("done"):
            final = obj
            break
        if not obj.get("response"):
            continue
        if ttft is None:
            ttft = now - t0
        else:
            gaps.append(now - last)
        last = now
    conn.close()
    return {"ttft": ttft if ttft is not None else time.perf_counter() - t0, "gaps": gaps,
            "tokens": final.get("eval_count", 0), "total": time.perf_counter() - t0,
            "prompt_eval_count": final.get("prompt_eval_count", 0)}


def round_of(url: str, model: str, clients: int, requests: int, tokens: int) -> dict:
    results: list[dict] = []
    errors: list[str] = []
    lock = threading.Lock()

    def client(c: int) -> None:
        for r in range(requests):
            q = QUESTIONS[(c * requests + r) % len(QUESTIONS)]
            body = {"model": model, "prompt": f"{q} (request {c}-{r})", "stream": True,
                    "options": {"temperature": 0, "num_predict": tokens, "seed": c}}
            try:
                out = generate(url, body)
                with lock:
                    results.append(out)
            except Exception as e:  # noqa: BLE001 - reported below
                with lock:
                    errors.append(str(e))

    t0 = time.perf_counter()
    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    total_tokens = sum(r["tokens"] for r in results)
    ttfts = [r["ttft"] for r in results]
    gaps = [g for r in results for g in r["gaps"]]
    return {"clients": clients, "requests": len(results), "errors": errors, "wall_s": wall,
            "tokens": total_tokens, "tok_per_s": total_tokens / wall,
            "ttft_p50_ms": 1e3 * pct(ttfts, 0.5), "ttft_p95_ms": 1e3 * pct(ttfts, 0.95),
            "itl_p50_ms": 1e3 * pct(gaps, 0.5), "itl_p95_ms": 1e3 * pct(gaps, 0.95)}


def prefix_test(url: str, model: str) -> dict:
    # A system prompt of about 500 tokens (a made-up support policy), then two questions.
    policy = " ".join(
        f"Rule {i}: when a customer asks about topic number {i}, answer politely, cite the policy "
        f"section {i}, and never promise refunds beyond thirty days."
        for i in range(1, 21))
    out = {}
    for name, question in (("first", "How do I reset my password?"),
                           ("second", "Can I get a refund after six weeks?")):
        body = {"model": model, "system": policy, "prompt": question, "stream": True,
                "options": {"temperature": 0, "num_predict": 8}}
        out[name] = generate(url, body)
    return {"prompt_tokens": out["first"]["prompt_eval_count"],
            "ttft_first_ms": 1e3 * out["first"]["ttft"],
            "ttft_second_ms": 1e3 * out["second"]["ttft"],
            "ratio": out["first"]["ttft"] / out["second"]["ttft"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", default=str(ROOT / "build" / "minnow"))
    ap.add_argument("--url")
    ap.add_argument("--model", default="smollm2:135m")
    ap.add_argument("--clients", default="1,4,8,16")
    ap.add_argument("--requests", type=int, default=3)
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--json")
    a = ap.parse_args()
    counts = [int(c) for c in a.clients.split(",")]
    server = None
    url = a.url
    if not url:
        server, url = start_server(a.bin, max(counts))
    try:
        # Warm-up: load the model (not measured).
        generate(url, {"model": a.model, "prompt": "Hello", "stream": True,
                       "options": {"num_predict": 4}})
        rounds = [round_of(url, a.model, c, a.requests, a.tokens) for c in counts]
        prefix = prefix_test(url, a.model)
    finally:
        if server:
            server.terminate()
            server.wait(timeout=60)
    load = os.getloadavg()[0]
    print(f"model {a.model}, {a.requests} requests per client, {a.tokens} tokens each, "
          f"load average {load:.2f}")
    print(f"{'clients':>7} {'req':>4} {'tok/s':>8} {'TTFT p50':>9} {'TTFT p95':>9} "
          f"{'ITL p50':>8} {'ITL p95':>8}  errors")
    for r in rounds:
        print(f"{r['clients']:>7} {r['requests']:>4} {r['tok_per_s']:>8.1f} "
              f"{r['ttft_p50_ms']:>7.0f}ms {r['ttft_p95_ms']:>7.0f}ms {r['itl_p50_ms']:>6.1f}ms "
              f"{r['itl_p95_ms']:>6.1f}ms  {len(r['errors'])}")
    base = rounds[0]["tok_per_s"]
    for r in rounds[1:]:
        print(f"  {r['clients']} clients: {r['tok_per_s'] / base:.2f}x the single-client throughput")
    print(f"shared system prompt ({prefix['prompt_tokens']} prompt tokens): first request TTFT "
          f"{prefix['ttft_first_ms']:.0f} ms, second {prefix['ttft_second_ms']:.0f} ms: "
          f"{prefix['ratio']:.1f}x lower")
    if a.json:
        Path(a.json).write_text(json.dumps({"rounds": rounds, "prefix": prefix,
                                            "load": load}, indent=2))
    return 1 if any(r["errors"] for r in rounds) else 0


if __name__ == "__main__":
    sys.exit(main())
