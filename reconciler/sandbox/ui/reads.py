"""What the pages show, read from the store directly (not over HTTP), as plain data for templates.

Record filters go through :mod:`reconciler.sandbox.query`, the API's own parser and compiler of
``filters[prop][op]``, so a filter means on a page what it means in the API. Values of fields
marked for deletion are hidden on records, as the API hides them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from reconciler.sandbox import query
from reconciler.sandbox.store import RecordRow, Store
from reconciler.sandbox.wire import BadRequest

MARKED = "marked_for_deletion"


def live_fields(schema: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [f for f in schema["fields"] if f.get("status") != MARKED]


def record_count(store: Store, schema_id: str) -> int:
    total, _rows = store.list_records(schema_id, limit=0)
    return total


@dataclass
class SchemaSummary:
    id: str
    slug: str
    singular: str
    plural: str
    fields: int
    marked: int
    records: int
    updated: str


def schema_summaries(store: Store) -> list[SchemaSummary]:
    out = []
    for doc in store.list_schemas():
        labels = doc.get("labels") or {}
        live = live_fields(doc)
        out.append(SchemaSummary(
            id=doc["id"], slug=doc["slug"], singular=str(labels.get("singular", "")),
            plural=str(labels.get("plural", "")), fields=len(live), marked=len(doc["fields"]) - len(live),
            records=record_count(store, doc["id"]), updated=str(doc.get("updatedTimestamp", "")),
        ))
    return out


def schema_names(store: Store) -> dict[str, str]:
    """Schema slug and id -> id: where a relationship's namespace points, when it is a schema."""
    names: dict[str, str] = {}
    for ref in store.schema_refs():
        names[ref["slug"]] = ref["id"]
        names[ref["id"]] = ref["id"]
    return names


def contacts_by_id(store: Store, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The contact documents of ``ids`` (unknown and non-numeric ids are left out)."""
    found = store.get_contacts(int(i) for i in ids if str(i).isdigit())
    return {str(cid): {**doc, "id": str(cid)} for cid, doc in found.items()}


def contact_name(doc: Mapping[str, Any] | None) -> str:
    if not doc:
        return ""
    name = " ".join(p for p in (doc.get("firstName"), doc.get("lastName")) if p)
    return name or str(doc.get("email", ""))


# -- records ---------------------------------------------------------------------------------------
#: Operators offered by the filter form, the API's own (``query.OPERATORS``).
OPERATORS = query.OPERATORS


@dataclass(frozen=True)
class Column:
    """One filterable column of the records table: ``prop`` as the API's filters name it."""

    prop: str
    label: str
    kind: str  # "field", "relationship" or "root"
    type: str = ""
    namespace: str = ""


def columns(schema: Mapping[str, Any]) -> list[Column]:
    cols = [Column("id", "Record ID", "root"), Column("externalId", "External ID", "root")]
    for f in live_fields(schema):
        cols.append(Column(f"fields.{f['id']}", str((f.get("labels") or {}).get("singular") or f["id"]),
                           "field", f["type"]))
    for r in schema.get("relationships") or []:
        cols.append(Column(f"relationships.{r['id']}", str((r.get("labels") or {}).get("singular") or r["id"]),
                           "relationship", namespace=str(r.get("namespace", ""))))
    return cols


class FilterError(ValueError):
    """A filter the API would answer with 400; the message names the column."""


@dataclass
class RecordPage:
    total: int
    rows: list[RecordRow]
    offset: int
    limit: int
    contacts: dict[str, dict[str, Any]] = field(default_factory=dict)


def compile_filters(schema: Mapping[str, Any], chosen: Sequence[tuple[str, str, str]]) -> list[Any]:
    """``(prop, op, value)`` triples -> the store's conditions, through ``query``; FilterError names
    the column of the first one the API would refuse."""
    labels = {c.prop: c.label for c in columns(schema)}
    conds = []
    for prop, op, value in chosen:
        try:
            filters, _orders = query.parse([(f"filters[{prop}][{op}]", value)])
            conds.extend(query.record_conds(filters, schema))
        except BadRequest:
            raise FilterError(f"{labels.get(prop, prop)}: {value!r} is not a value the {op} filter takes") from None
    return conds


def record_page(store: Store, schema: Mapping[str, Any], conds: Sequence[Any], offset: int, limit: int) -> RecordPage:
    total, rows = store.list_records(schema["id"], conds, (), limit, offset)
    return RecordPage(total, rows, offset, limit, contacts_by_id(store, contact_ids(schema, rows)))


def contact_ids(schema: Mapping[str, Any], rows: Iterable[RecordRow]) -> set[str]:
    rels = [r["id"] for r in schema.get("relationships") or [] if r.get("namespace") == "contacts"]
    return {t for row in rows for rid in rels for t in row.relationships.get(rid, [])}


def shown_value(value: Any) -> str:
    """A stored value as text: options joined, booleans in the API's spelling."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


@dataclass
class ContactRecords:
    schema: dict[str, Any]
    relationship: dict[str, Any]
    total: int
    rows: list[RecordRow]


def records_of_contact(store: Store, contact_id: str, limit: int = 50) -> list[ContactRecords]:
    """For each schema relationship to contacts, the records that point at ``contact_id``."""
    out = []
    for schema in store.list_schemas():
        for rel in schema.get("relationships") or []:
            if rel.get("namespace") != "contacts":
                continue
            conds = compile_filters(schema, [(f"relationships.{rel['id']}", "eq", contact_id)])
            total, rows = store.list_records(schema["id"], conds, (), limit, 0)
            if total:
                out.append(ContactRecords(schema, rel, total, rows))
    return out
