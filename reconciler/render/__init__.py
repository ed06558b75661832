"""Rendering a :class:`~reconciler.plan.Plan`: ``text`` (terminal), ``markdown`` (PR comment), ``json``.

One entry point, :func:`render`. The helpers below are shared by the two human formats so they say
the same thing in the same words: the plan is grouped into one :class:`SchemaBlock` per schema, and
each change is described by :func:`change_text`. A drift report (:mod:`reconciler.drift`) is rendered
by the same two modules, so each format has one escaping function: every text that comes from the
account or the files reaches the terminal through :func:`reconciler.render.text.inert` and a markdown
document through :mod:`reconciler.render.markdown`'s ``md_*`` functions.

The helpers here build plain, unescaped text; escaping is the output module's job, done where a line
is written, so a renderer cannot forget it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, assert_never

from reconciler import changes as ops
from reconciler.conversions import COPY
from reconciler.model import Field, Relationship
from reconciler.plan import Action, Noun, Plan, PlanError
from reconciler.props import Prop
from reconciler.render.words import plural

if TYPE_CHECKING:
    from reconciler.drift import DriftItem, DriftReport

__all__ = ["DRIFT_LEGEND", "FORMATS", "LEGEND", "SchemaBlock", "change_text", "drift_data", "drift_groups", "plural",
           "render", "render_drift", "schema_blocks"]

FORMATS = ("text", "markdown", "json")

LEGEND = "+ create  ~ update in-place  - destroy  ! blocked"

DRIFT_LEGEND = "+ only in the account  - missing from the account  ~ differs  i information  # ignored"


def render(plan: Plan, fmt: Literal["text", "markdown", "json"] = "text", color: bool = False) -> str:
    """The plan as ``text`` (ANSI colour only when ``color``), ``markdown`` or ``json`` (the plan file)."""
    if fmt == "text":
        from reconciler.render.text import render_text

        return render_text(plan, color=color)
    if fmt == "markdown":
        from reconciler.render.markdown import render_markdown

        return render_markdown(plan)
    if fmt == "json":
        return plan.to_json()
    raise ValueError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")


def render_drift(report: DriftReport, fmt: Literal["text", "markdown", "json"] = "text", color: bool = False) -> str:
    """A drift report as ``text`` (ANSI colour only when ``color``), ``markdown`` or ``json``."""
    if fmt == "text":
        from reconciler.render.text import render_drift_text

        return render_drift_text(report, color)
    if fmt == "markdown":
        from reconciler.render.markdown import render_drift_markdown

        return render_drift_markdown(report)
    if fmt == "json":
        return json.dumps(drift_data(report), indent=2, ensure_ascii=False) + "\n"
    raise ValueError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")


def drift_data(report: DriftReport) -> dict[str, Any]:
    """The drift report's JSON document. It has no ``format_version`` or digest: not a plan file, so
    ``apply`` refuses it."""
    from reconciler.plan import DRIFT_FORMAT
    from reconciler.render.words import drift_message

    return {
        "format": DRIFT_FORMAT,
        "target": report.target,
        "checked_at": report.checked_at,
        "in_sync": report.in_sync,
        "summary": report.summary,
        "ignore": list(report.ignore),
        "schemas": {slug: {"updatedTimestamp": ts} for slug, ts in sorted(report.updated.items())},
        "items": [{
            "key": i.key,
            "slug": i.slug,
            "subject": i.subject,
            "kind": str(i.kind),
            "symbol": i.symbol,
            "property": i.prop,
            "message": drift_message(i),
            "files": i.files,
            "account": i.account,
            "updatedTimestamp": i.updated,
            "changed_in": i.changed_in,
            "severity": i.severity,
            "ignored_by": i.ignored_by,
        } for i in report.items],
    }


# ---------------------------------------------------------------------------------------------
# Shared helpers


def fmt_value(value: Any) -> str:
    """A property value as shown in a diff: JSON-ish (``"A"``, ``null``, ``true``, ``2``)."""
    if isinstance(value, list | tuple):
        return "[" + ", ".join(fmt_value(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def field_brief(f: Field) -> str:
    """``(number, required)``, ``(dropdown ["A", "B"])``, ``(currency USD)``."""
    kind = f.type.value
    if f.type.has_options:
        kind += " " + fmt_value(list(f.option_values))
    if f.default_currency:
        kind += f" {f.default_currency}"
    if f.scale is not None:
        kind += f" scale {f.scale}"
    parts = [kind]
    if f.required:
        parts.append("required")
    return f"({', '.join(parts)})"


def relationship_brief(r: Relationship) -> str:
    return f"({r.namespace})"


def property_lines(change: ops.Change) -> list[str]:
    """``labels.singular: "A" -> "B"`` for each changed property; options as additions."""
    lines = []
    for prop in change.changed:
        if prop is Prop.OPTIONS and isinstance(change, ops.UpdateField):
            lines.append("options: " + ", ".join(f"+ {fmt_value(v)}" for v in change.added_options))
            continue
        before, after = change.values(prop)
        lines.append(f"{prop}: {fmt_value(before)} -> {fmt_value(after)}")
    return lines


def change_text(change: ops.Change) -> tuple[str, list[str]]:
    """A change's head line (without its symbol) and its property lines, one ``case`` per kind.

    ``('field "x"', ['labels.singular: "A" -> "B"'])``; a single property is joined onto the head
    by the renderers.
    """
    match change:
        case ops.CreateSchema(after=s) | ops.DeleteSchema(before=s):
            head = f'schema "{change.slug}" ({s.labels.singular} / {s.labels.plural})'
        case ops.UpdateSchema():
            head = f'schema "{change.slug}"'
        case ops.AddField(after=f) | ops.DeleteField(before=f):
            head = f'field "{change.field_id}" {field_brief(f)}'
        case ops.UpdateField():
            head = f'field "{change.field_id}"'
        case ops.AddRelationship():
            head = f'relationship "{change.relationship_id}" {relationship_brief(change.after)}'
        case ops.UpdateRelationship():
            head = f'relationship "{change.relationship_id}"'
        case ops.CopyField():
            return copy_text(change), copy_lines(change)
        case _:
            assert_never(change)
    return head, property_lines(change)


def copy_text(c: ops.CopyField) -> str:
    """``copy "amount-text" → "amount": 980 records, ~3 min at 5 req/s, conversion text-to-number``."""
    from reconciler.errors import format_seconds

    head = f'copy "{c.from_field}" → "{c.field_id}"'
    n = c.records
    if n is None:
        how = "records not counted"
    else:
        how = plural(n.to_copy, "record")
        if n.seconds is not None and n.rate is not None:
            how += f", ~{format_seconds(n.seconds)} at {n.rate:g} req/s"
    conversion = "a plain copy" if c.conversion == COPY else f"conversion {c.conversion}"
    return f"{head}: {how}, {conversion}"


def copy_lines(c: ops.CopyField) -> list[str]:
    """The values the conversion cannot carry, counted and sampled (nothing when there are none)."""
    n = c.records
    if n is None or not n.unconvertible:
        return []
    shown = n.samples + (("…",) if n.unconvertible > len(n.samples) else ())
    return [f"cannot convert {plural(n.unconvertible, 'value')} (not copied): {', '.join(shown)}"]


@dataclass
class SchemaBlock:
    """Everything the plan says about one schema."""

    slug: str
    symbol: Action
    schema_change: ops.CreateSchema | ops.UpdateSchema | ops.DeleteSchema | None = None
    items: list[ops.Change | PlanError] = field(default_factory=list)
    hidden_fields: int = 0
    hidden_relationships: int = 0

    @property
    def changes(self) -> list[ops.Change]:
        out = [self.schema_change] if self.schema_change is not None else []
        return out + [i for i in self.items if isinstance(i, ops.Change)]

    @property
    def errors(self) -> list[PlanError]:
        return [i for i in self.items if isinstance(i, PlanError)]

    @property
    def findings_count(self) -> int:
        return sum(len(c.findings) for c in self.changes)


_NOUN_RANK = {Noun.SCHEMA: 0, Noun.FIELD: 1, Noun.RELATIONSHIP: 2}
_ACTION_RANK = {Action.ADD: 0, Action.UPDATE: 1, Action.COPY: 1, Action.DELETE: 2}


def _item_key(item: ops.Change | PlanError) -> tuple[int, str, int]:
    kind_rank = 99 if isinstance(item, PlanError) else _ACTION_RANK[item.act]
    return _NOUN_RANK[item.noun], item.subject_id or "", kind_rank


def schema_blocks(plan: Plan) -> list[SchemaBlock]:
    """One block per schema with changes or errors, in slug order."""
    blocks: dict[str, SchemaBlock] = {}
    for c in plan.changes:
        b = blocks.setdefault(c.slug, SchemaBlock(c.slug, Action.UPDATE))
        if isinstance(c, ops.CreateSchema | ops.UpdateSchema | ops.DeleteSchema):
            b.schema_change = c
        else:
            b.items.append(c)
    for e in plan.errors:
        b = blocks.setdefault(e.slug, SchemaBlock(e.slug, Action.BLOCKED))
        b.items.append(e)
    for b in blocks.values():
        b.items.sort(key=_item_key)
        counts = plan.unchanged.get(b.slug)
        if counts is not None:
            b.hidden_fields, b.hidden_relationships = counts.fields, counts.relationships
        if isinstance(b.schema_change, ops.CreateSchema | ops.DeleteSchema):
            b.symbol = b.schema_change.symbol
        else:
            b.symbol = Action.UPDATE if b.changes else Action.BLOCKED
    return [blocks[s] for s in sorted(blocks)]


# ---------------------------------------------------------------------------------------------
# Drift reports


def drift_groups(report: DriftReport) -> list[tuple[str, str | None, list[DriftItem]]]:
    """``(slug, live updatedTimestamp or None, items)`` per schema, in slug order."""
    groups: dict[str, list[DriftItem]] = {}
    for i in report.items:
        groups.setdefault(i.slug, []).append(i)
    out = []
    for slug, items in sorted(groups.items()):
        ts = report.updated.get(slug) or next((i.updated for i in items if i.updated), None)
        out.append((slug, ts, items))
    return out
