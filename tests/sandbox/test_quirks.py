"""Every quirk of the registry under both of its values, the two profiles, and the registry itself.

Each quirk test is parametrised over the quirk's documented and pessimistic values (or, where the
two profiles agree, the profile value and another one). ``TESTED`` maps each quirk to its test, and
``test_every_quirk_has_a_test`` fails when a quirk is added without one.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from reconciler.sandbox import SandboxSettings, create_app
from reconciler.sandbox.quirks import BY_NAME, NOTES, PROFILES, QUIRKS, apply_quirks, parse_quirk, sources
from reconciler.sandbox.seed import UNKNOWN_TYPE_SLUG
from reconciler.sandbox.store import Store
from reconciler.sandbox.testing import running_sandbox

from .helpers import SCHEMAS, TOKEN, asgi_client, create_schema, field, quiet_settings

RECORDS = "/api/3/customObjects/records"
REL = {"id": "primary-contact", "labels": {"singular": "Contact", "plural": "Contacts"}, "namespace": "contacts"}
TESTED: dict[str, Callable[..., None]] = {}


def both(name: str, other: Any = None) -> Any:
    """Parametrise a test over the quirk's documented and pessimistic values (``other`` when they agree)."""
    quirk = BY_NAME[name]
    values = [quirk.documented, quirk.pessimistic if quirk.pessimistic != quirk.documented else other]
    assert values[1] is not None or other is None

    def mark(test: Callable[..., None]) -> Callable[..., None]:
        TESTED[name] = test
        return pytest.mark.parametrize("value", values, ids=[f"{name}={v}" for v in values])(test)

    return mark


@contextmanager
def sandbox(**overrides: Any) -> Iterator[httpx.Client]:
    with asgi_client(quiet_settings(**overrides)) as c:
        yield c


def put(c: httpx.Client, sid: str, schema: dict[str, Any], **params: str) -> httpx.Response:
    return c.put(f"{SCHEMAS}/{sid}", json={"schema": schema}, params=params)


def fields_of(c: httpx.Client, sid: str) -> dict[str, dict[str, Any]]:
    return {f["id"]: f for f in c.get(f"{SCHEMAS}/{sid}").json()["schema"]["fields"]}


# -- the registry and the profiles ------------------------------------------------------------------
def test_the_registry_describes_settings_fields() -> None:
    names = {f.name for f in dataclasses.fields(SandboxSettings)}
    assert {q.name for q in QUIRKS} <= names
    assert len(BY_NAME) == len(QUIRKS)
    for q in QUIRKS:
        assert q.source and q.does and q.parse is not None, q


def test_the_unknown_table_is_covered() -> None:
    wanted = {f"U{i}" for i in range(1, 27)} | {f"C{i}" for i in range(1, 8)}
    assert wanted <= sources(), sorted(wanted - sources())
    for key in NOTES:
        assert key in wanted, key


def test_documented_is_the_default_settings() -> None:
    assert SandboxSettings.from_profile("documented") == SandboxSettings()
    assert SandboxSettings.from_profile() == SandboxSettings()


def test_pessimistic_resolves_the_unknowns_against_the_client() -> None:
    s = SandboxSettings.from_profile("pessimistic")
    assert (s.required_honoured, s.options_match, s.field_put_merge, s.list_order) == (False, "id", False, "shuffled")
    assert 0 < s.schema_list_lag_s <= 1 and 0 < s.list_visibility_delay_s <= 1
    assert (s.retry_after_s, s.rate_limit_scope, s.upsert_response, s.validate_only_query) == (
        30.0, "account", "guide", False)
    assert s.member_tokens == ("member-token",) and s.extra_field_types == ("boolean",)
    assert s.seed_unknown_type_schema is True
    assert s.token == "sandbox-token" and s.faults == ""


def test_from_profile_takes_overrides_and_refuses_unknown_profiles() -> None:
    s = SandboxSettings.from_profile("pessimistic", token="t", rate_limit=0, retry_after_s=1)
    assert (s.token, s.rate_limit, s.retry_after_s, s.list_order) == ("t", 0, 1, "shuffled")
    with pytest.raises(ValueError, match="unknown sandbox profile 'optimistic'"):
        SandboxSettings.from_profile("optimistic")
    assert PROFILES == ("documented", "pessimistic")


@pytest.mark.parametrize(("spec", "expected"), [
    ("list_order=shuffled", ("list_order", "shuffled")),
    ("required_honoured=no", ("required_honoured", False)),
    ("retry_after_s=30", ("retry_after_s", 30.0)),
    ("schema_list_lag_s=0.5s", ("schema_list_lag_s", 0.5)),
    ("member_tokens=a,b", ("member_tokens", ("a", "b"))),
    ("member_tokens=", ("member_tokens", ())),
    ("extra_field_types=boolean,rating", ("extra_field_types", ("boolean", "rating"))),
    ("max_fields=none", ("max_fields", None)),
    ("max_fields=3", ("max_fields", 3)),
    ("rate_limit_status=503", ("rate_limit_status", 503)),
])
def test_parse_quirk(spec: str, expected: tuple[str, Any]) -> None:
    assert parse_quirk(spec) == expected


@pytest.mark.parametrize(("spec", "message"), [
    ("nope=1", "quirk: unknown name 'nope'"),
    ("list_order", "quirk: expected NAME=VALUE"),
    ("list_order=random", "quirk list_order: expected one of insertion, shuffled, got 'random'"),
    ("required_honoured=maybe", "quirk required_honoured: expected true or false"),
    ("retry_after_s=-1", "quirk retry_after_s: expected a number of seconds, 0 or more"),
    ("retry_after_s=nan", "quirk retry_after_s: expected a number of seconds, 0 or more"),
    ("max_fields=0", "quirk max_fields: expected a whole number, 1 or more"),
    ("extra_field_types=text", "'text' is already a documented type"),
    ("rate_limit_status=500", "expected one of 429, 503"),
    ("token=x", "quirk: unknown name 'token'"),
])
def test_bad_quirks_are_one_line(spec: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_quirk(spec)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_apply_quirks_copies_and_applies_in_order() -> None:
    base = SandboxSettings.from_profile("pessimistic")
    s = apply_quirks(base, ["list_order=insertion", "retry_after_s=2", "retry_after_s=3"])
    assert (s.list_order, s.retry_after_s, s.required_honoured) == ("insertion", 3.0, False)
    assert base.list_order == "shuffled"


def test_every_quirk_has_a_test() -> None:
    assert set(TESTED) == set(BY_NAME), sorted(set(BY_NAME) ^ set(TESTED))


# -- schemas ------------------------------------------------------------------------------------------
@both("field_put_merge")
def test_field_put_merge(value: bool) -> None:
    with sandbox(field_put_merge=value) as c:
        s = create_schema(c, fields=[field("n", description="kept?", required=True),
                                     field("pick", "dropdown", options=[{"value": "a"}])])
        new_labels = {"singular": "Name", "plural": "Names"}
        r = put(c, s["id"], {"fields": [{"id": "n", "labels": new_labels}]})
        if value:
            assert r.status_code == 200, r.text
            n = fields_of(c, s["id"])["n"]
            assert n["labels"] == new_labels and n["description"] == "kept?" and n["required"] is True
        else:
            assert r.status_code == 422 and "type must be provided" in r.text
            r = put(c, s["id"], {"fields": [{"id": "n", "type": "text", "labels": new_labels}]})
            assert r.status_code == 200, r.text
            n = fields_of(c, s["id"])["n"]
            assert n["labels"] == new_labels and "description" not in n and n["required"] is False
            # options are part of the field: a replacement without them is refused
            r = put(c, s["id"], {"fields": [{"id": "pick", "type": "dropdown", "labels": {"singular": "P",
                                                                                           "plural": "Ps"}}]})
            assert r.status_code == 422 and "must provide options" in r.text


@both("required_honoured")
def test_required_honoured(value: bool) -> None:
    with sandbox(required_honoured=value) as c:
        s = create_schema(c, fields=[field("a", required=True), field("b")])
        assert s["fields"][0]["required"] is value
        r = put(c, s["id"], {"fields": [{"id": "b", "required": True}]})
        assert r.status_code == 200 and fields_of(c, s["id"])["b"]["required"] is value
        r = c.post(f"{RECORDS}/{s['id']}", json={"record": {"fields": []}})
        assert r.status_code == (422 if value else 201), r.text
        if value:  # both directions
            put(c, s["id"], {"fields": [{"id": "b", "required": False}]})
            assert fields_of(c, s["id"])["b"]["required"] is False


@both("treat_is_required", other=True)
def test_treat_is_required(value: bool) -> None:
    with sandbox(treat_is_required=value) as c:
        s = create_schema(c, fields=[field("a", isRequired=True)])
        assert s["fields"][0]["required"] is value


@both("validate_only_query")
def test_validate_only_query(value: bool) -> None:
    with sandbox(validate_only_query=value) as c:
        s = create_schema(c)
        r = put(c, s["id"], {"fields": [field("by-query")]}, validateOnly="true")
        assert r.status_code == 200 and "by-query" in {f["id"] for f in r.json()["schema"]["fields"]}
        assert ("by-query" in fields_of(c, s["id"])) is (not value)
        r = c.put(f"{SCHEMAS}/{s['id']}", json={"schema": {"fields": [field("by-header")]}},
                  headers={"validateOnly": "true"})
        assert r.status_code == 200 and "by-header" not in fields_of(c, s["id"])


@both("options_strict")
def test_options_strict(value: bool) -> None:
    with sandbox(options_strict=value) as c:
        s = create_schema(c, fields=[field("p", "dropdown", options=[{"value": "a"}, {"value": "b"}])])
        stored = s["fields"][0]["options"]
        r = put(c, s["id"], {"fields": [{"id": "p", "options": [{"value": "a"}]}]})
        assert r.status_code == (422 if value else 200), r.text
        def options() -> dict[str, str]:
            return {o["id"]: o["value"] for o in fields_of(c, s["id"])["p"]["options"]}

        assert options() == {o["id"]: o["value"] for o in stored}  # omitted "b" kept (or nothing changed)
        r = put(c, s["id"], {"fields": [{"id": "p", "options": [{"id": stored[0]["id"], "value": "A"}, stored[1]]}]})
        assert r.status_code == (422 if value else 200), r.text
        assert options()[stored[0]["id"]] == ("a" if value else "A")


@both("options_match")
def test_options_match(value: str) -> None:
    with sandbox(options_match=value, options_strict=False) as c:
        s = create_schema(c, fields=[field("p", "dropdown", options=[{"value": "a"}, {"value": "b"}])])
        stored = s["fields"][0]["options"]
        # live options sent again with the server's ids, plus a new one: no duplicates in either mode
        r = put(c, s["id"], {"fields": [{"id": "p", "options": [*stored, {"value": "c"}]}]})
        assert r.status_code == 200, r.text
        after = fields_of(c, s["id"])["p"]["options"]
        assert after[:2] == stored and [o["value"] for o in after] == ["a", "b", "c"]
        # the same values sent WITHOUT their ids
        r = put(c, s["id"], {"fields": [{"id": "p", "options": [{"value": "a"}, {"value": "b"}, {"value": "c"}]}]})
        assert r.status_code == 200, r.text
        values = [o["value"] for o in fields_of(c, s["id"])["p"]["options"]]
        assert values == (["a", "b", "c"] if value == "value" else ["a", "b", "c", "a", "b", "c"])
    with sandbox(options_match=value, options_strict=True) as c:
        s = create_schema(c, fields=[field("p", "dropdown", options=[{"value": "a"}])])
        r = put(c, s["id"], {"fields": [{"id": "p", "options": [{"value": "a"}]}]})
        assert r.status_code == (200 if value == "value" else 422), r.text  # strict: the stored "a" is omitted


@both("extra_field_types")
def test_extra_field_types(value: tuple[str, ...]) -> None:
    with sandbox(extra_field_types=value) as c:
        r = c.post(SCHEMAS, json={"schema": {"slug": "t", "labels": {"singular": "T", "plural": "Ts"},
                                             "fields": [field("vip", "boolean"), field("name")]}})
        if not value:
            assert r.status_code == 422 and "Field type 'boolean' is not supported" in r.text
            return
        assert r.status_code == 201, r.text
        sid = r.json()["schema"]["id"]
        assert fields_of(c, sid)["vip"]["type"] == "boolean"
        assert c.post(f"{RECORDS}/{sid}", json={"record": {"externalId": "x", "fields": [
            {"id": "vip", "value": True}]}}).status_code == 201
        r = c.post(f"{RECORDS}/{sid}", json={"record": {"fields": [{"id": "vip", "value": "yes"}]}})
        assert r.status_code == 422 and "must be true or false" in r.text
        listed = c.get(f"{RECORDS}/{sid}", params={"filters[fields.vip]": "true"}).json()
        assert [rec["externalId"] for rec in listed["records"]] == ["x"]


@both("seed_unknown_type_schema")
def test_seed_unknown_type_schema(value: bool) -> None:
    store = Store(":memory:")
    try:
        for _ in range(2):  # a second start on the same account does not seed twice
            create_app(quiet_settings(seed_unknown_type_schema=value), store)
        schemas = store.list_schemas()
        if not value:
            assert schemas == []
            return
        assert [s["slug"] for s in schemas] == [UNKNOWN_TYPE_SLUG]
        doc = schemas[0]
        assert doc["visibility"] == "public" and doc["appId"] == "42"
        assert "boolean" in {f["type"] for f in doc["fields"]} and {"text", "datetime"} <= {
            f["type"] for f in doc["fields"]}
        total, rows = store.list_records(doc["id"])
        assert total == 3 and {r.fields["vip"] for r in rows} == {True, False}
    finally:
        store.close()


def test_the_seeded_schema_is_served_and_its_fields_cannot_be_deleted() -> None:
    with sandbox(**{**dataclasses.asdict(SandboxSettings.from_profile("pessimistic")), "rate_limit": 0}) as c:
        listed = c.get(SCHEMAS, params={"orders[slug]": "ASC"}).json()["schemas"]
        seeded = next(s for s in listed if s["slug"] == UNKNOWN_TYPE_SLUG)
        assert any(f["type"] == "boolean" for f in seeded["fields"])
        r = c.delete(f"{SCHEMAS}/{seeded['id']}/fields/vip")
        assert r.status_code == 422 and "only be deleted on private" in r.text
        recs = c.get(f"{RECORDS}/{seeded['id']}", params={"orders[externalId]": "ASC"}).json()
        assert recs["meta"]["total"] == 3


@both("slug_max_len", other=10)
def test_slug_max_len(value: int) -> None:
    with sandbox(slug_max_len=value) as c:
        assert c.post(SCHEMAS, json={"schema": {"slug": "a" * value, "labels": {"singular": "A", "plural": "As"}}}
                      ).status_code == 201
        r = c.post(SCHEMAS, json={"schema": {"slug": "b" * (value + 1), "labels": {"singular": "B", "plural": "Bs"}}})
        assert r.status_code == 422 and f"at most {value}" in r.text


@both("field_id_max_len", other=10)
def test_field_id_max_len(value: int) -> None:
    with sandbox(field_id_max_len=value) as c:
        create_schema(c, slug="ok", fields=[field("f" * value)])
        r = c.post(SCHEMAS, json={"schema": {"slug": "no", "labels": {"singular": "N", "plural": "Ns"},
                                             "fields": [field("g" * (value + 1))]}})
        assert r.status_code == 422 and f"must be 1-{value}" in r.text


@both("max_fields", other=2)
def test_max_fields(value: int | None) -> None:
    with sandbox(max_fields=value) as c:
        s = create_schema(c, fields=[field("a"), field("b")])
        r = put(c, s["id"], {"fields": [field("c")]})
        assert r.status_code == (200 if value is None else 422), r.text


@both("max_schemas", other=1)
def test_max_schemas(value: int | None) -> None:
    with sandbox(max_schemas=value) as c:
        create_schema(c, slug="one")
        r = c.post(SCHEMAS, json={"schema": {"slug": "two", "labels": {"singular": "T", "plural": "Ts"}}})
        assert r.status_code == (201 if value is None else 422), r.text


@both("max_options", other=2)
def test_max_options(value: int | None) -> None:
    with sandbox(max_options=value) as c:
        r = c.post(SCHEMAS, json={"schema": {"slug": "o", "labels": {"singular": "O", "plural": "Os"}, "fields": [
            field("p", "dropdown", options=[{"value": "a"}, {"value": "b"}, {"value": "c"}])]}})
        assert r.status_code == (201 if value is None else 422), r.text


# -- lists ----------------------------------------------------------------------------------------------
def _slugs(c: httpx.Client, **params: str) -> list[str]:
    return [s["slug"] for s in c.get(SCHEMAS, params={"limit": "100", **params}).json()["schemas"]]


@both("list_order")
def test_list_order(value: str) -> None:
    slugs = [f"s{i:02d}" for i in range(12)]
    with sandbox(list_order=value, list_seed=7) as c:
        for slug in slugs:
            create_schema(c, slug=slug)
        first, second = _slugs(c), _slugs(c)
        assert sorted(first) == slugs and sorted(second) == slugs
        if value == "insertion":
            assert first == second == slugs
        else:
            assert first != slugs and second != slugs and first != second  # a new order per request
        assert _slugs(c, **{"orders[slug]": "DESC"}) == slugs[::-1]
        assert _slugs(c, **{"orders[createdTimestamp]": "ASC"}) == slugs
        # records: the same, and orders[...] honoured
        sid = c.get(SCHEMAS, params={"filters[slug]": "s00"}).json()["schemas"][0]["id"]
        c.app.state.sandbox.store.seed_records(sid, [{"externalId": f"e{i:02d}", "fields": {}} for i in range(12)])
        ext = [r["externalId"] for r in c.get(f"{RECORDS}/{sid}", params={"limit": "100"}).json()["records"]]
        assert sorted(ext) == [f"e{i:02d}" for i in range(12)]
        assert (ext == sorted(ext)) is (value == "insertion")
        ordered = c.get(f"{RECORDS}/{sid}", params={"orders[externalId]": "DESC"}).json()["records"]
        assert [r["externalId"] for r in ordered] == sorted(ext, reverse=True)
    if value == "shuffled":  # reproducible with the same seed
        with sandbox(list_order=value, list_seed=7) as c:
            for slug in slugs:
                create_schema(c, slug=slug)
            assert _slugs(c) == first


@both("list_visibility_delay_s")
def test_list_visibility_delay_s(value: float) -> None:
    with sandbox(list_visibility_delay_s=value) as c:
        s = create_schema(c)
        base = f"{RECORDS}/{s['id']}"
        assert c.post(base, json={"record": {"externalId": "new", "fields": []}}).status_code == 201
        listed = c.get(base).json()
        assert listed["meta"]["total"] == (0 if value else 1)
        assert c.get(f"{base}/external/new").status_code == 200  # get is current
        if value:
            time.sleep(value + 0.1)
            assert c.get(base).json()["meta"]["total"] == 1


@both("schema_list_lag_s")
def test_schema_list_lag_s(value: float) -> None:
    with sandbox(schema_list_lag_s=value) as c:
        old = create_schema(c, slug="old")
        if value:
            time.sleep(value + 0.1)
        new = create_schema(c, slug="new")
        assert put(c, old["id"], {"labels": {"singular": "Renamed", "plural": "Renamed"}}).status_code == 200
        listed = {s["slug"]: s for s in c.get(SCHEMAS).json()["schemas"]}
        assert c.get(f"{SCHEMAS}/{new['id']}").status_code == 200  # get-by-id is current
        assert c.get(f"{SCHEMAS}/{old['id']}").json()["schema"]["labels"]["singular"] == "Renamed"
        if not value:
            assert set(listed) == {"old", "new"} and listed["old"]["labels"]["singular"] == "Renamed"
            return
        assert set(listed) == {"old"} and listed["old"]["labels"]["singular"] == "Thing"  # the old state
        assert c.get(SCHEMAS).json()["meta"]["total"] == 1
        time.sleep(value + 0.1)
        listed = {s["slug"]: s for s in c.get(SCHEMAS).json()["schemas"]}
        assert set(listed) == {"old", "new"} and listed["old"]["labels"]["singular"] == "Renamed"
        assert c.delete(f"{SCHEMAS}/{new['id']}").status_code == 200
        assert c.get(f"{SCHEMAS}/{new['id']}").status_code == 404
        assert set(_slugs(c)) == {"old", "new"}  # a deleted schema is still listed for a while
        time.sleep(value + 0.1)
        assert _slugs(c) == ["old"]


@both("limit_default", other=5)
def test_limit_default(value: int) -> None:
    with sandbox(limit_default=value) as c:
        s = create_schema(c)
        c.app.state.sandbox.store.seed_records(s["id"], [{"fields": {}} for _ in range(30)])
        meta = c.get(f"{RECORDS}/{s['id']}").json()["meta"]
        assert (meta["limit"], meta["count"]) == (value, value)


@both("limit_max", other=3)
def test_limit_max(value: int) -> None:
    with sandbox(limit_max=value) as c:
        for i in range(4):
            create_schema(c, slug=f"s{i}")
        meta = c.get(SCHEMAS, params={"limit": "500"}).json()["meta"]
        assert meta["limit"] == value and meta["count"] == min(value, 4)


@both("limit_clamp")
def test_limit_clamp(value: bool) -> None:
    with sandbox(limit_clamp=value) as c:
        for params in ({"limit": "500"}, {"limit": "0"}, {"offset": "-1"}):
            r = c.get(SCHEMAS, params=params)
            assert r.status_code == (200 if value else 400), (params, r.text)
        assert c.get(SCHEMAS, params={"limit": "100"}).status_code == 200


# -- records ------------------------------------------------------------------------------------------
def _record_schema(c: httpx.Client) -> tuple[str, str]:
    s = create_schema(c, fields=[field("name")], relationships=[REL])
    contact = c.post("/api/3/contact/sync", json={"contact": {"email": "a@b.co"}}).json()["contact"]["id"]
    return f"{RECORDS}/{s['id']}", contact


@both("upsert_response")
def test_upsert_response(value: str) -> None:
    with sandbox(upsert_response=value) as c:
        base, _ = _record_schema(c)
        rec = c.post(base, json={"record": {"externalId": "e", "fields": []}})
        assert rec.status_code == 201
        body = rec.json()["record"]
        assert body["externalId"] == "e" and "schemaId" in body and "fields" in body
        shown = {"id", "createdTimestamp", "updatedTimestamp"} & set(body)
        assert shown == (set() if value == "guide" else {"id", "createdTimestamp", "updatedTimestamp"})
        assert {"id", "createdTimestamp"} <= set(c.get(f"{base}/external/e").json()["record"])


@both("upsert_keeps_relationships")
def test_upsert_keeps_relationships(value: bool) -> None:
    with sandbox(upsert_keeps_relationships=value) as c:
        base, contact = _record_schema(c)
        c.post(base, json={"record": {"externalId": "e", "fields": [],
                                      "relationships": {"primary-contact": [int(contact)]}}})
        c.post(base, json={"record": {"externalId": "e", "fields": [{"id": "name", "value": "x"}]}})
        rels = c.get(f"{base}/external/e").json()["record"]["relationships"]
        assert rels == ({"primary-contact": [contact]} if value else {})


@both("lenient_contacts", other=True)
def test_lenient_contacts(value: bool) -> None:
    with sandbox(lenient_contacts=value) as c:
        base, _ = _record_schema(c)
        r = c.post(base, json={"record": {"fields": [], "relationships": {"primary-contact": [999]}}})
        assert r.status_code == (201 if value else 422), r.text


# -- tokens and the rate limit ---------------------------------------------------------------------
@both("member_tokens")
def test_member_tokens(value: tuple[str, ...]) -> None:
    with sandbox(member_tokens=value) as c:
        s = create_schema(c, fields=[field("a"), field("b")])
        member = {"Api-Token": "member-token"}
        r = c.get(SCHEMAS, headers=member)
        if not value:
            assert r.status_code == 403 and r.json() == {"message": "Forbidden"}
            return
        assert r.status_code == 200 and r.json()["meta"]["total"] == 1
        r = c.delete(f"{SCHEMAS}/{s['id']}/fields/a", headers=member)
        assert r.status_code == 403 and r.json() == {"message": "Forbidden"}
        assert "a" in fields_of(c, s["id"])  # nothing written
        r = c.get(f"{RECORDS}/{s['id']}", headers=member)
        assert r.status_code == 403 and r.json() == {"message": "Forbidden"}
        r = c.get(f"{RECORDS}/{s['id']}", headers=member, params={"filters[fields.a][not_blank]": "true"})
        assert r.status_code == 200
        # the admin token may do both
        assert c.get(f"{RECORDS}/{s['id']}").status_code == 200
        assert c.delete(f"{SCHEMAS}/{s['id']}/fields/a").status_code == 202


@both("rate_limit", other=0.0)
def test_rate_limit(value: float) -> None:
    with asgi_client(SandboxSettings(rate_limit=value)) as c:
        statuses = [c.get(SCHEMAS).status_code for _ in range(8)]
        last = c.get(SCHEMAS)
        if value:
            assert statuses[:int(value)] == [200] * int(value) and 429 in statuses
            assert last.headers["RateLimit-Limit"] == str(int(value))
        else:
            assert statuses == [200] * 8 and "RateLimit-Limit" not in last.headers


@both("rate_limit_scope")
def test_rate_limit_scope(value: str) -> None:
    with asgi_client(SandboxSettings(rate_limit=1, rate_limit_scope=value, member_tokens=("m",))) as c:
        assert c.get(SCHEMAS).status_code == 200
        assert c.get(SCHEMAS).status_code == 429  # this token's (or the account's) bucket is empty
        assert c.get(SCHEMAS, headers={"Api-Token": "m"}).status_code == (200 if value == "token" else 429)


@both("rate_limit_status", other=503)
def test_rate_limit_status(value: int) -> None:
    with asgi_client(SandboxSettings(rate_limit=1, rate_limit_status=value)) as c:
        c.get(SCHEMAS)
        r = c.get(SCHEMAS)
        assert r.status_code == value and r.json()["message"] == {429: "Too Many Requests",
                                                                   503: "Service Unavailable"}[value]


@both("retry_after_s")
def test_retry_after_s(value: float) -> None:
    with asgi_client(SandboxSettings(rate_limit=1, retry_after_s=value)) as c:
        c.get(SCHEMAS)
        r = c.get(SCHEMAS)
        assert r.status_code == 429 and r.headers["Retry-After"] == str(int(value))
    with asgi_client(SandboxSettings(rate_limit=0, retry_after_s=value, faults="429=1", fault_seed=1)) as c:
        r = c.get(SCHEMAS)  # an injected 429 says the same
        assert r.status_code == 429 and r.headers["Retry-After"] == str(int(value))


# -- body limits ------------------------------------------------------------------------------------
@both("max_body_bytes", other=4 * 1_048_576)
def test_max_body_bytes(value: int) -> None:
    with sandbox(max_body_bytes=value) as c:
        big = {"schema": {"slug": "big", "labels": {"singular": "B", "plural": "Bs"}, "description": "x" * 2_000_000}}
        r = c.post(SCHEMAS, json=big)
        if value < 2_000_000:
            assert r.status_code == 413 and r.json() == {"message": "Payload Too Large"}
            assert c.get(SCHEMAS).json()["meta"]["total"] == 0
        else:
            assert r.status_code == 201, r.text[:200]


def _nested(depth: int) -> dict[str, Any]:
    inner: Any = "x"
    for _ in range(depth - 2):
        inner = [inner]
    return {"schema": {"slug": "deep", "labels": {"singular": "D", "plural": "Ds"}, "extra": inner}}


@both("max_body_depth", other=8)
def test_max_body_depth(value: int) -> None:
    with sandbox(max_body_depth=value) as c:
        assert c.post(SCHEMAS, json=_nested(value)).status_code == 201  # the unknown key is ignored (U26)
        r = c.post(SCHEMAS, json=_nested(value + 1))
        assert r.status_code == 400 and "nested too deeply" in r.text


# -- the real CLI ---------------------------------------------------------------------------------------
def test_list_quirks_through_the_cli() -> None:
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "reconciler", "sandbox", "serve", "--list-quirks"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    for q in QUIRKS:
        line = next(x for x in lines if x.startswith(q.name + " "))
        cols = line.split()
        assert cols[3] == q.source.split()[0], line
    for key in ("U11", "U26", "C3"):
        assert any(x.startswith(key + " ") for x in lines), key
    bad = subprocess.run([sys.executable, "-m", "reconciler", "sandbox", "serve", "--quirk", "list_order=random"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and bad.stdout == ""
    assert bad.stderr.strip().splitlines() == ["Error: quirk list_order: expected one of insertion, shuffled, "
                                               "got 'random'"]


def test_profile_pessimistic_through_the_cli() -> None:
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "reconciler", "sandbox", "serve", "--port", "0", "--profile",
                             "pessimistic", "--quirk", "retry_after_s=7", "--rate-limit", "1", "--token", TOKEN],
                            stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stderr.readline() if proc.stderr else ""
        assert first.startswith("Sandbox listening on http://127.0.0.1:") and "profile pessimistic" in first
        url = first.split()[3]
        deadline = time.monotonic() + 10
        while True:
            try:
                r = httpx.get(f"{url}/customObjects/schemas", headers={"Api-Token": "member-token"})
                break
            except httpx.ConnectError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        assert r.status_code == 200
        assert UNKNOWN_TYPE_SLUG in [s["slug"] for s in r.json()["schemas"]]
        sid = r.json()["schemas"][0]["id"]
        time.sleep(1.1)
        r = httpx.get(f"{url}/customObjects/records/{sid}", headers={"Api-Token": "member-token"})
        assert r.status_code == 403
        time.sleep(1.1)
        # one bucket for the account: the member's request emptied it for the admin too
        httpx.get(f"{url}/customObjects/schemas", headers={"Api-Token": "member-token"})
        r = httpx.get(f"{url}/customObjects/schemas", headers={"Api-Token": TOKEN})
        assert r.status_code == 429 and r.headers["Retry-After"] == "7"
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.mark.parametrize("profile", PROFILES)
def test_running_sandbox_under_each_profile(profile: str) -> None:
    settings = SandboxSettings.from_profile(profile, token=TOKEN, rate_limit=0)
    with running_sandbox(settings) as sb, httpx.Client(base_url=sb.url, headers=sb.headers) as c:
        r = c.post(SCHEMAS, json={"schema": {"slug": "x", "labels": {"singular": "X", "plural": "Xs"},
                                             "fields": [field("a", required=True)]}})
        assert r.status_code == 201
        assert r.json()["schema"]["fields"][0]["required"] is (profile == "documented")
        assert c.get(f"{SCHEMAS}/{r.json()['schema']['id']}").status_code == 200
        slugs = {s["slug"] for s in c.get(SCHEMAS, params={"orders[slug]": "ASC"}).json()["schemas"]}
        assert slugs == ({"x"} if profile == "documented" else {UNKNOWN_TYPE_SLUG})  # x lags in the list
