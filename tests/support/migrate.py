"""A schema with a text field of amounts to migrate into a number field (issue 16, acceptance 2-4):
its files before and during the migration, 1,000 seeded records (20 of them malformed), and what a
test reads back."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any

from reconciler.client import Client
from reconciler.loading import load_file
from reconciler.model import Schema
from reconciler.records.api import Record, list_pages

SLUG = "invoice"
OLD = "amount-text"
NEW = "amount"
RECORDS_PATH = "/api/3/customObjects/records/"

HEAD = """apiVersion: reconciler/v1
kind: CustomObjectSchema
slug: invoice
labels: {singular: Invoice, plural: Invoices}
fields:
- id: invoice-number
  type: number
  labels: {singular: Invoice Number, plural: Invoice Numbers}
  scale: 0
- id: memo
  type: text
  labels: {singular: Memo, plural: Memos}
"""
OLD_FIELD = """- id: amount-text
  type: text
  labels: {singular: Amount Text, plural: Amount Texts}
"""
NEW_FIELD = """- id: amount
  type: number
  labels: {singular: Amount, plural: Amounts}
  scale: 2
  migrate_from: amount-text
  convert: text-to-number
"""
TAIL = """relationships:
- id: primary-contact
  namespace: contacts
  labels: {singular: Primary Contact, plural: Primary Contacts}
"""
#: the schema before the migration; during it (expand: both fields); after it (contract)
BEFORE = HEAD + OLD_FIELD + TAIL
EXPAND = HEAD + OLD_FIELD + NEW_FIELD + TAIL
CONTRACT = HEAD + NEW_FIELD + TAIL

#: malformed amounts: what text-to-number refuses (and why a reader might not)
MALFORMED = ["12,5", "abc", "1e3", "12.345", "$5", "1 000", "NaN", "--1", "0x10", "1.2.3"]


def amount_text(i: int) -> str:
    """Record ``i``'s amount as text: every 50th malformed (20 of 1,000), the rest decimals."""
    if i % 50 == 7:
        return MALFORMED[(i // 50) % len(MALFORMED)]
    return f"{i * 3 % 997}.{i % 100:02d}" if i % 3 else str(i)


def expected_amount(text: str) -> Any:
    d = Decimal(text)
    return int(d) if d == d.to_integral_value() else float(d)


async def create_invoice(client: Client, tmp: Path) -> Schema:
    path = tmp / "invoice-before.yaml"
    path.write_text(BEFORE, encoding="utf-8")
    return await client.create_schema(load_file(path))


def seed_invoices(store: Any, schema: Schema, count: int = 1000, contact: str | None = None) -> None:
    """``count`` records straight into the sandbox's store (no HTTP): each with an externalId but
    every 4th, a memo on every other, a contact on every 5th when ``contact`` is given."""
    items = []
    for i in range(count):
        fields: dict[str, Any] = {"invoice-number": i, OLD: amount_text(i)}
        if i % 2:
            fields["memo"] = f"memo {i} — ünïcode"
        item: dict[str, Any] = {"fields": fields}
        if i % 4:
            item["externalId"] = f"inv-{i}"
        if contact is not None and i % 5 == 0:
            item["relationships"] = {"primary-contact": [contact]}
        items.append(item)
    assert schema.id is not None
    assert store.seed_records(schema.id, items) == count


async def all_records(client: Client, schema_id: str) -> dict[str, Record]:
    return {str(r.id): r for page in [p async for p in list_pages(client, schema_id)] for r in page.records}


def read_all(url: str, token: str, schema_id: str) -> dict[str, Record]:
    async def go() -> dict[str, Record]:
        async with Client(url, token, rate=None) as c:
            return await all_records(c, schema_id)

    return asyncio.run(go())


def check_copied(before: dict[str, Record], after: dict[str, Record]) -> int:
    """Every record as it was but for the new field, which holds the converted amount where the
    old one converts and nothing where it does not. Returns how many hold a converted value."""
    assert set(after) == set(before), "records were created or deleted"
    copied = 0
    for rid, old in before.items():
        now = after[rid]
        assert [f for f in now.fields if f.id != NEW] == old.fields, rid
        assert now.relationships == old.relationships and now.external_id == old.external_id, rid
        text = old.value_of(OLD)
        if text in MALFORMED:
            assert not now.has(NEW), rid
            continue
        assert now.value_of(NEW) == expected_amount(text), (rid, text, now.value_of(NEW))
        copied += 1
    return copied


def record_posts(log: Any) -> int:
    return sum(1 for e in log if e.method == "POST" and e.path.startswith(RECORDS_PATH))
