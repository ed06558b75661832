"""The seed guide replayed over real HTTP.

The create-schema body below is OUR RECONSTRUCTION of the request in ActiveCampaign's "Custom
Objects API Guide" (fields sent with ``isRequired`` and a ``slug``, client-chosen option ids), not a
verbatim copy.
"""

from __future__ import annotations

import re
import uuid

import httpx

from reconciler.sandbox import running_sandbox
from tests.support.guide import guide_record

from .helpers import SCHEMAS, quiet_settings

TS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d+Z$")


def _f(fid: str, ftype: str, singular: str, plural: str, **extra: object) -> dict:
    return {"id": fid, "labels": {"singular": singular, "plural": plural}, "type": ftype,
            "isRequired": True, "slug": fid, **extra}


ONLINE_ORDER = {
    "schema": {
        "slug": "online-order",
        "labels": {"singular": "Online Order", "plural": "Online Orders"},
        "description": "Online orders from the web shop",
        "fields": [
            _f("order-number", "number", "Order Number", "Order Numbers", scale=0),
            _f("order-date", "datetime", "Order Date", "Order Dates"),
            _f("order-instructions", "textarea", "Order Instructions", "Order Instructions List"),
            _f("order-total", "currency", "Order Total", "Order Totals", defaultCurrency="USD"),
            _f("order-link", "text", "Order Link", "Order Links"),
            _f("order-ship-status", "dropdown", "Shipping Status", "Shipping Statuses",
               options=[{"id": "received", "value": "Received"}, {"id": "processing", "value": "Processing"},
                        {"id": "shipped", "value": "Shipped"}]),
        ],
        "relationships": [{"id": "primary-contact", "labels": {"singular": "Primary Contact",
                                                               "plural": "Primary Contacts"},
                           "namespace": "contacts", "hasMany": False}],
    }
}


def test_seed_guide_flow() -> None:
    with running_sandbox(quiet_settings()) as sb, httpx.Client(base_url=sb.url, headers=sb.headers) as c:
        r = c.post(SCHEMAS, json=ONLINE_ORDER)
        assert r.status_code == 201
        assert r.headers["content-type"] == "application/json"
        s = r.json()["schema"]
        uuid.UUID(s["id"])
        assert s["slug"] == "online-order" and s["visibility"] == "private" and s["customized"] is False
        assert TS.match(s["createdTimestamp"]) and TS.match(s["updatedTimestamp"])
        assert s["icons"] == {"default": "https://d226aj4ao1t61q.cloudfront.net/n9mayqo2d_customobject.png"}
        assert [f["id"] for f in s["fields"]] == [f["id"] for f in ONLINE_ORDER["schema"]["fields"]]
        for f in s["fields"]:
            assert f["required"] is False and f["inherited"] is False
            assert "slug" not in f and "isRequired" not in f
        by_id = {f["id"]: f for f in s["fields"]}
        assert by_id["order-number"]["scale"] == 0
        assert by_id["order-total"]["defaultCurrency"] == "USD"
        options = by_id["order-ship-status"]["options"]
        assert [o["value"] for o in options] == ["Received", "Processing", "Shipped"]
        for o in options:
            uuid.UUID(o["id"])
        assert s["relationships"] == [{"id": "primary-contact", "labels": {"singular": "Primary Contact",
                                                                           "plural": "Primary Contacts"},
                                       "namespace": "contacts", "hasMany": False, "inherited": False}]

        r = c.post("/api/3/contact/sync", json={"contact": {"email": "jane@example.com", "firstName": "Jane"}})
        assert r.status_code == 201
        contact_id = r.json()["contact"]["id"]
        assert isinstance(contact_id, str)
        assert c.post("/api/3/contact/sync", json={"contact": {"email": "jane@example.com"}}).status_code == 200

        records = f"/api/3/customObjects/records/{s['id']}"
        r = c.post(records, json=guide_record(contact_id, "Received"))
        assert r.status_code == 201
        first = r.json()["record"]
        assert first["externalId"] == "online-order-1234" and first["schemaId"] == s["id"]
        assert first["relationships"] == {"primary-contact": [contact_id]}

        second_body = guide_record(contact_id, "Shipped")
        second_body["record"]["fields"] = [{"id": "order-ship-status", "value": "Shipped"},
                                           {"id": "order-number", "value": 1234}]
        r = c.post(records, json=second_body)
        assert r.status_code == 201
        second = r.json()["record"]
        assert second["id"] == first["id"]
        assert second["fields"] == [{"id": "order-ship-status", "value": "Shipped"},
                                    {"id": "order-number", "value": 1234}]  # fully replaced

        for path in (f"{records}/external/online-order-1234",
                     f"/api/3/records/{s['id']}/external/online-order-1234"):
            r = c.get(path)
            assert r.status_code == 200, path
            assert r.json()["record"]["id"] == first["id"]
            assert r.json()["record"]["relationships"] == {"primary-contact": [contact_id]}

        r = c.delete(f"{records}/external/online-order-1234")
        assert r.status_code == 202 and r.content == b""
        assert r.headers["content-type"].startswith("text/plain")
        r = c.get(f"{records}/external/online-order-1234")
        assert r.status_code == 404 and r.json() == {"message": "Not Found"}
