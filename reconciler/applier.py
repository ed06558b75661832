"""Execute a plan: gates, freshness, preflight, ordered stages, progress, partial failure, verification.

A plan becomes *steps* (one API write each) grouped in ordered *stages*:

1. schema creates, each with all its fields and relationships in the one POST; a schema that
   another new schema's relationship points at is created in an earlier stage (a relationship that
   closes a cycle between new schemas is added by a PUT once both exist);
2. schema updates: every label/description/slug change, field addition, field property change and
   option addition of one schema in a single PUT (preflighted first with ``validateOnly``); renames
   first. A field delete that frees a label which an update takes over runs just before them;
3. field deletes, one DELETE each;
4. schema deletes, one DELETE each.

Steps of one stage run concurrently (the client's limiter keeps the account's rate). At the first
failure no new step starts; steps in flight finish; the result says what was done, what failed
(with the API's error) and what was not started. Running ``apply`` again converges, because every
step is either idempotent or, for creates, looked up by slug before it is retried (client.py).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from reconciler.client import Client
from reconciler.errors import ApiError, ReconcilerError, TransportFailure
from reconciler.model import Field, Schema
from reconciler.plan import (
    AddField,
    AddRelationship,
    Change,
    CreateSchema,
    DeleteField,
    DeleteSchema,
    Plan,
    UpdateField,
    UpdateRelationship,
    UpdateSchema,
    fingerprint,
)
from reconciler.planner import PlanOptions
from reconciler.planner import plan as make_plan
from reconciler.wire import field_to_api, relationship_to_api

__all__ = [
    "ApplyRefused",
    "ApplyResult",
    "PreflightFailed",
    "StalePlan",
    "Step",
    "StepResult",
    "apply_plan",
    "build_stages",
    "check_fresh",
    "gate_reasons",
]


class ApplyRefused(ReconcilerError):
    """A safety gate refused the plan; nothing was written (exit code 3)."""

    def __init__(self, reasons: Sequence[str]):
        self.reasons = list(reasons)
        super().__init__("; ".join(self.reasons))


class StalePlan(ReconcilerError):
    """The account (or the files) changed after the saved plan was made; nothing was written."""


class PreflightFailed(ReconcilerError):
    """The API's ``validateOnly`` rejected an update; nothing was written."""

    def __init__(self, failures: Sequence[tuple[str, Exception]]):
        self.failures = list(failures)
        super().__init__("; ".join(f"{slug}: {exc}" for slug, exc in self.failures))


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
    step: Step
    status: str  # "done" | "failed" | "not started"
    elapsed: float = 0.0
    error: str | None = None


def _options_body(c: UpdateField) -> list[dict[str, str]] | None:
    """The options of an update: the live ones in the live order, then the added ones.

    Options are append-only (ac-api.md U8) and the API cannot reorder (the planner ignores order):
    sending the file's order could reorder the live options, or read as a rename.
    """
    assert c.after is not None
    if not c.after.type.has_options:
        return None
    live = c.before.option_values if isinstance(c.before, Field) else ()
    values = list(live) + [v for v in c.after.option_values if v not in live]
    return [{"value": v} for v in values]


def _update_body(changes: Iterable[Change]) -> dict[str, Any]:
    """One PUT body for all of a schema's in-place changes (the API merges fields by id)."""
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
        elif isinstance(c, (AddField, UpdateField)):
            assert c.after is not None
            wire = field_to_api(c.after)
            if isinstance(c, UpdateField):
                if "description" in c.changed and c.after.description is None:
                    wire["description"] = ""  # the API merges: an omitted description would be kept
                options = _options_body(c)
                if options is not None:
                    wire["options"] = options
            body.setdefault("fields", []).append(wire)
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


async def _run_step(client: Client, step: Step, created: dict[str, str]) -> None:
    if step.method == "create":
        assert step.after is not None
        made = await client.create_schema(step.after)
        if made.id is not None:
            created[step.slug] = made.id
    elif step.method == "update":
        schema_id = step.schema_id or created.get(step.slug)
        assert schema_id is not None and step.body is not None
        await client.update_schema(schema_id, dict(step.body))
    elif step.method == "delete-field":
        assert step.schema_id is not None and step.field_id is not None
        await client.delete_field(step.schema_id, step.field_id)
    elif step.method == "delete-schema":
        assert step.schema_id is not None
        await client.delete_schema(step.schema_id)
    else:  # pragma: no cover - build_stages makes only the four kinds above
        raise ValueError(step.method)


async def preflight(client: Client, stages: Sequence[Sequence[Step]]) -> None:
    """Send every update once with ``validateOnly``; raise :class:`PreflightFailed` on any rejection.

    Creates and deletes cannot be preflighted: the API documents ``validateOnly`` for updates only.
    An update is checked without what only an earlier stage makes valid (:attr:`Step.preflight`).
    """
    updates = [s for stage in stages for s in stage
               if s.method == "update" and s.schema_id is not None and s.preflight is not None]

    async def check(step: Step) -> tuple[str, Exception] | None:
        assert step.schema_id is not None and step.preflight is not None
        try:
            await client.update_schema(step.schema_id, dict(step.preflight), validate_only=True)
        except (ApiError, TransportFailure) as exc:
            return step.slug, exc
        return None

    failures = [f for f in await asyncio.gather(*(check(s) for s in updates)) if f is not None]
    if failures:
        raise PreflightFailed(failures)


# ---------------------------------------------------------------------------------------------
# Apply


@dataclass
class ApplyResult:
    results: list[StepResult] = field(default_factory=list)
    verified: bool = False
    remaining: Plan | None = None  # what a plan after the writes still shows, when not verified
    verify_error: str | None = None  # the account could not be read back after the writes
    interrupted: bool = False

    @property
    def failed(self) -> list[StepResult]:
        return [r for r in self.results if r.status == "failed"]

    @property
    def not_started(self) -> list[StepResult]:
        return [r for r in self.results if r.status == "not started"]

    @property
    def ok(self) -> bool:
        return not self.failed and not self.not_started and self.verified

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


async def apply_plan(
    plan: Plan,
    client: Client,
    *,
    desired: Mapping[str, Schema],
    options: PlanOptions,
    allow_data_loss: bool = False,
    saved: bool = False,
    desired_digest: str | None = None,
    on_step: Callable[[StepResult], None] | None = None,
    stop: asyncio.Event | None = None,
    concurrency: int = 8,
) -> ApplyResult:
    """Execute ``plan`` against the account behind ``client``.

    Raises :class:`ApplyRefused` (gates), :class:`StalePlan` (saved plan out of date) or
    :class:`PreflightFailed` before anything is written. Write failures do not raise: they are in
    the returned :class:`ApplyResult`, as is the verification.
    """
    reasons = gate_reasons(plan, allow_data_loss=allow_data_loss)
    if reasons:
        raise ApplyRefused(reasons)
    if saved:
        live_now = {s.slug: s for s in await client.list_schemas()}
        check_fresh(plan, live_now, desired_digest=desired_digest)

    stages = build_stages(plan)
    result = ApplyResult()
    if stages:
        await preflight(client, stages)
    stop = stop or asyncio.Event()
    gate = asyncio.Semaphore(concurrency)
    created: dict[str, str] = {}  # slug -> id of the schemas created by this run

    async def run(step: Step) -> StepResult:
        async with gate:
            if stop.is_set():
                return StepResult(step, "not started")
            started = time.perf_counter()
            try:
                await _run_step(client, step, created)
            except Exception as exc:  # any failure stops new writes and is reported
                stop.set()
                text = str(exc) if isinstance(exc, ReconcilerError) else f"{type(exc).__name__}: {exc}"
                res = StepResult(step, "failed", time.perf_counter() - started, text)
            else:
                res = StepResult(step, "done", time.perf_counter() - started)
        if on_step is not None:
            on_step(res)
        return res

    for stage in stages:
        if stop.is_set():
            result.results.extend(StepResult(s, "not started") for s in stage)
            continue
        result.results.extend(await asyncio.gather(*(run(s) for s in stage)))

    result.interrupted = stop.is_set() and not result.failed
    if result.failed or result.not_started:
        return result

    try:
        live_after = {s.slug: s for s in await client.list_schemas()}
    except ApiError as exc:  # the writes are done: report them, and that they are unverified
        result.verify_error = str(exc)
        return result
    again = make_plan(desired, live_after, options)
    result.verified = not again.has_changes and not again.has_errors
    if not result.verified:
        result.remaining = again
    return result
