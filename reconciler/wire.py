"""The API's JSON shapes <-> the model. No I/O: the client calls these, tests use them for fixtures.

Reading keeps only the keys the model knows (the API adds ``icons``, ``origin`` and may add more); a
field whose type the model does not know becomes an :class:`~reconciler.model.OpaqueField`, kept
apart and never written. Writing sends ``required`` (never ``isRequired``, which the API ignores on
create: ac-api.md §4, C5). Options: a create sends values only (the API assigns the ids); an update
sends the field whole (:func:`field_update_to_api`), its live options with the server's ids.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from reconciler.model import Field, FieldType, Relationship, Schema
from reconciler.props import Prop

__all__ = [
    "field_to_api",
    "field_update_to_api",
    "relationship_to_api",
    "schema_from_api",
    "schema_to_api",
]

_FIELD_KEYS = ("id", "type", "labels", "description", "required", "scale", "defaultCurrency", "options",
               "inherited", "status")
_OPAQUE_KEYS = ("id", "type", "labels", "required", "inherited", "status")
_KNOWN_TYPES = frozenset(t.value for t in FieldType)
_REL_KEYS = ("id", "namespace", "labels", "description", "hasMany", "inherited")
_SCHEMA_KEYS = ("id", "slug", "labels", "description", "visibility", "customized", "parentId", "appId",
                "createdTimestamp", "updatedTimestamp")


def _pick(data: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {k: data[k] for k in keys if k in data and data[k] is not None}


def schema_from_api(data: dict[str, Any]) -> Schema:
    """A schema object as the API returns it (the inside of ``{"schema": …}``) -> :class:`Schema`."""
    body = _pick(data, _SCHEMA_KEYS)
    fields, opaque = [], []
    for f in data.get("fields") or ():
        kind = f.get("type") if isinstance(f, dict) else None
        if isinstance(kind, str) and kind not in _KNOWN_TYPES:
            opaque.append(_pick(f, _OPAQUE_KEYS))
        else:
            fields.append(_pick(f, _FIELD_KEYS) if isinstance(f, dict) else f)
    body["fields"] = fields
    if opaque:
        body["opaque_fields"] = opaque
    body["relationships"] = [_pick(r, _REL_KEYS) for r in data.get("relationships") or ()]
    return Schema.model_validate(body)


def field_to_api(field: Field) -> dict[str, Any]:
    """A field as the API accepts it on create and update."""
    out: dict[str, Any] = {
        "id": field.id,
        "labels": {"singular": field.labels.singular, "plural": field.labels.plural},
        "type": field.type.value,
        "required": field.required,
    }
    if field.description is not None:
        out["description"] = field.description
    if field.scale is not None:
        out["scale"] = field.scale
    if field.default_currency is not None:
        out["defaultCurrency"] = field.default_currency
    if field.options is not None:
        out["options"] = [{"value": o.value} for o in field.options]
    return out


def field_update_to_api(desired: Field, live: Field, changed: Collection[Prop]) -> dict[str, Any]:
    """The field as a schema update (PUT) sends it: whole, every property set, so the body is right
    whether the API merges a field in a PUT or replaces it (undocumented, ac-api.md U1).

    The properties in ``changed`` (the planner's: ``labels.singular``, ``required`` …) come
    from the files; every other one is sent as the account holds it (so what the planner leaves
    unmanaged, such as ``scale`` not in the file, or ``required`` in an account that ignores it, is
    kept). A description the files drop is sent as ``""`` (an omitted one would be kept by a merge).
    Options: the live ones first, in the live order, each with the server's ``id`` (the API may take
    an option without its id for a new one: a duplicate, U8), then the added ones as values only.
    """
    names = set(changed)
    labels_src = desired if any(n.is_label for n in names) else live
    out: dict[str, Any] = {
        "id": live.id,
        "labels": {"singular": labels_src.labels.singular, "plural": labels_src.labels.plural},
        "type": live.type.value,
        "required": desired.required if Prop.REQUIRED in names else live.required,
    }
    description = desired.description if Prop.DESCRIPTION in names else live.description
    if description is not None or Prop.DESCRIPTION in names:
        out["description"] = description or ""
    for key, prop in (("scale", Prop.SCALE), ("defaultCurrency", Prop.DEFAULT_CURRENCY)):
        value = prop.read(desired if prop in names else live)
        if value is not None:
            out[key] = value
    if live.type.has_options:
        options: list[dict[str, str]] = [{"id": o.id, "value": o.value} if o.id else {"value": o.value}
                                         for o in live.options or ()]
        have = {o.value for o in live.options or ()}
        options += [{"value": v} for v in desired.option_values if v not in have]
        out["options"] = options
    return out


def relationship_to_api(rel: Relationship) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": rel.id,
        "labels": {"singular": rel.labels.singular, "plural": rel.labels.plural},
        "namespace": rel.namespace,
        "hasMany": rel.has_many,
    }
    if rel.description is not None:
        out["description"] = rel.description
    return out


def schema_to_api(schema: Schema) -> dict[str, Any]:
    """A whole schema as a create body's inside (``{"schema": <this>}``); active fields only."""
    out: dict[str, Any] = {
        "slug": schema.slug,
        "labels": {"singular": schema.labels.singular, "plural": schema.labels.plural},
        "fields": [field_to_api(f) for f in schema.active_fields],
        "relationships": [relationship_to_api(r) for r in schema.relationships],
    }
    if schema.description is not None:
        out["description"] = schema.description
    return out
