"""Issue 10 acceptance 3: two applies at once on one account, and the per-machine apply lock.

Two applies (two clients in one event loop, real HTTP to one sandbox) each carry out an update plan
made from the same starting account, on the same six schemas, with desired states that differ in
every schema: A relabels to "A …" and adds field ``a-extra``, B relabels to "B …" and adds
``b-extra`` (the API merges a PUT, so two updates that both land leave both extra fields: a mix).
Ten seeds vary the start of B, the sandbox latency and each apply's concurrency.

What is guaranteed, and asserted:

* every apply ends verified, or stopped with the race message on a schema it saw change: before its
  write (in the stage's read of the account the schema's fingerprint is not the plan's: nothing is
  written to it), in its write's answer (the schema shows more than our write did), or in the final
  read (the schema is not what our last write left);
* a schema ends as it started, as A wants it or as B wants it, except when both applies' check-to-
  write windows on it overlapped (from sending the stage's read of the schema list to receiving the
  PUT's answer, which spans the server's read and commit): the API has no lock and no conditional
  write, so a write landing between our read and our write cannot be prevented, only reported. The
  schemas mixed that way are counted and printed; the test asserts that every mixed schema lies in
  such a window and that the apply whose write made the mix reports the race, not that mixes cannot
  happen. The window is the stage's: one read for all the stage's schemas, not one per write.
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

import reconciler.lock
from reconciler.applier import ApplyResult, apply_plan
from reconciler.lock import LockHeld, apply_lock, lock_directory, lock_key
from reconciler.model import Schema
from reconciler.plan import Plan
from reconciler.planner import PlanOptions
from reconciler.planner import plan as make_plan
from reconciler.sandbox import SandboxSettings
from reconciler.sandbox.testing import running_sandbox
from tests.conftest import TOKEN
from tests.support.apply import field as a_field
from tests.support.apply import schema
from tests.support.wire import Wire, client

SLUGS = [f"s{i}" for i in range(6)]
OPTIONS = PlanOptions()
RACE = "changed in the account while applying (another apply or a user?); nothing more was written to it"


def initial() -> dict[str, Schema]:
    return {s: schema(s, [a_field("one"), a_field("two")]) for s in SLUGS}


def desired(who: str) -> dict[str, Schema]:
    return {s: schema(s, [a_field("one", label=f"{who} One"), a_field("two"), a_field(f"{who.lower()}-extra")],
                      label=f"{who} {s}") for s in SLUGS}


LIST_PATH = "/api/3/customObjects/schemas"


def windows(wire: Wire, ids: dict[str, str]) -> dict[str, tuple[float, float]]:
    """slug -> (check sent, PUT answered) for each schema this client wrote (the check-to-write span):
    the check is the last read of the schema list (or of the schema alone) sent before the PUT."""
    by_id = {v: k for k, v in ids.items()}
    out: dict[str, tuple[float, float]] = {}
    for method, path, sent, answered, validate_only in wire.sent:
        sid = path.rsplit("/", 1)[-1]
        slug = by_id.get(sid)
        if slug is None or validate_only:
            continue
        if method == "PUT":
            check_sent = max(t for m, p, t, _a, _v in wire.sent if m == "GET" and p in (path, LIST_PATH)
                             and t <= sent)
            out[slug] = (check_sent, answered)
    return out


def state_of(live: Schema, candidates: dict[str, dict[str, Schema]]) -> str:
    for name, want in candidates.items():
        if not make_plan({live.slug: want[live.slug]}, {live.slug: live}, OPTIONS).has_changes:
            return name
    return "mix"


@dataclass
class Run:
    seed: int
    results: dict[str, ApplyResult]
    end: dict[str, str]  # slug -> "initial" | "A" | "B" | "mix"
    overlap: set[str]  # schemas both applies wrote with overlapping check-to-write windows


def race_once(seed: int) -> Run:
    rng = random.Random(seed)
    latency = rng.choice([0, 1, 2, 4])
    with running_sandbox(SandboxSettings(token=TOKEN, rate_limit=0,
                                         faults=f"latency={latency}ms" if latency else "")) as sb:
        async def scenario() -> Run:
            wires = {"A": Wire("A"), "B": Wire("B")}
            async with client(sb.url, Wire("seed")) as c:
                for s in initial().values():
                    await c.create_schema(s)
                live = {s.slug: s for s in await c.list_schemas()}
            ids = {slug: s.id or "" for slug, s in live.items()}
            plans: dict[str, Plan] = {who: make_plan(desired(who), live, OPTIONS) for who in wires}
            for p in plans.values():
                assert {c.kind for c in p.changes} == {"update-schema", "update-field", "add-field"}

            async def one(who: str, delay: float, concurrency: int) -> ApplyResult:
                await asyncio.sleep(delay)
                async with client(sb.url, wires[who]) as c:
                    return await apply_plan(plans[who], c, desired=desired(who), options=OPTIONS,
                                            concurrency=concurrency)

            got = await asyncio.gather(one("A", 0.0, rng.choice([1, 3, 6])),
                                       one("B", rng.choice([0.0, 0.002, 0.01, 0.04, 0.3]), rng.choice([1, 3, 6])))
            results = dict(zip(wires, got, strict=True))
            async with client(sb.url, Wire("check")) as c:
                after = {s.slug: s for s in await c.list_schemas()}
            end = {slug: state_of(after[slug], {"initial": initial(), "A": desired("A"), "B": desired("B")})
                   for slug in SLUGS}
            wa, wb = windows(wires["A"], ids), windows(wires["B"], ids)
            overlap = {slug for slug in set(wa) & set(wb)
                       if wa[slug][0] < wb[slug][1] and wb[slug][0] < wa[slug][1]}
            # both wrote a schema, one after the other: the later one's check ran after the earlier
            # one's commit, so it must have seen it and written nothing
            for slug in set(wa) & set(wb):
                assert slug in overlap, (seed, slug, wa[slug], wb[slug])
            return Run(seed, results, end, overlap)

        return asyncio.run(scenario())


def test_two_concurrent_applies_never_interleave_undetected() -> None:
    runs = [race_once(seed) for seed in range(10)]
    detected = 0
    for run in runs:
        for who, result in run.results.items():
            context = (run.seed, who, [(r.step.slug, r.status, r.error) for r in result.results], run.end)
            raced = result.raced
            if result.ok:
                assert not raced and not result.failed, context
                continue
            # every apply that did not complete says why: the race, on the schemas it saw changed
            assert raced, context
            detected += 1
            assert all(r.error is not None and r.error.endswith(RACE) for r in raced), context
            assert not result.verified, context
            assert {r.status for r in result.results} <= {"done", "failed", "not started"}, context
            assert all(r.race for r in result.failed), context  # no failure but the race
        for slug, state in run.end.items():
            # a mix inside one schema is possible only where the check -> PUT windows overlapped,
            # and it is reported: an apply that wrote it says the schema changed while applying
            assert state != "mix" or slug in run.overlap, (run.seed, slug, run.end, run.overlap)
            if state == "mix":
                assert any(r.race and r.step.slug == slug for result in run.results.values()
                           for r in result.results), (run.seed, slug, run.end)
    completed = sum(result.ok for run in runs for result in run.results.values())
    assert detected >= 5 and completed >= 1, (detected, completed)  # the seeds make the applies collide
    mixes = sum(state == "mix" for run in runs for state in run.end.values())
    overlaps = sum(len(run.overlap) for run in runs)
    print(f"applies: {completed} complete, {detected} stopped by the race (of 20); schemas written by both "
          f"inside overlapping windows {overlaps}/60, mixed {mixes}/60")


# ---------------------------------------------------------------------------------------------
# The apply lock


def test_a_second_apply_to_the_same_target_is_refused_at_once(tmp_path: Path) -> None:
    url = "https://acme.api-us1.com"
    with apply_lock(url, directory=tmp_path) as held:
        assert held is not None and held.path.parent == tmp_path
        started = time.monotonic()
        with pytest.raises(LockHeld) as caught, apply_lock(url + "/api/3/", directory=tmp_path):
            pass
        assert time.monotonic() - started < 0.5
        text = str(caught.value)
        assert text.startswith(f"another reconciler apply to {url}/api/3/ is running on this machine (pid "
                               f"{os.getpid()}, since ")
        assert len(text.rsplit("since ", 1)[1]) == len("HH:MM:SS)")
        # another account, or another sandbox database, is another lock
        with apply_lock("https://other.api-us1.com", directory=tmp_path) as other:
            assert other is not None
        with apply_lock("http://sandbox.local", tmp_path / "a.sqlite3", directory=tmp_path) as a, \
                apply_lock("http://sandbox.local", tmp_path / "b.sqlite3", directory=tmp_path) as b:
            assert a is not None and b is not None and a.path != b.path
    with apply_lock(url, directory=tmp_path) as again:  # released with the block
        assert again is not None


def test_the_lock_key_names_the_account_and_the_sandbox_database(tmp_path: Path) -> None:
    assert lock_key("https://acme.api-us1.com") == lock_key("https://acme.api-us1.com/api/3/")
    assert lock_key("http://sandbox.local", tmp_path / "x.sqlite3") != lock_key("http://sandbox.local")
    assert lock_key("http://sandbox.local", tmp_path / "x.sqlite3") == lock_key(
        "http://sandbox.local", tmp_path / "." / "x.sqlite3")


def test_the_lock_is_held_against_another_process_and_dies_with_it(tmp_path: Path) -> None:
    code = ("import sys, time\n"
            "from pathlib import Path\n"
            "from reconciler.lock import apply_lock\n"
            f"with apply_lock('https://acme.api-us1.com', directory=Path({str(tmp_path)!r})):\n"
            "    print('held', flush=True)\n"
            "    time.sleep(60)\n")
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                             cwd=Path(__file__).resolve().parent.parent)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "held"
        with pytest.raises(LockHeld, match=rf"\(pid {child.pid}, since \d\d:\d\d:\d\d\)$"), \
                apply_lock("https://acme.api-us1.com", directory=tmp_path):
            pass
    finally:
        child.kill()
        child.wait(10)
    with apply_lock("https://acme.api-us1.com", directory=tmp_path) as held:  # the kernel let it go
        assert held is not None


def test_no_lock_where_none_can_be_taken(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    with apply_lock("https://acme.api-us1.com", directory=not_a_dir) as held:
        assert held is None
    monkeypatch.setattr(reconciler.lock, "fcntl", None)  # what Windows has
    with apply_lock("https://acme.api-us1.com", directory=tmp_path) as held:
        assert held is None


def test_the_lock_directory_is_private_or_not_used(tmp_path: Path) -> None:
    runtime = tmp_path / "run"
    runtime.mkdir()
    made = lock_directory({"XDG_RUNTIME_DIR": str(runtime)})
    assert made == runtime / "reconciler" and (made.stat().st_mode & 0o777) == 0o700
    (runtime / "reconciler").chmod(0o777)  # e.g. made by another user in a shared directory
    assert lock_directory({"XDG_RUNTIME_DIR": str(runtime)}) is None


def test_the_lock_does_not_swallow_errors_of_the_block(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="boom"), apply_lock("https://acme.api-us1.com", directory=tmp_path):
        raise RuntimeError("boom")
    with apply_lock("https://acme.api-us1.com", directory=tmp_path) as held:
        assert held is not None
