"""The benchmark harness: ``python -m bench`` runs items 1-6 of issue 7 and rewrites ``bench/RESULTS.md``.

Every item is a function with its sizes as parameters (``tests/test_bench_smoke.py`` runs them tiny).
Over-HTTP items talk to ``reconciler sandbox serve`` in a separate process (its own GIL, as in CI),
through the library's own :class:`~reconciler.client.Client`: the same calls ``reconciler plan`` makes.
The machine is shared and noisy: times are medians of several runs; comparisons are made in one run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from bench.commands import bench_apply_cmd, bench_files, bench_plan_cmd, render_commands
from bench.common import TOKEN, Sandbox, machine, median, reconciler_cmd
from bench.gen import account
from reconciler.model import Field, FieldType, Labels, Schema

if TYPE_CHECKING:
    from reconciler.client import Client
    from reconciler.plan import Plan
    from reconciler.planner import PlanOptions

# The library's client, planner and impact counter are imported where items 3-5 use them, so that the
# whole-command items (7-9, bench/commands.py, which drive the CLI only) run whatever moves inside.

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
RATE = 5.0  # the account's limit, requests/s
LATENCY = 0.1  # added by the sandbox to every request, s


# ---------------------------------------------------------------------------------------------
# Helpers


@contextlib.contextmanager
def served(db: Path, rate: float = RATE, faults: str = "") -> Iterator[str]:
    """``reconciler sandbox serve`` on ``db`` in a child process; yields its URL."""
    with Sandbox(db, rate, faults, log=False) as sandbox:
        yield sandbox.url


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


async def _create_all(url: str, schemas: Sequence[Schema]) -> dict[str, str]:
    """Create schemas without a rate limit (seeding); returns slug -> id."""
    from reconciler.client import Client

    async with Client(url, TOKEN, rate=None) as c:
        sem = asyncio.Semaphore(8)

        async def one(s: Schema) -> Schema:
            async with sem:
                return await c.create_schema(s)

        made = await asyncio.gather(*(one(s) for s in schemas))
    return {s.slug: str(s.id) for s in made}


def seed_schemas(db: Path, schemas: Sequence[Schema]) -> dict[str, str]:
    """Put schemas into a sandbox database through its API (rate limit off)."""
    with served(db, rate=0) as url:
        return _run(_create_all(url, schemas))


async def _settle() -> None:
    """Let the server's token bucket refill between measured runs (burst = rate, 1 s to refill)."""
    await asyncio.sleep(1.2)


# ---------------------------------------------------------------------------------------------
# Item 1: start-up


def bench_startup(runs: int = 10) -> dict[str, Any]:
    """Median wall time of ``reconciler --version`` / ``--help`` (and of a bare ``python -c pass``)."""
    def timed(cmd: list[str]) -> float:
        xs = []
        for _ in range(runs):
            t = time.perf_counter()
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            xs.append(time.perf_counter() - t)
        return median(xs)

    exe = reconciler_cmd()
    return {"runs": runs, "python_s": timed([sys.executable, "-c", "pass"]),
            "version_s": timed([*exe, "--version"]), "help_s": timed([*exe, "--help"])}


# ---------------------------------------------------------------------------------------------
# Item 2: planner CPU and memory (each size in a fresh process)


def planner_child(n_schemas: int, n_fields: int, runs: int, profile: bool = False) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "bench.planner_child", str(n_schemas), str(n_fields), str(runs)]
    if profile:
        cmd.append("--profile")
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    return json.loads(out.stdout)


def bench_planner(sizes: Sequence[tuple[int, int, int]] = ((100, 50, 5), (1000, 50, 3), (5000, 50, 1)),
                  linearity: Sequence[tuple[int, int, int]] = ((1000, 25, 5), (1000, 100, 5)),
                  profile_size: tuple[int, int] | None = (1000, 50)) -> dict[str, Any]:
    """Sizes are (schemas, fields, runs). The linearity rows are compared with the 50-field row."""
    rows = [planner_child(s, f, r, profile=(s, f) == profile_size) for s, f, r in sizes]
    lin = [planner_child(s, f, r) for s, f, r in linearity]
    return {"rows": rows, "linearity": lin}


# ---------------------------------------------------------------------------------------------
# Item 3: plan over HTTP vs its lower bound and a per-schema baseline


def _lower_bound(n_schemas: int, rate: float, latency: float) -> tuple[int, float]:
    """(requests, seconds): ceil(S/100) list pages; the first answers before the rest (which go at
    once, up to the account's burst of ``rate``, then at ``rate``)."""
    pages = max(1, math.ceil(n_schemas / 100))
    seconds = latency * (1 if pages == 1 else 2) + max(0, pages - 1 - int(rate)) / rate
    return pages, seconds


async def _plan_once(url: str, desired: dict[str, Schema], options: PlanOptions, rate: float | None
                     ) -> tuple[float, Client, Plan]:
    """What ``reconciler plan`` does after loading the files: list, plan, count impact."""
    from reconciler.client import Client
    from reconciler.impact import count_impacts
    from reconciler.planner import plan

    client = Client(url, TOKEN, rate=rate)
    t = time.perf_counter()
    async with client:
        live = {s.slug: s for s in await client.list_schemas()}
        p = plan(desired, live, options)
        p = await count_impacts(p, client)
    return time.perf_counter() - t, client, p


async def _per_schema_once(url: str, desired: dict[str, Schema], ids: Sequence[str], rate: float | None
                           ) -> tuple[float, Client]:
    """A per-resource tool: one GET per schema it manages (ids known from its state)."""
    from reconciler.client import Client
    from reconciler.planner import plan

    client = Client(url, TOKEN, rate=rate)
    t = time.perf_counter()
    async with client:
        got = await asyncio.gather(*(client.get_schema(i) for i in ids))
        plan(desired, {s.slug: s for s in got})
    return time.perf_counter() - t, client


def bench_plan_http(workdir: Path, sizes: Sequence[int] = (10, 100, 500), n_fields: int = 20, runs: int = 3,
                    baseline_sizes: Sequence[int] = (10, 100), rate: float = RATE,
                    latency: float = LATENCY) -> dict[str, Any]:
    from reconciler.planner import PlanOptions

    rows = []
    for n in sizes:
        desired, live, _ = account(n, n_fields, seed=n)
        db = workdir / f"plan-{n}.sqlite3"
        ids = seed_schemas(db, list(live.values()))
        faults = f"latency={int(latency * 1000)}ms" if latency else ""
        with served(db, rate=rate, faults=faults) as url:
            async def measure(url: str = url, desired: dict[str, Schema] = desired, ids: dict[str, str] = ids,
                              n: int = n) -> dict[str, Any]:
                walls, reqs, r429 = [], [], []
                changes = 0
                for _ in range(runs):
                    await _settle()
                    wall, client, p = await _plan_once(url, desired, PlanOptions(), rate)
                    walls.append(wall)
                    reqs.append(len(client.stats.records))
                    r429.append(client.stats.count(status=429))
                    changes = len(p.changes)
                row: dict[str, Any] = {"schemas": n, "wall_s": median(walls), "walls_s": walls, "requests": max(reqs),
                                       "429s": sum(r429), "changes": changes, "runs": runs}
                if n in baseline_sizes:
                    bw, breq = [], []
                    for _ in range(1 if n >= 100 else runs):
                        await _settle()
                        wall, client = await _per_schema_once(url, desired, list(ids.values()), rate)
                        bw.append(wall)
                        breq.append(len(client.stats.records))
                    row.update(baseline_wall_s=median(bw), baseline_requests=max(breq))
                return row

            row = _run(measure())
        row["bound_requests"], row["bound_s"] = _lower_bound(n, rate or 1e9, latency)
        rows.append(row)
    return {"rows": rows, "fields": n_fields, "rate": rate, "latency_s": latency}


# ---------------------------------------------------------------------------------------------
# Items 4 and 6 share one seeded database


_REC_TYPES = (FieldType.TEXT, FieldType.NUMBER, FieldType.DROPDOWN)


def record_schema(slug: str, n_fields: int = 10) -> Schema:
    fields = []
    for i in range(n_fields):
        t = _REC_TYPES[i % len(_REC_TYPES)]
        opts = [{"value": f"v{j}"} for j in range(5)] if t is FieldType.DROPDOWN else None
        fields.append(Field.model_validate({"id": f"f{i}", "type": t, "labels": {"singular": f"F{i}",
                                            "plural": f"F{i}s"}, **({"options": opts} if opts else {})}))
    return Schema(slug=slug, labels=Labels(singular=slug.title(), plural=slug.title() + "s"), fields=tuple(fields))


def _records(n: int, n_fields: int) -> Iterator[dict[str, Any]]:
    """Field i is filled on records where ``r % (i + 2) != 0`` (so every count differs)."""
    for r in range(n):
        values: dict[str, Any] = {}
        for i in range(n_fields):
            if r % (i + 2):
                kind = _REC_TYPES[i % len(_REC_TYPES)]
                values[f"f{i}"] = r if kind is FieldType.NUMBER else (f"v{r % 5}" if kind is FieldType.DROPDOWN
                                                                       else f"text {r % 97}")
        yield {"fields": values}


@dataclass
class SeededDb:
    path: Path
    ids: dict[str, str]
    records: dict[str, int]
    seed_s: float
    schemas: dict[str, Schema] = field(default_factory=dict)


def seeded_db(workdir: Path, big: int = 100_000, small: int = 100, n_fields: int = 10) -> SeededDb:
    """Two schemas, ``big`` and ``small``, with that many records seeded straight into the store."""
    from reconciler.sandbox.store import Store

    schemas = {"big": record_schema("big", n_fields), "small": record_schema("small", n_fields)}
    path = workdir / "records.sqlite3"
    ids = seed_schemas(path, list(schemas.values()))
    store = Store(str(path))
    try:
        t = time.perf_counter()
        store.seed_records(ids["big"], _records(big, n_fields))
        store.seed_records(ids["small"], _records(small, n_fields))
        seed_s = time.perf_counter() - t
    finally:
        store.close()
    return SeededDb(path, ids, {"big": big, "small": small}, seed_s, schemas)


# ---------------------------------------------------------------------------------------------
# Item 4: impact counting


def bench_impact(db: SeededDb, deletes: int = 5, runs: int = 5, rate: float = RATE,
                 latency: float = LATENCY) -> dict[str, Any]:
    """Plan each schema with ``deletes`` of its fields left out of the desired file (DL102 each)."""
    from reconciler.client import Client
    from reconciler.impact import count_impacts
    from reconciler.planner import PlanOptions, plan

    faults = f"latency={int(latency * 1000)}ms" if latency else ""
    out: dict[str, Any] = {"deletes": deletes, "rate": rate, "latency_s": latency}

    async def one(url: str, slug: str, lim: float | None) -> dict[str, Any]:
        full = db.schemas[slug]
        desired = {slug: full.model_copy(update={"fields": full.fields[deletes:]})}
        opts = PlanOptions(targets=(slug,))
        walls, impact_walls, impact_reqs, reqs = [], [], [], []
        affected: list[int | None] = []
        for _ in range(runs):
            if lim:
                await _settle()
            client = Client(url, TOKEN, rate=lim)
            t = time.perf_counter()
            async with client:
                live = {s.slug: s for s in await client.list_schemas()}
                p = plan(desired, live, opts)
                n_before = len(client.stats.records)
                ti = time.perf_counter()
                p = await count_impacts(p, client)
                impact_walls.append(time.perf_counter() - ti)
            walls.append(time.perf_counter() - t)
            impact_reqs.append(len(client.stats.records) - n_before)
            reqs.append(len(client.stats.records))
            affected = [f.impact.affected if f.impact else None for c in p.changes for f in c.findings]
        return {"records": db.records[slug], "destructive": sum(c.data_loss for c in p.changes),
                "wall_s": median(walls), "impact_s": median(impact_walls), "impact_requests": max(impact_reqs),
                "requests": max(reqs), "affected": affected}

    with served(db.path, rate=rate, faults=faults) as url:
        out["paced"] = {slug: _run(one(url, slug, rate)) for slug in ("small", "big")}
    with served(db.path, rate=0) as url:  # the server's own cost, without pacing or latency
        out["raw"] = {slug: _run(one(url, slug, None)) for slug in ("small", "big")}
    return out


# ---------------------------------------------------------------------------------------------
# Item 5: apply of new schemas


def bench_apply(workdir: Path, n_schemas: int = 100, n_fields: int = 10, rate: float = RATE,
                latency: float = LATENCY) -> dict[str, Any]:
    from reconciler.applier import apply_plan
    from reconciler.client import Client
    from reconciler.planner import PlanOptions, plan

    desired, _, _ = account(n_schemas, n_fields, differ=0.0, seed=5)
    db = workdir / "apply.sqlite3"
    with contextlib.suppress(FileNotFoundError):
        db.unlink()
    faults = f"latency={int(latency * 1000)}ms" if latency else ""
    with served(db, rate=rate, faults=faults) as url:
        async def go() -> dict[str, Any]:
            async with Client(url, TOKEN, rate=rate) as client:
                live = {s.slug: s for s in await client.list_schemas()}
                p = plan(desired, live, PlanOptions())
                await _settle()
                client.stats.reset()
                t = time.perf_counter()
                result = await apply_plan(p, client, desired=desired, options=PlanOptions())
                wall = time.perf_counter() - t
                return {"schemas": n_schemas, "wall_s": wall, "requests": len(client.stats.records),
                        "by_method": client.stats.by_method(), "429s": client.stats.count(status=429),
                        "retries": client.stats.retries(), "verified": result.verified, "ok": result.ok}

        out = _run(go())
    out["bound_s"] = out["requests"] / rate if rate else 0.0
    out["rate"], out["latency_s"] = rate, latency
    return out


# ---------------------------------------------------------------------------------------------
# Item 6: the sandbox's own throughput


def bench_sandbox(db: SeededDb, n_gets: int = 300, n_counts: int = 60) -> dict[str, Any]:
    """Sequential requests from one client, rate limit off: schema GETs and filtered record counts."""
    sid = db.ids["big"]
    queries = {
        "not_blank (one filter, the impact count)": {"filters[fields.f1][not_blank]": "true"},
        "blank": {"filters[fields.f1][blank]": "true"},
        "eq on a dropdown": {"filters[fields.f2]": "v3"},
        "gte on a number": {"filters[fields.f1][gte]": "50000"},
        "two filters (general query)": {"filters[fields.f1][gte]": "50000", "filters[fields.f2]": "v3"},
    }
    out: dict[str, Any] = {"records": db.records["big"], "counts": {}}
    with served(db.path, rate=0) as url, httpx.Client(base_url=url + "/api/3", headers={"Api-Token": TOKEN}) as h:
        def timed(path: str, params: dict[str, str], n: int) -> tuple[float, float, Any]:
            lat = []
            body = None
            t0 = time.perf_counter()
            for _ in range(n):
                t = time.perf_counter()
                r = h.get(path, params=params)
                r.raise_for_status()
                lat.append(time.perf_counter() - t)
                body = r.json()
            return n / (time.perf_counter() - t0), median(lat), body

        h.get(f"/customObjects/schemas/{sid}")  # warm up the connection
        rps, lat, _ = timed(f"/customObjects/schemas/{sid}", {"showFields": "all"}, n_gets)
        out["schema_get"] = {"requests": n_gets, "rps": rps, "median_s": lat}
        for name, params in queries.items():
            rps, lat, body = timed(f"/customObjects/records/{sid}", {"limit": "1", **params}, n_counts)
            out["counts"][name] = {"requests": n_counts, "rps": rps, "median_s": lat,
                                   "total": body["meta"]["total"]}
    return out


# ---------------------------------------------------------------------------------------------
# Report


def _f(x: float, unit: str = "s", digits: int = 2) -> str:
    if unit == "ms":
        return f"{x * 1000:.0f} ms"
    return f"{x:.{digits}f} {unit}".strip()


def _met(ok: bool) -> str:
    return "**met**" if ok else "**NOT met**"


def render(results: dict[str, Any], elapsed: float) -> str:
    m = results["machine"]
    lines = [
        "# Benchmark results",
        "",
        "Written by `python -m bench` (bench/run.py); do not edit by hand: the analysis is in",
        "[bench/README.md](README.md) and the last section below. Times are medians of several runs on a",
        "shared, noisy machine; ratios are measured in the same run.",
        "",
        f"Machine: {m['cores']} cores, {m['memory']}, CPU {m['cpu']}, Python {m['python']} ({m['platform']}); "
        f"load average at start {m['load average (1/5/15 min) at start']}. Whole run: {elapsed:.0f} s.",
        "",
    ]
    missed: list[str] = []

    if "startup" in results:
        s = results["startup"]
        ok = s["help_s"] < 0.3
        if not ok:
            missed.append(f"start-up: `--help` {_f(s['help_s'], 'ms')} vs 300 ms ({s['help_s'] / 0.3:.2f}x)")
        lines += ["## 1. Start-up", "", f"Median of {s['runs']} runs as subprocesses.", "",
                  "| command | median | target | |", "|---|---|---|---|",
                  f"| `python -c pass` (the interpreter alone) | {_f(s['python_s'], 'ms')} | | |",
                  f"| `reconciler --version` | {_f(s['version_s'], 'ms')} | | |",
                  f"| `reconciler --help` | {_f(s['help_s'], 'ms')} | < 300 ms | {_met(ok)} |", ""]

    if "planner" in results:
        p = results["planner"]
        lines += ["## 2. Planner CPU and memory", "",
                  "Pure `plan()` on generated accounts (each size in a fresh process); desired differs from",
                  "live in 5% of the fields (labels, descriptions, added options). Time: median wall (and CPU)",
                  "of the runs; `plan()` defers the plan file's digests (desired digest, live fingerprints) to",
                  "when they are read, so `+ digests` is the wall time of `plan()` and then reading them, what",
                  "`reconciler plan -out` pays (`reconciler plan` printing, `drift`, a fresh `apply` never read",
                  "them). Memory: tracemalloc peak during one plan, and",
                  "the process's max RSS (which includes the generated account itself, `RSS before`).", "",
                  "| schemas x fields | changes | wall | CPU | + digests | runs | tracemalloc peak | RSS before "
                  "| max RSS | target |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for r in p["rows"]:
            target = ""
            with_hashes = r.get("wall_with_hashes_s", r["wall_s"])
            if (r["schemas"], r["fields"]) == (1000, 50):
                ok = r["wall_s"] < 1.0 and r["tracemalloc_peak_mb"] < 300
                ok_h = with_hashes < 1.0
                target = f"< 1 s, < 300 MB: {_met(ok)}; with the digests: {_met(ok_h)}"
                if r["wall_s"] >= 1.0:
                    missed.append(f"planner 1,000 x 50: {r['wall_s']:.2f} s vs 1 s ({r['wall_s']:.2f}x)")
                if not ok_h:
                    missed.append(f"planner 1,000 x 50 with the plan-file digests: {with_hashes:.2f} s vs 1 s")
            lines.append(f"| {r['schemas']:,} x {r['fields']} | {r['changes']:,} | {_f(r['wall_s'])} | "
                         f"{_f(r['cpu_s'])} | {_f(with_hashes)} | {r['runs']} | {r['tracemalloc_peak_mb']:.0f} MB | "
                         f"{r['rss_before_mb']:.0f} MB | {r['max_rss_mb']:.0f} MB | {target} |")
        base = next((r for r in p["rows"] if (r["schemas"], r["fields"]) == (1000, 50)), None)
        if base and p["linearity"]:
            lines += ["", "Linearity in fields (1,000 schemas): time per field relative to 50 fields "
                      "(1.00 = linear; quadratic would double with each doubling). The ratios use each size's "
                      "fastest run (CPU time): the sizes run in separate processes at different moments, and "
                      "on this shared machine a median of a few runs still moved by 2x between them.", "",
                      "| fields | changes | runs | wall (median) | CPU (fastest run) | CPU per field vs 50 | "
                      "+ digests (fastest run) | + digests per field vs 50 |",
                      "|---|---|---|---|---|---|---|---|"]
            def best(r: dict[str, Any]) -> float:
                return float(r.get("cpu_min_s", r["cpu_s"]))

            def best_h(r: dict[str, Any]) -> float:
                return float(r.get("with_hashes_min_s", r.get("wall_with_hashes_s", r["wall_s"])))

            per50, per50_h = best(base) / base["fields"], best_h(base) / base["fields"]
            rows = sorted([*p["linearity"], base], key=lambda r: r["fields"])
            worst = 0.0
            for r in rows:
                rel = (best(r) / r["fields"]) / per50
                if r["fields"] > base["fields"]:  # only growth matters: fewer fields carry the per-schema overhead
                    worst = max(worst, rel)
                lines.append(f"| {r['fields']} | {r['changes']:,} | {r['runs']} | {_f(r['wall_s'])} | {_f(best(r))} | "
                             f"{rel:.2f} | {_f(best_h(r))} | {(best_h(r) / r['fields']) / per50_h:.2f} |")
            ok = worst < 1.35
            lines += ["", f"Linear (per-field cost with more fields within 1.35x of the 50-field row; a higher per-field "
                      f"cost with fewer fields is the fixed per-schema part, not growth): {_met(ok)}"]
            if not ok:
                missed.append(f"planner linearity: per-field cost {worst:.2f}x of the 50-field row at more fields")
        prof = next((r.get("profile") for r in p["rows"] if r.get("profile")), None)
        if prof:
            lines += ["", "cProfile of one plan at 1,000 x 50 and reading its digests, after the changes "
                      "(top by own time):", "",
                      "```", prof, "```"]
        lines.append("")

    if "plan_http" in results:
        h = results["plan_http"]
        lines += ["## 3. Plan over HTTP", "",
                  f"`reconciler sandbox serve --rate-limit {h['rate']:g} --faults latency={h['latency_s'] * 1000:.0f}ms`"
                  f" in its own process; {h['fields']} fields a schema; the client does what `reconciler plan`"
                  " does (list, plan, count impact). Lower bound: ceil(S/100) list pages, the first before the"
                  " rest, at the account's rate and latency. Baseline: one GET per schema, as a per-resource"
                  " tool reads its state.", "",
                  "| schemas | requests | bound | wall | bound + 0.5 s | 429s | per-schema baseline | ratio | target |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for r in h["rows"]:
            ok_req = r["requests"] == r["bound_requests"]
            ok_t = r["wall_s"] <= r["bound_s"] + 0.5
            base = ""
            ratio = ""
            ok_ratio = True
            if "baseline_wall_s" in r:
                base = f"{r['baseline_requests']} req, {_f(r['baseline_wall_s'])}"
                ratio_v = r["baseline_wall_s"] / r["wall_s"]
                ratio = f"{ratio_v:.1f}x"
                if r["schemas"] == 100:
                    ok_ratio = ratio_v >= 10
                    if not ok_ratio:
                        missed.append(f"plan over HTTP at 100: {ratio_v:.1f}x faster than per-schema vs 10x")
            if not ok_req:
                missed.append(f"plan over HTTP at {r['schemas']}: {r['requests']} requests vs {r['bound_requests']}")
            if not ok_t:
                missed.append(f"plan over HTTP at {r['schemas']}: {r['wall_s']:.2f} s vs bound + 0.5 = "
                              f"{r['bound_s'] + 0.5:.2f} s")
            lines.append(f"| {r['schemas']} | {r['requests']} | {r['bound_requests']} req, {_f(r['bound_s'])} | "
                         f"{_f(r['wall_s'])} | {_f(r['bound_s'] + 0.5)} | {r['429s']} | {base} | {ratio} | "
                         f"requests {_met(ok_req)}, time {_met(ok_t)}"
                         + (f", 10x {_met(ok_ratio)}" if r["schemas"] == 100 else "") + " |")
        lines.append("")

    if "impact" in results:
        im = results["impact"]
        lines += ["## 4. Impact counting", "",
                  f"{im['deletes']} fields left out of the file (5 x DL102), on a schema with 100 records and one"
                  f" with {im['paced']['big']['records']:,} (seeded straight into the store in "
                  f"{results.get('seed_s', 0):.1f} s). Paced: {im['rate']:g} req/s and "
                  f"{im['latency_s'] * 1000:.0f} ms latency, like the account; raw: no limit, no latency.", "",
                  "| records | destructive changes | impact requests | impact wall | whole plan wall | raw impact wall |",
                  "|---|---|---|---|---|---|"]
        for slug in ("small", "big"):
            r, raw = im["paced"][slug], im["raw"][slug]
            lines.append(f"| {r['records']:,} | {r['destructive']} | {r['impact_requests']} | {_f(r['impact_s'], 'ms')} | "
                         f"{_f(r['wall_s'], 'ms')} | {_f(raw['impact_s'], 'ms')} |")
        small, big = im["paced"]["small"], im["paced"]["big"]
        ratio = big["wall_s"] / small["wall_s"]
        ok_t = abs(ratio - 1) <= 0.2
        ok_r = big["impact_requests"] == big["destructive"]
        lines += ["", f"100,000 vs 100 records, whole plan: {ratio:.2f}x (target within 20%): {_met(ok_t)}. "
                  f"Requests per destructive change: {big['impact_requests']} for {big['destructive']} "
                  f"(target one each): {_met(ok_r)}.", ""]
        if not ok_t:
            missed.append(f"impact: 100,000 vs 100 records {ratio:.2f}x (target within 1.2x)")
        if not ok_r:
            missed.append(f"impact: {big['impact_requests']} requests for {big['destructive']} destructive changes")

    if "apply" in results:
        a = results["apply"]
        ratio = a["wall_s"] / a["bound_s"] if a["bound_s"] else float("nan")
        ok = ratio <= 1.15 and a["429s"] == 0
        if not ok:
            missed.append(f"apply: {ratio:.2f}x the bound (target 1.15x), {a['429s']} 429s")
        lines += ["## 5. Apply of new schemas", "",
                  f"{a['schemas']} new schemas at {a['rate']:g} req/s with {a['latency_s'] * 1000:.0f} ms latency.", "",
                  "| requests | by method | bound (requests / rate) | wall | wall / bound | 429s | retries | verified | target |",
                  "|---|---|---|---|---|---|---|---|---|",
                  f"| {a['requests']} | {a['by_method']} | {_f(a['bound_s'])} | {_f(a['wall_s'])} | {ratio:.3f} | "
                  f"{a['429s']} | {a['retries']} | {a['verified']} | <= 1.15x, no 429: {_met(ok)} |", ""]

    if "sandbox" in results:
        s = results["sandbox"]
        lines += ["## 6. The sandbox, rate limit off", "",
                  f"One client, sequential requests over loopback; {s['records']:,} records.", "",
                  "| request | requests/s | median latency | meta.total | target |", "|---|---|---|---|---|",
                  f"| GET a schema (showFields=all) | {s['schema_get']['rps']:.0f} | "
                  f"{_f(s['schema_get']['median_s'], 'ms')} | | |"]
        for name, c in s["counts"].items():
            ok = c["median_s"] < 0.1
            if not ok:
                missed.append(f"sandbox count {name}: {c['median_s'] * 1000:.0f} ms vs 100 ms")
            lines.append(f"| records count, {name} | {c['rps']:.0f} | {_f(c['median_s'], 'ms')} | {c['total']:,} | "
                         f"< 100 ms: {_met(ok)} |")
        lines.append("")

    lines += render_commands(results, missed)

    lines += ["## Targets not met", ""]
    lines += [f"- {m}" for m in missed] or ["- none"]
    notes = Path(__file__).with_name("NOTES.md")
    if notes.exists():
        lines += ["", notes.read_text(encoding="utf-8").rstrip()]
    return "\n".join(lines) + "\n"


ITEMS = ("startup", "planner", "plan_http", "impact", "apply", "sandbox", "files", "plan_cmd", "apply_cmd")


def run(items: Sequence[str] = ITEMS, quick: bool = False, out: Path | None = RESULTS) -> dict[str, Any]:
    """Run the chosen items; write the report to ``out`` (None: do not write). ``quick``: small sizes."""
    t0 = time.perf_counter()
    results: dict[str, Any] = {"machine": machine()}
    workdir = Path(tempfile.mkdtemp(prefix="reconciler-bench-"))
    try:
        def say(msg: str) -> None:
            print(f"[{time.perf_counter() - t0:6.1f} s] {msg}", file=sys.stderr, flush=True)

        if "startup" in items:
            say("1. start-up")
            results["startup"] = bench_startup(3 if quick else 10)
        if "planner" in items:
            say("2. planner")
            results["planner"] = (bench_planner(((100, 50, 3), (1000, 50, 1)), ((1000, 25, 1),), None)
                                  if quick else bench_planner())
        if "plan_http" in items:
            say("3. plan over HTTP")
            results["plan_http"] = (bench_plan_http(workdir, (10, 100), runs=1, baseline_sizes=(10,))
                                    if quick else bench_plan_http(workdir))
        db = None
        if "impact" in items or "sandbox" in items:
            say("seeding records")
            db = seeded_db(workdir, big=10_000 if quick else 100_000)
            results["seed_s"] = db.seed_s
        if "impact" in items and db is not None:
            say("4. impact")
            results["impact"] = bench_impact(db, runs=2 if quick else 5)
        if "apply" in items:
            say("5. apply")
            results["apply"] = bench_apply(workdir, 20 if quick else 100)
        if "sandbox" in items and db is not None:
            say("6. sandbox")
            results["sandbox"] = bench_sandbox(db, 100 if quick else 300, 20 if quick else 60)
        if "files" in items:
            say("7. validate and fmt --check, whole commands")
            results["files"] = (bench_files(workdir, (10, 100), runs=1) if quick
                                else bench_files(workdir, profile_size=100))
        if "plan_cmd" in items:
            say("8. plan, whole command, and the naive peer")
            results["plan_cmd"] = (bench_plan_cmd(workdir, (10, 100), runs=1, peer_sizes=(10,)) if quick
                                   else bench_plan_cmd(workdir, profile_size=500))
        if "apply_cmd" in items:
            say("9. apply, whole command, and the naive peer")
            results["apply_cmd"] = (bench_apply_cmd(workdir, creates=10, updates=10, deletes=(2, 5)) if quick
                                    else bench_apply_cmd(workdir))
        say("done")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    elapsed = time.perf_counter() - t0
    results["elapsed_s"] = elapsed
    if out is not None:
        out.write_text(render(results, elapsed), encoding="utf-8")
        out.with_suffix(".json").write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
    return results


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    ap.add_argument("items", nargs="*", metavar="ITEM", help=f"which items (default: all): {', '.join(ITEMS)}")
    ap.add_argument("--quick", action="store_true", help="small sizes (a few minutes); figures not comparable")
    ap.add_argument("--out", type=Path, default=RESULTS, help="report path (default: bench/RESULTS.md)")
    ap.add_argument("--render-only", action="store_true",
                    help="run nothing: rewrite the report from its .json (after editing bench/NOTES.md)")
    args = ap.parse_args(argv)
    if args.render_only:
        results = json.loads(args.out.with_suffix(".json").read_text(encoding="utf-8"))
        args.out.write_text(render(results, results["elapsed_s"]), encoding="utf-8")
        print(f"wrote {args.out}")
        return 0
    unknown = sorted(set(args.items) - set(ITEMS))
    if unknown:
        ap.error(f"unknown item {', '.join(unknown)} (choose from {', '.join(ITEMS)})")
    run(args.items or ITEMS, quick=args.quick, out=args.out)
    print(f"wrote {args.out}")
    return 0
