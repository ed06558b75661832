"""Seeded record data for the records tests: the shipped ``orders.yaml`` schema created in a served
sandbox, records put straight into its store, and a client of it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reconciler.client import Client
from reconciler.loading import load_file
from reconciler.model import Schema

from .apply import NoSleep

ROOT = Path(__file__).resolve().parents[2]
ORDERS = ROOT / "schemas" / "orders.yaml"
SLUG = "online-order"
RECORDS_PATH = "/api/3/customObjects/records/"


def client_of(sb: Any, **kw: Any) -> Client:
    """A client of the served sandbox ``sb``: no limiter, retries that do not really sleep."""
    kw.setdefault("rate", None)
    kw.setdefault("sleep", NoSleep())
    return Client(sb.url, sb.settings.token, **kw)


async def create_orders(client: Client) -> Schema:
    return await client.create_schema(load_file(ORDERS))


def order(i: int, *, instructions: bool, contact: str | None = None, external: bool = True) -> dict[str, Any]:
    """The stored form of order ``i``: every required field, instructions on some, a contact on some."""
    fields: dict[str, Any] = {
        "order-number": i, "order-date": f"2026-01-{1 + i % 28:02d}T10:00:00Z",
        "order-ship-status": ("Received", "Processing", "Shipped")[i % 3],
        "order-total": 10 + i, "order-link": f"https://shop.example/r/{i}",
    }
    if instructions:
        fields["order-instructions"] = f"Leave at door {i}\nring twice — ünïcode"
    item: dict[str, Any] = {"fields": fields}
    if external:
        item["externalId"] = f"order-{i}"
    if contact is not None:
        item["relationships"] = {"primary-contact": [contact]}
    return item


def seed_orders(sb: Any, schema: Schema, count: int, with_instructions: int, *, contacts: int = 0,
                external: bool = True) -> None:
    """``count`` orders, the first ``with_instructions`` holding ``order-instructions`` (every
    seventh of the rest is spread between them, so the non-blank ones are not one block), the first
    ``contacts`` related to a contact that exists."""
    ids = [sb.store.save_contact({"email": f"c{i}@example.com"})["id"] for i in range(min(contacts, 3))]
    holders = set(range(0, with_instructions * 2, 2)) if with_instructions * 2 <= count else set(
        range(with_instructions))
    items = [order(i, instructions=i in holders, external=external,
                   contact=ids[i % len(ids)] if ids and i < contacts else None) for i in range(count)]
    assert sb.store.seed_records(schema.id, items) == count


def record_posts(sb: Any) -> int:
    """Record upserts the sandbox received (every attempt, answered or not)."""
    return sum(1 for e in sb.traffic.log if e.method == "POST" and e.path.startswith(RECORDS_PATH))
