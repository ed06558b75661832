"""Records export and import: move a schema's records between accounts (seed staging from production).

An export is portable: each record is written as ``externalId``, ``fields`` (sorted by field id,
fields without a value left out) and ``relationships`` (sorted; none with ``drop_relationships``),
never the account's own ``id``, ``schemaId`` or timestamps, so exporting what an import wrote gives
the same file. Records are written in the order the list gives them (``createdTimestamp``
ascending); import writes them in file order, one after the other, so the order carries over too.

**Records without an externalId** are exported with their source ``id`` as ``externalId``. The
import upserts by externalId (§7.2 case 4: an existing record with it is updated), which is what
makes a re-run add nothing and a repeated upsert after a lost response harmless; a record sent
without any key would be created again by each run. The cost: such a record gains an externalId
in the account it is imported into (the source's id, a UUID that cannot clash with a chosen one
in practice).

Import first lists the target's records (one request per 100) and upserts only the records whose
fields or relationships differ from the file: a second import of the same file sends no write. A
record created in the target seconds before may be missing from that list (eventually consistent,
§7.2); it is then upserted again, an update by externalId, never a duplicate.

CSV: a header ``externalId``, one column per field id (the schema's order), one
``relationships.<id>`` column per relationship. A cell is empty for no value (an empty text and no
value are one thing in CSV; both are "blank" to the API, §7.4). Text, textarea, dropdown, date and
datetime values are written as they are; number and currency (and types beyond the documented
eight) as JSON (``100``, ``12.5``, ``true``); multiselect values and relationship ids joined with
``|``, a ``|`` or ``\\`` inside a value escaped with ``\\``.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal

from reconciler.errors import ApiError, AuthenticationFailed, ReconcilerError
from reconciler.records.api import Record, list_pages, upsert_record
from reconciler.records.files import NdjsonWriter, dumps

if TYPE_CHECKING:
    from reconciler.client import Client
    from reconciler.model import Schema

__all__ = [
    "OPERATORS",
    "ExportResult",
    "ImportResult",
    "TransferError",
    "export_records",
    "filter_params",
    "import_records",
    "read_records",
]

Format = Literal["ndjson", "csv"]
#: List filter operators (§7.4).
OPERATORS = ("eq", "lt", "lte", "gt", "gte", "contains", "in", "blank", "not_blank")
#: Root properties a filter may name without ``fields.`` (§7.4).
ROOT_PROPS = ("id", "externalId", "createdTimestamp", "updatedTimestamp")
#: Field types whose CSV cells are written as they are (strings); the others are JSON.
TEXT_TYPES = frozenset({"text", "textarea", "dropdown", "date", "datetime"})
REL_PREFIX = "relationships."


class TransferError(ReconcilerError):
    """An export or import that cannot run (a bad filter, a file that is not records, unknown fields)."""


@dataclass
class ExportResult:
    count: int
    path: Path | None


@dataclass
class ImportResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)  # (externalId, one error line)

    def summary(self) -> str:
        return (f"{self.created} created, {self.updated} updated, {self.unchanged} unchanged, "
                f"{self.failed} failed")


def filter_params(specs: Iterable[str]) -> dict[str, str]:
    """``FIELD:OP:VALUE`` (``order-total:gte:100``, ``order-link:not_blank``) as list parameters.

    ``FIELD`` is a field id, a root property (``createdTimestamp``) or ``relationships.<id>``; the
    value may hold ``:``. ``blank``/``not_blank`` need no value.
    """
    params: dict[str, str] = {}
    for spec in specs:
        prop, _, rest = spec.partition(":")
        op, sep, value = rest.partition(":")
        op = op.strip().lower()
        if not prop or op not in OPERATORS or (not sep and op not in ("blank", "not_blank")):
            raise TransferError(f"--filter {spec!r}: expected FIELD:OP:VALUE with OP one of {', '.join(OPERATORS)}")
        if prop not in ROOT_PROPS and not prop.startswith(("fields.", REL_PREFIX)):
            prop = f"fields.{prop}"
        params[f"filters[{prop}][{op}]"] = value if sep else "true"
    return params


def portable(record: Record, *, drop_relationships: bool = False) -> dict[str, Any]:
    """The export form of a record (see the module docstring)."""
    fields = sorted((f for f in record.fields if f.value is not None and f.value != []), key=lambda f: f.id)
    rels = {} if drop_relationships else {k: [str(t) for t in v] for k, v in sorted(record.relationships.items())
                                          if v}
    return {"externalId": record.external_id or record.id,
            "fields": [{"id": f.id, "value": f.value} for f in fields], "relationships": rels}


# -- export ---------------------------------------------------------------------------------------


async def export_records(client: Client, schema: Schema, out: Path | None, *, format: Format = "ndjson",
                         filters: Mapping[str, str] | None = None,
                         drop_relationships: bool = False) -> ExportResult:
    """Write the schema's records matching ``filters`` to ``out`` (``None``: standard output), whole
    or not at all (a file is renamed into place when complete, 0600: it holds customer data)."""
    assert schema.id is not None
    columns = _columns(schema)
    if out is None:
        count = await _export_to(client, schema.id, sys.stdout, format, columns, filters, drop_relationships)
        return ExportResult(count, None)
    with NdjsonWriter(out, replace=True) as writer:
        buffer = _WriterText(writer)
        count = await _export_to(client, schema.id, buffer, format, columns, filters, drop_relationships)
        writer.commit()
    return ExportResult(count, out)


class _WriterText(io.TextIOBase):
    """A text stream over an :class:`NdjsonWriter` (for the csv module)."""

    def __init__(self, writer: NdjsonWriter) -> None:
        self._writer = writer

    def write(self, text: str) -> int:
        self._writer.write_text(text)
        return len(text)


async def _export_to(client: Client, schema_id: str, stream: IO[str] | io.TextIOBase, format: Format,
                     columns: _Columns, filters: Mapping[str, str] | None, drop_relationships: bool) -> int:
    count = 0
    table = csv.writer(stream, lineterminator="\n") if format == "csv" else None  # type: ignore[arg-type]
    if table is not None:
        table.writerow(columns.header(drop_relationships))
    async for page in list_pages(client, schema_id, filters):
        for record in page.records:
            doc = portable(record, drop_relationships=drop_relationships)
            if table is not None:
                table.writerow(columns.row(doc, drop_relationships))
            else:
                stream.write(dumps(doc) + "\n")
            count += 1
    return count


@dataclass(frozen=True)
class _Columns:
    fields: list[tuple[str, str]]  # (id, type)
    relationships: list[str]

    def header(self, drop_relationships: bool = False) -> list[str]:
        rels = [] if drop_relationships else [REL_PREFIX + r for r in self.relationships]
        return ["externalId", *(f for f, _t in self.fields), *rels]

    def row(self, doc: Mapping[str, Any], drop_relationships: bool) -> list[str]:
        values = {f["id"]: f["value"] for f in doc["fields"]}
        unknown = sorted(set(values) - {f for f, _t in self.fields})
        if unknown:
            raise TransferError(f"record {doc['externalId']}: field {unknown[0]} is not in the schema")
        cells = [str(doc["externalId"])]
        cells += [_cell(values.get(fid), ftype) for fid, ftype in self.fields]
        if not drop_relationships:
            cells += [_join([str(t) for t in doc["relationships"].get(r, [])]) for r in self.relationships]
        return cells


def _columns(schema: Schema) -> _Columns:
    return _Columns([(f.id, str(getattr(f.type, "value", f.type))) for f in schema.fields if not f.deleted],
                    [r.id for r in schema.relationships])


def _cell(value: Any, ftype: str) -> str:
    if value is None or value == []:
        return ""
    if ftype == "multiselect" and isinstance(value, list):
        return _join([str(v) for v in value])
    if ftype in TEXT_TYPES and isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _join(items: Sequence[str]) -> str:
    return "|".join(i.replace("\\", "\\\\").replace("|", "\\|") for i in items)


def _split(cell: str) -> list[str]:
    if cell == "":
        return []
    items, cur, i = [], [], 0
    while i < len(cell):
        ch = cell[i]
        if ch == "\\" and i + 1 < len(cell):
            cur.append(cell[i + 1])
            i += 2
            continue
        if ch == "|":
            items.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
        i += 1
    items.append("".join(cur))
    return items


# -- import ---------------------------------------------------------------------------------------


def read_records(source: Path, schema: Schema, format: Format | None = None) -> list[dict[str, Any]]:
    """The records of an export (or backup) file in export form; ``format`` from the suffix when
    ``None`` (``.csv``, else ndjson). A bad line or cell is a one-line :class:`TransferError`."""
    format = format or ("csv" if source.suffix.lower() == ".csv" else "ndjson")
    try:
        text = source.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TransferError(f"{source}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TransferError(f"{source}: cannot read ({exc.__class__.__name__})") from None
    if format == "csv":
        return list(_csv_records(source, text, _columns(schema)))
    docs = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            docs.append(portable(Record.from_api(json.loads(line))))
        except (ValueError, ReconcilerError):
            raise TransferError(f"{source}:{n}: not a record (one JSON object a line)") from None
    return docs


def _csv_records(source: Path, text: str, columns: _Columns) -> Iterator[dict[str, Any]]:
    rows = csv.reader(io.StringIO(text))
    header = next(rows, None)
    if not header or header[0] != "externalId":
        raise TransferError(f"{source}: not a records CSV (the first column must be externalId)")
    types = dict(columns.fields)
    for col in header[1:]:
        if col not in types and not (col.startswith(REL_PREFIX) and col[len(REL_PREFIX):] in columns.relationships):
            raise TransferError(f"{source}: column {col} is not a field or relationship of the schema")
    for n, row in enumerate(rows, 2):
        if len(row) != len(header):
            raise TransferError(f"{source}:{n}: {len(row)} cells, the header has {len(header)}")
        if not row[0]:
            raise TransferError(f"{source}:{n}: no externalId")
        fields, rels = [], {}
        for col, cell in zip(header[1:], row[1:], strict=True):
            if col.startswith(REL_PREFIX):
                if cell:
                    rels[col[len(REL_PREFIX):]] = _split(cell)
                continue
            if cell == "":
                continue
            ftype = types[col]
            if ftype == "multiselect":
                value: Any = _split(cell)
            elif ftype in TEXT_TYPES:
                value = cell
            else:
                try:
                    value = json.loads(cell)
                except ValueError:
                    raise TransferError(f"{source}:{n}: {col}: {cell!r} is not a {ftype} value") from None
            fields.append({"id": col, "value": value})
        yield {"externalId": row[0], "fields": sorted(fields, key=lambda f: f["id"]),
               "relationships": dict(sorted(rels.items()))}


async def import_records(client: Client, schema: Schema, source: Path, *, format: Format | None = None,
                         drop_relationships: bool = False) -> ImportResult:
    """Upsert the records of ``source`` into ``schema`` by externalId (see the module docstring)."""
    assert schema.id is not None
    docs = read_records(source, schema, format)
    live = {f.id for f in schema.fields if not f.deleted}
    unknown = sorted({f["id"] for d in docs for f in d["fields"]} - live)
    if unknown:
        raise TransferError(f"{source}: field {', '.join(unknown)} is not in schema {schema.slug}; nothing imported")
    rels = {r.id for r in schema.relationships}
    unknown = sorted({r for d in docs for r in d["relationships"]} - rels) if not drop_relationships else []
    if unknown:
        raise TransferError(f"{source}: relationship {', '.join(unknown)} is not in schema {schema.slug} "
                            "(--drop-relationships leaves them out); nothing imported")
    existing: dict[str, dict[str, Any]] = {}
    async for page in list_pages(client, schema.id):
        for record in page.records:
            if record.external_id is not None:
                existing[record.external_id] = portable(record)
    result = ImportResult()
    for doc in docs:
        if drop_relationships:
            doc = {**doc, "relationships": {}}
        key = str(doc["externalId"])
        if existing.get(key) == doc:
            result.unchanged += 1
            continue
        body = Record.model_validate(doc).upsert_body(with_id=False, drop_relationships=drop_relationships)
        try:
            await upsert_record(client, schema.id, body)
        except AuthenticationFailed:
            raise
        except ApiError as exc:
            result.failed += 1
            result.failures.append((key, str(exc)))
            continue
        if key in existing:
            result.updated += 1
        else:
            result.created += 1
        existing[key] = doc
    return result
