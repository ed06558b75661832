"""Restore: put the values of a backup (:mod:`reconciler.records.backup`) back into the account.

For each backed-up record: read the record as it is now (by id; when that is gone, by externalId;
when that is gone too, it is *missing*, reported and not re-created), and upsert it with its current
fields and relationships unchanged except the restored field(s). ``field_map`` (``{OLD: NEW}``,
``records restore --field OLD --into NEW``) restores a field's values into another field, e.g. the
one re-created under a new id after the delete (a field id cannot be re-used, NA302). A record whose
current value already equals the backup's is not written (*already*).

Between the read and the upsert another writer may change the record; the upsert replaces the
fields whole (§7.2), so that change would be undone. The window is one request long; the API has
no conditional write (no If-Match, no version) to close it.

Resumable: each outcome is appended to a journal (ndjson, ``restore.journal.ndjson`` in the backup
directory by default), fsynced after every batch, and a re-run skips the records it lists for the
same file and target field(s). A crash between an upsert and its journal line costs one read on the
re-run: the record then holds the value and is counted *already*.

Every upsert names an existing record by id (and its externalId when it has one): an update,
safe to repeat after a lost response (:func:`reconciler.records.api.upsert_record`).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reconciler.errors import ApiError, AuthenticationFailed, NotFound, ReconcilerError
from reconciler.records.api import Record, get_record, get_record_by_external, upsert_record
from reconciler.records.backup import read_manifest
from reconciler.records.files import DataFileError, Journal, read_journal, sha256_of

if TYPE_CHECKING:
    from reconciler.client import Client
    from reconciler.model import Schema

__all__ = ["JOURNAL", "RestoreError", "RestoreResult", "restore_records"]

JOURNAL = "restore.journal.ndjson"
#: Records read and written concurrently (the client's limiter paces them); the journal is
#: fsynced and ``on_progress`` told after each batch.
BATCH = 8

Progress = Callable[[int, int], None]


class RestoreError(ReconcilerError):
    """A backup that cannot be restored (changed since it was written, its schema or field gone)."""


@dataclass
class RestoreResult:
    restored: int = 0
    already: int = 0
    missing: int = 0
    failed: int = 0
    #: Records a journal of an earlier run lists as done (not read again).
    skipped: int = 0
    missing_ids: list[str] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)  # (record id, one error line)

    @property
    def total(self) -> int:
        return self.restored + self.already + self.missing + self.failed + self.skipped

    def summary(self) -> str:
        parts = [f"{self.restored} restored", f"{self.already} already held the value", f"{self.missing} missing",
                 f"{self.failed} failed"]
        if self.skipped:
            parts.append(f"{self.skipped} done in an earlier run")
        return ", ".join(parts)


@dataclass(frozen=True)
class _Item:
    file: str
    into: tuple[tuple[str, str], ...]  # (field in the backup, field to restore into)
    record: Record

    @property
    def key(self) -> str:
        return f"{self.file}|{','.join(f'{a}>{b}' for a, b in self.into)}|{self.record.id}"


async def restore_records(client: Client, backup_path: Path, *, field_map: Mapping[str, str] | None = None,
                          journal: Path | None = None, on_progress: Progress | None = None,
                          batch: int = BATCH) -> RestoreResult:
    """Restore the backup in directory ``backup_path`` (see the module docstring); the counts.

    With ``field_map`` only the files of the fields it names are restored (a schema backup: all its
    records, the named fields restored into their new ids). Each file's sha256 must still match the
    manifest. The schema is found by the manifest's id, else by its slug (a re-created schema).
    """
    manifest = read_manifest(backup_path)
    schema = await _live_schema(client, manifest)
    assert schema.id is not None
    live = {f.id for f in schema.fields if not f.deleted}
    items = _items(backup_path, manifest, dict(field_map or {}), live)
    journal = journal or backup_path / JOURNAL
    done = _journal_done(journal)
    result = RestoreResult()
    todo = [item for item in items if item.key not in done]
    result.skipped = len(items) - len(todo)
    with Journal(journal) as log:
        for start in range(0, len(todo), max(1, batch)):
            chunk = todo[start:start + max(1, batch)]
            outcomes = await asyncio.gather(*(_restore_one(client, schema.id, item) for item in chunk))
            for item, (outcome, detail) in zip(chunk, outcomes, strict=True):
                if outcome == "failed":
                    result.failed += 1
                    result.failures.append((str(item.record.id), detail))
                    continue
                if outcome == "restored":
                    result.restored += 1
                elif outcome == "already":
                    result.already += 1
                else:
                    result.missing += 1
                    result.missing_ids.append(str(item.record.id))
                log.add({"key": item.key, "outcome": outcome})
            log.sync()
            if on_progress is not None:
                on_progress(result.skipped + start + len(chunk), len(items))
    return result


async def _live_schema(client: Client, manifest: Mapping[str, Any]) -> Schema:
    info = manifest.get("schema") or {}
    try:
        return await client.get_schema(str(info.get("id")))
    except NotFound:
        pass
    found = await client.find_schema_by_slug(str(info.get("slug")))
    if found is None:
        raise RestoreError(f"schema {info.get('slug')} is not in the account (re-create it first)")
    return found


def _items(directory: Path, manifest: Mapping[str, Any], field_map: dict[str, str], live: set[str]) -> list[_Item]:
    files = manifest["files"]
    known = {f.get("field") for f in files} | {fid for f in files if f.get("field") is None for fid in field_map}
    unknown = sorted(set(field_map) - known)
    if unknown:
        raise RestoreError(f"the backup holds no field {', '.join(unknown)} (it holds: "
                           f"{', '.join(str(f.get('field') or 'all records') for f in files)})")
    items: list[_Item] = []
    for entry in files:
        fid = entry.get("field")
        if field_map and fid is not None and fid not in field_map:
            continue
        path = directory / str(entry["file"])
        if sha256_of_or_none(path) != entry.get("sha256"):
            raise RestoreError(f"{path}: missing or changed since the backup (its sha256 is not the manifest's)")
        for record in _read_ndjson(path):
            olds = [fid] if fid is not None else [f.id for f in record.fields]
            into = tuple((old, field_map.get(old, old)) for old in olds)
            for _old, new in into:
                if new not in live:
                    raise RestoreError(f"field {new} is not in the schema (re-create it, or restore into another "
                                       "field with --field OLD --into NEW)")
            items.append(_Item(str(entry["file"]), into, record))
    return items


def sha256_of_or_none(path: Path) -> str | None:
    try:
        return sha256_of(path)
    except OSError:
        return None


def _read_ndjson(path: Path) -> list[Record]:
    records = []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                records.append(Record.from_api(json.loads(line)))
            except (ValueError, ReconcilerError):
                raise DataFileError(f"{path}:{n}: not a record line") from None
    return records


async def _restore_one(client: Client, schema_id: str, item: _Item) -> tuple[str, str]:
    """("restored" | "already" | "missing" | "failed", an error line for a failure)."""
    saved = item.record
    try:
        current = await get_record(client, schema_id, saved.id) if saved.id else None
        if current is None and saved.external_id:
            current = await get_record_by_external(client, schema_id, saved.external_id)
        if current is None:
            return "missing", ""
        wanted = current
        for old, new in item.into:
            wanted = wanted.with_value(new, saved.value_of(old))
        if all(current.value_of(new) == saved.value_of(old) and (current.has(new) or saved.value_of(old) is None)
               for old, new in item.into):
            return "already", ""
        await upsert_record(client, schema_id, wanted.upsert_body())
    except AuthenticationFailed:
        raise
    except ApiError as exc:
        return "failed", str(exc)
    return "restored", ""


def _journal_done(path: Path) -> set[str]:
    """The keys an earlier run finished (a torn last line, from a crash mid-write, is ignored)."""
    return {e["key"] for e in read_journal(path) if isinstance(e.get("key"), str)}

