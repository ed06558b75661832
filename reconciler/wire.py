"""The API's JSON shapes <-> the model. No I/O: the client calls these, tests use them for fixtures.

Reading keeps only the keys the model knows (the API adds ``icons``, ``origin`` and may add more);
writing sends ``required`` (never ``isRequired``, which the API ignores on create: ac-api.md §4, C5)
and option values without ids (the API assigns its own UUIDs).
"""

from __future__ import annotations

from typing import Any

from reconciler.model import Field, Relationship, Schema

__all__ = [
    "field_to_api",
    "relationship_to_api",
    "schema_from_api",
    "schema_to_api",
]

_FIELD_KEYS = ("id", "type", "labels", "description", "required", "scale", "defaultCurrency", "options",
               "inherited", "status")
_REL_KEYS = ("id", "namespace", "labels", "description", "hasMany", "inherited")
_SCHEMA_KEYS = ("id", "slug", "labels", "description", "visibility", "customized", "parentId", "appId",
                "createdTimestamp", "updatedTimestamp")


def _pick(data: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {k: data[k] for k in keys if k in data and data[k] is not None}


def schema_from_api(data: dict[str, Any]) -> Schema:
    """A schema object as the API returns it (the inside of ``{"schema": …}``) -> :class:`Schema`."""
    body = _pick(data, _SCHEMA_KEYS)
    body["fields"] = [_pick(f, _FIELD_KEYS) for f in data.get("fields") or ()]
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
