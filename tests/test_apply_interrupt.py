"""Issue 10 item 4 / issue 11 item 8, library level: ``ApplyControl.stop`` (the first interrupt) and
``ApplyControl.abort`` (the second) set from a task while steps are in flight, against a sandbox
served over real HTTP with 300 ms of latency on every request.

The client's requests are recorded by a real HTTP transport that notes when each one left, so "no
write started after stop" is checked on the wire, not on the applier's own word.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from reconciler.applier import UNKNOWN, ApplyControl, ApplyResult, apply_plan
from reconciler.model import Schema
from reconciler.planner import PlanOptions
from reconciler.planner import plan as make_plan
from reconciler.sandbox import SandboxSettings
from reconciler.sandbox.testing import running_sandbox
from tests.conftest import TOKEN
from tests.support.apply import field, schema
from tests.support.wire import Wire, client

OPTIONS = PlanOptions(prune=True)
WRITES = ("PUT", "POST", "DELETE")


def live_docs() -> list[Schema]:
    return [schema("keep", [field("a")])] + [schema(f"old-{i}", [field("x")]) for i in range(6)]


def desired_docs() -> dict[str, Schema]:
    return {"keep": schema("keep", [field("a")])}  # the six old-* schemas are pruned: 6 DELETEs


def statuses(result: ApplyResult) -> list[tuple[str, str]]:
    return [(r.step.slug, r.status) for r in result.results]


def writes_sent(wire: Wire) -> list[tuple[str, str, float]]:
    """The writes that left the client (answered or not), with when they left."""
    return [(m, p, t) for m, p, t, validate_only in wire.started if m in WRITES and not validate_only]


def writes_out(wire: Wire) -> int:
    """Writes sent and not answered yet."""
    answered = sum(1 for m, _p, _t, _a, validate_only in wire.sent if m in WRITES and not validate_only)
    return len(writes_sent(wire)) - answered


async def _until(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out waiting"
        await asyncio.sleep(0.002)


def with_sandbox(body: Callable[[Any, Wire], Awaitable[Any]]) -> Any:
    """Seed the account without latency, then run ``body(sandbox, wire)`` with 300 ms on every request."""
    with running_sandbox(SandboxSettings(token=TOKEN, rate_limit=0)) as sb:
        async def seed() -> None:
            async with client(sb.url, Wire("seed")) as c:
                for s in live_docs():
                    await c.create_schema(s)

        asyncio.run(seed())
        sb.state.set_faults("latency=300ms")
        try:
            return asyncio.run(body(sb, Wire("apply")))
        finally:
            sb.state.set_faults(None)


async def _plan(url: str) -> Any:
    async with client(url, Wire("plan")) as c:
        return make_plan(desired_docs(), {s.slug: s for s in await c.list_schemas()}, OPTIONS)


async def _rerun(url: str) -> ApplyResult:
    """What the user does next: plan again and apply."""
    async with client(url, Wire("again")) as c:
        the_plan = make_plan(desired_docs(), {s.slug: s for s in await c.list_schemas()}, OPTIONS)
        return await apply_plan(the_plan, c, desired=desired_docs(), options=OPTIONS, allow_data_loss=True)


def test_stop_finishes_the_writes_in_flight_and_starts_nothing_new() -> None:
    async def body(sb: Any, wire: Wire) -> tuple[ApplyResult, float, int, Wire, ApplyResult]:
        the_plan = await _plan(sb.url)
        control = ApplyControl()
        seen: dict[str, Any] = {}

        async def first_interrupt() -> None:
            # a DELETE on the wire, after one already done: then the user presses Ctrl-C
            await _until(lambda: len(writes_sent(wire)) >= 2 and writes_out(wire) >= 1)
            seen["in_flight"] = control.in_flight
            seen["at"] = time.monotonic()
            control.stop.set()

        async with client(sb.url, wire) as c:
            presser = asyncio.create_task(first_interrupt())
            result = await apply_plan(the_plan, c, desired=desired_docs(), options=OPTIONS, allow_data_loss=True,
                                      control=control, concurrency=3)
            await presser
        return result, seen["at"], seen["in_flight"], wire, await _rerun(sb.url)

    result, stopped_at, in_flight, wire, again = with_sandbox(body)
    sent = writes_sent(wire)
    assert all(t < stopped_at for _m, _p, t in sent), "a write left after stop"
    done = [r for r in result.results if r.status == "done"]
    assert len(done) == len(sent) >= 2  # every write that was out finished, and counts as done
    assert {r.status for r in result.results} == {"done", "not started"}, statuses(result)
    assert in_flight >= 1  # the live count the CLI prints: the DELETE out (and a check's GET)
    assert result.interrupted and not result.aborted and not result.ok and not result.verified
    assert result.stopped and result.remaining is None
    assert again.ok and len(again.results) == 6 - len(done), statuses(again)


def test_stop_after_every_write_is_still_not_complete() -> None:
    """An interrupt after the last write: the writes are done, the run is not verified (never
    "Apply complete!" after an interrupt), and says why."""
    async def body(sb: Any, wire: Wire) -> ApplyResult:
        the_plan = await _plan(sb.url)
        control = ApplyControl()
        steps = len(the_plan.changes)

        def after_each(r: Any) -> None:
            after_each.done += 1  # type: ignore[attr-defined]
            if after_each.done == steps:  # type: ignore[attr-defined]
                control.stop.set()

        after_each.done = 0  # type: ignore[attr-defined]
        async with client(sb.url, wire) as c:
            return await apply_plan(the_plan, c, desired=desired_docs(), options=OPTIONS, allow_data_loss=True,
                                    control=control, on_step=after_each)

    result = with_sandbox(body)
    assert {r.status for r in result.results} == {"done"}
    assert result.interrupted and not result.verified and not result.ok and result.stopped
    assert result.verify_error == "the run was interrupted before the account was read back"


def test_abort_cancels_the_requests_in_flight_at_once() -> None:
    async def body(sb: Any, wire: Wire) -> tuple[ApplyResult, dict[str, float], float, ApplyResult]:
        the_plan = await _plan(sb.url)
        control = ApplyControl()
        times: dict[str, float] = {}

        async def two_interrupts() -> None:
            await _until(lambda: len(writes_sent(wire)) >= 2 and writes_out(wire) >= 1)
            control.stop.set()
            await asyncio.sleep(0.05)  # the second Ctrl-C, while a DELETE still waits for its answer
            times["abort"] = time.monotonic()
            times["out"] = writes_out(wire)
            control.abort.set()

        async with client(sb.url, wire) as c:
            presser = asyncio.create_task(two_interrupts())
            result = await apply_plan(the_plan, c, desired=desired_docs(), options=OPTIONS, allow_data_loss=True,
                                      control=control, concurrency=3)
            returned = time.monotonic()
            await presser
        await asyncio.sleep(0.5)  # the server still carries out what it received; then the user re-runs
        return result, times, returned, await _rerun(sb.url)

    result, times, returned, again = with_sandbox(body)
    assert returned - times["abort"] < 0.5, f"abort took {returned - times['abort']:.2f} s"
    unknown = result.unknown
    # exactly the writes without an answer are unknown
    assert len(unknown) == times["out"] >= 1 and all(r.error == UNKNOWN for r in unknown), statuses(result)
    assert {r.status for r in result.results} <= {"unknown", "not started", "done"}, statuses(result)
    assert result.interrupted and result.aborted and not result.ok and not result.verified
    assert again.ok, statuses(again)
    # the aborted DELETEs reached the server: the re-run deletes only what is left
    assert len(again.results) == 6 - len(unknown) - sum(r.status == "done" for r in result.results)


def test_abort_before_any_write_leaves_everything_not_started() -> None:
    """Both interrupts during the race check's GETs: no write was sent, so none is unknown."""
    async def body(sb: Any, wire: Wire) -> tuple[ApplyResult, ApplyResult, Wire]:
        the_plan = await _plan(sb.url)
        control = ApplyControl()

        async def two_interrupts() -> None:
            await _until(lambda: control.in_flight > 0)
            await asyncio.sleep(0.05)  # the race check's GETs are out (300 ms each)
            control.stop.set()
            control.abort.set()

        async with client(sb.url, wire) as c:
            presser = asyncio.create_task(two_interrupts())
            result = await apply_plan(the_plan, c, desired=desired_docs(), options=OPTIONS, allow_data_loss=True,
                                      control=control, concurrency=3)
            await presser
        return result, await _rerun(sb.url), wire

    result, again, wire = with_sandbox(body)
    assert {r.status for r in result.results} == {"not started"}, statuses(result)
    assert writes_sent(wire) == [] and [m for m, *_ in wire.started] == ["GET"]  # one check, then the abort
    assert result.interrupted and result.aborted and not result.ok
    assert again.ok and len(again.results) == 6
