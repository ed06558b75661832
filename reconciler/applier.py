"""Execute a plan: gates, saved-plan check, ordered stages, race checks, optional preflight,
progress, partial failure, interrupts, verification. :func:`apply_plan` is the entry point; the jobs
are in :mod:`reconciler.gates` (what must hold before anything is sent), :mod:`reconciler.stages`
(the plan as ordered stages of *steps*, one API write each, and their cost),
:mod:`reconciler.steps` (one step, results, controls) and :mod:`reconciler.applyrun` (the run).

Steps of one stage run concurrently across schemas (the client's limiter keeps the account's rate);
the steps of one schema run one after the other.

Concurrent applies (another apply, a user in the UI) are detected where they can be, at a cost of
one request per 100 schemas a stage, not one per write:

* before each stage that writes schemas that exist (everything but the creates), the account's
  schema list is read once and each schema the stage writes must show the
  :func:`~reconciler.plan.fingerprint` the plan read (or the one our own previous write to it
  returned). A saved plan's read of the account (for the re-plan) is the first stage's read;
* every write's answer (PUT and field DELETE return the schema) is compared with what the write
  alone would give the schema as last seen: anything the write did not touch must be as it was;
* the final read: a schema we wrote that is not as our last write left it.

A schema that changed otherwise stops the run before anything more is written to it
(:func:`race_message`). The API has no lock and no conditional write, so a write by someone else
that lands between the stage's read and our write is not prevented: it is reported, from our
write's answer or the final read. ``preflight=True`` narrows that window for destructive writes to
one round trip (a GET of the schema right before its first field or schema delete, taken as a pair
with the write in the limiter) and sends every update once with ``validateOnly`` before anything
is written (:func:`preflight_updates`).

At the first failure no new step starts; steps in flight finish; the result says what was done,
what failed (with the API's error) and what was not started. A write whose answer was lost (the
request may have been processed) is read back: when the account shows it done, the step counts as
done (``confirmed``) and the run goes on. Running ``apply`` again converges, because every step is
either idempotent or, for creates, looked up by slug before it is retried (client.py).

A saved plan (``saved=True``) is an approval of a computation, not a script: apply plans again from
the files and the account (read under the plan's fingerprints) and refuses unless that gives the
same changes and errors. The plan file's digest can be recomputed by anyone who edits it.

:func:`estimate` counts the requests a run sends the way the run sends them (the plan states it).

:class:`ApplyControl` stops a run from outside (the CLI's signal handlers): ``stop`` starts nothing
new and lets the steps in flight finish; ``abort`` cancels the requests in flight at once, and their
steps are reported as ``unknown``. Either way the result is never "verified" (``interrupted``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from pathlib import Path

from reconciler.applyrun import Run
from reconciler.backups import BackupFailed, BackupOptions
from reconciler.client import Client
from reconciler.gates import (
    ApplyRefused,
    Approved,
    PlanMismatch,
    StalePlan,
    WrongTarget,
    approve,
    check_fresh,
    check_target,
    gate_reasons,
)
from reconciler.model import Schema
from reconciler.plan import Plan
from reconciler.planner import PlanOptions
from reconciler.records.migrate import CopyProgress
from reconciler.stages import Step, StepMethod, build_stages, estimate
from reconciler.steps import (
    UNKNOWN,
    ApplyControl,
    ApplyResult,
    NeedsAdmin,
    PreflightFailed,
    PreflightIncomplete,
    StepResult,
    preflight_updates,
    race_message,
)

__all__ = [
    "UNKNOWN",
    "ApplyControl",
    "ApplyRefused",
    "ApplyResult",
    "Approved",
    "BackupFailed",
    "BackupOptions",
    "NeedsAdmin",
    "PlanMismatch",
    "PreflightFailed",
    "PreflightIncomplete",
    "StalePlan",
    "Step",
    "StepMethod",
    "StepResult",
    "WrongTarget",
    "apply_plan",
    "approve",
    "build_stages",
    "check_fresh",
    "check_target",
    "estimate",
    "gate_reasons",
    "preflight_updates",
    "race_message",
]


async def apply_plan(
    plan: Plan | Approved,
    client: Client,
    *,
    desired: Mapping[str, Schema],
    options: PlanOptions | None = None,
    allow_data_loss: bool = False,
    saved: bool = False,
    desired_digest: str | None = None,
    on_step: Callable[[StepResult], None] | None = None,
    stop: asyncio.Event | None = None,
    control: ApplyControl | None = None,
    concurrency: int = 8,
    preflight: bool = False,
    backup: BackupOptions | None = None,
    migrations_dir: Path | None = None,
    on_copy: Callable[[CopyProgress], None] | None = None,
) -> ApplyResult:
    """Execute ``plan`` against the account behind ``client``.

    ``plan``: a plan, or one the gates already approved with :func:`approve` (the CLI asks for
    confirmation in between); ``allow_data_loss`` is then the approval's.

    Raises, before anything is written: :class:`ApplyRefused` (gates), :class:`StalePlan` (a saved
    plan out of date) or :class:`PlanMismatch` (a saved plan that planning again does not give, or
    made for another target), :class:`NeedsAdmin` (field deletes with a token that is not an
    admin's), and with ``preflight`` :class:`PreflightFailed` (the API rejected an update) or
    :class:`PreflightIncomplete` (the preflight got no answer). Write failures do not raise: they are
    in the returned :class:`ApplyResult`, as is the verification. Without ``preflight``, an update
    the API rejects is a failed step: the run stops there (what was written before stays written).

    ``preflight``: every update is sent once with ``validateOnly`` before anything is written, and
    each schema is read again right before its first destructive write (:func:`estimate` says what
    that costs).

    ``backup``: before the first write, the record values the plan's field and schema deletes lose
    are saved there (:mod:`reconciler.backups`); :class:`BackupFailed`, raised before anything is
    written, when a backup cannot be made whole or its count is not the plan's.

    Copies (``migrate_from``) journal their progress under ``migrations_dir`` (default
    ``./.reconciler/migrations/<target host>``) and tell ``on_copy`` after each batch of records.

    ``control`` (or, the older form, ``stop`` alone) interrupts the run; ``desired_digest``, when
    given, must be the digest of ``desired`` (apply computes it itself).
    """
    if control is None:
        control = ApplyControl(stop=stop) if stop is not None else ApplyControl()
    elif stop is not None:
        raise TypeError("pass stop or control, not both")
    if options is None:
        options = PlanOptions()
    saved_for = client.base_url if saved else None
    if not isinstance(plan, Approved) or plan.saved_for != saved_for:
        plan = approve(plan.plan if isinstance(plan, Approved) else plan, allow_data_loss=allow_data_loss,
                       saved_for=saved_for)
    run = Run(plan.plan, client, desired, options, control, on_step, concurrency, saved, desired_digest, preflight,
              backup, migrations_dir, on_copy)
    work = asyncio.ensure_future(run.main())
    aborting = asyncio.ensure_future(control.abort.wait())
    try:
        await asyncio.wait({work, aborting}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        work.cancel()
        raise
    finally:
        aborting.cancel()
    if work.done():
        return work.result()
    work.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await work
    return run.aborted()

