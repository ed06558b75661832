"""The seed guide's record of an "Online Order" (the request body the guide sends), for
schemas/orders.yaml: one definition shared by the sandbox's and the web interface's tests."""

from __future__ import annotations

from typing import Any


def guide_record(contact_id: str, status: str = "Received") -> dict[str, Any]:
    """The guide's upsert body, pointing at ``contact_id``, with ``status`` as its ship status."""
    return {"record": {
        "externalId": "online-order-1234",
        "fields": [
            {"id": "order-number", "value": 1234},
            {"id": "order-date", "value": "2026-05-21T11:14:25Z"},
            {"id": "order-instructions", "value": "Leave at the door"},
            {"id": "order-total", "value": 99.5},
            {"id": "order-link", "value": "https://shop.example/orders/1234"},
            {"id": "order-ship-status", "value": status},
        ],
        "relationships": {"primary-contact": [int(contact_id)]},
    }}
