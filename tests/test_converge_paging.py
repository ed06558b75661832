"""Issue 12 "a complete, stable read": the schema list is asked for in a stable order and checked.

Pages that do not add up to ``meta.total`` with distinct ids (a skipped or repeated schema, a total
that moves) are read again, a bounded number of times one read after the other, then the read fails
with one line. Crafted pages come from the fake API of ``test_client_hostile``; the shuffled order
comes from the sandbox's pessimistic profile over real HTTP.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from reconciler.client import LIST_READS, SCHEMA_ORDER, Client
from reconciler.errors import UnexpectedResponse
from reconciler.sandbox import SandboxSettings
from reconciler.sandbox.testing import running_sandbox
from tests.support.fakeapi import TOKEN, FakeApi, Handler, Request, assert_clean, list_page, run, schema_doc


@pytest.fixture
def fake() -> Iterator[Callable[[Handler], FakeApi]]:
    servers: list[FakeApi] = []

    def start(handler: Handler) -> FakeApi:
        api = FakeApi(handler).__enter__()
        servers.append(api)
        return api

    yield start
    for api in servers:
        api.__exit__(None, None, None)


def slugs_of(url: str) -> list[str]:
    async def go() -> list[str]:
        async with Client(url, TOKEN, rate=None) as c:
            return [s.slug for s in await c.list_schemas()]

    return run(go())


def paged(reads: list[list[list[int]]], total: Callable[[int, int], int] | None = None) -> Handler:
    """The n-th read of the list (a request at offset 0 starts one) gets ``reads[n]``: its pages of
    schema numbers, two per page. ``total(read, offset)`` is each page's meta.total (default: the
    number of distinct schemas of the read's last page set)."""
    state = {"read": -1}

    def handler(r: Request) -> bytes:
        offset = int(r.query.get("offset", "0"))
        if offset == 0:
            state["read"] = min(state["read"] + 1, len(reads) - 1)
        pages = reads[state["read"]]
        page = pages[offset // 2] if offset // 2 < len(pages) else []
        n = total(state["read"], offset) if total else len({i for p in reads[-1] for i in p})
        return list_page([schema_doc(i) for i in page], total=n, limit=2, offset=offset, count=len(page))

    return handler


def test_the_list_is_asked_for_in_creation_order(fake: Callable[[Handler], FakeApi]) -> None:
    api = fake(paged([[[0, 1], [2]]]))
    assert slugs_of(api.url) == ["s-0", "s-1", "s-2"]
    assert SCHEMA_ORDER == {"orders[createdTimestamp]": "ASC"}
    assert api.requests and all(r.query.get("orders[createdTimestamp]") == "ASC" for r in api.requests)
    assert len(api.requests) == 2


def test_a_skipped_schema_is_read_again_not_planned_as_missing(fake: Callable[[Handler], FakeApi]) -> None:
    # read 1: the order moved between the pages: s-1 comes twice and s-2 never
    api = fake(paged([[[0, 1], [1]], [[0, 1], [2]]]))
    assert slugs_of(api.url) == ["s-0", "s-1", "s-2"]
    assert [int(r.query["offset"]) for r in api.requests] == [0, 2, 0, 2]


def test_a_page_that_only_repeats_is_read_again(fake: Callable[[Handler], FakeApi]) -> None:
    api = fake(paged([[[0, 1], [0, 1], [4]], [[0, 1], [2, 3], [4]]]))
    assert slugs_of(api.url) == ["s-0", "s-1", "s-2", "s-3", "s-4"]


def test_a_total_that_moves_between_pages_is_read_again(fake: Callable[[Handler], FakeApi]) -> None:
    # read 1: a schema was created while the list was read; the pages say 3, then 4
    api = fake(paged([[[0, 1], [2]], [[0, 1], [2, 3]]], total=lambda read, offset: 3 if read == 0 and offset == 0
                     else 4))
    assert slugs_of(api.url) == ["s-0", "s-1", "s-2", "s-3"]
    assert len(api.requests) == 4


def test_a_list_that_never_adds_up_fails_with_one_line(fake: Callable[[Handler], FakeApi]) -> None:
    api = fake(paged([[[0, 1], [1, 2]]], total=lambda read, offset: 4))

    with pytest.raises(UnexpectedResponse) as info:
        slugs_of(api.url)
    assert assert_clean(info.value) == (
        "GET /customObjects/schemas: 200 the schema list did not add up in 3 reads: 1 item listed twice (the "
        "account changed while it was read, or the server ignores the order or the offset asked for)")
    assert len(api.requests) == 2 * LIST_READS  # bounded, one read after the other
    starts = [r.at for r in api.requests if r.query["offset"] == "0"]
    later = [r.at for r in api.requests if r.query["offset"] != "0"]
    assert all(a < b for a, b in zip(later, starts[1:], strict=False))  # each read ends before the next


def test_a_page_of_repeats_only_fails_the_same_way(fake: Callable[[Handler], FakeApi]) -> None:
    api = fake(paged([[[0, 1], [1]]], total=lambda read, offset: 3))
    with pytest.raises(UnexpectedResponse, match=r"did not add up in 3 reads: the page at offset 2 repeats items "
                                                 r"already read; 2 of meta\.total 3 read \("):
        slugs_of(api.url)


def test_a_short_list_fails_rather_than_passing_for_whole(fake: Callable[[Handler], FakeApi]) -> None:
    api = fake(paged([[[0, 1], [2]]], total=lambda read, offset: 5))
    with pytest.raises(UnexpectedResponse, match=r"3 items read, meta\.total is 5"):
        slugs_of(api.url)
    assert len(api.requests) == 3 * LIST_READS  # offsets 0, 2 and 4 (up to meta.total) each time


def _seed(sb: Any, n: int) -> set[str]:
    ids = set()
    for i in range(n):
        ts = f"2026-02-01T00:{i // 60:02d}:{i % 60:02d}.000000000Z"
        sid = str(uuid.uuid4())
        ids.add(sid)
        sb.store.put_schema({"id": sid, "slug": f"s-{i:03d}", "visibility": "private", "customized": False,
                             "labels": {"singular": f"S {i}", "plural": f"S {i}s"}, "createdTimestamp": ts,
                             "updatedTimestamp": ts, "fields": [], "relationships": []})
    return ids


@pytest.mark.parametrize("seed", range(5))
def test_a_shuffled_account_is_read_whole(seed: int) -> None:
    """250 schemas, lists in a random order unless ordered: three pages, every schema exactly once."""
    st = SandboxSettings.from_profile("pessimistic", token=TOKEN, rate_limit=0, list_seed=seed,
                                      seed_unknown_type_schema=False)
    with running_sandbox(st) as sb:
        ids = _seed(sb, 250)

        async def go() -> list[Any]:
            async with Client(sb.url, TOKEN, rate=None) as c:
                return await c.list_schemas()

        schemas = run(go())
        assert sorted(s.id or "" for s in schemas) == sorted(ids)
        assert len([e for e in sb.traffic.log if e.method == "GET"]) == 3
