"""The record endpoints (ac-api.md §7) over :meth:`Client.request_json` (auth, limiter, retries, errors).

A record is read into :class:`Record`, a small pydantic model that keeps every key the API sent
(``extra="allow"``), so a record written back after a read loses nothing we did not mean to change.

Retries: ``request_json`` repeats GETs, but a POST only when it was surely not processed (a 429, a
refused connection). Every upsert this package sends names its record, by ``externalId`` or by the
``id`` of a record that exists; by the §7.2 matrix (cases 1, 3 and 4) such an upsert is an update,
so sending it twice leaves the same record as sending it once: :func:`upsert_record` tells the
client so (``idempotent=True``), and the client's one retry loop repeats it after an ambiguous
failure (a 5xx, a lost response) too. An upsert that names neither would create a record each time
it is processed: it is repeated only when surely not processed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from reconciler.errors import NotFound, ReconcilerError, UnexpectedResponse
from reconciler.urls import quote_segment

if TYPE_CHECKING:
    from reconciler.client import Client

__all__ = [
    "LIST_ORDER",
    "PAGE_LIMIT",
    "FieldValue",
    "Page",
    "Record",
    "RecordListError",
    "get_record",
    "get_record_by_external",
    "list_pages",
    "not_blank",
    "records_path",
    "upsert_record",
]

#: Records per list request (the documented maximum, §7).
PAGE_LIMIT = 100
#: The order records are listed in. The default order is unspecified and not by creation time
#: (§7.4, live S10), so offsets through it could skip or repeat records; ``orders[createdTimestamp]``
#: works live. Ties (records created in the same instant) have no documented tie-breaker (UNKNOWN):
#: a record seen twice is dropped by :func:`list_pages`, and the callers compare what they read
#: with ``meta.total``.
LIST_ORDER: Mapping[str, str] = {"orders[createdTimestamp]": "ASC"}
#: Keys of a record that the API sets itself: not sent back in an upsert.
READ_ONLY_KEYS = frozenset({"schemaId", "createdTimestamp", "updatedTimestamp"})


class RecordListError(ReconcilerError):
    """A record list that cannot be read whole (pages repeating, no ``meta.total``)."""


class FieldValue(BaseModel):
    """One entry of a record's ``fields``: a schema field id and its value (§7.1, §7.3)."""

    model_config = ConfigDict(extra="allow")

    id: str
    value: Any = None


class Record(BaseModel):
    """A record as the API sends it (§7.1); unknown keys are kept."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    id: str | None = None
    external_id: str | None = Field(default=None, alias="externalId")
    schema_id: str | None = Field(default=None, alias="schemaId")
    fields: list[FieldValue] = Field(default_factory=list)
    relationships: dict[str, list[Any]] = Field(default_factory=dict)
    created: str | None = Field(default=None, alias="createdTimestamp")
    updated: str | None = Field(default=None, alias="updatedTimestamp")

    @field_validator("external_id", mode="before")
    @classmethod
    def _text_external_id(cls, value: Any) -> Any:
        """An externalId sent as a number is read as its text (it is matched as text)."""
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @classmethod
    def from_api(cls, data: Any) -> Record:
        """A record from a response's ``record`` object (or a line of a backup/export file)."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise UnexpectedResponse(200, "GET", "record", reason=f"a record this client cannot read "
                                     f"({exc.error_count()} problem(s))") from None

    def to_json(self) -> dict[str, Any]:
        """The record as it was read (the keys it came with, in the API's spelling)."""
        return self.model_dump(by_alias=True, exclude_unset=True, mode="json")

    def value_of(self, field_id: str) -> Any:
        """The field's value, ``None`` when the record has none."""
        return next((f.value for f in self.fields if f.id == field_id), None)

    def has(self, field_id: str) -> bool:
        return any(f.id == field_id for f in self.fields)

    def with_value(self, field_id: str, value: Any) -> Record:
        """A copy with ``field_id`` set to ``value`` (added at the end when the record has none)."""
        fields = [f.model_copy() for f in self.fields]
        for f in fields:
            if f.id == field_id:
                f.value = value
                break
        else:
            fields.append(FieldValue(id=field_id, value=value))
        return self.model_copy(update={"fields": fields})

    def upsert_body(self, *, with_id: bool = True, drop_relationships: bool = False) -> dict[str, Any]:
        """The ``record`` object of an upsert: every field as held (the upsert replaces ``fields``
        whole, §7.2), the relationships, the ids, and any key the API sent that we do not know.

        Relationship ids come back from GET as strings and are sent as ints in the documented
        requests (§7.1); digit strings are sent as ints (whether strings are accepted: UNKNOWN).
        ``drop_relationships`` sends ``{}`` (an empty object clears them; without the key, whether
        they are kept or cleared is UNKNOWN, U16).
        """
        body = {k: v for k, v in self.to_json().items() if k not in READ_ONLY_KEYS}
        if not with_id:
            body.pop("id", None)
        body["fields"] = [f.model_dump(mode="json") for f in self.fields]
        body["relationships"] = {} if drop_relationships else {
            rid: [_wire_id(t) for t in targets] for rid, targets in self.relationships.items()}
        return body


def _wire_id(target: Any) -> Any:
    return int(target) if isinstance(target, str) and target.isdigit() and len(target) < 19 else target


def records_path(schema_id: str) -> str:
    return f"/customObjects/records/{quote_segment(schema_id)}"


def not_blank(field_id: str) -> dict[str, str]:
    """The list filter of the records that hold a value in ``field_id`` (§7.4)."""
    return {f"filters[fields.{field_id}][not_blank]": "true"}  # as the plan's impact count asks (changes.ImpactQuery)


@dataclass(frozen=True)
class Page:
    """One page of a list: its records (none seen on an earlier page), the offset it was read at,
    and the list's ``meta.total`` as this page reported it."""

    records: list[Record]
    offset: int
    total: int


def _record_of(data: Any, method: str, path: str, status: int = 200) -> Record:
    if not isinstance(data, dict) or not isinstance(data.get("record"), dict):
        raise UnexpectedResponse(status, method, path, reason='the response has no "record" object')
    return Record.from_api(data["record"])


async def list_pages(client: Client, schema_id: str, filters: Mapping[str, str] | None = None,
                     *, limit: int = PAGE_LIMIT) -> AsyncIterator[Page]:
    """The schema's records matching ``filters`` (parameter names as sent, ANDed), page by page.

    ``limit`` records a page at increasing offsets, in :data:`LIST_ORDER`. Stops at a short (or
    empty) page or once ``meta.total`` records were read. A page holding only records already read
    (a server that ignores ``offset``) is a :class:`RecordListError`, never a loop. Records are
    read one page after the other: the total can move while a list is read (the list is eventually
    consistent, §7.2: a new record may be missing for several seconds, UNKNOWN how long).

    Without ``filters`` only admin users may list (S11); a member token's 403 is the caller's error.
    """
    path = records_path(schema_id)
    seen: set[str] = set()
    offset = 0
    while True:
        params = {"limit": str(limit), "offset": str(offset), **LIST_ORDER, **(filters or {})}
        data = await client.request_json("GET", path, params=params)
        items = data.get("records") if isinstance(data, dict) else None
        meta = data.get("meta") if isinstance(data, dict) else None
        total = _as_int(meta.get("total")) if isinstance(meta, dict) else None
        if not isinstance(items, list) or total is None:
            raise RecordListError(f"GET {path}: the records list has no records array or no meta.total")
        records = [Record.from_api(item) for item in items]
        fresh = [r for r in records if r.id is None or r.id not in seen]
        if records and not fresh:
            raise RecordListError(f"GET {path}: the page at offset {offset} repeats records already read "
                                  f"({len(seen)} of meta.total {total} read)")
        seen.update(r.id for r in fresh if r.id is not None)
        yield Page(fresh, offset, total)
        offset += len(records)
        if len(records) < limit or offset >= total:
            return


async def get_record(client: Client, schema_id: str, record_id: str) -> Record | None:
    """The record with this id, ``None`` when there is none (404; the documented error is a 400, §7)."""
    path = f"{records_path(schema_id)}/{quote_segment(record_id)}"
    try:
        return _record_of(await client.request_json("GET", path), "GET", path)
    except NotFound:
        return None


async def get_record_by_external(client: Client, schema_id: str, external_id: str) -> Record | None:
    """The record with this externalId, or ``None``. The documented path lacks ``customObjects/``
    (§7, U11, probably a doc error); the path GearPlug uses is asked for."""
    path = f"{records_path(schema_id)}/external/{quote_segment(external_id)}"
    try:
        return _record_of(await client.request_json("GET", path), "GET", path)
    except NotFound:
        return None


async def upsert_record(client: Client, schema_id: str, body: Mapping[str, Any], *, repeat: bool = True) -> Record:
    """POST ``{"record": body}`` (201, create or update by the §7.2 matrix; the fields are replaced
    whole). The answer's record may lack ``id`` (live, U13). A body with an ``id`` or an
    ``externalId`` names its record, so the upsert is an update and the client's retries may send it
    again after a 5xx or a lost response; one without either is sent again only when surely not
    processed (a repeat could create a second record). ``repeat=False``: never sent again after an
    ambiguous failure (the caller reads the record back and decides)."""
    path = records_path(schema_id)
    keyed = bool(body.get("externalId") or body.get("id"))
    return _record_of(await client.request_json("POST", path, json={"record": dict(body)},
                                                  idempotent=keyed and repeat),
                      "POST", path, 201)


def _as_int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
