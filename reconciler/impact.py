"""Count the records each destructive change touches.

One request per destructive change (records list, ``limit=1``, the change's filter, ``meta.total``)
plus one per schema for its total, shared by all the changes of that schema; all of them concurrent
under the client's limiter. A count that cannot be had (permission, API error) is ``None``:
rendered "unknown", never zero.
"""

from __future__ import annotations

import asyncio

from reconciler.client import Client
from reconciler.errors import ApiError, TransportFailure
from reconciler.plan import Impact, Plan

__all__ = ["count_impacts"]


async def _count(client: Client, schema_id: str, filters: dict[str, str] | None) -> int | None:
    try:
        return await client.count_records(schema_id, filters)
    except (ApiError, TransportFailure):
        return None


async def count_impacts(plan: Plan, client: Client) -> Plan:
    """The plan with every destructive change's :class:`Impact` filled in."""
    queries = [(c.key, c.impact_query) for c in plan.changes if c.impact_query is not None]
    if not queries:
        return plan
    schema_ids = sorted({q.schema_id for _, q in queries})
    totals_task = asyncio.gather(*(_count(client, sid, None) for sid in schema_ids))
    # A query without filters *is* the total: no second request for it.
    filtered = [(key, q) for key, q in queries if q.filters]
    counts_task = asyncio.gather(*(_count(client, q.schema_id, dict(q.filters)) for _, q in filtered))
    totals_list, counts = await asyncio.gather(totals_task, counts_task)
    totals = dict(zip(schema_ids, totals_list, strict=False))
    affected = {key: n for (key, _), n in zip(filtered, counts, strict=False)}
    impacts: dict[str, Impact] = {}
    for key, q in queries:
        total = totals[q.schema_id]
        impacts[key] = Impact(affected=affected[key] if q.filters else total, total=total)
    return plan.with_impacts(impacts)
