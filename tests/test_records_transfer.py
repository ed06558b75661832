"""Records export and import (reconciler.records.transfer) between two served sandboxes, both profiles."""

from __future__ import annotations

import asyncio
import json
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.client import Client
from reconciler.model import Schema
from reconciler.records.api import list_pages
from reconciler.records.transfer import TransferError, export_records, filter_params, import_records
from reconciler.sandbox.testing import PROFILES, running_sandbox
from tests.conftest import profile_settings
from tests.support.apply import field, schema
from tests.support.records import client_of, create_orders, record_posts, seed_orders
from tests.support.soak import fault_seeds


@pytest.fixture(params=PROFILES)
def pair(request: pytest.FixtureRequest) -> Iterator[tuple[Any, Any]]:
    """Two accounts (served sandboxes) under the same profile."""
    with running_sandbox(profile_settings(request.param)) as a, running_sandbox(profile_settings(request.param)) as b:
        yield a, b


async def all_records(c: Client, s: Schema) -> list[Any]:
    return [r for p in [p async for p in list_pages(c, str(s.id))] for r in p.records]


def test_export_import_export_gives_the_same_file_and_a_second_import_adds_nothing(
        pair: tuple[Any, Any], tmp_path: Path) -> None:
    a, b = tmp_path / "a.ndjson", tmp_path / "b.ndjson"

    sandbox, other = pair

    async def go() -> None:
        async with client_of(sandbox) as ca, client_of(other) as cb:
            sa, sb_ = await create_orders(ca), await create_orders(cb)
            seed_orders(sandbox, sa, 130, 40, contacts=20)
            # records without an externalId: exported under their id, a re-import still adds nothing
            sandbox.store.seed_records(sa.id, [{"fields": {"order-number": 1000 + i, "order-date": "2026-02-01T00:00:00Z",
                                                           "order-ship-status": "Shipped"}} for i in range(15)])
            for i in range(3):  # the same contact ids in the other account
                other.store.save_contact({"email": f"c{i}@example.com"})
            exported = await export_records(ca, sa, a)
            assert exported.count == 145
            first = await import_records(cb, sb_, a)
            assert (first.created, first.updated, first.unchanged, first.failed) == (145, 0, 0, 0)
            await export_records(cb, sb_, b)
            assert b.read_bytes() == a.read_bytes()
            posts = record_posts(other)
            second = await import_records(cb, sb_, a)
            assert (second.created, second.unchanged) == (0, 145)
            assert record_posts(other) == posts  # nothing written
            assert len(await all_records(cb, sb_)) == 145

    asyncio.run(go())
    assert stat.S_IMODE(a.stat().st_mode) == 0o600
    docs = [json.loads(line) for line in a.read_text().splitlines()]
    assert all(set(d) == {"externalId", "fields", "relationships"} for d in docs)
    assert sum(1 for d in docs if d["relationships"]) == 20


def test_a_changed_record_is_updated_in_place(sandbox: Any, tmp_path: Path) -> None:
    src = tmp_path / "a.ndjson"

    async def go() -> None:
        async with client_of(sandbox) as c:
            s = await create_orders(c)
            seed_orders(sandbox, s, 10, 5)
            await export_records(c, s, src)
            lines = src.read_text().splitlines()
            doc = json.loads(lines[0])
            doc["fields"] = [f if f["id"] != "order-total" else {"id": "order-total", "value": 999} for f in doc["fields"]]
            src.write_text("\n".join([json.dumps(doc), *lines[1:]]) + "\n")
            posts = record_posts(sandbox)
            result = await import_records(c, s, src)
            assert (result.updated, result.unchanged, result.created) == (1, 9, 0)
            assert record_posts(sandbox) - posts == 1
            recs = await all_records(c, s)
            assert len(recs) == 10
            assert next(r for r in recs if r.external_id == doc["externalId"]).value_of("order-total") == 999

    asyncio.run(go())


def test_drop_relationships(pair: tuple[Any, Any], tmp_path: Path) -> None:
    a = tmp_path / "a.ndjson"

    sandbox, other = pair

    async def go() -> None:
        async with client_of(sandbox) as ca, client_of(other) as cb:
            sa, sb_ = await create_orders(ca), await create_orders(cb)
            seed_orders(sandbox, sa, 12, 0, contacts=12)
            await export_records(ca, sa, a)
            # the contacts do not exist in the other account: with relationships, every upsert fails
            kept = await import_records(cb, sb_, a)
            assert kept.failed == 12 and "primary-contact" in kept.failures[0][1]
            dropped = await import_records(cb, sb_, a, drop_relationships=True)
            assert (dropped.created, dropped.failed) == (12, 0)
            assert all(r.relationships == {} for r in await all_records(cb, sb_))
            out = tmp_path / "no-rel.ndjson"
            await export_records(ca, sa, out, drop_relationships=True)
            assert all(json.loads(line)["relationships"] == {} for line in out.read_text().splitlines())

    asyncio.run(go())


TAGS = schema("tagged", [
    field("title", "text"), field("notes", "textarea"), field("n", "number"), field("price", "currency"),
    field("day", "date"), field("at", "datetime"),
    field("kind", "dropdown", options=[{"value": "a"}, {"value": "b|c"}]),
    field("tags", "multiselect", options=[{"value": "x"}, {"value": "y,z"}, {"value": "p|q"}, {"value": "b\\s"}]),
])


def tagged_items() -> list[dict[str, Any]]:
    return [
        {"externalId": "t1", "fields": {"title": 'comma, "quote"', "notes": "two\nlines", "n": 12, "price": 9.5,
                                        "day": "2026-03-01", "at": "2026-03-01T10:00:00Z", "kind": "b|c",
                                        "tags": ["x", "p|q", "b\\s"]}},
        {"externalId": "t2", "fields": {"title": "only a title", "tags": ["y,z"]}},
        {"externalId": "t3", "fields": {"n": -3, "kind": "a"}},
    ]


def test_csv_round_trip(pair: tuple[Any, Any], tmp_path: Path) -> None:
    a_csv, b_csv, a_nd, b_nd = (tmp_path / n for n in ("a.csv", "b.csv", "a.ndjson", "b.ndjson"))

    sandbox, other = pair

    async def go() -> None:
        async with client_of(sandbox) as ca, client_of(other) as cb:
            sa, sb_ = await ca.create_schema(TAGS), await cb.create_schema(TAGS)
            sandbox.store.seed_records(sa.id, tagged_items())
            await export_records(ca, sa, a_csv, format="csv")
            result = await import_records(cb, sb_, a_csv)
            assert (result.created, result.failed) == (3, 0), result.failures
            await export_records(cb, sb_, b_csv, format="csv")
            await export_records(ca, sa, a_nd)
            await export_records(cb, sb_, b_nd)

    asyncio.run(go())
    assert b_csv.read_bytes() == a_csv.read_bytes()
    assert b_nd.read_bytes() == a_nd.read_bytes()  # every value came back with its type
    header = a_csv.read_text().splitlines()[0]
    assert header == "externalId,title,notes,n,price,day,at,kind,tags"
    assert "x|p\\|q|b\\\\s" in a_csv.read_text()


def test_filtered_export_and_bad_filters(sandbox: Any, tmp_path: Path) -> None:
    out = tmp_path / "f.ndjson"

    async def go() -> None:
        async with client_of(sandbox) as c:
            s = await create_orders(c)
            seed_orders(sandbox, s, 50, 10)  # order-total is 10 + i
            r = await export_records(c, s, out, filters=filter_params(["order-total:gte:50"]))
            assert r.count == 10
            r = await export_records(c, s, out, filters=filter_params(["order-instructions:not_blank"]))
            assert r.count == 10

    asyncio.run(go())
    assert filter_params(["order-link:contains:a:b"]) == {"filters[fields.order-link][contains]": "a:b"}
    assert filter_params(["createdTimestamp:gt:2026"]) == {"filters[createdTimestamp][gt]": "2026"}
    for bad in ("order-total", "order-total:near:3", ":eq:1", "order-total:gte"):
        with pytest.raises(TransferError, match="expected FIELD:OP:VALUE"):
            filter_params([bad])


def test_import_refuses_unknown_fields_before_writing(sandbox: Any, tmp_path: Path) -> None:
    src = tmp_path / "x.ndjson"
    src.write_text(json.dumps({"externalId": "e1", "fields": [{"id": "nope", "value": 1}]}) + "\n")

    async def go() -> None:
        async with client_of(sandbox) as c:
            s = await create_orders(c)
            with pytest.raises(TransferError, match="field nope is not in schema online-order; nothing imported"):
                await import_records(c, s, src)
            assert record_posts(sandbox) == 0

    asyncio.run(go())


@pytest.mark.parametrize("seed", fault_seeds())
def test_import_under_faults_creates_no_duplicate(tmp_path: Path, seed: int) -> None:
    src = tmp_path / "a.ndjson"
    with running_sandbox(profile_settings("pessimistic")) as a, running_sandbox(profile_settings(
            "pessimistic", faults="429=0.05,503=0.05,drop=0.05,lost=0.05", fault_seed=seed, retry_after_s=0.0)) as b:
        async def go() -> None:
            async with client_of(a) as ca, client_of(b, max_retries=12) as cb:
                sa, sb_ = await create_orders(ca), await create_orders(cb)
                seed_orders(a, sa, 40, 10)
                await export_records(ca, sa, src)
                result = await import_records(cb, sb_, src)
                assert result.failed == 0 and result.created + result.updated == 40
                recs = await all_records(cb, sb_)
                assert sorted(str(r.external_id) for r in recs) == sorted(f"order-{i}" for i in range(40))

        asyncio.run(go())
        assert {"lost", "drop"} & {e.fault for e in b.traffic.log if e.method == "POST"}
