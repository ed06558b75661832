"""The API client against the sandbox over real HTTP (uvicorn on a loopback port), and in process.

No mocks of our own client: every request goes through httpx to the sandbox, whose request log and
limiter counters are the independent witness.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
import traceback
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from reconciler.client import Client
from reconciler.config import resolve_target
from reconciler.errors import (
    ApiError,
    AuthenticationFailed,
    NotFound,
    RateLimited,
    ServerError,
    TransportFailure,
    ValidationFailed,
)
from reconciler.model import Schema
from reconciler.sandbox import SandboxSettings, create_app
from reconciler.sandbox.testing import RunningSandbox, running_sandbox

TOKEN = "tok-SECRET-123"
N_SCHEMAS = 250


def make_schema(slug: str, **extra: Any) -> Schema:
    return Schema.model_validate({
        "slug": slug,
        "labels": {"singular": f"{slug} item", "plural": f"{slug} items"},
        "fields": [
            {"id": "name", "type": "text", "labels": {"singular": "Name", "plural": "Names"}},
            {"id": "link", "type": "text", "labels": {"singular": "Link", "plural": "Links"}},
        ],
        **extra,
    })


class FakeSleep:
    """Records the delays the client asks for and returns at once."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.calls.append(delay)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def reset(sb: RunningSandbox, *, rate_limit: float = 0, faults: str | None = None, seed: int | None = None) -> None:
    sb.settings.rate_limit = rate_limit
    sb.state.limiter.reset()
    sb.state.set_faults(faults, seed)
    sb.traffic.clear()


@pytest.fixture(scope="module")
def sb250() -> Iterator[RunningSandbox]:
    """One sandbox holding 250 schemas, shared by the listing tests: the first is created through the
    API, the others are copies of its stored document (new id, slug and labels) put in the store."""
    with running_sandbox(SandboxSettings(token=TOKEN, rate_limit=0)) as sb:

        async def seed() -> None:
            async with Client(sb.url, TOKEN, rate=None) as c:
                await c.create_schema(make_schema("obj-000"))

        run(seed())
        [template] = sb.store.list_schemas()
        for i in range(1, N_SCHEMAS):
            doc = copy.deepcopy(template)
            doc.update(id=str(uuid.uuid4()), slug=f"obj-{i:03d}",
                       labels={"singular": f"obj-{i:03d} item", "plural": f"obj-{i:03d} items"})
            sb.store.put_schema(doc)
        yield sb


@pytest.fixture
def sb() -> Iterator[RunningSandbox]:
    """A fresh, empty sandbox (rate limit off unless a test turns it on)."""
    with running_sandbox(SandboxSettings(token=TOKEN, rate_limit=0)) as sandbox:
        yield sandbox


# -- 1. listing cost --------------------------------------------------------------------------


def test_listing_250_schemas_costs_exactly_3_requests(sb250: RunningSandbox) -> None:
    reset(sb250, rate_limit=5)

    async def go() -> tuple[list[Schema], Client]:
        async with Client(sb250.url, TOKEN, sleep=FakeSleep()) as c:
            return await c.list_schemas(), c

    schemas, client = run(go())
    assert len(schemas) == N_SCHEMAS
    assert len({s.slug for s in schemas}) == N_SCHEMAS
    assert client.stats.count() == 3 and client.stats.retries() == 0
    assert sb250.traffic.total == 3
    queries = sorted(e.query for e in sb250.traffic.log)
    assert all("limit=100" in q and "showFields=all" in q for q in queries)
    assert {q.split("offset=")[1].split("&")[0] for q in queries} == {"0", "100", "200"}


def test_remaining_pages_are_fetched_concurrently(sb250: RunningSandbox) -> None:
    """With 1 s of latency per request, 3 sequential pages take >= 3 s; 1 + 2 in parallel ~2 s.

    (A wide margin: the machine may be loaded by other tests.)"""
    reset(sb250, faults="latency=1000ms")

    async def go() -> float:
        async with Client(sb250.url, TOKEN, rate=None) as c:
            started = time.monotonic()
            assert len(await c.list_schemas()) == N_SCHEMAS
            return time.monotonic() - started

    assert 2.0 <= run(go()) < 2.7


# -- 2. faults ------------------------------------------------------------------------------


FAULTS = "429=0.15,503=0.05,drop=0.1"


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_listing_survives_faults_without_exceeding_the_rate_limit(sb250: RunningSandbox, seed: int) -> None:
    reset(sb250, rate_limit=5, faults=FAULTS, seed=seed)
    sleep = FakeSleep()

    async def go() -> Client:
        async with Client(sb250.url, TOKEN, sleep=sleep) as c:
            for _ in range(2):
                schemas = await c.list_schemas()
                assert len(schemas) == N_SCHEMAS
                assert len({s.id for s in schemas}) == N_SCHEMAS
            return c

    client = run(go())
    log = sb250.traffic.log
    injected = [e for e in log if e.fault is not None]
    assert injected, "the seed should inject at least one fault"
    # every 429 the sandbox sent was an injected one: the client's limiter kept under 5 req/s
    assert sb250.state.limiter.limited == 0
    assert all(e.fault == "429" for e in log if e.status == 429)
    # each injected 429 carries Retry-After: 1, and the client slept exactly that
    n_429 = sum(1 for e in injected if e.fault == "429")
    assert sleep.calls.count(1.0) >= n_429
    assert client.stats.retries() == len(injected)
    assert client.stats.count() == len(log)


def test_retry_after_is_honoured(sb250: RunningSandbox) -> None:
    reset(sb250, faults="429=1.0", seed=7)
    sleep = FakeSleep()

    async def go() -> Client:
        async with Client(sb250.url, TOKEN, rate=None, sleep=sleep, max_retries=3) as c:
            with pytest.raises(RateLimited) as info:
                await c.get_schema("whatever")
            assert "429 rate limited, gave up after 4 attempts" in str(info.value)
            return c

    client = run(go())
    assert sleep.calls == [1.0, 1.0, 1.0]
    assert client.stats.total_sleep() == 3.0
    assert [r.attempt for r in client.stats.records] == [1, 2, 3, 4]


def test_server_errors_exhaust_into_server_error(sb250: RunningSandbox) -> None:
    reset(sb250, faults="502=1.0", seed=1)
    sleep = FakeSleep()

    async def go() -> None:
        async with Client(sb250.url, TOKEN, rate=None, sleep=sleep, max_retries=2, backoff_base=0.5) as c:
            with pytest.raises(ServerError, match=r"^GET /customObjects/schemas: 502 .*after 3 attempts"):
                await c.list_schemas()

    run(go())
    assert len(sleep.calls) == 2
    assert all(0 <= d <= 0.5 * 2**i for i, d in enumerate(sleep.calls))  # full jitter, capped exponential


def test_limiter_is_shared_by_concurrent_requests(sb250: RunningSandbox) -> None:
    reset(sb250, rate_limit=5)
    schema_id = sb250.store.list_schemas()[0]["id"]

    async def go() -> float:
        async with Client(sb250.url, TOKEN, sleep=FakeSleep()) as c:
            counts = await asyncio.gather(*(c.count_records(schema_id) for _ in range(10)))
            assert counts == [0] * 10
            assert c.limiter is not None
            return c.limiter.waited

    # the limiter's own account of its waits: a burst of 4, then one token per 1/4.75 s for the other 6
    # (less the few ms the requests themselves took)
    assert run(go()) >= 0.9 * (10 - 4) / (5 * 0.95)
    assert sb250.state.limiter.limited == 0
    assert sb250.traffic.count(status=200) == 10


# -- 3. create with a lost response -------------------------------------------------------------


def test_create_with_lost_response_creates_exactly_one(sb: RunningSandbox) -> None:
    reset(sb, faults="lost=1.0", seed=3)  # every write commits, then the connection is closed

    async def go() -> Schema:
        async with Client(sb.url, TOKEN, rate=None, sleep=FakeSleep()) as c:
            return await c.create_schema(make_schema("orders"))

    created = run(go())
    assert created.slug == "orders" and created.id
    slugs = [d["slug"] for d in sb.store.list_schemas()]
    assert slugs.count("orders") == 1
    assert sum(1 for e in sb.traffic.log if e.method == "POST") == 1
    assert [e.fault for e in sb.traffic.log if e.method == "POST"] == ["lost"]


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_many_creates_under_lost_and_dropped_connections(sb: RunningSandbox, seed: int) -> None:
    reset(sb, faults="lost=0.3,drop=0.2,429=0.1,503=0.1", seed=seed)

    async def go() -> list[Schema]:
        async with Client(sb.url, TOKEN, rate=None, sleep=FakeSleep(), max_retries=12) as c:
            return [await c.create_schema(make_schema(f"s-{i}")) for i in range(8)]

    created = run(go())
    assert [s.slug for s in created] == [f"s-{i}" for i in range(8)]
    slugs = sorted(d["slug"] for d in sb.store.list_schemas())
    assert slugs == sorted(f"s-{i}" for i in range(8))


def test_create_lost_in_process_too(tmp_path: Any) -> None:
    """In process (ASGITransport) the sandbox raises ConnectionDropped instead of closing a socket."""
    settings = SandboxSettings(token=TOKEN, rate_limit=0, faults="lost=1.0", fault_seed=1)
    app = create_app(settings)

    async def go() -> Schema:
        async with Client("http://sandbox.local", TOKEN, rate=None, sleep=FakeSleep(),
                          transport=httpx.ASGITransport(app=app)) as c:
            return await c.create_schema(make_schema("orders"))

    assert run(go()).slug == "orders"
    assert [d["slug"] for d in app.state.sandbox.store.list_schemas()] == ["orders"]


def test_post_429_is_retried_blindly(sb: RunningSandbox) -> None:
    reset(sb, faults="429=0.6", seed=5)

    async def go() -> None:
        async with Client(sb.url, TOKEN, rate=None, sleep=FakeSleep(), max_retries=20) as c:
            await c.create_schema(make_schema("orders"))

    run(go())
    posts = [e for e in sb.traffic.log if e.method == "POST"]
    assert posts[-1].status == 201 and all(e.status == 429 for e in posts[:-1])
    assert [d["slug"] for d in sb.store.list_schemas()] == ["orders"]


# -- writes --------------------------------------------------------------------------------------


def test_update_validate_only_delete_field_delete_schema(sb: RunningSandbox) -> None:
    async def go() -> None:
        async with Client(sb.url, TOKEN, rate=None, sleep=FakeSleep()) as c:
            created = await c.create_schema(make_schema("orders"))
            assert created.id
            body = {"description": "Orders from the shop"}
            preview = await c.update_schema(created.id, body, validate_only=True)
            assert preview.description == "Orders from the shop"
            assert (await c.get_schema(created.id)).description is None  # not saved
            updated = await c.update_schema(created.id, body)
            assert updated.description == "Orders from the shop"
            after = await c.delete_field(created.id, "link")
            assert after.field("link") is None
            assert any(f.id == "link" and f.deleted for f in after.fields)
            assert (await c.find_schema_by_slug("orders")) is not None
            await c.delete_schema(created.id)
            assert await c.find_schema_by_slug("orders") is None
            with pytest.raises(NotFound):
                await c.delete_schema(created.id)  # a first-attempt 404 is an error

    run(go())
    puts = [e for e in sb.traffic.log if e.method == "PUT"]
    assert len(puts) == 2


def test_delete_gone_after_a_retry_counts_as_done(sb: RunningSandbox) -> None:
    async def make() -> str:
        async with Client(sb.url, TOKEN, rate=None) as c:
            created = await c.create_schema(make_schema("orders"))
            assert created.id
            return created.id

    schema_id = run(make())
    reset(sb, faults="lost=1.0", seed=1)  # DELETE commits, answer lost; the retry then gets 404

    async def heal(delay: float) -> None:  # the fault is over by the time the client retries
        sb.state.set_faults(None)

    async def go() -> None:
        async with Client(sb.url, TOKEN, rate=None, sleep=heal) as c:
            await c.delete_schema(schema_id)

    run(go())
    assert sb.store.list_schemas() == []
    assert [(e.status, e.fault) for e in sb.traffic.log if e.method == "DELETE"] == [(None, "lost"), (404, None)]


def test_count_records_with_filters(sb: RunningSandbox) -> None:
    async def go() -> tuple[int, int, int]:
        async with Client(sb.url, TOKEN, rate=None) as c:
            created = await c.create_schema(make_schema("orders"))
            assert created.id
            for i in range(5):
                fields = [{"id": "name", "value": f"n{i}"}] + ([{"id": "link", "value": "x"}] if i < 2 else [])
                await c.request_json("POST", f"/customObjects/records/{created.id}",
                                     json={"record": {"externalId": f"e{i}", "fields": fields}})
            return (await c.count_records(created.id),
                    await c.count_records(created.id, {"fields.link[not_blank]": "true"}),
                    await c.count_records(created.id, {"fields.name": "n3"}))

    assert run(go()) == (5, 2, 1)
    queries = [e.query for e in sb.traffic.log if e.method == "GET"]
    assert any("filters%5Bfields.link%5D%5Bnot_blank%5D=true" in q for q in queries)
    assert all("limit=1" in q for q in queries)


# -- 4. errors from the sandbox ------------------------------------------------------------------


def test_real_422_404_403_400(sb: RunningSandbox) -> None:
    async def go() -> None:
        async with Client(sb.url, TOKEN, rate=None) as c:
            await c.create_schema(make_schema("orders"))
            with pytest.raises(ValidationFailed) as v:
                await c.create_schema(make_schema("orders"))
            assert v.value.status == 422
            assert any(e.pointer == "/data/attributes/schema/slug" for e in v.value.errors)
            assert str(v.value).startswith("POST /customObjects/schemas: 422 ")
            assert "Schema slug must be unique" in str(v.value) and "\n" not in str(v.value)

            with pytest.raises(NotFound) as n:
                await c.get_schema("00000000-0000-0000-0000-000000000000")
            assert str(n.value) == "GET /customObjects/schemas/00000000-0000-0000-0000-000000000000: 404 Not Found"

            with pytest.raises(ApiError) as b:
                await c.count_records((await c.list_schemas())[0].id or "", {"fields.name[nope]": "1"})
            assert b.value.status == 400 and "Bad Request" in str(b.value)

        async with Client(sb.url, "wrong-token", rate=None) as bad:
            with pytest.raises(AuthenticationFailed) as a:
                await bad.list_schemas()
            assert a.value.status == 403
            assert f"authentication failed (Forbidden): the account at {sb.url} refused the API token" in str(a.value)
            assert "(Settings > Developer)" in str(a.value) and "wrong-token" not in str(a.value)

    run(go())


# -- 5. token hygiene -----------------------------------------------------------------------------


def _texts(exc: BaseException) -> list[str]:
    out = [str(exc), repr(exc), "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))]
    for part in (exc.__cause__, exc.__context__):
        if part is not None:
            out += [str(part), repr(part)]
    return out


def test_token_never_leaks(caplog: pytest.LogCaptureFixture, tmp_path: Any) -> None:
    caplog.set_level(logging.DEBUG)
    other = "sandbox-only-token"
    with running_sandbox(SandboxSettings(token=other, rate_limit=0)) as sandbox:

        async def go() -> tuple[list[BaseException], list[Client]]:
            errors: list[BaseException] = []
            clients: list[Client] = []
            async with Client(sandbox.url, TOKEN, rate=None, sleep=FakeSleep()) as c:  # refused: 403
                clients.append(c)
                try:
                    await c.list_schemas()
                except AuthenticationFailed as e:
                    errors.append(e)
            sandbox.settings.token = TOKEN
            async with Client(sandbox.url, SecretStr(TOKEN), rate=None, sleep=FakeSleep()) as c:  # 422
                clients.append(c)
                await c.create_schema(make_schema("orders"))
                try:
                    await c.create_schema(make_schema("orders"))
                except ValidationFailed as e:
                    errors.append(e)
            async with Client("http://127.0.0.1:9", TOKEN, rate=None, sleep=FakeSleep(), max_retries=1) as c:
                clients.append(c)
                try:
                    await c.list_schemas()
                except TransportFailure as e:
                    errors.append(e)
            return errors, clients

        errors, clients = run(go())

    assert [type(e) for e in errors] == [AuthenticationFailed, ValidationFailed, TransportFailure]
    assert "transport failure: ConnectError" in str(errors[2])
    for exc in errors:
        for text in _texts(exc):
            assert TOKEN not in text
    for c in clients:
        assert TOKEN not in repr(c) and TOKEN not in str(c)
        assert TOKEN not in repr(c.stats) and TOKEN not in str(c.stats.records)
    target = resolve_target(url="https://acme.api-us1.com", token=TOKEN, env=None, project=None,
                            environ={}, workdir=tmp_path)
    assert TOKEN not in repr(target) and TOKEN not in str(target) and TOKEN not in target.describe()
    assert TOKEN not in caplog.text


def test_a_host_that_never_answers_fails_fast() -> None:
    """A wrong URL (connection refused from the start) gives up after 3 attempts, not max_retries."""
    slept: list[float] = []

    async def fake_sleep(delay: float) -> None:
        slept.append(delay)

    async def go() -> None:
        async with Client("http://127.0.0.1:9", "tok", rate=None, sleep=fake_sleep) as c:
            with pytest.raises(TransportFailure) as info:
                await c.list_schemas()
            assert info.value.attempts == 3
            assert len(c.stats.records) == 3

    run(go())
    assert len(slept) == 2
