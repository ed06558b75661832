"""Shared pieces of the web interface's tests: the seed guide's schema and record, hostile values."""

from __future__ import annotations

from typing import Any

import httpx

SCHEMAS = "/api/3/customObjects/schemas"
XSS_LABEL = "<script>alert(1)</script>"
XSS_VALUE = '"><img src=x onerror=alert(1)>'


def f(fid: str, ftype: str = "text", singular: str | None = None, **extra: Any) -> dict[str, Any]:
    singular = singular or fid.replace("-", " ").title()
    return {"id": fid, "type": ftype, "labels": {"singular": singular, "plural": singular + "s"}, **extra}


def create_schema(client: httpx.Client, slug: str, fields: list[dict[str, Any]], singular: str = "Thing",
                  contacts: bool = True) -> dict[str, Any]:
    rels = [{"id": "primary-contact", "namespace": "contacts",
             "labels": {"singular": "Primary Contact", "plural": "Primary Contacts"}}] if contacts else []
    body = {"schema": {"slug": slug, "labels": {"singular": singular, "plural": singular + "s"},
                       "fields": fields, "relationships": rels}}
    r = client.post(SCHEMAS, json=body)
    assert r.status_code == 201, r.text
    return dict(r.json()["schema"])


def sync_contact(client: httpx.Client, email: str, first: str = "Jane", last: str = "Doe") -> str:
    r = client.post("/api/3/contact/sync", json={"contact": {"email": email, "firstName": first, "lastName": last}})
    assert r.status_code in (200, 201), r.text
    return str(r.json()["contact"]["id"])


def upsert(client: httpx.Client, schema_id: str, fields: dict[str, Any], contact_id: str | None = None,
           external_id: str | None = None) -> dict[str, Any]:
    record: dict[str, Any] = {"fields": [{"id": k, "value": v} for k, v in fields.items()]}
    if contact_id is not None:
        record["relationships"] = {"primary-contact": [int(contact_id)]}
    if external_id is not None:
        record["externalId"] = external_id
    r = client.post(f"/api/3/customObjects/records/{schema_id}", json={"record": record})
    assert r.status_code == 201, r.text
    return dict(r.json()["record"])


