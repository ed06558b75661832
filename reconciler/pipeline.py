"""What the commands do, as library functions: plan against an account, check its drift.

:func:`plan_account` is ``reconciler plan``: read the account, plan, count the records each
destructive change touches, state what applying the plan costs. :func:`check_drift` is
``reconciler drift``: read the account (GET only) and the files' git history, and say how they
differ. Applying is :func:`reconciler.applier.apply_plan`. The CLI is a projection of these three:
it resolves the target, loads the files, calls one of them and renders the result.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from fnmatch import fnmatchcase
from pathlib import Path
from typing import TYPE_CHECKING

from reconciler.errors import ReconcilerError

if TYPE_CHECKING:
    from reconciler.client import Client
    from reconciler.drift import DriftReport
    from reconciler.model import Schema
    from reconciler.plan import Plan
    from reconciler.planner import PlanOptions

__all__ = ["PatternMatchesNothing", "check_drift", "plan_account"]


class PatternMatchesNothing(ReconcilerError):
    """A ``--target``/``--exclude`` pattern matches no schema of the files or the account: a typo,
    not "nothing to do"."""


def _check_narrowing(options: PlanOptions, slugs: set[str]) -> None:
    for flag, patterns in (("--target", options.targets), ("--exclude", options.excludes)):
        for pattern in patterns:
            if not any(fnmatchcase(slug, pattern) for slug in slugs):
                raise PatternMatchesNothing(f"{flag} {pattern} matches no schema in the files or the account")


async def plan_account(client: Client, desired: Mapping[str, Schema], options: PlanOptions | None = None, *,
                       uncounted: str | None = None, saved: bool = False) -> Plan:
    """The plan that makes the account behind ``client`` match ``desired`` (slug -> schema, e.g.
    ``load_dir("schemas").schemas``).

    Reads the account's schemas, plans (:func:`reconciler.planner.plan`), counts the records every
    destructive change touches (:func:`reconciler.impact.count_impacts`; with ``uncounted``, the
    reason they are not counted, a note says so instead) and states the apply's cost
    (:attr:`Plan.estimate`; ``saved``: applied later from a plan file, whose re-plan reads the
    account first). Writes nothing.

    Raises :class:`PatternMatchesNothing` for an ``options.targets``/``excludes`` pattern that
    matches no schema, and the client's errors (:class:`~reconciler.errors.ReconcilerError`).
    """
    from reconciler.applier import estimate
    from reconciler.impact import count_impacts, not_counted
    from reconciler.planner import PlanOptions
    from reconciler.planner import plan as make_plan

    options = options or PlanOptions()
    listed = await client.list_schemas()
    live = {s.slug: s for s in listed}
    _check_narrowing(options, set(desired) | set(live))
    plan = make_plan(desired, live, options)
    if uncounted is None:
        from reconciler.copycount import count_copies

        plan = await count_copies(await count_impacts(plan, client), client)
    else:
        plan = not_counted(plan, uncounted)
    rate, pace = client.rates()
    return plan.with_estimate(estimate(plan, account_schemas=len(listed), rate=rate, pace=pace, saved=saved))


async def check_drift(client: Client, desired: Mapping[str, Schema], options: PlanOptions | None = None, *,
                      ignore: Sequence[str] = (), checked_at: str | None = None,
                      sources: Mapping[str, Path] | None = None) -> DriftReport:
    """How the account behind ``client`` and ``desired`` differ (GET requests only).

    ``sources``: each desired schema's file, by slug (``LoadedSchemas.sources``); their git history
    is read alongside the account, as the evidence of which side changed
    (:func:`reconciler.drift.changed_side`). ``ignore``: globs on an item's key, as in
    ``reconciler.yaml``'s ``ignore:``.
    """
    from reconciler.drift import compute_drift
    from reconciler.gitinfo import file_histories

    paths = list((sources or {}).values())
    schemas, histories = await asyncio.gather(client.list_schemas(), asyncio.to_thread(file_histories, paths))
    history = {slug: histories[p] for slug, p in (sources or {}).items() if p in histories}
    live = {s.slug: s for s in schemas}
    return compute_drift(desired, live, options, ignore=ignore, checked_at=checked_at, history=history)
