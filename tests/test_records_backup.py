"""Backups before a destructive change (reconciler.records.backup) over real HTTP, both profiles."""

from __future__ import annotations

import asyncio
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from reconciler.errors import ReconcilerError
from reconciler.records.backup import (
    MANIFEST,
    BackupCountMismatch,
    backup_records,
    backup_requests,
    default_backup_dir,
    read_manifest,
)
from reconciler.records.files import sha256_of
from tests.support.records import client_of, create_orders, seed_orders
from tests.support.soak import fault_seeds


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_field_backup_holds_exactly_the_non_blank_records(sandbox: Any, tmp_path: Path) -> None:
    out = tmp_path / "b"
    seen: list[tuple[int, int]] = []

    async def go() -> Any:
        async with client_of(sandbox) as c:
            schema = await create_orders(c)
            seed_orders(sandbox, schema, 250, 137, contacts=5)
            return await backup_records(c, schema, ["order-instructions"], out, expected=137,
                                        target_name="sandbox", on_progress=lambda d, t: seen.append((d, t)))

    backup = asyncio.run(go())
    data = out / "online-order.order-instructions.ndjson"
    recs = lines(data)
    assert backup.total == 137 and len(recs) == 137
    assert len({r["id"] for r in recs}) == 137
    assert all(any(f["id"] == "order-instructions" and f["value"] for f in r["fields"]) for r in recs)
    assert all({"id", "externalId", "fields", "relationships"} <= r.keys() for r in recs)
    assert any(r["relationships"].get("primary-contact") for r in recs)
    manifest = read_manifest(out)
    assert manifest["files"] == [{"file": data.name, "field": "order-instructions", "count": 137,
                                  "sha256": sha256_of(data)}]
    assert manifest["complete"] is True and manifest["schema"]["slug"] == "online-order"
    assert manifest["target"]["url"] == f"{sandbox.url}/api/3" and sandbox.settings.token not in (
        out / MANIFEST).read_text()
    assert seen[-1] == (137, 137) and len(seen) == backup_requests(137) == 2
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary file left


def test_files_are_private_whatever_the_umask(sandbox: Any, tmp_path: Path) -> None:
    out = tmp_path / "deep" / "b"
    old = os.umask(0o000)
    try:
        async def go() -> None:
            async with client_of(sandbox) as c:
                schema = await create_orders(c)
                seed_orders(sandbox, schema, 10, 3)
                await backup_records(c, schema, None, out, expected=10)

        asyncio.run(go())
    finally:
        os.umask(old)
    assert stat.S_IMODE((out / "online-order.ndjson").stat().st_mode) == 0o600
    assert stat.S_IMODE((out / MANIFEST).stat().st_mode) == 0o600
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    assert stat.S_IMODE(out.parent.stat().st_mode) == 0o700
    assert len(lines(out / "online-order.ndjson")) == 10


def test_two_fields_one_file_each_and_a_schema_backup_holds_all(sandbox: Any, tmp_path: Path) -> None:
    async def go() -> tuple[Any, Any]:
        async with client_of(sandbox) as c:
            schema = await create_orders(c)
            seed_orders(sandbox, schema, 40, 9)
            a = await backup_records(c, schema, ["order-instructions", "order-link"], tmp_path / "f",
                                     expected={"order-instructions": 9, "order-link": 40})
            b = await backup_records(c, schema, None, tmp_path / "s", expected=40)
            return a, b

    fields, whole = asyncio.run(go())
    assert fields.count("order-instructions") == 9 and fields.count("order-link") == 40
    assert len(lines(tmp_path / "f" / "online-order.order-link.ndjson")) == 40
    assert whole.total == 40 and read_manifest(tmp_path / "s")["kind"] == "schema"


def test_count_that_differs_from_the_plan_raises_and_keeps_the_files(sandbox: Any, tmp_path: Path) -> None:
    async def go() -> None:
        async with client_of(sandbox) as c:
            schema = await create_orders(c)
            seed_orders(sandbox, schema, 30, 7)
            await backup_records(c, schema, ["order-instructions"], tmp_path / "b", expected=8)

    with pytest.raises(BackupCountMismatch, match="7 records read, the plan counted 8"):
        asyncio.run(go())
    manifest = read_manifest(tmp_path / "b")
    assert manifest["complete"] is False and manifest["total"] == 7


def test_a_directory_holding_a_backup_is_not_reused(sandbox: Any, tmp_path: Path) -> None:
    async def go() -> None:
        async with client_of(sandbox) as c:
            schema = await create_orders(c)
            seed_orders(sandbox, schema, 3, 1)
            await backup_records(c, schema, ["order-instructions"], tmp_path / "b", expected=1)
            await backup_records(c, schema, ["order-instructions"], tmp_path / "b", expected=1)

    with pytest.raises(ReconcilerError, match="holds a backup already"):
        asyncio.run(go())


def test_default_directory_is_under_the_project() -> None:
    from datetime import UTC, datetime

    d = default_backup_dir(Path("/p"), "prod/eu 1", datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC))
    assert d == Path("/p/.reconciler/backups/20260501T120000Z-prod-eu-1")


@pytest.mark.parametrize("seed", fault_seeds())
def test_backup_under_faults_is_whole(tmp_path: Path, seed: int) -> None:
    """30% 429/503 and dropped connections on the list reads: the backup still holds each record once."""
    from reconciler.sandbox.testing import running_sandbox
    from tests.conftest import profile_settings

    settings = profile_settings("pessimistic", faults="429=0.1,503=0.1,drop=0.1", fault_seed=seed,
                                retry_after_s=0.0)
    with running_sandbox(settings) as sb:
        async def go() -> Any:
            async with client_of(sb, max_retries=12) as c:
                schema = await create_orders(c)
                seed_orders(sb, schema, 1500, 700)
                return await backup_records(c, schema, ["order-instructions"], tmp_path / "b", expected=700)

        backup = asyncio.run(go())
        assert any(e.fault for e in sb.traffic.log)
    recs = lines(tmp_path / "b" / "online-order.order-instructions.ndjson")
    assert backup.total == 700 and len({r["id"] for r in recs}) == 700
