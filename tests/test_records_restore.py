"""Restore of a backup (reconciler.records.restore) over real HTTP, both profiles: into a field
re-created under a new id, nothing rewritten on a second run, resumed after an interruption."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from reconciler.client import Client
from reconciler.model import Schema
from reconciler.records.api import list_pages
from reconciler.records.backup import backup_records
from reconciler.records.restore import JOURNAL, RestoreError, restore_records
from reconciler.sandbox.testing import running_sandbox
from tests.conftest import profile_settings
from tests.support.records import client_of, create_orders, record_posts, seed_orders
from tests.support.soak import fault_seeds

NOTES = {"id": "order-notes", "type": "textarea", "labels": {"singular": "Notes", "plural": "Notes"}}


async def delete_and_recreate(c: Client, schema: Schema) -> None:
    """The field deleted (its values gone) and a new one added under another id (NA302)."""
    assert schema.id is not None
    await c.delete_field(schema.id, "order-instructions")
    await c.update_schema(schema.id, {"fields": [NOTES]})


async def values_of(c: Client, schema: Schema, fid: str) -> dict[str, Any]:
    assert schema.id is not None
    out: dict[str, Any] = {}
    async for page in list_pages(c, schema.id):
        for r in page.records:
            if r.value_of(fid) is not None:
                out[str(r.id)] = r.value_of(fid)
    return out


def backed_up(path: Path) -> dict[str, Any]:
    recs = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return {r["id"]: next(f["value"] for f in r["fields"] if f["id"] == "order-instructions") for r in recs}


def test_restore_into_a_recreated_field_then_nothing_to_do(sandbox: Any, tmp_path: Path) -> None:
    out = tmp_path / "b"

    async def go() -> None:
        async with client_of(sandbox) as c:
            schema = await create_orders(c)
            seed_orders(sandbox, schema, 120, 37, contacts=10)
            before = {str(r.id): r for p in [p async for p in list_pages(c, str(schema.id))] for r in p.records}
            await backup_records(c, schema, ["order-instructions"], out, expected=37)
            await delete_and_recreate(c, schema)
            posts = record_posts(sandbox)
            first = await restore_records(c, out, field_map={"order-instructions": "order-notes"})
            assert (first.restored, first.already, first.missing, first.failed) == (37, 0, 0, 0)
            assert record_posts(sandbox) - posts == 37  # one upsert per restored record, no other
            assert await values_of(c, schema, "order-notes") == backed_up(out / "online-order.order-instructions.ndjson")
            after = {str(r.id): r for p in [p async for p in list_pages(c, str(schema.id))] for r in p.records}
            for rid, rec in after.items():  # every other field and the relationships as they were
                old = before[rid]
                kept = [f for f in old.fields if f.id != "order-instructions"]
                assert [f for f in rec.fields if f.id != "order-notes"] == kept
                assert rec.relationships == old.relationships and rec.external_id == old.external_id
            posts = record_posts(sandbox)
            second = await restore_records(c, out, field_map={"order-instructions": "order-notes"})
            assert second.skipped == 37 and second.restored == 0
            (out / JOURNAL).unlink()  # without the journal: each record read, none rewritten
            third = await restore_records(c, out, field_map={"order-instructions": "order-notes"})
            assert third.already == 37 and third.restored == 0
            assert record_posts(sandbox) == posts

    asyncio.run(go())


def test_interrupted_restore_resumes_with_the_rest(sandbox: Any, tmp_path: Path) -> None:
    out = tmp_path / "b"

    class Stop(Exception):
        pass

    def stop_after(k: int) -> Any:
        def progress(done: int, total: int) -> None:
            if done >= k:
                raise Stop
        return progress

    async def go() -> None:
        async with client_of(sandbox) as c:
            schema = await create_orders(c)
            seed_orders(sandbox, schema, 60, 30)
            await backup_records(c, schema, ["order-instructions"], out, expected=30)
            await delete_and_recreate(c, schema)
            posts = record_posts(sandbox)
            with pytest.raises(Stop):
                await restore_records(c, out, field_map={"order-instructions": "order-notes"},
                                      on_progress=stop_after(12), batch=4)
            assert record_posts(sandbox) - posts == 12
            rest = await restore_records(c, out, field_map={"order-instructions": "order-notes"}, batch=4)
            assert (rest.skipped, rest.restored, rest.already) == (12, 18, 0)
            assert record_posts(sandbox) - posts == 30  # each record written once in all
            assert len(await values_of(c, schema, "order-notes")) == 30

    asyncio.run(go())


def test_a_record_gone_since_the_backup_is_reported_missing(sandbox: Any, tmp_path: Path) -> None:
    out = tmp_path / "b"

    async def go() -> None:
        async with client_of(sandbox) as c:
            schema = await create_orders(c)
            seed_orders(sandbox, schema, 10, 4)
            backup = await backup_records(c, schema, ["order-instructions"], out, expected=4)
            assert backup.total == 4
            first = json.loads((out / "online-order.order-instructions.ndjson").read_text().splitlines()[0])
            await c.request_json("DELETE", f"/customObjects/records/{schema.id}/{first['id']}")
            await delete_and_recreate(c, schema)
            result = await restore_records(c, out, field_map={"order-instructions": "order-notes"})
            assert (result.restored, result.missing, result.missing_ids) == (3, 1, [first["id"]])

    asyncio.run(go())


def test_a_changed_backup_or_an_absent_field_is_refused(sandbox: Any, tmp_path: Path) -> None:
    out = tmp_path / "b"

    async def go() -> None:
        async with client_of(sandbox) as c:
            schema = await create_orders(c)
            seed_orders(sandbox, schema, 5, 2)
            await backup_records(c, schema, ["order-instructions"], out, expected=2)
            await delete_and_recreate(c, schema)
            with pytest.raises(RestoreError, match="field order-instructions is not in the schema"):
                await restore_records(c, out)
            with pytest.raises(RestoreError, match="holds no field order-link"):
                await restore_records(c, out, field_map={"order-link": "order-notes"})
            data = out / "online-order.order-instructions.ndjson"
            data.write_text(data.read_text().replace("door", "d00r"))
            with pytest.raises(RestoreError, match="changed since the backup"):
                await restore_records(c, out, field_map={"order-instructions": "order-notes"})

    asyncio.run(go())


@pytest.mark.parametrize("seed", fault_seeds())
def test_restore_under_faults_writes_each_value_and_nothing_else(tmp_path: Path, seed: int) -> None:
    """20% 429/503, drops and lost responses: every value back, no record added, other fields kept."""
    settings = profile_settings("pessimistic", faults="429=0.05,503=0.05,drop=0.05,lost=0.05", fault_seed=seed,
                                retry_after_s=0.0)
    out = tmp_path / "b"
    with running_sandbox(settings) as sb:
        async def go() -> None:
            async with client_of(sb, max_retries=12) as c:
                schema = await create_orders(c)
                seed_orders(sb, schema, 50, 20, contacts=5)
                await backup_records(c, schema, ["order-instructions"], out, expected=20)
                await delete_and_recreate(c, schema)
                result = await restore_records(c, out, field_map={"order-instructions": "order-notes"})
                assert result.failed == 0 and result.restored + result.already == 20
                assert await values_of(c, schema, "order-notes") == backed_up(
                    out / "online-order.order-instructions.ndjson")
                after = [p async for p in list_pages(c, str(schema.id))]
                records = [r for p in after for r in p.records]
                assert len(records) == 50  # no duplicate from a repeated upsert
                assert all(r.value_of("order-number") is not None and r.relationships.get("primary-contact")
                           for r in records if int(r.value_of("order-number")) < 5)
                assert all(r.value_of("order-link") == f"https://shop.example/r/{r.value_of('order-number')}"
                           for r in records)

        asyncio.run(go())
        faults = [e.fault for e in sb.traffic.log if e.fault]
        assert {"lost", "drop"} & set(faults), faults  # the seed did inject what the test is about
