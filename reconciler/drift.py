"""Drift: how the account and the files differ, and which side changed when there is evidence.

Built on the pure planner: ``plan(desired, live)`` says what apply would do to make the account match
the files; :func:`compute_drift` turns each of those changes into a statement about the two sides
("field X is in the account but not in the files"), adds what the plan can only refuse (options added
in the web UI, fields deleted in the account: ``NA304``/``NA302``) and stamps every item with the live
schema's ``updatedTimestamp``. Nothing here writes, and a :class:`DriftReport` is never a plan file:
its JSON (:func:`reconciler.render.drift_data`) has no ``format_version`` or digest, so
``apply`` refuses it.

Which side changed is said only with evidence (:func:`changed_side`): the live schema's
``updatedTimestamp`` against its file's last commit (:mod:`reconciler.gitinfo`). The account changed
after the file's last commit (and the file has no uncommitted change): "changed in the account". The
file was committed, or modified and not committed, after the account's last update: "changed in the
files (not applied yet)". Otherwise (no git, no timestamp, within a second) the wording is neutral.
It is a heuristic on whole schemas: it names the side that changed last, which is the side of every
difference only when the other side had been in step until then (the files applied when committed).
Committers' clocks and the account's are assumed to agree.

Ignore rules (``reconciler.yaml`` ``ignore:`` and ``--ignore``) are shell-style globs on an item's
key ``slug[.field-or-relationship][.property]``, e.g. ``*.description`` or ``orders.order-link.*``.
A rule matches the key itself or any dotted prefix of it, and ``X.*`` also matches ``X``. Ignored
items stay in the report, marked and counted, and do not make ``drift`` exit 2.

The items are data (a :class:`DriftKind`, the two values, the evidence). Reading the account is
:func:`reconciler.pipeline.check_drift`; the words are :func:`reconciler.render.words.drift_message`'s,
and :func:`reconciler.render.render_drift` renders a report as text, markdown or JSON.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any, Literal, assert_never

from reconciler import changes as ops
from reconciler.codes import Code
from reconciler.gitinfo import FileHistory
from reconciler.model import Schema
from reconciler.plan import DRIFT_FORMAT, NoteKind, Plan, PlanError
from reconciler.props import Prop

if TYPE_CHECKING:
    from reconciler.planner import PlanOptions

__all__ = [
    "DRIFT_FORMAT",
    "DriftItem",
    "DriftKind",
    "DriftReport",
    "Side",
    "changed_side",
    "compute_drift",
    "ignored_by",
]


class DriftKind(StrEnum):
    """What a drift item says; :func:`reconciler.render.words.drift_message` words each."""

    SCHEMA_MISSING = "schema-missing"
    SCHEMA_ADDED = "schema-added"
    SCHEMA_RENAMED = "schema-renamed"
    SCHEMA_CHANGED = "schema-changed"
    SCHEMA_UNMANAGED = "schema-unmanaged"
    FIELD_MISSING = "field-missing"
    FIELD_ADDED = "field-added"
    FIELD_CHANGED = "field-changed"
    FIELD_DELETED = "field-deleted"
    OPTIONS_MISSING = "options-missing"
    OPTIONS_ADDED = "options-added"
    RELATIONSHIP_MISSING = "relationship-missing"
    RELATIONSHIP_ADDED = "relationship-added"
    RELATIONSHIP_CHANGED = "relationship-changed"
    CONFLICT = "conflict"
    NOTE = "note"


Severity = Literal["drift", "info"]
#: The side a difference comes from, when there is evidence.
Side = Literal["account", "files"]


@dataclass(frozen=True)
class DriftItem:
    """One difference between the account and the files.

    ``symbol``: ``+`` exists in the account only, ``-`` missing from the account, ``~`` differs,
    ``!`` the files ask for what the account cannot hold, ``i`` information (unmanaged schema, rename
    note). ``files``/``account`` hold the two values of a differing property (the options missing
    or added, for those kinds). ``updated`` is the live schema's ``updatedTimestamp``. ``changed_in`` is
    the side the evidence blames, else None. ``detail`` is the planner's own line for a conflict or a
    note. The words for people are :func:`reconciler.render.words.drift_message`'s.
    """

    slug: str
    kind: DriftKind
    symbol: str
    subject_id: str | None = None
    prop: str | None = None
    files: Any = None
    account: Any = None
    updated: str | None = None
    severity: Severity = "drift"
    ignored_by: str | None = None
    changed_in: Side | None = None
    detail: str | None = None

    @property
    def subject(self) -> str:
        return self.slug if self.subject_id is None else f"{self.slug}.{self.subject_id}"

    @property
    def key(self) -> str:
        """What ignore rules match: ``orders``, ``orders.order-link``, ``orders.order-link.description``."""
        return self.subject if self.prop is None else f"{self.subject}.{self.prop}"

    @property
    def counts_as_drift(self) -> bool:
        return self.severity == "drift" and self.ignored_by is None


@dataclass(frozen=True)
class DriftReport:
    """Every difference between the files and one account, with the ignore rules applied."""

    items: tuple[DriftItem, ...] = ()
    target: str | None = None
    checked_at: str | None = None
    ignore: tuple[str, ...] = ()
    #: live ``updatedTimestamp`` per live schema read
    updated: dict[str, str | None] = field(default_factory=dict)

    @property
    def drift(self) -> tuple[DriftItem, ...]:
        return tuple(i for i in self.items if i.counts_as_drift)

    @property
    def ignored(self) -> tuple[DriftItem, ...]:
        return tuple(i for i in self.items if i.ignored_by is not None)

    @property
    def info(self) -> tuple[DriftItem, ...]:
        return tuple(i for i in self.items if i.severity == "info" and i.ignored_by is None)

    @property
    def in_sync(self) -> bool:
        return not self.drift

    @property
    def summary(self) -> dict[str, int]:
        return {"drift": len(self.drift), "ignored": len(self.ignored), "info": len(self.info)}


# ---------------------------------------------------------------------------------------------
# Ignore rules


def ignored_by(key: str, patterns: Iterable[str]) -> str | None:
    """The first pattern that covers ``key`` (itself, a dotted prefix of it, or ``prefix.*``), else None."""
    parts = key.split(".")
    prefixes = [".".join(parts[:n]) for n in range(len(parts), 0, -1)]
    for pattern in patterns:
        if any(fnmatchcase(p, pattern) for p in prefixes):
            return pattern
        if pattern.endswith(".*") and fnmatchcase(key, pattern[:-2]):
            return pattern
    return None


# ---------------------------------------------------------------------------------------------
# Evidence: which side changed

#: Commit times are whole seconds: closer than this, the order of the two sides is not known.
MARGIN_S = 1.0

_TIMESTAMP = re.compile(r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(Z|z|[+-]\d{2}:\d{2})")


def _epoch(timestamp: str | None) -> float | None:
    """An RFC 3339 timestamp (the API's, nanoseconds allowed) as epoch seconds; None if unreadable."""
    m = _TIMESTAMP.fullmatch(timestamp or "")
    if m is None:
        return None
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    zone = m.group(8)
    try:
        when = datetime(year, month, day, hour, minute, min(second, 59), tzinfo=UTC)
    except ValueError:
        return None
    if zone not in ("Z", "z"):
        sign = 1 if zone[0] == "+" else -1
        when -= sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
    return when.timestamp() + (float("0." + m.group(7)) if m.group(7) else 0.0)


def changed_side(updated: str | None, history: FileHistory | None) -> Side | None:
    """Which side changed last, from the live schema's ``updatedTimestamp`` and its file's history.

    ``"files"``: the file was modified (not committed) or committed after the account's last update.
    ``"account"``: the account was updated after the file's last commit, and the file has no
    uncommitted change. None: no evidence (no git history, no timestamp, or too close to tell).
    """
    account = _epoch(updated)
    if account is None or history is None:
        return None
    if history.modified is not None:
        return "files" if history.modified > account + MARGIN_S else None
    if history.committed is None:
        return None
    if history.committed > account + MARGIN_S:
        return "files"
    if account > history.committed + MARGIN_S:
        return "account"
    return None


# ---------------------------------------------------------------------------------------------
# From a plan to drift items


class _Builder:
    def __init__(self, desired: Mapping[str, Schema], live: Mapping[str, Schema],
                 history: Mapping[str, FileHistory]):
        self.desired = {s.slug: s for s in desired.values()}
        self.live = {s.slug: s for s in live.values()}
        self.history = history
        self.items: list[DriftItem] = []

    def ts(self, slug: str, schema_id: str | None = None) -> str | None:
        s = self.live.get(slug)
        if s is None and schema_id is not None:
            s = next((x for x in self.live.values() if x.id == schema_id), None)
        return s.updated_timestamp if s is not None else None

    def side(self, slug: str, schema_id: str | None = None) -> Side | None:
        return changed_side(self.ts(slug, schema_id), self.history.get(slug))

    def add(self, slug: str, kind: DriftKind, symbol: str, *, schema_id: str | None = None, **kw: Any) -> None:
        self.items.append(DriftItem(slug=slug, kind=kind, symbol=symbol, updated=self.ts(slug, schema_id), **kw))

    def differs(self, slug: str, kind: DriftKind, prop: str, account: Any, files: Any, *,
                schema_id: str | None = None, subject_id: str | None = None) -> None:
        self.add(slug, kind, "~", schema_id=schema_id, subject_id=subject_id, prop=prop, files=files,
                 account=account, changed_in=self.side(slug, schema_id))

    def only_in_account(self, slug: str, kind: DriftKind, *, schema_id: str | None = None, **kw: Any) -> None:
        self.add(slug, kind, "+", schema_id=schema_id, changed_in=self.side(slug, schema_id), **kw)

    def only_in_files(self, slug: str, kind: DriftKind, *, schema_id: str | None = None, **kw: Any) -> None:
        self.add(slug, kind, "-", schema_id=schema_id, changed_in=self.side(slug, schema_id), **kw)

    # -- changes ---------------------------------------------------------------------------------

    def change(self, c: ops.Change) -> None:
        """The drift that a change of the plan stands for: one ``case`` per change kind."""
        match c:
            case ops.CreateSchema():
                self.add(c.slug, DriftKind.SCHEMA_MISSING, "-")
            case ops.DeleteSchema():
                # no file, so no evidence of which side changed
                self.add(c.slug, DriftKind.SCHEMA_ADDED, "+", schema_id=c.schema_id)
            case ops.UpdateSchema():
                for prop in c.changed:
                    account, files = c.values(prop)
                    if prop is Prop.SLUG and c.renamed_from:
                        # the files say so themselves (renamed_from)
                        self.add(c.slug, DriftKind.SCHEMA_RENAMED, "~", schema_id=c.schema_id, prop=prop,
                                 files=files, account=account, changed_in="files", detail=c.renamed_from)
                        continue
                    self.differs(c.slug, DriftKind.SCHEMA_CHANGED, prop, account, files, schema_id=c.schema_id)
            case ops.AddField():
                self.only_in_files(c.slug, DriftKind.FIELD_MISSING, schema_id=c.schema_id, subject_id=c.field_id)
            case ops.DeleteField():
                self.only_in_account(c.slug, DriftKind.FIELD_ADDED, schema_id=c.schema_id, subject_id=c.field_id)
            case ops.UpdateField():
                for prop in c.changed:
                    if prop is Prop.OPTIONS:
                        self.only_in_files(c.slug, DriftKind.OPTIONS_MISSING, schema_id=c.schema_id,
                                           subject_id=c.field_id, prop="options", files=list(c.added_options),
                                           account=None)
                        continue
                    account, files = c.values(prop)
                    self.differs(c.slug, DriftKind.FIELD_CHANGED, prop, account, files, schema_id=c.schema_id,
                                 subject_id=c.field_id)
            case ops.AddRelationship():
                self.only_in_files(c.slug, DriftKind.RELATIONSHIP_MISSING, schema_id=c.schema_id,
                                   subject_id=c.relationship_id)
            case ops.UpdateRelationship():
                for prop in c.changed:
                    account, files = c.values(prop)
                    self.differs(c.slug, DriftKind.RELATIONSHIP_CHANGED, prop, account, files, schema_id=c.schema_id,
                                 subject_id=c.relationship_id)
            case ops.CopyField():
                # not a difference of the schemas: record values, which drift does not read
                self.add(c.slug, DriftKind.NOTE, "i", schema_id=c.schema_id, subject_id=c.field_id, severity="info",
                         detail=f"field {c.subject}: migrate_from {c.from_field}: its record values are copied by "
                                "apply (reconciler plan counts what is left; drift does not read records)")
            case _:
                assert_never(c)

    # -- what the plan can only refuse -----------------------------------------------------------

    def _live_field(self, slug: str, field_id: str | None) -> Any:
        s = self.live.get(slug)
        return None if s is None or field_id is None else s.field(field_id)

    def _desired_field(self, slug: str, field_id: str | None) -> Any:
        s = self.desired.get(slug)
        return None if s is None or field_id is None else s.field(field_id)

    def _relationships(self, slug: str, rel_id: str | None) -> tuple[Any, Any]:
        live, desired = self.live.get(slug), self.desired.get(slug)
        if rel_id is None:
            return None, None
        return (live.relationship(rel_id) if live else None), (desired.relationship(rel_id) if desired else None)

    def error(self, e: PlanError) -> None:
        slug, sid = e.slug, e.subject_id
        match e.code:
            case Code.NA304:
                lf, df = self._live_field(slug, sid), self._desired_field(slug, sid)
                extra = [v for v in (lf.option_values if lf else ()) if df is None or v not in df.option_values]
                self.only_in_account(slug, DriftKind.OPTIONS_ADDED, subject_id=sid, prop="options", account=extra,
                                     files=None)
            case Code.NA302:
                self.add(slug, DriftKind.FIELD_DELETED, "-", subject_id=sid, changed_in=self.side(slug))
            case Code.NA307:
                self.only_in_account(slug, DriftKind.FIELD_ADDED, subject_id=sid)
            case Code.NA309:
                self.only_in_account(slug, DriftKind.RELATIONSHIP_ADDED, subject_id=sid)
            case Code.NA301:
                lf, df = self._live_field(slug, sid), self._desired_field(slug, sid)
                self.differs(slug, DriftKind.FIELD_CHANGED, "type", lf.type.value if lf else None,
                             df.type.value if df else None, subject_id=sid)
            case Code.NA308:
                lr, dr = self._relationships(slug, sid)
                self.differs(slug, DriftKind.RELATIONSHIP_CHANGED, "namespace", lr.namespace if lr else None,
                             dr.namespace if dr else None, subject_id=sid)
            case Code.NA303 | Code.NA305 | Code.NA306:  # the files ask for what the account cannot hold
                self.add(slug, DriftKind.CONFLICT, "!", subject_id=sid, detail=f"{e.code} {e.message}")


def compute_drift(desired: Mapping[str, Schema], live: Mapping[str, Schema], options: PlanOptions | None = None,
                  *, ignore: Sequence[str] = (), checked_at: str | None = None,
                  history: Mapping[str, FileHistory] | None = None) -> DriftReport:
    """The drift between ``desired`` and ``live``: pure, no I/O (the planner does the comparing).

    ``history``: what git knows of each desired schema's file, by slug (the evidence of which side
    changed; see :func:`changed_side`). Without it every item is worded neutrally.
    """
    from reconciler.planner import PlanOptions
    from reconciler.planner import plan as make_plan

    o = options or PlanOptions()
    the_plan: Plan = make_plan(desired, live, o)
    b = _Builder(desired, live, history or {})
    for c in the_plan.changes:
        b.change(c)
    for e in the_plan.errors:
        b.error(e)
    for n in the_plan.notes:
        if n.kind is NoteKind.UNMANAGED:
            b.add(n.slug, DriftKind.SCHEMA_UNMANAGED, "i", severity="info")
        elif n.kind in (NoteKind.RENAME, NoteKind.OPAQUE, NoteKind.REQUIRED):
            b.add(n.slug, DriftKind.NOTE, "i", severity="info", detail=n.message)
        elif n.kind is NoteKind.OPAQUE_DECLARED:  # the files declare what the account holds in another form
            b.add(n.slug, DriftKind.CONFLICT, "!", severity="info", detail=n.message)
        # "reorder" notes are not drift: the API cannot reorder, the planner ignores order
    patterns = tuple(ignore)
    items = [replace(i, ignored_by=ignored_by(i.key, patterns)) for i in b.items]
    order = {"schema": 0}
    items.sort(key=lambda i: (i.slug, order.get(i.kind.split("-")[0], 1), i.subject_id or "", i.prop or ""))
    read = {slug: s.updated_timestamp for slug, s in b.live.items()
            if slug in the_plan.live_fingerprints}
    return DriftReport(items=tuple(items), target=o.target_url, checked_at=checked_at or o.created_at,
                       ignore=patterns, updated=read)
