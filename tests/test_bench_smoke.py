"""The benchmark harness at tiny sizes, so it cannot rot (figures are not checked: that is bench/)."""

from __future__ import annotations

from pathlib import Path

from bench import run as bench
from bench.gen import account
from bench.planner_child import measure


def test_generated_account_differs_in_the_share_asked() -> None:
    desired, live, differing = account(3, 20)
    assert set(desired) == set(live) and differing == 3
    assert all(s.id for s in live.values()) and not any(s.id for s in desired.values())


def test_planner_measure_in_process() -> None:
    out = measure(5, 20, runs=1, profile=True)
    assert out["changes"] == out["differing_fields"] == 5
    assert out["wall_s"] > 0 and out["tracemalloc_peak_mb"] > 0 and "ncalls" in out["profile"]


def test_startup_one_run() -> None:
    out = bench.bench_startup(runs=1)
    assert out["help_s"] > 0 and out["version_s"] > 0


def test_http_items_tiny(tmp_path: Path) -> None:
    """Plan over HTTP, impact, apply and sandbox throughput, against a served sandbox, tiny and fast."""
    h = bench.bench_plan_http(tmp_path, sizes=(3,), n_fields=5, runs=1, baseline_sizes=(3,), rate=50.0,
                              latency=0.0)
    row = h["rows"][0]
    assert row["requests"] == row["bound_requests"] == 1 and row["baseline_requests"] == 3

    db = bench.seeded_db(tmp_path, big=300, small=20, n_fields=6)
    im = bench.bench_impact(db, deletes=2, runs=1, rate=50.0, latency=0.0)
    big = im["paced"]["big"]
    assert big["destructive"] == 2 and big["impact_requests"] == 3  # 2 counts + the schema's total
    assert big["affected"] == [150, 200]  # of 300: f0 filled where r % 2, f1 where r % 3

    a = bench.bench_apply(tmp_path, n_schemas=3, n_fields=3, rate=50.0, latency=0.0)
    assert a["ok"] and a["429s"] == 0 and a["by_method"].get("POST") == 3

    s = bench.bench_sandbox(db, n_gets=3, n_counts=2)
    assert s["counts"]["not_blank (one filter, the impact count)"]["total"] == 200

    results = {"machine": bench.machine(), "plan_http": h, "impact": im, "apply": a, "sandbox": s, "seed_s": 0.1}
    text = bench.render(results, 1.0)
    assert "## 3. Plan over HTTP" in text and "## Targets not met" in text
