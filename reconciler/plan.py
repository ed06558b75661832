"""The plan's data: what would change, why it is risky, and how to save and reload it. No I/O.

A :class:`Plan` is a frozen pydantic model. It holds the changes (:data:`~reconciler.changes.Change`,
a union discriminated by ``kind``), the things the API cannot do (:class:`PlanError`, codes
``NA3xx``) and notes that change nothing. Risky changes carry :class:`Finding` objects with a stable
code (:mod:`reconciler.codes`). Words for people are the renderers' (:mod:`reconciler.render`).

The plan file is the model's own JSON (:meth:`Plan.to_json` / :meth:`Plan.from_json`; its JSON
Schema: ``reconciler json-schema --kind plan``). It carries a digest over all of its content, so a
file damaged or edited by hand is refused (:class:`PlanTampered`), and a fingerprint of every live
schema the plan read, so the applier can tell a stale plan (:func:`fingerprint`). The digest is a
plain sha256 that anyone can recompute after an edit: it catches accidents, not intent. What makes
a saved plan safe is the applier, which plans again from the files and the account and refuses
unless that gives the same changes (:func:`reconciler.applier.apply_plan` with ``saved``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from functools import cached_property
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    ValidationError,
    computed_field,
    field_serializer,
    model_serializer,
    model_validator,
)
from pydantic import Field as PydField
from typing_extensions import TypedDict

from reconciler.changes import (
    CHANGE_KINDS,
    KIND_ORDER,
    Action,
    AddField,
    AddRelationship,
    AnyChange,
    Change,
    ChangeBase,
    CopyCount,
    CopyField,
    CreateSchema,
    DeleteField,
    DeleteSchema,
    Finding,
    Impact,
    ImpactQuery,
    Note,
    NoteKind,
    Noun,
    PlanError,
    UpdateField,
    UpdateRelationship,
    UpdateSchema,
    _Data,
)
from reconciler.codes import CODES, COUNTED_CODES, Code, CodeInfo
from reconciler.errors import ReconcilerError
from reconciler.model import Schema

__all__ = [
    "CHANGE_KINDS",
    "CODES",
    "COUNTED_CODES",
    "DRIFT_FORMAT",
    "FORMAT_VERSION",
    "KIND_ORDER",
    "Action",
    "AddField",
    "AddRelationship",
    "Change",
    "ChangeBase",
    "Code",
    "CodeInfo",
    "CopyCount",
    "CopyField",
    "CreateSchema",
    "DeleteField",
    "DeleteSchema",
    "Estimate",
    "Finding",
    "Impact",
    "ImpactQuery",
    "Narrowing",
    "NotAPlanFile",
    "Note",
    "NoteKind",
    "Noun",
    "Plan",
    "PlanError",
    "PlanFileError",
    "PlanTampered",
    "Summary",
    "Unchanged",
    "UnknownPlanVersion",
    "UpdateField",
    "UpdateRelationship",
    "UpdateSchema",
    "canonical_json",
    "desired_digest",
    "fingerprint",
]

#: Version of the JSON plan file. A file with another version is refused (:class:`UnknownPlanVersion`).
FORMAT_VERSION = 1


# ---------------------------------------------------------------------------------------------
# Digests


def canonical_json(data: Any) -> str:
    """The one JSON text of ``data`` that digests are taken over (sorted keys, no spaces)."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def fingerprint(schema: Schema) -> str:
    """sha256 of a live schema's full JSON (server ids, ``updatedTimestamp``, deleted fields included).

    pydantic's serializer writes the model's fields in their declared order: the same model always
    gives the same text. The schema's opaque fields (types the model does not know), left out of its
    dump, are hashed after it when it has some.
    """
    h = hashlib.sha256(schema.model_dump_json(by_alias=True).encode())
    if schema.opaque_fields:
        h.update(b"\nopaque:")
        h.update(json.dumps([f.model_dump(mode="json") for f in schema.opaque_fields], sort_keys=True).encode())
    return h.hexdigest()


def desired_digest(desired: Mapping[str, Schema] | Iterable[Schema]) -> str:
    """sha256 over the desired schemas, in slug order, each as pydantic writes it (every property,
    the file-only flags included). Any edit of a declaration changes it, a reorder of its fields too:
    a saved plan is then refused as stale, which is the safe side."""
    schemas = desired.values() if isinstance(desired, Mapping) else desired
    by_slug = {s.slug: s for s in schemas}
    h = hashlib.sha256()
    for slug in sorted(by_slug):
        h.update(by_slug[slug].model_dump_json(by_alias=True).encode())
        h.update(b"\n")
    return h.hexdigest()


# ---------------------------------------------------------------------------------------------
# Plan file errors


class PlanFileError(ReconcilerError):
    """A plan file cannot be used. ``str()`` is one line naming the file."""

    def __init__(self, message: str, source: str | None = None):
        self.source = source
        super().__init__(f"{source}: {message}" if source else message)


class PlanTampered(PlanFileError):
    """The digest does not match the content: the file was modified after it was written (without
    recomputing the digest; an edit that recomputes it is caught by the applier's re-plan)."""


class NotAPlanFile(PlanFileError):
    """The file is JSON but not a plan: ``str()`` says what it is, e.g. ``drift.json is a drift report, …``."""

    def __init__(self, message: str, source: str | None = None):
        self.source = source
        ReconcilerError.__init__(self, f"{source or 'the file'} {message}")


class UnknownPlanVersion(PlanFileError):
    """The file's ``format_version`` is not one this version of reconciler reads."""


# ---------------------------------------------------------------------------------------------
# The apply's cost


class _PreflightCost(TypedDict):
    requests: int
    seconds: float | None


class _EstimateJsonBase(TypedDict):
    requests: int
    seconds: float | None
    rate: float | None
    pace: float | None
    preflight: _PreflightCost


class _EstimateJson(_EstimateJsonBase, total=False):
    backup: int  # written only when there is a backup


class Estimate(BaseModel):
    """What applying a plan costs, counted by :func:`reconciler.applier.estimate`.

    ``requests``: what ``apply`` sends for the plan by default (its reads of the account before the
    stages, the writes, the verification read); ``preflight``: how many more ``apply --preflight``
    sends. ``rate``: the account's requests/s (``None``: no limit, e.g. the embedded sandbox, and
    no time to state); ``pace``: the rate the client keeps, a little below it (its headroom), from
    which the seconds follow. ``backup``: how many of ``requests`` read the records a delete loses,
    to back them up first (``apply --no-backup`` leaves them out). The seconds leave out latency and
    start-up: "about".
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    requests: int
    preflight: int = 0
    backup: int = 0
    rate: float | None = None
    pace: float | None = None

    def _seconds(self, requests: int) -> float | None:
        return None if not self.pace else round(requests / self.pace, 1)

    @property
    def seconds(self) -> float | None:
        return self._seconds(self.requests)

    @property
    def preflight_seconds(self) -> float | None:
        return self._seconds(self.preflight)

    @model_validator(mode="before")
    @classmethod
    def _read(cls, data: Any) -> Any:
        """The file's ``preflight`` is ``{requests, seconds}``; the seconds are worked out again."""
        if isinstance(data, dict) and isinstance(data.get("preflight"), dict):
            data = {**data, "preflight": data["preflight"].get("requests", 0)}
        return data

    @model_serializer(mode="plain")
    def _write(self) -> _EstimateJson:
        out: _EstimateJson = {"requests": self.requests, "seconds": self.seconds, "rate": self.rate, "pace": self.pace,
                              "preflight": {"requests": self.preflight, "seconds": self.preflight_seconds}}
        if self.backup:  # only when there is one: the file of a plan without deletes is as before
            out["backup"] = self.backup
        return out


# ---------------------------------------------------------------------------------------------
# The plan


class Summary(TypedDict):
    """Counts of a plan: changes by action (blocked ones apart), blocked changes, errors."""

    add: int
    change: int
    destroy: int
    blocked: int
    errors: int


class Narrowing(_Data):
    """The ``--target``/``--exclude`` patterns a plan was narrowed by."""

    targets: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()


class Unchanged(_Data):
    """How many of a schema's fields and relationships a plan leaves as they are."""

    fields: int = 0
    relationships: int = 0


_SUMMARY_KEY = {Action.ADD: "add", Action.UPDATE: "change", Action.COPY: "change", Action.DELETE: "destroy"}


def _sorted(mapping: Mapping[str, Any]) -> dict[str, Any]:
    return dict(sorted(mapping.items()))


class Plan(_Data):
    """The planned changes, errors and notes, plus what the plan was made from.

    ``desired_digest``: :func:`desired_digest` of the files planned; ``live_fingerprints``: slug ->
    :func:`fingerprint` of each live schema the plan read; ``unchanged``: per schema with changes or
    errors, how many of its fields/relationships stay as they are; ``estimate``: what applying it
    costs (set by :func:`reconciler.pipeline.plan_account`, which knows the account's size and rate).
    """

    _order = ("format_version", "target", "created_at", "narrowed_by", "desired_digest", "live_fingerprints",
              "summary", "unchanged", "changes", "errors", "notes", "estimate", "digest")

    format_version: int = FORMAT_VERSION
    target: str | None = None
    created_at: str | None = None
    narrowed_by: Narrowing | None = None
    desired_digest: str = ""
    live_fingerprints: dict[str, str] = PydField(default_factory=dict)
    unchanged: dict[str, Unchanged] = PydField(default_factory=dict)
    changes: tuple[AnyChange, ...] = ()
    errors: tuple[PlanError, ...] = ()
    notes: tuple[Note, ...] = ()
    estimate: Estimate | None = None

    @field_serializer("live_fingerprints", "unchanged", mode="wrap")
    def _by_slug(self, value: Any, handler: Any):  # type: ignore[no-untyped-def]
        return _sorted(handler(value))

    @model_serializer(mode="wrap")
    def _ordered(self, handler: Any):  # type: ignore[no-untyped-def]
        data = self._in_order(handler(self))
        if isinstance(data, dict) and data.get("estimate") is None:
            data.pop("estimate", None)  # only when stated: the digest of a plan without one is as before
        return data

    # -- views ---------------------------------------------------------------------------------

    @computed_field  # type: ignore[prop-decorator]
    @property
    def summary(self) -> Summary:
        """``add`` / ``change`` / ``destroy`` (blocked changes not counted), ``blocked``, ``errors``."""
        out: Summary = {"add": 0, "change": 0, "destroy": 0, "blocked": 0, "errors": len(self.errors)}
        for c in self.changes:
            key = "blocked" if c.blocked else _SUMMARY_KEY[c.act]
            out[key] += 1  # type: ignore[literal-required]
        return out

    @property
    def has_changes(self) -> bool:
        return bool(self.changes)

    @property
    def has_errors(self) -> bool:
        return bool(self.errors)

    @property
    def findings(self) -> tuple[Finding, ...]:
        """Every finding: on changes, then the errors'."""
        return tuple(f for c in self.changes for f in c.findings) + tuple(e.finding for e in self.errors)

    def change(self, key: str) -> Change | None:
        for c in self.changes:
            if c.key == key:
                return c
        return None

    # -- derivations -----------------------------------------------------------------------------

    def _replace(self, **update: Any) -> Plan:
        """A new plan with these fields changed (a new model: its digest is worked out again)."""
        values = {name: getattr(self, name) for name in type(self).model_fields}
        return type(self)(**{**values, **update})

    def with_impacts(self, impacts: Mapping[str, Impact | None]) -> Plan:
        """A new plan whose counted findings carry these impacts (keyed by change key)."""
        return self._replace(changes=tuple(c.with_impact(impacts[c.key]) if c.key in impacts else c
                                           for c in self.changes))

    def with_changes(self, changes: Iterable[Change]) -> Plan:
        """A new plan with these changes instead of its own (e.g. without a copy found complete)."""
        return self._replace(changes=tuple(changes))

    def with_notes(self, notes: Iterable[Note]) -> Plan:
        """A new plan with these notes after its own."""
        return self._replace(notes=(*self.notes, *notes))

    def with_estimate(self, estimate: Estimate | None) -> Plan:
        """A new plan that states this apply cost."""
        return self._replace(estimate=estimate)

    def stamped(self, *, created_at: str | None = None, target: str | None = None) -> Plan:
        """A new plan with its creation time and/or target URL set."""
        return self._replace(created_at=created_at if created_at is not None else self.created_at,
                             target=target if target is not None else self.target)

    # -- JSON ------------------------------------------------------------------------------------

    @computed_field  # type: ignore[prop-decorator]
    @cached_property
    def digest(self) -> str:
        """sha256 over every other key of the plan file."""
        return _sha256(canonical_json(self.model_dump(mode="json", exclude={"digest"})))

    def to_json(self) -> str:
        """The plan file (pretty-printed, keys in a fixed order, ending in a newline)."""
        return self.model_dump_json(indent=2) + "\n"

    @classmethod
    def from_data(cls, data: Any, *, source: str | None = None) -> Plan:
        """A plan file's parsed JSON as a plan; raises :class:`PlanFileError` and its kinds."""
        if not isinstance(data, dict):
            raise PlanFileError("not a plan file (expected a JSON object)", source)
        if "format_version" not in data:
            if data.get("format") == DRIFT_FORMAT:
                raise NotAPlanFile("is a drift report, not a plan file (make a plan with reconciler plan --out)",
                                   source)
            raise NotAPlanFile("is not a plan file: it has no format_version (make a plan with reconciler plan "
                               "--out)", source)
        version = data.get("format_version")
        if version != FORMAT_VERSION:
            raise UnknownPlanVersion(
                f"plan format_version {version!r} is not supported (this reconciler reads {FORMAT_VERSION}); "
                "plan again with this version",
                source,
            )
        try:
            plan = cls.model_validate(data)
        except ValidationError as exc:
            if data.get("digest") is not None and _sha256(canonical_json(
                    {k: v for k, v in data.items() if k != "digest"})) != data.get("digest"):
                raise PlanTampered("plan file was modified after it was written (digest mismatch)", source) from None
            raise PlanFileError(f"not a valid plan file ({type(exc).__name__}: {exc})".splitlines()[0],
                                source) from None
        if data.get("digest") != plan.digest:
            raise PlanTampered("plan file was modified after it was written (digest mismatch)", source)
        return plan

    @classmethod
    def from_json(cls, text: str, *, source: str | None = None) -> Plan:
        """Read a plan file; raises :class:`UnknownPlanVersion`, :class:`PlanTampered` or :class:`PlanFileError`."""
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise PlanFileError(f"not a plan file (invalid JSON: {exc})", source) from None
        return cls.from_data(data, source=source)


#: The ``format`` key of a drift report's JSON (deliberately not a plan file's ``format_version``).
DRIFT_FORMAT = "reconciler-drift/v1"
