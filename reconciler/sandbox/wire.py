"""Wire shapes: the vendor's JSON bodies, error bodies and the rendering of stored objects."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

ICON = "https://d226aj4ao1t61q.cloudfront.net/n9mayqo2d_customobject.png"
BAD_REQUEST = {"errors": [{"status": 400, "title": "Bad Request"}]}
_MESSAGES = {403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 413: "Payload Too Large", 429: "Too Many Requests",
             500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}


class BadRequest(Exception):
    """Answered 400 ``{"errors":[{"status":400,"title":"Bad Request"}]}``."""


class NotFound(Exception):
    """Answered 404 ``{"message":"Not Found"}``."""


class BodyTooLarge(Exception):
    """Answered 413 ``{"message":"Payload Too Large"}`` (the status is a guess: nothing is published)."""


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _depth(value: Any) -> int:
    """Nesting depth of arrays and objects (iterative: a deep body cannot exhaust the stack)."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in children)
    return deepest


def parse_json_object(raw: bytes, max_depth: int) -> dict[str, Any]:
    """A request body as a JSON object; malformed JSON (NaN and Infinity included), JSON nested
    deeper than ``max_depth`` (a guess at a limit the API must have) or not an object is a 400."""
    try:
        body = json.loads(raw or b"null", parse_constant=_no_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest("Malformed JSON body") from exc
    except RecursionError as exc:
        raise BadRequest("Malformed JSON body: nested too deeply") from exc
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object")
    if _depth(body) > max_depth:
        raise BadRequest("Malformed JSON body: nested too deeply")
    return body


async def read_json_object(request: Request) -> dict[str, Any]:
    """The request body as a JSON object (see :func:`parse_json_object`); the size limit is the
    gate's (``BodyTooLarge`` from ``receive``)."""
    return parse_json_object(await request.body(), request.app.state.sandbox.settings.max_body_depth)


def json_response(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(json.dumps(body, separators=(",", ":")).encode(), status_code=status,
                    media_type="application/json", headers=dict(headers or {}))


def json_text_response(text: str, status: int = 200) -> Response:
    """:func:`json_response` for a body already encoded the same way (``json.dumps``, compact)."""
    return Response(text.encode(), status_code=status, media_type="application/json")


def message(status: int, headers: Mapping[str, str] | None = None) -> Response:
    """``{"message": "..."}`` bodies (404 Not Found, 403 Forbidden, 429, ...)."""
    return json_response({"message": _MESSAGES.get(status, "Error")}, status, headers)


def message_bytes(status: int) -> bytes:
    return json.dumps({"message": _MESSAGES.get(status, "Error")}, separators=(",", ":")).encode()


def bad_request(detail: str | None = None) -> Response:
    body = {"errors": [{"status": 400, "title": "Bad Request", **({"detail": detail} if detail else {})}]}
    return json_response(body, 400)


def unprocessable(errors: list[dict[str, Any]]) -> Response:
    return json_response({"errors": errors}, 422)


def empty(status: int) -> Response:
    """Empty 200/202 bodies go out as text/plain (§14 general policy)."""
    return Response(b"", status_code=status, media_type="text/plain")


def render_schema(doc: Mapping[str, Any], show_all: bool = False) -> dict[str, Any]:
    """The §3 schema shape; marked_for_deletion fields only with ``showFields=all``."""
    out: dict[str, Any] = {
        "id": doc["id"], "slug": doc["slug"], "visibility": doc["visibility"],
        "customized": doc.get("customized", False), "labels": doc["labels"],
    }
    if doc.get("description") is not None:
        out["description"] = doc["description"]
    out["createdTimestamp"] = doc["createdTimestamp"]
    out["updatedTimestamp"] = doc["updatedTimestamp"]
    out["fields"] = [f for f in doc["fields"] if show_all or f.get("status") != "marked_for_deletion"]
    out["icons"] = {"default": ICON}
    out["relationships"] = doc["relationships"]
    for key in ("appId", "parentId"):
        if doc.get(key) is not None:
            out[key] = doc[key]
    return out


def rendered_schema_json(cache: dict[tuple[str, bool], tuple[str, str]], schema_id: str, stored: str,
                         show_all: bool) -> str:
    """``json.dumps(render_schema(json.loads(stored), show_all))`` (compact), remembered in ``cache``
    while the stored text stays the same: a page of the schema list decodes and renders only what
    changed since it was last served."""
    key = (schema_id, show_all)
    hit = cache.get(key)
    if hit is not None and hit[0] == stored:
        return hit[1]
    text = json.dumps(render_schema(json.loads(stored), show_all), separators=(",", ":"))
    cache[key] = (stored, text)
    return text


def render_record(row: Any, schema: Mapping[str, Any], guide: bool = False) -> dict[str, Any]:
    """The §7.1 record shape; values of deleted fields are hidden; relationship ids are strings.
    ``guide``: the upsert 201 of the live report (C1, U13), without ``id`` and timestamps."""
    live = {f["id"] for f in schema["fields"] if f.get("status") != "marked_for_deletion"}
    out: dict[str, Any] = {} if guide else {"id": row.id}
    if row.external_id is not None:
        out["externalId"] = row.external_id
    out["schemaId"] = row.schema_id
    out["fields"] = [{"id": k, "value": v} for k, v in row.fields.items() if k in live]
    out["relationships"] = row.relationships
    if not guide:
        out["createdTimestamp"] = row.created
        out["updatedTimestamp"] = row.updated
    return out
