"""Execute a plan: gates, saved-plan check, ordered stages, race checks, optional preflight,
progress, partial failure, interrupts, verification.

A plan becomes *steps* (one API write each) grouped in ordered *stages*:

1. schema creates, each with all its fields and relationships in the one POST; a schema that
   another new schema's relationship points at is created in an earlier stage (a relationship that
   closes a cycle between new schemas is added by a PUT once both exist);
2. schema updates: every label/description/slug change, field addition, field property change and
   option addition of one schema in a single PUT; renames first. A field delete that frees a label
   which an update takes over runs just before them;
3. field deletes, one DELETE each;
4. schema deletes, one DELETE each.

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
import dataclasses
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from reconciler.client import PAGE_SIZE, Client, normalize_base_url
from reconciler.errors import (
    ApiError,
    AuthenticationFailed,
    ConfigError,
    DeadlineExceeded,
    NotFound,
    ReconcilerError,
    ValidationFailed,
)
from reconciler.model import Field, Schema
from reconciler.plan import (
    AddField,
    AddRelationship,
    Change,
    CreateSchema,
    DeleteField,
    DeleteSchema,
    Estimate,
    Plan,
    UpdateField,
    UpdateRelationship,
    UpdateSchema,
    fingerprint,
)
from reconciler.plan import desired_digest as digest_of_desired
from reconciler.planner import PlanOptions
from reconciler.planner import plan as make_plan
from reconciler.wire import field_to_api, field_update_to_api, relationship_to_api

__all__ = [
    "UNKNOWN",
    "ApplyControl",
    "ApplyRefused",
    "ApplyResult",
    "NeedsAdmin",
    "PlanMismatch",
    "PreflightFailed",
    "PreflightIncomplete",
    "StalePlan",
    "Step",
    "StepResult",
    "apply_plan",
    "build_stages",
    "check_fresh",
    "estimate",
    "gate_reasons",
    "preflight_updates",
    "race_message",
]

#: The error text of a step whose outcome is not known (cancelled in flight, or not readable back).
UNKNOWN = "unknown: re-plan to see"


class ApplyRefused(ReconcilerError):
    """A safety gate refused the plan; nothing was written (exit code 3)."""

    def __init__(self, reasons: Sequence[str]):
        self.reasons = list(reasons)
        super().__init__("; ".join(self.reasons))


class StalePlan(ReconcilerError):
    """The account (or the files) changed after the saved plan was made; nothing was written."""


class PlanMismatch(StalePlan):
    """A saved plan is not what the files and the account give now (edited, or made for another
    target); nothing was written."""


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


def race_message(slug: str) -> str:
    """The error of a step stopped because its schema changed in the account during the run."""
    return (f'schema "{slug}" changed in the account while applying (another apply or a user?); '
            "nothing more was written to it")


# ---------------------------------------------------------------------------------------------
# Gates and freshness


def gate_reasons(plan: Plan, *, allow_data_loss: bool) -> list[str]:
    """Why this plan must not be applied, one line each (empty: it may be)."""
    reasons: list[str] = []
    for change in plan.changes:
        for finding in change.findings:
            if finding.code.startswith("NA"):
                reasons.append(f"{finding.code} {change.describe()}: not allowed by the API; {finding.hint}")
        if change.blocked:
            reasons.append(
                f"{change.describe()}: protected ({change.blocked_reason}); "
                "remove the protection in the file or reconciler.yaml to allow it"
            )
        elif not allow_data_loss:
            for finding in change.findings:
                if finding.code.startswith("DL"):
                    reasons.append(
                        f"{finding.code} {change.describe()}: loses data; re-run with --allow-data-loss to allow it"
                    )
    for error in plan.errors:
        line = f"{error.code} {error.message}"
        if line not in reasons:
            reasons.append(f"{line}; {error.hint}" if error.hint else line)
    return reasons


def check_fresh(plan: Plan, live: Mapping[str, Schema], *, desired_digest: str | None = None) -> None:
    """Raise :class:`StalePlan` when a live schema the plan read changed (or appeared) since."""
    for slug, fp in sorted(plan.live_fingerprints.items()):
        now = live.get(slug)
        if now is None:
            raise StalePlan(f'Saved plan is stale: schema "{slug}" was deleted in the account after the plan was made')
        if fingerprint(now) != fp:
            raise StalePlan(f'Saved plan is stale: schema "{slug}" changed in the account after the plan was made')
    for change in plan.changes:
        if isinstance(change, CreateSchema) and change.slug in live:
            raise StalePlan(
                f'Saved plan is stale: schema "{change.slug}" was created in the account after the plan was made'
            )
    if desired_digest is not None and desired_digest != plan.desired_digest:
        raise StalePlan("Saved plan is stale: the schema files changed after the plan was made; plan again")


# ---------------------------------------------------------------------------------------------
# Steps


@dataclass(frozen=True)
class Step:
    """One API write and the plan changes it carries out.

    ``schema_id`` is ``None`` for a ``link`` step: it adds relationships to a schema created earlier
    in the same run, whose id is known only then. ``counted`` is ``False`` for such a step (its
    relationship was counted with the schema's create). ``preflight`` is the ``validateOnly`` body
    of an update (``None``: not preflighted): the body without what cannot be checked before the
    earlier stages ran (relationships to schemas not created yet, fields whose labels are freed only
    by an earlier delete).
    """

    stage: int
    slug: str
    changes: tuple[Change, ...]
    method: str  # "create" | "update" | "delete-field" | "delete-schema"
    schema_id: str | None = None
    body: Mapping[str, Any] | None = None
    field_id: str | None = None
    after: Schema | None = None
    counted: bool = True
    preflight: Mapping[str, Any] | None = None

    @property
    def label(self) -> str:
        return "; ".join(c.describe() for c in self.changes)


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


def _update_body(changes: Iterable[Change]) -> dict[str, Any]:
    """One PUT body for all of a schema's in-place changes. Fields the PUT leaves out are kept (the
    API merges fields by id, U1); each field in it is sent whole (:func:`field_update_to_api`): the
    API may replace a field given in a PUT rather than merge it (undocumented)."""
    body: dict[str, Any] = {}
    for c in changes:
        if isinstance(c, UpdateSchema):
            after = c.after
            assert after is not None
            if "slug" in c.changed:
                body["slug"] = after.slug
            if any(k == "labels" or k.startswith("labels.") for k in c.changed):
                body["labels"] = {"singular": after.labels.singular, "plural": after.labels.plural}
            if "description" in c.changed:
                body["description"] = after.description or ""  # "" clears it (the API merges)
        elif isinstance(c, UpdateField):
            assert isinstance(c.after, Field) and isinstance(c.before, Field)
            body.setdefault("fields", []).append(field_update_to_api(c.after, c.before, c.changed))
        elif isinstance(c, AddField):
            assert c.after is not None
            body.setdefault("fields", []).append(field_to_api(c.after))
        elif isinstance(c, (AddRelationship, UpdateRelationship)):
            assert c.after is not None
            wire = relationship_to_api(c.after)
            if isinstance(c, UpdateRelationship) and "description" in c.changed and c.after.description is None:
                wire["description"] = ""
            body.setdefault("relationships", []).append(wire)
    return body


def _creation_levels(creates: Sequence[CreateSchema]) -> tuple[list[list[CreateSchema]], dict[str, list[str]]]:
    """New schemas in dependency levels: a schema that another new schema's relationship points at
    is in an earlier level (each level is created concurrently, one level after the other).

    A cycle of relationships between new schemas (``a -> b -> a``) cannot be created in single
    POSTs: the relationship that closes it is deferred (returned as ``{slug: [relationship id]}``)
    and added by a PUT once both exist. Self-references need nothing: the API accepts its own slug.
    """
    by_slug = {c.slug: c for c in creates}
    deferred: dict[str, list[str]] = {}
    level: dict[str, int] = {}
    on_path: set[str] = set()

    def visit(c: CreateSchema) -> int:
        if c.slug in level:
            return level[c.slug]
        on_path.add(c.slug)
        assert c.after is not None
        depth = 0
        for rel in c.after.relationships:
            dep = by_slug.get(rel.namespace)
            if dep is None or dep.slug == c.slug:
                continue
            if dep.slug in on_path:  # closes a cycle: added after both exist
                deferred.setdefault(c.slug, []).append(rel.id)
                continue
            depth = max(depth, visit(dep) + 1)
        on_path.discard(c.slug)
        level[c.slug] = depth
        return depth

    for c in creates:
        visit(c)
    levels: list[list[CreateSchema]] = [[] for _ in range(max(level.values(), default=-1) + 1)]
    for c in creates:
        levels[level[c.slug]].append(c)
    return levels, deferred


def _label_keys(f: Field) -> set[tuple[str, str]]:
    return {("singular", f.labels.singular.casefold()), ("plural", f.labels.plural.casefold())}


def _early_deletes(in_place: Mapping[str, Sequence[Change]], field_deletes: Sequence[DeleteField]) -> set[str]:
    """Keys of the field deletes that must run BEFORE the updates: the API wants field labels unique
    among a schema's live fields (U7), so a field that takes over the label of a deleted one (a field
    renamed by id, keeping its label) can only be written once the old one is gone."""
    early: set[str] = set()
    for d in field_deletes:
        if not isinstance(d.before, Field):
            continue
        freed = _label_keys(d.before)
        for c in in_place.get(d.slug, ()):
            if isinstance(c, (AddField, UpdateField)) and c.after is not None and _label_keys(c.after) & freed:
                early.add(d.key)
    return early


def _not_preflightable(changes: Sequence[Change], early: Sequence[DeleteField]) -> set[str]:
    """Ids of the fields an update's preflight must leave out: those taking over a label that an
    early delete frees, and (transitively) those taking over a label of a field left out, which
    keeps its live label during the preflight."""
    held: set[tuple[str, str]] = set()
    for d in early:
        if isinstance(d.before, Field):
            held |= _label_keys(d.before)
    fields = [c for c in changes if isinstance(c, (AddField, UpdateField)) and c.after is not None]
    out: set[str] = set()
    grew = True
    while grew:
        grew = False
        for c in fields:
            assert c.after is not None
            if c.field_id not in out and _label_keys(c.after) & held:
                out.add(c.field_id)
                if isinstance(c.before, Field):
                    held |= _label_keys(c.before)
                grew = True
    return out


def _preflight_body(body: Mapping[str, Any], not_yet: set[str], claimed: set[str]) -> dict[str, Any] | None:
    """``body`` without what only the earlier stages make valid (see :class:`Step`); ``None`` if empty."""
    out = dict(body)
    if "relationships" in out:
        out["relationships"] = [r for r in out["relationships"] if r.get("namespace") not in not_yet]
        if not out["relationships"]:
            del out["relationships"]
    if "fields" in out:
        out["fields"] = [f for f in out["fields"] if f.get("id") not in claimed]
        if not out["fields"]:
            del out["fields"]
    return out or None


def build_stages(plan: Plan) -> list[list[Step]]:
    """The plan's changes as ordered stages of steps (each stage runs after the previous one):

    * creates (``Step.stage`` 1), one level of relationship dependencies after the other;
    * field deletes that free a label an update takes over (see :func:`_early_deletes`), then the
      updates (stage 2): renames first, then the others (which may point at a renamed slug), then
      the relationships deferred from the creates (closing a cycle, or pointing at a renamed slug);
    * the other field deletes (stage 3); schema deletes (stage 4).
    """
    creates = [c for c in plan.changes if isinstance(c, CreateSchema)]
    in_place: dict[str, list[Change]] = {}
    field_deletes: list[DeleteField] = []
    schema_deletes: list[DeleteSchema] = []
    for c in plan.changes:
        if isinstance(c, (UpdateSchema, AddField, UpdateField, AddRelationship, UpdateRelationship)):
            in_place.setdefault(c.slug, []).append(c)
        elif isinstance(c, DeleteField):
            field_deletes.append(c)
        elif isinstance(c, DeleteSchema):
            schema_deletes.append(c)
    renamed_to = {c.slug for c in plan.changes if isinstance(c, UpdateSchema) and "slug" in c.changed}
    new_slugs = {c.slug for c in creates} | renamed_to

    stages: list[list[Step]] = []
    levels, deferred = _creation_levels(creates)
    links: list[Step] = []
    for level in levels:
        stage: list[Step] = []
        for c in level:
            assert c.after is not None
            later = set(deferred.get(c.slug, ())) | {r.id for r in c.after.relationships
                                                       if r.namespace in renamed_to and r.namespace != c.slug}
            after = c.after
            if later:
                after = after.model_copy(update={"relationships": tuple(r for r in after.relationships
                                                                         if r.id not in later)})
                adds = tuple(AddRelationship(slug=c.slug, relationship_id=r.id, after=r)
                             for r in c.after.relationships if r.id in later)
                links.append(Step(2, c.slug, adds, "update", body=_update_body(adds), counted=False))
            stage.append(Step(1, c.slug, (c,), "create", after=after))
        stages.append(stage)

    early = _early_deletes(in_place, field_deletes)
    claimed = {slug: _not_preflightable(in_place.get(slug, ()), [d for d in field_deletes if d.slug == slug
                                                                 and d.key in early])
               for slug in {d.slug for d in field_deletes if d.key in early}}
    stages.append([Step(2, c.slug, (c,), "delete-field", schema_id=c.schema_id, field_id=c.field_id)
                   for c in field_deletes if c.key in early])

    renames: list[Step] = []
    updates: list[Step] = []
    for slug, changes in sorted(in_place.items()):
        body = _update_body(changes)
        step = Step(2, slug, tuple(changes), "update", schema_id=changes[0].schema_id, body=body,
                    preflight=_preflight_body(body, new_slugs, claimed.get(slug, set())))
        is_rename = any(isinstance(c, UpdateSchema) and "slug" in c.changed for c in changes)
        (renames if is_rename else updates).append(step)
    stages += [renames, updates, links]
    stages.append([Step(3, c.slug, (c,), "delete-field", schema_id=c.schema_id, field_id=c.field_id)
                   for c in field_deletes if c.key not in early])
    stages.append([Step(4, c.slug, (c,), "delete-schema", schema_id=c.schema_id) for c in schema_deletes])
    return [s for s in stages if s]


async def _run_step(client: Client, step: Step, created: dict[str, str]) -> Schema | None:
    """Send the step's write; the schema as the API returned it after the write (``None`` for a
    schema delete)."""
    if step.method == "create":
        assert step.after is not None
        made = await client.create_schema(step.after)
        if made.id is not None:
            created[step.slug] = made.id
        return made
    if step.method == "update":
        schema_id = step.schema_id or created.get(step.slug)
        assert schema_id is not None and step.body is not None
        return await client.update_schema(schema_id, dict(step.body))
    if step.method == "delete-field":
        assert step.schema_id is not None and step.field_id is not None
        return await client.delete_field(step.schema_id, step.field_id)
    if step.method == "delete-schema":
        assert step.schema_id is not None
        await client.delete_schema(step.schema_id)
        return None
    raise ValueError(step.method)  # pragma: no cover - build_stages makes only the four kinds above


def _is_rejection(exc: Exception) -> bool:
    """The API's validation answer: 422, or another 4xx that is not auth, 404 or the rate limit."""
    status = exc.status if isinstance(exc, ApiError) else None
    return status is not None and 400 <= status < 500 and status not in (401, 403, 404, 429)


def _preflighted(stages: Sequence[Sequence[Step]]) -> list[Step]:
    """The updates :func:`preflight_updates` sends (those of schemas that exist before the run)."""
    return [s for stage in stages for s in stage
            if s.method == "update" and s.schema_id is not None and s.preflight is not None]


def _rechecked(stages: Sequence[Sequence[Step]]) -> set[str]:
    """Ids of the schemas that ``preflight`` reads again right before their first destructive write."""
    return {s.schema_id for stage in stages for s in stage
            if s.method in ("delete-field", "delete-schema") and s.schema_id is not None}


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

    failures = [f for f in await asyncio.gather(*(check(s) for s in _preflighted(stages))) if f is not None]
    rejected = [(slug, exc) for slug, exc in failures if _is_rejection(exc)]
    if rejected:
        raise PreflightFailed(rejected)
    if failures:
        raise PreflightIncomplete(failures)


def _field_deletes_to_probe(plan: Plan, counted: Plan) -> list[DeleteField]:
    """The field deletes whose admin permission :meth:`_Run._check_admin` asks the account about
    (empty: no request): none when ``counted`` (the plan as printed) holds a record total, read with
    the same admin-only list."""
    deletes = [c for c in plan.changes if isinstance(c, DeleteField) and not c.blocked and c.schema_id]
    if any(f.impact is not None and f.impact.total is not None
           for c in counted.changes if isinstance(c, DeleteField) for f in c.findings):
        return []
    return deletes


def _pages(schemas: int) -> int:
    """Requests of one read of a schema list this long (an empty list is one request too)."""
    return max(1, -(-schemas // PAGE_SIZE))


def _requests(plan: Plan, stages: Sequence[Sequence[Step]], account_schemas: int, *, saved: bool,
              preflight: bool) -> int:
    """What :class:`_Run` sends for ``plan`` when nothing fails, in its order (see :func:`estimate`)."""
    size = account_schemas
    sent = 0
    listed = saved  # a read of the account that no write followed yet: the next stage's check
    if saved:
        sent += _pages(size)
    if any(stages):
        sent += 1 if _field_deletes_to_probe(plan, plan) else 0
        if preflight:
            sent += len(_preflighted(stages)) + len(_rechecked(stages))
            listed = False
    for stage in stages:
        if any(s.method != "create" for s in stage) and not listed:
            sent += _pages(size)
        listed = False
        sent += len(stage)
        size += sum(s.method == "create" for s in stage) - sum(s.method == "delete-schema" for s in stage)
    return sent + _pages(size)  # the verification read


def estimate(plan: Plan, *, account_schemas: int, rate: float | None, pace: float | None = None,
             saved: bool = False) -> Estimate | None:
    """What applying ``plan`` costs: the requests :func:`apply_plan` sends when nothing fails (the
    reads of the account before the stages, the admin check, the writes, the verification read) and
    how many more ``preflight=True`` sends; ``None`` when there is nothing to apply or the gates
    refuse it whatever the flags.

    ``account_schemas``: how many schemas the account holds (every list read is one request per 100).
    ``saved``: applied as a saved plan, whose re-plan reads the account first (that read is then the
    first stage's check). ``rate``: the account's requests/s; ``pace``: what the client keeps (the
    seconds follow from it; default ``rate``). Failures, retries and 429s cost more.
    """
    if not plan.changes or gate_reasons(plan, allow_data_loss=True):
        return None
    stages = build_stages(plan)
    plain = _requests(plan, stages, account_schemas, saved=saved, preflight=False)
    checked = _requests(plan, stages, account_schemas, saved=saved, preflight=True)
    return Estimate(requests=plain, preflight=checked - plain, rate=rate, pace=pace if pace is not None else rate)


# ---------------------------------------------------------------------------------------------
# Apply


@dataclass
class ApplyControl:
    """How a caller stops a running :func:`apply_plan` (the CLI's signal handlers).

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
                if c.action == "+":
                    added += 1
                elif c.action == "~":
                    changed += 1
                elif c.action == "-":
                    destroyed += 1
        return added, changed, destroyed


def _text(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, ReconcilerError) else f"{type(exc).__name__}: {exc}"


def _comparable_change(change: Change) -> dict[str, Any]:
    """A change as saved, without what a re-plan does not recompute (record counts)."""
    d = change.to_dict()
    d["findings"] = [{k: v for k, v in f.items() if k != "impact"} for f in d["findings"]]
    return d


def _first_difference(saved: Plan, again: Plan) -> str | None:
    """Where a saved plan and the plan made again from the files and the account differ, or ``None``."""
    if (saved.narrowed_by or None) != (again.narrowed_by or None):
        return "its --target/--exclude narrowing differs"
    if dict(saved.live_fingerprints) != dict(again.live_fingerprints):
        return "the live schemas it lists as read differ"
    mine = [_comparable_change(c) for c in saved.changes]
    theirs = [_comparable_change(c) for c in again.changes]
    for a, b in zip(mine, theirs, strict=False):
        if a != b:
            return f'change "{a.get("key")}" differs'
    if len(mine) != len(theirs):
        return f"it holds {len(mine)} changes, planning again gives {len(theirs)}"
    if [e.to_dict() for e in saved.errors] != [e.to_dict() for e in again.errors]:
        return "its errors differ"
    return None


def _expected_fingerprints(plan: Plan) -> dict[str, str]:
    """schema id -> the fingerprint the first write to it expects (the plan's read of that schema).

    The plan and the stages' checks read the schema in the list (``GET /customObjects/schemas
    ?showFields=all``); ``preflight``'s check before a destructive write reads it alone (``GET
    …/schemas/{id}?showFields=all``): that both show the same object is a guess the docs leave open
    (their examples agree; the sandbox serves the same text)."""
    live_slug: dict[str, str] = {}
    for c in plan.changes:
        if c.schema_id is None:
            continue
        if isinstance(c, UpdateSchema) and c.renamed_from:
            live_slug[c.schema_id] = c.renamed_from  # a rename's changes carry the new slug
        else:
            live_slug.setdefault(c.schema_id, c.slug)
    out: dict[str, str] = {}
    for schema_id, slug in live_slug.items():
        try:
            out[schema_id] = plan.live_fingerprints[slug]
        except KeyError:
            raise StalePlan(f'the plan holds no fingerprint of schema "{slug}", so it cannot tell whether the '
                            "schema changed since; plan again") from None
    return out


def _subjects(step: Step) -> set[str]:
    """What a step makes true in the account, by plan subject (``slug`` / ``slug.field-id``)."""
    subjects = {c.subject for c in step.changes}
    if step.method == "create" and step.after is not None:
        subjects |= {f"{step.slug}.{f.id}" for f in step.after.fields}
        subjects |= {f"{step.slug}.{r.id}" for r in step.after.relationships}
    return subjects


def _outside(step: Step, schema: Schema) -> dict[str, Any]:
    """The schema's compared view without what the step writes (its own properties when it updates
    the schema itself, the fields and relationships it adds, changes or deletes)."""
    view = schema.comparable()
    fields = {c.field_id for c in step.changes if isinstance(c, (AddField, UpdateField, DeleteField))}
    rels = {c.relationship_id for c in step.changes if isinstance(c, (AddRelationship, UpdateRelationship))}
    out: dict[str, Any] = {"fields": {k: v for k, v in view["fields"].items() if k not in fields},
                           "relationships": {k: v for k, v in view["relationships"].items() if k not in rels}}
    if not any(isinstance(c, UpdateSchema) for c in step.changes):
        out["own"] = schema.comparable_own()
    return out


def _open(plan: Plan, subjects: set[str]) -> bool:
    """Does ``plan`` still have a change or error on one of these subjects?"""
    return any(c.subject in subjects for c in plan.changes) or any(e.subject in subjects for e in plan.errors)


class _Run:
    """One apply: the steps, what each became, and what the next write to each schema expects."""

    def __init__(self, plan: Plan, client: Client, desired: Mapping[str, Schema], options: PlanOptions,
                 control: ApplyControl, on_step: Callable[[StepResult], None] | None, concurrency: int,
                 saved: bool, files_digest: str | None, preflight: bool):
        self.plan = plan
        self.client = client
        self.desired = desired
        self.options = options
        self.control = control
        self.on_step = on_step
        self.gate = asyncio.Semaphore(concurrency)
        self.saved = saved
        self.files_digest = files_digest
        self.preflight = preflight
        self.steps: list[Step] = []
        self.results: list[StepResult | None] = []
        self.writing: set[int] = set()  # steps whose write was sent (their outcome is open until settled)
        self.created: dict[str, str] = {}  # slug -> id of the schemas created by this run
        self.expected: dict[str, str] = {}  # schema id -> fingerprint the next write to it expects
        self.known: dict[str, Schema] = {}  # schema id -> as last read or answered (the write's "before")
        self.last_write: dict[str, int] = {}  # schema id -> the step that wrote it last
        #: schema id -> schema of a read of the account that no write followed yet (the next check)
        self.listed: dict[str, Schema] | None = None
        self.rechecked: set[str] = set()  # schemas read again before their first destructive write
        self.locks: dict[str, asyncio.Lock] = {}
        self.pairing = asyncio.Lock()  # held from a destructive step's GET until its write is queued
        self.halted = False  # a step failed: start nothing new
        self.required_ignored: dict[str, None] = {}  # slug.field-id sent required, kept not required

    # -- the phases -----------------------------------------------------------------------------

    async def main(self) -> ApplyResult:
        given = self.plan  # a saved plan's record counts are not made again by the re-plan
        if self.saved:
            self.plan = await self._verify_saved()  # its read of the account is the first stage's check
        self._set_steps(self.plan)
        self.expected = _expected_fingerprints(self.plan)
        if self.steps and not self.control.interrupted:
            await self._check_admin(given)
            if self.preflight:
                await preflight_updates(self.client, self._stages)
                self.listed = None  # read again after the preflight's time
        for indices in self._stage_indices:
            if not self._stopping():
                await self._check_stage(indices)
            if self._stopping():
                for i in indices:
                    if self.results[i] is None:
                        self.results[i] = StepResult(self.steps[i], "not started")
                continue
            self.listed = None  # this stage writes: what was read before it is not the account after
            await asyncio.gather(*(self._run(i) for i in indices))
        return await self._finish()

    async def _check_stage(self, indices: Sequence[int]) -> None:
        """Before a stage that writes schemas that exist: one read of the account (unless the last
        read was made since the last write), and each schema the stage writes must show the
        fingerprint its next write expects. A schema that does not (or is gone) fails its first step
        with the race; the run then stops before this stage writes anything."""
        steps = [(i, self.steps[i]) for i in indices if self.steps[i].method != "create"]
        if not steps:
            return
        listed, self.listed = self.listed, None
        if listed is None:
            self.control.in_flight += 1
            try:
                listed = {s.id: s for s in await self.client.list_schemas() if s.id is not None}
            except Exception as exc:  # any failure stops the run and is reported
                self.halted = True
                i, step = steps[0]
                self._report(i, StepResult(step, "failed", error=(
                    f"could not read the account before writing to it: {_text(exc)}; nothing was written to it")))
                return
            finally:
                self.control.in_flight -= 1
        seen: set[str] = set()
        for i, step in steps:
            schema_id = step.schema_id or self.created.get(step.slug)
            assert schema_id is not None  # a schema created by this run has its id: its create was done
            if schema_id in seen:
                continue
            seen.add(schema_id)
            now = listed.get(schema_id)
            if now is None or fingerprint(now) != self.expected.get(schema_id):
                self.halted = True
                self._report(i, StepResult(step, "failed", error=race_message(step.slug), race=True))
            else:
                self.known[schema_id] = now

    def _set_steps(self, plan: Plan) -> None:
        """The plan's stages; ``steps`` numbers their steps in order, ``_stage_indices`` each stage's."""
        self._stages = build_stages(plan)
        self._stage_indices: list[list[int]] = []
        self.steps = []
        for stage in self._stages:
            self._stage_indices.append(list(range(len(self.steps), len(self.steps) + len(stage))))
            self.steps.extend(stage)
        self.results = [None] * len(self.steps)

    async def _verify_saved(self) -> Plan:
        """The plan made again from the files and the account, if it equals the saved one."""
        plan, base = self.plan, self.client.base_url
        try:
            target = normalize_base_url(plan.target or "", allow_http=True)
        except ConfigError:
            target = None
        if target != base:
            raise PlanMismatch(f"the plan was made for {plan.target or 'no named target'}, not for "
                               f"{base.removesuffix('/api/3')}; plan again for this target (or choose the "
                               "plan's target, e.g. with --env)")
        listed = await self.client.list_schemas()
        live = {s.slug: s for s in listed}
        self.listed = {s.id: s for s in listed if s.id is not None}
        files = digest_of_desired(self.desired)
        if self.files_digest is not None and self.files_digest != files:
            raise PlanMismatch("the desired digest given does not match the desired schemas given")
        check_fresh(plan, live, desired_digest=files)
        narrowed = plan.narrowed_by or {}
        options = dataclasses.replace(self.options, targets=tuple(narrowed.get("targets", ())),
                                      excludes=tuple(narrowed.get("excludes", ())),
                                      target_url=plan.target, created_at=plan.created_at)
        again = make_plan(self.desired, live, options)
        where = _first_difference(plan, again)
        if where is not None:
            raise PlanMismatch(f"Saved plan does not match what the files and the account give now: {where} "
                               "(the file was edited, or made with other settings); plan again and review it")
        return again

    async def _check_admin(self, counted: Plan) -> None:
        """Raise :class:`NeedsAdmin` before any write when the plan deletes fields and the token is
        refused an admin-only read. A plan whose record counts were had (``counted``: a schema's
        total is an unfiltered records list) needs no further read; otherwise one count is asked for."""
        deletes = _field_deletes_to_probe(self.plan, counted)
        if not deletes:
            return
        try:
            assert deletes[0].schema_id is not None
            await self.client.count_records(deletes[0].schema_id)
        except AuthenticationFailed as exc:
            if exc.needs_admin:
                raise NeedsAdmin([c.subject for c in deletes], exc) from None
        except (ApiError, DeadlineExceeded):
            return  # not a permission answer: the deletes are tried, their steps report

    def _detect_required(self, step: Step, answer: Schema | None) -> None:
        """Fields this step sent with ``required: true`` that the account's answer shows not required:
        the account ignores ``required``. From then on this run plans without it (the planner's
        ``required_managed``), so the read-backs and the verification accept those differences."""
        if answer is None:
            return
        sent = _sent_required(step)
        found = [f"{step.slug}.{fid}" for fid in sent if (f := answer.field(fid)) is not None and not f.required]
        if not found:
            return
        self.required_ignored.update(dict.fromkeys(found))
        if self.options.required_managed:
            self.options = dataclasses.replace(self.options, required_managed=False,
                                               required_reason="detected by this apply")

    def _stopping(self) -> bool:
        return self.halted or self.control.interrupted

    def _report(self, i: int, res: StepResult) -> None:
        self.results[i] = res
        if self.on_step is not None:
            self.on_step(res)

    # -- one step -------------------------------------------------------------------------------

    async def _run(self, i: int) -> None:
        step = self.steps[i]
        lock = self.locks.setdefault(step.schema_id or f"new:{step.slug}", asyncio.Lock())
        async with lock, self.gate:  # one write at a time per schema: each checks what the last left
            if self._stopping():
                self.results[i] = StepResult(step, "not started")
                return
            entered = [False]
            try:
                res = await self._execute(i, step, entered)
            finally:
                if entered[0]:
                    self.control.in_flight -= 1
        if res.status == "not started":
            self.results[i] = res
        else:
            self._report(i, res)

    async def _execute(self, i: int, step: Step, entered: list[bool]) -> StepResult:
        """(Re-check,) write, and judge the answer. ``entered[0]`` is set once the step counts as in
        flight (it sends its first request)."""
        started = time.perf_counter()

        def result(status: str, error: str | None = None, **kw: Any) -> StepResult:
            return StepResult(step, status, time.perf_counter() - started, error, **kw)

        schema_id = step.schema_id or self.created.get(step.slug)
        # the schema as the stage's read or our previous write to it showed it (None: a create)
        before = self.known.get(schema_id) if schema_id is not None and step.method != "create" else None
        recheck = (self.preflight and step.method in ("delete-field", "delete-schema")
                   and schema_id is not None and schema_id not in self.rechecked)
        # With ``preflight``, the schema is read right before its first destructive write: the GET
        # and the write are taken as a pair (``pairing``), so no other step's request queues for the
        # client's limiter between them; the pair ends once the write has queued for its token.
        async with self.pairing if recheck else contextlib.nullcontext():
            if self._stopping():  # stopped while this step waited for the pair
                return StepResult(step, "not started")
            self.control.in_flight += 1
            entered[0] = True
            if recheck:
                assert schema_id is not None
                self.rechecked.add(schema_id)
                try:
                    before = await self.client.get_schema(schema_id)
                except NotFound:
                    return self._race(step, result)
                except Exception as exc:  # any failure stops the run and is reported
                    self.halted = True
                    return result("failed", f'could not read schema "{step.slug}" before writing to it: '
                                            f"{_text(exc)}; nothing was written to it")
                if fingerprint(before) != self.expected.get(schema_id):
                    return self._race(step, result)
                if self.control.interrupted:  # stopped during the check: this write is not started
                    return StepResult(step, "not started")
            self.writing.add(i)
            write = asyncio.ensure_future(_run_step(self.client, step, self.created))
            try:
                await asyncio.sleep(0)
            except asyncio.CancelledError:
                write.cancel()
                raise
        try:
            after = await write
        except ValidationFailed as exc:
            if step.method == "create" and _slug_taken(exc):
                self.writing.discard(i)
                return self._race(step, result)
            return await self._failed_write(i, exc, result)
        except Exception as exc:  # any failure stops new writes and is reported
            return await self._failed_write(i, exc, result)
        self.writing.discard(i)
        self._detect_required(step, after)
        if after is None and schema_id is not None:  # a schema delete answers with no schema
            self.known.pop(schema_id, None)
        if after is not None and after.id is not None:
            # A guess, true of the sandbox: the write's answer (PUT and field DELETE with
            # ?showFields=all; the create's POST, for which showFields is not documented) shows the
            # schema exactly as the list ?showFields=all of the next check will, so equal
            # fingerprints mean "unchanged". If the real API differs, the next check reports a race
            # that is not one (safe: it stops, it does not write).
            self.expected[after.id] = fingerprint(after)
            self.known[after.id] = after
            self.last_write[after.id] = i
            if before is not None and self._landed_on_a_change(step, before, after):
                # the answer shows a write of someone else's since the schema was last seen: ours
                # is in, merged with theirs; nothing more is written to the schema
                self.halted = True
                return result("done", race_message(step.slug), race=True)
        return result("done")

    def _race(self, step: Step, result: Callable[..., StepResult]) -> StepResult:
        self.halted = True
        return result("failed", race_message(step.slug), race=True)

    async def _failed_write(self, i: int, exc: Exception, result: Callable[..., StepResult]) -> StepResult:
        """A write that raised: read the schema back; done if the account shows it done (a lost
        answer), failed if not, unknown if it cannot be read (its write stays in ``writing``)."""
        step = self.steps[i]
        text = _text(exc)
        try:
            done, now = await self._read_back(step)
        except Exception as again:  # the outcome stays open, the run stops
            self.halted = True
            return result("unknown", f"{text}; could not read it back ({_text(again)}); {UNKNOWN}")
        if done:
            if now is not None and now.id is not None:
                self.expected[now.id] = fingerprint(now)
                self.known[now.id] = now
                self.last_write[now.id] = i
                if step.method == "create":
                    self.created[step.slug] = now.id
            self.writing.discard(i)
            return result("done", confirmed=True)
        self.halted = True
        self.writing.discard(i)
        return result("failed", text)

    async def _read_back(self, step: Step) -> tuple[bool, Schema | None]:
        """(is the step's effect in the account?, the schema as read now)."""
        if step.method == "create":
            now = await self.client.find_schema_by_slug(step.slug)
            return (now is not None and not self._still_open(step, now)), now
        schema_id = step.schema_id or self.created.get(step.slug)
        assert schema_id is not None
        try:
            now = await self.client.get_schema(schema_id)
        except NotFound:
            return step.method == "delete-schema", None
        if step.method == "delete-schema":
            return False, now
        if step.method == "delete-field":
            assert step.field_id is not None
            return now.field(step.field_id) is None, now
        return not self._still_open(step, now), now

    def _landed_on_a_change(self, step: Step, checked: Schema, after: Schema) -> bool:
        """Does our write's answer show more than our write did to the schema as last seen? Outside
        what the step writes it must be as checked, and what it writes must be as the files say."""
        if _outside(step, checked) != _outside(step, after):
            return True
        if step.method == "delete-field":
            assert step.field_id is not None
            return after.field(step.field_id) is not None
        return self._still_open(step, after)

    def _still_open(self, step: Step, now: Schema) -> bool:
        """Does a plan of this one schema (files vs ``now``) still want what the step does?"""
        want = self.desired.get(step.slug)
        if want is None:
            return True
        options = dataclasses.replace(self.options, targets=(), excludes=(), prune=False,
                                      desired_is_empty_dir=False)
        return _open(make_plan({want.slug: want}, {now.slug: now}, options), _subjects(step))

    # -- the end --------------------------------------------------------------------------------

    async def _finish(self) -> ApplyResult:
        result = ApplyResult(results=[r if r is not None else StepResult(s, "not started")
                                      for s, r in zip(self.steps, self.results, strict=True)])
        result.interrupted = self.control.interrupted
        result.required_ignored = tuple(self.required_ignored)
        if result.interrupted:  # never verified: the user asked to stop, not to wait for a read
            if not (result.failed or result.not_started or result.unknown):
                result.verify_error = "the run was interrupted before the account was read back"
            return result
        if result.stopped and not result.unknown:  # failed or raced: nothing open to settle
            return result
        try:
            live_after = await self._read_after()
        except (ApiError, DeadlineExceeded) as exc:  # the writes are done: report them, unverified
            result.verify_error = str(exc)
            return result
        again = make_plan(self.desired, live_after, self.options)
        if again.has_changes and self._required_only(result, again):
            again = make_plan(self.desired, live_after, self.options)  # now without required
        result.required_ignored = tuple(self.required_ignored)
        result.verified = not again.has_changes and not again.has_errors
        if not result.verified:
            result.remaining = again
            self._changed_after(result, again, live_after)
        self._settle(result, again)
        return result

    async def _read_after(self) -> dict[str, Schema]:
        """The account after the writes, by slug: the list, and each schema this run wrote or deleted
        read by id where the list does not show what our last write to it left. The API's lists may
        lag the writes (eventual consistency is reported for record lists, S10; for schema lists it
        is not documented); a read by id is taken to be current (a guess)."""
        listed = await self.client.list_schemas()
        by_id = {s.id: s for s in listed if s.id is not None}
        deleted = {r.step.schema_id for r in self.results if r is not None and r.status == "done"
                   and r.step.method == "delete-schema" and r.step.schema_id is not None}
        check = [sid for sid in self.last_write
                 if sid not in deleted and (sid not in by_id or fingerprint(by_id[sid]) != self.expected.get(sid))]
        check += [sid for sid in deleted if sid in by_id]

        async def current(schema_id: str) -> tuple[str, Schema | None]:
            try:
                return schema_id, await self.client.get_schema(schema_id)
            except NotFound:
                return schema_id, None

        for schema_id, now in await asyncio.gather(*(current(sid) for sid in check)):
            if now is None:
                by_id.pop(schema_id, None)
            else:
                by_id[schema_id] = now
        return {s.slug: s for s in (*by_id.values(), *(s for s in listed if s.id is None))}

    def _required_only(self, result: ApplyResult, final: Plan) -> bool:
        """The verification's read shows fields that a done step sent with ``required: true`` as not
        required (the write's answer did not say): the account ignores ``required``. True when such
        fields were found (and this run now plans without ``required``)."""
        sent = {f"{r.step.slug}.{fid}" for r in result.results if r.status == "done" for fid in _sent_required(r.step)}
        found = [c.subject for c in final.changes if isinstance(c, UpdateField) and c.changed == ("required",)
                 and c.subject in sent and c.after is not None and c.after.required]
        if not found or not self.options.required_managed:
            return False
        self.required_ignored.update(dict.fromkeys(found))
        self.options = dataclasses.replace(self.options, required_managed=False,
                                           required_reason="detected by this apply")
        return True

    def _changed_after(self, result: ApplyResult, final: Plan, live: Mapping[str, Schema]) -> None:
        """A schema we wrote that is not as the files say, and not as our last write left it: changed
        in the account after that write (another apply's write landed after ours). Its last step
        reports the race."""
        by_id = {s.id: s for s in live.values() if s.id is not None}
        for schema_id, i in self.last_write.items():
            now = by_id.get(schema_id)
            r = result.results[i]
            slug = now.slug if now is not None else r.step.slug
            if r.race or not (any(c.slug == slug for c in final.changes) or any(e.slug == slug for e in final.errors)):
                continue
            if now is None or fingerprint(now) != self.expected.get(schema_id):
                r.race, r.error = True, race_message(r.step.slug)

    def _settle(self, result: ApplyResult, final: Plan) -> None:
        """After a run with unknown outcomes, the final read decides them: an unknown step is done
        (confirmed) when the account shows its effect, failed when not. A failed or not started step
        whose effect the account shows anyway (someone else's write) is not needed."""
        for r in result.results:
            if r.status not in ("unknown", "failed", "not started"):
                continue
            if _open(final, _subjects(r.step)):
                if r.status == "unknown":
                    r.status = "failed"  # read back: not done
                continue
            if r.status == "unknown":
                r.status, r.confirmed = "done", True
            else:
                r.status = "not needed"

    def aborted(self) -> ApplyResult:
        """The result after ``abort``: steps whose write was out are unknown."""
        if not self.steps:
            self._set_steps(self.plan)
        results = []
        for i, step in enumerate(self.steps):
            r = self.results[i]
            if r is None:
                r = StepResult(step, "unknown", error=UNKNOWN) if i in self.writing else StepResult(step, "not started")
            results.append(r)
        return ApplyResult(results=results, interrupted=True, aborted=True,
                           verify_error="the run was aborted before the account was read back"
                           if all(r.status == "done" for r in results) else None)


def _sent_required(step: Step) -> list[str]:
    """Ids of the fields the step's write sends with ``required: true``."""
    if step.method == "create" and step.after is not None:
        return [f.id for f in step.after.active_fields if f.required]
    if step.method == "update" and step.body is not None:
        return [f["id"] for f in step.body.get("fields", ()) if isinstance(f, Mapping) and f.get("required") is True]
    return []


def _slug_taken(exc: ValidationFailed) -> bool:
    """A create refused because the slug exists (docs/api-notes.md §10: "Schema slug must be unique")."""
    return any((e.pointer or "").endswith("/slug") or "slug must be unique" in (e.detail or "").lower()
               for e in exc.errors)


async def apply_plan(
    plan: Plan,
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
) -> ApplyResult:
    """Execute ``plan`` against the account behind ``client``.

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

    ``control`` (or, the older form, ``stop`` alone) interrupts the run; ``desired_digest``, when
    given, must be the digest of ``desired`` (apply computes it itself).
    """
    if control is None:
        control = ApplyControl(stop=stop) if stop is not None else ApplyControl()
    elif stop is not None:
        raise TypeError("pass stop or control, not both")
    if options is None:
        from reconciler.planner import PlanOptions

        options = PlanOptions()
    reasons = gate_reasons(plan, allow_data_loss=allow_data_loss)
    if reasons:
        raise ApplyRefused(reasons)
    run = _Run(plan, client, desired, options, control, on_step, concurrency, saved, desired_digest, preflight)
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
