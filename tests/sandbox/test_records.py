"""Record upserts (§7.2 matrix, U12-U16), value rules, gets and deletes."""

from __future__ import annotations

from typing import Any

import pytest

from .helpers import asgi_client, create_schema, field, quiet_settings

REL = {"id": "primary-contact", "labels": {"singular": "Contact", "plural": "Contacts"}, "namespace": "contacts"}
FIELDS = [field("t", "text"), field("n", "number"), field("c", "currency"), field("d", "date"),
          field("dt", "datetime"), field("dd", "dropdown", options=[{"value": "x"}, {"value": "y"}]),
          field("ms", "multiselect", options=[{"value": "x"}, {"value": "y"}]), field("req", "text", required=True)]


def setup(c: Any) -> tuple[str, str]:
    s = create_schema(c, slug="recs", fields=FIELDS, relationships=[REL])
    contact = c.post("/api/3/contact/sync", json={"contact": {"email": "a@b.co"}}).json()["contact"]["id"]
    return f"/api/3/customObjects/records/{s['id']}", contact


def post(c: Any, base: str, **record: Any) -> Any:
    record.setdefault("fields", [])
    record["fields"] = [*record["fields"], {"id": "req", "value": "r"}]
    return c.post(base, json={"record": record})


def test_upsert_matrix() -> None:
    with asgi_client() as c:
        base, _ = setup(c)
        a = post(c, base, externalId="a").json()["record"]
        # 1: id and externalId match -> update
        assert post(c, base, id=a["id"], externalId="a").json()["record"]["id"] == a["id"]
        # 2: id matches, other externalId -> a NEW record
        b = post(c, base, id=a["id"], externalId="b").json()["record"]
        assert b["id"] != a["id"] and b["externalId"] == "b"
        # 3: id matches, externalId omitted -> update, externalId unchanged
        r3 = post(c, base, id=a["id"]).json()["record"]
        assert r3["id"] == a["id"] and r3["externalId"] == "a"
        # 4: unknown id, externalId matches -> update that record
        r4 = post(c, base, id="2b6b4ac0-0000-4000-8000-000000000000", externalId="b").json()["record"]
        assert r4["id"] == b["id"]
        # 5: neither matches -> new record, the client's id ignored
        r5 = post(c, base, id="2b6b4ac0-0000-4000-8000-000000000001", externalId="c")
        assert r5.status_code == 201 and r5.json()["record"]["id"] != "2b6b4ac0-0000-4000-8000-000000000001"
        assert c.get(base).json()["meta"]["total"] == 3


def test_values_are_coerced() -> None:
    with asgi_client() as c:
        base, _ = setup(c)
        rec = post(c, base, fields=[{"id": "t", "value": 12}, {"id": "n", "value": "12.5"}, {"id": "c", "value": 3},
                                    {"id": "d", "value": "2026-01-31"}, {"id": "dt", "value": "2026-01-31T10:00:00+02:00"},
                                    {"id": "dd", "value": "y"}, {"id": "ms", "value": "x"}]).json()["record"]
        values = {f["id"]: f["value"] for f in rec["fields"]}
        assert values == {"t": "12", "n": 12.5, "c": 3, "d": "2026-01-31", "dt": "2026-01-31T10:00:00+02:00",
                          "dd": "y", "ms": ["x"], "req": "r"}


BAD_VALUES = {
    "number": ("n", "twelve", "must be a number"),
    "currency bool": ("c", True, "must be a number"),
    "date": ("d", "31/01/2026", "YYYY-MM-DD"),
    "datetime": ("dt", "2026-01-31 10:00", "RFC 3339"),
    "dropdown": ("dd", "z", "dd cannot accept a value that is not defined in the schema"),
    "multiselect": ("ms", ["x", "z"], "ms cannot accept a value that is not defined in the schema"),
    "text object": ("t", {"a": 1}, "must be a string"),
    "unknown field": ("nope", 1, "is not a field of this schema"),
}


@pytest.mark.parametrize("case", list(BAD_VALUES))
def test_bad_values(case: str) -> None:
    fid, value, detail = BAD_VALUES[case]
    with asgi_client() as c:
        base, _ = setup(c)
        r = post(c, base, fields=[{"id": fid, "value": value}])
        assert r.status_code == 422
        (err,) = r.json()["errors"]
        assert err == {"title": f'Invalid value for field "{fid}"', "detail": err["detail"],
                       "source": {"type": "pointer", "value": f"/data/attributes/{fid}"}}
        assert detail in err["detail"]


def test_required_field_enforced() -> None:
    with asgi_client() as c:
        base, _ = setup(c)
        r = c.post(base, json={"record": {"fields": [{"id": "t", "value": "x"}]}})
        assert r.status_code == 422 and r.json()["errors"][0]["detail"] == "req is required"
        r = c.post(base, json={"record": {"fields": [{"id": "req", "value": ""}]}})
        assert r.status_code == 422


def test_relationships() -> None:
    with asgi_client() as c:
        base, contact = setup(c)
        rec = post(c, base, externalId="r", relationships={"primary-contact": [int(contact)]}).json()["record"]
        assert rec["relationships"] == {"primary-contact": [contact]}
        # U16: relationships kept when the key is absent
        assert post(c, base, externalId="r").json()["record"]["relationships"] == {"primary-contact": [contact]}
        r = post(c, base, relationships={"primary-contact": [999]})
        assert r.status_code == 422
        assert r.json()["errors"][0]["source"]["value"] == "/data/attributes/relationships/primary-contact"
        assert post(c, base, relationships={"deal": [1]}).status_code == 422
    with asgi_client(quiet_settings(lenient_contacts=True)) as c:
        base, _ = setup(c)
        assert post(c, base, relationships={"primary-contact": [999]}).status_code == 201


def test_get_delete_and_errors() -> None:
    with asgi_client() as c:
        base, _ = setup(c)
        rec = post(c, base, externalId="x").json()["record"]
        assert c.get(f"{base}/{rec['id']}").json()["record"] == rec
        assert c.put(f"{base}/{rec['id']}", json={}).status_code == 405
        assert c.patch(f"{base}/{rec['id']}", json={}).status_code == 405
        r = c.get(f"{base}/not-a-uuid")
        assert r.status_code == 400 and r.json() == {"errors": [{"status": 400, "title": "Bad Request"}]}
        r = c.delete(f"{base}/{rec['id']}")
        assert r.status_code == 202 and r.content == b"" and r.headers["content-type"].startswith("text/plain")
        assert c.get(f"{base}/{rec['id']}").json() == {"message": "Not Found"}
        assert c.delete(f"{base}/{rec['id']}").status_code == 404
        assert c.get("/api/3/customObjects/records/00000000-0000-0000-0000-000000000000").status_code == 404
        assert c.post("/api/3/customObjects/records/nope", json={"record": {}}).status_code == 404


def test_contact_sync_errors() -> None:
    with asgi_client() as c:
        r = c.post("/api/3/contact/sync", json={"contact": {"firstName": "x"}})
        assert r.status_code == 400
        assert r.json() == {"errors": [{"status": 400, "title": "Bad Request",
                                        "detail": "Contact email must be provided for sync"}]}
        r = c.post("/api/3/contact/sync", json={"contact": {"email": "nope"}})
        assert r.status_code == 422
        assert r.json() == {"errors": [{"title": "Contact Email Address is not valid.", "code": "email_invalid",
                                        "error": "must_be_valid_email_address",
                                        "source": {"pointer": "/data/attributes/email"}}]}
        first = c.post("/api/3/contact/sync", json={"contact": {"email": "j@x.io", "firstName": "J"}}).json()
        again = c.post("/api/3/contact/sync", json={"contact": {"email": "J@x.io", "lastName": "D"}})
        assert again.status_code == 200
        assert again.json()["contact"]["id"] == first["contact"]["id"]
        assert again.json()["contact"]["firstName"] == "J" and again.json()["contact"]["lastName"] == "D"


def test_schema_delete_removes_records() -> None:
    with asgi_client() as c:
        base, _ = setup(c)
        post(c, base)
        sid = base.rsplit("/", 1)[1]
        r = c.delete(f"/api/3/customObjects/schemas/{sid}")
        assert r.status_code == 200 and r.content == b"" and r.headers["content-type"].startswith("text/plain")
        assert c.get(base).status_code == 404
        assert c.delete(f"/api/3/customObjects/schemas/{sid}").status_code == 404
