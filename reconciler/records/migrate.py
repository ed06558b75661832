"""The copy of a field migration (expand/contract, ``migrate_from``): the old field's record values,
converted, written into the new field (:func:`copy_field`), resumable through a journal.

The old field's non-blank records are read page by page (:func:`~reconciler.records.api.list_pages`,
``not_blank``). For each record (:func:`decide`): a value the conversion cannot carry is left alone
(counted, never written); a record whose new field already holds the converted value is not written
(*already*); any other is read again by id right before its write and upserted with every other
field and the relationships as that read shows them (the upsert replaces ``fields`` whole, §7.2).

The re-read: when the record's ``updatedTimestamp`` differs from the list's, the record changed since
the page was read; its value is converted again from the re-read (and it may no longer need a
write). Without ``updatedTimestamp`` the re-read is used all the same. The race that remains: a
write by someone else between our re-read and our upsert (one round trip) is overwritten by the
upsert, which sends the record as re-read. The API has no conditional write (no If-Match, no
version) to close it. A write to the *old* field after its record was copied is not carried either:
expand/contract expects the writers to move to the new field before the old one is deleted, and the
next plan counts (and copies) what differs.

Lost answers: the upsert names the record by its id (and its externalId when it has one), an update
by the §7.2 matrix, so repeating it cannot create a record. It is not repeated blindly: after a 5xx
or a lost response the record is read again, and written again only when it does not hold the value.

The journal (append-only ndjson, 0600, fsynced after each batch): one line per record done
(``copied`` or ``already``) with the ``updatedTimestamp`` it was read with, then a ``complete`` line
with the counts. A run resumes from the lines after the last ``complete``: a record it lists is not
read again while the list still shows it as it was read then (a list that lags our write), and is
decided again from the list when it changed since. Killed between an upsert and its journal line,
the re-run finds the record holding the value (*already*): no record is written twice.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from reconciler.conversions import Conversion, Unconvertible, same_value
from reconciler.errors import ReconcilerError, ServerError, TransportFailure
from reconciler.model import Field, excerpt
from reconciler.records.api import PAGE_LIMIT, Record, get_record, list_pages, not_blank, upsert_record
from reconciler.records.files import DataFileError, Journal, make_private_dir, read_journal

if TYPE_CHECKING:
    from reconciler.client import Client

__all__ = ["BATCH", "CopyError", "CopyProgress", "CopyResult", "Decision", "copy_field", "copy_requests", "decide",
           "default_migrations_dir", "journal_path", "read_complete", "sample"]

#: Records read again and written concurrently (the client's limiter paces them); the journal is
#: fsynced and the progress told after each batch.
BATCH = 8
#: Writes of one record after ambiguous failures (each after a re-read that shows it still needs one).
WRITE_ATTEMPTS = 6
#: Samples of unconvertible values a plan shows.
SAMPLES = 5

Outcome = Literal["copy", "already", "unconvertible"]


class CopyError(ReconcilerError):
    """A copy that cannot go on (the journal unreadable, the counts wrong at the end)."""


@dataclass(frozen=True)
class Decision:
    """What a record needs: ``copy`` (write ``value``), ``already`` (the new field holds it), or
    ``unconvertible`` (``why``)."""

    outcome: Outcome
    value: Any = None
    why: str = ""


def decide(record: Record, old: str, new: Field, conversion: Conversion) -> Decision:
    """What the copy does with ``record`` (whose ``old`` field holds a value)."""
    converted = conversion.convert(record.value_of(old), new)
    if isinstance(converted, Unconvertible):
        return Decision("unconvertible", why=converted.reason)
    if record.has(new.id) and same_value(record.value_of(new.id), converted):
        return Decision("already", converted)
    return Decision("copy", converted)


def sample(record: Record, old: str, why: str) -> str:
    """``'12,5' (not a number)``: a short excerpt of the value, never the whole of a long one."""
    return f"{excerpt(record.value_of(old), 24)} ({why})"


def copy_requests(records: int, to_copy: int) -> int:
    """Requests of a copy when nothing fails: the pages of the old field's non-blank records, a
    read and an upsert per record to copy, and the count at the end."""
    return max(1, -(-records // PAGE_LIMIT)) + 2 * to_copy + 1


def default_migrations_dir(root: Path, base_url: str) -> Path:
    """``<root>/.reconciler/migrations/<target>/``: the target as its host and port (no token or
    path can ride along), made safe for a path."""
    parts = urlsplit(base_url)
    name = f"{parts.hostname or 'target'}{f'-{parts.port}' if parts.port else ''}"
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in name).strip(".-") or "target"
    return root / ".reconciler" / "migrations" / safe


def journal_path(directory: Path, slug: str, field_id: str) -> Path:
    """``<directory>/<slug>.<field>.journal``."""
    return directory / f"{slug}.{field_id}.journal"


@dataclass(frozen=True)
class CopyProgress:
    """``done`` of ``total`` records handled (copied, already, unconvertible, missing), with an ETA
    from the pace so far (``None`` before the first batch)."""

    subject: str
    done: int
    total: int
    copied: int
    eta_seconds: float | None


@dataclass
class CopyResult:
    copied: int = 0
    already: int = 0
    unconvertible: int = 0
    missing: int = 0  # deleted between the list and the write
    #: records an earlier, interrupted run journaled as done (not read again)
    resumed: int = 0
    interrupted: bool = False
    #: the new field's non-blank records counted at the end (``None``: not counted)
    new_count: int | None = None
    samples: list[str] = field(default_factory=list)

    @property
    def convertible(self) -> int:
        return self.copied + self.already + self.resumed

    def summary(self) -> str:
        parts = [f"{self.copied:,} copied", f"{self.already:,} already held the value"]
        if self.resumed:
            parts.append(f"{self.resumed:,} done by an earlier run")
        parts.append(f"{self.unconvertible:,} not convertible")
        if self.missing:
            parts.append(f"{self.missing:,} deleted meanwhile")
        return ", ".join(parts)


Progress = Callable[[CopyProgress], None]


async def copy_field(client: Client, schema_id: str, slug: str, old: str, new: Field, conversion: Conversion,
                     journal: Path, *, on_progress: Progress | None = None,
                     should_stop: Callable[[], bool] | None = None, batch: int = BATCH,
                     sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> CopyResult:
    """Copy ``old``'s values into ``new`` on the schema's records (see the module docstring).

    Raises :class:`CopyError` when the counts do not add up at the end, and the client's errors
    (the journal holds what was done: a re-run resumes). ``should_stop`` is asked between batches.
    """
    make_private_dir(journal.parent)
    done = _resumable(journal)
    result = CopyResult()
    subject = f"{slug}.{new.id}"
    started = time.monotonic()
    handled = 0
    with Journal(journal) as log:
        async for page in list_pages(client, schema_id, not_blank(old)):
            for start in range(0, len(page.records), max(1, batch)):
                if should_stop is not None and should_stop():
                    result.interrupted = True
                    return result
                chunk = page.records[start:start + max(1, batch)]
                outcomes = await asyncio.gather(*(
                    _one(client, schema_id, r, old, new, conversion, done.get(str(r.id), False), sleep)
                    for r in chunk))
                for rec, (outcome, read_at, why) in zip(chunk, outcomes, strict=True):
                    if outcome == "resumed":
                        result.resumed += 1
                    elif outcome == "unconvertible":
                        result.unconvertible += 1
                        if len(result.samples) < SAMPLES:
                            result.samples.append(sample(rec, old, why))
                    elif outcome == "missing":
                        result.missing += 1
                    else:
                        result.copied += outcome == "copied"
                        result.already += outcome == "already"
                        log.add({"id": rec.id, "outcome": outcome, "read": read_at})
                log.sync()
                handled += len(chunk)
                if on_progress is not None:
                    elapsed = time.monotonic() - started
                    left = max(0, page.total - handled)
                    eta = elapsed / handled * left if handled else None
                    on_progress(CopyProgress(subject, handled, max(page.total, handled), result.copied, eta))
        result.new_count = await client.count_records(schema_id, not_blank(new.id))
        if result.new_count < result.convertible:
            raise CopyError(f"copy {subject}: {result.convertible:,} values were copied or held already, but only "
                            f"{result.new_count:,} records hold a value in {new.id}; apply again to copy the rest")
        log.add({"complete": True, "copied": result.copied, "already": result.already, "resumed": result.resumed,
                 "unconvertible": result.unconvertible, "missing": result.missing, "new_count": result.new_count})
    return result


async def _one(client: Client, schema_id: str, listed: Record, old: str, new: Field, conversion: Conversion,
               journaled: str | Literal[False] | None, sleep: Callable[[float], Awaitable[None]],
               ) -> tuple[str, str | None, str]:
    """(outcome, the ``updatedTimestamp`` the record was written after, why it is unconvertible).
    Outcomes: ``copied``, ``already``, ``unconvertible``, ``missing``, ``resumed``."""
    if journaled is not False and (journaled is None or listed.updated is None or listed.updated == journaled):
        return "resumed", None, ""  # done by an earlier run, and unchanged in the list since
    first = decide(listed, old, new, conversion)
    if first.outcome != "copy":
        return first.outcome, listed.updated, first.why
    assert listed.id is not None  # a listed record has its id
    current = await get_record(client, schema_id, listed.id)
    for attempt in range(1, WRITE_ATTEMPTS + 1):
        if current is None:
            return "missing", None, ""
        # decided again from the re-read: a record that changed since the list (its updatedTimestamp
        # differs; without one, whatever it shows) is converted from what it holds now
        now = decide(current, old, new, conversion)
        if now.outcome != "copy":
            return now.outcome, current.updated, now.why
        body = current.with_value(new.id, now.value).upsert_body()
        try:
            await upsert_record(client, schema_id, body, repeat=False)
            return "copied", current.updated, ""
        except (ServerError, TransportFailure):
            if attempt >= WRITE_ATTEMPTS:
                raise
            await sleep(min(4.0, 0.1 * 2 ** attempt))
            current = await get_record(client, schema_id, listed.id)  # did the lost write land?
    raise AssertionError("unreachable")  # pragma: no cover


def _resumable(path: Path) -> dict[str, str | None]:
    """Record id -> ``updatedTimestamp`` read before its write, of the lines after the last
    ``complete`` (an interrupted run's); a torn last line (a crash mid-write) is ignored."""
    done: dict[str, str | None] = {}
    for entry in read_journal(path):
        if entry.get("complete"):
            done.clear()
        elif isinstance(entry.get("id"), str):
            read = entry.get("read")
            done[entry["id"]] = read if isinstance(read, str) else None
    return done


def read_complete(path: Path) -> dict[str, Any] | None:
    """The counts of the journal's last ``complete`` line when nothing was journaled after it."""
    try:
        entries = read_journal(path)
    except DataFileError:  # unreadable: not known to be complete (the copy is planned, and reads again)
        return None
    return entries[-1] if entries and entries[-1].get("complete") else None

