"""The plan's data: what would change, why it is risky, and how to save and reload it. No I/O.

A :class:`Plan` is immutable. It holds one small frozen object per change (:class:`CreateSchema`,
:class:`UpdateSchema`, :class:`DeleteSchema`, :class:`AddField`, :class:`UpdateField`,
:class:`DeleteField`, :class:`AddRelationship`, :class:`UpdateRelationship`), the things the API
cannot do (:class:`PlanError`, codes ``NA3xx``), and notes that change nothing (unmanaged schemas,
reorders). Risky changes carry :class:`Finding` objects with a stable code from :data:`CODES`.

The JSON plan file (:meth:`Plan.to_json` / :meth:`Plan.from_json`) carries a digest over all of its
content, so a file damaged or edited by hand is refused (:class:`PlanTampered`), and a fingerprint of
every live schema the plan read, so the applier can tell a stale plan (:func:`fingerprint`). The
digest is a plain sha256 that anyone can recompute after an edit: it catches accidents, not intent.
What makes a saved plan safe is the applier, which plans again from the files and the account and
refuses unless that gives the same changes (:func:`reconciler.applier.apply_plan` with ``saved``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar, Literal

from reconciler.errors import ReconcilerError, format_seconds
from reconciler.model import (
    Field,
    Relationship,
    Schema,
)

__all__ = [
    "CODES",
    "FORMAT_VERSION",
    "AddField",
    "AddRelationship",
    "Change",
    "CodeInfo",
    "CreateSchema",
    "Deferred",
    "DeleteField",
    "DeleteSchema",
    "Estimate",
    "Finding",
    "Impact",
    "ImpactQuery",
    "LiveFingerprints",
    "NotAPlanFile",
    "Note",
    "Plan",
    "PlanError",
    "PlanFileError",
    "PlanTampered",
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
# Codes


@dataclass(frozen=True)
class CodeInfo:
    """A stable risk code: ``DL`` data loss, ``BC`` breaking, ``NA`` not allowed by the API."""

    code: str
    title: str
    hint: str

    @property
    def family(self) -> str:
        return self.code[:2]

    @property
    def severity(self) -> str:
        return _SEVERITY[self.family]


_SEVERITY = {"DL": "danger", "BC": "warning", "NA": "error"}

#: Every code the planner emits. Stable: codes are never renumbered or reused (README documents them).
CODES: dict[str, CodeInfo] = {
    c.code: c
    for c in (
        CodeInfo("DL101", "delete a schema: all of its records are deleted",
                 "apply needs --allow-data-loss; to keep the schema, put its file back or add it to protect"),
        CodeInfo("DL102", "delete a field: its values on every record are lost",
                 "apply needs --allow-data-loss; to keep the field, put it back in the file"),
        CodeInfo("BC201", "make a field required while records lack a value",
                 "fill the field on existing records first, or keep required: false"),
        CodeInfo("BC202", "change a schema's slug: integrations using the old slug break",
                 "update every integration that uses the old slug; remove renamed_from once applied"),
        CodeInfo("NA301", "change a field's type",
                 "add a field with a new id and delete the old one"),
        CodeInfo("NA302", "re-use the id of a field that is marked for deletion",
                 "deleted ids are not recycled at once; pick a new id"),
        CodeInfo("NA303", "field id that differs from an existing one only by - / _ or case",
                 "the API counts - and _ (and case) as the same; keep the existing id or pick a distinct one"),
        CodeInfo("NA304", "remove or rename a dropdown/multiselect option",
                 "options are append-only (a rename looks like remove + add); put the option back in the file"),
        CodeInfo("NA305", "hasMany: true on a relationship",
                 "the API accepts only hasMany: false; remove hasMany or set it to false"),
        CodeInfo("NA306", "edit an inherited field or relationship of a child schema",
                 "inherited fields belong to the parent schema: change them there, or add a new field"),
        CodeInfo("NA307", "delete a field of a public or child schema",
                 "the API deletes fields only on private schemas; put the field back in the file"),
        CodeInfo("NA308", "change a relationship's namespace",
                 "not documented as possible; add a relationship with a new id instead"),
        CodeInfo("NA309", "delete a relationship",
                 "the API has no way to delete a relationship; put it back in the file"),
    )
}

#: Codes whose findings get a record count (an :class:`ImpactQuery`).
COUNTED_CODES = frozenset({"DL101", "DL102", "BC201"})


# ---------------------------------------------------------------------------------------------
# Findings and impact


@dataclass(frozen=True)
class Impact:
    """How many records a change touches. ``None`` means unknown (rendered "unknown", never 0)."""

    affected: int | None
    total: int | None

    def to_dict(self) -> dict[str, int | None]:
        return {"affected": self.affected, "total": self.total}


@dataclass(frozen=True)
class ImpactQuery:
    """What to count for a destructive change, as data; :mod:`reconciler.impact` runs it.

    ``filters`` are the records-list query parameters (``None``: count every record of the schema).
    ``what`` is ``"records"`` (all records), ``"not_blank"`` or ``"blank"`` (records whose
    ``field_id`` holds / lacks a value).
    """

    schema_id: str
    what: Literal["records", "not_blank", "blank"]
    field_id: str | None = None

    @property
    def filters(self) -> dict[str, str] | None:
        if self.what == "records" or self.field_id is None:
            return None
        return {f"filters[fields.{self.field_id}][{self.what}]": "true"}

    def to_dict(self) -> dict[str, Any]:
        return {"schema_id": self.schema_id, "what": self.what, "field_id": self.field_id,
                "filters": self.filters}


def _n(value: int | None) -> str:
    return "unknown" if value is None else f"{value:,}"


@dataclass(frozen=True)
class Finding:
    """One risk of a change (or one thing the API cannot do), with its stable code.

    ``impact`` is ``None`` while not counted; an :class:`Impact` with ``None`` parts is "unknown".
    ``subject`` names the thing, e.g. ``online-order.order-link``.
    """

    code: str
    message: str
    subject: str = ""
    impact: Impact | None = None
    acknowledged: bool = False

    @property
    def info(self) -> CodeInfo:
        return CODES[self.code]

    @property
    def title(self) -> str:
        return self.info.title

    @property
    def hint(self) -> str:
        return self.info.hint

    @property
    def severity(self) -> str:
        return self.info.severity

    @property
    def counted(self) -> bool:
        return self.code in COUNTED_CODES

    def impact_text(self) -> str | None:
        """The record count in words, e.g. ``137 of 500 records hold a value that will be lost``."""
        if not self.counted:
            return None
        if self.impact is None:
            return "(impact not counted)"
        a, t = self.impact.affected, self.impact.total
        if self.code == "DL101":
            n = a if a is not None else t
            return "an unknown number of records will be deleted" if n is None else f"all {_n(n)} records will be deleted"
        if a is None:
            share = "an unknown number of records" if t is None else f"an unknown number of {_n(t)} records"
        else:
            share = f"{_n(a)} of {_n(t)} records" if t is not None else f"{_n(a)} of an unknown number of records"
        if self.code == "DL102":
            return f"{share} hold a value that will be lost"
        return f"{share} have no value"

    def line(self) -> str:
        """``DL102 delete field online-order.order-link: 137 of 500 records hold a value that will be lost``."""
        text = f"{self.code} {self.message}"
        impact = self.impact_text()
        if impact is not None:
            text = f"{text} {impact}" if impact.startswith("(") else f"{text}: {impact}"
        if self.acknowledged:
            text += " (acknowledged)"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "severity": self.severity,
            "title": self.title,
            "subject": self.subject,
            "message": self.message,
            "hint": self.hint,
            "impact": None if self.impact is None else self.impact.to_dict(),
            "acknowledged": self.acknowledged,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Finding:
        imp = d.get("impact")
        return cls(
            code=d["code"],
            message=d["message"],
            subject=d.get("subject", ""),
            impact=None if imp is None else Impact(imp.get("affected"), imp.get("total")),
            acknowledged=bool(d.get("acknowledged", False)),
        )


# ---------------------------------------------------------------------------------------------
# Changes


def _dump(obj: Schema | Field | Relationship | None) -> dict[str, Any] | None:
    if obj is None:
        return None
    return obj.model_dump(mode="json", by_alias=True, exclude_defaults=True)


@dataclass(frozen=True, kw_only=True)
class Change:
    """One change. ``action`` is ``+`` / ``~`` / ``-``; :attr:`symbol` is ``!`` when blocked.

    ``before`` is the live object (``None`` for adds), ``after`` the desired one (``None`` for
    deletes); ``changed`` names the properties that differ (``labels.singular``, ``required``,
    ``options``, ``slug`` …).
    """

    kind: ClassVar[str] = "change"
    action: ClassVar[str] = "~"
    noun: ClassVar[str] = "schema"
    _model: ClassVar[type[Any]] = Schema

    slug: str
    schema_id: str | None = None
    before: Any = None
    after: Any = None
    changed: tuple[str, ...] = ()
    findings: tuple[Finding, ...] = ()
    blocked: bool = False
    blocked_reason: str | None = None

    @property
    def subject_id(self) -> str | None:
        """The field or relationship id (``None`` for schema changes)."""
        return None

    @property
    def subject(self) -> str:
        """``online-order`` or ``online-order.order-link``."""
        return self.slug if self.subject_id is None else f"{self.slug}.{self.subject_id}"

    @property
    def symbol(self) -> str:
        return "!" if self.blocked else self.action

    @property
    def key(self) -> str:
        """Stable identity, e.g. ``online-order.order-link:delete-field``."""
        return f"{self.subject}:{self.kind}"

    @property
    def verb(self) -> str:
        return {"+": "create" if self.noun == "schema" else "add", "~": "update", "-": "delete"}[self.action]

    def describe(self) -> str:
        """One line: ``delete field online-order.order-link``."""
        text = f"{self.verb} {self.noun} {self.subject}"
        if self.changed:
            text += f" ({', '.join(self.changed)})"
        return text

    @property
    def impact_query(self) -> ImpactQuery | None:
        """What to count for this change's counted finding (``None``: nothing to count)."""
        return None

    def values(self, prop: str) -> tuple[Any, Any]:
        """``(before, after)`` of a changed property (``labels.singular`` …) in the compared views."""

        def get(obj: Any) -> Any:
            if obj is None:
                return None
            value: Any = obj.comparable()
            for part in prop.split("."):
                value = value.get(part) if isinstance(value, dict) else None
            return value

        return get(self.before), get(self.after)

    @property
    def data_loss(self) -> bool:
        return any(f.code.startswith("DL") for f in self.findings)

    def with_impact(self, impact: Impact | None) -> Change:
        findings = tuple(dataclasses.replace(f, impact=impact) if f.counted else f for f in self.findings)
        return dataclasses.replace(self, findings=findings)

    def to_dict(self) -> dict[str, Any]:
        q = self.impact_query
        out: dict[str, Any] = {
            "kind": self.kind,
            "key": self.key,
            "action": self.action,
            "slug": self.slug,
            "schema_id": self.schema_id,
        }
        out.update(self._extra_to_dict())
        out.update({
            "changed": list(self.changed),
            "blocked": self.blocked,
            "blocked_reason": self.blocked_reason,
            "describe": self.describe(),
            "findings": [f.to_dict() for f in self.findings],
            "impact_query": None if q is None else q.to_dict(),
            "before": _dump(self.before),
            "after": _dump(self.after),
        })
        return out

    def _extra_to_dict(self) -> dict[str, Any]:
        return {}

    @classmethod
    def _extra_from_dict(cls, d: Mapping[str, Any]) -> dict[str, Any]:
        return {}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Change:
        sub = CHANGE_KINDS[d["kind"]]
        model = sub._model

        def load(v: Any) -> Any:
            return None if v is None else model.model_validate(v)

        return sub(
            slug=d["slug"],
            schema_id=d.get("schema_id"),
            before=load(d.get("before")),
            after=load(d.get("after")),
            changed=tuple(d.get("changed", ())),
            findings=tuple(Finding.from_dict(f) for f in d.get("findings", ())),
            blocked=bool(d.get("blocked", False)),
            blocked_reason=d.get("blocked_reason"),
            **sub._extra_from_dict(d),
        )


@dataclass(frozen=True, kw_only=True)
class CreateSchema(Change):
    """A new schema with all its fields and relationships (one POST). ``after`` is the desired Schema."""

    kind: ClassVar[str] = "create-schema"
    action: ClassVar[str] = "+"
    before: None = None
    after: Schema | None = None


@dataclass(frozen=True, kw_only=True)
class UpdateSchema(Change):
    """Schema labels/description, and the slug when renamed (``renamed_from`` is the old slug)."""

    kind: ClassVar[str] = "update-schema"
    action: ClassVar[str] = "~"
    before: Schema | None = None
    after: Schema | None = None
    renamed_from: str | None = None

    def describe(self) -> str:
        text = super().describe()
        return f"{text}, renamed from {self.renamed_from}" if self.renamed_from else text

    def _extra_to_dict(self) -> dict[str, Any]:
        return {"renamed_from": self.renamed_from}

    @classmethod
    def _extra_from_dict(cls, d: Mapping[str, Any]) -> dict[str, Any]:
        return {"renamed_from": d.get("renamed_from")}


@dataclass(frozen=True, kw_only=True)
class DeleteSchema(Change):
    """Delete a live schema that is not in the files (``prune``). All its records go (DL101)."""

    kind: ClassVar[str] = "delete-schema"
    action: ClassVar[str] = "-"
    before: Schema | None = None
    after: None = None

    @property
    def impact_query(self) -> ImpactQuery | None:
        if self.schema_id is None:
            return None
        return ImpactQuery(self.schema_id, "records")


@dataclass(frozen=True, kw_only=True)
class _FieldChange(Change):
    noun: ClassVar[str] = "field"
    _model: ClassVar[type[Any]] = Field
    field_id: str = ""
    before: Field | None = None
    after: Field | None = None

    @property
    def subject_id(self) -> str | None:
        return self.field_id

    def _extra_to_dict(self) -> dict[str, Any]:
        return {"field_id": self.field_id}

    @classmethod
    def _extra_from_dict(cls, d: Mapping[str, Any]) -> dict[str, Any]:
        return {"field_id": d["field_id"]}


@dataclass(frozen=True, kw_only=True)
class AddField(_FieldChange):
    """A new field on an existing schema. ``after`` is the desired Field."""

    kind: ClassVar[str] = "add-field"
    action: ClassVar[str] = "+"

    @property
    def impact_query(self) -> ImpactQuery | None:
        # A new required field: every existing record lacks a value (BC201).
        if self.schema_id is None or not any(f.code == "BC201" for f in self.findings):
            return None
        return ImpactQuery(self.schema_id, "records", self.field_id)


@dataclass(frozen=True, kw_only=True)
class UpdateField(_FieldChange):
    """Labels, description, required, scale, defaultCurrency, and option additions of a field."""

    kind: ClassVar[str] = "update-field"
    action: ClassVar[str] = "~"
    added_options: tuple[str, ...] = ()

    @property
    def impact_query(self) -> ImpactQuery | None:
        if self.schema_id is None or not any(f.code == "BC201" for f in self.findings):
            return None
        return ImpactQuery(self.schema_id, "blank", self.field_id)

    def _extra_to_dict(self) -> dict[str, Any]:
        return {"field_id": self.field_id, "added_options": list(self.added_options)}

    @classmethod
    def _extra_from_dict(cls, d: Mapping[str, Any]) -> dict[str, Any]:
        return {"field_id": d["field_id"], "added_options": tuple(d.get("added_options", ()))}


@dataclass(frozen=True, kw_only=True)
class DeleteField(_FieldChange):
    """Delete a live field that is no longer in the file (its values are lost: DL102)."""

    kind: ClassVar[str] = "delete-field"
    action: ClassVar[str] = "-"

    @property
    def impact_query(self) -> ImpactQuery | None:
        if self.schema_id is None:
            return None
        return ImpactQuery(self.schema_id, "not_blank", self.field_id)


@dataclass(frozen=True, kw_only=True)
class _RelationshipChange(Change):
    noun: ClassVar[str] = "relationship"
    _model: ClassVar[type[Any]] = Relationship
    relationship_id: str = ""
    before: Relationship | None = None
    after: Relationship | None = None

    @property
    def subject_id(self) -> str | None:
        return self.relationship_id

    def _extra_to_dict(self) -> dict[str, Any]:
        return {"relationship_id": self.relationship_id}

    @classmethod
    def _extra_from_dict(cls, d: Mapping[str, Any]) -> dict[str, Any]:
        return {"relationship_id": d["relationship_id"]}


@dataclass(frozen=True, kw_only=True)
class AddRelationship(_RelationshipChange):
    kind: ClassVar[str] = "add-relationship"
    action: ClassVar[str] = "+"


@dataclass(frozen=True, kw_only=True)
class UpdateRelationship(_RelationshipChange):
    """Labels or description of a relationship (its namespace cannot change: NA308)."""

    kind: ClassVar[str] = "update-relationship"
    action: ClassVar[str] = "~"


CHANGE_KINDS: dict[str, type[Change]] = {
    c.kind: c
    for c in (CreateSchema, UpdateSchema, AddField, UpdateField, DeleteField, AddRelationship,
              UpdateRelationship, DeleteSchema)
}
#: The order of kinds within one schema (deterministic plans).
KIND_ORDER: dict[str, int] = {k: i for i, k in enumerate(CHANGE_KINDS)}


@dataclass(frozen=True)
class PlanError:
    """Something the files ask for that the API cannot do (an ``NA`` finding). Plans with errors
    cannot be applied. ``noun``/``subject_id`` say where (``field``/``order-link``)."""

    slug: str
    noun: str
    subject_id: str | None
    finding: Finding

    @property
    def code(self) -> str:
        return self.finding.code

    @property
    def message(self) -> str:
        return self.finding.message

    @property
    def hint(self) -> str:
        return self.finding.hint

    @property
    def subject(self) -> str:
        return self.slug if self.subject_id is None else f"{self.slug}.{self.subject_id}"

    @property
    def key(self) -> str:
        return f"{self.subject}:{self.code}"

    def describe(self) -> str:
        return f"{self.code} {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "slug": self.slug, "noun": self.noun, "subject_id": self.subject_id,
                "finding": self.finding.to_dict()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PlanError:
        return cls(d["slug"], d["noun"], d.get("subject_id"), Finding.from_dict(d["finding"]))


@dataclass(frozen=True)
class Note:
    """Information that changes nothing: ``unmanaged``, ``reorder``, ``rename`` … ``slug`` is the
    schema it is about; ``""`` for the whole plan."""

    slug: str
    kind: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"slug": self.slug, "kind": self.kind, "message": self.message}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Note:
        return cls(d["slug"], d["kind"], d["message"])


# ---------------------------------------------------------------------------------------------
# Digests


def canonical_json(data: Any) -> str:
    """The one JSON text of ``data`` that digests are taken over (sorted keys, no spaces)."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def fingerprint(schema: Schema) -> str:
    """sha256 of a live schema's full JSON (server ids, ``updatedTimestamp``, deleted fields included).

    pydantic's serializer (in Rust) writes the model's fields in their declared order: the same
    model always gives the same text, at a third of the cost of ``canonical_json`` of a dump.
    The schema's opaque fields (types the model does not know), left out of its dump, are hashed
    after it when it has some.
    """
    h = hashlib.sha256(schema.model_dump_json(by_alias=True).encode())
    if schema.opaque_fields:
        h.update(b"\nopaque:")
        h.update(json.dumps([f.model_dump(mode="json") for f in schema.opaque_fields], sort_keys=True).encode())
    return h.hexdigest()


class LiveFingerprints(Mapping[str, str]):
    """``slug -> fingerprint`` of the live schemas a plan read, each hashed when first asked for.

    Only a saved plan (the plan file, ``Plan.to_json``) and the staleness check use the values;
    ``reconciler plan`` printing a plan, ``drift`` and ``apply`` of a fresh plan never do, and
    hashing every live schema was a third of planning 1,000 schemas (bench/NOTES.md). The models
    are frozen, so a fingerprint taken later is the one taken at planning time. Compares equal
    to a dict with the same items (a plan read back from its file holds a plain dict).
    """

    __slots__ = ("_done", "_schemas")

    def __init__(self, schemas: Mapping[str, Schema]):
        self._schemas = dict(schemas)
        self._done: dict[str, str] = {}

    def __getitem__(self, slug: str) -> str:
        try:
            return self._done[slug]
        except KeyError:
            fp = self._done[slug] = fingerprint(self._schemas[slug])
            return fp

    def __iter__(self) -> Iterator[str]:
        return iter(self._schemas)

    def __len__(self) -> int:
        return len(self._schemas)

    def __contains__(self, slug: object) -> bool:
        return slug in self._schemas

    def __repr__(self) -> str:
        return repr(dict(self.items()))


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


@dataclass(frozen=True)
class Estimate:
    """What applying a plan costs, counted by :func:`reconciler.applier.estimate`.

    ``requests``: what ``apply`` sends for the plan by default (its reads of the account before the
    stages, the writes, the verification read); ``preflight``: how many more ``apply --preflight``
    sends. ``rate``: the account's requests/s (``None``: no limit, e.g. the embedded sandbox, and
    no time to state); ``pace``: the rate the client keeps, a little below it (its headroom), from
    which the seconds follow. The seconds leave out latency and start-up: "about".
    """

    requests: int
    preflight: int = 0
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

    def line(self) -> str | None:
        """``Apply: about 103 requests, 22 s at 5 req/s.`` (and what ``--preflight`` adds), or
        ``None`` without a rate."""
        if self.rate is None or self.seconds is None:
            return None
        text = (f"Apply: about {self.requests:,} request{'s' if self.requests != 1 else ''}, "
                f"{format_seconds(self.seconds)} at {self.rate:g} req/s.")
        if self.preflight and self.preflight_seconds is not None:
            text += (f" With --preflight: {self.preflight:,} more, about "
                     f"{format_seconds(self.preflight_seconds)} more.")
        return text

    def to_dict(self) -> dict[str, Any]:
        return {"requests": self.requests, "seconds": self.seconds, "rate": self.rate, "pace": self.pace,
                "preflight": {"requests": self.preflight, "seconds": self.preflight_seconds}}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Estimate:
        pre = d.get("preflight") or {}
        rate, pace = d.get("rate"), d.get("pace")
        return cls(requests=int(d["requests"]), preflight=int(pre.get("requests", 0)),
                   rate=None if rate is None else float(rate), pace=None if pace is None else float(pace))


# ---------------------------------------------------------------------------------------------
# The plan


class Deferred:
    """A value worked out when first read: ``Plan(desired_digest=Deferred(fn))`` (the planner's)."""

    __slots__ = ("fn",)

    def __init__(self, fn: Callable[[], Any]):
        self.fn = fn


class _DeferredField:
    """A field of a frozen dataclass that may be given a :class:`Deferred`: it is computed on the
    first read (attribute access, ``==``, ``repr``, ``dataclasses.replace`` …), then kept."""

    def __init__(self, default: Any):
        self.default = default
        self.slot = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.slot = f"_{name}_value"

    def __get__(self, obj: Any, objtype: type | None = None) -> Any:
        if obj is None:
            return self.default  # what dataclasses takes as the field's default
        value = obj.__dict__[self.slot]
        if isinstance(value, Deferred):
            value = obj.__dict__[self.slot] = value.fn()
        return value

    def __set__(self, obj: Any, value: Any) -> None:
        obj.__dict__[self.slot] = value

    def raw(self, obj: Any) -> Any:
        """The value as given, a :class:`Deferred` not worked out."""
        return obj.__dict__[self.slot]


@dataclass(frozen=True)
class Plan:
    """The planned changes, errors and notes, plus what the plan was made from.

    ``desired_digest`` and the values of ``live_fingerprints`` are only needed for the plan file
    (:meth:`to_json`) and the staleness check; the planner gives them deferred (a :class:`Deferred`,
    a :class:`LiveFingerprints`), so printing a plan, ``drift`` or applying a fresh plan never
    hashes the schemas (most of the planner's time before, bench/NOTES.md). Read, they are the
    same strings as always.
    """

    changes: tuple[Change, ...] = ()
    errors: tuple[PlanError, ...] = ()
    notes: tuple[Note, ...] = ()
    narrowed_by: dict[str, list[str]] | None = None
    target: str | None = None
    created_at: str | None = None
    desired_digest: str = _DeferredField("")  # type: ignore[assignment]
    #: slug -> :func:`fingerprint`; from the planner a :class:`LiveFingerprints` (hashed when read)
    live_fingerprints: Mapping[str, str] = dataclasses.field(default_factory=dict)
    #: per schema with changes or errors: how many of its fields/relationships are unchanged
    unchanged: dict[str, dict[str, int]] = dataclasses.field(default_factory=dict)
    format_version: int = FORMAT_VERSION
    #: what applying it costs (set by the CLI, which knows the account's size and rate)
    estimate: Estimate | None = None

    # -- views ---------------------------------------------------------------------------------

    @property
    def summary(self) -> dict[str, int]:
        """``add`` / ``change`` / ``destroy`` (blocked changes not counted), ``blocked``, ``errors``."""
        out = {"add": 0, "change": 0, "destroy": 0, "blocked": 0, "errors": len(self.errors)}
        for c in self.changes:
            if c.blocked:
                out["blocked"] += 1
            else:
                out[{"+": "add", "~": "change", "-": "destroy"}[c.action]] += 1
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

    def summary_line(self) -> str:
        """``Plan: 1 to add, 2 to change, 1 to destroy.`` or ``No changes. The account matches the files.``"""
        s = self.summary
        if not self.changes and not self.errors:
            line = "No changes. The account matches the files."
        else:
            line = f"Plan: {s['add']:,} to add, {s['change']:,} to change, {s['destroy']:,} to destroy."
            if s["blocked"]:
                line += f" {s['blocked']:,} blocked by protect."
            if s["errors"]:
                line += f" {s['errors']:,} {'error' if s['errors'] == 1 else 'errors'}: the API would refuse this plan."
        narrowed = self.narrowed_text()
        if narrowed:
            line += f" Narrowed by {narrowed}."
        return line

    def narrowed_text(self) -> str | None:
        """``--target a --exclude b`` when the plan was narrowed, else ``None``."""
        if not self.narrowed_by:
            return None
        parts = [f"--target {t}" for t in self.narrowed_by.get("targets", ())]
        parts += [f"--exclude {x}" for x in self.narrowed_by.get("excludes", ())]
        return " ".join(parts) or None

    # -- derivations -----------------------------------------------------------------------------

    def with_impacts(self, impacts: Mapping[str, Impact | None]) -> Plan:
        """A new plan whose counted findings carry these impacts (keyed by change key)."""
        changes = tuple(c.with_impact(impacts[c.key]) if c.key in impacts else c for c in self.changes)
        return self._replace(changes=changes)

    def with_notes(self, notes: Iterable[Note]) -> Plan:
        """A new plan with these notes after its own."""
        return self._replace(notes=(*self.notes, *notes))

    def with_estimate(self, estimate: Estimate | None) -> Plan:
        """A new plan that states this apply cost."""
        return self._replace(estimate=estimate)

    def stamped(self, *, created_at: str | None = None, target: str | None = None) -> Plan:
        """A new plan with its creation time and/or target URL set."""
        return self._replace(
            created_at=created_at if created_at is not None else self.created_at,
            target=target if target is not None else self.target,
        )

    def _replace(self, **changes: Any) -> Plan:
        """``dataclasses.replace`` that passes a deferred ``desired_digest`` on still deferred."""
        return dataclasses.replace(self, desired_digest=_DESIRED_DIGEST.raw(self), **changes)

    # -- JSON ------------------------------------------------------------------------------------

    def _body(self) -> dict[str, Any]:
        body = {
            "format_version": self.format_version,
            "target": self.target,
            "created_at": self.created_at,
            "narrowed_by": self.narrowed_by,
            "desired_digest": self.desired_digest,
            "live_fingerprints": dict(sorted(self.live_fingerprints.items())),
            "summary": self.summary,
            "unchanged": dict(sorted(self.unchanged.items())),
            "changes": [c.to_dict() for c in self.changes],
            "errors": [e.to_dict() for e in self.errors],
            "notes": [n.to_dict() for n in self.notes],
        }
        if self.estimate is not None:  # only then: the digest of a plan without one is as before
            body["estimate"] = self.estimate.to_dict()
        return body

    @cached_property
    def digest(self) -> str:
        """sha256 over every other key of the plan file."""
        return _sha256(canonical_json(self._body()))

    def to_dict(self) -> dict[str, Any]:
        body = self._body()
        body["digest"] = self.digest
        return body

    def to_json(self) -> str:
        """The plan file (pretty-printed, keys in a fixed order, ending in a newline)."""
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def from_dict(cls, data: Any, *, source: str | None = None) -> Plan:
        if not isinstance(data, dict):
            raise PlanFileError("not a plan file (expected a JSON object)", source)
        if "format_version" not in data:
            from reconciler.drift import DRIFT_FORMAT  # here: drift imports this module

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
            plan = cls(
                changes=tuple(Change.from_dict(c) for c in data["changes"]),
                errors=tuple(PlanError.from_dict(e) for e in data["errors"]),
                notes=tuple(Note.from_dict(n) for n in data["notes"]),
                narrowed_by=data.get("narrowed_by"),
                target=data.get("target"),
                created_at=data.get("created_at"),
                desired_digest=data["desired_digest"],
                live_fingerprints=dict(data["live_fingerprints"]),
                unchanged={k: dict(v) for k, v in data.get("unchanged", {}).items()},
                format_version=version,
                estimate=None if data.get("estimate") is None else Estimate.from_dict(data["estimate"]),
            )
        except PlanFileError:
            raise
        except Exception as exc:  # KeyError, TypeError, pydantic's ValidationError …
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
        return cls.from_dict(data, source=source)


_DESIRED_DIGEST: _DeferredField = Plan.__dict__["desired_digest"]
