"""Record and schema lists: every filter operator on fields and root properties, blank/not_blank
counts, ordering, paging and the limit clamp (U21, U22)."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.sandbox.store import Store

from .helpers import SCHEMAS, asgi_client, create_schema, field, quiet_settings

FIELDS = [field("name"), field("amount", "number"), field("when", "datetime"), field("day", "date"),
          field("tags", "multiselect", options=[{"value": "red"}, {"value": "blue"}]),
          field("state", "dropdown", options=[{"value": "open"}, {"value": "closed"}])]
REL = {"id": "primary-contact", "labels": {"singular": "Contact", "plural": "Contacts"}, "namespace": "contacts"}
ROWS = [
    {"externalId": "e1", "fields": {"name": "Apple pie", "amount": 10, "when": "2026-01-01T00:00:00Z",
                                    "day": "2026-01-01", "tags": ["red"], "state": "open"},
     "relationships": {"primary-contact": ["1"]}},
    {"externalId": "e2", "fields": {"name": "Banana", "amount": 20.5, "when": "2026-02-01T00:00:00+01:00",
                                    "day": "2026-02-01", "tags": ["red", "blue"]}},
    {"externalId": "e3", "fields": {"name": "", "amount": 30, "tags": []}},
    {"fields": {"name": "apple tart"}},
]


@pytest.fixture()
def listing() -> Any:
    with asgi_client() as c:
        s = create_schema(c, slug="lst", fields=FIELDS, relationships=[REL])
        store: Store = c.app.state.sandbox.store
        store.seed_records(s["id"], ROWS)
        yield c, f"/api/3/customObjects/records/{s['id']}"


CASES = [
    ("filters[fields.amount][eq]", "20.5", ["e2"]),
    ("filters[fields.amount]", "10", ["e1"]),
    ("filters[fields.amount][lt]", "20.5", ["e1"]),
    ("filters[fields.amount][lte]", "20.5", ["e1", "e2"]),
    ("filters[fields.amount][gt]", "10", ["e2", "e3"]),
    ("filters[fields.amount][gte]", "30", ["e3"]),
    ("filters[fields.amount][in]", "10,30", ["e1", "e3"]),
    ("filters[fields.name][contains]", "apple", ["e1", None]),
    ("filters[fields.name][contains]", "a*e", ["e1", None]),
    ("filters[fields.name][eq]", "Banana", ["e2"]),
    ("filters[fields.name][blank]", "true", ["e3"]),
    ("filters[fields.name][not_blank]", "true", ["e1", "e2", None]),
    ("filters[fields.tags][blank]", "", ["e3", None]),
    ("filters[fields.tags][eq]", "blue", ["e2"]),
    ("filters[fields.tags][in]", "red,blue", ["e1", "e2"]),
    ("filters[fields.state][not_blank]", "", ["e1"]),
    ("filters[fields.when][gt]", "2026-01-15T00:00:00Z", ["e2"]),
    ("filters[fields.when][lte]", "2026-01-01T01:00:00+01:00", ["e1"]),
    ("filters[fields.day][gte]", "2026-01-15", ["e2"]),
    ("filters[fields.day][blank]", "1", ["e3", None]),
    ("filters[externalId][eq]", "e2", ["e2"]),
    ("filters[externalId][in]", "e1,e3", ["e1", "e3"]),
    ("filters[externalId][contains]", "e", ["e1", "e2", "e3"]),
    ("filters[externalId][blank]", "", [None]),
    ("filters[createdTimestamp][gt]", "2000-01-01", ["e1", "e2", "e3", None]),
    ("filters[createdTimestamp][lt]", "2000-01-01T00:00:00Z", []),
    ("filters[relationships.primary-contact][eq]", "1", ["e1"]),
    ("filters[relationships.primary-contact][blank]", "", ["e2", "e3", None]),
]


@pytest.mark.parametrize(("key", "value", "expected"), CASES)
def test_record_filters(listing: Any, key: str, value: str, expected: list[str | None]) -> None:
    c, base = listing
    r = c.get(base, params={key: value})
    assert r.status_code == 200, r.text
    body = r.json()
    assert [rec.get("externalId") for rec in body["records"]] == expected
    assert body["meta"] == {"total": len(expected), "count": len(expected), "limit": 20, "offset": 0}


def test_filters_are_anded(listing: Any) -> None:
    c, base = listing
    r = c.get(base, params={"filters[fields.tags][eq]": "red", "filters[fields.amount][gt]": "15"})
    assert [x["externalId"] for x in r.json()["records"]] == ["e2"]


@pytest.mark.parametrize("params", [{"filters[fields.amount][like]": "1"}, {"filters[fields.nope]": "1"},
                                    {"filters[fields.amount][gt]": "ten"}, {"orders[externalId]": "UP"},
                                    {"filters[bogus]": "x"}, {"limit": "many"}])
def test_bad_queries_are_400(listing: Any, params: dict[str, str]) -> None:
    c, base = listing
    r = c.get(base, params=params)
    assert r.status_code == 400
    assert r.json()["errors"][0] == {"status": 400, "title": "Bad Request"}


def test_orders_and_paging(listing: Any) -> None:
    c, base = listing
    ids = lambda r: [x.get("externalId") for x in r.json()["records"]]  # noqa: E731
    assert ids(c.get(base, params={"orders[fields.amount]": "DESC"})) == ["e3", "e2", "e1", None]
    assert ids(c.get(base, params={"orders[externalId]": "asc"})) == [None, "e1", "e2", "e3"]
    assert ids(c.get(base, params={"orders[createdTimestamp]": "DESC"})) == [None, "e3", "e2", "e1"]
    r = c.get(base, params={"limit": 2, "offset": 1})
    assert ids(r) == ["e2", "e3"] and r.json()["meta"] == {"total": 4, "count": 2, "limit": 2, "offset": 1}
    assert c.get(base, params={"limit": 1000}).json()["meta"]["limit"] == 100
    assert c.get(base, params={"limit": -5, "offset": -1}).json()["meta"] == {"total": 4, "count": 1, "limit": 1,
                                                                              "offset": 0}


def test_limit_clamp_switch() -> None:
    with asgi_client(quiet_settings(limit_clamp=False)) as c:
        assert c.get(SCHEMAS, params={"limit": 101}).status_code == 400
        assert c.get(SCHEMAS, params={"limit": 100}).status_code == 200


def test_deleted_field_reads_as_blank(listing: Any) -> None:
    c, base = listing
    sid = base.rsplit("/", 1)[1]
    assert c.delete(f"{SCHEMAS}/{sid}/fields/amount").status_code == 202
    assert c.get(base, params={"filters[fields.amount][not_blank]": ""}).json()["meta"]["total"] == 0
    assert c.get(base, params={"filters[fields.amount][blank]": ""}).json()["meta"]["total"] == 4


def test_visibility_delay() -> None:
    with asgi_client(quiet_settings(list_visibility_delay_s=60)) as c:
        s = create_schema(c, slug="slow")
        base = f"/api/3/customObjects/records/{s['id']}"
        rec = c.post(base, json={"record": {"externalId": "x", "fields": []}}).json()["record"]
        assert c.get(base).json()["meta"]["total"] == 0
        assert c.get(f"{base}/{rec['id']}").status_code == 200


def test_schema_list_filters_orders_and_show_fields() -> None:
    with asgi_client() as c:
        a = create_schema(c, slug="bravo", relationships=[REL])
        c.put(f"{SCHEMAS}/{a['id']}", json={"schema": {"labels": {"singular": "bravo", "plural": "Bravos"}}})
        b = create_schema(c, slug="alpha", fields=[field("name"), field("gone")],
                          relationships=[{**REL, "id": "deal", "namespace": "deals"}])
        c.delete(f"{SCHEMAS}/{b['id']}/fields/gone")
        r = c.get(SCHEMAS)
        assert r.json()["meta"] == {"total": 2, "count": 2, "limit": 20, "offset": 0}
        assert [s["slug"] for s in r.json()["schemas"]] == ["bravo", "alpha"]
        slugs = lambda **p: [s["slug"] for s in c.get(SCHEMAS, params=p).json()["schemas"]]  # noqa: E731
        assert slugs(**{"orders[labels.singular]": "ASC"}) == ["bravo", "alpha"]  # "bravo" < "Thing"
        assert slugs(**{"orders[createdTimestamp]": "DESC"}) == ["alpha", "bravo"]
        assert slugs(**{"filters[relationships.id][eq]": "primary-contact",
                        "filters[relationships.namespace][eq]": "contacts"}) == ["bravo"]
        assert slugs(**{"filters[relationships.id][eq]": "deal",
                        "filters[relationships.namespace][eq]": "contacts"}) == []
        assert slugs(limit="1", offset="1") == ["alpha"]
        alpha = c.get(SCHEMAS, params={"filters[slug]": "alpha"}).json()["schemas"][0]
        assert [f["id"] for f in alpha["fields"]] == ["name"]
        alpha = c.get(SCHEMAS, params={"filters[slug]": "alpha", "showFields": "all"}).json()["schemas"][0]
        assert [f.get("status") for f in alpha["fields"]] == [None, "marked_for_deletion"]
        assert c.get(SCHEMAS, params={"filters[slug][regex]": "x"}).status_code == 400
