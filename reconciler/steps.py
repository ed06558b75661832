"""One step of an apply and what became of it: the write itself (:func:`run_step`), the results of a
run (:class:`StepResult`, :class:`ApplyResult`), how a caller stops it (:class:`ApplyControl`), the
``validateOnly`` preflight, and the errors that refuse a run before it writes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, assert_never

from reconciler.client import Client
from reconciler.errors import ApiError, AuthenticationFailed, ReconcilerError, ValidationFailed
from reconciler.model import Schema
from reconciler.plan import (
    Action,
    AddField,
    AddRelationship,
    DeleteField,
    Plan,
    UpdateField,
    UpdateRelationship,
    UpdateSchema,
)
from reconciler.stages import Step, StepMethod, preflighted

__all__ = ["UNKNOWN", "ApplyControl", "ApplyResult", "NeedsAdmin", "PreflightFailed", "PreflightIncomplete",
           "StepResult", "open_on", "outside", "preflight_updates", "race_message", "run_step", "sent_required",
           "slug_taken", "step_subjects", "text_of"]

#: The error text of a step whose outcome is not known (cancelled in flight, or not readable back).
UNKNOWN = "unknown: re-plan to see"


def race_message(slug: str) -> str:
    """The error of a step stopped because its schema changed in the account during the run."""
    return (f'schema "{slug}" changed in the account while applying (another apply or a user?); '
            "nothing more was written to it")


class PreflightFailed(ReconcilerError):
    """The API's ``validateOnly`` rejected an update (its validation answer); nothing was written."""

    def __init__(self, failures: Sequence[tuple[str, Exception]]):
        self.failures = list(failures)
        super().__init__("; ".join(f"{slug}: {exc}" for slug, exc in self.failures))


class PreflightIncomplete(ReconcilerError):
    """The ``validateOnly`` preflight got no answer (transport failures, 5xx or 429 after the client's
    retries, auth, a schema gone): not a rejection, but nothing may be written unchecked."""

    def __init__(self, failures: Sequence[tuple[str, Exception]]):
        self.failures = list(failures)
        what = "; ".join(f"could not preflight the update of {slug}: {exc}" for slug, exc in self.failures)
        super().__init__(f"{what}; nothing was changed")


class NeedsAdmin(PreflightFailed):
    """The plan deletes fields, which only admin users may do (docs/api-notes.md §2), and the account refused
    this token a read that only admin users may make (a records list without a filter, §7.4):
    nothing was written. That a token refused one is refused the other is our inference; when the
    read is allowed, the deletes are tried and a refusal is reported by their steps."""

    def __init__(self, subjects: Sequence[str], exc: AuthenticationFailed):
        self.failures = [(subjects[0].split(".")[0], exc)]
        self.subjects = list(subjects)
        more = f" and {len(subjects) - 1} more" if len(subjects) > 1 else ""
        ReconcilerError.__init__(self, f"deleting field {subjects[0]}{more} needs an admin user's API token, and "
                                       f"the account refused this one an admin-only read ({exc})")


@dataclass
class StepResult:
    """What became of one step.

    ``status``: ``"done"`` (``confirmed`` when a read-back after a failed or lost answer showed it
    done), ``"failed"``, ``"unknown"`` (in flight when the run was aborted, or not readable back:
    :data:`UNKNOWN`), ``"not started"``, or ``"not needed"`` (not done by this run, but the account
    already shows it: another apply or a user did it). ``race``: the schema changed in the account
    during the run (``error`` is :func:`race_message`): seen before the write (``failed``, nothing
    written), or in the write's answer or the final read (``done``, merged with the other change).
    """

    step: Step
    status: str
    elapsed: float = 0.0
    error: str | None = None
    confirmed: bool = False
    race: bool = False
    #: what a done step did, in words, where there is more to say (a copy's counts)
    detail: str | None = None


async def run_step(client: Client, step: Step, created: dict[str, str]) -> Schema | None:
    """Send the step's write; the schema as the API returned it after the write (``None`` for a
    schema delete)."""
    match step.method:
        case StepMethod.CREATE:
            assert step.after is not None
            made = await client.create_schema(step.after)
            if made.id is not None:
                created[step.slug] = made.id
            return made
        case StepMethod.UPDATE:
            schema_id = step.schema_id or created.get(step.slug)
            assert schema_id is not None and step.body is not None
            return await client.update_schema(schema_id, dict(step.body))
        case StepMethod.DELETE_FIELD:
            assert step.schema_id is not None and step.field_id is not None
            return await client.delete_field(step.schema_id, step.field_id)
        case StepMethod.DELETE_SCHEMA:
            assert step.schema_id is not None
            await client.delete_schema(step.schema_id)
            return None
        case StepMethod.COPY:  # many record writes, not one schema write: run by reconciler.applyrun
            raise AssertionError("a copy step is not a schema write")
        case _:
            assert_never(step.method)


def _is_rejection(exc: Exception) -> bool:
    """The API's validation answer: 422, or another 4xx that is not auth, 404 or the rate limit."""
    status = exc.status if isinstance(exc, ApiError) else None
    return status is not None and 400 <= status < 500 and status not in (401, 403, 404, 429)


async def preflight_updates(client: Client, stages: Sequence[Sequence[Step]]) -> None:
    """Send every update once with ``validateOnly``. Raise :class:`PreflightFailed` when the API
    rejects one (its validation answer), else :class:`PreflightIncomplete` when one got no answer
    after the client's retries (transport failures, 5xx, 429, auth, 404): nothing is written then.

    Creates and deletes cannot be preflighted: the API documents ``validateOnly`` for updates only.
    An update is checked without what only an earlier stage makes valid (:attr:`Step.preflight`).
    """
    async def check(step: Step) -> tuple[str, ApiError] | None:
        assert step.schema_id is not None and step.preflight is not None
        try:
            await client.update_schema(step.schema_id, dict(step.preflight), validate_only=True)
        except ApiError as exc:
            return step.slug, exc
        return None

    failures = [f for f in await asyncio.gather(*(check(s) for s in preflighted(stages))) if f is not None]
    rejected = [(slug, exc) for slug, exc in failures if _is_rejection(exc)]
    if rejected:
        raise PreflightFailed(rejected)
    if failures:
        raise PreflightIncomplete(failures)


@dataclass
class ApplyControl:
    """How a caller stops a running :func:`~reconciler.applier.apply_plan` (the CLI's signal handlers).

    ``stop`` (first interrupt): start nothing new; the steps in flight finish and are reported.
    ``abort`` (second interrupt): cancel the requests in flight at once; their steps are reported as
    ``unknown`` (the write may or may not have reached the account). ``in_flight`` is a live count of
    the requests out: a stage's read of the account, and each step's from its first request (the
    write, or with ``preflight`` the GET before a destructive one) to the write's answer (and its
    read-back).
    """

    stop: asyncio.Event = field(default_factory=asyncio.Event)
    abort: asyncio.Event = field(default_factory=asyncio.Event)
    in_flight: int = 0

    @property
    def interrupted(self) -> bool:
        return self.stop.is_set() or self.abort.is_set()


@dataclass
class ApplyResult:
    results: list[StepResult] = field(default_factory=list)
    verified: bool = False
    remaining: Plan | None = None  # what a plan after the writes still shows, when not verified
    verify_error: str | None = None  # the account could not be read back after the writes
    interrupted: bool = False  # stop or abort was set during the run (never verified then)
    aborted: bool = False  # abort cancelled the requests in flight
    #: fields written as required that the account kept as not required (``slug.field-id``): the
    #: account ignores ``required``; the verification accepted those differences
    required_ignored: tuple[str, ...] = ()
    #: the backups made before the first write (:class:`reconciler.records.backup.Backup`), when asked
    backups: list[Any] = field(default_factory=list)

    @property
    def required_line(self) -> str | None:
        """``the account ignores required: orders.order-number, … (managed as not required)``, or ``None``."""
        if not self.required_ignored:
            return None
        return f"the account ignores required: {', '.join(self.required_ignored)} (managed as not required)"

    @property
    def failed(self) -> list[StepResult]:
        return [r for r in self.results if r.status == "failed"]

    @property
    def not_started(self) -> list[StepResult]:
        return [r for r in self.results if r.status == "not started"]

    @property
    def unknown(self) -> list[StepResult]:
        return [r for r in self.results if r.status == "unknown"]

    @property
    def raced(self) -> list[StepResult]:
        """Steps whose schema changed in the account during the run (another apply or a user): not
        written (``failed``: seen before the write), or written but merged with the other change
        (``done``: seen in the write's answer, or in the final read)."""
        return [r for r in self.results if r.race]

    @property
    def stopped(self) -> bool:
        """The run did not carry out the plan as planned: a failure, an unknown outcome, a schema that
        changed in the account meanwhile, an interrupt."""
        return bool(self.failed or self.not_started or self.unknown or self.raced or self.interrupted)

    @property
    def ok(self) -> bool:
        return not self.stopped and self.verified

    def counts(self) -> tuple[int, int, int]:
        """(added, changed, destroyed) among the changes whose step was done."""
        added = changed = destroyed = 0
        for r in self.results:
            if r.status != "done" or not r.step.counted:
                continue
            for c in r.step.changes:
                if c.act is Action.ADD:
                    added += 1
                elif c.act is Action.UPDATE or c.act is Action.COPY:
                    changed += 1
                else:
                    destroyed += 1
        return added, changed, destroyed


def text_of(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, ReconcilerError) else f"{type(exc).__name__}: {exc}"


def step_subjects(step: Step) -> set[str]:
    """What a step makes true in the account, by plan subject (``slug`` / ``slug.field-id``)."""
    subjects = {c.subject for c in step.changes}
    if step.method is StepMethod.CREATE and step.after is not None:
        subjects |= {f"{step.slug}.{f.id}" for f in step.after.fields}
        subjects |= {f"{step.slug}.{r.id}" for r in step.after.relationships}
    return subjects


def outside(step: Step, schema: Schema) -> dict[str, Any]:
    """The schema's compared view without what the step writes (its own properties when it updates
    the schema itself, the fields and relationships it adds, changes or deletes)."""
    view = schema.comparable()
    fields = {c.field_id for c in step.changes if isinstance(c, AddField | UpdateField | DeleteField)}
    rels = {c.relationship_id for c in step.changes if isinstance(c, AddRelationship | UpdateRelationship)}
    out: dict[str, Any] = {"fields": {k: v for k, v in view["fields"].items() if k not in fields},
                           "relationships": {k: v for k, v in view["relationships"].items() if k not in rels}}
    if not any(isinstance(c, UpdateSchema) for c in step.changes):
        out["own"] = schema.comparable_own()
    return out


def open_on(plan: Plan, subjects: set[str]) -> bool:
    """Does ``plan`` still have a change or error on one of these subjects?"""
    return any(c.subject in subjects for c in plan.changes) or any(e.subject in subjects for e in plan.errors)


def sent_required(step: Step) -> list[str]:
    """Ids of the fields the step's write sends with ``required: true``."""
    if step.method is StepMethod.CREATE and step.after is not None:
        return [f.id for f in step.after.active_fields if f.required]
    if step.method is StepMethod.UPDATE and step.body is not None:
        return [f["id"] for f in step.body.get("fields", ()) if isinstance(f, Mapping) and f.get("required") is True]
    return []


def slug_taken(exc: ValidationFailed) -> bool:
    """A create refused because the slug exists (docs/api-notes.md §10: "Schema slug must be unique")."""
    return any((e.pointer or "").endswith("/slug") or "slug must be unique" in (e.detail or "").lower()
               for e in exc.errors)


