"""SQLite persistence of the sandbox: schemas, records (plus an index table for filters), contacts.

One connection guarded by a lock (safe for uvicorn's loop, test threads and seeding threads); WAL
for files, so the data survives a restart on the same file. Schemas and contacts are JSON documents;
records keep their fields and relationships as JSON objects, and ``record_values`` holds one row per
non-blank value (``key`` = ``fields.<id>`` or ``relationships.<id>``) so filtered counts over 100k
records are index scans.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from reconciler.sandbox import clock
from reconciler.sandbox.values import index_rows

_DDL = """
CREATE TABLE IF NOT EXISTS schemas (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    doc TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS records (
    rid INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    schema_id TEXT NOT NULL,
    external_id TEXT,
    created TEXT NOT NULL,
    updated TEXT NOT NULL,
    fields TEXT NOT NULL,
    relationships TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS records_schema ON records(schema_id, rid);
CREATE UNIQUE INDEX IF NOT EXISTS records_external ON records(schema_id, external_id)
    WHERE external_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS record_values (
    rid INTEGER NOT NULL,
    schema_id TEXT NOT NULL,
    key TEXT NOT NULL,
    text_value TEXT,
    num_value REAL
);
{value_indexes}
CREATE TABLE IF NOT EXISTS contacts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    email TEXT NOT NULL UNIQUE COLLATE NOCASE,
    doc TEXT NOT NULL
);
"""

#: The indexes of ``record_values``; :meth:`Store.seed_records` drops and rebuilds them for big batches.
_VALUE_INDEXES = {
    "rv_text": "CREATE INDEX IF NOT EXISTS rv_text ON record_values(schema_id, key, text_value, rid)",
    "rv_num": "CREATE INDEX IF NOT EXISTS rv_num ON record_values(schema_id, key, num_value, rid)",
    "rv_rid": "CREATE INDEX IF NOT EXISTS rv_rid ON record_values(rid, key, text_value, num_value)",
}
_DDL = _DDL.replace("{value_indexes}", ";\n".join(_VALUE_INDEXES.values()) + ";")
#: Index rows from which a seed batch rebuilds the value indexes instead of updating them.
_BULK_ROWS = 50_000

ROOT_COLUMNS = {
    "id": "id",
    "externalId": "external_id",
    "schemaId": "schema_id",
    "createdTimestamp": "created",
    "updatedTimestamp": "updated",
}


@dataclass(frozen=True)
class Cond:
    """One compiled record filter.

    ``target`` is a root column name (one of ROOT_COLUMNS' values) when ``key`` is None, else
    ``key`` is an index key; ``value_col`` is ``text_value`` or ``num_value``; ``op`` one of
    eq lt lte gt gte contains in blank not_blank; ``values`` already converted. ``hidden`` means the
    values are not visible (a deleted field): nothing is non-blank.
    """

    op: str
    values: tuple[Any, ...] = ()
    target: str | None = None
    key: str | None = None
    value_col: str = "text_value"
    hidden: bool = False
    multi: bool = True  # False: at most one index row per record (COUNT(*) instead of COUNT(DISTINCT))


@dataclass(frozen=True)
class Order:
    direction: str  # "ASC" | "DESC"
    target: str | None = None
    key: str | None = None
    value_col: str = "text_value"


@dataclass
class RecordRow:
    rid: int
    id: str
    schema_id: str
    external_id: str | None
    created: str
    updated: str
    fields: dict[str, Any] = field(default_factory=dict)
    relationships: dict[str, list[str]] = field(default_factory=dict)


#: The modulus of the shuffled record order (see :meth:`Store.list_records`).
SHUFFLE_PRIME = 2_147_483_647
_CMP = {"eq": "=", "lt": "<", "lte": "<=", "gt": ">", "gte": ">="}
_RECORD_COLS = "rid, id, schema_id, external_id, created, updated, fields, relationships"


def _like(pattern: str) -> str:
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_").replace("*", "%")
    return f"%{escaped}%"


class Store:
    """The sandbox's database. ``path`` is a file path or ``":memory:"``."""

    def __init__(self, path: str = ":memory:") -> None:
        self.path = str(path)
        self._lock = threading.RLock()
        self._depth = 0  # nesting of transaction() in the thread holding the lock
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        if self.path != ":memory:":
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_DDL)
        #: The API layer's rendered JSON of schemas: ``(id, showFields=all) -> (stored text, rendered)``.
        #: A cache for the schema list and GET (``api_schemas``), valid only while the stored text is
        #: the same, which ``wire.rendered_schema_json`` checks on every use (a write through any path,
        #: or by another process on the same file, is never served stale); writes here drop entries.
        self.rendered: dict[tuple[str, bool], tuple[str, str]] = {}

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Hold the lock and run one atomic transaction (``BEGIN IMMEDIATE``: also against other
        processes on the same file). Nested calls join the outer transaction, so an API write does
        its reads and writes in one ``with store.transaction():`` against the latest state."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self._db
                finally:
                    self._depth -= 1
                return
            self._db.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield self._db
            except BaseException:
                self._depth = 0
                self._db.execute("ROLLBACK")
                raise
            self._depth = 0
            self._db.execute("COMMIT")

    def _query(self, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, tuple(params)).fetchall()

    # -- schemas -------------------------------------------------------------------------------
    def list_schemas(self) -> list[dict[str, Any]]:
        return [json.loads(doc) for (doc,) in self._query("SELECT doc FROM schemas ORDER BY seq")]

    def schema_refs(self) -> list[dict[str, str]]:
        """``[{"id", "slug"}, …]`` of every schema, in creation order: what the account-wide rules
        (slug uniqueness, relationship namespaces, the schema cap) read, without decoding whole
        documents (a create would otherwise decode every stored schema)."""
        rows = self._query("SELECT id, json_extract(doc, '$.slug') FROM schemas ORDER BY seq")
        return [{"id": str(i), "slug": str(slug)} for i, slug in rows]

    def schema_page(self, offset: int, limit: int) -> tuple[int, list[tuple[str, str]]]:
        """``(total, [(id, stored JSON text), …])``: one page of the schemas in creation order (as
        :meth:`list_schemas`), by SQL ``LIMIT``/``OFFSET``, without decoding any document."""
        with self._lock:
            total = self._db.execute("SELECT COUNT(*) FROM schemas").fetchone()[0]
            rows = self._db.execute("SELECT id, doc FROM schemas ORDER BY seq LIMIT ? OFFSET ?",
                                    (limit, offset)).fetchall()
        return int(total), [(str(i), str(doc)) for i, doc in rows]

    def get_schema_text(self, schema_id: str) -> str | None:
        """The stored JSON text of a schema document (what :meth:`get_schema` decodes)."""
        rows = self._query("SELECT doc FROM schemas WHERE id = ?", (schema_id,))
        return str(rows[0][0]) if rows else None

    def get_schema(self, schema_id: str) -> dict[str, Any] | None:
        rows = self._query("SELECT doc FROM schemas WHERE id = ?", (schema_id,))
        return json.loads(rows[0][0]) if rows else None

    def put_schema(self, doc: Mapping[str, Any]) -> None:
        """Insert or replace a schema document (keyed by its ``id``)."""
        with self.transaction() as db:
            text = json.dumps(doc)
            cur = db.execute("UPDATE schemas SET doc = ? WHERE id = ?", (text, doc["id"]))
            if cur.rowcount == 0:
                db.execute("INSERT INTO schemas (id, doc) VALUES (?, ?)", (doc["id"], text))
        self.forget_rendered(str(doc["id"]))

    def forget_rendered(self, schema_id: str) -> None:
        """Drop the API layer's rendered texts of a schema (they are also checked on each use)."""
        for show_all in (False, True):
            self.rendered.pop((schema_id, show_all), None)

    def delete_schema(self, schema_id: str) -> bool:
        """Delete a schema and all of its records."""
        self.forget_rendered(schema_id)
        with self.transaction() as db:
            gone = db.execute("DELETE FROM schemas WHERE id = ?", (schema_id,)).rowcount
            db.execute("DELETE FROM record_values WHERE schema_id = ?", (schema_id,))
            db.execute("DELETE FROM records WHERE schema_id = ?", (schema_id,))
        return bool(gone)

    def purge_deleted_fields(self, schema_id: str | None = None) -> int:
        """U9 hook: forget marked_for_deletion fields for good (their ids become free again)."""
        purged = 0
        with self.transaction() as db:
            for doc in self.list_schemas():
                if schema_id is not None and doc["id"] != schema_id:
                    continue
                dead = [f["id"] for f in doc["fields"] if f.get("status") == "marked_for_deletion"]
                if not dead:
                    continue
                doc["fields"] = [f for f in doc["fields"] if f["id"] not in dead]
                db.execute("UPDATE schemas SET doc = ? WHERE id = ?", (json.dumps(doc), doc["id"]))
                for fid in dead:
                    db.execute(
                        "DELETE FROM record_values WHERE schema_id = ? AND key = ?", (doc["id"], f"fields.{fid}")
                    )
                    db.execute(
                        "UPDATE records SET fields = json_remove(fields, ?) WHERE schema_id = ?",
                        (f'$."{fid}"', doc["id"]),
                    )
                self.forget_rendered(str(doc["id"]))
                purged += len(dead)
        return purged

    # -- records -------------------------------------------------------------------------------
    @staticmethod
    def _row(row: tuple[Any, ...]) -> RecordRow:
        rid, rec_id, sid, ext, created, updated, fields, rels = row
        return RecordRow(rid, rec_id, sid, ext, created, updated, json.loads(fields), json.loads(rels))

    def get_record(self, schema_id: str, record_id: str) -> RecordRow | None:
        rows = self._query(
            f"SELECT {_RECORD_COLS} FROM records WHERE schema_id = ? AND id = ?", (schema_id, record_id)
        )
        return self._row(rows[0]) if rows else None

    def get_record_by_external(self, schema_id: str, external_id: str) -> RecordRow | None:
        rows = self._query(
            f"SELECT {_RECORD_COLS} FROM records WHERE schema_id = ? AND external_id = ?",
            (schema_id, external_id),
        )
        return self._row(rows[0]) if rows else None

    def record_exists(self, schema_id: str, record_id: str) -> bool:
        return bool(self._query("SELECT 1 FROM records WHERE schema_id = ? AND id = ?", (schema_id, record_id)))

    def save_record(self, row: RecordRow, types: Mapping[str, str]) -> RecordRow:
        """Insert (``row.rid == 0``) or replace a record and its index rows; returns it with its rid."""
        with self.transaction() as db:
            params = (
                row.id, row.schema_id, row.external_id, row.created, row.updated,
                json.dumps(row.fields), json.dumps(row.relationships),
            )
            if row.rid:
                db.execute(
                    "UPDATE records SET id=?, schema_id=?, external_id=?, created=?, updated=?, fields=?, "
                    "relationships=? WHERE rid=?",
                    (*params, row.rid),
                )
                db.execute("DELETE FROM record_values WHERE rid = ?", (row.rid,))
            else:
                cur = db.execute(
                    "INSERT INTO records (id, schema_id, external_id, created, updated, fields, relationships) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    params,
                )
                row.rid = int(cur.lastrowid or 0)
            db.executemany(
                "INSERT INTO record_values (rid, schema_id, key, text_value, num_value) VALUES (?, ?, ?, ?, ?)",
                [(row.rid, row.schema_id, k, t, n) for k, t, n in index_rows(types, row.fields, row.relationships)],
            )
        return row

    def delete_record(self, rid: int) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM record_values WHERE rid = ?", (rid,))
            db.execute("DELETE FROM records WHERE rid = ?", (rid,))

    def seed_records(self, schema_id: str, records: Iterable[Mapping[str, Any]], at_ns: int | None = None) -> int:
        """Bulk insert without HTTP or validation (tests, benchmarks). Each item:
        ``{"fields": {id: value}, "externalId"?: str, "relationships"?: {id: [ids]}}``.
        Values should already be in stored form. ``at_ns``: the first record's creation time (default
        now). Returns the number inserted."""
        schema = self.get_schema(schema_id)
        if schema is None:
            raise KeyError(schema_id)
        types = {f["id"]: f["type"] for f in schema["fields"]}
        count = 0
        with self.transaction() as db:
            start = db.execute("SELECT COALESCE(MAX(rid), 0) FROM records").fetchone()[0]
            recs: list[tuple[Any, ...]] = []
            vals: list[tuple[Any, ...]] = []
            base_ns = clock.now_ns() if at_ns is None else at_ns
            for i, item in enumerate(records, start=start + 1):
                fields = dict(item.get("fields") or {})
                rels = {k: [str(v) for v in vs] for k, vs in (item.get("relationships") or {}).items()}
                ts = clock.format_ns(base_ns + (i - start) * 1000)
                recs.append(
                    (i, str(uuid.uuid4()), schema_id, item.get("externalId"), ts, ts, json.dumps(fields),
                     json.dumps(rels))
                )
                vals.extend((i, schema_id, k, t, n) for k, t, n in index_rows(types, fields, rels))
                count += 1
            # a big batch: drop the value indexes and build them again afterwards (one sort each
            # instead of a B-tree insert per row): 100,000 records seed in a third of the time
            rebuild = len(vals) >= _BULK_ROWS
            if rebuild:
                for name in _VALUE_INDEXES:
                    db.execute(f"DROP INDEX IF EXISTS {name}")
            db.executemany(
                "INSERT INTO records (rid, id, schema_id, external_id, created, updated, fields, relationships) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                recs,
            )
            db.executemany(
                "INSERT INTO record_values (rid, schema_id, key, text_value, num_value) VALUES (?, ?, ?, ?, ?)",
                vals,
            )
            if rebuild:
                for sql in _VALUE_INDEXES.values():
                    db.execute(sql)
        clock.advance_past(base_ns + (count + 1) * 1000)  # later writes sort after the seeded ones
        return count

    def _cond_sql(self, schema_id: str, cond: Cond) -> tuple[str, list[Any]]:
        op, vals = cond.op, list(cond.values)
        if cond.key is None:  # a root column
            col = f"r.{cond.target}"
            if op == "blank":
                return f"({col} IS NULL OR {col} = '')", []
            if op == "not_blank":
                return f"({col} IS NOT NULL AND {col} != '')", []
            if op == "contains":
                return f"{col} LIKE ? ESCAPE '\\'", [_like(str(vals[0]))]
            if op == "in":
                return f"{col} IN ({', '.join('?' * len(vals))})", vals
            return f"{col} {_CMP[op]} ?", vals[:1]
        if cond.hidden:
            return ("1" if op == "blank" else "0"), []
        sub = "EXISTS (SELECT 1 FROM record_values v WHERE v.rid = r.rid AND v.key = ?"
        params: list[Any] = [cond.key]
        vc = cond.value_col
        if op in ("blank", "not_blank"):
            return ("NOT " if op == "blank" else "") + sub + ")", params
        if op == "contains":
            return sub + f" AND {vc} LIKE ? ESCAPE '\\')", [*params, _like(str(vals[0]))]
        if op == "in":
            return sub + f" AND {vc} IN ({', '.join('?' * len(vals))}))", params + vals
        return sub + f" AND {vc} {_CMP[op]} ?)", [*params, vals[0]]

    def _fast_count(self, schema_id: str, conds: list[Cond], created_before: str | None) -> int | None:
        """Counts answered from one index alone: no filter, or a single filter on one value key
        (the impact counts: ``not_blank``, ``blank``, ``eq``...). None: use the general query."""
        if created_before is not None or len(conds) > 1 or (conds and conds[0].key is None):
            return None
        count_all = self._db.execute("SELECT COUNT(*) FROM records WHERE schema_id = ?", (schema_id,)).fetchone()[0]
        if not conds:
            return count_all
        cond = conds[0]
        if cond.hidden:
            return count_all if cond.op == "blank" else 0
        what = "DISTINCT rid" if cond.multi else "*"
        sql = f"SELECT COUNT({what}) FROM record_values WHERE schema_id = ? AND key = ?"
        params: list[Any] = [schema_id, cond.key]
        vc, vals = cond.value_col, list(cond.values)
        if cond.op == "contains":
            sql += f" AND {vc} LIKE ? ESCAPE '\\'"
            params.append(_like(str(vals[0])))
        elif cond.op == "in":
            sql += f" AND {vc} IN ({', '.join('?' * len(vals))})"
            params.extend(vals)
        elif cond.op in _CMP:
            sql += f" AND {vc} {_CMP[cond.op]} ?"
            params.append(vals[0])
        present = self._db.execute(sql, params).fetchone()[0]
        return count_all - present if cond.op == "blank" else present

    def list_records(
        self,
        schema_id: str,
        conds: Iterable[Cond] = (),
        orders: Iterable[Order] = (),
        limit: int = 20,
        offset: int = 0,
        created_before: str | None = None,
        shuffle: tuple[int, int] | None = None,
    ) -> tuple[int, list[RecordRow]]:
        """(total matching, one page of records). Filters are ANDed; default order is insertion.
        ``shuffle=(a, b)`` (no ``orders``): the order of ``(rid * a + b) mod P``, a permutation of
        the rids for each ``a`` in [1, P) (P = 2**31 - 1, a prime above any rid)."""
        where, params = ["r.schema_id = ?"], [schema_id]
        if created_before is not None:
            where.append("r.created <= ?")
            params.append(created_before)
        conds = list(conds)
        for cond in conds:
            sql, p = self._cond_sql(schema_id, cond)
            where.append(sql)
            params.extend(p)
        order_sql: list[str] = []
        order_params: list[Any] = []
        for order in orders:
            if order.key is None:
                order_sql.append(f"r.{order.target} {order.direction}")
            else:
                order_sql.append(
                    f"(SELECT MIN({order.value_col}) FROM record_values v WHERE v.rid = r.rid AND v.key = ?) "
                    f"{order.direction}"
                )
                order_params.append(order.key)
        if shuffle is not None and not order_sql:
            order_sql.append(f"((r.rid * ?) + ?) % {SHUFFLE_PRIME}")
            order_params.extend(shuffle)
        order_sql.append("r.rid ASC")
        where_sql = " AND ".join(where)
        with self._lock:
            total = self._fast_count(schema_id, conds, created_before)
            if total is None:
                total = self._db.execute(f"SELECT COUNT(*) FROM records r WHERE {where_sql}", params).fetchone()[0]
            rows = self._db.execute(
                f"SELECT {_RECORD_COLS} FROM records r WHERE {where_sql} ORDER BY {', '.join(order_sql)} "
                "LIMIT ? OFFSET ?",
                [*params, *order_params, limit, offset],
            ).fetchall()
        return total, [self._row(row) for row in rows]

    # -- contacts ------------------------------------------------------------------------------
    def get_contact_by_email(self, email: str) -> dict[str, Any] | None:
        rows = self._query("SELECT doc FROM contacts WHERE email = ?", (email,))
        return json.loads(rows[0][0]) if rows else None

    def get_contacts(self, ids: Iterable[int]) -> dict[int, dict[str, Any]]:
        """The contact documents of ``ids`` by id (unknown ids are left out)."""
        nums = sorted(set(ids))
        found: dict[int, dict[str, Any]] = {}
        for start in range(0, len(nums), 500):  # below SQLite's bound-parameter limit
            chunk = nums[start:start + 500]
            rows = self._query(f"SELECT id, doc FROM contacts WHERE id IN ({', '.join('?' * len(chunk))})", chunk)
            found.update((int(cid), json.loads(doc)) for cid, doc in rows)
        return found

    def contact_exists(self, contact_id: int) -> bool:
        return bool(self._query("SELECT 1 FROM contacts WHERE id = ?", (contact_id,)))

    def save_contact(self, doc: dict[str, Any]) -> dict[str, Any]:
        """Insert (no ``id`` in doc) or replace a contact; returns the doc with its string ``id``."""
        with self.transaction() as db:
            if doc.get("id"):
                db.execute("UPDATE contacts SET email = ?, doc = ? WHERE id = ?",
                           (doc["email"], json.dumps(doc), int(doc["id"])))
            else:
                cur = db.execute("INSERT INTO contacts (email, doc) VALUES (?, '{}')", (doc["email"],))
                doc["id"] = str(cur.lastrowid)
                db.execute("UPDATE contacts SET doc = ? WHERE id = ?", (json.dumps(doc), cur.lastrowid))
        return doc
