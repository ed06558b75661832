"""The plan's changes as typed, frozen data: one class per change kind, a discriminated union on ``kind``.

Each kind says what it compares (:attr:`ChangeBase.compares`, the :class:`~reconciler.props.Prop`
members the planner looks at) and, as data, what to count for its risk (:attr:`impact_query`). What
is done with a change lives with the job, one function per job with an exhaustive ``match`` over
:data:`Change` (a type checker reports a kind it forgets): its risks in :mod:`reconciler.risks`,
its API request in :mod:`reconciler.stages`, its wording in :mod:`reconciler.render` and its drift
reading in :mod:`reconciler.drift`. ``tests/test_change_kinds.py`` checks that every kind has each.

The JSON of these models is the plan file's: :class:`_Data` writes the keys in a fixed order, the
derived ones (``key``, ``action``, ``describe``, a finding's ``severity``/``title``/``hint``)
included, and reading ignores the derived keys (they are worked out again).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal, TypeAlias

from pydantic import (
    BaseModel,
    ConfigDict,
    SerializerFunctionWrapHandler,
    computed_field,
    field_serializer,
    model_serializer,
)
from pydantic import Field as PydField

from reconciler.codes import CODES, COUNTED_CODES, Code, Severity
from reconciler.model import Field, Relationship, Schema
from reconciler.props import FIELD_PROPS, RELATIONSHIP_PROPS, SCHEMA_PROPS, Prop

__all__ = [
    "CHANGE_KINDS",
    "KIND_ORDER",
    "Action",
    "AddField",
    "AddRelationship",
    "Change",
    "ChangeBase",
    "CopyCount",
    "CopyField",
    "CreateSchema",
    "DeleteField",
    "DeleteSchema",
    "Finding",
    "Impact",
    "ImpactQuery",
    "Note",
    "NoteKind",
    "Noun",
    "PlanError",
    "UpdateField",
    "UpdateRelationship",
    "UpdateSchema",
]


class Action(StrEnum):
    """What a change does, as the plan's symbols: ``+`` add, ``~`` update in place, ``-`` delete;
    ``!`` is the symbol of a change blocked by ``protect`` (its action stays what it was)."""

    ADD = "+"
    UPDATE = "~"
    DELETE = "-"
    BLOCKED = "!"
    #: a field's record values copied into another field (``migrate_from``); counted as a change
    COPY = "»"


class Noun(StrEnum):
    SCHEMA = "schema"
    FIELD = "field"
    RELATIONSHIP = "relationship"


class _Data(BaseModel):
    """Frozen, and written with its keys in ``_order`` (the plan file's order) when it sets one.

    The serializers have no return annotation on purpose: pydantic then publishes the model's own
    JSON Schema for what they write (an annotation would replace it with that type's)."""

    model_config = ConfigDict(frozen=True, extra="ignore", json_schema_serialization_defaults_required=True)
    _order: ClassVar[tuple[str, ...]] = ()

    @model_serializer(mode="wrap")
    def _ordered(self, handler: SerializerFunctionWrapHandler):  # type: ignore[no-untyped-def]  # see _Data
        return self._in_order(handler(self))

    def _in_order(self, data: Any) -> Any:
        if not self._order or not isinstance(data, dict):
            return data
        return {k: data[k] for k in self._order if k in data}


# ---------------------------------------------------------------------------------------------
# Findings and impact


class Impact(_Data):
    """How many records a change touches. ``None`` means unknown (rendered "unknown", never 0)."""

    affected: int | None = None
    total: int | None = None

    def __init__(self, affected: int | None = None, total: int | None = None, **data: Any) -> None:
        super().__init__(**{"affected": affected, "total": total, **data})


class ImpactQuery(_Data):
    """What to count for a destructive change, as data; :mod:`reconciler.impact` runs it.

    ``what`` is ``"records"`` (all records of the schema), ``"not_blank"`` or ``"blank"`` (records
    whose ``field_id`` holds / lacks a value); :attr:`filters` are the records-list query parameters
    (``None``: count every record).
    """

    schema_id: str
    what: Literal["records", "not_blank", "blank"]
    field_id: str | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def filters(self) -> dict[str, str] | None:
        if self.what == "records" or self.field_id is None:
            return None
        return {f"filters[fields.{self.field_id}][{self.what}]": "true"}


class Finding(_Data):
    """One risk of a change (or one thing the API cannot do), with its stable code.

    ``impact`` is ``None`` while not counted; an :class:`Impact` with ``None`` parts is "unknown".
    ``subject`` names the thing, e.g. ``online-order.order-link``.
    """

    _order = ("code", "severity", "title", "subject", "message", "hint", "impact", "acknowledged")

    code: Code
    message: str
    subject: str = ""
    impact: Impact | None = None
    acknowledged: bool = False

    @computed_field  # type: ignore[prop-decorator]
    @property
    def severity(self) -> Severity:
        return self.code.severity

    @computed_field  # type: ignore[prop-decorator]
    @property
    def title(self) -> str:
        return CODES[self.code].title

    @computed_field  # type: ignore[prop-decorator]
    @property
    def hint(self) -> str:
        return CODES[self.code].hint

    @property
    def counted(self) -> bool:
        return self.code in COUNTED_CODES


# ---------------------------------------------------------------------------------------------
# Changes


def _dump(obj: BaseModel | None) -> dict[str, Any] | None:
    return None if obj is None else obj.model_dump(mode="json", by_alias=True, exclude_defaults=True)


class ChangeBase(_Data):
    """What every change has. ``before`` is the live object (``None`` for adds), ``after`` the
    desired one (``None`` for deletes); ``changed`` the properties that differ."""

    _order = ("kind", "key", "action", "slug", "schema_id", "renamed_from", "field_id", "from_field", "conversion",
              "added_options",
              "relationship_id", "changed", "blocked", "blocked_reason", "describe", "findings",
              "impact_query", "records", "before", "after")
    #: what the change does (its symbol is ``!`` when blocked)
    act: ClassVar[Action]
    noun: ClassVar[Noun]
    #: the properties the planner compares for this kind (none: it is found by presence alone)
    compares: ClassVar[tuple[Prop, ...]] = ()

    slug: str
    schema_id: str | None = None
    changed: tuple[Prop, ...] = ()
    findings: tuple[Finding, ...] = ()
    blocked: bool = False
    blocked_reason: str | None = None

    @field_serializer("before", "after", mode="wrap", check_fields=False)
    def _whole(self, value: Any, handler: SerializerFunctionWrapHandler):  # type: ignore[no-untyped-def]
        """A schema, field or relationship as pydantic writes it, without its default values."""
        return _dump(value)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def action(self) -> Action:
        return self.act

    @property
    def subject_id(self) -> str | None:
        """The field or relationship id (``None`` for schema changes)."""
        return None

    @property
    def subject(self) -> str:
        """``online-order`` or ``online-order.order-link``."""
        return self.slug if self.subject_id is None else f"{self.slug}.{self.subject_id}"

    @property
    def symbol(self) -> Action:
        return Action.BLOCKED if self.blocked else self.act

    @computed_field  # type: ignore[prop-decorator]
    @property
    def key(self) -> str:
        """Stable identity, e.g. ``online-order.order-link:delete-field``."""
        return f"{self.subject}:{getattr(self, 'kind', '')}"

    @property
    def verb(self) -> str:
        if self.act is Action.COPY:
            return "copy"
        if self.act is Action.ADD:
            return "create" if self.noun is Noun.SCHEMA else "add"
        return "update" if self.act is Action.UPDATE else "delete"

    @computed_field  # type: ignore[prop-decorator]
    @property
    def describe(self) -> str:
        """One line, the change's name in refusals and progress: ``delete field online-order.order-link``."""
        text = f"{self.verb} {self.noun} {self.subject}"
        if self.changed:
            text += f" ({', '.join(self.changed)})"
        return text

    @computed_field  # type: ignore[prop-decorator]
    @property
    def impact_query(self) -> ImpactQuery | None:
        """What to count for this change's counted finding (``None``: nothing to count)."""
        return None

    def values(self, prop: Prop) -> tuple[Any, Any]:
        """``(before, after)`` of a property, as compared."""
        return prop.read(getattr(self, "before", None)), prop.read(getattr(self, "after", None))

    @property
    def data_loss(self) -> bool:
        return any(f.code.data_loss for f in self.findings)

    def with_impact(self, impact: Impact | None) -> ChangeBase:
        findings = tuple(f.model_copy(update={"impact": impact}) if f.counted else f for f in self.findings)
        return self.model_copy(update={"findings": findings})

    def _counted(self, query: ImpactQuery) -> ImpactQuery | None:
        return query if any(f.counted for f in self.findings) else None


class CreateSchema(ChangeBase):
    """A new schema with all its fields and relationships (one POST)."""

    kind: Literal["create-schema"] = "create-schema"
    act: ClassVar[Action] = Action.ADD
    noun: ClassVar[Noun] = Noun.SCHEMA
    before: None = None
    after: Schema


class UpdateSchema(ChangeBase):
    """Schema labels/description, and the slug when renamed (``renamed_from`` is the old slug)."""

    kind: Literal["update-schema"] = "update-schema"
    act: ClassVar[Action] = Action.UPDATE
    noun: ClassVar[Noun] = Noun.SCHEMA
    compares: ClassVar[tuple[Prop, ...]] = SCHEMA_PROPS
    renamed_from: str | None = None
    before: Schema
    after: Schema

    @computed_field  # type: ignore[prop-decorator]
    @property
    def describe(self) -> str:
        text = super().describe
        return f"{text}, renamed from {self.renamed_from}" if self.renamed_from else text

    @property
    def renames(self) -> bool:
        return Prop.SLUG in self.changed


class DeleteSchema(ChangeBase):
    """Delete a live schema that is not in the files (``prune``). All its records go (DL101)."""

    kind: Literal["delete-schema"] = "delete-schema"
    act: ClassVar[Action] = Action.DELETE
    noun: ClassVar[Noun] = Noun.SCHEMA
    before: Schema
    after: None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def impact_query(self) -> ImpactQuery | None:
        if self.schema_id is None:
            return None
        return ImpactQuery(schema_id=self.schema_id, what="records")


class _FieldChange(ChangeBase):
    noun: ClassVar[Noun] = Noun.FIELD
    field_id: str

    @property
    def subject_id(self) -> str | None:
        return self.field_id


class AddField(_FieldChange):
    """A new field on an existing schema."""

    kind: Literal["add-field"] = "add-field"
    act: ClassVar[Action] = Action.ADD
    before: None = None
    after: Field

    @computed_field  # type: ignore[prop-decorator]
    @property
    def impact_query(self) -> ImpactQuery | None:
        # a new required field: every existing record lacks a value (BC201)
        if self.schema_id is None:
            return None
        return self._counted(ImpactQuery(schema_id=self.schema_id, what="records", field_id=self.field_id))


class UpdateField(_FieldChange):
    """Labels, description, required, scale, defaultCurrency, and option additions of a field."""

    kind: Literal["update-field"] = "update-field"
    act: ClassVar[Action] = Action.UPDATE
    compares: ClassVar[tuple[Prop, ...]] = (*FIELD_PROPS, Prop.OPTIONS)
    added_options: tuple[str, ...] = ()
    before: Field
    after: Field

    @computed_field  # type: ignore[prop-decorator]
    @property
    def impact_query(self) -> ImpactQuery | None:
        if self.schema_id is None:
            return None
        return self._counted(ImpactQuery(schema_id=self.schema_id, what="blank", field_id=self.field_id))


class DeleteField(_FieldChange):
    """Delete a live field that is no longer in the file (its values are lost: DL102)."""

    kind: Literal["delete-field"] = "delete-field"
    act: ClassVar[Action] = Action.DELETE
    before: Field
    after: None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def impact_query(self) -> ImpactQuery | None:
        if self.schema_id is None:
            return None
        return ImpactQuery(schema_id=self.schema_id, what="not_blank", field_id=self.field_id)


class CopyCount(_Data):
    """What the plan read of a copy's records (:mod:`reconciler.copycount`).

    ``records``: records whose old field holds a value; ``convertible``: of those, the ones the
    conversion carries; ``to_copy``: of those, the ones whose new field does not hold the converted
    value yet (the writes apply makes); ``unconvertible`` with up to 5 ``samples`` (excerpts of the
    values, with why). ``requests``: what the copy sends when nothing fails; ``rate``: the account's
    requests/s the time is stated at (``None``: no limit).
    """

    _order = ("records", "convertible", "to_copy", "unconvertible", "samples", "requests", "rate")

    records: int
    convertible: int
    to_copy: int
    unconvertible: int = 0
    samples: tuple[str, ...] = ()
    requests: int = 0
    rate: float | None = None

    @property
    def complete(self) -> bool:
        """Nothing left to write: every convertible value is in the new field."""
        return self.to_copy == 0

    @property
    def seconds(self) -> float | None:
        return None if not self.rate else round(self.requests / self.rate, 1)


class CopyField(_FieldChange):
    """Copy the record values of field ``from_field`` into the new field ``field_id`` (a field
    declared with ``migrate_from``), converted by ``conversion`` (:mod:`reconciler.conversions`).
    ``before`` is the old (live) field, ``after`` the new (desired) one; ``records`` what the plan
    read of the records (``None``: not counted)."""

    kind: Literal["copy-field"] = "copy-field"
    act: ClassVar[Action] = Action.COPY
    from_field: str
    conversion: str
    before: Field
    after: Field
    records: CopyCount | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def describe(self) -> str:
        return f"copy field {self.slug}.{self.from_field} -> {self.field_id}"

    def with_copy(self, copy: CopyCount) -> CopyField:
        """With the records counted: DL103 carries the unconvertible values' count, or goes when none."""
        findings = tuple(
            f.model_copy(update={"impact": Impact(copy.unconvertible, copy.records)}) if f.code is Code.DL103 else f
            for f in self.findings if f.code is not Code.DL103 or copy.unconvertible)
        return self.model_copy(update={"records": copy, "findings": findings})


class _RelationshipChange(ChangeBase):
    noun: ClassVar[Noun] = Noun.RELATIONSHIP
    relationship_id: str

    @property
    def subject_id(self) -> str | None:
        return self.relationship_id


class AddRelationship(_RelationshipChange):
    """A new relationship on an existing schema (or one deferred from a create, see the applier)."""

    kind: Literal["add-relationship"] = "add-relationship"
    act: ClassVar[Action] = Action.ADD
    before: None = None
    after: Relationship


class UpdateRelationship(_RelationshipChange):
    """Labels or description of a relationship (its namespace cannot change: NA308)."""

    kind: Literal["update-relationship"] = "update-relationship"
    act: ClassVar[Action] = Action.UPDATE
    compares: ClassVar[tuple[Prop, ...]] = RELATIONSHIP_PROPS
    before: Relationship
    after: Relationship


#: Every change kind; ``match`` on it with a ``case`` per class and ``assert_never`` after.
Change: TypeAlias = (CreateSchema | UpdateSchema | AddField | UpdateField | CopyField | DeleteField
                     | AddRelationship | UpdateRelationship | DeleteSchema)
#: The union as a plan's field: read by its ``kind``.
AnyChange = Annotated[Change, PydField(discriminator="kind")]

#: kind -> class, in the order of kinds within one schema (deterministic plans).
CHANGE_KINDS: dict[str, type[Change]] = {
    c.model_fields["kind"].default: c
    for c in (CreateSchema, UpdateSchema, AddField, UpdateField, CopyField, DeleteField, AddRelationship,
              UpdateRelationship, DeleteSchema)
}
KIND_ORDER: dict[str, int] = {k: i for i, k in enumerate(CHANGE_KINDS)}


class PlanError(_Data):
    """Something the files ask for that the API cannot do (an ``NA`` finding). Plans with errors
    cannot be applied. ``noun``/``subject_id`` say where (``field``/``order-link``)."""

    _order = ("key", "slug", "noun", "subject_id", "finding")

    slug: str
    noun: Noun
    subject_id: str | None
    finding: Finding

    @property
    def code(self) -> Code:
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

    @computed_field  # type: ignore[prop-decorator]
    @property
    def key(self) -> str:
        return f"{self.subject}:{self.code}"


class NoteKind(StrEnum):
    """What a note is about."""

    UNMANAGED = "unmanaged"  # a live schema not in the files (prune off)
    REORDER = "reorder"  # fields or options in another order than the files' (the API cannot reorder)
    RENAME = "rename"  # a renamed_from that is done, ignored or not in the account
    OPAQUE = "opaque"  # a live field of a type the model does not know
    OPAQUE_DECLARED = "opaque-declared"  # such a field declared in the files
    REQUIRED = "required"  # required differences left alone in an account that ignores required
    IMPACT = "impact"  # record counts not asked for, or refused
    MIGRATE = "migrate"  # a migrate_from whose copy is complete, or that has nothing to copy


class Note(_Data):
    """Information that changes nothing. ``slug`` is the schema it is about; ``""`` for the whole plan."""

    slug: str
    kind: NoteKind
    message: str
