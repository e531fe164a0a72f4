#!/usr/bin/env python3
"""Bounded soak of `minnow serve` on loopback: many concurrent clients, random disconnects.

    bench/soak.py [--bin build/minnow] [--clients 32] [--seconds 120] [--model smollm2:135m]

Starts a server (MINNOW_NUM_PARALLEL=8, MINNOW_MAX_QUEUE=16 so that some requests meet the
503), then `--clients` threads loop until the time is up, each picking at random: a streaming
or non-streaming Ollama /api/generate or /api/chat, or OpenAI /v1/chat/completions; a quarter
of the streaming requests are dropped by the client after a few pieces (the socket is closed
mid-stream). Every request must end in a 200 with a well-formed answer, or a 503 with
Retry-After (the bounded queue), or - for the dropped ones - nothing. The server's RSS is sampled
every second from /proc. Exit status 0 when: no other failure, the server is alive and answers
/health at the end, and RSS after the warm-up (the first quarter) grew by less than 10%.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class Stats:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts: dict[str, int] = {}
        self.failures: list[str] = []

    def add(self, key: str) -> None:
        with self.lock:
            self.counts[key] = self.counts.get(key, 0) + 1

    def fail(self, msg: str) -> None:
        with self.lock:
            self.failures.append(msg)


def one_request(port: int, model: str, rng: random.Random, stats: Stats) -> None:
    kind = rng.choice(["generate", "chat", "openai"])
    stream = rng.random() < 0.7
    drop = stream and rng.random() < 0.25
    n = rng.choice([8, 16, 32, 64])
    question = rng.choice(["Why is the sky blue?", "Name three fruits.", "Tell me a joke.",
                           "What is two plus two?", "Describe the sea."])
    if kind == "generate":
        path = "/api/generate"
        body = {"model": model, "prompt": question, "stream": stream,
                "options": {"num_predict": n, "seed": rng.randrange(1000)}}
    elif kind == "chat":
        path = "/api/chat"
        body = {"model": model, "messages": [{"role": "user", "content": question}],
                "stream": stream, "options": {"num_predict": n}}
    else:
        path = "/v1/chat/completions"
        body = {"model": model, "messages": [{"role": "user", "content": question}],
                "stream": stream, "max_tokens": n}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    try:
        conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
        resp = conn.getresponse()
        if resp.status == 503:
            if not resp.getheader("Retry-After"):
                stats.fail(f"{path}: 503 without Retry-After")
            resp.read()
            stats.add("503")
            time.sleep(rng.uniform(0.05, 0.3))  # a client backs off a little, as SDKs do
            return
        if resp.status != 200:
            stats.fail(f"{path}: HTTP {resp.status}: {resp.read()[:200]!r}")
            return
        if not stream:
            obj = json.loads(resp.read())
            ok = ("response" in obj) if kind == "generate" else (
                "message" in obj if kind == "chat" else "choices" in obj)
            if not ok:
                stats.fail(f"{path}: malformed answer {str(obj)[:200]}")
                return
            stats.add("ok")
            return
        pieces = 0
        limit = rng.randint(1, 4) if drop else None
        done = False
        while True:
            line = resp.readline()
            if not line:
                break
            line = line.strip()
            if not line:
                continue
            if kind == "openai":
                if line == b"data: [DONE]":
                    done = True
                    break
                if not line.startswith(b"data: "):
                    stats.fail(f"{path}: bad SSE line {line[:100]!r}")
                    return
                obj = json.loads(line[6:])
            else:
                obj = json.loads(line)
                if obj.get("done"):
                    done = True
                    break
            if "error" in obj:
                stats.fail(f"{path}: error in stream: {obj['error']}")
                return
            pieces += 1
            if limit is not None and pieces >= limit:
                conn.sock.shutdown(socket.SHUT_RDWR)  # the client goes away mid-stream
                stats.add("dropped")
                return
        if not done:
            stats.fail(f"{path}: stream ended without its final message")
            return
        stats.add("ok")
    except (OSError, http.client.HTTPException, json.JSONDecodeError) as e:
        stats.fail(f"{path}: {type(e).__name__}: {e}")
    finally:
        conn.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", default=str(ROOT / "build" / "minnow"))
    ap.add_argument("--model", default="smollm2:135m")
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=120)
    a = ap.parse_args()

    port = free_port()
    env = dict(os.environ, MINNOW_NUM_PARALLEL="8", MINNOW_MAX_QUEUE="16")
    server = subprocess.Popen([a.bin, "serve", "--port", str(port)], env=env,
                              stderr=subprocess.PIPE, text=True)
    for line in server.stderr:
        if re.search(r"listening on http://", line):
            break
    log: list[str] = []
    threading.Thread(target=lambda: log.extend(server.stderr), daemon=True).start()

    stats = Stats()
    # Warm-up: load the model.
    one_request(port, a.model, random.Random(0), stats)
    stats.counts.clear()
    rss: list[tuple[float, float]] = []
    stop = time.time() + a.seconds

    def sampler() -> None:
        t0 = time.time()
        while time.time() < stop and server.poll() is None:
            rss.append((time.time() - t0, rss_mib(server.pid)))
            time.sleep(1)

    def client(i: int) -> None:
        rng = random.Random(i)
        while time.time() < stop:
            one_request(port, a.model, rng, stats)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(a.clients)]
    threading.Thread(target=sampler, daemon=True).start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    alive = server.poll() is None
    health = False
    if alive:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            c.request("GET", "/health")
            health = c.getresponse().status == 200
        except OSError:
            pass
        server.terminate()
        server.wait(timeout=60)
    warm = [m for t, m in rss if t >= a.seconds / 4]
    rss_start, rss_end = (warm[0], warm[-1]) if warm else (0.0, 0.0)
    rss_max = max((m for _, m in rss), default=0.0)
    growth = (rss_end - rss_start) / rss_start if rss_start else 0.0
    print(f"{a.clients} clients, {a.seconds:.0f} s: {stats.counts}")
    print(f"failures: {len(stats.failures)}")
    for f in stats.failures[:20]:
        print("  " + f)
    print(f"server alive at the end: {alive}, /health: {health}, exit status {server.returncode}")
    print("RSS every 10 s (MiB): " + " ".join(f"{m:.0f}" for t, m in rss[::10]))
    print(f"RSS after warm-up {rss_start:.0f} MiB, at the end {rss_end:.0f} MiB "
          f"({100 * growth:+.1f}%), max {rss_max:.0f} MiB")
    ok = not stats.failures and alive and health and growth < 0.10
    print("soak: PASSED" if ok else "soak: FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
