"""`minnow eval` end to end on the real models: the bundled task set runs out of the box, the
report's numbers are consistent with the per-task results, every answer keeps its format, and
the recommendation follows --min-accuracy."""
from __future__ import annotations

import json

from conftest import MODELS, ROOT, model_path

DATA = ROOT / "data" / "eval" / "support_tickets.jsonl"
CATEGORIES = {"billing", "technical", "feature_request", "complaint", "other"}


def test_bundled_task_set_is_a_labelled_routing_set():
    lines = [json.loads(x) for x in DATA.read_text().splitlines() if x.strip()]
    assert len(lines) >= 100
    assert {t["expected"] for t in lines} == CATEGORIES
    assert len({t["messages"][-1]["content"] for t in lines}) == len(lines)  # no duplicates


def test_eval_compares_the_models_and_recommends(run_minnow, tmp_path):
    for m in MODELS:
        model_path(m)
    out = tmp_path / "results.json"
    p = run_minnow("eval", "--limit", "15", "--min-accuracy", "0.0", "--out", str(out),
                   "--json", timeout=600)
    assert p.returncode == 0, p.stderr
    report = json.loads(p.stdout)
    assert report == json.loads(out.read_text())
    names = [m["model"] for m in report["models"]]
    assert names == [m.name for m in MODELS]
    for m in report["models"]:
        assert m["tasks"] == 15
        results = m["results"]
        assert all(r["answer"] in CATEGORIES for r in results)  # the format always holds
        assert m["format_validity"] == 1.0
        acc = sum(r["score"] for r in results) / len(results)
        assert abs(m["accuracy"] - acc) < 1e-9
        lo, hi = m["accuracy_ci95"]
        assert 0 <= lo <= hi <= 1
        assert m["ttft_ms"]["p50"] <= m["ttft_ms"]["p95"]
        assert m["latency_ms"]["p50"] >= m["ttft_ms"]["p50"] * 0.5
        assert m["peak_rss_bytes"] > 50 << 20
        cost = m["cost_per_1k_requests_usd"]
        assert cost["local"] > 0 and set(cost["cloud"]) >= {"gpt-4o-mini", "gpt-4o"}
        # gpt-4o costs more than gpt-4o-mini for the same tokens.
        assert cost["cloud"]["gpt-4o"] > cost["cloud"]["gpt-4o-mini"]
    # Bar 0: every model meets it; the smallest is recommended.
    smallest = min(report["models"], key=lambda m: m["n_params"])
    assert report["recommendation"] == smallest["model"]


def test_eval_says_when_no_model_is_good_enough(run_minnow, tmp_path):
    model_path(MODELS[0])
    p = run_minnow("eval", "--models", MODELS[0].name, "--limit", "5", "--min-accuracy", "1.01",
                   "--out", "-", timeout=300)
    assert p.returncode == 0, p.stderr
    assert "none of the models reaches accuracy 1.01" in p.stdout
    assert "| smollm2:135m" in p.stdout


def test_eval_errors_name_the_problem(run_minnow, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "x", "expected": "y"}\n{"prompt": "z"}\n')
    p = run_minnow("eval", "--models", MODELS[0].name, "--data", str(bad), "--out", "-")
    assert p.returncode != 0
    assert f"{bad}:2: needs 'expected'" in p.stderr
    p = run_minnow("eval", "--models", "nosuch:model", "--data", str(DATA), "--out", "-")
    assert p.returncode != 0 and "nosuch:model" in p.stderr
