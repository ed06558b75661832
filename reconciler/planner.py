"""``plan(desired, live, options) -> Plan``: a pure function (no I/O, no clock).

Matching (DESIGN §1): schemas by ``slug`` (a desired ``renamed_from: old`` matches the live ``old``
when the new slug is not live), fields and relationships by ``id``, options by ``value``.

Differences are found property by property (:func:`reconciler.props.differing`, over each change
kind's :attr:`~reconciler.changes.ChangeBase.compares`), on the models, which already drop what must
never cause a perpetual diff: live-only data (server ids, timestamps, option UUIDs, ``inherited``)
and file-only flags are not compared, label white space and missing-vs-empty descriptions are
normalised by the model, field and option order is not compared (a different order is reported as
a note because the API cannot reorder), and fields marked for deletion are not in
``active_fields``. Options are compared as sets of values: additions are a change, removals an
error (NA304). ``scale`` and ``defaultCurrency`` left out of a file mean "not managed": the API
merges updates and has no way to unset them, so a live value is not a difference.

Two things are never planned: a live field of a type the model does not know
(:class:`~reconciler.model.OpaqueField`: noted, left alone, and a file that declares its id is warned
about), and, with ``PlanOptions.required_managed`` off, ``required`` (noted per schema).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase

from reconciler import changes as ops
from reconciler.codes import Code
from reconciler.conversions import conversion_for
from reconciler.errors import ReconcilerError
from reconciler.model import Field, OpaqueField, Relationship, Schema, norm_id
from reconciler.plan import (
    KIND_ORDER,
    Finding,
    Narrowing,
    Note,
    NoteKind,
    Noun,
    Plan,
    PlanError,
    Unchanged,
    desired_digest,
    fingerprint,
)
from reconciler.props import Prop, differing, ordered
from reconciler.risks import risks

__all__ = ["PlanOptions", "RefusingEmptyDesired", "plan"]


@dataclass(frozen=True)
class PlanOptions:
    """How to plan.

    ``protect`` holds entries from the environment config, ``"slug"`` (the schema and every field
    in it) or ``"slug.field-id"``; it protects even after the declaration left the files.
    ``targets``/``excludes`` narrow the plan by slug (shell-style patterns allowed).
    ``target_url`` and ``created_at`` are only recorded in the plan.

    ``required_managed`` False: ``required`` differences are not planned, in either direction (an
    account that ignores ``required``, where planning it would never converge); each schema with
    such a difference gets a note that says so, with ``required_reason`` (e.g. ``"the account
    ignores it; detected 2026-05-21"``). The caller decides it (:mod:`reconciler.quirks`).
    """

    prune: bool = False
    protect: frozenset[str] = frozenset()
    targets: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()
    target_url: str | None = None
    created_at: str | None = None
    desired_is_empty_dir: bool = False
    required_managed: bool = True
    required_reason: str | None = None
    #: ``slug.field-id`` of fields declared with ``migrate_from`` whose copy is known to be complete
    #: (counted by :mod:`reconciler.copycount`, or done by this apply): no copy is planned for them
    copies_done: frozenset[str] = frozenset()


class RefusingEmptyDesired(ReconcilerError):
    """``prune`` with no schema files would delete every schema in the account: refused."""


def _in_scope(slug: str, options: PlanOptions) -> bool:
    if options.targets and not any(fnmatchcase(slug, t) for t in options.targets):
        return False
    return not any(fnmatchcase(slug, x) for x in options.excludes)


def _relative_order_differs(desired: Iterable[str], live: Iterable[str]) -> bool:
    d = list(desired)
    if not isinstance(live, list):
        live = list(live)
    if d == live:
        return False
    common = set(d)
    live_common = [x for x in live if x in common]
    keep = set(live_common)
    return [x for x in d if x in keep] != live_common


def _quote_list(values: Iterable[str]) -> str:
    return ", ".join(f'"{v}"' for v in values)


class _Planner:
    def __init__(self, options: PlanOptions):
        self.o = options
        self.changes: list[ops.Change] = []
        self.errors: list[PlanError] = []
        self.notes: list[Note] = []
        self.unchanged: dict[str, Unchanged] = {}
        #: what a field compares; without ``required`` where it is not managed
        self.field_props = tuple(p for p in ops.UpdateField.compares
                                 if p is not Prop.OPTIONS and (options.required_managed or p is not Prop.REQUIRED))

    # -- helpers ---------------------------------------------------------------------------------

    def add(self, change: ops.Change, acks: Collection[str] = ()) -> None:
        """A change, with the findings of its kind (:func:`reconciler.risks.risks`)."""
        findings = risks(change, acks, required_managed=self.o.required_managed)
        self.changes.append(change.model_copy(update={"findings": findings}) if findings else change)

    def error(self, slug: str, noun: Noun, subject_id: str | None, code: Code, message: str) -> None:
        subject = slug if subject_id is None else f"{slug}.{subject_id}"
        self.errors.append(PlanError(slug=slug, noun=noun, subject_id=subject_id,
                                     finding=Finding(code=code, message=message, subject=subject)))

    def note(self, slug: str, kind: NoteKind, message: str) -> None:
        self.notes.append(Note(slug=slug, kind=kind, message=message))

    def opaque_notes(self, live: Schema, declared: Mapping[str, Field]) -> None:
        """One note per field of a type the model does not know: it is left alone. ``declared``: the
        files' fields by :func:`norm_id`; one that names such a field is warned about."""
        for f in live.active_opaque_fields:
            subj = f"{live.slug}.{f.id}"
            df = declared.get(norm_id(f.id))
            if df is None:
                self.note(live.slug, NoteKind.OPAQUE, f'field "{subj}" ({f.type}): a type reconciler does not manage; '
                                               "left alone")
            else:
                named = "" if df.id == f.id else f' (as "{df.id}": - and _ count as the same)'
                self.note(live.slug, NoteKind.OPAQUE_DECLARED,
                          f'field "{subj}" is declared in the files as {df.type.value}{named}, but the account\'s '
                          f"field is {f.type}, a type reconciler does not manage; left alone, nothing planned for "
                          "it (remove it from the file)")

    def protection(self, slugs: Iterable[str], field_id: str | None, desired: Schema | None) -> str | None:
        """Why deleting this schema (``field_id`` None) or field is blocked, or ``None``."""
        if desired is not None and desired.protect:
            return f'protect: true on schema "{desired.slug}" in its file'
        for slug in slugs:
            if slug in self.o.protect:
                return f'"{slug}" is in the environment\'s protect list'
            if field_id is not None and f"{slug}.{field_id}" in self.o.protect:
                return f'"{slug}.{field_id}" is in the environment\'s protect list'
        return None

    # -- schemas ---------------------------------------------------------------------------------

    def create(self, d: Schema) -> None:
        self.add(ops.CreateSchema(slug=d.slug, after=d))
        for r in d.relationships:
            if r.has_many:
                self.error(d.slug, Noun.RELATIONSHIP, r.id, Code.NA305,
                           f"relationship {d.slug}.{r.id}: hasMany: true is refused by the API")

    def delete(self, live: Schema) -> None:
        slug = live.slug
        reason = self.protection([slug], None, None)
        self.add(ops.DeleteSchema(slug=slug, schema_id=live.id, before=live, blocked=reason is not None,
                              blocked_reason=reason))

    def update(self, d: Schema, live: Schema, renamed_from: str | None) -> None:
        slug, sid = d.slug, live.id
        n_changes, n_errors = len(self.changes), len(self.errors)
        changed = differing(ops.UpdateSchema.compares, live, d)
        if changed:
            self.add(ops.UpdateSchema(slug=slug, schema_id=sid, before=live, after=d, changed=tuple(changed),
                                  renamed_from=renamed_from), d.acknowledge)
        self.fields(d, live)
        self.migrations(d, live, n_errors)
        self.relationships(d, live)
        # what this call added (every change and error of this slug is made here): not a scan of
        # all changes so far, which made planning quadratic in the number of schemas
        touched = {(c.noun, c.subject_id) for c in self.changes[n_changes:] if c.slug == slug}
        touched |= {(e.noun, e.subject_id) for e in self.errors[n_errors:] if e.slug == slug}
        if touched:
            self.unchanged[slug] = Unchanged(
                fields=sum((Noun.FIELD, f.id) not in touched for f in d.fields),
                relationships=sum((Noun.RELATIONSHIP, r.id) not in touched for r in d.relationships),
            )

    # -- fields ----------------------------------------------------------------------------------

    def fields(self, d: Schema, live: Schema) -> None:
        slug, sid = d.slug, live.id
        live_active = live.active_fields
        active = {f.id: f for f in live_active}
        by_norm: dict[str, Field] | None = None  # only needed for a field not in the account
        deleted: dict[str, Field | OpaqueField] = {}
        wanted = {f.id for f in d.fields}
        opaque: set[str] = set()
        if live.opaque_fields:  # fields of types the model does not know: never planned
            opaque = {norm_id(f.id) for f in live.active_opaque_fields}
            self.opaque_notes(live, {norm_id(f.id): f for f in d.fields})
        for df in d.fields:
            lf = active.get(df.id)
            if lf is None:
                subj = f"{slug}.{df.id}"
                if opaque and norm_id(df.id) in opaque:
                    continue  # noted by opaque_notes
                if by_norm is None:
                    by_norm = {norm_id(f.id): f for f in live_active}
                    known: tuple[Field | OpaqueField, ...] = (*live.fields, *live.opaque_fields)
                    deleted = {norm_id(f.id): f for f in known if f.deleted}
                gone = deleted.get(norm_id(df.id))
                twin = by_norm.get(norm_id(df.id))
                if gone is not None:
                    same = "" if gone.id == df.id else f' (as "{gone.id}": - and _ count as the same)'
                    self.error(slug, Noun.FIELD, df.id, Code.NA302,
                               f"add field {subj}: the id is marked for deletion in the account{same}")
                elif twin is not None:
                    self.error(slug, Noun.FIELD, df.id, Code.NA303,
                               f'add field {subj}: the id clashes with the existing field "{twin.id}"')
                else:
                    self.add(ops.AddField(slug=slug, schema_id=sid, field_id=df.id, after=df), d.acknowledge)
                continue
            self.field(d, live, df, lf)

        if not wanted.issuperset(active):  # else no field of the account is left out of the file
            for lf in live_active:
                if lf.id in wanted:
                    continue
                subj = f"{slug}.{lf.id}"
                if live.is_child or live.is_public:
                    kind = "child" if live.is_child else "public"
                    self.error(slug, Noun.FIELD, lf.id, Code.NA307,
                               f"delete field {subj}: fields of a {kind} schema cannot be deleted")
                    continue
                reason = self.protection(dict.fromkeys([slug, live.slug]), lf.id, d)
                self.add(ops.DeleteField(slug=slug, schema_id=sid, field_id=lf.id, before=lf, blocked=reason is not None,
                                     blocked_reason=reason), d.acknowledge)

        if _relative_order_differs([f.id for f in d.fields], [f.id for f in live_active]):
            self.note(slug, NoteKind.REORDER, f"schema {slug}: the fields are in another order in the account; "
                                       "the API cannot reorder; ignored")
        if not self.o.required_managed:
            unplanned = [df.id for df in d.fields if (lf := active.get(df.id)) is not None
                         and df.type is lf.type and df.required is not lf.required]
            if unplanned:
                why = f"; {self.o.required_reason}" if self.o.required_reason else ""
                self.note(slug, NoteKind.REQUIRED,
                          f"schema {slug}: required is not managed in this account (the account ignores it{why}): "
                          f"required of {', '.join(unplanned)} differs from the files and is left as it is")

    def migrations(self, d: Schema, live: Schema, n_errors: int) -> None:
        """A copy for each field declared with ``migrate_from`` whose old field is in the account,
        unless its copy is known to be done; an error when the old field is nowhere or no conversion
        joins the two types. ``n_errors``: the errors before this schema's (a field with one of its
        own, a type change or a reused id, gets no copy)."""
        slug = d.slug
        failed = {e.subject_id for e in self.errors[n_errors:] if e.noun is Noun.FIELD}
        declared = {norm_id(f.id): f for f in d.fields}
        for df in d.fields:
            old = df.migrate_from
            if old is None or df.id in failed:
                continue
            subj = f"{slug}.{df.id}"
            lf = live.field(old)
            if lf is None:
                if live.field(df.id) is not None or norm_id(old) in declared:
                    self.note(slug, NoteKind.MIGRATE, f"field {subj}: migrate_from {old}: the old field is not in the "
                                                      "account, so there is nothing to copy; migrate_from can be "
                                                      "removed from the file")
                else:
                    self.error(slug, Noun.FIELD, df.id, Code.NA311,
                               f"field {subj}: migrate_from {old}: no field {old} in the account or the files")
                continue
            conv = conversion_for(lf.type.value, df.type.value, df.convert)
            if isinstance(conv, str):
                self.error(slug, Noun.FIELD, df.id, Code.NA310, f"field {subj}: migrate_from {old}: {conv}")
                continue
            if subj in self.o.copies_done:
                self.note(slug, NoteKind.MIGRATE, f"field {subj}: the copy from {old} is complete; {old} may now "
                                                  "leave the files (its delete is then planned)")
                continue
            self.add(ops.CopyField(slug=slug, schema_id=live.id, field_id=df.id, from_field=lf.id,
                                   conversion=conv.name, before=lf, after=df), d.acknowledge)

    def field(self, d: Schema, live: Schema, df: Field, lf: Field) -> None:
        """Compare a desired field with the live one of the same id (most fields: nothing differs)."""
        if df.type is not lf.type:
            self.error(d.slug, Noun.FIELD, df.id, Code.NA301,
                       f"field {d.slug}.{df.id}: type change {lf.type.value} -> {df.type.value} is not allowed")
            return
        slug, subj = d.slug, f"{d.slug}.{df.id}"
        changed = differing(self.field_props, lf, df)
        added: tuple[str, ...] = ()
        if df.type.has_options and (want_values := df.option_values) != (live_values := lf.option_values):
            live_set, want_set = set(live_values), set(want_values)
            added = tuple(v for v in want_values if v not in live_set)
            removed = tuple(v for v in live_values if v not in want_set)
            if removed:
                looks = (f' (looks like a rename of "{removed[0]}" to "{added[0]}")'
                         if len(removed) == len(added) == 1 else "")
                self.error(slug, Noun.FIELD, df.id, Code.NA304,
                           f"field {subj}: removing option{'s' if len(removed) > 1 else ''} "
                           f"{_quote_list(removed)} is not allowed{looks}")
            if added:
                changed.append(Prop.OPTIONS)
            if _relative_order_differs(want_values, live_values):
                self.note(slug, NoteKind.REORDER, f"field {subj}: the options are in another order in the account; "
                                                  "the API cannot reorder; ignored")
        if not changed:
            return
        changed_t = ordered(changed)
        if lf.inherited:
            self.error(slug, Noun.FIELD, df.id, Code.NA306,
                       f"field {subj} is inherited from the parent schema and cannot be changed "
                       f"({', '.join(changed_t)})")
            return
        self.add(ops.UpdateField(slug=slug, schema_id=live.id, field_id=df.id, before=lf, after=df, changed=changed_t,
                             added_options=added), d.acknowledge)

    # -- relationships ---------------------------------------------------------------------------

    def relationships(self, d: Schema, live: Schema) -> None:
        slug, sid = d.slug, live.id
        wanted = {r.id for r in d.relationships}
        for dr in d.relationships:
            subj = f"{slug}.{dr.id}"
            lr = live.relationship(dr.id)
            if dr.has_many:
                self.error(slug, Noun.RELATIONSHIP, dr.id, Code.NA305,
                           f"relationship {subj}: hasMany: true is refused by the API")
                continue
            if lr is None:
                self.add(ops.AddRelationship(slug=slug, schema_id=sid, relationship_id=dr.id, after=dr))
                continue
            self.relationship(d, live, dr, lr)
        for lr in live.relationships:
            if lr.id not in wanted:
                self.error(slug, Noun.RELATIONSHIP, lr.id, Code.NA309,
                           f"delete relationship {slug}.{lr.id}: the API cannot delete relationships")

    def relationship(self, d: Schema, live: Schema, dr: Relationship, lr: Relationship) -> None:
        slug, subj = d.slug, f"{d.slug}.{dr.id}"
        if dr.namespace != lr.namespace:
            self.error(slug, Noun.RELATIONSHIP, dr.id, Code.NA308,
                       f"relationship {subj}: namespace change {lr.namespace} -> {dr.namespace} is not allowed")
            return
        changed = ordered(differing(ops.UpdateRelationship.compares, lr, dr))
        if not changed:
            return
        if lr.inherited:
            self.error(slug, Noun.RELATIONSHIP, dr.id, Code.NA306,
                       f"relationship {subj} is inherited from the parent schema and cannot be changed "
                       f"({', '.join(changed)})")
            return
        self.add(ops.UpdateRelationship(slug=slug, schema_id=live.id, relationship_id=dr.id, before=lr, after=dr,
                                    changed=changed))


def plan(desired: Mapping[str, Schema], live: Mapping[str, Schema], options: PlanOptions | None = None) -> Plan:
    """Compare the desired schemas with the live ones and return what would change. Pure.

    Raises :class:`RefusingEmptyDesired` when ``prune`` is on and there are no desired schemas
    while the account has some (that would plan deleting everything).
    """
    return _plan(desired, live, options or PlanOptions())


def _plan(desired: Mapping[str, Schema], live: Mapping[str, Schema], o: PlanOptions) -> Plan:
    want = {s.slug: s for s in desired.values()}
    have = {s.slug: s for s in live.values()}
    scoped_live = {slug: s for slug, s in have.items() if _in_scope(slug, o)}
    if o.prune and (not want or o.desired_is_empty_dir) and scoped_live:
        raise RefusingEmptyDesired(
            f"refusing to plan with prune: there are no schema files, so all {len(scoped_live)} schemas in the "
            "account would be deleted; add the schema files (reconciler export), or turn prune off"
        )

    p = _Planner(o)
    read: dict[str, Schema] = {}
    consumed: set[str] = set()
    for slug in sorted(want):
        if not _in_scope(slug, o):
            continue
        d = want[slug]
        current = have.get(slug)
        old = d.renamed_from
        renamed_from: str | None = None
        if old is not None:
            if current is not None:
                if old in have:
                    p.note(slug, NoteKind.RENAME, f'schema {slug}: renamed_from "{old}" ignored: "{slug}" already exists '
                                           f'in the account, so "{old}" is another schema')
                else:
                    p.note(slug, NoteKind.RENAME, f'schema {slug}: the rename from "{old}" is done; '
                                           "renamed_from can be removed from the file")
            elif old in want:
                p.note(slug, NoteKind.RENAME, f'schema {slug}: renamed_from "{old}" ignored: "{old}" is still in the files')
            elif old in have:
                current, renamed_from = have[old], old
                consumed.add(old)
            else:
                p.note(slug, NoteKind.RENAME, f'schema {slug}: renamed_from "{old}" is not in the account either; '
                                       f'"{slug}" will be created')
        if current is None:
            p.create(d)
            continue
        read[current.slug] = current
        p.update(d, current, renamed_from)

    for slug in sorted(scoped_live):
        if slug in want or slug in consumed:
            continue
        read[slug] = scoped_live[slug]
        if o.prune:
            p.delete(scoped_live[slug])
        else:
            p.note(slug, NoteKind.UNMANAGED, f"schema {slug} is in the account but not in the files: unmanaged, "
                                      "left alone (prune would delete it)")
            if scoped_live[slug].opaque_fields:
                p.opaque_notes(scoped_live[slug], {})

    changes = sorted(p.changes, key=lambda c: (c.slug, KIND_ORDER[c.kind], c.subject_id or ""))
    errors = sorted(p.errors, key=lambda e: (e.slug, e.subject_id or "", e.code))
    notes = sorted(p.notes, key=lambda n: n.slug)  # stable: per schema, in the order found
    narrowed = Narrowing(targets=o.targets, excludes=o.excludes) if (o.targets or o.excludes) else None
    return Plan(
        changes=tuple(changes),
        errors=tuple(errors),
        notes=tuple(notes),
        narrowed_by=narrowed,
        target=o.target_url,
        created_at=o.created_at,
        desired_digest=desired_digest(desired),
        live_fingerprints={slug: fingerprint(s) for slug, s in sorted(read.items())},
        unchanged=p.unchanged,
    )
