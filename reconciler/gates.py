"""What must hold before a plan is applied: the safety gates, a saved plan's freshness and target,
and that planning again gives the saved plan. Pure: the applier reads the account and calls these.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reconciler.client import normalize_base_url
from reconciler.errors import ConfigError, ReconcilerError
from reconciler.model import Schema
from reconciler.plan import Change, CreateSchema, Plan, UpdateSchema, fingerprint

__all__ = [
    "ApplyRefused",
    "Approved",
    "PlanMismatch",
    "StalePlan",
    "WrongTarget",
    "approve",
    "check_fresh",
    "check_target",
    "expected_fingerprints",
    "first_difference",
    "gate_reasons",
]


class ApplyRefused(ReconcilerError):
    """A safety gate refused the plan; nothing was written (exit code 3)."""

    def __init__(self, reasons: Sequence[str]):
        self.reasons = list(reasons)
        super().__init__("; ".join(self.reasons))


class StalePlan(ReconcilerError):
    """The account (or the files) changed after the saved plan was made; nothing was written."""


class PlanMismatch(StalePlan):
    """A saved plan is not what the files and the account give now (edited, or made for another
    target); nothing was written."""


class WrongTarget(PlanMismatch):
    """A saved plan made for another account (``planned``) than the one it is applied to (``actual``,
    both API base URLs); nothing was written."""

    def __init__(self, planned: str | None, actual: str):
        self.planned, self.actual = planned, actual
        super().__init__(f"the plan was made for {planned or 'no named target'}, not for "
                         f"{actual.removesuffix('/api/3')}; plan again for this target (or choose the plan's "
                         "target, e.g. with --env)")


# ---------------------------------------------------------------------------------------------
# Gates and freshness


def gate_reasons(plan: Plan, *, allow_data_loss: bool) -> list[str]:
    """Why this plan must not be applied, one line each (empty: it may be)."""
    reasons: list[str] = []
    for change in plan.changes:
        for finding in change.findings:
            if finding.code.not_allowed:
                reasons.append(f"{finding.code} {change.describe}: not allowed by the API; {finding.hint}")
        if change.blocked:
            reasons.append(
                f"{change.describe}: protected ({change.blocked_reason}); "
                "remove the protection in the file or reconciler.yaml to allow it"
            )
        elif not allow_data_loss:
            for finding in change.findings:
                if finding.code.data_loss:
                    reasons.append(
                        f"{finding.code} {change.describe}: loses data; re-run with --allow-data-loss to allow it"
                    )
    for error in plan.errors:
        line = f"{error.code} {error.message}"
        if line not in reasons:
            reasons.append(f"{line}; {error.hint}" if error.hint else line)
    return reasons


def check_fresh(plan: Plan, live: Mapping[str, Schema], *, desired_digest: str | None = None) -> None:
    """Raise :class:`StalePlan` when a live schema the plan read changed (or appeared) since."""
    for slug, fp in sorted(plan.live_fingerprints.items()):
        now = live.get(slug)
        if now is None:
            raise StalePlan(f'Saved plan is stale: schema "{slug}" was deleted in the account after the plan was made')
        if fingerprint(now) != fp:
            raise StalePlan(f'Saved plan is stale: schema "{slug}" changed in the account after the plan was made')
    for change in plan.changes:
        if isinstance(change, CreateSchema) and change.slug in live:
            raise StalePlan(
                f'Saved plan is stale: schema "{change.slug}" was created in the account after the plan was made'
            )
    if desired_digest is not None and desired_digest != plan.desired_digest:
        raise StalePlan("Saved plan is stale: the schema files changed after the plan was made; plan again")


def check_target(plan: Plan, base_url: str) -> None:
    """Raise :class:`WrongTarget` unless the saved ``plan`` was made for the account at ``base_url``
    (the client's normalised API base URL)."""
    try:
        planned = normalize_base_url(plan.target or "", allow_http=True)
    except ConfigError:
        planned = None
    if planned != base_url:
        raise WrongTarget(plan.target, base_url)


@dataclass(frozen=True)
class Approved:
    """A plan that passed the gates (:func:`approve`), with the flags it passed them with: what
    :func:`reconciler.applier.apply_plan` takes without checking the gates again."""

    plan: Plan
    allow_data_loss: bool
    #: the base URL a saved plan was checked against (``None``: a fresh plan)
    saved_for: str | None = None


def approve(plan: Plan, *, allow_data_loss: bool, saved_for: str | None = None) -> Approved:
    """The plan, approved by the gates: raise :class:`ApplyRefused` with every reason it may not be
    applied, and for a saved plan (``saved_for``: the API base URL it is applied to)
    :class:`WrongTarget` first when it was made for another account. Sends nothing."""
    if saved_for is not None:
        check_target(plan, saved_for)
    reasons = gate_reasons(plan, allow_data_loss=allow_data_loss)
    if reasons:
        raise ApplyRefused(reasons)
    return Approved(plan, allow_data_loss, saved_for)


def _comparable_change(change: Change) -> dict[str, Any]:
    """A change as saved, without what a re-plan does not recompute (record counts)."""
    d = change.model_dump(mode="json")
    d["findings"] = [{k: v for k, v in f.items() if k != "impact"} for f in d["findings"]]
    return d


def first_difference(saved: Plan, again: Plan) -> str | None:
    """Where a saved plan and the plan made again from the files and the account differ, or ``None``."""
    if (saved.narrowed_by or None) != (again.narrowed_by or None):
        return "its --target/--exclude narrowing differs"
    if dict(saved.live_fingerprints) != dict(again.live_fingerprints):
        return "the live schemas it lists as read differ"
    mine = [_comparable_change(c) for c in saved.changes]
    theirs = [_comparable_change(c) for c in again.changes]
    for a, b in zip(mine, theirs, strict=False):
        if a != b:
            return f'change "{a.get("key")}" differs'
    if len(mine) != len(theirs):
        return f"it holds {len(mine)} changes, planning again gives {len(theirs)}"
    if [e.model_dump(mode="json") for e in saved.errors] != [e.model_dump(mode="json") for e in again.errors]:
        return "its errors differ"
    return None


def expected_fingerprints(plan: Plan) -> dict[str, str]:
    """schema id -> the fingerprint the first write to it expects (the plan's read of that schema).

    The plan and the stages' checks read the schema in the list (``GET /customObjects/schemas
    ?showFields=all``); ``preflight``'s check before a destructive write reads it alone (``GET
    …/schemas/{id}?showFields=all``): that both show the same object is a guess the docs leave open
    (their examples agree; the sandbox serves the same text)."""
    live_slug: dict[str, str] = {}
    for c in plan.changes:
        if c.schema_id is None:
            continue
        if isinstance(c, UpdateSchema) and c.renamed_from:
            live_slug[c.schema_id] = c.renamed_from  # a rename's changes carry the new slug
        else:
            live_slug.setdefault(c.schema_id, c.slug)
    out: dict[str, str] = {}
    for schema_id, slug in live_slug.items():
        try:
            out[schema_id] = plan.live_fingerprints[slug]
        except KeyError:
            raise StalePlan(f'the plan holds no fingerprint of schema "{slug}", so it cannot tell whether the '
                            "schema changed since; plan again") from None
    return out


