"""Execute a plan: gates, freshness, preflight, ordered stages, progress, partial failure, verification.

A plan becomes *steps* (one API write each) grouped in ordered *stages*:

1. schema creates, each with all its fields and relationships in the one POST; a schema that
   another new schema's relationship points at is created first;
2. schema updates: every label/description/slug change, field addition, field property change and
   option addition of one schema in a single PUT (preflighted first with ``validateOnly``);
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
from reconciler.model import Schema
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
    """One API write and the plan changes it carries out."""

    stage: int
    slug: str
    changes: tuple[Change, ...]
    method: str  # "create" | "update" | "delete-field" | "delete-schema"
    schema_id: str | None = None
    body: Mapping[str, Any] | None = None
    field_id: str | None = None
    after: Schema | None = None

    @property
    def label(self) -> str:
        return "; ".join(c.describe() for c in self.changes)


@dataclass
class StepResult:
    step: Step
    status: str  # "done" | "failed" | "not started"
    elapsed: float = 0.0
    error: str | None = None


def _update_body(changes: Iterable[Change]) -> dict[str, Any]:
    """One PUT body for all of a schema's in-place changes (the API merges fields by id)."""
    body: dict[str, Any] = {}
    for c in changes:
        if isinstance(c, UpdateSchema):
            after = c.after
            assert after is not None
            if "slug" in c.changed:
                body["slug"] = after.slug
            if "labels" in c.changed or any(k.startswith("labels") for k in c.changed):
                body["labels"] = {"singular": after.labels.singular, "plural": after.labels.plural}
            if "description" in c.changed:
                body["description"] = after.description or ""
        elif isinstance(c, (AddField, UpdateField)):
            assert c.after is not None
            wire = field_to_api(c.after)
            if isinstance(c, UpdateField) and "description" in c.changed and c.after.description is None:
                wire["description"] = ""  # the API merges: an omitted description would be kept
            body.setdefault("fields", []).append(wire)
        elif isinstance(c, (AddRelationship, UpdateRelationship)):
            assert c.after is not None
            wire = relationship_to_api(c.after)
            if isinstance(c, UpdateRelationship) and "description" in c.changed and c.after.description is None:
                wire["description"] = ""
            body.setdefault("relationships", []).append(wire)
    return body


def _creation_order(creates: list[CreateSchema]) -> list[CreateSchema]:
    """Schemas that a new schema's relationship points at come first (a stable topological sort)."""
    by_slug = {c.slug: c for c in creates}
    done: set[str] = set()
    ordered: list[CreateSchema] = []

    def visit(c: CreateSchema, path: frozenset[str]) -> None:
        if c.slug in done or c.slug in path:
            return
        assert c.after is not None
        for rel in c.after.relationships:
            dep = by_slug.get(rel.namespace)
            if dep is not None:
                visit(dep, path | {c.slug})
        done.add(c.slug)
        ordered.append(c)

    for c in creates:
        visit(c, frozenset())
    return ordered


def build_stages(plan: Plan) -> list[list[Step]]:
    """The plan's changes as ordered stages of steps."""
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

    stage1 = [Step(1, c.slug, (c,), "create", after=c.after) for c in _creation_order(creates)]
    stage2 = []
    for slug, changes in sorted(in_place.items()):
        schema_id = changes[0].schema_id
        stage2.append(Step(2, slug, tuple(changes), "update", schema_id=schema_id, body=_update_body(changes)))
    stage3 = [Step(3, c.slug, (c,), "delete-field", schema_id=c.schema_id, field_id=c.field_id) for c in field_deletes]
    stage4 = [Step(4, c.slug, (c,), "delete-schema", schema_id=c.schema_id) for c in schema_deletes]
    return [s for s in (stage1, stage2, stage3, stage4) if s]


async def _run_step(client: Client, step: Step) -> None:
    if step.method == "create":
        assert step.after is not None
        await client.create_schema(step.after)
    elif step.method == "update":
        assert step.schema_id is not None and step.body is not None
        await client.update_schema(step.schema_id, dict(step.body))
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
    """
    updates = [s for stage in stages for s in stage if s.method == "update"]

    async def check(step: Step) -> tuple[str, Exception] | None:
        assert step.schema_id is not None and step.body is not None
        try:
            await client.update_schema(step.schema_id, dict(step.body), validate_only=True)
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
            if r.status != "done":
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

    async def run(step: Step) -> StepResult:
        async with gate:
            if stop.is_set():
                return StepResult(step, "not started")
            started = time.perf_counter()
            try:
                await _run_step(client, step)
            except (ApiError, TransportFailure) as exc:
                stop.set()
                res = StepResult(step, "failed", time.perf_counter() - started, str(exc))
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

    live_after = {s.slug: s for s in await client.list_schemas()}
    again = make_plan(desired, live_after, options)
    result.verified = not again.has_changes and not again.has_errors
    if not result.verified:
        result.remaining = again
    return result
