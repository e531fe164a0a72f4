"""`minnow router check` and `minnow router report` as a user runs them: the bundled example
validates and prints its tiers and rules; a typo fails with file:line:column and the key path;
the report reads a route log (malformed lines counted, not fatal), finds the log through the
router file, and refuses a bad --since. No model is needed."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from server_fixture import ROOT, binary


def run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    b = binary()
    if not os.access(b, os.X_OK):
        pytest.skip(f"{b} is not built")
    return subprocess.run([str(b), *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})})


def test_check_prints_the_example(tmp_path: Path):
    p = run("router", "check", str(ROOT / "examples" / "router.toml"), env={"HOME": str(tmp_path)})
    assert p.returncode == 0, p.stderr
    out = p.stdout
    for want in ("router \"auto\": 3 tiers, 4 rules", "small", "smollm2:135m", "medium",
                 "remote gemma3:270m at http://127.0.0.1:11500/v1", "$0.15 in / $0.6 out",
                 "choice mass < 0.6", "long-prompts", "prompt >= 4000 chars -> cloud (pinned",
                 "any of [contract, lawsuit, liability] -> medium",
                 f"log {tmp_path}/.minnow/router.jsonl"):
        assert want in out, f"missing {want!r} in:\n{out}"


def test_check_names_the_line_and_key(tmp_path: Path):
    f = tmp_path / "r.toml"
    f.write_text('name = "auto"\n\n[[tier]]\nmodel = "smollm2:135m"\n[[tier]]\n'
                 'base_url = "http://127.0.0.1:1/v1"\nmodel = "m"\ntimout_s = 3\n')
    p = run("router", "check", str(f))
    assert p.returncode != 0
    assert f"{f}:8:1: tier[1].timout_s: unknown key (did you mean 'timeout_s'?)" in p.stderr, \
        p.stderr
    # The default location: $MINNOW_ROUTER.
    p = run("router", "check", env={"MINNOW_ROUTER": str(tmp_path / "missing.toml")})
    assert p.returncode != 0 and "missing.toml" in p.stderr


def record(tier: str, index: int, local: bool, attempts: list, ts: str) -> dict:
    return {"ts": ts, "router": "auto", "api": "openai", "tier": tier, "tier_index": index,
            "local": local, "escalated": len(attempts) > 1, "rule": "", "streamed": False,
            "attempts": [{"tier": t, "outcome": o, "reason": r, "signals": {"n_tokens": 2},
                          "prompt_tokens": 50, "output_tokens": 2, "ms": ms, "cost_usd": c}
                         for (t, o, r, ms, c) in attempts],
            "prompt_tokens": 50, "output_tokens": 2, "latency_ms": sum(a[3] for a in attempts),
            "cost_usd": sum(a[4] for a in attempts), "top_tier_cost_usd": 0.001}


def test_report(tmp_path: Path):
    log = tmp_path / "route.jsonl"
    lines = [record("small", 0, True, [("small", "answered", "", 100, 0)],
                    "2020-01-01T00:00:00Z") for _ in range(3)]
    lines.append(record("cloud", 1, False, [("small", "escalated", "choice mass 0.3 < 0.6", 90, 0),
                                            ("cloud", "answered", "", 700, 0.001)],
                        "2099-01-01T00:00:00Z"))
    log.write_text("\n".join(json.dumps(x) for x in lines) + "\n{broken\n")
    p = run("router", "report", "--log", str(log), "--json")
    assert p.returncode == 0, p.stderr
    rep = json.loads(p.stdout)
    assert rep["requests"] == 4 and rep["malformed"] == 1 and rep["malformed_lines"] == [5]
    assert rep["answered_locally"] == 3 and rep["escalated"] == 1
    assert rep["reasons"] == [{"what": "small escalated: choice mass # < #", "count": 1}]
    assert [t["name"] for t in rep["tiers"]] == ["small", "cloud"]
    assert rep["top_tier_cost_usd"] == pytest.approx(0.004)
    assert rep["saving_usd"] == pytest.approx(0.003)
    p = run("router", "report", "--log", str(log))
    assert p.returncode == 0, p.stderr
    assert "answered locally 75.0%" in p.stdout and "escalated 25.0%" in p.stdout, p.stdout
    assert "saved $0.003000 (75.0%)" in p.stdout, p.stdout
    # --since: only the record from the future is recent.
    p = run("router", "report", "--log", str(log), "--since", "24h", "--json")
    assert p.returncode == 0 and json.loads(p.stdout)["requests"] == 1, p.stdout + p.stderr
    p = run("router", "report", "--log", str(log), "--since", "yesterday")
    assert p.returncode != 0 and "--since" in p.stderr
    # The log named by the router file.
    cfg = tmp_path / "r.toml"
    cfg.write_text(f'log = "{log}"\n[[tier]]\nmodel = "smollm2:135m"\n')
    p = run("router", "report", "--config", str(cfg), "--json")
    assert p.returncode == 0 and json.loads(p.stdout)["log"] == str(log), p.stderr
    p = run("router", "report", "--log", str(tmp_path / "none.jsonl"))
    assert p.returncode != 0 and "none.jsonl" in p.stderr
