"""Count the records each destructive change touches.

One request per destructive change (records list, ``limit=1``, the change's filter, ``meta.total``)
plus one per schema for its total, shared by all the changes of that schema; all of them concurrent
under the client's limiter. A count that cannot be had (permission, API error) is ``None``:
rendered "unknown", never zero. A count refused because only admin users may list records without
a filter (docs/api-notes.md §7.4: every schema total is such a list) adds a note to the plan, once per
schema, saying why its counts are unknown.

:func:`not_counted` is the plan when the counts are not asked for at all (``apply --auto-approve
--allow-data-loss``, which nobody reads before it writes): every counted finding stays "(impact not
counted)" and a note says why and how many requests it saved (:func:`count_requests`).
"""

from __future__ import annotations

import asyncio

from reconciler.client import Client
from reconciler.errors import ApiError, AuthenticationFailed, TransportFailure
from reconciler.plan import Impact, ImpactQuery, Note, NoteKind, Plan

__all__ = ["count_impacts", "count_requests", "not_counted"]


class _Refused:
    """A count the account refused to a token that is not an admin user's."""

    def __init__(self, exc: AuthenticationFailed):
        self.what = exc.needs_admin or "listing records"


async def _count(client: Client, schema_id: str, filters: dict[str, str] | None) -> int | _Refused | None:
    try:
        return await client.count_records(schema_id, filters)
    except AuthenticationFailed as exc:
        return _Refused(exc) if exc.needs_admin else None
    except (ApiError, TransportFailure):
        return None


def _queries(plan: Plan) -> tuple[list[tuple[str, ImpactQuery]], list[str], list[tuple[str, ImpactQuery]]]:
    """(every change's query by key, the schemas whose total is counted, the queries with a filter):
    one request per schema total and one per filtered query. A query without filters *is* the
    total: no second request for it."""
    queries = [(c.key, c.impact_query) for c in plan.changes if c.impact_query is not None]
    schema_ids = sorted({q.schema_id for _, q in queries})
    return queries, schema_ids, [(key, q) for key, q in queries if q.filters]


def count_requests(plan: Plan) -> int:
    """How many requests :func:`count_impacts` sends for this plan."""
    _, schema_ids, filtered = _queries(plan)
    return len(schema_ids) + len(filtered)


def not_counted(plan: Plan, why: str) -> Plan:
    """The plan, its counts not asked for, with a note saying so: ``why`` (e.g. ``"apply
    --auto-approve --allow-data-loss does not wait for them"``) and the requests it saved."""
    n = count_requests(plan)
    if not n:
        return plan
    return plan.with_notes([Note(slug="", kind=NoteKind.IMPACT, message=(
        f"records not counted: {why} ({n:,} request{'s' if n != 1 else ''} saved); `reconciler plan` counts them"))])


async def count_impacts(plan: Plan, client: Client) -> Plan:
    """The plan with every destructive change's :class:`Impact` filled in."""
    queries, schema_ids, filtered = _queries(plan)
    if not queries:
        return plan
    totals_task = asyncio.gather(*(_count(client, sid, None) for sid in schema_ids))
    counts_task = asyncio.gather(*(_count(client, q.schema_id, dict(q.filters or {})) for _, q in filtered))
    totals_list, counts = await asyncio.gather(totals_task, counts_task)
    totals = dict(zip(schema_ids, totals_list, strict=False))
    affected = {key: n for (key, _), n in zip(filtered, counts, strict=False)}
    refused: dict[str, str] = {}  # schema id -> what was refused
    impacts: dict[str, Impact] = {}
    for key, q in queries:
        total, part = totals[q.schema_id], affected.get(key)
        for n in (total, part):
            if isinstance(n, _Refused):
                refused.setdefault(q.schema_id, n.what)
        total = None if isinstance(total, _Refused) else total
        part = None if isinstance(part, _Refused) else part
        impacts[key] = Impact(affected=part if q.filters else total, total=total)
    counted = plan.with_impacts(impacts)
    if not refused:
        return counted
    slugs = {c.schema_id: c.slug for c in plan.changes if c.schema_id is not None}
    return counted.with_notes(
        Note(slug=slugs[sid], kind=NoteKind.IMPACT,
             message=f"schema {slugs[sid]}: records not counted (impact unknown): the account refused the API "
                     f"token for {what}, which only admin users may do")
        for sid, what in sorted(refused.items(), key=lambda item: slugs[item[0]]))
