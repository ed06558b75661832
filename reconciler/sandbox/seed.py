"""What an account holds before anyone writes to it (``SandboxSettings.seed_unknown_type_schema``).

An app's public schema (S8 §6: installed apps bring public schemas; U24 slug ``app-{appId}-{slug}``)
with a field of a type outside the documented eight, ``boolean`` (S1: the type list is "still
being finalized"; S10 once claimed ``boolean``), beside ordinary fields, and a few records. It is
public so that, as on the real API, its fields cannot be deleted (U23) and a client must leave it
alone. The schema's content is ours (no public source shows such a schema).
"""

from __future__ import annotations

import uuid
from typing import Any

from reconciler.sandbox import clock
from reconciler.sandbox.store import Store

UNKNOWN_TYPE_SLUG = "app-42-event-ticket"


def _field(fid: str, ftype: str, singular: str, plural: str, **extra: Any) -> dict[str, Any]:
    return {"id": fid, "labels": {"singular": singular, "plural": plural}, "type": ftype, "required": False,
            "inherited": False, **extra}


#: The seeded objects are a day old: already there, visible in lists at once (list lag, U20).
AGE_NS = 86_400 * 1_000_000_000


def unknown_type_schema() -> dict[str, Any]:
    ts = clock.format_ns(clock.now_ns() - AGE_NS)
    return {
        "id": str(uuid.uuid4()), "slug": UNKNOWN_TYPE_SLUG, "visibility": "public", "customized": False,
        "labels": {"singular": "Event Ticket", "plural": "Event Tickets"},
        "description": "Tickets of the events app (an app's public schema)",
        "createdTimestamp": ts, "updatedTimestamp": ts, "appId": "42",
        "fields": [
            _field("ticket-code", "text", "Ticket Code", "Ticket Codes"),
            _field("event-date", "datetime", "Event Date", "Event Dates"),
            _field("vip", "boolean", "VIP", "VIPs", description="A type outside the documented eight"),
            _field("price", "currency", "Price", "Prices", defaultCurrency="USD"),
        ],
        "relationships": [{"id": "primary-contact", "labels": {"singular": "Contact", "plural": "Contacts"},
                           "namespace": "contacts", "hasMany": False, "inherited": False}],
    }


def seed_unknown_type_schema(store: Store) -> str:
    """Add the schema and 3 records unless the account already has its slug; returns its id."""
    with store.transaction():
        existing = next((d for d in store.list_schemas() if d["slug"] == UNKNOWN_TYPE_SLUG), None)
        if existing is not None:
            return str(existing["id"])
        doc = unknown_type_schema()
        store.put_schema(doc)
        store.seed_records(doc["id"], [
            {"externalId": f"ticket-{i}", "fields": {"ticket-code": f"T-{i:04d}", "event-date": "2026-06-01T19:00:00Z",
                                                     "vip": i == 1, "price": 25 * i}}
            for i in (1, 2, 3)
        ], at_ns=clock.now_ns() - AGE_NS)
        return str(doc["id"])
