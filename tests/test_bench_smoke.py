"""The benchmark harness at tiny sizes, so it cannot rot (figures are not checked: that is bench/)."""

from __future__ import annotations

from pathlib import Path

from bench import commands
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


def test_whole_command_items_tiny(tmp_path: Path) -> None:
    """Items 7-9 tiny: the real CLI and the naive peer as subprocesses against served sandboxes.

    Proves that the files are canonical for ``fmt --check``, that the requests come from the
    sandbox's ``--log-requests`` lines (the peer's, which this harness owns, exactly), that the seeded
    account differs from the files by what was asked, that both sides of every apply row end with an
    account equal to the files, and that the report renders. Figures are not checked (that is bench/).
    """
    f = commands.bench_files(tmp_path, sizes=(3,), n_fields=5, runs=1)
    row = f["rows"][0]
    assert row["validate"]["ok"] and row["fmt_check"]["ok"], row
    assert f["startup_s"] > 0 and row["validate"]["wall_s"] > 0

    p = commands.bench_plan_cmd(tmp_path, sizes=(4,), n_fields=5, runs=1, peer_sizes=(4,), differing=2,
                                rate=50.0, latency_ms=0, settle_s=0)
    r = p["rows"][0]
    assert r["ok"] and r["counts"] == (0, 2, 0), r  # 2 differing fields, each in its own schema
    assert r["bound_requests"] == 1 and r["by_kind"].get("GET schema list", 0) >= 1
    assert r["peer"]["ok"] and r["peer"]["summary"]["update"] == 2
    assert r["peer"]["by_kind"] == {"GET schema list": 1, "GET schema": 4}

    a = commands.bench_apply_cmd(tmp_path, creates=2, updates=2, deletes=(2, 2), n_fields=4, rate=50.0,
                                 latency_ms=0, settle_s=0)
    rows = {x["row"]: x for x in a["rows"]}
    assert set(rows) == {"creates", "updates", "deletes"}
    for x in rows.values():
        assert x["rc"] == 0 and x["end_state_ok"], x
        assert x["peer"]["rc"] == 0 and x["peer"]["end_state_ok"], x["peer"]
    assert rows["creates"]["by_kind"]["POST schema"] == 2
    assert rows["creates"]["peer"]["by_kind"] == {"GET schema list": 1, "POST schema": 2}
    assert rows["updates"]["peer"]["by_kind"] == {"GET schema list": 1, "GET schema": 2, "PUT schema": 2}
    assert rows["deletes"]["by_kind"]["DELETE field"] == 4
    assert rows["deletes"]["peer"]["by_kind"] == {"GET schema list": 1, "GET schema": 2, "DELETE field": 4}
    assert rows["deletes"]["bound_requests"] == 5  # 4 deletes + 1 list page

    text = bench.render({"machine": bench.machine(), "files": f, "plan_cmd": p, "apply_cmd": a}, 1.0)
    assert "## 7. Whole commands" in text and "## 8. Whole `reconciler plan`" in text
    assert "## 9. Whole `reconciler apply`" in text and "## Targets not met" in text
