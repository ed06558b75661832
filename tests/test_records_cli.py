"""``reconciler records export|import|restore`` run in-process against a served sandbox (both profiles)."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from typing import Any

from reconciler.model import Schema
from reconciler.records.backup import backup_records
from reconciler.sandbox.testing import running_sandbox
from tests.conftest import TOKEN, Cli, profile_settings
from tests.support.records import client_of, create_orders, record_posts, seed_orders
from tests.test_records_restore import delete_and_recreate


def seeded(sb: Any, count: int, instructions: int) -> Schema:
    async def go() -> Schema:
        async with client_of(sb) as c:
            schema = await create_orders(c)
        seed_orders(sb, schema, count, instructions)
        return schema

    return asyncio.run(go())


def test_export_to_a_file_and_to_standard_output(cli: Cli, sandbox: Any) -> None:
    seeded(sandbox, 30, 8)
    r = cli("records", "export", "online-order", "--out", "a.ndjson")
    assert r.code == 0, r.err
    assert r.out.splitlines()[-1] == "Exported 30 records of online-order to a.ndjson."
    assert len((cli.workdir / "a.ndjson").read_text().splitlines()) == 30
    r = cli("records", "export", "online-order", "--format", "csv", "--filter", "order-instructions:not_blank")
    assert r.code == 0, r.err
    assert r.out.splitlines()[0].startswith("externalId,order-number,")
    assert len(list(csv.reader(io.StringIO(r.out)))) == 1 + 8 and "Exported 8 records of online-order to standard output." in r.err
    assert TOKEN not in r.out + r.err


def test_export_errors_are_one_line(cli: Cli, sandbox: Any) -> None:
    seeded(sandbox, 3, 1)
    for args, words in ((("nope",), "no schema nope in the account"),
                        (("online-order", "--filter", "order-total:near:1"), "expected FIELD:OP:VALUE"),
                        (("online-order", "--out", "missing/a.ndjson"), "does not exist")):
        r = cli("records", "export", *args)
        lines = [line for line in r.err.splitlines() if not line.startswith("Target:")]
        assert r.code == 1 and len(lines) == 1 and lines[0].startswith("Error:") and words in r.err, r.err
        assert "Traceback" not in r.err
    assert not (cli.workdir / "missing").exists()


def test_import_into_another_account_twice(cli: Cli, sandbox: Any) -> None:
    seeded(sandbox, 25, 5)
    assert cli("records", "export", "online-order", "--out", "a.ndjson").code == 0
    with running_sandbox(profile_settings("documented")) as other:
        async def make() -> None:
            async with client_of(other) as c:
                await create_orders(c)

        asyncio.run(make())
        r = cli("records", "import", "online-order", "a.ndjson", "--url", other.url, "--drop-relationships", "--rate", "100")
        assert r.code == 0, r.err
        assert r.out.splitlines()[-1] == "Imported a.ndjson into online-order: 25 created, 0 updated, 0 unchanged, 0 failed."
        posts = record_posts(other)
        r = cli("records", "import", "online-order", "a.ndjson", "--url", other.url)
        assert r.code == 0 and "0 created, 0 updated, 25 unchanged" in r.out
        assert record_posts(other) == posts
    r = cli("records", "import", "online-order", "absent.ndjson")
    assert r.code == 1 and "absent.ndjson: no such file" in r.err


def test_import_that_fails_for_some_records_exits_1(cli: Cli, sandbox: Any) -> None:
    seeded(sandbox, 2, 0)
    bad = {"externalId": "x1", "fields": [{"id": "order-number", "value": "not a number"}], "relationships": {}}
    (cli.workdir / "bad.ndjson").write_text(json.dumps(bad) + "\n")
    r = cli("records", "import", "online-order", "bad.ndjson")
    assert r.code == 1 and "1 record not imported; the first, x1:" in r.err
    assert "0 created" in r.out and len(r.err.strip().splitlines()) == 1  # the target line is on stdout


def test_restore_into_a_recreated_field(cli: Cli, sandbox: Any) -> None:
    schema = seeded(sandbox, 40, 11)
    out = cli.workdir / "backup"

    async def prepare() -> None:
        async with client_of(sandbox) as c:
            await backup_records(c, schema, ["order-instructions"], out, expected=11)
            await delete_and_recreate(c, schema)

    asyncio.run(prepare())
    r = cli("records", "restore", "backup", "--field", "order-instructions")
    assert r.code == 1 and "--field and --into go in pairs" in r.err
    r = cli("records", "restore", "backup", "--field", "order-instructions", "--into", "order-notes", "--rate", "100")
    assert r.code == 0, r.err
    assert r.out.splitlines()[-1] == ("Restored backup: 11 restored, 0 already held the value, 0 missing, 0 failed.")
    r = cli("records", "restore", "backup/manifest.json", "--field", "order-instructions", "--into", "order-notes")
    assert r.code == 0 and "0 restored" in r.out and "11 done in an earlier run" in r.out
    r = cli("records", "restore", "backup", "--field", "order-link", "--into", "order-notes")
    assert r.code == 1 and "the backup holds no field order-link" in r.err
    r = cli("records", "restore", "nowhere")
    assert r.code == 1 and "nowhere: no such backup directory" in r.err
