"""Drift: how the account and the files differ, and which side changed when there is evidence.

Built on the pure planner: ``plan(desired, live)`` says what apply would do to make the account match
the files; :func:`compute_drift` turns each of those changes into a statement about the two sides
("field X is in the account but not in the files"), adds what the plan can only refuse (options added
in the web UI, fields deleted in the account: ``NA304``/``NA302``) and stamps every item with the live
schema's ``updatedTimestamp``. Nothing here writes, and a :class:`DriftReport` is never a plan file:
its JSON has no ``format_version`` or digest, so ``apply`` refuses it.

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

Reading the account is :func:`reconciler.pipeline.check_drift`; rendering is
:func:`reconciler.render.render_drift`, where each format's escaping lives.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any, Literal, assert_never

from reconciler.codes import Code
from reconciler.gitinfo import FileHistory
from reconciler.model import Schema
from reconciler.plan import (
    DRIFT_FORMAT,
    AddField,
    AddRelationship,
    Change,
    CreateSchema,
    DeleteField,
    DeleteSchema,
    NoteKind,
    Plan,
    PlanError,
    UpdateField,
    UpdateRelationship,
    UpdateSchema,
)
from reconciler.props import Prop

if TYPE_CHECKING:
    from reconciler.planner import PlanOptions

__all__ = [
    "DRIFT_FORMAT",
    "DriftItem",
    "DriftReport",
    "Side",
    "changed_side",
    "compute_drift",
    "ignored_by",
]


Severity = Literal["drift", "info"]
#: The side a difference comes from, when there is evidence.
Side = Literal["account", "files"]


@dataclass(frozen=True)
class DriftItem:
    """One difference between the account and the files.

    ``symbol``: ``+`` exists in the account only, ``-`` missing from the account, ``~`` differs,
    ``!`` the files ask for what the account cannot hold, ``i`` information (unmanaged schema, rename
    note). ``files``/``account`` hold the two values of a differing property. ``updated`` is the live
    schema's ``updatedTimestamp``. ``changed_in`` is the side the evidence blames, else None.
    """

    slug: str
    kind: str
    symbol: str
    message: str
    subject_id: str | None = None
    prop: str | None = None
    files: Any = None
    account: Any = None
    updated: str | None = None
    severity: Severity = "drift"
    ignored_by: str | None = None
    changed_in: Side | None = None

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

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "slug": self.slug,
            "subject": self.subject,
            "kind": self.kind,
            "symbol": self.symbol,
            "property": self.prop,
            "message": self.message,
            "files": self.files,
            "account": self.account,
            "updatedTimestamp": self.updated,
            "changed_in": self.changed_in,
            "severity": self.severity,
            "ignored_by": self.ignored_by,
        }


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

    def summary_line(self) -> str:
        """``Drift: 3 changes in the account differ from the files (1 ignored, 1 unmanaged schema).``"""
        s = self.summary
        extra = []
        if s["ignored"]:
            extra.append(f"{s['ignored']:,} ignored")
        if s["info"]:
            extra.append(_plural(s["info"], "note"))
        tail = f" ({', '.join(extra)})" if extra else ""
        if self.in_sync:
            return f"No drift. The account matches the files{tail}."
        return f"Drift: {_plural(s['drift'], 'difference')} between the account and the files{tail}."

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": DRIFT_FORMAT,
            "target": self.target,
            "checked_at": self.checked_at,
            "in_sync": self.in_sync,
            "summary": self.summary,
            "ignore": list(self.ignore),
            "schemas": {slug: {"updatedTimestamp": ts} for slug, ts in sorted(self.updated.items())},
            "items": [i.to_dict() for i in self.items],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


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


def _q(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _values(values: Sequence[str]) -> str:
    return ", ".join(_q(v) for v in values)


def _differs(what: str, prop: str, account: Any, files: Any, side: Side | None) -> str:
    if side == "account":
        return f"{what}: {prop} changed in the account: {_q(account)} (files: {_q(files)})"
    if side == "files":
        return f"{what}: {prop} changed in the files (not applied yet): {_q(files)} (account: {_q(account)})"
    return f"{what}: {prop} differs: account {_q(account)}, files {_q(files)}"


def _only_in_account(what: str, side: Side | None, *, many: bool = False, removed: str = "not applied yet") -> str:
    if side == "account":
        return f"{what} {'were' if many else 'was'} added in the account (not in the files)"
    if side == "files":
        return f"{what} {'were' if many else 'was'} removed from the files ({removed})"
    return f"{what} {'are' if many else 'is'} in the account but not in the files"


def _only_in_files(what: str, side: Side | None, *, many: bool = False) -> str:
    them = "them" if many else "it"
    if side == "account":
        return f"{what} {'were' if many else 'was'} deleted in the account (the files declare {them})"
    if side == "files":
        return f"{what} {'were' if many else 'was'} added in the files (not applied yet)"
    return f"{what} {'are' if many else 'is'} not in the account (the files declare {them})"


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

    def add(self, slug: str, kind: str, symbol: str, message: str, *, schema_id: str | None = None,
            **kw: Any) -> None:
        self.items.append(DriftItem(slug=slug, kind=kind, symbol=symbol, message=message,
                                    updated=self.ts(slug, schema_id), **kw))

    def differs(self, slug: str, kind: str, what: str, prop: str, account: Any, files: Any, *,
                schema_id: str | None = None, subject_id: str | None = None) -> None:
        side = self.side(slug, schema_id)
        self.add(slug, kind, "~", _differs(what, prop, account, files, side), schema_id=schema_id,
                 subject_id=subject_id, prop=prop, files=files, account=account, changed_in=side)

    def only_in_account(self, slug: str, kind: str, what: str, *, schema_id: str | None = None,
                        many: bool = False, removed: str = "not applied yet", **kw: Any) -> None:
        side = self.side(slug, schema_id)
        self.add(slug, kind, "+", _only_in_account(what, side, many=many, removed=removed),
                 schema_id=schema_id, changed_in=side, **kw)

    def only_in_files(self, slug: str, kind: str, what: str, *, schema_id: str | None = None,
                      many: bool = False, **kw: Any) -> None:
        side = self.side(slug, schema_id)
        self.add(slug, kind, "-", _only_in_files(what, side, many=many), schema_id=schema_id,
                 changed_in=side, **kw)

    # -- changes ---------------------------------------------------------------------------------

    def change(self, c: Change) -> None:
        """The drift that a change of the plan stands for: one ``case`` per change kind."""
        match c:
            case CreateSchema():
                self.add(c.slug, "schema-missing", "-",
                         f"schema {c.slug} is not in the account (the files declare it)")
            case DeleteSchema():
                # no file, so no evidence of which side changed
                self.add(c.slug, "schema-added", "+",
                         f"schema {c.slug} is in the account but not in the files (prune would delete it)",
                         schema_id=c.schema_id)
            case UpdateSchema():
                for prop in c.changed:
                    account, files = c.values(prop)
                    if prop is Prop.SLUG and c.renamed_from:
                        # the files say so themselves (renamed_from)
                        self.add(c.slug, "schema-renamed", "~",
                                 f"schema {c.slug} is still called {c.renamed_from} in the account "
                                 "(the files rename it)", schema_id=c.schema_id, prop=prop,
                                 files=files, account=account, changed_in="files")
                        continue
                    self.differs(c.slug, "schema-changed", f"schema {c.slug}", prop, account, files,
                                 schema_id=c.schema_id)
            case AddField():
                self.only_in_files(c.slug, "field-missing", f"field {c.subject}", schema_id=c.schema_id,
                                   subject_id=c.field_id)
            case DeleteField():
                self.only_in_account(c.slug, "field-added", f"field {c.subject}", schema_id=c.schema_id,
                                     subject_id=c.field_id)
            case UpdateField():
                for prop in c.changed:
                    if prop is Prop.OPTIONS:
                        many = len(c.added_options) > 1
                        self.only_in_files(c.slug, "options-missing",
                                           f"field {c.subject}: option{'s' if many else ''} {_values(c.added_options)}",
                                           schema_id=c.schema_id, many=many, subject_id=c.field_id, prop="options",
                                           files=list(c.added_options), account=None)
                        continue
                    account, files = c.values(prop)
                    self.differs(c.slug, "field-changed", f"field {c.subject}", prop, account, files,
                                 schema_id=c.schema_id, subject_id=c.field_id)
            case AddRelationship():
                self.only_in_files(c.slug, "relationship-missing", f"relationship {c.subject}",
                                   schema_id=c.schema_id, subject_id=c.relationship_id)
            case UpdateRelationship():
                for prop in c.changed:
                    account, files = c.values(prop)
                    self.differs(c.slug, "relationship-changed", f"relationship {c.subject}", prop, account, files,
                                 schema_id=c.schema_id, subject_id=c.relationship_id)
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
        subj = e.subject
        match e.code:
            case Code.NA304:
                lf, df = self._live_field(slug, sid), self._desired_field(slug, sid)
                extra = [v for v in (lf.option_values if lf else ()) if df is None or v not in df.option_values]
                self.only_in_account(slug, "options-added",
                                     f"field {subj}: option{'s' if len(extra) != 1 else ''} {_values(extra)}",
                                     many=len(extra) != 1, removed="the API cannot remove options",
                                     subject_id=sid, prop="options", account=extra, files=None)
            case Code.NA302:
                side = self.side(slug)
                if side == "account":
                    message = f"field {subj} was deleted in the account (marked for deletion; the files still declare it)"
                elif side == "files":
                    message = (f"field {subj} was added in the files (not applied yet) with the id of a field "
                               "deleted in the account")
                else:
                    message = f"field {subj} is marked for deletion in the account; the files declare it"
                self.add(slug, "field-deleted", "-", message, subject_id=sid, changed_in=side)
            case Code.NA307:
                self.only_in_account(slug, "field-added", f"field {subj}", subject_id=sid)
            case Code.NA309:
                self.only_in_account(slug, "relationship-added", f"relationship {subj}", subject_id=sid)
            case Code.NA301:
                lf, df = self._live_field(slug, sid), self._desired_field(slug, sid)
                self.differs(slug, "field-changed", f"field {subj}", "type", lf.type.value if lf else None,
                             df.type.value if df else None, subject_id=sid)
            case Code.NA308:
                lr, dr = self._relationships(slug, sid)
                self.differs(slug, "relationship-changed", f"relationship {subj}", "namespace",
                             lr.namespace if lr else None, dr.namespace if dr else None, subject_id=sid)
            case Code.NA303 | Code.NA305 | Code.NA306:  # the files ask for what the account cannot hold
                self.add(slug, "conflict", "!", f"{e.code} {e.message}", subject_id=sid)


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
            b.add(n.slug, "schema-unmanaged", "i",
                  f"schema {n.slug} is in the account but not in the files (unmanaged; prune is off)",
                  severity="info")
        elif n.kind in (NoteKind.RENAME, NoteKind.OPAQUE, NoteKind.REQUIRED):
            b.add(n.slug, "note", "i", n.message, severity="info")
        elif n.kind is NoteKind.OPAQUE_DECLARED:  # the files declare what the account holds in another form
            b.add(n.slug, "conflict", "!", n.message, severity="info")
        # "reorder" notes are not drift: the API cannot reorder, the planner ignores order
    patterns = tuple(ignore)
    items = [replace(i, ignored_by=ignored_by(i.key, patterns)) for i in b.items]
    order = {"schema": 0}
    items.sort(key=lambda i: (i.slug, order.get(i.kind.split("-")[0], 1), i.subject_id or "", i.prop or ""))
    read = {slug: s.updated_timestamp for slug, s in b.live.items()
            if slug in the_plan.live_fingerprints}
    return DriftReport(items=tuple(items), target=o.target_url, checked_at=checked_at or o.created_at,
                       ignore=patterns, updated=read)
