"""The schema model: one normalised shape for desired (YAML) and live (API) schemas.

Desired and live schemas are parsed into the same classes so the planner compares like with like.
Live-only data (server ids, timestamps, option UUIDs, ``inherited``, ``status``) is kept on the
models but never compared: :meth:`Schema.comparable` and friends give the compared view.

Structural parsing is pydantic's job; the API's business rules (charsets, uniqueness, type-specific
properties) live in :func:`check_schema`, which returns located problems instead of raising, so the
files layer can report every problem of every file with its line and column. These rules are written
from ``docs/api-notes.md`` independently of the sandbox (which plays the vendor and has its own copy).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from operator import attrgetter
from typing import Any

from pydantic import BaseModel, ConfigDict, SerializerFunctionWrapHandler, field_validator, model_serializer
from pydantic import Field as PydField

__all__ = [
    "ACK_CODE_RE",
    "EXCERPT_CHARS",
    "FIELD_ID_RE",
    "ISO_4217",
    "KNOWN_NAMESPACES",
    "SLUG_RE",
    "Field",
    "FieldType",
    "Labels",
    "OpaqueField",
    "Option",
    "Problem",
    "Relationship",
    "Schema",
    "check_schema",
    "check_schemas",
    "excerpt",
    "local_problems",
    "namespace_problems",
    "norm_id",
]

#: Slug rule. The API documents "lower-case words, numbers, and dashes" without a regex or a
#: length limit (docs/api-notes.md U5); this is the strictest reading of that sentence.
SLUG_RE = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
SLUG_MAX = 64  # a guess (U5): no limit is published.
#: Field and relationship ids: letters, digits, ``-`` and ``_`` (docs/api-notes.md §4, official).
FIELD_ID_RE = re.compile(r"^[A-Za-z0-9_-]+$")
FIELD_ID_MAX = 64  # a guess (U5).
#: Relationship namespaces documented by the API (§5). Another schema's slug is also accepted for
#: custom-to-custom relationships, which the docs mention without an example (U10).
KNOWN_NAMESPACES = frozenset({"contacts", "accounts", "deals"})
#: Acknowledgement codes written in files, e.g. ``acknowledge: [DL102]``.
ACK_CODE_RE = re.compile(r"^(DL|BC|NA)\d{3}$")

# ISO 4217 alphabetic codes in current use (for ``defaultCurrency``).
ISO_4217 = frozenset(
    """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL BSD BTN BWP
    BYN BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB
    EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HRK HTG HUF IDR ILS INR IQD IRR ISK JMD JOD
    JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU
    MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD
    RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY
    TTD TWD TZS UAH UGX USD USN UYI UYU UYW UZS VED VES VND VUV WST XAF XAG XAU XBA XBB XBC XBD XCD
    XCG XDR XOF XPD XPF XPT XSU XTS XUA XXX YER ZAR ZMW ZWG ZWL
    """.split()  # noqa: SIM905
)


#: How much of a value an error message quotes: a file that is not a schema (a secret linked in,
#: a 50 MB description) must not end up printed whole in a CI log.
EXCERPT_CHARS = 40


def excerpt(value: object, limit: int = EXCERPT_CHARS) -> str:
    """``repr(value)`` quoting at most ``limit`` characters of it, then ``…``: ``'abc…'``.

    Strings are cut before quoting, so control characters come out escaped (``\\x1b``) and a long
    value costs nothing to describe.
    """
    if isinstance(value, str):
        return repr(value) if len(value) <= limit else repr(value[:limit])[:-1] + "…'"
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


def norm_id(field_id: str) -> str:
    """The form in which the API compares field ids: ``-`` and ``_`` are the same character.

    Case-insensitivity is our guess (docs/api-notes.md U5); the dash/underscore rule is documented.
    """
    return field_id.replace("_", "-").lower()


def _strip_text(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


def _clean_text(value: Any) -> Any:
    """Strip surrounding white space and fold runs of inner white space (labels only)."""
    if isinstance(value, str):
        return " ".join(value.split())
    return value


class FieldType(StrEnum):
    """Field data types. The API says the list "is still being finalized" (docs/api-notes.md §4)."""

    TEXT = "text"
    TEXTAREA = "textarea"
    NUMBER = "number"
    DATE = "date"
    DATETIME = "datetime"
    CURRENCY = "currency"
    DROPDOWN = "dropdown"
    MULTISELECT = "multiselect"
    #: Appears only in the official update example, with ``scale`` (docs/api-notes.md §4). Accepted so a
    #: live schema holding one can be read; treated like ``number`` for ``scale``.
    DECIMAL = "decimal"

    @property
    def has_options(self) -> bool:
        # by value: ``self in (FieldType.DROPDOWN, …)`` looks members up through the enum class and
        # compares with Enum.__eq__, about 8 µs a call, 200,000 calls when planning 1,000 x 50
        return self._value_ in _OPTION_TYPES

    @property
    def has_scale(self) -> bool:
        return self._value_ in _SCALE_TYPES


_OPTION_TYPES = frozenset({"dropdown", "multiselect"})
_MARKED_FOR_DELETION = "marked_for_deletion"
_option_value = attrgetter("value")
_SCALE_TYPES = frozenset({"number", "decimal"})
_MIGRATION_KEYS = ("migrate_from", "convert")


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class Labels(_Model):
    """Human-readable names. White space is folded, so ``" Order "`` equals ``"Order"``."""

    singular: str = PydField(min_length=1)
    plural: str = PydField(min_length=1)

    # plain functions, not classmethods: one Python call per value instead of two (reading a
    # 500-schema account makes some 30,000 of these calls)
    _fold = field_validator("singular", "plural", mode="before")(_clean_text)


class Option(_Model):
    """A dropdown/multiselect choice, matched by ``value``; ``id`` is the server's UUID (live only)."""

    value: str = PydField(min_length=1)
    id: str | None = None

    _strip = field_validator("value", mode="before")(_strip_text)


def _norm_description(value: Any) -> Any:
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return value


class Field(_Model):
    """A schema field. ``protect`` and ``acknowledge`` exist only in files; ``inherited`` and
    ``status`` only in the account."""

    id: str = PydField(min_length=1)
    type: FieldType
    labels: Labels
    description: str | None = None
    required: bool = False
    scale: int | None = None
    default_currency: str | None = PydField(default=None, alias="defaultCurrency")
    options: tuple[Option, ...] | None = None
    # desired-only
    protect: bool = False
    acknowledge: tuple[str, ...] = ()
    #: the field whose values this one takes over (expand/contract), and the conversion's name
    #: (:mod:`reconciler.conversions`). Left out of the model's dumps when unset (see _dump), so
    #: fingerprints and digests of schemas that do not use them stay what they were.
    migrate_from: str | None = None
    convert: str | None = None
    # live-only
    inherited: bool = False
    status: str | None = None

    _norm_description = field_validator("description", mode="before")(_norm_description)

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        if isinstance(data, dict):
            for key in _MIGRATION_KEYS:
                if key in data and data[key] is None:
                    del data[key]
        return data

    @property
    def deleted(self) -> bool:
        """Deleted in the account but still listed with ``showFields=all``."""
        return self.status == _MARKED_FOR_DELETION

    @property
    def option_values(self) -> tuple[str, ...]:
        return tuple(map(_option_value, self.options or ()))

    def comparable(self) -> dict[str, Any]:
        """The properties the planner compares (no live-only or file-only data)."""
        kind = self.type._value_  # not ``.value``: an enum property, slow at 100,000s of calls
        labels = self.labels
        return {
            "type": kind,
            "labels": {"singular": labels.singular, "plural": labels.plural},
            "description": self.description,
            "required": self.required,
            "scale": self.scale,
            "defaultCurrency": self.default_currency,
            "options": sorted(map(_option_value, self.options or ())) if kind in _OPTION_TYPES else None,
        }


class OpaqueField(_Model):
    """A live field of a type :class:`FieldType` does not list (``boolean``, or one the vendor adds
    later: the docs call the type list "still being finalized", docs/api-notes.md §4).

    Kept as read, so the account's other schemas and fields can still be planned: the planner never
    creates, changes or deletes it, and it is never compared or written. ``type`` is the API's raw
    string. Only the account holds these (files refuse unknown types).
    """

    id: str = PydField(min_length=1)
    type: str
    labels: Labels | None = None
    required: bool = False
    inherited: bool = False
    status: str | None = None

    @property
    def deleted(self) -> bool:
        return self.status == _MARKED_FOR_DELETION


class Relationship(_Model):
    """A link from the schema's records to contacts, accounts, deals or another schema."""

    id: str = PydField(min_length=1)
    namespace: str = PydField(min_length=1)
    labels: Labels
    description: str | None = None
    has_many: bool = PydField(default=False, alias="hasMany")
    # live-only
    inherited: bool = False

    _norm_description = field_validator("description", mode="before")(_norm_description)

    def comparable(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "labels": {"singular": self.labels.singular, "plural": self.labels.plural},
            "description": self.description,
            "hasMany": self.has_many,
        }


class Schema(_Model):
    """A Custom Object schema, desired or live."""

    slug: str = PydField(min_length=1)
    labels: Labels
    description: str | None = None
    fields: tuple[Field, ...] = ()
    relationships: tuple[Relationship, ...] = ()
    # live-only: fields of a type the model does not know, left alone (see OpaqueField). Not in the
    # model's dumps (a desired schema never has any, and its digest stays what it was);
    # reconciler.plan.fingerprint adds them for a live schema that has some.
    opaque_fields: tuple[OpaqueField, ...] = PydField(default=(), exclude=True)
    # desired-only
    protect: bool = False
    renamed_from: str | None = None
    acknowledge: tuple[str, ...] = ()
    # live-only (never compared)
    id: str | None = None
    visibility: str | None = None
    customized: bool | None = None
    parent_id: str | None = PydField(default=None, alias="parentId")
    app_id: str | None = PydField(default=None, alias="appId")
    created_timestamp: str | None = PydField(default=None, alias="createdTimestamp")
    updated_timestamp: str | None = PydField(default=None, alias="updatedTimestamp")

    _norm_description = field_validator("description", mode="before")(_norm_description)

    @property
    def is_child(self) -> bool:
        return self.parent_id is not None

    @property
    def is_public(self) -> bool:
        return self.visibility == "public"

    @property
    def active_fields(self) -> tuple[Field, ...]:
        """Fields not marked for deletion."""
        return tuple([f for f in self.fields if f.status != _MARKED_FOR_DELETION])  # not ``.deleted``: hot

    def field(self, field_id: str) -> Field | None:
        """The active field with this id, if any."""
        for f in self.fields:
            if f.id == field_id and not f.deleted:
                return f
        return None

    @property
    def active_opaque_fields(self) -> tuple[OpaqueField, ...]:
        """Opaque fields not marked for deletion."""
        return tuple(f for f in self.opaque_fields if not f.deleted)

    def relationship(self, rel_id: str) -> Relationship | None:
        for r in self.relationships:
            if r.id == rel_id:
                return r
        return None

    def comparable_own(self) -> dict[str, Any]:
        """The schema's own compared properties: :meth:`comparable` without fields and relationships."""
        return {
            "slug": self.slug,
            "labels": {"singular": self.labels.singular, "plural": self.labels.plural},
            "description": self.description,
        }

    def comparable(self) -> dict[str, Any]:
        """Everything the planner compares, order-insensitive (the API cannot reorder)."""
        return {
            **self.comparable_own(),
            "fields": {f.id: f.comparable() for f in self.active_fields},
            "relationships": {r.id: r.comparable() for r in self.relationships},
        }


# --------------------------------------------------------------------------------------------
# The API's rules, checked locally. Each problem carries a location inside the schema document
# (a tuple of keys and list indexes, as in the YAML file) so files.py can point at the node.


@dataclass(frozen=True)
class Problem:
    """A rule the schema breaks. ``loc`` is a path into the file, e.g. ``("fields", 2, "id")``."""

    loc: tuple[str | int, ...]
    message: str


def _labels_problems(
    items: Iterable[tuple[int, Labels]], section: str, what: str
) -> list[Problem]:
    """Labels must be unique case-insensitively within the schema (singular and plural apart)."""
    problems: list[Problem] = []
    for part in ("singular", "plural"):
        seen: dict[str, int] = {}
        for index, labels in items if isinstance(items, list) else list(items):
            key = getattr(labels, part).casefold()
            if key in seen:
                problems.append(
                    Problem(
                        (section, index, "labels", part),
                        f"{what} label {excerpt(getattr(labels, part))} is already used by "
                        f"{section}[{seen[key]}] (labels must be unique, case-insensitively)",
                    )
                )
            else:
                seen[key] = index
    return problems


def check_schema(schema: Schema, known_slugs: Iterable[str] = ()) -> list[Problem]:
    """The API's validation rules, mirrored locally. Empty list: the schema is acceptable.

    ``known_slugs`` are other schemas a relationship may point at (custom-to-custom, U10).
    """
    return [*local_problems(schema), *namespace_problems(schema, known_slugs)]


def namespace_problems(schema: Schema, known_slugs: Iterable[str] = ()) -> list[Problem]:
    """The one rule that needs the other schemas: each relationship's namespace must exist."""
    slugs = set(known_slugs)
    return [
        Problem(
            ("relationships", i, "namespace"),
            f"unknown namespace {excerpt(r.namespace)}: use contacts, accounts, deals or another schema's slug",
        )
        for i, r in enumerate(schema.relationships)
        if r.namespace not in KNOWN_NAMESPACES and r.namespace not in slugs
    ]


def local_problems(schema: Schema) -> list[Problem]:
    """Every rule of :func:`check_schema` that the schema alone decides (all but the namespaces)."""
    problems: list[Problem] = []
    if not SLUG_RE.match(schema.slug):
        problems.append(
            Problem(("slug",), f"slug {excerpt(schema.slug)} must be lower-case words and digits joined by '-'")
        )
    elif len(schema.slug) > SLUG_MAX:
        problems.append(Problem(("slug",), f"slug is longer than {SLUG_MAX} characters"))
    if schema.renamed_from is not None and schema.renamed_from == schema.slug:
        problems.append(Problem(("renamed_from",), "renamed_from names the schema's own slug"))
    for loc, codes in [(("acknowledge",), schema.acknowledge)] + [
        (("fields", i, "acknowledge"), f.acknowledge) for i, f in enumerate(schema.fields)
    ]:
        for j, code in enumerate(codes):
            if not ACK_CODE_RE.match(code):
                problems.append(Problem((*loc, j), f"{excerpt(code)} is not a risk code (like DL102)"))

    seen_ids: dict[str, int] = {}
    for i, f in enumerate(schema.fields):
        if not FIELD_ID_RE.match(f.id):
            problems.append(
                Problem(("fields", i, "id"), f"field id {excerpt(f.id)} may hold only letters, digits, '-' and '_'")
            )
        elif len(f.id) > FIELD_ID_MAX:
            problems.append(Problem(("fields", i, "id"), f"field id is longer than {FIELD_ID_MAX} characters"))
        key = norm_id(f.id)
        if key in seen_ids:
            other = schema.fields[seen_ids[key]].id
            same = "is declared twice" if other == f.id else f"clashes with {excerpt(other)} ('-' and '_' count as the same)"
            problems.append(Problem(("fields", i, "id"), f"field id {excerpt(f.id)} {same}"))
        else:
            seen_ids[key] = i
        problems.extend(_field_type_problems(i, f))
    problems.extend(_migration_problems(schema))
    problems.extend(_labels_problems(list(enumerate(f.labels for f in schema.fields)), "fields", "field"))

    rel_ids: dict[str, int] = {}
    for i, r in enumerate(schema.relationships):
        if not FIELD_ID_RE.match(r.id):
            problems.append(
                Problem(
                    ("relationships", i, "id"),
                    f"relationship id {excerpt(r.id)} may hold only letters, digits, '-' and '_'",
                )
            )
        if r.id in rel_ids:
            problems.append(Problem(("relationships", i, "id"), f"relationship id {excerpt(r.id)} is declared twice"))
        rel_ids.setdefault(r.id, i)
        if r.has_many:
            problems.append(
                Problem(
                    ("relationships", i, "hasMany"),
                    "hasMany: true is refused by the API (Relationship hasMany value should be set to false)",
                )
            )
    return problems


def _field_type_problems(i: int, f: Field) -> list[Problem]:
    problems: list[Problem] = []
    t = f.type
    if f.scale is not None:
        if not t.has_scale:
            problems.append(Problem(("fields", i, "scale"), f"scale applies only to number fields, not {t.value}"))
        elif f.scale < 0:
            problems.append(Problem(("fields", i, "scale"), "scale must be 0 or more"))
    if f.default_currency is not None:
        if t is not FieldType.CURRENCY:
            problems.append(
                Problem(("fields", i, "defaultCurrency"), f"defaultCurrency applies only to currency fields, not {t.value}")
            )
        elif f.default_currency not in ISO_4217:
            problems.append(
                Problem(("fields", i, "defaultCurrency"), f"{excerpt(f.default_currency)} is not an ISO 4217 currency code")
            )
    if t.has_options:
        if not f.options:
            problems.append(Problem(("fields", i, "type"), f"a {t.value} field needs a non-empty options list"))
        else:
            seen: dict[str, int] = {}
            for j, o in enumerate(f.options):
                if o.value in seen:
                    problems.append(Problem(("fields", i, "options", j), f"option {excerpt(o.value)} is listed twice"))
                seen.setdefault(o.value, j)
    elif f.options is not None:
        problems.append(Problem(("fields", i, "options"), f"options apply only to dropdown and multiselect, not {t.value}"))
    return problems


def _migration_problems(schema: Schema) -> list[Problem]:
    """``migrate_from``/``convert``: the conversion must be known and, when the old field is declared
    in the same file, fit the pair of types (when it is not, the planner checks the account's field)."""
    from reconciler.conversions import pair_problem

    problems: list[Problem] = []
    declared = {norm_id(f.id): f for f in schema.fields}
    for i, f in enumerate(schema.fields):
        if f.migrate_from is None:
            if f.convert is not None:
                problems.append(Problem(("fields", i, "convert"), "convert applies only with migrate_from"))
            continue
        if norm_id(f.migrate_from) == norm_id(f.id):
            problems.append(Problem(("fields", i, "migrate_from"), "migrate_from names the field itself"))
            continue
        old = declared.get(norm_id(f.migrate_from))
        if old is not None and old.migrate_from is not None:
            problems.append(Problem(("fields", i, "migrate_from"),
                                    f"migrate_from names {excerpt(old.id)}, which migrates from another field itself"))
            continue
        message = pair_problem(old.type.value if old is not None else None, f.type.value, f.convert)
        if message is not None:
            where = "convert" if f.convert is not None else "migrate_from"
            problems.append(Problem(("fields", i, where), message))
    return problems


def check_schemas(schemas: Iterable[Schema]) -> dict[str, list[Problem]]:
    """:func:`check_schema` for a set of schemas that may relate to each other, keyed by slug."""
    items = list(schemas)
    slugs = {s.slug for s in items}
    return {s.slug: check_schema(s, known_slugs=slugs) for s in items}
