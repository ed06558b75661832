"""The plan's words for people, shared by the text and markdown renderers (and the CLI).

Plain, unescaped text: escaping is the output module's job, done where a line is written.
"""

from __future__ import annotations

from reconciler.codes import Code
from reconciler.errors import format_seconds
from reconciler.plan import Estimate, Finding, Narrowing, Plan

__all__ = ["estimate_line", "finding_line", "hidden_text", "impact_text", "narrowed_text", "plural", "summary_line"]


def plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def _n(value: int | None) -> str:
    return "unknown" if value is None else f"{value:,}"


def impact_text(f: Finding) -> str | None:
    """The record count in words, e.g. ``137 of 500 records hold a value that will be lost``
    (``None``: the finding's code has nothing to count)."""
    if not f.counted:
        return None
    if f.impact is None:
        return "(impact not counted)"
    a, t = f.impact.affected, f.impact.total
    if f.code is Code.DL101:
        n = a if a is not None else t
        return "an unknown number of records will be deleted" if n is None else f"all {_n(n)} records will be deleted"
    if a is None:
        share = "an unknown number of records" if t is None else f"an unknown number of {_n(t)} records"
    else:
        share = f"{_n(a)} of {_n(t)} records" if t is not None else f"{_n(a)} of an unknown number of records"
    if f.code is Code.DL102:
        return f"{share} hold a value that will be lost"
    return f"{share} have no value"


def finding_line(f: Finding) -> str:
    """``DL102 delete field online-order.order-link: 137 of 500 records hold a value that will be lost``."""
    text = f"{f.code} {f.message}"
    impact = impact_text(f)
    if impact is not None:
        text = f"{text} {impact}" if impact.startswith("(") else f"{text}: {impact}"
    if f.acknowledged:
        text += " (acknowledged)"
    return text


def narrowed_text(narrowed: Narrowing | None) -> str | None:
    """``--target a --exclude b`` when the plan was narrowed, else ``None``."""
    if narrowed is None:
        return None
    parts = [f"--target {t}" for t in narrowed.targets] + [f"--exclude {x}" for x in narrowed.excludes]
    return " ".join(parts) or None


def summary_line(plan: Plan) -> str:
    """``Plan: 1 to add, 2 to change, 1 to destroy.`` or ``No changes. The account matches the files.``"""
    s = plan.summary
    if not plan.changes and not plan.errors:
        line = "No changes. The account matches the files."
    else:
        line = f"Plan: {s['add']:,} to add, {s['change']:,} to change, {s['destroy']:,} to destroy."
        if s["blocked"]:
            line += f" {s['blocked']:,} blocked by protect."
        if s["errors"]:
            line += f" {s['errors']:,} {'error' if s['errors'] == 1 else 'errors'}: the API would refuse this plan."
    narrowed = narrowed_text(plan.narrowed_by)
    if narrowed:
        line += f" Narrowed by {narrowed}."
    return line


def estimate_line(e: Estimate | None) -> str | None:
    """``Apply: about 103 requests, 22 s at 5 req/s.`` (and what ``--preflight`` adds), or ``None``
    without an estimate or a rate."""
    if e is None or e.rate is None or e.seconds is None:
        return None
    text = (f"Apply: about {e.requests:,} request{'s' if e.requests != 1 else ''}, "
            f"{format_seconds(e.seconds)} at {e.rate:g} req/s.")
    if e.preflight and e.preflight_seconds is not None:
        text += (f" With --preflight: {e.preflight:,} more, about "
                 f"{format_seconds(e.preflight_seconds)} more.")
    return text


def hidden_text(fields: int, relationships: int) -> str | None:
    """``# (3 unchanged fields, 1 unchanged relationship hidden)``, or ``None`` when nothing is hidden."""
    hidden = []
    if fields:
        hidden.append(plural(fields, "unchanged field"))
    if relationships:
        hidden.append(plural(relationships, "unchanged relationship"))
    return f"# ({', '.join(hidden)} hidden)" if hidden else None
