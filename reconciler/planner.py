"""``plan(desired, live, options) -> Plan``: a pure function (no I/O, no clock).

Matching (DESIGN §1): schemas by ``slug`` (a desired ``renamed_from: old`` matches the live ``old``
when the new slug is not live), fields and relationships by ``id``, options by ``value``.

Property-level differences come from the models' ``comparable()`` views (a direct walk over their
dicts, with deepdiff's names; deepdiff itself only where a list differs, see :func:`_changed`), which
already drop what must never cause a perpetual diff: live-only data (server ids, timestamps,
option UUIDs, ``inherited``), file-only flags, label white space and missing-vs-empty descriptions
(both normalised by the model), field and option order (the views are keyed/sorted; a different
order is reported as a note because the API cannot reorder), and fields marked for deletion (not
in ``active_fields``). ``scale`` and ``defaultCurrency`` left out of a file mean "not managed":
the API merges updates and has no way to unset them, so a live value is not a difference.

Two things are never planned: a live field of a type the model does not know
(:class:`~reconciler.model.OpaqueField`: noted, left alone, and a file that declares its id is warned
about), and, with ``PlanOptions.required_managed`` off, ``required`` (noted per schema).
"""

from __future__ import annotations

import functools
import gc
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from reconciler.errors import ReconcilerError
from reconciler.model import _OPTION_TYPES, Field, OpaqueField, Relationship, Schema, _option_value, norm_id
from reconciler.plan import (
    KIND_ORDER,
    AddField,
    AddRelationship,
    Change,
    CreateSchema,
    Deferred,
    DeleteField,
    DeleteSchema,
    Finding,
    LiveFingerprints,
    Note,
    Plan,
    PlanError,
    UpdateField,
    UpdateRelationship,
    UpdateSchema,
    desired_digest,
)

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


class RefusingEmptyDesired(ReconcilerError):
    """``prune`` with no schema files would delete every schema in the account: refused."""


#: The order in which changed property names are listed.
_PROP_ORDER = ("slug", "labels.singular", "labels.plural", "description", "required", "scale",
               "defaultCurrency", "options", "namespace", "hasMany")


_PROP_RANK = {p: i for i, p in enumerate(_PROP_ORDER)}


def _sorted_props(props: Iterable[str]) -> tuple[str, ...]:
    unique = set(props)
    if not unique:
        return ()
    return tuple(sorted(unique, key=lambda p: (_PROP_RANK.get(p, len(_PROP_RANK)), p)))


class _NeedsDeepDiff(Exception):
    """Raised by :func:`_walk` for what only deepdiff decides exactly (lists, differing key sets)."""


def _walk(before: Any, after: Any, path: tuple[str, ...], names: set[str]) -> None:
    """Add to ``names`` the first two levels of every path where ``before`` and ``after`` differ.

    Exactly what deepdiff reports for dicts with the same keys and scalars (a type change such as
    ``1`` vs ``1.0``, a value change); raises :class:`_NeedsDeepDiff` for the rest (differing key
    sets, differing lists: deepdiff compares those ignoring order and reports item positions).
    """
    if type(before) is not type(after):
        names.add(".".join(path[:2]))
        return
    if type(before) is dict:
        if before.keys() != after.keys():
            # deepdiff reports a dict with few keys in common as changed as a whole
            # (threshold_to_diff_deeper); the models' views always have the same keys
            raise _NeedsDeepDiff
        for key, b in before.items():
            a = after[key]
            if type(b) is type(a) and type(b) in _SCALARS:  # the common case, inline
                if b != a:
                    names.add(".".join((*path, str(key))[:2]))
                continue
            _walk(b, a, (*path, str(key)), names)
        return
    if isinstance(before, (list, tuple)) and before == after:
        if any(type(x) is not type(y) for x, y in zip(before, after, strict=True)):
            raise _NeedsDeepDiff  # [1] == [1.0]: deepdiff's call
        return
    if before == after:
        return
    if isinstance(before, (list, tuple, set, frozenset)):
        raise _NeedsDeepDiff
    names.add(".".join(path[:2]))


_SCALARS = frozenset({str, int, float, bool, type(None)})


def _changed(before: Mapping[str, Any], after: Mapping[str, Any], exclude: Iterable[str] = ()) -> tuple[str, ...]:
    """Names of the properties that differ (``labels.singular``, ``description`` …).

    The same names deepdiff (``ignore_order=True``) gives, found by a direct walk over the views
    (small dicts of scalars, with the same keys on both sides); deepdiff itself is used for what
    the walk leaves to it (lists that differ, key sets that differ). Planning 1,000 schemas x 50
    fields called deepdiff 50,000 times, about 1 ms each (bench/RESULTS.md).
    """
    exclude = tuple(exclude)
    if before.keys() != after.keys():
        return _deepdiff_changed(before, after, exclude)
    skip = set(exclude)
    b = {k: v for k, v in before.items() if k not in skip}
    a = {k: v for k, v in after.items() if k not in skip}
    names: set[str] = set()
    try:
        _walk(b, a, (), names)
    except _NeedsDeepDiff:
        return _deepdiff_changed(before, after, exclude)
    return _sorted_props(names)


def _deepdiff_changed(before: Mapping[str, Any], after: Mapping[str, Any], exclude: tuple[str, ...]) -> tuple[str, ...]:
    from deepdiff import DeepDiff  # heavy: loaded only when the direct walk cannot decide

    diff = DeepDiff(dict(before), dict(after), ignore_order=True, view="tree",
                    exclude_paths=[f"root['{k}']" for k in exclude])
    names: set[str] = set()
    for items in diff.values():
        for item in items:
            path = item.path(output_format="list")
            names.add(".".join(str(p) for p in path[:2]))
    return _sorted_props(names)


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


def _same_field(df: Field, lf: Field) -> bool:
    """True when :meth:`_Planner.field` would find nothing to report for two fields of the same type.

    A cheap first test on the models' attributes (most fields do not differ): equal labels,
    description, ``required``, ``scale`` and ``defaultCurrency`` (the last two only when the file
    sets them, the planner's rule) and the same option values in the same order. Values compare
    with their types where the views would (``required`` by identity: ``True`` is not ``1``;
    ``scale`` by type too: ``1`` is not ``1.0``), so "same" here means the compared views are
    equal; anything else, even a false alarm, goes the full way (views, :func:`_changed`).
    """
    dl, ll = df.labels, lf.labels
    if dl is not ll and (dl.singular != ll.singular or dl.plural != ll.plural):
        return False
    if df.description != lf.description or df.required is not lf.required or type(df.required) is not bool:
        return False
    scale = df.scale
    if scale is not None and (scale != lf.scale or type(scale) is not type(lf.scale)):
        return False
    currency = df.default_currency
    if currency is not None and currency != lf.default_currency:
        return False
    if df.type._value_ in _OPTION_TYPES:  # not ``.has_options``: a property, 50,000 calls
        do, lo = df.options, lf.options
        return do is lo or list(map(_option_value, do or ())) == list(map(_option_value, lo or ()))
    return True


def _quote_list(values: Iterable[str]) -> str:
    return ", ".join(f'"{v}"' for v in values)


class _Planner:
    def __init__(self, options: PlanOptions):
        self.o = options
        self.changes: list[Change] = []
        self.errors: list[PlanError] = []
        self.notes: list[Note] = []
        self.unchanged: dict[str, dict[str, int]] = {}

    # -- helpers ---------------------------------------------------------------------------------

    def finding(self, code: str, message: str, subject: str, *acks: Iterable[str]) -> Finding:
        acknowledged = not code.startswith("NA") and any(code in a for a in acks)
        return Finding(code=code, message=message, subject=subject, acknowledged=acknowledged)

    def error(self, slug: str, noun: str, subject_id: str | None, code: str, message: str) -> None:
        subject = slug if subject_id is None else f"{slug}.{subject_id}"
        self.errors.append(PlanError(slug, noun, subject_id, Finding(code=code, message=message, subject=subject)))

    def note(self, slug: str, kind: str, message: str) -> None:
        self.notes.append(Note(slug, kind, message))

    def opaque_notes(self, live: Schema, declared: Mapping[str, Field]) -> None:
        """One note per field of a type the model does not know: it is left alone. ``declared``: the
        files' fields by :func:`norm_id`; one that names such a field is warned about."""
        for f in live.active_opaque_fields:
            subj = f"{live.slug}.{f.id}"
            df = declared.get(norm_id(f.id))
            if df is None:
                self.note(live.slug, "opaque", f'field "{subj}" ({f.type}): a type reconciler does not manage; '
                                               "left alone")
            else:
                named = "" if df.id == f.id else f' (as "{df.id}": - and _ count as the same)'
                self.note(live.slug, "opaque-declared",
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
        self.changes.append(CreateSchema(slug=d.slug, after=d))
        for r in d.relationships:
            if r.has_many:
                self.error(d.slug, "relationship", r.id, "NA305",
                           f"relationship {d.slug}.{r.id}: hasMany: true is refused by the API")

    def delete(self, live: Schema) -> None:
        slug = live.slug
        reason = self.protection([slug], None, None)
        self.changes.append(DeleteSchema(
            slug=slug, schema_id=live.id, before=live,
            findings=(Finding("DL101", f"delete schema {slug}", slug),),
            blocked=reason is not None, blocked_reason=reason,
        ))

    def update(self, d: Schema, live: Schema, renamed_from: str | None) -> None:
        slug, sid = d.slug, live.id
        n_changes, n_errors = len(self.changes), len(self.errors)
        changed = _changed(live.comparable_own(), d.comparable_own())
        if changed:
            findings: tuple[Finding, ...] = ()
            if "slug" in changed:
                findings = (self.finding(
                    "BC202", f'rename schema {live.slug} to {slug}: integrations using the slug "{live.slug}" break',
                    slug, d.acknowledge),)
            self.changes.append(UpdateSchema(slug=slug, schema_id=sid, before=live, after=d, changed=changed,
                                             findings=findings, renamed_from=renamed_from))
        self.fields(d, live)
        self.relationships(d, live)
        # what this call added (every change and error of this slug is made here): not a scan of
        # all changes so far, which made planning quadratic in the number of schemas
        touched = {(c.noun, c.subject_id) for c in self.changes[n_changes:] if c.slug == slug}
        touched |= {(e.noun, e.subject_id) for e in self.errors[n_errors:] if e.slug == slug}
        if touched:
            self.unchanged[slug] = {
                "fields": sum(("field", f.id) not in touched for f in d.fields),
                "relationships": sum(("relationship", r.id) not in touched for r in d.relationships),
            }

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
                    self.error(slug, "field", df.id, "NA302",
                               f"add field {subj}: the id is marked for deletion in the account{same}")
                elif twin is not None:
                    self.error(slug, "field", df.id, "NA303",
                               f'add field {subj}: the id clashes with the existing field "{twin.id}"')
                else:
                    findings: tuple[Finding, ...] = ()
                    if df.required and self.o.required_managed:
                        findings = (self.finding("BC201", f"add required field {subj}", subj,
                                                 d.acknowledge, df.acknowledge),)
                    self.changes.append(AddField(slug=slug, schema_id=sid, field_id=df.id, after=df,
                                                 findings=findings))
                continue
            if df.type is lf.type and _same_field(df, lf):  # most fields: nothing to report, no views built
                continue
            self.field(d, live, df, lf)

        if not wanted.issuperset(active):  # else no field of the account is left out of the file
            for lf in live_active:
                if lf.id in wanted:
                    continue
                subj = f"{slug}.{lf.id}"
                if live.is_child or live.is_public:
                    kind = "child" if live.is_child else "public"
                    self.error(slug, "field", lf.id, "NA307",
                               f"delete field {subj}: fields of a {kind} schema cannot be deleted")
                    continue
                reason = self.protection(dict.fromkeys([slug, live.slug]), lf.id, d)
                self.changes.append(DeleteField(
                    slug=slug, schema_id=sid, field_id=lf.id, before=lf,
                    findings=(self.finding("DL102", f"delete field {subj}", subj, d.acknowledge),),
                    blocked=reason is not None, blocked_reason=reason,
                ))

        if _relative_order_differs([f.id for f in d.fields], [f.id for f in live_active]):
            self.note(slug, "reorder", f"schema {slug}: the fields are in another order in the account; "
                                       "the API cannot reorder; ignored")
        if not self.o.required_managed:
            unplanned = [df.id for df in d.fields if (lf := active.get(df.id)) is not None
                         and df.type is lf.type and df.required is not lf.required]
            if unplanned:
                why = f"; {self.o.required_reason}" if self.o.required_reason else ""
                self.note(slug, "required",
                          f"schema {slug}: required is not managed in this account (the account ignores it{why}): "
                          f"required of {', '.join(unplanned)} differs from the files and is left as it is")

    def field(self, d: Schema, live: Schema, df: Field, lf: Field) -> None:
        if df.type != lf.type:
            self.error(d.slug, "field", df.id, "NA301",
                       f"field {d.slug}.{df.id}: type change {lf.type.value} -> {df.type.value} is not allowed")
            return
        slug, subj = d.slug, f"{d.slug}.{df.id}"
        view_d, view_l = df.comparable(), lf.comparable()
        for key in ("scale", "defaultCurrency"):  # not in the file: not managed (no way to unset)
            if view_d[key] is None:
                view_l[key] = None
        if not self.o.required_managed:
            view_l["required"] = view_d["required"]
        changed = list(_changed(view_l, view_d, exclude=("options",)))
        added: tuple[str, ...] = ()
        if df.type.has_options:
            live_values, want_values = lf.option_values, df.option_values
            live_set, want_set = set(live_values), set(want_values)
            added = tuple(v for v in want_values if v not in live_set)
            removed = tuple(v for v in live_values if v not in want_set)
            if removed:
                looks = (f' (looks like a rename of "{removed[0]}" to "{added[0]}")'
                         if len(removed) == len(added) == 1 else "")
                self.error(slug, "field", df.id, "NA304",
                           f"field {subj}: removing option{'s' if len(removed) > 1 else ''} "
                           f"{_quote_list(removed)} is not allowed{looks}")
            if added:
                changed.append("options")
            if _relative_order_differs(want_values, live_values):
                self.note(slug, "reorder", f"field {subj}: the options are in another order in the account; "
                                           "the API cannot reorder; ignored")
        if not changed:
            return
        changed_t = _sorted_props(changed)
        if lf.inherited:
            self.error(slug, "field", df.id, "NA306",
                       f"field {subj} is inherited from the parent schema and cannot be changed "
                       f"({', '.join(changed_t)})")
            return
        findings: tuple[Finding, ...] = ()
        if df.required and not lf.required and self.o.required_managed:
            findings = (self.finding("BC201", f"make field {subj} required", subj, d.acknowledge, df.acknowledge),)
        self.changes.append(UpdateField(slug=slug, schema_id=live.id, field_id=df.id, before=lf, after=df,
                                        changed=changed_t, findings=findings, added_options=added))

    # -- relationships ---------------------------------------------------------------------------

    def relationships(self, d: Schema, live: Schema) -> None:
        slug, sid = d.slug, live.id
        wanted = {r.id for r in d.relationships}
        for dr in d.relationships:
            subj = f"{slug}.{dr.id}"
            lr = live.relationship(dr.id)
            if dr.has_many:
                self.error(slug, "relationship", dr.id, "NA305",
                           f"relationship {subj}: hasMany: true is refused by the API")
                continue
            if lr is None:
                self.changes.append(AddRelationship(slug=slug, schema_id=sid, relationship_id=dr.id, after=dr))
                continue
            self.relationship(d, live, dr, lr)
        for lr in live.relationships:
            if lr.id not in wanted:
                self.error(slug, "relationship", lr.id, "NA309",
                           f"delete relationship {slug}.{lr.id}: the API cannot delete relationships")

    def relationship(self, d: Schema, live: Schema, dr: Relationship, lr: Relationship) -> None:
        slug, subj = d.slug, f"{d.slug}.{dr.id}"
        if dr.namespace != lr.namespace:
            self.error(slug, "relationship", dr.id, "NA308",
                       f"relationship {subj}: namespace change {lr.namespace} -> {dr.namespace} is not allowed")
            return
        changed = _changed(lr.comparable(), dr.comparable())
        if not changed:
            return
        if lr.inherited:
            self.error(slug, "relationship", dr.id, "NA306",
                       f"relationship {subj} is inherited from the parent schema and cannot be changed "
                       f"({', '.join(changed)})")
            return
        self.changes.append(UpdateRelationship(slug=slug, schema_id=live.id, relationship_id=dr.id,
                                               before=lr, after=dr, changed=changed))


def plan(desired: Mapping[str, Schema], live: Mapping[str, Schema], options: PlanOptions | None = None) -> Plan:
    """Compare the desired schemas with the live ones and return what would change. Pure.

    Raises :class:`RefusingEmptyDesired` when ``prune`` is on and there are no desired schemas
    while the account has some (that would plan deleting everything).

    The cyclic garbage collector is paused meanwhile: planning allocates hundreds of thousands of
    short-lived dicts (the compared views) that reference counting frees, and with 100,000 models
    alive every collection they trigger walks all of them (a third of the time at 1,000 x 50,
    bench/RESULTS.md). It is switched back on (if it was on) however ``plan`` ends.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _plan(desired, live, options or PlanOptions())
    finally:
        if was_enabled:
            gc.enable()


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
                    p.note(slug, "rename", f'schema {slug}: renamed_from "{old}" ignored: "{slug}" already exists '
                                           f'in the account, so "{old}" is another schema')
                else:
                    p.note(slug, "rename", f'schema {slug}: the rename from "{old}" is done; '
                                           "renamed_from can be removed from the file")
            elif old in want:
                p.note(slug, "rename", f'schema {slug}: renamed_from "{old}" ignored: "{old}" is still in the files')
            elif old in have:
                current, renamed_from = have[old], old
                consumed.add(old)
            else:
                p.note(slug, "rename", f'schema {slug}: renamed_from "{old}" is not in the account either; '
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
            p.note(slug, "unmanaged", f"schema {slug} is in the account but not in the files: unmanaged, "
                                      "left alone (prune would delete it)")
            if scoped_live[slug].opaque_fields:
                p.opaque_notes(scoped_live[slug], {})

    changes = sorted(p.changes, key=lambda c: (c.slug, KIND_ORDER[c.kind], c.subject_id or ""))
    errors = sorted(p.errors, key=lambda e: (e.slug, e.subject_id or "", e.code))
    notes = sorted(p.notes, key=lambda n: n.slug)  # stable: per schema, in the order found
    narrowed = {"targets": list(o.targets), "excludes": list(o.excludes)} if (o.targets or o.excludes) else None
    return Plan(
        changes=tuple(changes),
        errors=tuple(errors),
        notes=tuple(notes),
        narrowed_by=narrowed,
        target=o.target_url,
        created_at=o.created_at,
        # deferred: hashed when read (the plan file), of the schemas as they are now (frozen models)
        desired_digest=Deferred(functools.partial(desired_digest, list(desired.values()))),  # type: ignore[arg-type]
        live_fingerprints=LiveFingerprints(dict(sorted(read.items()))),
        unchanged=p.unchanged,
    )
