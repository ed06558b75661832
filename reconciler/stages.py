"""A plan as ordered stages of API writes (:class:`Step`), and what applying it costs (:func:`estimate`).

Each change kind's request is :func:`request` (one ``case`` per kind): the method of the step it
belongs to and its part of that step's body. The stages, in order:

1. schema creates, each with all its fields and relationships in the one POST; a schema that
   another new schema's relationship points at is created in an earlier stage (a relationship that
   closes a cycle between new schemas is added by a PUT once both exist);
2. schema updates: every label/description/slug change, field addition, field property change and
   option addition of one schema in a single PUT; renames first. A field delete that frees a label
   which an update takes over runs just before them;
3. record copies (``migrate_from``), once the new fields exist and before any field is deleted;
4. field deletes, one DELETE each;
5. schema deletes, one DELETE each.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, assert_never

from reconciler import changes as ops
from reconciler.backups import backup_requests
from reconciler.client import PAGE_SIZE
from reconciler.gates import gate_reasons
from reconciler.model import Field, Schema
from reconciler.plan import Estimate, Plan
from reconciler.props import Prop
from reconciler.wire import field_to_api, field_update_to_api, relationship_to_api, schema_to_api

__all__ = ["Step", "StepMethod", "build_stages", "estimate", "field_deletes_to_probe", "preflighted", "rechecked",
           "request"]


class StepMethod(StrEnum):
    """The API write of a step."""

    CREATE = "create"  # POST a schema with its fields and relationships
    UPDATE = "update"  # PUT a schema's in-place changes
    DELETE_FIELD = "delete-field"
    DELETE_SCHEMA = "delete-schema"
    COPY = "copy"  # copy a field's record values into another field (many record upserts)


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

    slug: str
    changes: tuple[ops.Change, ...]
    method: StepMethod
    schema_id: str | None = None
    body: Mapping[str, Any] | None = None
    field_id: str | None = None
    after: Schema | None = None
    counted: bool = True
    preflight: Mapping[str, Any] | None = None

    @property
    def label(self) -> str:
        return "; ".join(c.describe for c in self.changes)



def request(change: ops.Change) -> tuple[StepMethod, dict[str, Any]]:
    """The write a change needs: its step's method and its part of that step's body (a create's is
    the whole schema; a delete's is empty, the path says it all). One ``case`` per change kind.

    An update's parts merge into one PUT per schema (:func:`_update_body`). Fields the PUT leaves
    out are kept (the API merges fields by id, docs/api-notes.md U1); each field in it is sent whole
    (:func:`~reconciler.wire.field_update_to_api`): the API may replace a field given in a PUT
    rather than merge it (undocumented). A description the files drop is sent as ``""`` (the API
    merges: an omitted one would be kept).
    """
    match change:
        case ops.CreateSchema():
            return StepMethod.CREATE, schema_to_api(change.after)
        case ops.UpdateSchema():
            after, part = change.after, dict[str, Any]()
            if Prop.SLUG in change.changed:
                part["slug"] = after.slug
            if any(p.is_label for p in change.changed):
                part["labels"] = {"singular": after.labels.singular, "plural": after.labels.plural}
            if Prop.DESCRIPTION in change.changed:
                part["description"] = after.description or ""
            return StepMethod.UPDATE, part
        case ops.UpdateField():
            return StepMethod.UPDATE, {"fields": [field_update_to_api(change.after, change.before, change.changed)]}
        case ops.AddField():
            return StepMethod.UPDATE, {"fields": [field_to_api(change.after)]}
        case ops.AddRelationship():
            return StepMethod.UPDATE, {"relationships": [relationship_to_api(change.after)]}
        case ops.UpdateRelationship():
            wire = relationship_to_api(change.after)
            if Prop.DESCRIPTION in change.changed and change.after.description is None:
                wire["description"] = ""
            return StepMethod.UPDATE, {"relationships": [wire]}
        case ops.CopyField():
            return StepMethod.COPY, {}
        case ops.DeleteField():
            return StepMethod.DELETE_FIELD, {}
        case ops.DeleteSchema():
            return StepMethod.DELETE_SCHEMA, {}
        case _:
            assert_never(change)


def _update_body(changes: Iterable[ops.Change]) -> dict[str, Any]:
    """One PUT body for all of a schema's in-place changes (their :func:`request` parts, merged)."""
    body: dict[str, Any] = {}
    for c in changes:
        method, part = request(c)
        assert method is StepMethod.UPDATE, c.key
        for key, value in part.items():
            if key in ("fields", "relationships"):
                body.setdefault(key, []).extend(value)
            else:
                body[key] = value
    return body


def _creation_levels(creates: Sequence[ops.CreateSchema]) -> tuple[list[list[ops.CreateSchema]], dict[str, list[str]]]:
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

    def visit(c: ops.CreateSchema) -> int:
        if c.slug in level:
            return level[c.slug]
        on_path.add(c.slug)
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
    levels: list[list[ops.CreateSchema]] = [[] for _ in range(max(level.values(), default=-1) + 1)]
    for c in creates:
        levels[level[c.slug]].append(c)
    return levels, deferred


def _label_keys(f: Field) -> set[tuple[str, str]]:
    return {("singular", f.labels.singular.casefold()), ("plural", f.labels.plural.casefold())}


def _early_deletes(in_place: Mapping[str, Sequence[ops.Change]], field_deletes: Sequence[ops.DeleteField]) -> set[str]:
    """Keys of the field deletes that must run BEFORE the updates: the API wants field labels unique
    among a schema's live fields (U7), so a field that takes over the label of a deleted one (a field
    renamed by id, keeping its label) can only be written once the old one is gone."""
    early: set[str] = set()
    for d in field_deletes:
        freed = _label_keys(d.before)
        for c in in_place.get(d.slug, ()):
            if isinstance(c, ops.AddField | ops.UpdateField) and _label_keys(c.after) & freed:
                early.add(d.key)
    return early


def _not_preflightable(changes: Sequence[ops.Change], early: Sequence[ops.DeleteField]) -> set[str]:
    """Ids of the fields an update's preflight must leave out: those taking over a label that an
    early delete frees, and (transitively) those taking over a label of a field left out, which
    keeps its live label during the preflight."""
    held: set[tuple[str, str]] = set()
    for d in early:
        held |= _label_keys(d.before)
    fields = [c for c in changes if isinstance(c, ops.AddField | ops.UpdateField)]
    out: set[str] = set()
    grew = True
    while grew:
        grew = False
        for c in fields:
            if c.field_id not in out and _label_keys(c.after) & held:
                out.add(c.field_id)
                if isinstance(c, ops.UpdateField):
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

    * creates, one level of relationship dependencies after the other;
    * field deletes that free a label an update takes over (see :func:`_early_deletes`), then the
      updates: renames first, then the others (which may point at a renamed slug), then the
      relationships deferred from the creates (closing a cycle, or pointing at a renamed slug);
    * the other field deletes; schema deletes.
    """
    creates: list[ops.CreateSchema] = []
    in_place: dict[str, list[ops.Change]] = {}
    field_deletes: list[ops.DeleteField] = []
    schema_deletes: list[ops.DeleteSchema] = []
    copies: list[ops.CopyField] = []
    for c in plan.changes:
        method, _ = request(c)
        if isinstance(c, ops.CreateSchema):
            creates.append(c)
        elif isinstance(c, ops.CopyField):
            copies.append(c)
        elif isinstance(c, ops.DeleteField):
            field_deletes.append(c)
        elif isinstance(c, ops.DeleteSchema):
            schema_deletes.append(c)
        else:
            assert method is StepMethod.UPDATE
            in_place.setdefault(c.slug, []).append(c)
    renamed_to = {c.slug for c in plan.changes if isinstance(c, ops.UpdateSchema) and c.renames}
    new_slugs = {c.slug for c in creates} | renamed_to

    stages: list[list[Step]] = []
    levels, deferred = _creation_levels(creates)
    links: list[Step] = []
    for level in levels:
        stage: list[Step] = []
        for c in level:
            later = set(deferred.get(c.slug, ())) | {r.id for r in c.after.relationships
                                                       if r.namespace in renamed_to and r.namespace != c.slug}
            after = c.after
            if later:
                after = after.model_copy(update={"relationships": tuple(r for r in after.relationships
                                                                         if r.id not in later)})
                adds = tuple(ops.AddRelationship(slug=c.slug, relationship_id=r.id, after=r)
                             for r in c.after.relationships if r.id in later)
                links.append(Step(c.slug, adds, StepMethod.UPDATE, body=_update_body(adds), counted=False))
            stage.append(Step(c.slug, (c,), StepMethod.CREATE, after=after))
        stages.append(stage)

    early = _early_deletes(in_place, field_deletes)
    claimed = {slug: _not_preflightable(in_place.get(slug, ()), [d for d in field_deletes if d.slug == slug
                                                                 and d.key in early])
               for slug in {d.slug for d in field_deletes if d.key in early}}
    stages.append([Step(c.slug, (c,), StepMethod.DELETE_FIELD, schema_id=c.schema_id, field_id=c.field_id)
                   for c in field_deletes if c.key in early])

    renames: list[Step] = []
    updates: list[Step] = []
    for slug, changes in sorted(in_place.items()):
        body = _update_body(changes)
        step = Step(slug, tuple(changes), StepMethod.UPDATE, schema_id=changes[0].schema_id, body=body,
                    preflight=_preflight_body(body, new_slugs, claimed.get(slug, set())))
        is_rename = any(isinstance(c, ops.UpdateSchema) and c.renames for c in changes)
        (renames if is_rename else updates).append(step)
    stages += [renames, updates, links]
    stages.append([Step(c.slug, (c,), StepMethod.COPY, schema_id=c.schema_id, field_id=c.field_id) for c in copies])
    stages.append([Step(c.slug, (c,), StepMethod.DELETE_FIELD, schema_id=c.schema_id, field_id=c.field_id)
                   for c in field_deletes if c.key not in early])
    stages.append([Step(c.slug, (c,), StepMethod.DELETE_SCHEMA, schema_id=c.schema_id) for c in schema_deletes])
    return [s for s in stages if s]




_DESTRUCTIVE = frozenset({StepMethod.DELETE_FIELD, StepMethod.DELETE_SCHEMA})


def preflighted(stages: Sequence[Sequence[Step]]) -> list[Step]:
    """The updates :func:`preflight_updates` sends (those of schemas that exist before the run)."""
    return [s for stage in stages for s in stage
            if s.method is StepMethod.UPDATE and s.schema_id is not None and s.preflight is not None]


def rechecked(stages: Sequence[Sequence[Step]]) -> set[str]:
    """Ids of the schemas that ``preflight`` reads again right before their first destructive write."""
    return {s.schema_id for stage in stages for s in stage
            if s.method in _DESTRUCTIVE and s.schema_id is not None}



def field_deletes_to_probe(plan: Plan, counted: Plan) -> list[ops.DeleteField]:
    """The field deletes whose admin permission :meth:`reconciler.applyrun.Run._check_admin` asks the account about
    (empty: no request): none when ``counted`` (the plan as printed) holds a record total, read with
    the same admin-only list."""
    deletes = [c for c in plan.changes if isinstance(c, ops.DeleteField) and not c.blocked and c.schema_id]
    if any(f.impact is not None and f.impact.total is not None
           for c in counted.changes if isinstance(c, ops.DeleteField) for f in c.findings):
        return []
    return deletes


def _copy_requests(step: Step) -> int:
    """What a copy step sends when nothing fails: its count's requests, or (not counted) one page
    read and the check at the end."""
    from reconciler.records.migrate import copy_requests

    change = step.changes[0]
    assert isinstance(change, ops.CopyField)
    if change.records is None:
        return copy_requests(0, 0)
    return copy_requests(change.records.records, change.records.to_copy)


def _pages(schemas: int) -> int:
    """Requests of one read of a schema list this long (an empty list is one request too)."""
    return max(1, -(-schemas // PAGE_SIZE))


def _requests(plan: Plan, stages: Sequence[Sequence[Step]], account_schemas: int, *, saved: bool,
              preflight: bool) -> int:
    """What :class:`Run` sends for ``plan`` when nothing fails, in its order (see :func:`estimate`)."""
    size = account_schemas
    sent = 0
    listed = saved  # a read of the account that no write followed yet: the next stage's check
    if saved:
        sent += _pages(size)
    if any(stages):
        sent += 1 if field_deletes_to_probe(plan, plan) else 0
        if preflight:
            sent += len(preflighted(stages)) + len(rechecked(stages))
            listed = False
    for stage in stages:
        if any(s.method is not StepMethod.CREATE for s in stage) and not listed:
            sent += _pages(size)
        listed = False
        sent += len(stage) + sum(_copy_requests(s) - 1 for s in stage if s.method is StepMethod.COPY)
        size += (sum(s.method is StepMethod.CREATE for s in stage)
                 - sum(s.method is StepMethod.DELETE_SCHEMA for s in stage))
    return sent + _pages(size)  # the verification read


def estimate(plan: Plan, *, account_schemas: int, rate: float | None, pace: float | None = None,
             saved: bool = False) -> Estimate | None:
    """What applying ``plan`` costs: the requests :func:`apply_plan` sends when nothing fails (the
    reads of the account before the stages, the admin check, the backups of the records its deletes
    lose (:func:`reconciler.backups.backup_requests`), the writes, the verification read) and
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
    backup = backup_requests(plan)
    return Estimate(requests=plain + backup, preflight=checked - plain, backup=backup, rate=rate,
                    pace=pace if pace is not None else rate)


# ---------------------------------------------------------------------------------------------
# Apply


