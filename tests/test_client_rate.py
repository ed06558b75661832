"""Rate (issue 10 item 13): a shared pause, an adaptive limiter, and an apply that converges against an
account whose budget is shared with other integrations (the sandbox at 1 req/s with 20 % extra 429s).

The sandbox over real HTTP is the witness: its request log says when each request arrived, its
limiter how many it refused. The limiter's own arithmetic is checked with a fake clock.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

import pytest

from reconciler.applier import ApplyResult, apply_plan
from reconciler.client import MIN_RATE, Client, TokenBucket
from reconciler.model import Schema
from reconciler.planner import PlanOptions
from reconciler.planner import plan as make_plan
from reconciler.sandbox import SandboxSettings
from reconciler.sandbox.testing import RunningSandbox, running_sandbox

TOKEN = "tok-RATE-83c1d0e6"
OPTIONS = PlanOptions()
#: The schemas the apply creates: their POSTs run concurrently, which is where a pause must hold.
NEW = ["carrier", "depot", "shop"]
#: Fault seeds of the apply test.
SEEDS = [1, 2, 3, 4]


def schema(slug: str, fields: list[str], label: str | None = None) -> Schema:
    label = label or slug.title()
    return Schema.model_validate({
        "slug": slug, "labels": {"singular": label, "plural": f"{label}s"},
        "fields": [{"id": f, "type": "text", "labels": {"singular": f.title(), "plural": f"{f.title()}s"}}
                   for f in fields],
    })


# ---------------------------------------------------------------------------------------------
# The limiter, on a fake clock


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        self.now += delay


def test_the_rate_halves_once_per_429_event_down_to_the_floor_and_climbs_back() -> None:
    clock = FakeClock()
    bucket = TokenBucket(4.75, 4, clock=clock, sleep=clock.sleep)

    async def times(n: int) -> list[float]:
        start, out = clock.now, []
        for _ in range(n):
            await bucket.acquire()
            out.append(round(clock.now - start, 3))
        return out

    assert asyncio.run(times(5)) == [0, 0, 0, 0, round(1 / 4.75, 3)]  # a burst of 4, then the rate
    sent = clock.now
    assert bucket.slow_down(sent, settle=1.0) and bucket.rate == pytest.approx(2.375)
    # other requests refused in the same burst (sent before the pause ended) change nothing
    assert not bucket.slow_down(sent, settle=1.0) and not bucket.slow_down(sent + 0.5, settle=1.0)
    assert bucket.rate == pytest.approx(2.375) and bucket.burst == 1.0 and bucket.slowdowns == 1
    # during the pause the rate stays down; one token for the first request after it
    clock.now += 1.0
    assert bucket.rate == pytest.approx(2.375)
    first, second = asyncio.run(times(2))
    assert first == 0 and 0.3 < second < 1 / 2.375
    # a second event, after the pause: halved again; many more: never below the floor
    for _ in range(10):
        clock.now += 0.01
        bucket.slow_down(clock.now)
    assert bucket.rate == pytest.approx(MIN_RATE, abs=0.01)
    # it climbs back, a tenth of the configured rate per second, and gets its burst back at the top
    clock.now += 5.0
    assert bucket.rate == pytest.approx(MIN_RATE + 0.475 * 5.0, abs=0.02)
    clock.now += 10.0
    assert bucket.rate == 4.75
    clock.now += 1.0
    assert asyncio.run(times(4)) == [0, 0, 0, 0] and bucket.burst == 4


def test_the_accounts_own_limit_is_the_ceiling() -> None:
    clock = FakeClock()
    bucket = TokenBucket(4.75, 4, clock=clock, sleep=clock.sleep)
    bucket.limit_to(0.95, 0.0)
    assert bucket.rate == 0.95 and bucket.burst == 1.0
    bucket.limit_to(50.0, 49.0)  # never above what the client was configured with
    assert bucket.rate == 4.75 and bucket.max_burst == 4


# ---------------------------------------------------------------------------------------------
# Against the sandbox


@contextlib.contextmanager
def sandboxes(seeds: list[int], **settings: Any) -> Iterator[list[RunningSandbox]]:
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(running_sandbox(SandboxSettings(token=TOKEN, fault_seed=s, **settings)))
               for s in seeds]


def assert_pauses_kept(sb: RunningSandbox) -> None:
    """After each 429 (Retry-After: 1), nothing else of that client reached the server for a second.

    The margins (0.2 s) cover requests that were already on the wire when the 429 came back."""
    log = sorted(sb.traffic.log, key=lambda e: e.started)
    for refused in (e for e in log if e.status == 429):
        end = refused.started + (refused.elapsed or 0.0)
        early = [e for e in log if end + 0.2 < e.started < end + 0.8]
        assert not early, (refused.line(), [e.line() for e in early])


def test_concurrent_requests_on_a_slow_account_do_not_stampede() -> None:
    """8 requests at once, 3 attempts each, at 2 req/s: every refused request used to retry at the same
    instant as the others and one ran out of attempts; now they wait together and then go one by one."""
    with running_sandbox(SandboxSettings(token=TOKEN, rate_limit=2)) as sb:

        client = Client(sb.url, TOKEN, max_retries=2)

        async def go() -> list[Any]:
            async with client as c:
                return list(await asyncio.gather(*(c.request_json("GET", "/customObjects/schemas",
                                                                  params={"limit": "1"}) for _ in range(8))))

        answers = asyncio.run(go())
        assert len(answers) == 8 and all(a["meta"]["total"] == 0 for a in answers)
        assert sb.traffic.count(status=200) == 8
        assert sb.state.limiter.limited <= 3, sb.state.limiter.limited
        assert_pauses_kept(sb)
        # no stampede: at most one attempt more per refusal, and the retry waits are the shared pauses,
        # not a backoff per request
        assert client.stats.count() <= 8 + sb.state.limiter.limited
        assert client.stats.total_sleep() < 4.0, client.stats.sleeps


async def apply_on(sb: RunningSandbox, seed: int) -> tuple[ApplyResult, Client]:
    """Seed one schema (faults and limit off), then apply a small plan with both on."""
    limit = sb.settings.rate_limit
    sb.settings.rate_limit = 0
    sb.state.set_faults(None)
    async with Client(sb.url, TOKEN, rate=None) as c:
        await c.create_schema(schema("order", ["number", "note"]))
    sb.settings.rate_limit = limit
    sb.state.limiter.reset()
    sb.state.set_faults("429=0.2", seed)
    sb.traffic.clear()
    desired = {s.slug: s for s in [schema("order", ["number", "note", "channel"], label="Purchase"),
                                    *(schema(slug, ["name"]) for slug in NEW)]}
    client = Client(sb.url, TOKEN)  # the default rate: 5 req/s
    async with client:
        live = {s.slug: s for s in await client.list_schemas()}
        the_plan = make_plan(desired, live, OPTIONS)
        assert the_plan.has_changes
        return await apply_plan(the_plan, client, desired=desired, options=OPTIONS), client


def test_apply_converges_on_an_account_that_shares_its_budget() -> None:
    """The sandbox at 1 req/s with 20 % more 429s (other integrations spending the budget); the client at
    its default 5 req/s. The seeds run side by side, each against its own sandbox, to keep the wall time
    near one run's (about 12 s: ~10 requests at 1 req/s, and a 1 s pause for each 429)."""
    seeds = SEEDS
    with sandboxes(seeds, rate_limit=1) as sbs:

        async def all_seeds() -> list[tuple[ApplyResult, Client]]:
            return list(await asyncio.gather(*(apply_on(sb, seed) for sb, seed in zip(sbs, seeds, strict=True))))

        results = asyncio.run(all_seeds())
        for seed, sb, (result, client) in zip(seeds, sbs, results, strict=True):
            assert result.ok and result.verified, (seed, [(r.step.label, r.status, r.error) for r in result.results])
            assert sorted(d["slug"] for d in sb.store.list_schemas()) == sorted([*NEW, "order"])
            log = sb.traffic.log
            assert any(e.fault == "429" for e in log), seed  # the faults were on
            assert client.limiter is not None and client.limiter.slowdowns >= 1
            assert_pauses_kept(sb)
            # the waits were the account's pauses, one per refusal, not a backoff that grew
            assert client.stats.total_sleep() <= 1.5 * max(1, sum(e.fault == "429" or e.status == 429 for e in log))
