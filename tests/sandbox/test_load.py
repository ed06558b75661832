"""A sandbox that does not lie under load (issue 12): concurrent writes over real HTTP each apply to the
latest state, and hostile inputs (huge offsets and numbers, deep or huge bodies) get 4xx, never 5xx."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from reconciler.sandbox import SandboxSettings
from reconciler.sandbox.testing import RunningSandbox, running_sandbox

from .helpers import SCHEMAS, asgi_client, create_schema, field, schema_body

RECORDS = "/api/3/customObjects/records"


@pytest.fixture()
def sb() -> Iterator[RunningSandbox]:
    with running_sandbox(SandboxSettings(rate_limit=0)) as running:
        yield running


def concurrently(n: int, work: Callable[[int], Any]) -> list[Any]:
    """Run ``work(i)`` for i < n in n threads released together; their results in order."""
    results: list[Any] = [None] * n
    barrier = threading.Barrier(n)

    def run(i: int) -> None:
        barrier.wait()
        results[i] = work(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def test_concurrent_field_additions_are_never_lost(sb: RunningSandbox) -> None:
    with httpx.Client(base_url=sb.url, headers=sb.headers) as c:
        sid = c.post(SCHEMAS, json=schema_body("load", [field("seed")])).json()["schema"]["id"]
        clients = [httpx.Client(base_url=sb.url, headers=sb.headers, timeout=30) for _ in range(20)]
        try:
            answered: list[str] = []
            for rnd in range(10):
                def add(i: int, rnd: int = rnd) -> tuple[str, int]:
                    fid = f"r{rnd}-f{i}"
                    r = clients[i].put(f"{SCHEMAS}/{sid}", json={"schema": {"fields": [field(fid)]}})
                    return fid, r.status_code

                results = concurrently(20, add)
                assert {status for _, status in results} == {200}, results
                answered += [fid for fid, _ in results]
                stored = {f["id"] for f in c.get(f"{SCHEMAS}/{sid}").json()["schema"]["fields"]}
                lost = [fid for fid in answered if fid not in stored]
                assert lost == [], f"round {rnd}: {len(lost)} answered additions lost"
            assert len(answered) == 200
        finally:
            for client in clients:
                client.close()


def test_concurrent_creates_of_one_slug_make_one_schema(sb: RunningSandbox) -> None:
    def create(_i: int) -> int:
        return httpx.post(sb.url + SCHEMAS, json=schema_body("same"), headers=sb.headers, timeout=30).status_code

    statuses = concurrently(12, create)
    assert sorted(statuses) == [201] + [422] * 11
    assert len(sb.store.list_schemas()) == 1


def test_concurrent_upserts_of_one_external_id_make_one_record(sb: RunningSandbox) -> None:
    with httpx.Client(base_url=sb.url, headers=sb.headers) as c:
        sid = c.post(SCHEMAS, json=schema_body("recs", [field("n", "number")])).json()["schema"]["id"]

    def upsert(i: int) -> int:
        body = {"record": {"externalId": "one", "fields": [{"id": "n", "value": i}]}}
        return httpx.post(f"{sb.url}{RECORDS}/{sid}", json=body, headers=sb.headers, timeout=30).status_code

    assert set(concurrently(12, upsert)) == {201}
    total, rows = sb.store.list_records(sid)
    assert total == 1 and rows[0].external_id == "one"


def test_concurrent_contact_syncs_of_one_email_make_one_contact(sb: RunningSandbox) -> None:
    def sync(i: int) -> int:
        body = {"contact": {"email": "same@example.com", "firstName": f"n{i}"}}
        return httpx.post(f"{sb.url}/api/3/contact/sync", json=body, headers=sb.headers, timeout=30).status_code

    statuses = concurrently(12, sync)
    assert sorted(statuses) == [200] * 11 + [201]


@pytest.mark.parametrize("params", [
    {"offset": str(10**30)}, {"offset": str(2**63)}, {"limit": "1", "offset": "-" + str(10**30)},
    {"offset": "1" * 5000}, {"limit": "1e3"}, {"filters[fields.n][gt]": "1e400"},
])
def test_huge_paging_and_filter_values_are_400(params: dict[str, str]) -> None:
    with asgi_client(SandboxSettings(rate_limit=0, limit_clamp=False)) as c:
        s = create_schema(c, fields=[field("n", "number")])
        for path in (SCHEMAS, f"{RECORDS}/{s['id']}"):
            if path == SCHEMAS and "filters[fields.n][gt]" in params:
                continue
            r = c.get(path, params=params)
            assert r.status_code == 400, (path, r.status_code, r.text)
            assert r.json() == {"errors": [{"status": 400, "title": "Bad Request"}]}


def test_offsets_up_to_the_database_range_are_empty_pages() -> None:
    with asgi_client(SandboxSettings(rate_limit=0)) as c:
        s = create_schema(c)
        for path in (SCHEMAS, f"{RECORDS}/{s['id']}"):
            r = c.get(path, params={"offset": str(2**63 - 1), "limit": str(10**30)})
            assert r.status_code == 200 and r.json()["meta"]["count"] == 0 and r.json()["meta"]["limit"] == 100


def test_numbers_beyond_range_are_422() -> None:
    with asgi_client(SandboxSettings(rate_limit=0, lenient_contacts=True)) as c:
        rel = {"id": "primary-contact", "labels": {"singular": "C", "plural": "Cs"}, "namespace": "contacts"}
        s = create_schema(c, fields=[field("n", "number")], relationships=[rel])
        base = f"{RECORDS}/{s['id']}"
        for record in ({"fields": [{"id": "n", "value": 10**30}]}, {"fields": [{"id": "n", "value": "1e400"}]},
                       {"fields": [], "relationships": {"primary-contact": [10**30]}}):
            r = c.post(base, json={"record": record})
            assert r.status_code == 422, (record, r.text)


DEEP = '{"a":' * 10_000 + "1" + "}" * 10_000
DEEP_LIST = '{"schema":' + "[" * 10_000 + "]" * 10_000 + "}"


@pytest.mark.parametrize("body", [DEEP, DEEP_LIST, '{"schema": NaN}', '{"record": {"fields": Infinity}}'],
                         ids=["objects", "lists", "nan", "infinity"])
def test_deep_and_non_json_bodies_are_400(sb: RunningSandbox, body: str) -> None:
    with httpx.Client(base_url=sb.url, headers={**sb.headers, "content-type": "application/json"}) as c:
        sid = c.post(SCHEMAS, json=schema_body("deep")).json()["schema"]["id"]
        for method, path in (("POST", SCHEMAS), ("PUT", f"{SCHEMAS}/{sid}"), ("POST", f"{RECORDS}/{sid}"),
                             ("POST", f"{SCHEMAS}/public"), ("POST", "/api/3/contact/sync")):
            r = c.request(method, path, content=body)
            assert r.status_code == 400, (method, path, r.status_code, r.text[:200])
            assert r.json()["errors"][0]["title"] == "Bad Request"


def test_a_body_over_the_limit_is_413_with_or_without_content_length(sb: RunningSandbox) -> None:
    big = b'{"schema": {"slug": "big", "description": "' + b"x" * (1_048_576 + 10) + b'"}}'

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(big), 65536):
            yield big[i:i + 65536]

    with httpx.Client(base_url=sb.url, headers={**sb.headers, "content-type": "application/json"}) as c:
        r = c.post(SCHEMAS, content=big)
        assert r.status_code == 413 and r.json() == {"message": "Payload Too Large"}
        r = c.post(SCHEMAS, content=chunks())  # chunked: no Content-Length
        assert r.status_code == 413 and r.json() == {"message": "Payload Too Large"}
        assert c.get(SCHEMAS).json()["meta"]["total"] == 0
        small = b'{"schema": {"slug": "ok", "labels": {"singular": "O", "plural": "Os"}, "description": "' + \
            b"x" * 1_000_000 + b'"}}'
        assert c.post(SCHEMAS, content=small).status_code == 201
