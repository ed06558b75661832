"""Acceptance: a third-party client, used UNMODIFIED, works against the sandbox.

The client is GearPlug's ``activecampaign-python`` 1.0.10 (PyPI; S12 in docs/api-notes.md). It
appends ``/api/3`` to the account URL itself, sends ``Api-Token``, ``Accept`` and ``Content-Type:
application/json`` on every request and returns ``response.json()`` when the response's
``Content-Type`` contains ``application/json``, otherwise ``response.text``. It never looks at status
codes, and it reads ``response.headers['Content-Type']`` without a default: a response with no
Content-Type would be a ``KeyError`` inside the library.

The tests call the library's public methods and assert what a user of the library sees (its return
values). A spy around ``requests.request`` (observation only: the library calls
``requests.request`` through the module attribute and the spy passes everything through) records
each HTTP exchange so that status codes and content types can be checked against docs/api-notes.md §2, §7, §8.

Package quirks versus the documented API (asserted as documented, not "fixed" in the sandbox):
- get-by-externalId: the library uses ``/customObjects/records/{s}/external/{e}``; the reference
  documents ``/records/{s}/external/{e}`` (probably a doc error, C6). The sandbox serves both (U11).
- path segments (schema, record and external ids) are pasted into the URL unquoted, so an externalId
  holding ``#`` (or ``?``, ``/``) reaches the API cut short (a library bug, see the last test).
- ``list_all_records`` refuses to run without a contact, deal or account id (returns a string, no
  request); only admins may list unfiltered, per S11, so this is a limitation, not a deviation.
- ``update_a_schema`` cannot send the documented ``validateOnly`` header.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import pytest
import requests
from activecampaign.client import Client

from reconciler.sandbox import SandboxSettings, running_sandbox

TOKEN = "third-party-token"
JSON = "application/json"


@dataclass
class Exchange:
    method: str
    path: str  # relative to /api/3, query included
    status: int
    content_type: str
    text: str


@dataclass
class Wire:
    """Pass-through spy on ``requests.request``: what the library sent and got back."""

    base: str
    real: Any
    log: list[Exchange] = field(default_factory=list)

    def __call__(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        response = self.real(method, url, **kwargs)
        assert url.startswith(self.base + "/api/3/"), url
        self.log.append(Exchange(method, url[len(self.base) + len("/api/3"):], response.status_code,
                                 response.headers.get("Content-Type", ""), response.text))
        return response

    @property
    def last(self) -> Exchange:
        return self.log[-1]


@dataclass
class AC:
    client: Client
    wire: Wire
    sandbox: Any

    @property
    def co(self) -> Any:
        return self.client.customobjects

    def expect(self, status: int, body: bool = True) -> Exchange:
        """The last exchange had ``status`` and, with a body, exactly ``application/json``; an empty
        body must still carry a (non-JSON) Content-Type, which the library needs."""
        ex = self.wire.last
        assert ex.status == status, (ex.method, ex.path, ex.status, ex.text)
        if body:
            assert ex.content_type == JSON, ex
        else:
            assert ex.text == "" and ex.content_type.startswith("text/plain"), ex
        return ex


@pytest.fixture()
def ac(monkeypatch: pytest.MonkeyPatch) -> Iterator[AC]:
    with running_sandbox(SandboxSettings(token=TOKEN, rate_limit=0)) as sb:
        wire = Wire(sb.url, requests.request)
        monkeypatch.setattr(requests, "request", wire)
        client = Client(sb.url, TOKEN)  # the account URL, as a user passes it
        yield AC(client, wire, sb)
        # every request the library made reached the sandbox and was logged there too
        assert [(e.method, e.status) for e in sb.traffic.log] == [(e.method, e.status) for e in wire.log]


def labels(singular: str) -> dict[str, str]:
    return {"singular": singular, "plural": singular + "s"}


def fld(fid: str, ftype: str = "text", **extra: Any) -> dict[str, Any]:
    return {"id": fid, "type": ftype, "labels": labels(fid.title()), **extra}


RELS = [
    {"id": "primary-contact", "namespace": "contacts", "labels": labels("Contact"), "hasMany": False},
    {"id": "deal", "namespace": "deals", "labels": labels("Deal"), "hasMany": False},
    {"id": "account", "namespace": "accounts", "labels": labels("Account"), "hasMany": False},
]
SCHEMA = {"schema": {"slug": "order", "labels": labels("Order"), "description": "Orders",
                     "fields": [fld("name"), fld("amount", "number", scale=2),
                                fld("state", "dropdown", options=[{"value": "open"}, {"value": "done"}])],
                     "relationships": RELS}}


def sync_contact(ac: AC, email: str) -> str:
    out = ac.client.contacts.create_or_update_contact({"contact": {"email": email}})
    return out["contact"]["id"]


# -- contact sync -----------------------------------------------------------------------------------
def test_contact_sync(ac: AC) -> None:
    contacts = ac.client.contacts
    created = contacts.create_or_update_contact({"contact": {"email": "jane@example.com", "firstName": "Jane"}})
    ac.expect(201)
    assert set(created) == {"contact", "fieldValues"}
    contact = created["contact"]
    assert isinstance(contact["id"], str) and contact["email"] == "jane@example.com"
    assert contact["firstName"] == "Jane"
    updated = contacts.create_or_update_contact({"contact": {"email": "jane@example.com", "lastName": "Doe"}})
    ac.expect(200)  # live: 200 on update
    assert updated["contact"]["id"] == contact["id"]
    assert (updated["contact"]["firstName"], updated["contact"]["lastName"]) == ("Jane", "Doe")  # kept
    missing = contacts.create_or_update_contact({"contact": {"firstName": "x"}})
    ac.expect(400)
    assert missing["errors"][0]["detail"] == "Contact email must be provided for sync"
    invalid = contacts.create_or_update_contact({"contact": {"email": "not-an-email"}})
    ac.expect(422)
    assert invalid["errors"][0]["code"] == "email_invalid"


# -- schemas ----------------------------------------------------------------------------------------
def test_schema_calls(ac: AC) -> None:
    co = ac.co
    created = co.create_a_schema(SCHEMA)
    ac.expect(201)
    assert list(created) == ["schema"]
    schema = created["schema"]
    sid = schema["id"]
    assert (schema["slug"], schema["visibility"], schema["labels"]) == ("order", "private", labels("Order"))
    assert [f["id"] for f in schema["fields"]] == ["name", "amount", "state"]
    assert all(f["required"] is False and f["inherited"] is False for f in schema["fields"])
    assert [r["id"] for r in schema["relationships"]] == ["primary-contact", "deal", "account"]

    # §10: a duplicate slug is a 422 in the custom-object error shape; the library hands it back as is
    dup = co.create_a_schema(SCHEMA)
    ac.expect(422)
    assert dup["errors"][0]["detail"] == "Schema slug must be unique"
    assert dup["errors"][0]["source"] == {"type": "pointer", "value": "/data/attributes/schema/slug"}

    other = co.create_a_schema({"schema": {"slug": "note", "labels": labels("Note"), "fields": [fld("body")],
                                           "relationships": RELS[:1]}})["schema"]

    listed = co.list_all_schemas()
    ex = ac.expect(200)
    assert ex.path == "/customObjects/schemas?limit=20&offset=0"
    assert list(listed) == ["schemas", "meta"]
    assert [s["id"] for s in listed["schemas"]] == [sid, other["id"]]
    assert listed["meta"] == {"total": 2, "count": 2, "limit": 20, "offset": 0}

    paged = co.list_all_schemas(limit=1, offset=1)
    ac.expect(200)
    assert [s["id"] for s in paged["schemas"]] == [other["id"]]
    assert paged["meta"] == {"total": 2, "count": 1, "limit": 1, "offset": 1}

    ordered = co.list_all_schemas(ordering=[("labels.singular", "DESC")])
    assert ac.wire.last.path.endswith("&orders[labels.singular]=DESC")
    assert [s["slug"] for s in ordered["schemas"]] == ["order", "note"]
    ordered = co.list_all_schemas(ordering=[("labels.singular", "ASC")])
    assert [s["slug"] for s in ordered["schemas"]] == ["note", "order"]
    n = len(ac.wire.log)
    assert co.list_all_schemas(ordering=[("slug", "UP")]) == "Error in Ordering definition"
    assert len(ac.wire.log) == n  # refused by the library, no request

    # GearPlug's relationship filters: id + namespace must hold for the same relationship
    for relationship, expected in (("contact", ["order", "note"]), ("deal", ["order"]), ("account", ["order"])):
        got = co.list_all_schemas(schema_relationship=relationship)
        ac.expect(200)
        assert "filters[relationships.id][eq]=" in ac.wire.last.path
        assert [s["slug"] for s in got["schemas"]] == expected, relationship
        assert got["meta"]["total"] == len(expected)

    got = co.retrieve_a_schema(sid)
    ac.expect(200)
    assert list(got) == ["schema"] and got["schema"] == schema

    # U1: a merge; the new field is appended, the omitted ones are kept
    updated = co.update_a_schema(sid, {"schema": {"description": "All orders", "fields": [fld("notes", "textarea")]}})
    ac.expect(200)
    assert list(updated) == ["schema"]
    assert updated["schema"]["description"] == "All orders"
    assert [f["id"] for f in updated["schema"]["fields"]] == ["name", "amount", "state", "notes"]
    assert updated["schema"]["updatedTimestamp"] >= schema["updatedTimestamp"]
    updated = co.update_a_schema(sid, {"schema": {"labels": labels("Purchase")}}, show_all_fields=True)
    ac.expect(200)
    assert updated["schema"]["labels"] == labels("Purchase")

    # field delete: 202 with the schema; the field is hidden unless showFields=all (U9)
    after = co.delete_a_field(sid, "notes")
    ac.expect(202)
    assert list(after) == ["schema"]
    assert [f["id"] for f in after["schema"]["fields"]] == ["name", "amount", "state"]
    shown = co.delete_a_field(sid, "amount", show_all_fields=True)
    ac.expect(202)
    status = {f["id"]: f.get("status") for f in shown["schema"]["fields"]}
    assert status == {"name": None, "amount": "marked_for_deletion", "state": None,
                      "notes": "marked_for_deletion"}
    assert [f["id"] for f in co.retrieve_a_schema(sid)["schema"]["fields"]] == ["name", "state"]
    full = co.retrieve_a_schema(sid, show_all_fields=True)["schema"]
    assert ac.wire.last.path.endswith("?showFields=all")
    assert [f["id"] for f in full["fields"]] == ["name", "amount", "state", "notes"]
    assert co.list_all_schemas(show_all_fields=True)["schemas"][0]["fields"] == full["fields"]
    # the deleted id is not recycled at once (§4, U9)
    reuse = co.update_a_schema(sid, {"schema": {"fields": [fld("notes")]}})
    ac.expect(422)
    assert "errors" in reuse

    # delete: 200 with an EMPTY body; the library returns response.text, i.e. ""
    assert co.delete_a_schema(sid) == ""
    ac.expect(200, body=False)
    assert co.retrieve_a_schema(sid) == {"message": "Not Found"}
    ac.expect(404)
    assert co.delete_a_schema(sid) == {"message": "Not Found"}
    ac.expect(404)
    assert co.update_a_schema(sid, SCHEMA)["message"] == "Not Found"
    ac.expect(404)
    assert co.delete_a_field(sid, "name") == {"message": "Not Found"}
    ac.expect(404)
    assert [s["id"] for s in co.list_all_schemas()["schemas"]] == [other["id"]]


def test_public_and_child_schemas(ac: AC) -> None:
    co = ac.co
    public = co.create_a_public_schema({"schema": {"slug": "ticket", "appId": "4242", "labels": labels("Ticket"),
                                                   "fields": [fld("seat")], "relationships": RELS[:1]}})
    ac.expect(200)  # documented 200, not 201
    assert list(public) == ["schema"]
    parent = public["schema"]
    assert parent["visibility"] == "public" and parent["appId"] == "4242"
    assert parent["slug"] == "app-4242-ticket"  # U24 (a guess)

    child = co.create_a_child_schema(parent["id"])  # no body
    ac.expect(200)
    assert list(child) == ["schema"]
    kid = child["schema"]
    assert kid["visibility"] == "private" and kid["parentId"] == parent["id"]
    assert [(f["id"], f["inherited"]) for f in kid["fields"]] == [("seat", True)]
    assert all(r["inherited"] for r in kid["relationships"])

    # fields cannot be deleted on public or child schemas (documented; the 422 is a guess, U23)
    for sid in (parent["id"], kid["id"]):
        assert "errors" in co.delete_a_field(sid, "seat")
        ac.expect(422)
    assert co.create_a_child_schema("no-such-schema") == {"message": "Not Found"}
    ac.expect(404)


# -- records ----------------------------------------------------------------------------------------
def test_record_calls(ac: AC) -> None:
    co = ac.co
    contact = sync_contact(ac, "buyer@example.com")
    other_contact = sync_contact(ac, "other@example.com")
    sid = co.create_a_schema(SCHEMA)["schema"]["id"]

    record = {"externalId": "ord-1",
              "fields": [{"id": "name", "value": "First"}, {"id": "amount", "value": 12.5},
                         {"id": "state", "value": "open"}],
              "relationships": {"primary-contact": [int(contact)], "deal": [7], "account": [9]}}
    created = co.create_or_update_record(sid, {"record": record})
    ac.expect(201)
    assert list(created) == ["record"]
    rec = created["record"]
    rid = rec["id"]
    assert (rec["externalId"], rec["schemaId"]) == ("ord-1", sid)
    assert rec["fields"] == record["fields"]
    # sent as ints, returned as strings
    assert rec["relationships"] == {"primary-contact": [contact], "deal": ["7"], "account": ["9"]}

    second = co.create_or_update_record(sid, {"record": {"externalId": "ord-2",
                                                         "fields": [{"id": "name", "value": "Second"}],
                                                         "relationships": {"primary-contact": [int(other_contact)]}}})
    ac.expect(201)
    rid2 = second["record"]["id"]

    # upsert by externalId: same id, 201 again (U13), fields fully replaced (§7.2)
    again = co.create_or_update_record(sid, {"record": {"externalId": "ord-1",
                                                        "fields": [{"id": "name", "value": "Renamed"}]}})
    ac.expect(201)
    assert again["record"]["id"] == rid
    assert again["record"]["fields"] == [{"id": "name", "value": "Renamed"}]
    assert again["record"]["relationships"]["primary-contact"] == [contact]  # U16: kept when omitted

    # §10 / U12: a value outside the dropdown's options
    bad = co.create_or_update_record(sid, {"record": {"fields": [{"id": "state", "value": "lost"}]}})
    ac.expect(422)
    assert bad["errors"][0]["source"]["type"] == "pointer"

    # list: the library always filters by a relationship (contact, deal or account)
    n = len(ac.wire.log)
    assert co.list_all_records(sid) == "A contact, deal or account ID is required"
    assert len(ac.wire.log) == n
    for kwargs, expected in (({"contact_id": contact}, [rid]), ({"contact_id": other_contact}, [rid2]),
                             ({"deal_id": 7}, [rid]), ({"account_id": 9}, [rid]), ({"deal_id": 8}, [])):
        listed = co.list_all_records(sid, **kwargs)
        ac.expect(200)
        assert list(listed) == ["records", "meta"]
        assert [r["id"] for r in listed["records"]] == expected, kwargs
        assert listed["meta"] == {"total": len(expected), "count": len(expected), "limit": 20, "offset": 0}
    assert ac.wire.log[-5].path == (f"/customObjects/records/{sid}?filters[relationships.primary-contact][eq]="
                                    f"{contact}&limit=20&offset=0")
    for i in range(3):
        co.create_or_update_record(sid, {"record": {"externalId": f"bulk-{i}",
                                                    "relationships": {"primary-contact": [int(contact)]}}})
    page = co.list_all_records(sid, contact_id=contact, limit=2, offset=1)
    assert page["meta"] == {"total": 4, "count": 2, "limit": 2, "offset": 1}

    got = co.retrieve_a_record(sid, rid)
    ac.expect(200)
    assert list(got) == ["record"]
    assert got["record"]["id"] == rid and got["record"]["fields"] == [{"id": "name", "value": "Renamed"}]

    by_ext = co.retrieve_a_record_by_external_id(sid, "ord-1")
    ac.expect(200)
    assert ac.wire.last.path == f"/customObjects/records/{sid}/external/ord-1"
    assert by_ext == got
    # the path documented in the reference (no customObjects/, C6) answers the same (U11)
    documented = requests.request("GET", f"{ac.sandbox.url}/api/3/records/{sid}/external/ord-1",
                                  headers={"Api-Token": TOKEN, "Accept": JSON}, timeout=10)
    assert documented.status_code == 200 and documented.headers["Content-Type"] == JSON
    assert documented.json() == by_ext

    # deletes: 202 with an EMPTY body, gone at once from get and list
    assert co.delete_a_record(sid, rid) == ""
    ac.expect(202, body=False)
    assert co.retrieve_a_record(sid, rid) == {"message": "Not Found"}
    ac.expect(404)
    assert co.delete_a_record(sid, rid) == {"message": "Not Found"}
    ac.expect(404)
    assert co.delete_a_record_by_external_id(sid, "ord-2") == ""
    ac.expect(202, body=False)
    assert co.retrieve_a_record_by_external_id(sid, "ord-2") == {"message": "Not Found"}
    ac.expect(404)
    assert co.delete_a_record_by_external_id(sid, "ord-2") == {"message": "Not Found"}
    ac.expect(404)
    assert co.list_all_records(sid, contact_id=other_contact)["records"] == []
    # a malformed record id is a 400 in the record error shape (U17)
    assert co.retrieve_a_record(sid, "not-a-uuid") == {"errors": [{"status": 400, "title": "Bad Request"}]}
    ac.expect(400)

    # deleting the schema deletes its records; record routes then answer 404
    assert co.delete_a_schema(sid) == ""
    assert co.retrieve_a_record_by_external_id(sid, "bulk-0") == {"message": "Not Found"}
    ac.expect(404)
    assert co.create_or_update_record(sid, {"record": {"externalId": "x"}}) == {"message": "Not Found"}
    ac.expect(404)


def test_deleted_field_values_are_hidden_from_records(ac: AC) -> None:
    co = ac.co
    sid = co.create_a_schema(SCHEMA)["schema"]["id"]
    contact = sync_contact(ac, "c@example.com")
    co.create_or_update_record(sid, {"record": {"externalId": "r", "fields": [{"id": "name", "value": "n"},
                                                                              {"id": "amount", "value": 3}],
                                                "relationships": {"primary-contact": [int(contact)]}}})
    co.delete_a_field(sid, "amount")
    assert co.retrieve_a_record_by_external_id(sid, "r")["record"]["fields"] == [{"id": "name", "value": "n"}]
    listed = co.list_all_records(sid, contact_id=contact)
    assert listed["records"][0]["fields"] == [{"id": "name", "value": "n"}]


def test_wrong_token_is_a_json_403(ac: AC) -> None:
    """U18 (a guess): the library returns the body; the sandbox's answer is JSON, so it parses."""
    intruder = Client(ac.sandbox.url, "wrong-token")
    assert intruder.customobjects.list_all_schemas() == {"message": "Forbidden"}
    ac.expect(403)


def test_library_does_not_quote_path_segments(ac: AC) -> None:
    """LIBRARY BUG (not the sandbox's): ``retrieve_a_record_by_external_id`` formats the externalId
    into the URL unquoted, so ``#`` starts a URL fragment and the API sees ``external/ord``. The
    record is reachable when the id is percent-encoded, as any HTTP client must do."""
    co = ac.co
    sid = co.create_a_schema(SCHEMA)["schema"]["id"]
    rec = co.create_or_update_record(sid, {"record": {"externalId": "ord#1"}})["record"]
    assert co.retrieve_a_record_by_external_id(sid, "ord#1") == {"message": "Not Found"}
    assert ac.sandbox.traffic.log[-1].path == f"/api/3/customObjects/records/{sid}/external/ord"  # cut at '#'
    assert co.retrieve_a_record_by_external_id(sid, quote("ord#1", safe=""))["record"]["id"] == rec["id"]
    assert co.delete_a_record_by_external_id(sid, quote("ord#1", safe="")) == ""
