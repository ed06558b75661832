"""The schema file format, defined once: a pydantic model of ``schemas/<slug>.yaml``.

:class:`SchemaFile` (``extra="forbid"``, ``Literal`` apiVersion and kind, the fields a discriminated
union on ``type``: one model a field type) is the source of

* the JSON Schema editors use (:mod:`reconciler.json_schema` generates it from this model);
* the structural check of a file, with its messages (:mod:`reconciler.filecheck`): unknown keys
  with their "did you mean" hint (:func:`model_at`) and the keys the account sets
  (:func:`account_keys`), types, required keys, the apiVersion and kind;
* the canonical key order and style (:func:`key_order`, :func:`flow_at`), for writing and ``fmt``;
* the mapping to the domain model, both ways (:func:`domain_input`, :func:`file_data`).

Python validation is structural. The rules the API applies (charsets, lengths, ISO codes, unique
ids and options, ``hasMany: false``, which properties a field type takes) are the domain's
(:func:`reconciler.model.local_problems`), reported with their own located messages and checked on
every schema, whatever its source. The JSON Schema states the ones it can express, through
:class:`JsonOnly`, from the same constants. A type-specific property on the wrong type (``scale`` on
a text field) breaks a field model here and a domain rule there: the domain's message is the one
reported (see :mod:`reconciler.filecheck`).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from types import UnionType
from typing import Annotated, Any, ClassVar, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, create_model
from pydantic import Field as PydField

from reconciler.conversions import CONVERSIONS
from reconciler.fileerrors import (
    Loc,
)
from reconciler.model import (
    ACK_CODE_RE,
    FIELD_ID_MAX,
    FIELD_ID_RE,
    ISO_4217,
    SLUG_MAX,
    SLUG_RE,
    Field,
    FieldType,
    Labels,
    Relationship,
    Schema,
)

__all__ = [
    "API_VERSION",
    "FIELD_MODELS",
    "KIND",
    "FieldFile",
    "JsonOnly",
    "LabelsFile",
    "RelationshipFile",
    "SchemaFile",
    "account_keys",
    "domain_input",
    "file_data",
    "flow_at",
    "key_order",
    "model_at",
]

API_VERSION = "reconciler/v1"
KIND = "CustomObjectSchema"


class JsonOnly:
    """Constraints stated in the JSON Schema only (``Annotated[str, JsonOnly(pattern=…)]``).

    They are rules of the domain model, which reports them with located messages and checks them
    on every schema; the JSON Schema repeats them for editors.
    """

    def __init__(self, **constraints: Any) -> None:
        self.constraints = constraints

    def __get_pydantic_json_schema__(self, core_schema: Any, handler: Any) -> dict[str, Any]:
        schema = handler(core_schema)
        schema.update(self.constraints)
        return dict(schema)


_NOT_BLANK = r"\S"

Text = Annotated[str, JsonOnly(minLength=1, pattern=_NOT_BLANK)]
Slug = Annotated[str, JsonOnly(minLength=1, maxLength=SLUG_MAX, pattern=SLUG_RE.pattern),
                 PydField(description="Lower-case words and digits joined by '-'.")]
FieldId = Annotated[str, JsonOnly(minLength=1, maxLength=FIELD_ID_MAX, pattern=FIELD_ID_RE.pattern),
                    PydField(description="Letters, digits, '-' and '_' ('-' and '_' count as the same).")]
AckCode = Annotated[str, JsonOnly(pattern=ACK_CODE_RE.pattern), PydField(description="A risk code, like DL102.")]
Currency = Annotated[str, JsonOnly(enum=sorted(ISO_4217))]
Scale = Annotated[int, JsonOnly(minimum=0)]
OptionValues = Annotated[tuple[Text, ...], JsonOnly(minItems=1, uniqueItems=True)]


class _FileModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: How messages name one of these: ``unknown key 'x' in a field``.
    what: ClassVar[str]
    #: The domain model it maps to: its attributes that the file lacks are set by the account.
    domain: ClassVar[type[BaseModel]]


class LabelsFile(_FileModel):
    """Human-readable names (white space is folded)."""

    what = "labels"
    domain = Labels

    singular: Text
    plural: Text


class _FieldFile(_FileModel):
    what = "a field"
    domain = Field


def _field_model(t: FieldType) -> type[_FieldFile]:
    """The model of a field of type ``t``. Properties of other types are there, null only (so an
    editor completes them and ``scale: null`` is accepted everywhere); one key order for all types."""
    def only(what: str) -> tuple[Any, Any]:
        return (None, PydField(default=None, description=f"Only on {what} fields."))

    scale_types = " and ".join(x.value for x in FieldType if x.has_scale)
    option_types = " and ".join(x.value for x in FieldType if x.has_options)
    spec: dict[str, Any] = {
        "id": (FieldId, ...),
        "type": (Literal[t.value], ...),
        "labels": (LabelsFile, ...),
        "description": (str | None, None),
        "required": (bool, False),
        "scale": (Scale | None, None) if t.has_scale else only(scale_types),
        "defaultCurrency": ((Currency | None, PydField(default=None, description="ISO 4217 code."))
                            if t is FieldType.CURRENCY else only("currency")),
        "options": ((OptionValues, PydField(description="Option values; the API assigns the ids. Append-only."))
                    if t.has_options else only(option_types)),
        "protect": (bool, PydField(default=False, description="Never deleted by apply, whatever the flags.")),
        "acknowledge": (tuple[AckCode, ...], PydField(default=(), description="Risk codes accepted for this field.")),
        "migrate_from": (FieldId | None, PydField(
            default=None, description="The id of the field whose values this new field takes over (expand/contract): "
                                      "apply copies them, converted by convert.")),
        "convert": (Annotated[str, JsonOnly(enum=sorted(CONVERSIONS))] | None, PydField(
            default=None, description="The conversion of migrate_from's values (needed when the types differ).")),
    }
    doc = f"A {t.value} field."
    return create_model(f"{t.name.title()}Field", __base__=_FieldFile, __doc__=doc, **spec)


#: One model a field type, by the ``type`` value (in :class:`FieldType` order).
FIELD_MODELS: dict[str, type[_FieldFile]] = {t.value: _field_model(t) for t in FieldType}
FieldFile = Annotated[Union[tuple(FIELD_MODELS.values())], PydField(discriminator="type")]  # type: ignore[valid-type]  # noqa: UP007


class RelationshipFile(_FileModel):
    """A link to contacts, accounts, deals or another schema's slug."""

    what = "a relationship"
    domain = Relationship

    id: Annotated[str, JsonOnly(minLength=1, pattern=FIELD_ID_RE.pattern)]
    namespace: Annotated[str, JsonOnly(minLength=1), PydField(description="contacts, accounts, deals or a schema slug.")]
    labels: LabelsFile
    description: str | None = None
    hasMany: Annotated[bool, JsonOnly(const=False)] = PydField(default=False, description="The API accepts only false.")


class SchemaFile(_FileModel):
    """One ActiveCampaign Custom Object schema (``schemas/<slug>.yaml``)."""

    what = "the schema"
    domain = Schema

    apiVersion: Literal[API_VERSION] = PydField(description="The file format's version.")  # type: ignore[valid-type]
    kind: Literal[KIND]  # type: ignore[valid-type]
    slug: Slug
    renamed_from: Annotated[str, JsonOnly(minLength=1)] | None = PydField(
        default=None, description="The slug this schema had in the account (a rename).")
    labels: LabelsFile
    description: str | None = None
    protect: bool = PydField(default=False, description="Never deleted by apply, whatever the flags.")
    acknowledge: tuple[AckCode, ...] = PydField(default=(), description="Risk codes accepted for this schema.")
    fields: tuple[FieldFile, ...] = ()  # type: ignore[valid-type]
    relationships: tuple[RelationshipFile, ...] = ()


# --------------------------------------------------------------------------------------------
# The model's structure, walked along a path of the document


def _resolve(annotation: Any) -> Any:
    """``annotation`` without ``Annotated`` and ``| None``; the field union as a tuple of models."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, UnionType):
            members = tuple(a for a in get_args(annotation) if a is not type(None))
            if len(members) > 1:
                return members
            annotation = members[0]
        else:
            return annotation


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, _FileModel)


def _is_sequence(annotation: Any) -> bool:
    """``tuple[X, ...]``: a YAML list (tuples: an immutable default is not copied for each file)."""
    return get_origin(annotation) in (list, tuple)


def _item(annotation: Any) -> Any:
    return get_args(annotation)[0]


def _is_scalar(annotation: Any) -> bool:
    return not (_is_model(annotation) or isinstance(annotation, tuple) or _is_sequence(annotation))


def _member(members: tuple[Any, ...], key: str) -> Any:
    """The annotation of ``key`` in a union of models: the first that takes more than null."""
    found: Any = None
    for model in members:
        info = model.model_fields.get(key)
        if info is not None:
            if info.annotation is not type(None):
                return info.annotation
            found = info.annotation
    return found


@lru_cache(maxsize=256)
def _annotation_at(pattern: tuple[Any, ...]) -> Any:
    """What the format holds at a path (list indexes given as ``int``): a model, the field union
    (a tuple of models, whose keys are the same), a ``tuple[X, ...]`` (a list), a scalar type, or None."""
    annotation: Any = SchemaFile
    for step in pattern:
        if isinstance(annotation, tuple) and isinstance(step, str):
            annotation = _member(annotation, step)
        elif _is_model(annotation) and isinstance(step, str) and step in annotation.model_fields:
            annotation = annotation.model_fields[step].annotation
        elif _is_sequence(annotation) and step is int:
            annotation = _item(annotation)
        else:
            return None
        if annotation is None:
            return None
        annotation = _resolve(annotation)
    return annotation


def _at(loc: Loc) -> Any:
    return _annotation_at(tuple(int if isinstance(s, int) else s for s in loc))


def model_at(loc: Loc) -> type[_FileModel] | None:
    """The file model of the mapping at ``loc`` (for a field, any field type's: they share their
    keys), or None where the format has no mapping."""
    annotation = _at(loc)
    if isinstance(annotation, tuple):
        return annotation[0]  # type: ignore[no-any-return]
    return annotation if _is_model(annotation) else None


def key_order(loc: Loc) -> tuple[str, ...] | None:
    """The canonical key order of the mapping at ``loc`` (keys and list indexes), or None where
    the format has no mapping."""
    model = model_at(loc)
    return tuple(model.model_fields) if model is not None else None


def flow_at(loc: Loc) -> bool:
    """Whether the canonical form writes the collection at ``loc`` in flow style: the format puts
    only scalars in it (labels, options, acknowledge)."""
    annotation = _at(loc)
    if _is_model(annotation):
        return all(_is_scalar(_resolve(info.annotation)) for info in annotation.model_fields.values())
    if _is_sequence(annotation):
        return _is_scalar(_resolve(_item(annotation)))
    return False


@lru_cache(maxsize=16)
def account_keys(model: type[_FileModel]) -> frozenset[str]:
    """Keys the account sets (``id``, ``status``, timestamps …), which a file may not write in
    ``model``'s mappings: the attributes of the format's domain models (as the API spells them)
    that the file models lack, wherever they are. None where the domain model has none (labels)."""
    if not _live_only(model):
        return frozenset()
    models: list[type[_FileModel]] = [SchemaFile, RelationshipFile, *FIELD_MODELS.values()]
    return frozenset().union(*(_live_only(m) for m in models))


def _live_only(model: type[_FileModel]) -> frozenset[str]:
    names = {info.alias or name for name, info in model.domain.model_fields.items() if not info.exclude}
    return frozenset(names - set(model.model_fields))


# --------------------------------------------------------------------------------------------
# To and from the domain model


#: Keys of the file that the domain model does not hold (apiVersion, kind).
_FILE_ONLY = frozenset(SchemaFile.model_fields) - {info.alias or name for name, info in Schema.model_fields.items()}


def domain_input(data: Mapping[str, Any]) -> dict[str, Any]:
    """A file's data as the domain model's input: its own keys dropped, options (values in the
    file) as :class:`~reconciler.model.Option` mappings (a value that is not a string, too: the
    domain refuses it there)."""
    body = {k: v for k, v in data.items() if k not in _FILE_ONLY}
    fields = body.get("fields")
    if isinstance(fields, list):
        body["fields"] = [
            {**f, "options": [{"value": o} for o in f["options"]]}
            if isinstance(f, Mapping) and isinstance(f.get("options"), list) else f
            for f in fields]
    return body


def _ordered(model: type[BaseModel], values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` in the model's key order, defaults left out (required keys always kept)."""
    out = {}
    for key, info in model.model_fields.items():
        if key not in values:
            continue
        value, default = values[key], info.get_default()
        if info.is_required() or not (value == default or (value == [] and default == ())):
            out[key] = value
    return out


def _labels(labels: Labels) -> dict[str, str]:
    return _ordered(LabelsFile, {"singular": labels.singular, "plural": labels.plural})


def file_data(schema: Schema) -> dict[str, Any]:
    """A domain schema as a file's data: canonical key order, defaults left out, the account's
    attributes and deleted fields dropped (a live schema's opaque fields cannot be declared)."""
    fields = [_ordered(FIELD_MODELS[f.type.value], {
        "id": f.id, "type": f.type.value, "labels": _labels(f.labels), "description": f.description,
        "required": f.required, "scale": f.scale, "defaultCurrency": f.default_currency,
        "options": list(f.option_values) if f.options is not None else None, "protect": f.protect,
        "acknowledge": list(f.acknowledge), "migrate_from": f.migrate_from, "convert": f.convert})
        for f in schema.active_fields]
    relationships = [_ordered(RelationshipFile, {
        "id": r.id, "namespace": r.namespace, "labels": _labels(r.labels), "description": r.description,
        "hasMany": r.has_many}) for r in schema.relationships]
    return _ordered(SchemaFile, {
        "apiVersion": API_VERSION, "kind": KIND, "slug": schema.slug, "renamed_from": schema.renamed_from,
        "labels": _labels(schema.labels), "description": schema.description, "protect": schema.protect,
        "acknowledge": list(schema.acknowledge), "fields": fields, "relationships": relationships})

