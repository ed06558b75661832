"""Drift: what changed in the account outside the files, told from the account's point of view.

Built on the pure planner: ``plan(desired, live)`` says what apply would do to make the account match
the files; :func:`compute_drift` turns each of those changes around ("delete field X" becomes "field
X was added in the account"), adds what the plan can only refuse (options added in the web UI,
fields deleted in the account: ``NA304``/``NA302``) and stamps every item with the live schema's
``updatedTimestamp``. Nothing here writes, and a :class:`DriftReport` is never a plan file: its JSON
has no ``format_version`` or digest, so ``apply`` refuses it.

Ignore rules (``reconciler.yaml`` ``ignore:`` and ``--ignore``) are shell-style globs on an item's
key ``slug[.field-or-relationship][.property]``, e.g. ``*.description`` or ``orders.order-link.*``.
A rule matches the key itself or any dotted prefix of it, and ``X.*`` also matches ``X``. Ignored
items stay in the report, marked and counted, and do not make ``drift`` exit 2.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any, Literal

from reconciler.model import Schema
from reconciler.plan import (
    AddField,
    AddRelationship,
    Change,
    CreateSchema,
    DeleteField,
    DeleteSchema,
    Plan,
    PlanError,
    UpdateField,
    UpdateRelationship,
    UpdateSchema,
)

if TYPE_CHECKING:
    from reconciler.client import Client
    from reconciler.planner import PlanOptions

__all__ = [
    "DRIFT_FORMAT",
    "DriftItem",
    "DriftReport",
    "compute_drift",
    "fetch_drift",
    "ignored_by",
    "render_drift",
]

#: The ``format`` key of the JSON report (deliberately not a plan file's ``format_version``).
DRIFT_FORMAT = "reconciler-drift/v1"

Severity = Literal["drift", "info"]


@dataclass(frozen=True)
class DriftItem:
    """One difference, worded from the account's side.

    ``symbol``: ``+`` exists in the account only, ``-`` missing from the account, ``~`` changed in
    the account, ``i`` information (unmanaged schema, rename note). ``files``/``account`` hold the
    two values of a changed property. ``updated`` is the live schema's ``updatedTimestamp``.
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

    @property
    def slugs(self) -> tuple[str, ...]:
        return tuple(sorted({i.slug for i in self.items}))

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
# From a plan to drift items


def _q(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _values(values: Sequence[str]) -> str:
    return ", ".join(_q(v) for v in values)


class _Builder:
    def __init__(self, desired: Mapping[str, Schema], live: Mapping[str, Schema]):
        self.desired = {s.slug: s for s in desired.values()}
        self.live = {s.slug: s for s in live.values()}
        self.items: list[DriftItem] = []

    def ts(self, slug: str, schema_id: str | None = None) -> str | None:
        s = self.live.get(slug)
        if s is None and schema_id is not None:
            s = next((x for x in self.live.values() if x.id == schema_id), None)
        return s.updated_timestamp if s is not None else None

    def add(self, slug: str, kind: str, symbol: str, message: str, *, schema_id: str | None = None,
            **kw: Any) -> None:
        self.items.append(DriftItem(slug=slug, kind=kind, symbol=symbol, message=message,
                                    updated=self.ts(slug, schema_id), **kw))

    # -- changes ---------------------------------------------------------------------------------

    def change(self, c: Change) -> None:
        if isinstance(c, CreateSchema):
            self.add(c.slug, "schema-missing", "-",
                     f"schema {c.slug} is not in the account (the files declare it)")
        elif isinstance(c, DeleteSchema):
            self.add(c.slug, "schema-added", "+",
                     f"schema {c.slug} was added in the account (not in the files; prune would delete it)",
                     schema_id=c.schema_id)
        elif isinstance(c, UpdateSchema):
            for prop in c.changed:
                account, files = c.values(prop)
                if prop == "slug" and c.renamed_from:
                    self.add(c.slug, "schema-renamed", "~",
                             f"schema {c.slug} is still called {c.renamed_from} in the account "
                             "(the files rename it)", schema_id=c.schema_id, prop=prop,
                             files=files, account=account)
                    continue
                self.add(c.slug, "schema-changed", "~",
                         f"schema {c.slug}: {prop} changed in the account: {_q(account)} (files: {_q(files)})",
                         schema_id=c.schema_id, prop=prop, files=files, account=account)
        elif isinstance(c, AddField):
            self.add(c.slug, "field-missing", "-",
                     f"field {c.subject} is not in the account (the files declare it)",
                     schema_id=c.schema_id, subject_id=c.field_id)
        elif isinstance(c, DeleteField):
            self.add(c.slug, "field-added", "+",
                     f"field {c.subject} was added in the account (not in the files)",
                     schema_id=c.schema_id, subject_id=c.field_id)
        elif isinstance(c, UpdateField):
            for prop in c.changed:
                if prop == "options":
                    self.add(c.slug, "options-missing", "-",
                             f"field {c.subject}: option{'s' if len(c.added_options) > 1 else ''} "
                             f"{_values(c.added_options)} not in the account (the files declare "
                             f"{'them' if len(c.added_options) > 1 else 'it'})",
                             schema_id=c.schema_id, subject_id=c.field_id, prop="options",
                             files=list(c.added_options), account=None)
                    continue
                account, files = c.values(prop)
                self.add(c.slug, "field-changed", "~",
                         f"field {c.subject}: {prop} changed in the account: {_q(account)} (files: {_q(files)})",
                         schema_id=c.schema_id, subject_id=c.field_id, prop=prop, files=files, account=account)
        elif isinstance(c, AddRelationship):
            self.add(c.slug, "relationship-missing", "-",
                     f"relationship {c.subject} is not in the account (the files declare it)",
                     schema_id=c.schema_id, subject_id=c.relationship_id)
        elif isinstance(c, UpdateRelationship):
            for prop in c.changed:
                account, files = c.values(prop)
                self.add(c.slug, "relationship-changed", "~",
                         f"relationship {c.subject}: {prop} changed in the account: {_q(account)} "
                         f"(files: {_q(files)})",
                         schema_id=c.schema_id, subject_id=c.relationship_id, prop=prop, files=files,
                         account=account)
        else:  # pragma: no cover - a change kind added later
            self.add(c.slug, "other", "~", f"{c.describe()} (the account differs from the files)",
                     schema_id=c.schema_id, subject_id=c.subject_id)

    # -- what the plan can only refuse -----------------------------------------------------------

    def _live_field(self, slug: str, field_id: str | None) -> Any:
        s = self.live.get(slug)
        return None if s is None or field_id is None else s.field(field_id)

    def _desired_field(self, slug: str, field_id: str | None) -> Any:
        s = self.desired.get(slug)
        return None if s is None or field_id is None else s.field(field_id)

    def error(self, e: PlanError) -> None:
        slug, sid = e.slug, e.subject_id
        subj = e.subject
        if e.code == "NA304":
            lf, df = self._live_field(slug, sid), self._desired_field(slug, sid)
            extra = [v for v in (lf.option_values if lf else ()) if df is None or v not in df.option_values]
            self.add(slug, "options-added", "+",
                     f"field {subj}: option{'s' if len(extra) != 1 else ''} {_values(extra)} "
                     f"added in the account (not in the files)",
                     subject_id=sid, prop="options", account=extra, files=None)
        elif e.code == "NA302":
            self.add(slug, "field-deleted", "-",
                     f"field {subj} was deleted in the account (marked for deletion; the files still declare it)",
                     subject_id=sid)
        elif e.code == "NA307":
            self.add(slug, "field-added", "+", f"field {subj} was added in the account (not in the files)",
                     subject_id=sid)
        elif e.code == "NA309":
            self.add(slug, "relationship-added", "+",
                     f"relationship {subj} was added in the account (not in the files)", subject_id=sid)
        elif e.code == "NA301":
            lf, df = self._live_field(slug, sid), self._desired_field(slug, sid)
            account = lf.type.value if lf else None
            files = df.type.value if df else None
            self.add(slug, "field-changed", "~",
                     f"field {subj}: type changed in the account: {_q(account)} (files: {_q(files)})",
                     subject_id=sid, prop="type", account=account, files=files)
        elif e.code == "NA308":
            self.add(slug, "relationship-changed", "~",
                     f"relationship {subj}: namespace differs in the account ({e.message})",
                     subject_id=sid, prop="namespace")
        else:  # NA303 / NA305 / NA306: the files ask for something the account cannot hold
            self.add(slug, "conflict", "!", f"{e.code} {e.message}", subject_id=sid)


def compute_drift(desired: Mapping[str, Schema], live: Mapping[str, Schema], options: PlanOptions | None = None,
                  *, ignore: Sequence[str] = (), checked_at: str | None = None) -> DriftReport:
    """The drift between ``desired`` and ``live``: pure, no I/O (the planner does the comparing)."""
    from reconciler.planner import PlanOptions
    from reconciler.planner import plan as make_plan

    o = options or PlanOptions()
    the_plan: Plan = make_plan(desired, live, o)
    b = _Builder(desired, live)
    for c in the_plan.changes:
        b.change(c)
    for e in the_plan.errors:
        b.error(e)
    for n in the_plan.notes:
        if n.kind == "unmanaged":
            b.add(n.slug, "schema-unmanaged", "i",
                  f"schema {n.slug} is in the account but not in the files (unmanaged; prune is off)",
                  severity="info")
        elif n.kind == "rename":
            b.add(n.slug, "note", "i", n.message, severity="info")
        # "reorder" notes are not drift: the API cannot reorder, the planner ignores order
    patterns = tuple(ignore)
    items = [replace(i, ignored_by=ignored_by(i.key, patterns)) for i in b.items]
    order = {"schema": 0}
    items.sort(key=lambda i: (i.slug, order.get(i.kind.split("-")[0], 1), i.subject_id or "", i.prop or ""))
    read = {slug: s.updated_timestamp for slug, s in b.live.items()
            if slug in the_plan.live_fingerprints}
    return DriftReport(items=tuple(items), target=o.target_url, checked_at=checked_at or o.created_at,
                       ignore=patterns, updated=read)


async def fetch_drift(client: Client, desired: Mapping[str, Schema], options: PlanOptions | None = None,
                      *, ignore: Sequence[str] = (), checked_at: str | None = None) -> DriftReport:
    """Read the account (GET requests only) and compute its drift from ``desired``."""
    live = {s.slug: s for s in await client.list_schemas()}
    return compute_drift(desired, live, options, ignore=ignore, checked_at=checked_at)


# ---------------------------------------------------------------------------------------------
# Rendering

_COLORS = {"+": "\033[32m", "~": "\033[33m", "-": "\033[31m", "!": "\033[1;31m", "i": "\033[36m",
           "#": "\033[2m"}
_RESET = "\033[0m"

LEGEND = "+ only in the account  - missing from the account  ~ changed in the account  i information  # ignored"


def _by_slug(report: DriftReport) -> list[tuple[str, list[DriftItem]]]:
    groups: dict[str, list[DriftItem]] = {}
    for i in report.items:
        groups.setdefault(i.slug, []).append(i)
    return sorted(groups.items())


def _updated(report: DriftReport, slug: str, items: Sequence[DriftItem]) -> str | None:
    return report.updated.get(slug) or next((i.updated for i in items if i.updated), None)


def render_drift(report: DriftReport, fmt: Literal["text", "markdown", "json"] = "text", color: bool = False) -> str:
    """The report as ``text`` (ANSI colour only when ``color``), ``markdown`` or ``json``."""
    if fmt == "json":
        return report.to_json()
    if fmt == "markdown":
        return _markdown(report)
    if fmt == "text":
        return _text(report, color)
    raise ValueError(f"unknown format {fmt!r}: use text, markdown or json")


def _text(report: DriftReport, color: bool) -> str:
    def paint(text: str, sym: str) -> str:
        return f"{_COLORS[sym]}{text}{_RESET}" if color and sym in _COLORS else text

    lines: list[str] = []
    if report.items:
        lines += [f"  {LEGEND}", ""]
    for slug, items in _by_slug(report):
        ts = _updated(report, slug, items)
        when = f" (account updated {ts})" if ts else " (not in the account)"
        lines.append(f'schema "{slug}"{when}')
        for i in items:
            if i.ignored_by is not None:
                lines.append("    " + paint(f"# {i.message} [{i.updated or 'n/a'}] (ignored by {i.ignored_by!r})", "#"))
            else:
                lines.append("    " + paint(f"{i.symbol} {i.message} [{i.updated or 'n/a'}]", i.symbol))
        lines.append("")
    lines.append(report.summary_line())
    return "\n".join(lines)


def _md_escape(text: str) -> str:
    for ch in ("\\", "|", "*", "_", "<", ">", "`"):
        text = text.replace(ch, "\\" + ch)
    return text


def _markdown(report: DriftReport) -> str:
    out = ["### Reconciler drift", "", f"**{_md_escape(report.summary_line())}**", ""]
    meta = []
    if report.target:
        meta.append(f"Target: `{report.target}`")
    if report.checked_at:
        meta.append(f"Checked at {report.checked_at}")
    if meta:
        out += [" · ".join(meta), ""]
    s = report.summary
    out += ["| Drift | Ignored | Notes |", "| --: | --: | --: |", f"| {s['drift']:,} | {s['ignored']:,} | {s['info']:,} |", ""]
    if report.items:
        out += ["| | Schema | What changed in the account | Account updated | |", "| :-: | :-- | :-- | :-- | :-- |"]
        for slug, items in _by_slug(report):
            for i in items:
                sym = "#" if i.ignored_by is not None else i.symbol
                note = f"ignored by `{i.ignored_by}`" if i.ignored_by is not None else (
                    "information" if i.severity == "info" else "")
                out.append(f"| `{sym}` | `{slug}` | {_md_escape(i.message)} | {i.updated or 'n/a'} | {note} |")
        out.append("")
    if not report.in_sync:
        out += ["To undo drift, run `reconciler plan` and `reconciler apply`; to keep it, change the files "
                "(`reconciler export` writes the account's version) or add an `ignore:` rule.", ""]
    return "\n".join(out)
