"""The client against servers that misbehave (issue 11 "pathological servers", "token", "loopback").

A fake API of our own, a raw asyncio HTTP/1.1 server on a free loopback port in a background thread,
answers each request with what the test's handler returns: crafted bytes, or nothing at all (a server
that accepts the connection and never answers). Each case checks a bounded wall time, the line told
to ``on_wait`` where there is a wait, a clean one-line error, and that no 6-character piece of the
token shows anywhere in it.
"""

from __future__ import annotations

import asyncio
import random
import re
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from pydantic import SecretStr

from reconciler.client import Client, normalize_base_url, parse_retry_after
from reconciler.errors import (
    ApiErrorItem,
    AuthenticationFailed,
    ConfigError,
    DeadlineExceeded,
    NotFound,
    RateLimited,
    ReconcilerError,
    ServerError,
    TransportFailure,
    UnexpectedResponse,
    ValidationFailed,
    parse_error_body,
)
from tests.support.fakeapi import (
    SCHEMAS,
    TOKEN,
    FakeApi,
    Handler,
    Request,
    assert_clean,
    list_page,
    response,
    run,
    schema_doc,
    token_pieces,
)

# ---------------------------------------------------------------------------------------------
# The fake server


@pytest.fixture
def fake() -> Iterator[Callable[[Handler], FakeApi]]:
    servers: list[FakeApi] = []

    def start(handler: Handler) -> FakeApi:
        api = FakeApi(handler).__enter__()
        servers.append(api)
        return api

    yield start
    for api in servers:
        api.__exit__()


# ---------------------------------------------------------------------------------------------
# Helpers


# ---------------------------------------------------------------------------------------------
# Retry-After


def test_retry_after_above_the_cap_gives_up_at_once_after_a_told_wait(fake: Callable[[Handler], FakeApi]) -> None:
    """A Retry-After under the cap is waited for and told to on_wait; 99999 s is refused at once."""
    answers = iter([
        response(429, {"message": "Too Many Requests"}, headers={"Retry-After": "2.5"}),
        response(429, {"message": "Too Many Requests"}, headers={"Retry-After": "99999"}),
    ])
    api = fake(lambda r: next(answers))
    told: list[str] = []

    async def go() -> None:
        async with Client(api.url, TOKEN, rate=None, on_wait=told.append) as c:
            await c.list_schemas()

    started = time.monotonic()
    with pytest.raises(RateLimited) as info:
        run(go())
    elapsed = time.monotonic() - started
    assert 2.4 <= elapsed < 4.0, elapsed  # the 2.5 s wait, then no wait at all
    line = assert_clean(info.value)
    assert line == ("GET /customObjects/schemas: 429 rate limited: the account asked to wait 99999 s (about 28 h), "
                    "more than the 120 s cap on Retry-After; gave up after 2 attempts (Too Many Requests)")
    assert len(told) == 1 and re.fullmatch(r"account asked to wait 2\.5 s; retrying at \d\d:\d\d:\d\d", told[0]), told
    assert len(api.requests) == 2


def test_retry_after_cap_is_a_constructor_argument(fake: Callable[[Handler], FakeApi]) -> None:
    api = fake(lambda r: response(429, b"", headers={"Retry-After": "30"}))

    async def go() -> None:
        async with Client(api.url, TOKEN, rate=None, retry_after_cap=10) as c:
            await c.get_schema("x")

    started = time.monotonic()
    with pytest.raises(RateLimited, match=r"asked to wait 30 s, more than the 10 s cap on Retry-After; gave up "
                                          r"after 1 attempt"):
        run(go())
    assert time.monotonic() - started < 1.0
    assert len(api.requests) == 1


def test_a_wait_past_the_deadline_is_refused_before_it_starts(fake: Callable[[Handler], FakeApi]) -> None:
    api = fake(lambda r: response(429, b"{}", headers={"Retry-After": "30"}))
    told: list[str] = []

    async def go() -> None:
        async with Client(api.url, TOKEN, rate=None, on_wait=told.append, deadline=time.monotonic() + 5,
                          deadline_label="the 5 s --timeout") as c:
            await c.list_schemas()

    started = time.monotonic()
    with pytest.raises(DeadlineExceeded) as info:
        run(go())
    assert time.monotonic() - started < 1.0
    assert assert_clean(info.value) == ("gave up: waiting 30 s to retry GET /customObjects/schemas would pass "
                                        "the 5 s --timeout")
    assert told == [] and len(api.requests) == 1


def test_every_request_waits_out_one_shared_pause_and_it_is_told_once(fake: Callable[[Handler], FakeApi]) -> None:
    """The first answer asks for 2.5 s; the other requests of the client, sent after it, wait too."""
    lock = threading.Lock()
    first: list[float] = []

    def handler(r: Request) -> bytes:
        with lock:
            if not first:
                first.append(time.monotonic())
                return response(429, b"{}", headers={"Retry-After": "2.5"})
        return response(200, {"meta": {"total": 0}, "records": []})

    api = fake(handler)
    told: list[str] = []

    async def go() -> list[int]:
        async with Client(api.url, TOKEN, rate=None, on_wait=told.append) as c:
            one = asyncio.create_task(c.count_records("a"))
            await asyncio.sleep(0.3)  # the 429 is in: these start during the pause
            rest = [c.count_records(x) for x in "bcd"]
            return [await one, *await asyncio.gather(*rest)]

    assert run(go()) == [0, 0, 0, 0]
    later = [r.at - first[0] for r in api.requests[1:]]
    assert len(later) == 4 and min(later) >= 2.4, later  # nothing reached the server during the pause
    assert len(told) == 1 and told[0].startswith("account asked to wait 2.5 s; retrying at "), told


# ---------------------------------------------------------------------------------------------
# Silence


def test_a_server_that_never_answers_is_told_and_cut_by_the_deadline(fake: Callable[[Handler], FakeApi]) -> None:
    api = fake(lambda r: None)
    told: list[str] = []

    async def go() -> None:
        async with Client(api.url, TOKEN, rate=None, timeout=2.2, on_wait=told.append,
                          deadline=time.monotonic() + 3.5, deadline_label="the 3.5 s --timeout") as c:
            await c.list_schemas()

    started = time.monotonic()
    with pytest.raises(DeadlineExceeded) as info:
        run(go())
    elapsed = time.monotonic() - started
    assert 3.4 <= elapsed < 4.2, elapsed  # cut at the deadline, in flight
    assert assert_clean(info.value) == "gave up: the 3.5 s --timeout was reached during GET /customObjects/schemas"
    host = f"127.0.0.1:{api.port}"
    assert len(told) == 1 and re.fullmatch(
        rf"no answer from {re.escape(host)} for 2\.2 s; retrying \(attempt 2 of 3\)", told[0]), told
    assert len(api.requests) == 2


def test_a_server_that_never_answered_fails_as_unreachable(fake: Callable[[Handler], FakeApi]) -> None:
    api = fake(lambda r: None)
    told: list[str] = []

    async def go() -> None:
        async with Client(api.url, TOKEN, rate=None, timeout=2.1, max_retries=1, on_wait=told.append) as c:
            await c.get_schema("x")

    started = time.monotonic()
    with pytest.raises(TransportFailure) as info:
        run(go())
    assert time.monotonic() - started < 5.5
    line = assert_clean(info.value)
    assert line == (f"GET /customObjects/schemas/x: cannot reach 127.0.0.1:{api.port} (transport failure: "
                    "ReadTimeout: no answer in 2.1 s) (after 2 attempts): check the URL and network")
    assert [t.split(";")[0] for t in told] == [f"no answer from 127.0.0.1:{api.port} for 2.1 s"]


def test_a_refused_connection_names_the_host_to_check() -> None:
    async def go() -> None:
        async with Client("http://127.0.0.1:9", TOKEN, rate=None, backoff_base=0.01) as c:
            await c.list_schemas()

    with pytest.raises(TransportFailure) as info:
        run(go())
    line = assert_clean(info.value)
    assert line.startswith("GET /customObjects/schemas: cannot reach 127.0.0.1:9 (transport failure: ConnectError")
    assert line.endswith("(after 3 attempts): check the URL and network")


def test_the_deadline_bounds_the_limiter_too(fake: Callable[[Handler], FakeApi]) -> None:
    api = fake(lambda r: response(200, {"meta": {"total": 3}, "records": []}))

    async def go() -> list[int]:
        async with Client(api.url, TOKEN, rate=1.0, deadline=time.monotonic() + 1.5) as c:
            return list(await asyncio.gather(*(c.count_records(x) for x in "abcd")))

    started = time.monotonic()
    with pytest.raises(DeadlineExceeded, match=r"^gave up: the deadline was reached during GET /customObjects/"):
        run(go())
    assert time.monotonic() - started < 2.0
    assert len(api.requests) == 2  # one at once (burst 1), one ~1.05 s later; the rest would pass the deadline


def test_no_request_starts_after_the_deadline(fake: Callable[[Handler], FakeApi]) -> None:
    api = fake(lambda r: response(200, {"meta": {"total": 3}, "records": []}))

    async def go() -> None:
        async with Client(api.url, TOKEN, rate=None, deadline=time.monotonic() - 1) as c:
            await c.count_records("a")

    with pytest.raises(DeadlineExceeded):
        run(go())
    assert api.requests == []


# ---------------------------------------------------------------------------------------------
# Paging


def test_a_list_without_meta_total_is_an_error_not_a_walk(fake: Callable[[Handler], FakeApi]) -> None:
    api = fake(lambda r: response(200, {"schemas": [schema_doc(i) for i in range(100)], "meta": {}}))

    async def go() -> None:
        async with Client(api.url, TOKEN, rate=None) as c:
            await c.list_schemas()

    with pytest.raises(UnexpectedResponse) as info:
        run(go())
    assert assert_clean(info.value) == "GET /customObjects/schemas: 200 the list response has no meta.total"
    assert len(api.requests) == 1


def test_a_server_that_ignores_offset_is_stopped(fake: Callable[[Handler], FakeApi]) -> None:
    """Every page is the first one again, with a huge total: stopped after one window of pages."""
    api = fake(lambda r: list_page([schema_doc(i) for i in range(100)], total=10**9, limit=100))

    async def go() -> None:
        async with Client(api.url, TOKEN, rate=None) as c:
            await c.list_schemas()

    started = time.monotonic()
    with pytest.raises(UnexpectedResponse) as info:
        run(go())
    assert time.monotonic() - started < 3.0
    assert assert_clean(info.value) == (
        "GET /customObjects/schemas: 200 the schema list did not add up in 3 reads: the page at offset 100 repeats "
        "items already read; 100 of meta.total 1000000000 read (the account changed while it was read, or the "
        "server ignores the order or the offset asked for)")
    assert len(api.requests) <= 27


def test_paging_stops_at_total_and_at_a_short_page(fake: Callable[[Handler], FakeApi]) -> None:
    def pages(total: int, size: int, short_at: int | None = None) -> Handler:
        def handler(r: Request) -> bytes:
            offset = int(r.query.get("offset", "0"))
            end = min(total, offset + size)
            if short_at is not None and offset >= short_at:
                end = min(end, offset + size // 2)
            return list_page([schema_doc(i) for i in range(offset, end)], total=total, limit=size)
        return handler

    async def slugs(url: str) -> list[str]:
        async with Client(url, TOKEN, rate=None) as c:
            return [s.slug for s in await c.list_schemas()]

    exact = fake(pages(250, 100))
    assert run(slugs(exact.url)) == [f"s-{i}" for i in range(250)]
    assert sorted(int(r.query["offset"]) for r in exact.requests) == [0, 100, 200]

    short = fake(pages(1000, 100, short_at=200))  # short pages below meta.total: not taken as the whole list
    with pytest.raises(UnexpectedResponse, match=r"250 items read, meta\.total is 1000"):
        run(slugs(short.url))
    assert max(int(r.query["offset"]) for r in short.requests) < 1000

    ignores_limit = fake(pages(58, 20))  # a server that pages by 20 whatever it is asked
    assert run(slugs(ignores_limit.url)) == [f"s-{i}" for i in range(58)]
    assert sorted(int(r.query["offset"]) for r in ignores_limit.requests) == [0, 20, 40]


def test_a_schema_the_model_cannot_read_is_one_clean_line(fake: Callable[[Handler], FakeApi]) -> None:
    bad = {"id": "x1", "slug": f"s-{TOKEN}", "labels": {"singular": "A"}, "fields": [], "relationships": []}
    api = fake(lambda r: list_page([bad], total=1) if r.path == SCHEMAS else response(200, {"schema": bad}))

    async def go() -> list[str]:
        lines = []
        async with Client(api.url, TOKEN, rate=None) as c:
            for call in (c.list_schemas, lambda: c.get_schema("x1")):
                with pytest.raises(UnexpectedResponse) as info:
                    await call()
                lines.append(assert_clean(info.value))
        return lines

    listing, one = run(go())
    assert listing == ("GET /customObjects/schemas: 200 the API sent a schema 's-***' this client cannot read "
                       "(labels.plural: Field required)")
    assert one.startswith("GET /customObjects/schemas/x1: 200 the API sent a schema 's-***' this client cannot")


# ---------------------------------------------------------------------------------------------
# Token hygiene


def body_with_token(at: int, size: int) -> str:
    filler = "x" * size
    return (filler[:at] + f" token={TOKEN} " + filler[at:])[:size + len(TOKEN) + 8]


@pytest.mark.parametrize(("at", "size"), [(185, 400), (5000 - len(TOKEN) - 8, 5000), (150, 200)])
def test_the_token_is_masked_before_the_body_is_cut(at: int, size: int) -> None:
    [item] = parse_error_body(body_with_token(at, size).encode(), mask=lambda t: t.replace(TOKEN, "***"))
    assert not [p for p in token_pieces() if p in str(item)], str(item)


def test_cutting_first_would_leave_a_prefix() -> None:
    """The case the order guards against: the token straddles the 200-character cut."""
    [raw] = parse_error_body(body_with_token(185, 400).encode())
    assert "tok-HOS" in str(raw) and TOKEN not in str(raw)


@pytest.mark.parametrize("at", [185, 5000 - len(TOKEN) - 8])
def test_a_non_json_error_holding_the_token_is_clean(fake: Callable[[Handler], FakeApi], at: int) -> None:
    body = body_with_token(at, 5000)
    api = fake(lambda r: response(400, body, reason=f"Bad {TOKEN}", content_type="text/html"))

    async def go() -> None:
        async with Client(api.url, SecretStr(TOKEN), rate=None) as c:
            await c.get_schema("x")

    with pytest.raises(ReconcilerError) as info:
        run(go())
    line = assert_clean(info.value)
    assert line.startswith("GET /customObjects/schemas/x: 400 ") and "xxxx" in line
    assert api.requests[0].headers["api-token"] == TOKEN  # it was sent, in the header only


def test_json_error_entries_are_masked_too(fake: Callable[[Handler], FakeApi]) -> None:
    long = "y" * 290
    api = fake(lambda r: response(422, {"errors": [{"title": long + TOKEN, "detail": f"the token {TOKEN}",
                                                     "source": {"pointer": f"/x/{TOKEN}"}}]}))

    async def go() -> None:
        async with Client(api.url, TOKEN, rate=None) as c:
            await c.update_schema("x", {"description": "d"})

    with pytest.raises(ValidationFailed) as info:
        run(go())
    assert_clean(info.value)
    assert all(not [p for p in token_pieces() if p in (e.pointer or "") + (e.title or "")] for e in info.value.errors)


@pytest.mark.parametrize("url", [
    f"https://{TOKEN.lower()}.api-us1.com",
    f"https://acme.api-us1.com/{TOKEN}/api/3",
    f"https://acme.api-us1.com/api/3?api_key={TOKEN}",
    "https://acme.api-us1.com/" + TOKEN.replace("-", "%2D"),
])
def test_a_url_holding_the_token_is_refused_without_showing_it(url: str) -> None:
    for attempt in (lambda: normalize_base_url(url, token=TOKEN), lambda: Client(url, TOKEN),
                    lambda: normalize_base_url(url, token=SecretStr(TOKEN))):
        with pytest.raises(ConfigError) as info:
            attempt()
        assert assert_clean(info.value) == ("the API URL contains the API token; pass the token in AC_API_TOKEN "
                                            "(or token_env), not in the URL")


def test_a_short_token_is_not_looked_for_in_urls() -> None:
    assert normalize_base_url("https://acme.api-us1.com", token="acme") == "https://acme.api-us1.com/api/3"


@pytest.mark.parametrize("url", ["http://localhost:8080", "http://127.0.0.1", "http://127.8.9.10:1/api/3",
                                 "http://[::1]:9"])
def test_loopback_is_plain_http_only_for_loopback_addresses(url: str) -> None:
    assert normalize_base_url(url).startswith("http://")


@pytest.mark.parametrize("url", ["http://evil.localhost", "http://localhost.evil.example", "http://128.0.0.1",
                                 "http://[::2]", "http://0.0.0.0", "http://my-localhost"])
def test_names_that_only_look_like_loopback_are_refused(url: str) -> None:
    with pytest.raises(ConfigError, match=r"^refusing plain http:// for "):
        normalize_base_url(url)


# ---------------------------------------------------------------------------------------------
# Hints


def test_a_refused_token_names_its_variable_and_where_to_find_it(fake: Callable[[Handler], FakeApi]) -> None:
    api = fake(lambda r: response(403, {"message": "Forbidden"}))

    async def go() -> None:
        async with Client(api.url, TOKEN, rate=None, token_source="$AC_STAGING_TOKEN") as c:
            await c.list_schemas()

    with pytest.raises(AuthenticationFailed) as info:
        run(go())
    assert assert_clean(info.value) == (
        f"GET /customObjects/schemas: 403 authentication failed (Forbidden): the account at {api.url} refused the "
        "token in $AC_STAGING_TOKEN; check that $AC_STAGING_TOKEN holds this account's API token (Settings > "
        "Developer)")


def test_admin_only_requests_say_so(fake: Callable[[Handler], FakeApi]) -> None:
    api = fake(lambda r: response(403, {"message": "Forbidden"}))

    async def go() -> list[str]:
        lines = []
        async with Client(api.url, TOKEN, rate=None, token_source="$AC_PROD_TOKEN") as c:
            for call in (lambda: c.delete_field("s1", "f1"), lambda: c.count_records("s1"),
                         lambda: c.count_records("s1", {"fields.a": "1"})):
                try:
                    await call()
                except AuthenticationFailed as exc:
                    lines.append(assert_clean(exc))
        return lines

    delete_field, unfiltered, filtered = run(go())
    assert delete_field == (
        f"DELETE /customObjects/schemas/s1/fields/f1: 403 permission denied (Forbidden): the account at {api.url} "
        "refused the token in $AC_PROD_TOKEN for deleting a field, which only admin users may do; check that "
        "$AC_PROD_TOKEN holds an admin user's API token (Settings > Developer)")
    assert "listing records without a filter, which only admin users may do" in unfiltered
    assert "admin" not in filtered and "authentication failed" in filtered


def test_404_on_the_schema_list_suggests_the_account_url(fake: Callable[[Handler], FakeApi]) -> None:
    api = fake(lambda r: response(404, {"message": "Not Found"}))

    async def go() -> tuple[str, str]:
        async with Client(api.url, TOKEN, rate=None) as c:
            with pytest.raises(NotFound) as listing:
                await c.list_schemas()
            with pytest.raises(NotFound) as one:
                await c.get_schema("abc")
            return assert_clean(listing.value), assert_clean(one.value)

    listing, one = run(go())
    assert listing == (f"GET /customObjects/schemas: 404 Not Found: no Custom Objects API at {api.url}; check the "
                       "account URL (https://<account>.api-us1.com)")
    assert one == "GET /customObjects/schemas/abc: 404 Not Found"


class Longest(random.Random):
    """Full jitter at its longest: the backoff is its cap for the attempt."""

    def uniform(self, a: float, b: float) -> float:
        return b


def test_a_5xx_backoff_over_two_seconds_is_told(fake: Callable[[Handler], FakeApi]) -> None:
    answers = iter([response(502, b"<html>bad gateway</html>", content_type="text/html"),
                    list_page([], total=0)])
    api = fake(lambda r: next(answers))
    told: list[str] = []
    slept: list[float] = []

    async def fake_sleep(delay: float) -> None:
        slept.append(delay)

    async def go() -> None:
        async with Client(api.url, TOKEN, rate=None, on_wait=told.append, sleep=fake_sleep, backoff_base=4.0,
                          rng=Longest()) as c:
            assert await c.list_schemas() == []

    run(go())
    assert len(slept) == 1 and slept[0] > 2.0, slept
    assert len(told) == 1 and re.fullmatch(
        rf"502 from 127\.0\.0\.1:{api.port} on GET /customObjects/schemas; retrying at \d\d:\d\d:\d\d "
        r"\(attempt 2 of 9\)", told[0]), told


def test_messages_of_the_new_errors_are_one_line_and_pickle() -> None:
    import pickle

    exc = DeadlineExceeded("PUT", "/customObjects/schemas/x", label="the 60 s --timeout")
    again = pickle.loads(pickle.dumps(exc))
    assert str(again) == str(exc) == "gave up: the 60 s --timeout was reached during PUT /customObjects/schemas/x"
    limited = RateLimited(429, "GET", "/x", [ApiErrorItem(title="Too Many Requests")], retry_after=600, cap=120)
    assert str(pickle.loads(pickle.dumps(limited))) == str(limited)
    assert "600 s (about 10 min)" in str(limited)
    assert parse_retry_after("99999") == 99999.0
    hinted = ServerError(500, "GET", "/x", [ApiErrorItem(title="x" * 600)], hint="check the thing")
    assert len(str(hinted)) < 540 and str(hinted).endswith("…: check the thing")  # the hint is never cut
