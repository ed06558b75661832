"""Markdown for a pull-request comment, a GitHub step summary or a drift issue; and its escaping.

A plan: a heading, the summary line in bold, what applying it costs (when stated at a rate), a
``| Action | Count |`` table, the risks (codes in bold
with their counts), the errors with their hints, then one ``<details>`` section per schema holding its
changes as a ``diff`` code block (GitHub colours ``+``/``-`` lines), a Mermaid diagram of the schemas
the plan changes (:func:`_diagram_lines`), and the notes. A drift report: a
heading, the summary, a counts table and one table row per difference.

Escaping, the one definition for every markdown output (the CLI's too): text from the account or the
files enters a document only through

- :func:`md_text`, running text and table cells (markup, HTML, links, images, autolinks, mentions and
  issue references all neutralised),
- :func:`md_code`, an inline code span whose fence cannot be closed from inside,
- :func:`md_fence`, a fenced code block, likewise,
- :func:`md_html`, text inside our own HTML (``<summary>``).

Each returns :class:`Md`, markdown that is safe as it is. A document is built with :func:`md`, a
template of ours whose every other argument is passed through :func:`md_text`, so a value that was
not escaped on purpose is escaped by default.

The neutralisation of ``@mentions`` and ``#123`` references is a guess about GitHub: they are not in
the CommonMark or GFM specifications. GitHub's recognisers want a letter or digit right after the
``@`` or ``#``; a WORD JOINER (U+2060, invisible) is put there, written as ``&#8288;`` so the raw
markdown shows it.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

from reconciler.plan import Change, CreateSchema, Plan, PlanError
from reconciler.render import SchemaBlock, change_text, drift_groups, field_brief, schema_blocks
from reconciler.render.graph import plan_diagram, to_mermaid
from reconciler.render.text import inert
from reconciler.render.words import (
    drift_message,
    drift_summary_line,
    estimate_line,
    finding_line,
    hidden_text,
    impact_text,
    narrowed_text,
    plural,
    summary_line,
)

if TYPE_CHECKING:
    from reconciler.drift import DriftReport

__all__ = ["DIAGRAM_MAX_CHARS", "DIAGRAM_MAX_SCHEMAS", "Md", "md", "md_code", "md_fence", "md_html", "md_text",
           "render_drift_markdown", "render_markdown"]


class Md(str):
    """Markdown that is safe as it is: written by reconciler, or escaped by one of the ``md_*`` functions."""

    __slots__ = ()


#: Where text could become markup, in one pass (so what one rule inserts is never re-read by another):
#: ``@`` or ``#`` before a word character (mention, email autolink, issue reference), ``:`` after a
#: letter and before a non-space (``https:``, ``mailto:`` autolinks), the dot of ``www.`` (GFM's www
#: autolink), and every ASCII punctuation character that can open or close markup: backslash, code,
#: emphasis, links and images, HTML and autolinks (``<``), tables, strikethrough, entities, math, headings.
_SPECIAL = re.compile(r"(?P<join>[@#](?=\w))|(?P<colon>(?<=[A-Za-z]):(?=\S))|(?P<dot>(?<=[wW]{3})\.)"
                      r"|(?P<punct>[\\`*_\[\]<>!|~&$#])")
#: What starts a block when it opens a line (a list item's text does): list markers, ``1.``/``1)``,
#: setext underlines, and indentation (tabs are already escaped by :func:`inert`).
_LEADING = re.compile(r"(?P<spaces> +)|(?P<marker>[-+=])|(?P<number>\d+)(?P<delim>[.)])")


def _special(m: re.Match[str]) -> str:
    if m.group("join"):
        return m.group() + "&#8288;"
    if m.group("colon"):
        return "&#58;"
    if m.group("dot"):
        return "&#46;"
    return "\\" + m.group()


def md_text(text: str) -> Md:
    """``text`` as markdown running text or a table cell: it shows as written and makes nothing.

    Controls are shown escaped (:func:`~reconciler.render.text.inert`, so also no line break), and
    no link, image, autolink, HTML, emphasis, mention or block can come of it, wherever it is placed.
    """
    s = inert(text)
    lead = ""
    m = _LEADING.match(s)
    if m:
        if m.group("spaces"):
            lead = "&#32;" * len(m.group("spaces"))
        elif m.group("marker"):
            lead = "\\" + m.group("marker")
        else:
            lead = m.group("number") + "\\" + m.group("delim")
        s = s[m.end():]
    return Md(lead + _SPECIAL.sub(_special, s))


def md_code(text: str, *, table: bool = False) -> Md:
    """``text`` as an inline code span: fenced by more backticks than any run inside (CommonMark).

    ``table``: the span is in a GFM table cell, where a ``|`` ends the cell even inside code unless
    it is written ``\\|`` (the table parser removes that one backslash before the span is read).
    """
    s = inert(text)
    if table:
        s = s.replace("|", "\\|")
    if not s:
        return Md("` `")
    fence = "`" * (max((len(r) for r in re.findall(r"`+", s)), default=0) + 1)
    # one space each side is stripped by the parser: needed next to a backtick, and to keep a
    # value that itself starts and ends with a space
    pad = " " if s[0] == "`" or s[-1] == "`" or (s[0] == " " and s[-1] == " " and s.strip()) else ""
    return Md(f"{fence}{pad}{s}{pad}{fence}")


def md_fence(lines: Iterable[str], info: str = "") -> list[Md]:
    """``lines`` as a fenced code block: the fence is longer than any backtick run inside."""
    body = [inert(line) for line in lines]
    longest = max((len(r) for line in body for r in re.findall(r"`+", line)), default=0)
    fence = "`" * max(3, longest + 1)
    return [Md(fence + info), *(Md(line) for line in body), Md(fence)]


_HTML_JOIN = re.compile(r"[@#](?=\w)")


def md_html(text: str) -> Md:
    """``text`` as the content of an HTML element of ours (e.g. ``<summary>``): HTML-escaped."""
    return Md(_HTML_JOIN.sub(lambda m: m.group() + "&#8288;", html.escape(inert(text), quote=True)))


def md(template: str, *values: object) -> Md:
    """``template`` (markdown of ours, ``{}`` placeholders) with each value escaped by :func:`md_text`
    unless it already is :class:`Md`."""
    return Md(template.format(*(v if isinstance(v, Md) else md_text(str(v)) for v in values)))


class _Doc:
    """The lines of a markdown document; :meth:`add` is the way in (see :func:`md`)."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def add(self, template: str = "", *values: object) -> None:
        self.lines.append(md(template, *values))

    def extend(self, lines: Iterable[Md]) -> None:
        self.lines.extend(lines)

    def text(self) -> str:
        return "\n".join(self.lines)


# ---------------------------------------------------------------------------------------------
# Plans


def _change_lines(c: Change) -> list[str]:
    head, props = change_text(c)
    lines = [f"{c.symbol} {head}"]
    lines += [f"    {p}" for p in props]
    if c.blocked:
        lines.append(f"    # blocked: {c.blocked_reason}")
    lines += [f"    ! {finding_line(f)}" for f in c.findings]
    return lines


def _block_lines(b: SchemaBlock) -> list[str]:
    """The plain lines of a schema's ``diff`` block (escaped by :func:`md_fence`)."""
    lines: list[str] = []
    sc = b.schema_change
    if isinstance(sc, CreateSchema) and sc.after is not None:
        lines += _change_lines(sc)
        lines += [f'    + field "{f.id}" {field_brief(f)}' for f in sc.after.active_fields]
        lines += [f'    + relationship "{r.id}" ({r.namespace})' for r in sc.after.relationships]
    elif sc is not None:
        lines += _change_lines(sc)
    for item in b.items:
        if isinstance(item, PlanError):
            lines.append(f"! {item.code} {item.message}")
            lines.append(f"    hint: {item.hint}")
        else:
            lines += _change_lines(item)
    hidden = hidden_text(b.hidden_fields, b.hidden_relationships)
    if hidden:
        lines.append(hidden)
    return lines


def _block_summary(b: SchemaBlock) -> Md:
    parts = []
    if b.changes:
        parts.append(plural(len(b.changes), "change"))
    risks = b.findings_count
    if risks:
        parts.append(plural(risks, "risk"))
    if b.errors:
        parts.append(plural(len(b.errors), "error"))
    what = {"+": "create", "-": "destroy", "!": "blocked" if b.changes else "not allowed", "~": "update"}[b.symbol]
    return Md(f"<code>{b.symbol}</code> <b>{md_html(b.slug)}</b> ({what}): {md_html(', '.join(parts))}")


#: Past either size the plan's diagram is left out, with a line saying so. Mermaid refuses a source
#: over 50,000 characters (its ``maxTextSize``) and GitHub a comment over 65,536; 15,000 leaves the
#: plan itself most of the comment. Past some 30 boxes an ER diagram drawn at the width of a comment
#: is too small to read.
DIAGRAM_MAX_SCHEMAS = 30
DIAGRAM_MAX_CHARS = 15_000


def _diagram_lines(plan: Plan) -> list[Md]:
    """``#### Diagram`` and a ``mermaid`` block of the schemas the plan changes (none: nothing).

    Created, deleted and changed parts are marked in words (``· create``, ``added``, …), not with
    ``classDef``/``style``: GitHub draws with a Mermaid version of its own choosing, and ``erDiagram``
    gained styling only recently, so a style line could stop the whole diagram from rendering.
    """
    d = plan_diagram(plan)
    n = d.schema_count
    if not n:
        return []
    lines = [md("#### Diagram"), md("")]
    source = to_mermaid(d)
    if n > DIAGRAM_MAX_SCHEMAS:
        lines.append(md("Diagram left out: the plan changes {} schemas, more than the {} drawn here.",
                        f"{n:,}", DIAGRAM_MAX_SCHEMAS))
    elif len(source) > DIAGRAM_MAX_CHARS:
        lines.append(md("Diagram left out: it is {} characters of Mermaid, more than the {} drawn here.",
                        f"{len(source):,}", f"{DIAGRAM_MAX_CHARS:,}"))
    else:
        lines += md_fence(source.splitlines(), "mermaid")
    lines.append(md(""))
    return lines


def render_markdown(plan: Plan) -> str:
    """The plan as GitHub-flavoured Markdown."""
    s = plan.summary
    doc = _Doc()
    doc.add("### Reconciler plan")
    doc.add()
    doc.add("**{}**", summary_line(plan))
    doc.add()
    cost = estimate_line(plan.estimate)
    if cost:
        doc.add("{}", cost)
        doc.add()
    meta = []
    if plan.target:
        meta.append(md("Target: {}", md_code(plan.target)))
    narrowed = narrowed_text(plan.narrowed_by)
    if narrowed:
        meta.append(md("Narrowed by {}", md_code(narrowed)))
    if meta:
        doc.add("{}", Md(" · ".join(meta)))
        doc.add()

    doc.add("| Action | Count |")
    doc.add("| :-- | --: |")
    rows = [("Add", s["add"]), ("Change", s["change"]), ("Destroy", s["destroy"])]
    rows += [("Blocked", s["blocked"])] if s["blocked"] else []
    rows += [("Errors", s["errors"])] if s["errors"] else []
    for name, n in rows:
        doc.add("| {} | {} |", name, f"{n:,}")
    doc.add()

    risky = [(c, f) for c in plan.changes for f in c.findings]
    if risky:
        doc.add("#### Risks")
        doc.add()
        for c, f in risky:
            line = md("- **{}** {}", f.code, f.message)
            impact = impact_text(f)
            if impact:
                line = md("{} {}", line, impact) if impact.startswith("(") else md("{}: **{}**", line, impact)
            if c.blocked:
                line = md("{} — blocked: {}", line, c.blocked_reason or "")
            if f.acknowledged:
                line = md("{} _(acknowledged)_", line)
            doc.add("{}", line)
        doc.add()
    if plan.errors:
        doc.add("#### Errors: not allowed by the API")
        doc.add()
        for e in plan.errors:
            doc.add("- **{}** {}. Hint: {}", e.code, e.message, e.hint)
        doc.add()

    for b in schema_blocks(plan):
        doc.add("<details><summary>{}</summary>", _block_summary(b))
        doc.add()
        doc.extend(md_fence(_block_lines(b), "diff"))
        doc.add()
        doc.add("</details>")
        doc.add()
    doc.extend(_diagram_lines(plan))

    if plan.notes:
        doc.add("#### Notes")
        doc.add()
        for note in plan.notes:
            doc.add("- {}", note.message)
        doc.add()
    return doc.text()


# ---------------------------------------------------------------------------------------------
# Drift reports


def render_drift_markdown(report: DriftReport) -> str:
    """A drift report as GitHub-flavoured Markdown (a drift issue, a step summary)."""
    doc = _Doc()
    doc.add("### Reconciler drift")
    doc.add()
    doc.add("**{}**", drift_summary_line(report))
    doc.add()
    meta = []
    if report.target:
        meta.append(md("Target: {}", md_code(report.target)))
    if report.checked_at:
        meta.append(md("Checked at {}", report.checked_at))
    if meta:
        doc.add("{}", Md(" · ".join(meta)))
        doc.add()
    s = report.summary
    doc.add("| Drift | Ignored | Notes |")
    doc.add("| --: | --: | --: |")
    doc.add("| {} | {} | {} |", f"{s['drift']:,}", f"{s['ignored']:,}", f"{s['info']:,}")
    doc.add()
    if report.items:
        doc.add("| | Schema | Difference | Account updated | |")
        doc.add("| :-: | :-- | :-- | :-- | :-- |")
        for slug, _, items in drift_groups(report):
            for i in items:
                sym = "#" if i.ignored_by is not None else i.symbol
                if i.ignored_by is not None:
                    note = md("ignored by {}", md_code(i.ignored_by, table=True))
                else:
                    note = md_text("information" if i.severity == "info" else "")
                doc.add("| {} | {} | {} | {} | {} |", md_code(sym, table=True), md_code(slug, table=True),
                        drift_message(i), i.updated or "n/a", note)
        doc.add()
    if not report.in_sync:
        doc.add("To undo drift, run `reconciler plan` and `reconciler apply`; to keep it, change the files "
                "(`reconciler export` writes the account's version) or add an `ignore:` rule.")
        doc.add()
    return doc.text()
