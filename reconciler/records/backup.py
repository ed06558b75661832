"""Backups of the record values a destructive change is about to delete.

:func:`backup_records` saves, before a field delete, the field's non-blank records (one
``not_blank`` list per field, one file per field: ``<slug>.<field>.ndjson``; a record holding two
of the deleted fields is in both files), and before a schema delete all its records
(``<slug>.ndjson``). Each line is the record as the API sent it (id, externalId, fields,
relationships, timestamps). ``manifest.json`` beside them names the target (its URL, never the
token), the schema, each file's field, count and sha256, the reconciler version and the time.

Files are 0600 and directories 0700 (:mod:`reconciler.records.files`): a backup is customer data.
Each file is written to a temporary name and renamed when whole; the manifest is written last, so
a directory with a manifest holds a complete backup.

The count read is checked against ``expected`` (the plan's impact count): a difference raises
:class:`BackupCountMismatch` after the files are written (they are kept, and named), so that the
caller refuses the delete. A value written to the field after its page was read is not in the
backup; the list is eventually consistent (§7.2, UNKNOWN how long a new record stays out of it).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from reconciler import __version__
from reconciler.errors import ReconcilerError
from reconciler.records.api import PAGE_LIMIT, list_pages, not_blank
from reconciler.records.files import FILE_MODE, DataFileError, NdjsonWriter, make_private_dir
from reconciler.writes import write_atomic

if TYPE_CHECKING:
    from reconciler.client import Client

__all__ = [
    "BACKUP_FORMAT",
    "MANIFEST",
    "Backup",
    "BackupCountMismatch",
    "BackupFile",
    "backup_records",
    "backup_requests",
    "default_backup_dir",
    "read_manifest",
]

BACKUP_FORMAT = "reconciler-backup/1"
MANIFEST = "manifest.json"

Progress = Callable[[int, int], None]


class SchemaRef(Protocol):
    """What a backup needs of a schema (a :class:`reconciler.model.Schema` is one)."""

    @property
    def id(self) -> str | None: ...

    @property
    def slug(self) -> str: ...


class BackupCountMismatch(ReconcilerError):
    """The records read for a backup are not as many as the plan counted: the delete must not run."""


@dataclass(frozen=True)
class BackupFile:
    """One file of a backup: its name in the directory, the field (``None``: the whole schema), how
    many records it holds and its sha256."""

    name: str
    field: str | None
    count: int
    sha256: str


@dataclass
class Backup:
    directory: Path
    schema_id: str
    slug: str
    files: list[BackupFile] = field(default_factory=list)

    @property
    def manifest(self) -> Path:
        return self.directory / MANIFEST

    @property
    def total(self) -> int:
        """Record lines in all files (a record is counted once per file it is in)."""
        return sum(f.count for f in self.files)

    def count(self, field_id: str | None = None) -> int:
        return sum(f.count for f in self.files if f.field == field_id)


def backup_requests(count: int) -> int:
    """List requests of one backup file of ``count`` records (one page at least): for the plan's estimate."""
    return max(1, math.ceil(count / PAGE_LIMIT))


def default_backup_dir(root: Path, target_name: str, now: datetime | None = None) -> Path:
    """``<root>/.reconciler/backups/<UTC time>-<target name>/`` (the name made safe for a path; ``-2``,
    ``-3`` … after it when that folder exists already)."""
    when = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in target_name).strip(".-") or "target"
    base = root / ".reconciler" / "backups" / f"{when}-{safe}"
    path, n = base, 1
    while path.exists():  # two applies within a second: each gets its own folder
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


def public_url(url: str) -> str:
    """The URL without user info, query or fragment (where a token could ride along)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


async def backup_records(client: Client, schema: SchemaRef, field_ids: Sequence[str] | None, directory: Path, *,
                         expected: int | Mapping[str, int] | None, target_name: str | None = None,
                         on_progress: Progress | None = None) -> Backup:
    """Save the records whose values a delete will lose (see the module docstring) into ``directory``
    (created 0700 if missing; it must not hold a backup already).

    ``field_ids``: the fields a field delete removes; ``None``: a schema delete (all records).
    ``expected``: the plan's count (an int: the sum over all files; a mapping: per field id).
    ``on_progress(done, total)`` is called after each page (``total``: ``expected`` when given,
    else the list's ``meta.total`` as known so far).
    """
    if schema.id is None:
        raise ReconcilerError(f"schema {schema.slug}: no id, nothing to back up")
    make_private_dir(directory)
    if (directory / MANIFEST).exists():
        raise DataFileError(f"{directory}: holds a backup already; give a new directory")
    backup = Backup(directory, schema.id, schema.slug)
    wanted: list[str | None] = list(field_ids) if field_ids is not None else [None]
    expected_total = (sum(expected.values()) if isinstance(expected, Mapping) else expected)
    listed: dict[str | None, int] = {}
    done = 0
    for fid in wanted:
        name = f"{schema.slug}.{fid}.ndjson" if fid is not None else f"{schema.slug}.ndjson"
        with NdjsonWriter(directory / name) as out:
            async for page in list_pages(client, schema.id, not_blank(fid) if fid is not None else None):
                for record in page.records:
                    out.write(record.to_json())
                done += len(page.records)
                listed[fid] = page.total
                if on_progress is not None:
                    on_progress(done, expected_total if expected_total is not None else sum(listed.values()))
            out.commit()
        backup.files.append(BackupFile(name, fid, out.count, out.sha256))
    problems = _count_problems(backup, wanted, expected, listed)
    _write_manifest(backup, client, target_name, expected, problems)
    if problems:
        raise BackupCountMismatch(f"the backup of {schema.slug} in {directory}/ does not match the plan: "
                                  + "; ".join(problems))
    return backup


def _count_problems(backup: Backup, wanted: list[str | None], expected: int | Mapping[str, int] | None,
                    listed: Mapping[str | None, int]) -> list[str]:
    problems = []
    for fid in wanted:
        what = f"field {fid}" if fid is not None else "the schema"
        got = backup.count(fid)
        if got < listed.get(fid, 0):
            problems.append(f"{what}: {got} records read, the list reported {listed[fid]}")
        if isinstance(expected, Mapping) and fid is not None and fid in expected and expected[fid] != got:
            problems.append(f"{what}: {got} records read, the plan counted {expected[fid]}")
    if isinstance(expected, int) and expected != backup.total:
        problems.append(f"{backup.total} records read, the plan counted {expected}")
    return problems


def _write_manifest(backup: Backup, client: Client, target_name: str | None,
                    expected: int | Mapping[str, int] | None, problems: list[str]) -> None:
    doc: dict[str, Any] = {
        "format": BACKUP_FORMAT,
        "reconciler_version": __version__,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "target": {"url": public_url(str(client.base_url)), "name": target_name},
        "schema": {"id": backup.schema_id, "slug": backup.slug},
        "kind": "schema" if backup.files and backup.files[0].field is None else "fields",
        "files": [{"file": f.name, "field": f.field, "count": f.count, "sha256": f.sha256} for f in backup.files],
        "total": backup.total,
        "expected": dict(expected) if isinstance(expected, Mapping) else expected,
        "complete": not problems,
        "problems": problems,
    }
    write_atomic(backup.manifest, json.dumps(doc, indent=2, ensure_ascii=False) + "\n", mode=FILE_MODE)


def read_manifest(directory: Path) -> dict[str, Any]:
    """The manifest of the backup in ``directory``; one-line :class:`DataFileError` when it is not one."""
    path = directory / MANIFEST
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataFileError(f"{directory}: not a backup (no {MANIFEST})") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise DataFileError(f"{path}: cannot read the manifest ({exc.__class__.__name__})") from None
    if not isinstance(doc, dict) or doc.get("format") != BACKUP_FORMAT or not isinstance(doc.get("files"), list):
        raise DataFileError(f"{path}: not a {BACKUP_FORMAT} manifest")
    return doc
