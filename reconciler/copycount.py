"""Count what each planned copy (``migrate_from``) has left to do, by reading the old field's records.

For each :class:`~reconciler.changes.CopyField` of a plan: the old field's non-blank records are
read page by page (100 a request) and each is decided as the copy would
(:func:`reconciler.records.migrate.decide`): convertible or not (up to 5 samples kept), and whether
the new field already holds the converted value. A copy with nothing left to write is complete: it
leaves the plan, and a note says so with its counts (the contract step, deleting the old field, is
then planned once the files drop it). Otherwise the change carries its counts
(:class:`~reconciler.changes.CopyCount`) and DL103 the number of unconvertible values (or goes,
when every value converts).

A copy whose records cannot be read (permission, API error) stays as planned, "not counted": its
DL103 then needs ``--allow-data-loss`` like any uncounted loss.
"""

from __future__ import annotations

import asyncio

from reconciler.changes import CopyCount, CopyField, Note, NoteKind
from reconciler.client import Client
from reconciler.conversions import by_name
from reconciler.errors import ApiError, TransportFailure
from reconciler.plan import Plan
from reconciler.records.api import RecordListError, list_pages, not_blank
from reconciler.records.migrate import SAMPLES, copy_requests, decide, sample

__all__ = ["count_copies", "count_copy"]


async def count_copy(client: Client, change: CopyField, rate: float | None = None) -> CopyCount:
    """What ``change`` has left to do in the account behind ``client``."""
    assert change.schema_id is not None
    conv = by_name(change.conversion)
    if conv is None:
        raise ValueError(f"unknown conversion {change.conversion!r}")
    records = convertible = to_copy = unconvertible = 0
    samples: list[str] = []
    async for page in list_pages(client, change.schema_id, not_blank(change.from_field)):
        for rec in page.records:
            records += 1
            d = decide(rec, change.from_field, change.after, conv)
            if d.outcome == "unconvertible":
                unconvertible += 1
                if len(samples) < SAMPLES:
                    samples.append(sample(rec, change.from_field, d.why))
                continue
            convertible += 1
            to_copy += d.outcome == "copy"
    return CopyCount(records=records, convertible=convertible, to_copy=to_copy, unconvertible=unconvertible,
                     samples=tuple(samples), requests=copy_requests(records, to_copy), rate=rate)


async def _try(client: Client, change: CopyField, rate: float | None) -> CopyCount | None:
    try:
        return await count_copy(client, change, rate)
    except (ApiError, TransportFailure, RecordListError):
        return None


async def count_copies(plan: Plan, client: Client) -> Plan:
    """The plan with each copy counted; complete copies replaced by a note."""
    copies = [c for c in plan.changes if isinstance(c, CopyField) and c.schema_id is not None]
    if not copies:
        return plan
    rate, _ = client.rates()
    counts = dict(zip([c.key for c in copies], await asyncio.gather(*(_try(client, c, rate) for c in copies)),
                      strict=True))
    def count(n: int, word: str) -> str:  # the note's own words (render/ is not imported by the pipeline)
        return f"{n:,} {word}{'s' if n != 1 else ''}"

    changes = []
    notes = []
    for c in plan.changes:
        n = counts.get(c.key) if isinstance(c, CopyField) else None
        if not isinstance(c, CopyField) or n is None:
            changes.append(c)
            continue
        if n.complete:
            lost = f"; {count(n.unconvertible, 'value')} not convertible, not copied" if n.unconvertible else ""
            notes.append(Note(slug=c.slug, kind=NoteKind.MIGRATE, message=(
                f"field {c.subject}: the copy from {c.from_field} is complete: {count(n.convertible, 'record')} "
                f"hold the converted value{lost}; {c.from_field} may now leave the files (its delete is then "
                "planned)")))
            continue
        changes.append(c.with_copy(n))
    return plan.with_changes(changes).with_notes(notes)
