"""The sandbox's own OpenAPI document, served at ``OPENAPI_PATH`` (FastAPI's, completed here).

The routes read their query strings and bodies themselves (the vendor's parsing and error shapes), so
FastAPI cannot see them: each route passes :func:`operation` as ``openapi_extra`` to describe its
query parameters, headers and JSON body. The document also declares the ``Api-Token`` header
security scheme (§1). It describes what the sandbox serves; it is not the vendor's specification.
"""

from __future__ import annotations

from typing import Any

OPENAPI_PATH = "/api/3/openapi.json"

_STRING = {"type": "string"}
_LABELS = {"type": "object", "properties": {"singular": _STRING, "plural": _STRING}}
_TYPES = ["text", "textarea", "number", "date", "datetime", "currency", "dropdown", "multiselect", "decimal"]


def _query(name: str, schema: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, **extra}


_FILTERS = _query("filters", {"type": "object", "additionalProperties": _STRING}, style="deepObject", explode=True,
                  description="filters[<prop>][<op>]=value (S5); shown here with the default operator, eq")
_ORDERS = _query("orders", {"type": "object", "additionalProperties": {"type": "string", "enum": ["ASC", "DESC"]}},
                 style="deepObject", explode=True, description="orders[<prop>]=ASC|DESC (S5)")
PAGING = [_query("limit", {"type": "integer"}), _query("offset", {"type": "integer"})]
SHOW_FIELDS = [_query("showFields", {"type": "string", "enum": ["all"]})]
VALIDATE_ONLY = [
    {"name": "validateOnly", "in": "header", "required": False, "schema": {"type": "boolean"}},
    _query("validateOnly", {"type": "boolean"}),
]
SCHEMA_LIST_QUERY = [*PAGING, _FILTERS, _ORDERS, *SHOW_FIELDS]
RECORD_LIST_QUERY = [*PAGING, _FILTERS, _ORDERS]

_FIELD = {"type": "object", "properties": {
    "id": _STRING, "type": {"type": "string", "enum": _TYPES}, "labels": _LABELS, "description": _STRING,
    "required": {"type": "boolean"}, "scale": {"type": "integer"}, "defaultCurrency": _STRING,
    "options": {"type": "array", "items": {"type": "object", "properties": {"id": _STRING, "value": _STRING}}},
}}
_RELATIONSHIP = {"type": "object", "properties": {
    "id": _STRING, "labels": _LABELS, "description": _STRING, "hasMany": {"type": "boolean"},
    "namespace": {"type": "string", "enum": ["contacts", "accounts", "deals"]},
}}
_VALUE = {"anyOf": [_STRING, {"type": "number"}, {"type": "boolean"}, {"type": "array", "items": _STRING},
                    {"type": "null"}]}
BODIES: dict[str, dict[str, Any]] = {
    "schema": {"type": "object", "properties": {
        "slug": _STRING, "labels": _LABELS, "description": _STRING, "appId": _STRING,
        "fields": {"type": "array", "items": _FIELD},
        "relationships": {"type": "array", "items": _RELATIONSHIP},
    }},
    "record": {"type": "object", "properties": {
        "id": _STRING, "externalId": _STRING,
        "fields": {"type": "array", "items": {"type": "object", "properties": {"id": _STRING, "value": _VALUE}}},
        "relationships": {"type": "object", "additionalProperties": {
            "type": "array", "items": {"anyOf": [{"type": "integer"}, _STRING]}}},
    }},
    "contact": {"type": "object", "properties": {
        "email": _STRING, "firstName": _STRING, "lastName": _STRING, "phone": _STRING}},
}


def operation(parameters: list[dict[str, Any]] | None = None, body: str | None = None) -> dict[str, Any]:
    """The ``openapi_extra`` of one route: its parameters and its ``{"<body>": {...}}`` JSON body."""
    extra: dict[str, Any] = {}
    if parameters:
        extra["parameters"] = parameters
    if body is not None:
        extra["requestBody"] = {"required": True, "content": {"application/json": {"schema": {
            "type": "object", "properties": {body: BODIES[body]}, "required": [body]}}}}
    return extra


def install(app: Any) -> None:
    """Make ``app.openapi()`` (served at ``OPENAPI_PATH``) declare the ``Api-Token`` security scheme."""
    from fastapi.openapi.utils import get_openapi

    def build() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = get_openapi(title=app.title, version=app.version, routes=app.routes,
                              description="The reconciler sandbox: an emulator of the ActiveCampaign "
                                          "Custom Objects API (v3). Every request needs the Api-Token header.")
            doc.setdefault("components", {})["securitySchemes"] = {
                "ApiToken": {"type": "apiKey", "in": "header", "name": "Api-Token"}}
            doc["security"] = [{"ApiToken": []}]
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = build
