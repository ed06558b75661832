"""Items 7-9: whole commands as a user runs them, files on disk, beside the naive peer (issue 13).

Every command is a subprocess (the installed ``reconciler`` script), every account is a ``reconciler
sandbox serve`` child (``bench.common.Sandbox``) seeded through its HTTP API with the rate limit off,
then served at the account's 5 req/s with 100 ms latency and ``--log-requests``, whose lines say which
requests each command sent. The naive peer (``bench/peer.py``) runs as its own subprocess against a
fresh copy of the same account. Nothing here reaches into reconciler's internals but
``reconciler.files.dump_schema`` (the canonical writer) through ``bench.gen``'s models.

- 7 ``files``: ``validate`` and ``fmt --check`` at 10 / 100 / 500 / 1,000 files of 30 fields.
- 8 ``plan_cmd``: ``reconciler plan`` against an account equal to the files but a few fields.
- 9 ``apply_cmd``: ``reconciler apply`` of creates, of updates (one field added and one label changed
  on each schema) and of deletes (fields over a few schemas, ``--allow-data-loss``).

Bounds (the issue's): plan = the list pages ÷ rate + one latency; apply = (the writes the change
needs + one list page per 100 schemas) ÷ rate.
"""

from __future__ import annotations

import io
import json
import math
import os
import pstats
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from bench.common import TOKEN, Request, Sandbox, child_env, median, reconciler_cmd, summarize
from bench.gen import account, with_added_field, without_fields
from bench.peer import file_to_body

__all__ = ["bench_apply_cmd", "bench_files", "bench_plan_cmd", "render_commands", "write_project"]

ROOT = Path(__file__).resolve().parent.parent
RATE = 5.0
LATENCY_MS = 100
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_PLAN_LINE = re.compile(r"Plan: (\d+) to add, (\d+) to change, (\d+) to destroy")


# ---------------------------------------------------------------------------------------------
# Projects on disk, accounts seeded over HTTP


def write_project(directory: Path, schemas: Iterable[Any]) -> Path:
    """``directory/schemas/<slug>.yaml`` for each schema, canonical (``dump_schema``); returns ``directory``."""
    from reconciler.files import dump_schema

    d = directory / "schemas"
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    for s in schemas:
        (d / f"{s.slug}.yaml").write_text(dump_schema(s), encoding="utf-8")
    return directory


def seed(db: Path, schemas: Iterable[Any]) -> int:
    """Create the schemas in a sandbox database through its HTTP API, rate limit off. Each body is
    the schema's canonical file read back by the peer's mapping (``peer.file_to_body``)."""
    from reconciler.files import dump_schema

    n = 0
    with Sandbox(db, rate=0, log=False) as sb, httpx.Client(base_url=sb.url + "/api/3",
                                                            headers={"Api-Token": TOKEN}, timeout=60) as h:
        for s in schemas:
            body = file_to_body(yaml.load(dump_schema(s), Loader=_LOADER))
            r = h.post("/customObjects/schemas", json={"schema": body})
            if r.status_code != 201:
                raise RuntimeError(f"seeding {s.slug}: {r.status_code} {r.text[:300]}")
            n += 1
    return n


def copy_db(src: Path, dst: Path) -> Path:
    """A fresh copy of a (closed) sandbox database, so each measured run starts from the same account."""
    for suffix in ("", "-wal", "-shm"):
        target = Path(str(dst) + suffix)
        target.unlink(missing_ok=True)
        source = Path(str(src) + suffix)
        if source.exists():
            shutil.copyfile(source, target)
    return dst


# ---------------------------------------------------------------------------------------------
# Running a command


@dataclass
class Run:
    wall_s: float
    rc: int
    stdout: str
    stderr: str
    started: float  # perf_counter at launch
    ended: float

    def tail(self, n: int = 300) -> str:
        return (self.stdout + self.stderr).strip()[-n:]


def run_cmd(cmd: Sequence[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 1800) -> Run:
    t = time.perf_counter()
    p = subprocess.run(list(cmd), cwd=cwd, env=env or child_env(), capture_output=True, text=True,
                       timeout=timeout, check=False)
    end = time.perf_counter()
    return Run(end - t, p.returncode, p.stdout, p.stderr, t, end)


def _repeat(cmd: Sequence[str], cwd: Path, runs: int, budget_s: float, env: dict[str, str] | None = None
            ) -> list[Run]:
    """At least one run, up to ``runs``, stopping once ``budget_s`` is spent (slow sizes run once)."""
    out: list[Run] = []
    spent = 0.0
    while len(out) < runs and (not out or spent < budget_s):
        r = run_cmd(cmd, cwd, env)
        out.append(r)
        spent += r.wall_s
    return out


def phases(run: Run, reqs: Sequence[Request]) -> dict[str, float]:
    """Where the wall time of one command went: before its first request (start-up, reading the
    files, planning what to ask), between its first request's start and its last answer, after it."""
    if not reqs:
        return {"before_s": run.wall_s, "requests_s": 0.0, "after_s": 0.0}
    first = min(r.start for r in reqs)
    last = max(r.done for r in reqs)
    return {"before_s": max(0.0, first - run.started), "requests_s": max(0.0, last - first),
            "after_s": max(0.0, run.ended - last)}


def profile_cmd(args: Sequence[str], cwd: Path, env: dict[str, str], out: Path, top: int = 14) -> str:
    """One run of ``reconciler ARGS`` under ``python -m cProfile``; the top functions by cumulative
    and by own time."""
    script = reconciler_cmd()  # the script's path, or ``python -m reconciler`` (cProfile takes ``-m`` too)
    target = script[1:] if script[0] == sys.executable else script
    r = run_cmd([sys.executable, "-m", "cProfile", "-o", str(out), *target, *args], cwd, env)
    if not out.exists():
        return f"(no profile: exit {r.rc}: {r.tail()})"
    chunks = []
    for key, only in (("cumulative", "reconciler/"), ("tottime", "")):
        buf = io.StringIO()
        stats = pstats.Stats(str(out), stream=buf).sort_stats(key)
        stats.print_stats(*((only,) if only else ()), top)
        lines = [ln for ln in buf.getvalue().splitlines() if ln.strip()]
        start = next((i for i, ln in enumerate(lines) if ln.lstrip().startswith("ncalls")), 0)
        body = [ln.replace(str(ROOT) + "/", "").replace(sys.prefix + "/", "")
                for ln in lines[start:start + top + 1]]
        what = f"by {key}" + (f", {only} only" if only else "")
        chunks.append(f"{what} (wall {r.wall_s:.2f} s under the profiler, exit {r.rc}):\n" + "\n".join(body))
    return "\n\n".join(chunks)


def _rc_ok(rc: int, want: Sequence[int]) -> bool:
    return rc in want


# ---------------------------------------------------------------------------------------------
# Item 7: validate and fmt --check


def startup(runs: int = 5) -> float:
    """Median wall of ``reconciler --version`` (the process start-up every command pays)."""
    return median([run_cmd([*reconciler_cmd(), "--version"], ROOT).wall_s for _ in range(runs)])


def bench_files(workdir: Path, sizes: Sequence[int] = (10, 100, 500, 1000), n_fields: int = 30, runs: int = 3,
                budget_s: float = 30.0, profile_size: int | None = None) -> dict[str, Any]:
    """``validate`` and ``fmt --check`` on ``sizes`` canonical files; median wall of up to ``runs``."""
    start = startup()
    rows = []
    for n in sizes:
        desired, _, _ = account(n, n_fields, differ=0.0, seed=n)
        proj = write_project(workdir / f"files-{n}", desired.values())
        row: dict[str, Any] = {"files": n}
        for name, args, want in (("validate", ["validate"], (0,)), ("fmt_check", ["fmt", "--check"], (0,))):
            rs = _repeat([*reconciler_cmd(), *args], proj, runs, budget_s)
            wall = median([r.wall_s for r in rs])
            row[name] = {"wall_s": wall, "walls_s": [r.wall_s for r in rs], "runs": len(rs),
                         "rc": [r.rc for r in rs], "ok": all(_rc_ok(r.rc, want) for r in rs),
                         "per_file_ms": wall / n * 1000, "net_per_file_ms": max(0.0, wall - start) / n * 1000,
                         "output": rs[-1].tail(200)}
            if n == profile_size:
                row[name]["profile"] = profile_cmd(args, proj, child_env(), workdir / f"{name}-{n}.prof")
        rows.append(row)
        shutil.rmtree(proj / "schemas", ignore_errors=True)
    return {"rows": rows, "fields": n_fields, "startup_s": start}


# ---------------------------------------------------------------------------------------------
# Item 8: plan


def _plan_counts(text: str) -> tuple[int, int, int] | None:
    m = _PLAN_LINE.search(text)
    if m:
        return int(m.group(1)), int(m.group(2)), int(m.group(3))
    return (0, 0, 0) if "No changes" in text else None


def _pages(n_schemas: int) -> int:
    return max(1, math.ceil(n_schemas / 100))


def _peer(mode: str, url: str, proj: Path, rate: float) -> tuple[Run, dict[str, Any] | None]:
    env = child_env(AC_API_TOKEN=TOKEN, PYTHONPATH=str(ROOT))
    r = run_cmd([sys.executable, "-m", "bench.peer", mode, "--url", url, "--dir", "schemas", "--rate", f"{rate:g}"],
                proj, env)
    last = r.stdout.strip().splitlines()[-1] if r.stdout.strip() else ""
    try:
        return r, json.loads(last)
    except json.JSONDecodeError:
        return r, None


def _plan_args(url: str, rate: float) -> list[str]:
    return ["plan", "--url", url, "--rate", f"{rate:g}", "--no-color", "--detailed-exitcode"]


SETTLE_S = 1.2  # the server's token bucket refills in 1 s (burst = rate): the pause between measured runs


def bench_plan_cmd(workdir: Path, sizes: Sequence[int] = (10, 100, 500, 1000), n_fields: int = 30,
                   runs: int = 3, peer_sizes: Sequence[int] = (10, 100), differing: int = 5,
                   rate: float = RATE, latency_ms: int = LATENCY_MS, budget_s: float = 20.0,
                   profile_size: int | None = None, settle_s: float = SETTLE_S) -> dict[str, Any]:
    """``reconciler plan`` on ``sizes`` files against an account that differs in ``differing`` fields
    (each in its own schema: a label, an added option or a description, none destructive).
    ``settle_s``: the pause before each measured command, so each starts with a full token bucket."""
    faults = f"latency={latency_ms}ms" if latency_ms else ""
    env = child_env(AC_API_TOKEN=TOKEN)
    rows = []
    for n in sizes:
        share = min(1.0, differing / (n * n_fields))
        desired, live, changed = account(n, n_fields, differ=share, seed=n)
        proj = write_project(workdir / f"plan-{n}", desired.values())
        db = workdir / f"plan-{n}.sqlite3"
        t = time.perf_counter()
        seed(db, live.values())
        row: dict[str, Any] = {"schemas": n, "differing_fields": changed, "seed_s": time.perf_counter() - t}
        with Sandbox(db, rate, faults) as sb:
            rs, summaries, ph = [], [], []
            for _ in range(runs):
                time.sleep(settle_s)
                mark = sb.mark()
                r = run_cmd([*reconciler_cmd(), *_plan_args(sb.url, rate)], proj, env)
                reqs = sb.requests(mark)
                rs.append(r)
                summaries.append(summarize(reqs))
                ph.append(phases(r, reqs))
                if sum(x.wall_s for x in rs) > budget_s:
                    break
            walls = [r.wall_s for r in rs]
            i = walls.index(sorted(walls)[len(walls) // 2])  # the median run's requests and phases
            row.update(wall_s=median(walls), walls_s=walls, runs=len(rs), rc=[r.rc for r in rs],
                       ok=all(r.rc == 2 for r in rs), counts=_plan_counts(rs[i].stdout), **summaries[i],
                       phases=ph[i], output=rs[i].tail(200) if rs[i].rc != 2 else "")
            if n == profile_size:
                time.sleep(settle_s)
                row["profile"] = profile_cmd(_plan_args(sb.url, rate), proj, env, workdir / f"plan-{n}.prof")
            if n in peer_sizes:
                time.sleep(settle_s)
                mark = sb.mark()
                pr, out = _peer("plan", sb.url, proj, rate)
                preqs = summarize(sb.requests(mark))
                row["peer"] = {"wall_s": pr.wall_s, "rc": pr.rc, "ok": pr.rc == 0 and out is not None,
                               "summary": out, **preqs, "output": "" if out else pr.tail(300)}
        row["bound_requests"] = _pages(n)
        row["bound_s"] = _pages(n) / rate + latency_ms / 1000
        rows.append(row)
        shutil.rmtree(proj / "schemas", ignore_errors=True)
        db.unlink(missing_ok=True)
    return {"rows": rows, "fields": n_fields, "rate": rate, "latency_ms": latency_ms}


# ---------------------------------------------------------------------------------------------
# Item 9: apply


def _apply_rows(creates: int, updates: int, deletes: tuple[int, int], n_fields: int
                ) -> list[tuple[str, str, list[Any], list[Any], int, list[str]]]:
    """(name, what, live schemas to seed, desired schemas for the files, writes needed, extra flags)."""
    rows = []
    if creates:
        want, _, _ = account(creates, n_fields, differ=0.0, seed=11)
        rows.append(("creates", f"{creates} new schemas", [], list(want.values()), creates, []))
    if updates:
        have, _, _ = account(updates, n_fields, differ=0.0, seed=12)
        rows.append(("updates", f"1 field added + 1 label changed on each of {updates} schemas",
                     list(have.values()), [with_added_field(s) for s in have.values()], updates, []))
    n_schemas, per = deletes
    if n_schemas and per:
        have, _, _ = account(n_schemas, n_fields, differ=0.0, seed=13)
        rows.append(("deletes", f"{n_schemas * per} fields deleted over {n_schemas} schemas",
                     list(have.values()), [without_fields(s, per) for s in have.values()], n_schemas * per,
                     ["--allow-data-loss"]))
    return rows


def _end_state_empty(sb: Sandbox, proj: Path, rate: float, settle_s: float) -> tuple[bool, str]:
    """A fresh ``reconciler plan`` against the account: empty (exit 0) when it matches the files."""
    time.sleep(settle_s)
    r = run_cmd([*reconciler_cmd(), *_plan_args(sb.url, rate)], proj, child_env(AC_API_TOKEN=TOKEN))
    return r.rc == 0, "" if r.rc == 0 else r.tail(300)


def bench_apply_cmd(workdir: Path, creates: int = 100, updates: int = 100, deletes: tuple[int, int] = (10, 5),
                    n_fields: int = 30, rate: float = RATE, latency_ms: int = LATENCY_MS,
                    settle_s: float = SETTLE_S) -> dict[str, Any]:
    """``reconciler apply --auto-approve`` and the peer's apply, each on a fresh copy of the seeded
    account; both end states checked with a re-plan."""
    faults = f"latency={latency_ms}ms" if latency_ms else ""
    env = child_env(AC_API_TOKEN=TOKEN)
    rows = []
    for name, what, live, want, writes, flags in _apply_rows(creates, updates, deletes, n_fields):
        proj = write_project(workdir / f"apply-{name}", want)
        seed_db = workdir / f"apply-{name}-seed.sqlite3"
        if live:
            seed(seed_db, live)
        reads = _pages(len(live))
        row: dict[str, Any] = {"row": name, "what": what, "schemas": len(want), "writes_needed": writes,
                               "reads_needed": reads, "bound_requests": writes + reads,
                               "bound_s": (writes + reads) / rate}
        with Sandbox(copy_db(seed_db, workdir / f"apply-{name}-reconciler.sqlite3"), rate, faults) as sb:
            mark = sb.mark()
            r = run_cmd([*reconciler_cmd(), "apply", "--url", sb.url, "--rate", f"{rate:g}", "--no-color",
                         "--auto-approve", *flags], proj, env)
            reqs = sb.requests(mark)
            row.update(wall_s=r.wall_s, rc=r.rc, **summarize(reqs), phases=phases(r, reqs),
                       output="" if r.rc == 0 else r.tail(400))
            row["end_state_ok"], row["end_state"] = _end_state_empty(sb, proj, rate, settle_s)
        with Sandbox(copy_db(seed_db, workdir / f"apply-{name}-peer.sqlite3"), rate, faults) as sb:
            mark = sb.mark()
            pr, out = _peer("apply", sb.url, proj, rate)
            preqs = sb.requests(mark)
            peer: dict[str, Any] = {"wall_s": pr.wall_s, "rc": pr.rc, "summary": out, **summarize(preqs),
                                    "output": "" if pr.rc == 0 and out else pr.tail(400)}
            peer["end_state_ok"], peer["end_state"] = _end_state_empty(sb, proj, rate, settle_s)
            row["peer"] = peer
        rows.append(row)
        shutil.rmtree(proj / "schemas", ignore_errors=True)
    return {"rows": rows, "fields": n_fields, "rate": rate, "latency_ms": latency_ms}


# ---------------------------------------------------------------------------------------------
# Report


def _s(x: float) -> str:
    return f"{x:.2f} s"


def _met(ok: bool) -> str:
    return "**met**" if ok else "**NOT met**"


def _kinds(summary: dict[str, Any]) -> str:
    parts = [f"{k} {v}" for k, v in summary.get("by_kind", {}).items()]
    if summary.get("put_repeats"):
        parts.append(f"(PUTs on {summary['put_schemas']} schemas: {summary['put_repeats']} sent twice)")
    if summary.get("429s"):
        parts.append(f"429s {summary['429s']}")
    return ", ".join(parts) or "none"


def _phases(p: dict[str, float] | None) -> str:
    if not p:
        return ""
    return f"{_s(p['before_s'])} / {_s(p['requests_s'])} / {_s(p['after_s'])}"


def render_commands(results: dict[str, Any], missed: list[str]) -> list[str]:
    """The report's sections for items 7-9 (appends a line to ``missed`` for each target not met)."""
    lines: list[str] = []
    if "files" in results:
        f = results["files"]
        lines += ["## 7. Whole commands: `validate` and `fmt --check`", "",
                  f"Subprocesses of the installed `reconciler` script on canonical files of {f['fields']} fields "
                  f"(`dump_schema`), median of up to 3 runs (one when a run is long). Start-up "
                  f"(`reconciler --version`): {f['startup_s'] * 1000:.0f} ms; \"net\" is per file after it.", "",
                  "| files | command | runs | wall | per file | net per file | exit | target |",
                  "|---|---|---|---|---|---|---|---|"]
        for r in f["rows"]:
            n = r["files"]
            for name, label, limit in (("validate", "`validate`", 2.0), ("fmt_check", "`fmt --check`", 5.0)):
                c = r[name]
                target = ""
                if n >= 100:
                    ok = c["net_per_file_ms"] <= limit and c["ok"]
                    target = f"<= {limit:g} ms a file: {_met(ok)}"
                    if not ok:
                        missed.append(f"{label} at {n:,} files: {c['net_per_file_ms']:.1f} ms a file after start-up "
                                      f"vs {limit:g} ms ({c['net_per_file_ms'] / limit:.1f}x)"
                                      + ("" if c["ok"] else f"; exit {c['rc']}"))
                if name == "validate" and n == 1000:
                    ok = c["wall_s"] <= 2.5
                    target += f"; 1,000 files <= 2.5 s: {_met(ok)}"
                    if not ok:
                        missed.append(f"`validate` at 1,000 files: {_s(c['wall_s'])} vs 2.5 s "
                                      f"({c['wall_s'] / 2.5:.1f}x)")
                lines.append(f"| {n:,} | {label} | {c['runs']} | {_s(c['wall_s'])} | {c['per_file_ms']:.1f} ms | "
                             f"{c['net_per_file_ms']:.1f} ms | {','.join(map(str, sorted(set(c['rc']))))} | {target} |")
        for r in f["rows"]:
            for name in ("validate", "fmt_check"):
                if r[name].get("profile"):
                    lines += ["", f"cProfile of `{name.replace('_', ' --')}` at {r['files']:,} files:", "", "```",
                              r[name]["profile"], "```"]
        lines.append("")

    if "plan_cmd" in results:
        p = results["plan_cmd"]
        lines += ["## 8. Whole `reconciler plan` beside the naive peer", "",
                  f"`reconciler plan --url … --detailed-exitcode` as a subprocess on {p['fields']}-field files, "
                  f"against `reconciler sandbox serve --rate-limit {p['rate']:g} --faults latency={p['latency_ms']}ms` "
                  "whose account equals the files but a few fields (each in its own schema; seeded over HTTP with "
                  "the limit off). Bound: ceil(S/100) list pages ÷ rate + one latency. Phases: before the first "
                  "request (start-up, files, config) / first request to last answer / after. Peer: "
                  "`bench/peer.py plan` (list, GET each schema, compare as dicts), once.", "",
                  "| schemas | runs | wall | requests (bound) | bound | wall − bound | phases | changes | "
                  "peer wall | peer requests | peer / reconciler | target |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in p["rows"]:
            n = r["schemas"]
            over = r["wall_s"] - r["bound_s"]
            ok_t = over <= 1.0 and r["ok"]
            target = f"<= bound + 1.0 s: {_met(ok_t)}"
            if not ok_t:
                missed.append(f"whole `plan` at {n:,}: {_s(r['wall_s'])} vs bound + 1.0 = {_s(r['bound_s'] + 1)} "
                              f"(over by {over - 1.0:.2f} s)" + ("" if r["ok"] else f"; exit {r['rc']}"))
            peer = r.get("peer")
            pw = pq = ratio = ""
            if peer:
                pw, pq = _s(peer["wall_s"]), str(peer["requests"])
                rv = peer["wall_s"] / r["wall_s"]
                ratio = f"{rv:.1f}x"
                if n == 100:
                    ok_r = rv >= 4.0
                    target += f"; >= 4x the peer: {_met(ok_r)}"
                    if not ok_r:
                        missed.append(f"whole `plan` at 100: {rv:.1f}x faster than the peer vs 4x")
                if not peer["ok"]:
                    missed.append(f"peer plan at {n:,} failed: {peer['output']}")
                if peer.get("summary") and r.get("counts") and peer["summary"]["update"] != r["counts"][1]:
                    missed.append(f"plan at {n:,}: the peer saw {peer['summary']['update']} changed schemas, "
                                  f"reconciler {r['counts'][1]}")
            counts = r.get("counts")
            changes = f"{counts[0]} + / {counts[1]} ~ / {counts[2]} -" if counts else "?"
            lines.append(f"| {n:,} | {r['runs']} | {_s(r['wall_s'])} | {r['requests']} ({r['bound_requests']}) | "
                         f"{_s(r['bound_s'])} | {over:+.2f} s | {_phases(r.get('phases'))} | {changes} | {pw} | {pq} | "
                         f"{ratio} | {target} |")
            if r["requests"] != r["bound_requests"]:
                lines.append(f"|  |  |  | {_kinds(r)} |  |  |  |  |  |  |  |  |")
        for r in p["rows"]:
            if r.get("profile"):
                lines += ["", f"cProfile of `plan` at {r['schemas']:,} schemas:", "", "```", r["profile"], "```"]
        lines.append("")

    if "apply_cmd" in results:
        a = results["apply_cmd"]
        lines += ["## 9. Whole `reconciler apply` beside the naive peer", "",
                  f"`reconciler apply --url … --auto-approve` as a subprocess, against `sandbox serve --rate-limit "
                  f"{a['rate']:g} --faults latency={a['latency_ms']}ms`, each run on a fresh copy of its seeded "
                  f"account ({a['fields']}-field schemas). Bound: (the writes the change needs + one list page per "
                  "100 schemas) ÷ rate. Requests by kind from the sandbox's `--log-requests` lines. End state: a "
                  "fresh `reconciler plan` afterwards is empty. Phases: before the first request / first "
                  "request to last answer / after.", "",
                  "| change | who | wall | bound | wall / bound | requests | by kind | phases | end state | target |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for r in a["rows"]:
            ratio = r["wall_s"] / r["bound_s"]
            peer = r["peer"]
            ok_b = ratio <= 1.15 and r["rc"] == 0
            ok_p = r["wall_s"] < peer["wall_s"]
            if not ok_b:
                missed.append(f"whole `apply`, {r['what']}: {ratio:.2f}x the bound (target 1.15x): "
                              f"{_s(r['wall_s'])} vs {_s(r['bound_s'])}" + ("" if r["rc"] == 0 else f"; exit {r['rc']}"))
            if not ok_p:
                missed.append(f"whole `apply`, {r['what']}: {peer['wall_s'] / r['wall_s']:.2f}x the peer's speed "
                              f"(reconciler {_s(r['wall_s'])}, peer {_s(peer['wall_s'])}; target faster)")
            if not r["end_state_ok"]:
                missed.append(f"apply {r['row']}: reconciler's end state is not the files: {r['end_state']}")
            if not peer["end_state_ok"]:
                missed.append(f"apply {r['row']}: the peer's end state is not the files (the race is not fair): "
                              f"{peer['end_state']}")
            lines.append(f"| {r['what']} | reconciler | {_s(r['wall_s'])} | {r['bound_requests']} req, "
                         f"{_s(r['bound_s'])} | {ratio:.2f} | {r['requests']} | {_kinds(r)} | "
                         f"{_phases(r.get('phases'))} | {'files' if r['end_state_ok'] else '**differs**'} | "
                         f"<= 1.15x: {_met(ok_b)}; faster than the peer: {_met(ok_p)} |")
            lines.append(f"|  | peer | {_s(peer['wall_s'])} |  | {peer['wall_s'] / r['bound_s']:.2f} | "
                         f"{peer['requests']} | {_kinds(peer)} |  | "
                         f"{'files' if peer['end_state_ok'] else '**differs**'} | "
                         f"peer / reconciler {peer['wall_s'] / r['wall_s']:.2f}x |")
        lines.append("")
    return lines


def _main() -> None:  # pragma: no cover - a manual entry point for one item at chosen sizes
    import argparse

    ap = argparse.ArgumentParser(prog="python -m bench.commands")
    ap.add_argument("item", choices=("files", "plan_cmd", "apply_cmd"))
    ap.add_argument("--sizes", default="", help="comma-separated sizes (files, plan_cmd)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--profile-size", type=int, default=None)
    ap.add_argument("--peer-sizes", default="10,100")
    args = ap.parse_args()
    import tempfile

    work = Path(tempfile.mkdtemp(prefix="reconciler-bench-"))
    try:
        sizes = tuple(int(x) for x in args.sizes.split(",") if x) or (10, 100, 500, 1000)
        if args.item == "files":
            out: dict[str, Any] = {"files": bench_files(work, sizes, runs=args.runs, profile_size=args.profile_size)}
        elif args.item == "plan_cmd":
            peers = tuple(int(x) for x in args.peer_sizes.split(",") if x)
            out = {"plan_cmd": bench_plan_cmd(work, sizes, runs=args.runs, peer_sizes=peers,
                                              profile_size=args.profile_size)}
        else:
            out = {"apply_cmd": bench_apply_cmd(work)}
        missed: list[str] = []
        print("\n".join(render_commands(out, missed)))
        print("\n".join(f"- {m}" for m in missed) or "- none")
        print(json.dumps(out, indent=1, default=str), file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":  # pragma: no cover
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    _main()
