"""Item 2 in a fresh process (so memory figures are its own): ``python -m bench.planner_child S F RUNS [--profile]``.

Prints one JSON object: plan wall and CPU time (medians of RUNS), the time the plan-file digests take
on top (``plan()`` defers them: a saved plan reads them), tracemalloc peak of one plan, the process's
RSS before planning and its max RSS after, a check of the digests' direct encoders against the
reference on a sample, and with ``--profile`` the top functions of one plan with its digests.
"""

from __future__ import annotations

import cProfile
import gc
import io
import json
import pstats
import resource
import statistics
import sys
import time
import tracemalloc
from typing import Any

from bench.gen import account
from reconciler.planner import plan


def _rss_kb() -> int:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def measure(n_schemas: int, n_fields: int, runs: int = 3, profile: bool = False) -> dict[str, Any]:
    """Generate an account, then time ``plan`` (``runs`` times), trace its memory once, optionally profile."""
    t0 = time.perf_counter()
    desired, live, differing = account(n_schemas, n_fields)
    gen_s = time.perf_counter() - t0
    gc.collect()
    rss_before = _rss_kb()
    walls, cpus, hash_walls = [], [], []
    result = None
    for _ in range(runs):
        w, c = time.perf_counter(), time.process_time()
        result = plan(desired, live)
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
        # what a saved plan (``plan -out``) needs on top: the digests, deferred by plan()
        h = time.perf_counter()
        _ = result.desired_digest, dict(result.live_fingerprints.items())
        hash_walls.append(time.perf_counter() - h)
        del result
        result = None
    max_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    result = plan(desired, live)
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    out: dict[str, Any] = {
        "schemas": n_schemas, "fields": n_fields, "differing_fields": differing,
        "changes": len(result.changes), "gen_s": gen_s,
        "wall_s": statistics.median(walls), "cpu_s": statistics.median(cpus), "runs": runs,
        "cpu_min_s": min(cpus), "hashes_s": statistics.median(hash_walls),
        "with_hashes_min_s": min(a + b for a, b in zip(walls, hash_walls, strict=True)),
        "wall_with_hashes_s": statistics.median([a + b for a, b in zip(walls, hash_walls, strict=True)]),
        "tracemalloc_peak_mb": peak / 2**20, "rss_before_mb": rss_before / 1024, "max_rss_mb": max_rss / 1024,
    }
    if profile:
        prof = cProfile.Profile()
        prof.enable()
        p = plan(desired, live)
        _ = p.desired_digest, dict(p.live_fingerprints.items())
        prof.disable()
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(12)
        lines = [ln for ln in buf.getvalue().splitlines() if ln.strip()]
        start = next((i for i, ln in enumerate(lines) if ln.lstrip().startswith("ncalls")), 0)
        out["profile"] = "\n".join(ln.replace("/work/main/", "") for ln in lines[start:start + 13])
    return out


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    print(json.dumps(measure(int(args[0]), int(args[1]), int(args[2]) if len(args) > 2 else 3,
                             profile="--profile" in sys.argv)))
