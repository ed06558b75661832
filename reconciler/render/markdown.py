"""Markdown rendering for a pull-request comment or a GitHub step summary.

A heading, the summary line in bold, a ``| Action | Count |`` table, the risks (codes in bold with
their counts), the errors with their hints, then one ``<details>`` section per schema holding its
changes as a ``diff`` code block (GitHub colours ``+``/``-`` lines), and the notes.
"""

from __future__ import annotations

from reconciler.plan import Change, CreateSchema, Plan, PlanError
from reconciler.render import SchemaBlock, change_text, field_brief, plural, schema_blocks

__all__ = ["render_markdown"]


def _escape(text: str) -> str:
    """Escape what GitHub would take for markup or HTML in running text."""
    for ch in ("\\", "|", "*", "_", "<", ">", "`"):
        text = text.replace(ch, "\\" + ch)
    return text


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _change_lines(c: Change) -> list[str]:
    head, props = change_text(c)
    lines = [f"{c.symbol} {head}"]
    lines += [f"    {p}" for p in props]
    if c.blocked:
        lines.append(f"    # blocked: {c.blocked_reason}")
    lines += [f"    ! {f.line()}" for f in c.findings]
    return lines


def _block_lines(b: SchemaBlock) -> list[str]:
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
    hidden = []
    if b.hidden_fields:
        hidden.append(plural(b.hidden_fields, "unchanged field"))
    if b.hidden_relationships:
        hidden.append(plural(b.hidden_relationships, "unchanged relationship"))
    if hidden:
        lines.append(f"# ({', '.join(hidden)} hidden)")
    return lines


def _block_summary(b: SchemaBlock) -> str:
    parts = []
    if b.changes:
        parts.append(plural(len(b.changes), "change"))
    risks = b.findings_count
    if risks:
        parts.append(plural(risks, "risk"))
    if b.errors:
        parts.append(plural(len(b.errors), "error"))
    what = {"+": "create", "-": "destroy", "!": "blocked" if b.changes else "not allowed", "~": "update"}[b.symbol]
    return f"<code>{b.symbol}</code> <b>{_html(b.slug)}</b> ({what}): {', '.join(parts)}"


def render_markdown(plan: Plan) -> str:
    """The plan as GitHub-flavoured Markdown."""
    s = plan.summary
    out: list[str] = ["### Reconciler plan", ""]
    out += [f"**{_escape(plan.summary_line())}**", ""]
    meta = []
    if plan.target:
        meta.append(f"Target: `{plan.target}`")
    narrowed = plan.narrowed_text()
    if narrowed:
        meta.append(f"Narrowed by `{narrowed}`")
    if meta:
        out += [" · ".join(meta), ""]

    out += ["| Action | Count |", "| :-- | --: |"]
    out += [f"| Add | {s['add']:,} |", f"| Change | {s['change']:,} |", f"| Destroy | {s['destroy']:,} |"]
    if s["blocked"]:
        out.append(f"| Blocked | {s['blocked']:,} |")
    if s["errors"]:
        out.append(f"| Errors | {s['errors']:,} |")
    out.append("")

    risky = [(c, f) for c in plan.changes for f in c.findings]
    if risky:
        out += ["#### Risks", ""]
        for c, f in risky:
            impact = f.impact_text()
            text = f"- **{f.code}** {_escape(f.message)}"
            if impact:
                text += f" {_escape(impact)}" if impact.startswith("(") else f": **{_escape(impact)}**"
            if c.blocked:
                text += f" — blocked: {_escape(c.blocked_reason or '')}"
            if f.acknowledged:
                text += " _(acknowledged)_"
            out.append(text)
        out.append("")
    if plan.errors:
        out += ["#### Errors: not allowed by the API", ""]
        out += [f"- **{e.code}** {_escape(e.message)}. Hint: {_escape(e.hint)}" for e in plan.errors]
        out.append("")

    for b in schema_blocks(plan):
        out += [f"<details><summary>{_block_summary(b)}</summary>", "", "```diff"]
        out += _block_lines(b)
        out += ["```", "", "</details>", ""]

    if plan.notes:
        out += ["#### Notes", ""]
        out += [f"- {_escape(n.message)}" for n in plan.notes]
        out.append("")
    return "\n".join(out)
