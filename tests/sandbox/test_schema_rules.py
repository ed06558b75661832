"""One case per schema validation rule: status code AND the §10 error body shape."""

from __future__ import annotations

import re
from typing import Any

import pytest

from reconciler.sandbox import SandboxSettings

from .helpers import SCHEMAS, asgi_client, create_schema, field, quiet_settings, schema_body

POINTER = re.compile(r"^/data/attributes/[A-Za-z0-9_./-]+$")


def assert_422(r: Any, detail_part: str, pointer: str | None = None) -> None:
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/json"
    errors = r.json()["errors"]
    assert errors and set(errors[0]) == {"title", "detail", "source"}
    for e in errors:
        assert e["title"].startswith('Invalid value for field "')
        assert e["source"]["type"] == "pointer" and POINTER.match(e["source"]["value"])
    assert any(detail_part in e["detail"] for e in errors), errors
    if pointer:
        assert any(e["source"]["value"] == pointer for e in errors), errors


def opts(*values: str) -> list[dict[str, str]]:
    return [{"value": v} for v in values]


REL = {"id": "primary-contact", "labels": {"singular": "Contact", "plural": "Contacts"}, "namespace": "contacts"}

CREATE_CASES: dict[str, tuple[dict[str, Any], str, str | None]] = {
    "slug charset": (schema_body("Bad_Slug"), "Schema slug must be", "/data/attributes/schema/slug"),
    "slug too long": (schema_body("a" * 65), "at most 64", "/data/attributes/schema/slug"),
    "slug missing": ({"schema": {"labels": {"singular": "A", "plural": "As"}}}, "slug must be provided", None),
    "schema labels missing": ({"schema": {"slug": "x"}}, "Schema must provide labels", None),
    "field id charset": (schema_body(fields=[field("bad id")]), "must be 1-64", "/data/attributes/schema/fields/id"),
    "field id too long": (schema_body(fields=[field("f" * 65)]), "must be 1-64", None),
    "field ids -/_ twins": (schema_body(fields=[field("a-b"), field("a_b", singular="Other")]),
                            "ids must be unique", None),
    "field ids differ in case": (schema_body(fields=[field("ab"), field("AB", singular="Other")]),
                                 "ids must be unique", None),
    "field labels missing": (schema_body(fields=[{"id": "x", "type": "text"}]), "Schema fields must provide labels",
                             "/data/attributes/schema/fields/labels"),
    "field singular labels clash": (
        schema_body(fields=[field("a", singular="Name"), field("b", singular="NAME")]),
        "labels must be unique", None),
    "field plural labels clash": (
        schema_body(fields=[field("a", singular="Name"),
                            {**field("b", singular="Other"), "labels": {"singular": "Other", "plural": "names"}}]),
        "labels must be unique", None),
    "unknown type": (schema_body(fields=[field("a", "boolean")]), "not supported", None),
    "scale on text": (schema_body(fields=[field("a", scale=2)]), "scale is only allowed", None),
    "defaultCurrency on number": (schema_body(fields=[field("a", "number", defaultCurrency="USD")]),
                                  "defaultCurrency is only allowed", None),
    "bad currency code": (schema_body(fields=[field("a", "currency", defaultCurrency="dollars")]),
                          "currency code", None),
    "options on text": (schema_body(fields=[field("a", options=opts("x"))]), "options are only allowed", None),
    "dropdown without options": (schema_body(fields=[field("a", "dropdown")]), "must provide options", None),
    "multiselect empty options": (schema_body(fields=[field("a", "multiselect", options=[])]),
                                  "must provide options", None),
    "duplicate option values": (schema_body(fields=[field("a", "dropdown", options=opts("x", "x"))]),
                                "must be unique", None),
    "hasMany true": (schema_body(relationships=[{**REL, "hasMany": True}]),
                     "Relationship hasMany value should be set to false",
                     "/data/attributes/schema/relationships/hasMany"),
    "unknown namespace": (schema_body(relationships=[{**REL, "namespace": "widgets"}]), "namespace", None),
    "relationship labels missing": (schema_body(relationships=[{"id": "r", "namespace": "deals"}]),
                                    "must provide labels", None),
}


@pytest.mark.parametrize("case", list(CREATE_CASES))
def test_create_rule(case: str) -> None:
    body, detail, pointer = CREATE_CASES[case]
    with asgi_client() as c:
        assert_422(c.post(SCHEMAS, json=body), detail, pointer)
        assert c.get(SCHEMAS).json()["meta"]["total"] == 0


def test_slug_must_be_unique() -> None:
    with asgi_client() as c:
        create_schema(c, slug="orders")
        r = c.post(SCHEMAS, json=schema_body("orders"))
        assert_422(r, "Schema slug must be unique", "/data/attributes/schema/slug")
        assert r.json()["errors"][0]["title"] == 'Invalid value for field "schema.slug"'


def test_accepted_shapes_and_ignored_keys() -> None:
    with asgi_client() as c:
        s = create_schema(c, slug="ok", name="Go SDK name", fields=[
            field("n", "number", scale=2, isRequired=True, slug="n"), field("d", "decimal", scale=2),
            field("m", "multiselect", options=opts("a", "b")), field("c", "currency", defaultCurrency="EUR"),
            field("req", "date", required=True)],
            relationships=[{**REL, "namespace": "deals", "id": "deal"}])
        assert "name" not in s
        assert [f["required"] for f in s["fields"]] == [False, False, False, False, True]
        other = create_schema(c, slug="other", relationships=[{**REL, "id": "ok", "namespace": "ok"},
                                                              {**REL, "id": "by-id", "namespace": s["id"]}])
        assert [r["namespace"] for r in other["relationships"]] == ["ok", s["id"]]


def test_treat_is_required_switch() -> None:
    with asgi_client(quiet_settings(treat_is_required=True)) as c:
        s = create_schema(c, fields=[field("a", isRequired=True)])
        assert s["fields"][0]["required"] is True


def test_caps() -> None:
    with asgi_client(quiet_settings(max_fields=1, max_schemas=1)) as c:
        assert_422(c.post(SCHEMAS, json=schema_body(fields=[field("a"), field("b")])), "at most 1 fields")
        create_schema(c, slug="one")
        assert_422(c.post(SCHEMAS, json=schema_body("two")), "at most 1 schemas")


def _put(c: Any, sid: str, body: dict[str, Any], **params: str) -> Any:
    return c.put(f"{SCHEMAS}/{sid}", json={"schema": body}, params=params)


UPDATE_CASES: dict[str, tuple[dict[str, Any], str]] = {
    "type change": ({"fields": [{"id": "num", "type": "text"}]}, "type cannot be changed"),
    "underscore twin of an existing id": ({"fields": [field("pick_one", singular="New")]}, "ids must be unique"),
    "option removed": ({"fields": [{"id": "pick-one", "options": opts("a")}]}, "cannot be renamed or removed"),
    "scale on a dropdown": ({"fields": [{"id": "pick-one", "scale": 1}]}, "scale is only allowed"),
    "labels clash with another field": ({"fields": [{"id": "num", "labels": {"singular": "pick one",
                                                                               "plural": "x"}}]},
                                        "labels must be unique"),
    "slug taken": ({"slug": "taken"}, "Schema slug must be unique"),
    "hasMany true": ({"relationships": [{**REL, "hasMany": True}]}, "hasMany value should be set to false"),
    "namespace change": ({"relationships": [{"id": "primary-contact", "namespace": "deals"}]}, "cannot be changed"),
}


def _base(c: Any) -> dict[str, Any]:
    create_schema(c, slug="taken")
    return create_schema(c, slug="base", fields=[field("num", "number"),
                                                 field("pick-one", "dropdown", options=opts("a", "b"))],
                         relationships=[REL])


@pytest.mark.parametrize("case", list(UPDATE_CASES))
def test_update_rule(case: str) -> None:
    body, detail = UPDATE_CASES[case]
    with asgi_client() as c:
        s = _base(c)
        assert_422(_put(c, s["id"], body), detail)
        assert c.get(f"{SCHEMAS}/{s['id']}").json()["schema"] == s  # nothing changed


def test_update_merges_and_options_are_append_only() -> None:
    with asgi_client() as c:
        s = _base(c)
        old_ids = {o["value"]: o["id"] for o in s["fields"][1]["options"]}
        r = _put(c, s["id"], {"description": "new", "fields": [
            {"id": "pick-one", "options": [{"id": "whatever", "value": "b"}, {"value": "a"}, {"value": "c"}],
             "required": True},
            field("extra")]})
        assert r.status_code == 200, r.text
        out = r.json()["schema"]
        assert out["description"] == "new" and out["updatedTimestamp"] > s["updatedTimestamp"]
        assert [f["id"] for f in out["fields"]] == ["num", "pick-one", "extra"]  # omitted "num" kept
        pick = out["fields"][1]
        assert pick["required"] is True
        assert {o["value"]: o["id"] for o in pick["options"]}["a"] == old_ids["a"]
        assert {o["value"] for o in pick["options"]} == {"a", "b", "c"}
        assert out["relationships"] == s["relationships"]


def test_lenient_options_keep_omitted_ones() -> None:
    with asgi_client(quiet_settings(options_strict=False)) as c:
        s = _base(c)
        r = _put(c, s["id"], {"fields": [{"id": "pick-one", "options": opts("c")}]})
        assert [o["value"] for o in r.json()["schema"]["fields"][1]["options"]] == ["a", "b", "c"]


@pytest.mark.parametrize("how", ["header", "query"])
def test_validate_only(how: str) -> None:
    with asgi_client() as c:
        s = _base(c)
        body = {"schema": {"fields": [field("extra")]}}
        if how == "header":
            r = c.put(f"{SCHEMAS}/{s['id']}", json=body, headers={"validateOnly": "true"})
        else:
            r = c.put(f"{SCHEMAS}/{s['id']}", json=body, params={"validateOnly": "true"})
        assert r.status_code == 200 and r.json()["schema"]["fields"][-1]["id"] == "extra"
        assert r.json()["schema"]["updatedTimestamp"] == s["updatedTimestamp"]
        assert c.get(f"{SCHEMAS}/{s['id']}").json()["schema"] == s
        bad = c.put(f"{SCHEMAS}/{s['id']}", json={"schema": {"fields": [{"id": "num", "type": "text"}]}},
                    params={"validateOnly": "true"})
        assert_422(bad, "type cannot be changed")


def test_field_delete_reserves_the_id_and_hides_values() -> None:
    with asgi_client() as c:
        s = _base(c)
        rec = c.post(f"/api/3/customObjects/records/{s['id']}", json={"record": {"fields": [
            {"id": "num", "value": 3}, {"id": "pick-one", "value": "a"}]}}).json()["record"]
        r = c.delete(f"{SCHEMAS}/{s['id']}/fields/num")
        assert r.status_code == 202
        assert [f["id"] for f in r.json()["schema"]["fields"]] == ["pick-one"]
        full = c.get(f"{SCHEMAS}/{s['id']}", params={"showFields": "all"}).json()["schema"]
        assert full["fields"][0] == {**s["fields"][0], "status": "marked_for_deletion"}
        got = c.get(f"/api/3/customObjects/records/{s['id']}/{rec['id']}").json()["record"]
        assert got["fields"] == [{"id": "pick-one", "value": "a"}]
        assert_422(_put(c, s["id"], {"fields": [field("num", "number")]}), "cannot be reused")
        assert_422(_put(c, s["id"], {"fields": [field("pick_one", singular="Y")]}), "ids must be unique")
        assert c.delete(f"{SCHEMAS}/{s['id']}/fields/num").status_code == 404
        c.app.state.sandbox.store.purge_deleted_fields()
        assert _put(c, s["id"], {"fields": [field("num", "number")]}).status_code == 200
        got = c.get(f"/api/3/customObjects/records/{s['id']}/{rec['id']}").json()["record"]
        assert got["fields"] == [{"id": "pick-one", "value": "a"}]  # old values gone with the purge


def test_public_and_child_schemas() -> None:
    with asgi_client() as c:
        r = c.post(f"{SCHEMAS}/public", json=schema_body("tickets", relationships=[REL]))
        assert_422(r, "appId must be provided")
        r = c.post(f"{SCHEMAS}/public", json=schema_body("tickets", appId="abc123", relationships=[REL]))
        assert r.status_code == 200, r.text
        pub = r.json()["schema"]
        assert pub["visibility"] == "public" and pub["slug"] == "app-abc123-tickets" and pub["appId"] == "abc123"
        assert_422(c.delete(f"{SCHEMAS}/{pub['id']}/fields/name"), "only be deleted on private")
        r = c.post(f"{SCHEMAS}/{pub['id']}/child")
        assert r.status_code == 200
        child = r.json()["schema"]
        assert child["visibility"] == "private" and child["parentId"] == pub["id"]
        assert child["customized"] is False and child["appId"] == "abc123"
        assert all(f["inherited"] for f in child["fields"]) and all(x["inherited"] for x in child["relationships"])
        assert_422(c.delete(f"{SCHEMAS}/{child['id']}/fields/name"), "only be deleted on private")
        assert_422(_put(c, child["id"], {"fields": [{"id": "name", "labels": {"singular": "N", "plural": "Ns"}}]}),
                   "inherited")
        r = _put(c, child["id"], {"fields": [field("mine")]})
        assert r.status_code == 200 and r.json()["schema"]["customized"] is True
        assert r.json()["schema"]["fields"][-1]["inherited"] is False
        assert c.post(f"{SCHEMAS}/{pub['id']}/child").status_code == 422  # one child per parent
        assert c.post(f"{SCHEMAS}/00000000-0000-0000-0000-000000000000/child").status_code == 404


def test_settings_default_values() -> None:
    s = SandboxSettings()
    assert (s.token, s.rate_limit, s.rate_limit_status, s.options_strict, s.treat_is_required) == (
        "sandbox-token", 5.0, 429, True, False)
