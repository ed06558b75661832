"""Field migration, expand/contract (issue 16, acceptance 2 and the contract step), over real HTTP
in both profiles: 1,000 records with amounts as text, 20 malformed; ``migrate_from`` with
``text-to-number``. The plan counts 980 convertible and 20 not (sampled), apply copies the 980 with
one upsert each and nothing else changes, a re-run copies none, and once the old field leaves the
files its delete is planned with the copy said to be complete."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from reconciler.records.migrate import journal_path
from tests.conftest import TOKEN, Cli
from tests.support.migrate import (
    CONTRACT,
    EXPAND,
    NEW,
    OLD,
    check_copied,
    create_invoice,
    read_all,
    record_posts,
    seed_invoices,
)
from tests.support.records import client_of


def _setup(sandbox: Any, tmp: Path, count: int = 1000) -> str:
    async def go() -> str:
        async with client_of(sandbox) as c:
            schema = await create_invoice(c, tmp)
            contact = sandbox.store.save_contact({"email": "c@example.com"})["id"]
            seed_invoices(sandbox.store, schema, count, contact=str(contact))
            assert schema.id is not None
            return schema.id

    return asyncio.run(go())


def test_migrate_text_to_number_copies_980_once_then_nothing(cli: Cli, sandbox: Any, tmp_path: Path) -> None:
    schema_id = _setup(sandbox, tmp_path)
    before = read_all(sandbox.url, TOKEN, schema_id)
    cli.write("invoice.yaml", EXPAND)

    r = cli("plan", "--rate", "100")
    assert r.code == 0, r.err
    assert '+ field "amount" (number scale 2)' in r.out
    assert '» copy "amount-text" → "amount": 980 records, ~' in r.out
    assert "at 100 req/s, conversion text-to-number" in r.out
    assert "cannot convert 20 values (not copied): '12,5' (not a number), 'abc' (not a number)," in r.out
    assert "'12.345' (more than 2 decimals)" in r.out
    assert "DL103 copy field invoice.amount-text -> amount (text-to-number): values it cannot convert are not " \
           "copied: 20 of 1,000 records hold a value it cannot convert" in r.out
    assert "Plan: 1 to add, 1 to change, 0 to destroy." in r.out
    r = cli("plan", "--rate", "100", "--format", "json")
    copy = next(c for c in json.loads(r.out)["changes"] if c["kind"] == "copy-field")
    assert copy["records"]["records"] == 1000 and copy["records"]["convertible"] == 980
    assert copy["records"]["to_copy"] == 980 and copy["records"]["unconvertible"] == 20
    assert len(copy["records"]["samples"]) == 5

    posts = record_posts(sandbox.traffic.log)
    r = cli("apply", "--auto-approve", "--rate", "100")
    assert r.code == 3, r.out + r.err  # the 20 values lost to the conversion need --allow-data-loss
    assert "DL103 copy field invoice.amount-text -> amount: loses data" in r.err
    assert record_posts(sandbox.traffic.log) == posts

    r = cli("apply", "--auto-approve", "--allow-data-loss", "--rate", "100")
    assert r.code == 0, r.out + r.err
    assert "Apply complete!" in r.out
    assert record_posts(sandbox.traffic.log) - posts == 980  # one upsert per converted record, no other
    assert check_copied(before, read_all(sandbox.url, TOKEN, schema_id)) == 980
    journal = journal_path(cli.workdir / ".reconciler" / "migrations" / f"127.0.0.1-{sandbox.url.rsplit(':', 1)[1]}",
                           "invoice", NEW)
    lines = [json.loads(x) for x in journal.read_text(encoding="utf-8").splitlines()]
    assert sum(1 for x in lines if x.get("outcome") == "copied") == 980
    assert lines[-1]["complete"] and lines[-1]["new_count"] == 980
    assert journal.stat().st_mode & 0o777 == 0o600

    # the copy is complete: no copy planned, a note says so
    r = cli("plan", "--rate", "100")
    assert r.code == 0, r.err
    assert "» copy" not in r.out
    assert f"field invoice.{NEW}: the copy from {OLD} is complete: 980 records hold the converted value; 20 " \
           "values not convertible, not copied" in r.out
    assert "No changes. The account matches the files." in r.out

    # a re-run (counts not asked for: the copy is planned, reads, and writes nothing)
    posts = record_posts(sandbox.traffic.log)
    r = cli("apply", "--auto-approve", "--allow-data-loss", "--rate", "100")
    assert r.code == 0, r.out + r.err
    assert record_posts(sandbox.traffic.log) == posts

    # contract: the old field leaves the files; its delete is planned, the copy said to be complete
    cli.write("invoice.yaml", CONTRACT)
    r = cli("plan", "--rate", "100")
    assert r.code == 0, r.err
    assert '- field "amount-text" (text)' in r.out
    assert "DL102 delete field invoice.amount-text: 1,000 of 1,000 records hold a value that will be lost" in r.out
    assert "» copy" not in r.out
    assert f"the copy from {OLD} is complete" in r.out

    # that delete gets a backup like any other: every one of the 1,000 old values
    r = cli("apply", "--auto-approve", "--allow-data-loss", "--rate", "100")
    assert r.code == 0, r.out + r.err
    assert f"Backup: 1,000 records of invoice.{OLD} in " in r.out
    backup = next(cli.workdir.glob(f".reconciler/backups/*/invoice/invoice.{OLD}.ndjson"))
    assert len(backup.read_text(encoding="utf-8").splitlines()) == 1000


def test_bad_migrations_are_file_errors_with_their_line(cli: Cli) -> None:
    bad = EXPAND.replace("convert: text-to-number", "convert: text-to-date")
    path = cli.write("invoice.yaml", bad)
    r = cli("validate")
    assert r.code == 1
    line = bad.splitlines().index("  convert: text-to-date") + 1
    assert f"{path.name}:{line}:" in r.err and "unknown conversion 'text-to-date'" in r.err
    assert "text-to-number (text -> number)" in r.err  # names the pairs that exist
    other = EXPAND.replace("type: number\n  labels: {singular: Amount", "type: dropdown\n  options: [A]\n"
                           "  labels: {singular: Amount").replace("  scale: 2\n  migrate_from", "  migrate_from")
    cli.write("invoice.yaml", other)
    r = cli("validate")
    assert r.code == 1 and "convert: text-to-number is text -> number, but the fields are text -> dropdown" in r.err
    cli.write("invoice.yaml", EXPAND.replace("migrate_from: amount-text", "migrate_from: amount"))
    r = cli("validate")
    assert r.code == 1 and "migrate_from names the field itself" in r.err


def test_a_saved_plan_copies_and_a_saved_plan_of_a_complete_copy_applies_as_nothing(cli: Cli, sandbox: Any,
                                                                                       tmp_path: Path) -> None:
    schema_id = _setup(sandbox, tmp_path, 60)
    before = read_all(sandbox.url, TOKEN, schema_id)
    cli.write("invoice.yaml", EXPAND)
    assert cli("plan", "--rate", "100", "--out", "plan.json").code == 0
    r = cli("apply", "plan.json", "--allow-data-loss", "--rate", "100")
    assert r.code == 0 and "Apply complete!" in r.out, r.out + r.err
    assert check_copied(before, read_all(sandbox.url, TOKEN, schema_id)) == 58  # 2 of 60 malformed
    # planned after the copy: complete, so not in the plan; applying that plan re-plans the same
    assert cli("plan", "--rate", "100", "--out", "done.json").code == 0
    posts = record_posts(sandbox.traffic.log)
    r = cli("apply", "done.json", "--rate", "100")
    assert r.code == 0, r.out + r.err
    assert record_posts(sandbox.traffic.log) == posts
