"""Schema routes (§2-§6): list (U20 order and lag), get, create, update (U1 merge, U3 validateOnly),
delete, field delete (U9, admin only), public (U24) and child (U23) schemas.

Each write reads the request body first and then does its reads, checks and write in ONE store
transaction, so concurrent writes each apply to the latest state (none is lost).
"""

from __future__ import annotations

import copy
import json
import uuid
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from reconciler.sandbox import clock, openapi, query, rules
from reconciler.sandbox.state import is_member, state_of
from reconciler.sandbox.wire import (
    NotFound,
    empty,
    json_response,
    json_text_response,
    message,
    read_json_object,
    render_schema,
    rendered_schema_json,
)

router = APIRouter()
BASE = "/api/3/customObjects/schemas"


def _show_all(request: Request) -> bool:
    return request.query_params.get("showFields", "").lower() == "all"


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("true", "1", "yes")


def _schema_or_404(request: Request, schema_id: str) -> dict[str, Any]:
    doc = state_of(request).store.get_schema(schema_id)
    if doc is None:
        raise NotFound(schema_id)
    return doc


def _one(doc: dict[str, Any], request: Request, status: int = 200) -> Response:
    return json_response({"schema": render_schema(doc, _show_all(request))}, status)


@router.get(BASE, openapi_extra=openapi.operation(openapi.SCHEMA_LIST_QUERY))
async def list_schemas(request: Request) -> Response:
    """U20: in ``list_order="shuffled"`` a random order per request unless ``orders[...]`` is
    given; with ``schema_list_lag_s`` the schemas written in that many seconds show their old state."""
    state = state_of(request)
    settings = state.settings
    filters, orders = query.parse(request.query_params.multi_items())
    page = query.paging(request.query_params, settings)
    show_all = _show_all(request)
    shuffled = settings.list_order == "shuffled" and not orders
    store = state.store
    lagged = state.lag.view(store.list_schemas, settings.schema_list_lag_s) if settings.schema_list_lag_s > 0 \
        else None
    if not filters and not orders and not shuffled and lagged is None:
        # the plan's read: one page by SQL LIMIT/OFFSET, each schema's JSON rendered once and reused
        # while its stored text is unchanged (decoding and rendering every schema of the account for
        # each page made a 500-schema list take seconds, bench/NOTES.md); the same bytes as below
        total, rows = store.schema_page(page.offset, page.limit)
        schemas = ",".join([rendered_schema_json(store.rendered, sid, text, show_all) for sid, text in rows])
        meta = json.dumps({"total": total, "count": len(rows), "limit": page.limit, "offset": page.offset},
                          separators=(",", ":"))
        return json_text_response(f'{{"schemas":[{schemas}],"meta":{meta}}}')
    docs = lagged if lagged is not None else store.list_schemas()
    docs = [d for d in docs if query.schema_matches(d, filters)]
    docs = state.shuffled(docs) if shuffled else query.sort_schemas(docs, orders)
    items = docs[page.offset: page.offset + page.limit]
    return json_response({
        "schemas": [render_schema(d, show_all) for d in items],
        "meta": {"total": len(docs), "count": len(items), "limit": page.limit, "offset": page.offset},
    })


@router.get(BASE + "/{schema_id}", openapi_extra=openapi.operation(openapi.SHOW_FIELDS))
async def get_schema(request: Request, schema_id: str) -> Response:
    store = state_of(request).store
    stored = store.get_schema_text(schema_id)
    if stored is None:
        raise NotFound(schema_id)
    return json_text_response(f'{{"schema":{rendered_schema_json(store.rendered, schema_id, stored, _show_all(request))}}}')


def _new_doc(parts: dict[str, Any], visibility: str) -> dict[str, Any]:
    ts = clock.now()
    return {"id": str(uuid.uuid4()), "slug": parts["slug"], "visibility": visibility, "customized": False,
            "labels": parts["labels"], **({"description": parts["description"]} if "description" in parts else {}),
            "createdTimestamp": ts, "updatedTimestamp": ts, "fields": parts["fields"],
            "relationships": parts["relationships"]}


@router.post(BASE, openapi_extra=openapi.operation(openapi.SHOW_FIELDS, body="schema"))
async def create_schema(request: Request) -> Response:
    state = state_of(request)
    raw = rules.body_part(await read_json_object(request), "schema")
    with state.store.transaction():  # the slug check and the insert against the same state
        parts = rules.check_new_schema(raw, state.store.schema_refs(), state.settings)
        doc = _new_doc(parts, "private")
        _write(request, None, doc)
    return _one(doc, request, 201)


@router.post(BASE + "/public", openapi_extra=openapi.operation(openapi.SHOW_FIELDS, body="schema"))
async def create_public_schema(request: Request) -> Response:
    """U24 (guess): slug ``app-{appId}-{slug}``; 200 as documented (S8)."""
    state = state_of(request)
    raw = rules.body_part(await read_json_object(request), "schema")
    errs: list[dict[str, Any]] = []
    app_id = raw.get("appId")
    if isinstance(app_id, bool) or not isinstance(app_id, (str, int)) or str(app_id) == "":
        errs.append(rules.error("schema.appId", "Schema appId must be provided"))
    slug = rules.check_slug(raw.get("slug"), state.settings, errs)
    if errs:
        raise rules.Unprocessable(errs)
    with state.store.transaction():
        parts = rules.check_new_schema(raw, state.store.schema_refs(), state.settings,
                                       slug=f"app-{app_id}-{slug}")
        doc = _new_doc(parts, "public")
        doc["appId"] = str(app_id)
        _write(request, None, doc)
    return _one(doc, request, 200)


@router.post(BASE + "/{schema_id}/child", openapi_extra=openapi.operation(openapi.SHOW_FIELDS))
async def create_child_schema(request: Request, schema_id: str) -> Response:
    """No body. A guess: only public schemas have children; the child keeps the parent's slug (as in
    the S8 example) and a second child of the same parent is refused as a duplicate slug."""
    state = state_of(request)
    with state.store.transaction():
        parent = _schema_or_404(request, schema_id)
        if parent["visibility"] != "public":
            raise rules.Unprocessable([rules.error("schema", "Only public schemas can have child schemas")])
        others = [d for d in state.store.schema_refs() if d["id"] != parent["id"]]
        errs: list[dict[str, Any]] = []
        rules.slug_unique(parent["slug"], others, errs)
        if errs:
            raise rules.Unprocessable(errs)
        doc = copy.deepcopy(parent)
        ts = clock.now()
        doc.update(id=str(uuid.uuid4()), visibility="private", customized=False, parentId=parent["id"],
                   createdTimestamp=ts, updatedTimestamp=ts)
        doc["fields"] = [{**f, "inherited": True} for f in doc["fields"] if f.get("status") != rules.MARKED]
        doc["relationships"] = [{**r, "inherited": True} for r in doc["relationships"]]
        _write(request, None, doc)
    return _one(doc, request, 200)


def _validate_only(request: Request) -> bool:
    """U3: the ``validateOnly`` header (documented), and the query parameter when
    ``validate_only_query`` (a guess)."""
    if _truthy(request.headers.get("validateOnly")):
        return True
    return state_of(request).settings.validate_only_query and _truthy(request.query_params.get("validateOnly"))


@router.put(BASE + "/{schema_id}",
            openapi_extra=openapi.operation(openapi.SHOW_FIELDS + openapi.VALIDATE_ONLY, body="schema"))
async def update_schema(request: Request, schema_id: str) -> Response:
    """U1 merge (``field_put_merge``); U3 ``validateOnly``. The body is read first, then the read,
    the checks and the write are one transaction against the latest state (no update is lost)."""
    state = state_of(request)
    raw = rules.body_part(await read_json_object(request), "schema")
    with state.store.transaction():
        stored = _schema_or_404(request, schema_id)
        others = [d for d in state.store.schema_refs() if d["id"] != schema_id]
        doc = rules.check_update(stored, raw, others, state.settings)
        if _validate_only(request):
            return _one(doc, request)
        if doc.get("parentId"):
            doc["customized"] = True  # U23, a guess
        doc["updatedTimestamp"] = clock.now()
        _write(request, stored, doc)
    return _one(doc, request)


@router.delete(BASE + "/{schema_id}")
async def delete_schema(request: Request, schema_id: str) -> Response:
    state = state_of(request)
    with state.store.transaction():
        stored = _schema_or_404(request, schema_id)
        state.store.delete_schema(schema_id)
        state.lag.wrote(schema_id, stored, None, state.settings.schema_list_lag_s)
    return empty(200)


@router.delete(BASE + "/{schema_id}/fields/{field_id}", openapi_extra=openapi.operation(openapi.SHOW_FIELDS))
async def delete_field(request: Request, schema_id: str, field_id: str) -> Response:
    """U9: the field is marked, its id stays reserved until ``Store.purge_deleted_fields``. Admin
    users only (S8): a member token gets 403 ``{"message":"Forbidden"}`` (the body is a guess)."""
    if is_member(request):
        return message(403)
    state = state_of(request)
    with state.store.transaction():
        stored = _schema_or_404(request, schema_id)
        doc = copy.deepcopy(stored)
        field = next((f for f in doc["fields"] if f["id"] == field_id and f.get("status") != rules.MARKED), None)
        if field is None:
            raise NotFound(field_id)
        if doc["visibility"] == "public" or doc.get("parentId"):  # U23: documented as not allowed; 422 a guess
            raise rules.Unprocessable([rules.error("schema.fields", "Fields can only be deleted on private schemas")])
        field["status"] = rules.MARKED
        doc["updatedTimestamp"] = clock.now()
        _write(request, stored, doc)
    return _one(doc, request, 202)


def _write(request: Request, before: dict[str, Any] | None, after: dict[str, Any]) -> None:
    """Store a schema document (inside the caller's transaction) and tell the list lag."""
    state = state_of(request)
    state.store.put_schema(after)
    state.lag.wrote(after["id"], before, after, state.settings.schema_list_lag_s)
