"""The plan's words for people, shared by the text and markdown renderers (and the CLI).

Plain, unescaped text: escaping is the output module's job, done where a line is written.
"""

from __future__ import annotations

import json
from typing import Any, assert_never

from reconciler.codes import Code
from reconciler.drift import DriftItem, DriftKind, DriftReport, Side
from reconciler.errors import format_seconds
from reconciler.plan import Estimate, Finding, Narrowing, Plan

__all__ = ["drift_message", "drift_summary_line", "estimate_line", "finding_line", "hidden_text", "impact_text",
           "narrowed_text", "plural", "summary_line"]


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
    if f.code is Code.DL103:
        return f"{share} hold a value it cannot convert"
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
            f"{format_seconds(e.seconds)} at {e.rate:g} req/s"
            + (f" ({e.backup:,} of them to back up the records its deletes lose)." if e.backup else "."))
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


# ---------------------------------------------------------------------------------------------
# Drift


def _q(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _values(values: Any) -> str:
    return ", ".join(_q(v) for v in values or ())


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


def drift_message(i: DriftItem) -> str:
    """One drift item in words, e.g. ``field online-order.order-link is in the account but not in the
    files``; which side changed is said only when the item carries the evidence (``changed_in``)."""
    side = i.changed_in
    match i.kind:
        case DriftKind.SCHEMA_MISSING:
            return f"schema {i.slug} is not in the account (the files declare it)"
        case DriftKind.SCHEMA_ADDED:
            return f"schema {i.slug} is in the account but not in the files (prune would delete it)"
        case DriftKind.SCHEMA_UNMANAGED:
            return f"schema {i.slug} is in the account but not in the files (unmanaged; prune is off)"
        case DriftKind.SCHEMA_RENAMED:
            return f"schema {i.slug} is still called {i.detail} in the account (the files rename it)"
        case DriftKind.SCHEMA_CHANGED:
            return _differs(f"schema {i.slug}", str(i.prop), i.account, i.files, side)
        case DriftKind.FIELD_CHANGED:
            return _differs(f"field {i.subject}", str(i.prop), i.account, i.files, side)
        case DriftKind.RELATIONSHIP_CHANGED:
            return _differs(f"relationship {i.subject}", str(i.prop), i.account, i.files, side)
        case DriftKind.FIELD_MISSING:
            return _only_in_files(f"field {i.subject}", side)
        case DriftKind.RELATIONSHIP_MISSING:
            return _only_in_files(f"relationship {i.subject}", side)
        case DriftKind.OPTIONS_MISSING:
            many = len(i.files or ()) > 1
            return _only_in_files(f"field {i.subject}: option{'s' if many else ''} {_values(i.files)}", side,
                                  many=many)
        case DriftKind.FIELD_ADDED:
            return _only_in_account(f"field {i.subject}", side)
        case DriftKind.RELATIONSHIP_ADDED:
            return _only_in_account(f"relationship {i.subject}", side)
        case DriftKind.OPTIONS_ADDED:
            many = len(i.account or ()) != 1
            return _only_in_account(f"field {i.subject}: option{'s' if many else ''} {_values(i.account)}", side,
                                    many=many, removed="the API cannot remove options")
        case DriftKind.FIELD_DELETED:
            if side == "account":
                return f"field {i.subject} was deleted in the account (marked for deletion; the files still declare it)"
            if side == "files":
                return (f"field {i.subject} was added in the files (not applied yet) with the id of a field "
                        "deleted in the account")
            return f"field {i.subject} is marked for deletion in the account; the files declare it"
        case DriftKind.CONFLICT | DriftKind.NOTE:
            return i.detail or ""
        case _:
            assert_never(i.kind)


def drift_summary_line(report: DriftReport) -> str:
    """``Drift: 3 differences between the account and the files (1 ignored, 1 note).``"""
    s = report.summary
    extra = []
    if s["ignored"]:
        extra.append(f"{s['ignored']:,} ignored")
    if s["info"]:
        extra.append(plural(s["info"], "note"))
    tail = f" ({', '.join(extra)})" if extra else ""
    if report.in_sync:
        return f"No drift. The account matches the files{tail}."
    return f"Drift: {plural(s['drift'], 'difference')} between the account and the files{tail}."
